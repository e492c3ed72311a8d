//! `webcare replay`: decide a batch of recorded messages with no side effects, for trying a
//! rulebook on real history before it goes live. The history is a JSON Lines file, or with
//! `--from-store` the store's own message log, where each message is decided again with the
//! conversation facts it was first decided with; nothing is written to the store.
//!
//! `--from-store --shadow` decides nothing: it compares the decisions a shadow rulebook
//! (`[shadow] rules` of `webcare run`) stored beside the live ones on real traffic, in the same
//! report.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, IsTerminal, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, mpsc};
use std::thread::Scope;

use anyhow::{Context, anyhow, bail};
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use clap::Args;
use webcare_adapters::jsonl::JsonlReader;
use webcare_engine::case::satisfaction;
use webcare_engine::diff::DiffReport;
use webcare_engine::store::StoredMessage;
use webcare_engine::{DecideContext, Decision, DecisionRecord, Rulebook, store};

use crate::config::StoreArgs;

#[derive(Args)]
pub struct ReplayArgs {
    /// JSON Lines file, one message per line (`-` reads stdin). Only `text` is required.
    #[arg(
        long,
        value_name = "FILE.jsonl",
        required_unless_present = "from_store",
        conflicts_with = "from_store"
    )]
    input: Option<PathBuf>,
    /// Time for lines without `received_at`, local (`2026-11-23 10:00`) or RFC 3339; default now.
    #[arg(long)]
    at: Option<String>,
    /// Replay the stored message log (`--data`) instead of a file. Prints one decision per
    /// line and, on stderr, how many differ from the decisions that were stored.
    #[arg(long)]
    from_store: bool,
    /// With `--from-store`: only messages received since then: a span back from now (`7d`,
    /// `24h`, `90m`), a local date (`2026-11-01`) or time (`2026-11-01 08:00`), or RFC 3339.
    #[arg(long, requires = "from_store", value_name = "WHEN")]
    since: Option<String>,
    /// With `--from-store`: compare the live decisions with the decisions the shadow rulebook
    /// (`[shadow] rules`) stored beside them, instead of deciding again; no rulebook is
    /// compiled. Messages taken in while no shadow rulebook ran are counted, not compared.
    #[arg(long, requires = "from_store")]
    shadow: bool,
    /// With `--from-store`: how to report the difference between the stored decisions and the
    /// rulebook's: `table` (counts per kind of change with examples), `json`, `html` (one
    /// self-contained page), `changes` (every changed message as a JSON line) or `decisions`
    /// (every new decision as a JSON line).
    #[arg(long, requires = "from_store", value_enum, default_value = "table")]
    report: ReportFormat,
    /// Write the report to this file instead of stdout.
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    Table,
    Json,
    Html,
    Changes,
    Decisions,
}

