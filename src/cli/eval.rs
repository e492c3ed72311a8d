//! `webcare eval FILE.jsonl`: decide every labelled message with the rulebook and measure the
//! decisions against the labels (DESIGN §5a). CI runs it like `webcare test`: the exit status
//! says whether the rulebook meets its `[eval]` thresholds, so a change that answers a press
//! question or leaves complaints unanswered fails the build, not the citizens.
//!
//! `webcare eval --folds K` measures the rulebook's own examples instead: each is decided by the
//! rulebook with a classifier trained without it (K-fold cross-validation), which estimates how
//! the learned second opinion does on messages nobody tuned for. The keywords were written with
//! the examples in view, so the figure says more about the classifier than about the keywords.
//!
//! Exit status: 0 when the thresholds hold, 1 when one fails (the report says which and by how
//! much), 2 when the input cannot be used (every bad line listed as file:line:column).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, anyhow, bail};
use chrono::{DateTime, Utc};
use clap::Args;
use webcare_engine::eval::{EvalReport, Header, TopicTemplates};
use webcare_engine::examples::{Example, parse_examples};
use webcare_engine::rulebook::{RulebookSource, SourceFile};
use webcare_engine::{ChannelKind, DecideContext, Decision, Inbound, Rulebook};

/// Office hours shape the holding replies and some scripts: by default every message is decided
/// on an ordinary Monday morning, when every team is open, so results do not depend on the hour
/// the command runs.
const DEFAULT_AT: &str = "2026-11-23 10:00";

#[derive(Args)]
pub struct EvalArgs {
    /// Labelled messages, one JSON object per line: `text` and `category`, optionally `topic`
    /// (a rulebook topic) and `lang` (nl, en, de, …).
    #[arg(value_name = "FILE.jsonl", required_unless_present = "folds")]
    file: Option<PathBuf>,
    /// Instead of a file, cross-validate the rulebook's own examples in K folds: each example
    /// is decided with a classifier trained on the other folds only.
    #[arg(long, value_name = "K", conflicts_with = "file", value_parser = clap::value_parser!(u8).range(2..=20))]
    folds: Option<u8>,
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
    let Some(path) = &args.file else {
        let folds = args.folds.unwrap_or(5);
        let report = cross_validate(rules, &rulebook, folds, at, &args)?;
        return write_report(&report, &rulebook, &args);
    };
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

    let decisions: Vec<_> = examples
        .iter()
        .map(|example| decide(&rulebook, example, at, args.channel))
        .collect();
    let header = header(&rulebook, path.display().to_string(), at, args.channel);
    let report = EvalReport::build(
        header,
        examples.iter().zip(&decisions),
        &TopicTemplates::from_rulebook(&rulebook),
        &rulebook.eval,
    );
    write_report(&report, &rulebook, &args)
}

fn decide(
    rulebook: &Rulebook,
    example: &Example,
    at: DateTime<Utc>,
    channel: ChannelKind,
) -> Decision {
    let message = Inbound::from_text(
        format!("eval-{}", example.line),
        channel,
        example.text.as_str(),
        at,
    );
    rulebook.decide(&message, &DecideContext::default())
}

fn header(rulebook: &Rulebook, file: String, at: DateTime<Utc>, channel: ChannelKind) -> Header {
    let timezone = rulebook.teams().timezone;
    Header {
        file,
        rulebook_name: rulebook.name.clone(),
        rulebook_version: rulebook.version.clone(),
        decided_at: format!(
            "{} {timezone}",
            at.with_timezone(&timezone).format("%a %Y-%m-%d %H:%M")
        ),
        channel: channel.to_string(),
    }
}

/// Every example of the rulebook decided by the rulebook with a classifier that never saw it.
/// Example `i` (counting through the files in the order `rulebook.toml` lists them) is held out
/// of fold `i % K`, so every fold has its share of each file and category. Held-out lines are
/// blanked rather than removed, so the files' line numbers stay true in the list of misses.
fn cross_validate(
    rules: Option<&Path>,
    rulebook: &Rulebook,
    folds: u8,
    at: DateTime<Utc>,
    args: &EvalArgs,
) -> anyhow::Result<EvalReport> {
    let source = match rules {
        Some(dir) => RulebookSource::from_dir(dir).map_err(|errors| anyhow!("{errors}"))?,
        None => RulebookSource::embedded(),
    };
    let folds = usize::from(folds);
    // (file index, example) for every example, in order.
    let mut all: Vec<(usize, Example)> = Vec::new();
    for (f, file) in source.examples.iter().enumerate() {
        let name: Arc<str> = file.path.display().to_string().into();
        // The rulebook compiled, so its examples parse.
        let examples = parse_examples(file).map_err(|_| anyhow!("`{name}` does not parse"))?;
        all.extend(examples.into_iter().map(|mut e| {
            e.file = Some(Arc::clone(&name));
            (f, e)
        }));
    }
    if all.len() < folds * 2 {
        bail!(
            "the rulebook has {} examples, too few for {folds} folds; list the examples in `[classifier] examples` of rulebook.toml",
            all.len()
        );
    }
    let mut decisions: Vec<Option<Decision>> = vec![None; all.len()];
    for fold in 0..folds {
        let mut trained_without = source.clone();
        for (f, file) in trained_without.examples.iter_mut().enumerate() {
            let held: std::collections::HashSet<usize> = all
                .iter()
                .enumerate()
                .filter(|(i, (in_file, _))| i % folds == fold && *in_file == f)
                .map(|(_, (_, e))| e.line)
                .collect();
            file.text = file
                .text
                .lines()
                .enumerate()
                .map(|(i, line)| if held.contains(&(i + 1)) { "" } else { line })
                .collect::<Vec<_>>()
                .join("\n");
        }
        let fold_rulebook = Rulebook::compile(trained_without).map_err(|errors| {
            anyhow!(
                "{errors}\nthe rulebook does not compile without fold {}",
                fold + 1
            )
        })?;
        for (i, (_, example)) in all.iter().enumerate().filter(|(i, _)| i % folds == fold) {
            decisions[i] = Some(decide(&fold_rulebook, example, at, args.channel));
        }
    }
    let files: Vec<String> = source
        .examples
        .iter()
        .map(|f| f.path.display().to_string())
        .collect();
    let header = header(
        rulebook,
        format!("{} ({folds}-fold cross-validation)", files.join(", ")),
        at,
        args.channel,
    );
    let decided = all
        .iter()
        .zip(&decisions)
        .filter_map(|((_, example), decision)| decision.as_ref().map(|d| (example, d)));
    Ok(EvalReport::build(
        header,
        decided,
        &TopicTemplates::from_rulebook(rulebook),
        &rulebook.eval,
    ))
}

/// Writes the report in the chosen format; the exit status says whether the thresholds hold.
fn write_report(
    report: &EvalReport,
    rulebook: &Rulebook,
    args: &EvalArgs,
) -> anyhow::Result<ExitCode> {
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
