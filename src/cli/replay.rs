//! `webcare replay`: decide a batch of recorded messages with no side effects, for trying a
//! rulebook on real history before it goes live.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use webcare_adapters::jsonl::JsonlReader;
use webcare_engine::{DecideContext, DecisionRecord};

#[derive(Args)]
pub struct ReplayArgs {
    /// JSON Lines file, one message per line (`-` reads stdin). Only `text` is required.
    #[arg(long, value_name = "FILE.jsonl")]
    input: PathBuf,
    /// Time for lines without `received_at`, local (`2026-11-23 10:00`) or RFC 3339; default now.
    #[arg(long)]
    at: Option<String>,
}

pub fn run(rules: Option<&Path>, args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let rulebook = super::load_rulebook(rules)?;
    let now = super::parse_at(&rulebook, args.at.as_deref())?;
    let input: Box<dyn BufRead> = if args.input.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        let file = File::open(&args.input)
            .with_context(|| format!("cannot open `{}`", args.input.display()))?;
        Box::new(BufReader::new(file))
    };
    let mut out = BufWriter::new(std::io::stdout().lock());
    let context = DecideContext::default();
    let (mut decided, mut skipped) = (0usize, 0usize);
    for message in JsonlReader::new(input, now) {
        match message {
            Ok(message) => {
                let decision = rulebook.decide(&message, &context);
                serde_json::to_writer(&mut out, &DecisionRecord::from(&decision))?;
                out.write_all(b"\n")?;
                decided += 1;
            }
            Err(error) => {
                // Flush first so stdout and stderr stay in order when both go to a terminal.
                out.flush()?;
                eprintln!("{}: {error}", args.input.display());
                skipped += 1;
            }
        }
    }
    out.flush()?;
    eprintln!(
        "replayed {decided} messages with rulebook {} ({skipped} lines skipped)",
        rulebook.version
    );
    Ok(if skipped == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
