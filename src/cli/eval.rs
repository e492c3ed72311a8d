//! `webcare eval FILE.jsonl`: decide every labelled message with the rulebook and measure the
//! decisions against the labels (DESIGN §5a). CI runs it like `webcare test`: the exit status
//! says whether the rulebook meets its `[eval]` thresholds, so a change that answers a press
//! question or leaves complaints unanswered fails the build, not the citizens.
//!
//! Exit status: 0 when the thresholds hold, 1 when one fails (the report says which and by how
//! much), 2 when the input cannot be used (every bad line listed as file:line:column).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use webcare_engine::eval::{EvalReport, Header, TopicTemplates};
use webcare_engine::examples::parse_examples;
use webcare_engine::rulebook::SourceFile;
use webcare_engine::{ChannelKind, DecideContext, Inbound};

/// Office hours shape the holding replies and some scripts: by default every message is decided
/// on an ordinary Monday morning, when every team is open, so results do not depend on the hour
/// the command runs.
const DEFAULT_AT: &str = "2026-11-23 10:00";

#[derive(Args)]
pub struct EvalArgs {
    /// Labelled messages, one JSON object per line: `text` and `category`, optionally `topic`
    /// (a rulebook topic) and `lang` (nl, en, de, …).
    #[arg(value_name = "FILE.jsonl")]
    file: PathBuf,
    /// `table`, `json` or `html` (one self-contained page).
    #[arg(long, value_enum, default_value = "table")]
    format: EvalFormat,
    /// Write the report to this file instead of stdout.
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Decide the messages at this local time (`2026-11-27 17:55`) or RFC 3339 time; default a
    /// Monday 10:00, when offices are open.
    #[arg(long)]
    at: Option<String>,
    /// The channel the messages seem to come from (its reply limit applies).
    #[arg(long, default_value = "webchat")]
    channel: ChannelKind,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EvalFormat {
    Table,
    Json,
    Html,
}

pub fn run(rules: Option<&Path>, args: EvalArgs) -> anyhow::Result<ExitCode> {
    let rulebook = super::load_rulebook(rules)?;
    let at = super::parse_at(&rulebook, Some(args.at.as_deref().unwrap_or(DEFAULT_AT)))?;
    let path = &args.file;
    let bytes = std::fs::read(path).with_context(|| format!("cannot read `{}`", path.display()))?;
    let text = String::from_utf8(bytes)
        .map_err(|e| e.utf8_error())
        .with_context(|| format!("`{}` is not UTF-8; save it as UTF-8", path.display()))?;
    let file = SourceFile {
        path: path.clone(),
        text,
    };
    let examples = match parse_examples(&file) {
        Ok(examples) => examples,
        Err(errors) => {
            for error in &errors {
                eprintln!("{error}");
            }
            let (plural, verb) = if errors.len() == 1 {
                ("", "is not a labelled example")
            } else {
                ("s", "are not labelled examples")
            };
            eprintln!(
                "error: {} line{plural} of `{}` {verb}; nothing was evaluated",
                errors.len(),
                path.display()
            );
            return Ok(ExitCode::from(2));
        }
    };
    if examples.is_empty() {
        bail!(
            "`{}` has no labelled examples; write one JSON object per line, like {{\"text\": \"…\", \"category\": \"question\"}}",
            path.display()
        );
    }

    let context = DecideContext::default();
    let decisions: Vec<_> = examples
        .iter()
        .map(|example| {
            let message = Inbound::from_text(
                format!("eval-{}", example.line),
                args.channel,
                example.text.as_str(),
                at,
            );
            rulebook.decide(&message, &context)
        })
        .collect();
    let timezone = rulebook.teams().timezone;
    let header = Header {
        file: path.display().to_string(),
        rulebook_name: rulebook.name.clone(),
        rulebook_version: rulebook.version.clone(),
        decided_at: format!(
            "{} {timezone}",
            at.with_timezone(&timezone).format("%a %Y-%m-%d %H:%M")
        ),
        channel: args.channel.to_string(),
    };
    let report = EvalReport::build(
        header,
        examples.iter().zip(&decisions),
        &TopicTemplates::from_rulebook(&rulebook),
        &rulebook.eval,
    );

    let mut out: Box<dyn Write> = match &args.output {
        Some(output) => {
            Box::new(BufWriter::new(File::create(output).with_context(|| {
                format!("cannot create `{}`", output.display())
            })?))
        }
        None => Box::new(BufWriter::new(std::io::stdout().lock())),
    };
    match args.format {
        EvalFormat::Table => out.write_all(report.to_table().as_bytes())?,
        EvalFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &report)?;
            out.write_all(b"\n")?;
        }
        EvalFormat::Html => out.write_all(report.to_html().as_bytes())?,
    }
    out.flush()?;
    drop(out);
    // The table ends with the verdict; other formats and files get it on stderr, where a
    // person or a CI log sees it.
    if args.format != EvalFormat::Table || args.output.is_some() {
        eprintln!(
            "evaluated {} labelled messages with rulebook {}: {} acceptable, critical recall {}, automation {}",
            report.messages,
            rulebook.version,
            report.acceptable.percent(),
            report.critical_recall.percent(),
            report.automation.percent()
        );
        for failure in &report.failures {
            eprintln!("FAILED: {failure}");
        }
    }
    Ok(if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