pub fn run(
    rules: Option<&Path>,
    store_args: &StoreArgs,
    args: ReplayArgs,
) -> anyhow::Result<ExitCode> {
    if args.shadow {
        return shadow(rules, store_args, &args);
    }
    let rulebook = super::load_rulebook(rules)?;
    let input_path = match (&args.input, args.from_store) {
        (_, true) => return from_store(&rulebook, store_args, &args),
        (Some(input), false) => input.clone(),
        (None, false) => bail!("give `--input FILE` or `--from-store`"),
    };
    let now = super::parse_at(&rulebook, args.at.as_deref())?;
    let input: Box<dyn BufRead> = if input_path.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        let file = File::open(&input_path)
            .with_context(|| format!("cannot open `{}`", input_path.display()))?;
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
                eprintln!("{}: {error}", input_path.display());
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

/// Opens the store `--data` names, refusing to create one where the user expected one.
fn open_existing(store_args: &StoreArgs) -> anyhow::Result<std::sync::Arc<dyn store::Store>> {
    let config = store_args.resolve()?;
    let options = &config.options;
    if options.backend.is_embedded() && !options.backend.path_in(&options.data_dir).exists() {
        bail!(
            "there is no {} store in `{}`; pass `--data DIR` (and `--store`) of an existing store",
            options.backend,
            options.data_dir.display()
        );
    }
    // History is read once, front to back: a small page cache keeps a replay's memory flat
    // however long the history is.
    Ok(store::open(&store::StoreOptions {
        cache_bytes: Some(REPLAY_CACHE_BYTES),
        ..options.clone()
    })?)
}

/// The page cache of a replay's store.
const REPLAY_CACHE_BYTES: usize = 32 << 20;

fn create_output(path: Option<&Path>) -> anyhow::Result<Box<dyn Write>> {
    Ok(match path {
        Some(path) => {
            Box::new(BufWriter::new(File::create(path).with_context(|| {
                format!("cannot create `{}`", path.display())
            })?))
        }
        None => Box::new(BufWriter::new(std::io::stdout().lock())),
    })
}

/// `--from-store --shadow`: the stored live decisions against the stored shadow decisions.
/// Nothing is decided, so the candidate's files need not exist any more; the rulebook is
/// loaded only to read a `--since` date in its time zone.
fn shadow(
    rules: Option<&Path>,
    store_args: &StoreArgs,
    args: &ReplayArgs,
) -> anyhow::Result<ExitCode> {
    let now = Utc::now();
    let since = match args.since.as_deref() {
        None => None,
        Some(text) => Some(match parse_span(text, now) {
            Some(span) => span?,
            None => parse_since(&super::load_rulebook(rules)?, text, now)?,
        }),
    };
    let store = open_existing(store_args)?;
    let mut progress = Progress::new(store.stats()?.messages);
    let mut out = create_output(args.output.as_deref())?;
    let mut report = DiffReport::shadow();
    for stored in store::history(&*store, since) {
        let stored = stored?;
        let Some(candidate) = &stored.shadow else {
            report.skip();
            continue;
        };
        let changed = report.add(&stored.message, &stored.decision, candidate);
        match (args.report, changed) {
            (ReportFormat::Decisions, _) => {
                serde_json::to_writer(&mut out, &DecisionRecord::from(candidate))?;
                out.write_all(b"\n")?;
            }
            (ReportFormat::Changes, Some(changed)) => {
                serde_json::to_writer(&mut out, &changed)?;
                out.write_all(b"\n")?;
            }
            _ => {}
        }
        progress.show(report.compared + report.skipped);
    }
    progress.finish();
    write_report(&mut out, args.report, &report)?;
    if !matches!(args.report, ReportFormat::Table) {
        eprintln!(
            "compared {} live decisions with their shadow decisions ({}); {} would change, {} messages had no shadow decision",
            report.compared,
            if report.candidate.is_empty() {
                "no shadow rulebook"
            } else {
                &report.candidate
            },
            report.changed(),
            report.skipped
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn write_report(
    out: &mut Box<dyn Write>,
    format: ReportFormat,
    report: &DiffReport,
) -> anyhow::Result<()> {
    match format {
        ReportFormat::Table => out.write_all(report.to_table().as_bytes())?,
        ReportFormat::Json => {
            serde_json::to_writer_pretty(&mut *out, report)?;
            out.write_all(b"\n")?;
        }
        ReportFormat::Html => out.write_all(report.to_html().as_bytes())?,
        ReportFormat::Changes | ReportFormat::Decisions => {}
    }
    out.flush()?;
    Ok(())
}

/// Decides the stored history again and compares with what was decided then. Reads page by
/// page and keeps only counts and a few samples, so memory stays constant however long the
/// history is; batches are decided on every core.
fn from_store(
    rulebook: &Rulebook,
    store_args: &StoreArgs,
    args: &ReplayArgs,
) -> anyhow::Result<ExitCode> {
    let since = args
        .since
        .as_deref()
        .map(|s| parse_since(rulebook, s, Utc::now()))
        .transpose()?;
    // A replay must not create an empty store where the user expected one.
    let store = open_existing(store_args)?;
    let mut progress = Progress::new(store.stats()?.messages);
    let mut out = create_output(args.output.as_deref())?;
    let mut report = DiffReport::new(&rulebook.version);
    let (batches, incoming) = mpsc::sync_channel(2);
    std::thread::scope(|scope| -> anyhow::Result<()> {
        // Reading history is the serial part of a replay, so the next batch is read on its own
        // thread while this one is decided. Two batches in flight keep memory flat.
        let store = &store;
        scope.spawn(move || {
            let mut history = store::history(&**store, since);
            loop {
                let batch: Result<Vec<StoredMessage>, _> = history.by_ref().take(BATCH).collect();
                let last = batch.as_ref().map_or(true, Vec::is_empty);
                if batches.send(batch).is_err() || last {
                    break;
                }
            }
        });
        // While the deciders work on one batch, this thread adds the one before to the report.
        let deciders = Deciders::start(scope, rulebook)?;
        let mut previous: Option<Arc<Vec<StoredMessage>>> = None;
        for batch in incoming {
            let batch = Arc::new(batch?);
            if batch.is_empty() {
                break;
            }
            deciders.submit(&batch);
            if let Some(done) = previous.replace(batch) {
                let decisions = deciders.collect(done.len());
                replay_batch(&done, decisions, &mut report, args.report, &mut out)?;
                progress.show(report.compared);
            }
        }
        if let Some(done) = previous {
            let decisions = deciders.collect(done.len());
            replay_batch(&done, decisions, &mut report, args.report, &mut out)?;
        }
        Ok(())
    })?;
    progress.finish();
    write_report(&mut out, args.report, &report)?;
    if !matches!(args.report, ReportFormat::Table) {
        eprintln!(
            "replayed {} stored messages with rulebook {}; {} decisions would change",
            report.compared,
            rulebook.version,
            report.changed()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Adds one batch of stored history, decided again, to the report (and the output, for the
/// line-per-message formats).
fn replay_batch(
    batch: &[StoredMessage],
    decisions: Vec<Decision>,
    report: &mut DiffReport,
    format: ReportFormat,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    for (stored, decision) in batch.iter().zip(decisions) {
        let changed = report.add(&stored.message, &stored.decision, &decision);
        match (format, changed) {
            (ReportFormat::Decisions, _) => {
                serde_json::to_writer(&mut *out, &DecisionRecord::from(&decision))?;
                out.write_all(b"\n")?;
            }
            (ReportFormat::Changes, Some(changed)) => {
                serde_json::to_writer(&mut *out, &changed)?;
                out.write_all(b"\n")?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// Messages read and decided per batch: large enough to keep every core busy, small enough
/// to keep memory flat.
const BATCH: usize = 4096;

/// A share of a batch for one decider.
type Share = (Arc<Vec<StoredMessage>>, Range<usize>);

/// One decider thread per core for the whole replay, each deciding its share of every batch.
/// (Threads started per batch cost more than they saved: each new thread takes fresh memory
/// from the allocator, which the kernel must zero first.)
struct Deciders {
    workers: Vec<(mpsc::Sender<Share>, mpsc::Receiver<Vec<Decision>>)>,
}

impl Deciders {
    fn start<'scope>(
        scope: &'scope Scope<'scope, '_>,
        rulebook: &'scope Rulebook,
    ) -> anyhow::Result<Self> {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let workers = (0..threads)
            .map(|_| {
                let (jobs, shares) = mpsc::channel::<Share>();
                let (done, results) = mpsc::channel();
                // The rulebook's scripts need their stack (DECIDE_STACK_BYTES).
                std::thread::Builder::new()
                    .stack_size(webcare_engine::script::DECIDE_STACK_BYTES)
                    .spawn_scoped(scope, move || {
                        for (batch, range) in shares {
                            if done.send(decide(rulebook, &batch[range])).is_err() {
                                break;
                            }
                        }
                    })
                    .map_err(|e| anyhow::anyhow!("cannot start a deciding thread: {e}"))?;
                Ok((jobs, results))
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Deciders { workers })
    }

    /// Hands out `batch` to be decided with the facts each message was first decided with.
    fn submit(&self, batch: &Arc<Vec<StoredMessage>>) {
        let share = batch.len().div_ceil(self.workers.len());
        for (i, (jobs, _)) in self.workers.iter().enumerate() {
            let start = (i * share).min(batch.len());
            let end = (start + share).min(batch.len());
            jobs.send((Arc::clone(batch), start..end))
                .expect("a decider thread stopped");
        }
    }

    /// The decisions of the oldest batch submitted and not collected yet, in its order.
    fn collect(&self, len: usize) -> Vec<Decision> {
        let mut decisions = Vec::with_capacity(len);
        for (_, results) in &self.workers {
            decisions.extend(results.recv().expect("a decider thread stopped"));
        }
        decisions
    }
}

fn decide(rulebook: &Rulebook, messages: &[StoredMessage]) -> Vec<Decision> {
    messages
        .iter()
        .map(|stored| {
            let context = DecideContext {
                conversation: stored.facts.clone(),
                crisis_mode: None,
            };
            satisfaction::replay(rulebook, &stored.message, &stored.decision, &context)
        })
        .collect()
}

/// A progress line on stderr for long replays, only when stderr is a terminal.
struct Progress {
    total: u64,
    enabled: bool,
    last: std::time::Instant,
}

impl Progress {
    fn new(total: u64) -> Self {
        Progress {
            total,
            enabled: std::io::stderr().is_terminal() && total > 10_000,
            last: std::time::Instant::now(),
        }
    }

    fn show(&mut self, done: u64) {
        if !self.enabled || self.last.elapsed() < std::time::Duration::from_millis(200) {
            return;
        }
        self.last = std::time::Instant::now();
        let share = done as f64 / self.total.max(1) as f64;
        let filled = (share * 30.0).round().clamp(0.0, 30.0) as usize;
        eprint!(
            "\r[{}{}] {done}/{} messages",
            "#".repeat(filled),
            " ".repeat(30 - filled),
            self.total
        );
    }

    fn finish(&self) {
        if self.enabled {
            eprintln!();
        }
    }
}

/// `7d`, `24h`, `90m`, `30s` back from `now`; `None` when `text` is not a span at all.
fn parse_span(text: &str, now: DateTime<Utc>) -> Option<anyhow::Result<DateTime<Utc>>> {
    let text = text.trim();
    let unit = text.chars().last()?;
    let amount = text[..text.len() - unit.len_utf8()].parse::<i64>().ok()?;
    let span = match unit {
        'd' => chrono::Duration::days(amount),
        'h' => chrono::Duration::hours(amount),
        'm' => chrono::Duration::minutes(amount),
        's' => chrono::Duration::seconds(amount),
        _ => {
            return Some(Err(anyhow!(
                "`--since {text}`: use d, h, m or s after the number, like `7d`"
            )));
        }
    };
    Some(Ok(now - span))
}

/// `7d`, `24h`, `90m`, `30s` back from `now`; a local date or time; or RFC 3339.
fn parse_since(
    rulebook: &Rulebook,
    text: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<DateTime<Utc>> {
    let text = text.trim();
    if let Some(span) = parse_span(text, now) {
        return span;
    }
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return date
            .and_hms_opt(0, 0, 0)
            .and_then(|midnight| {
                rulebook
                    .teams()
                    .timezone
                    .from_local_datetime(&midnight)
                    .earliest()
            })
            .map(|t| t.with_timezone(&Utc))
            .ok_or_else(|| anyhow!("`--since {text}` is not a date in the rulebook's time zone"));
    }
    super::parse_at(rulebook, Some(text)).map_err(|_| {
        anyhow!("`--since {text}` is not a span (`7d`), a date (`2026-11-01`) or a time (`2026-11-01 08:00`)")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_accepts_spans_dates_and_times() -> anyhow::Result<()> {
        let rulebook = super::super::load_rulebook(None)?;
        let now = Utc
            .with_ymd_and_hms(2026, 11, 23, 12, 0, 0)
            .single()
            .context("time")?;
        assert_eq!(
            parse_since(&rulebook, "7d", now)?,
            now - chrono::Duration::days(7)
        );
        assert_eq!(
            parse_since(&rulebook, "90m", now)?,
            now - chrono::Duration::minutes(90)
        );
        // Midnight in Amsterdam is 23:00 UTC the day before, in winter.
        let date = parse_since(&rulebook, "2026-11-01", now)?;
        assert_eq!(
            date,
            Utc.with_ymd_and_hms(2026, 10, 31, 23, 0, 0)
                .single()
                .context("time")?
        );
        assert!(parse_since(&rulebook, "2026-11-01T00:00:00Z", now).is_ok());
        assert!(parse_since(&rulebook, "7w", now).is_err());
        assert!(parse_since(&rulebook, "last tuesday", now).is_err());
        Ok(())
    }
}
