//! `webcare ingest`: messages from a JSON Lines file or stdin into the store, each decided and
//! stored durably. It is the batch and pipe form of what an adapter does, and the command the
//! crash test drives: `ack <id> <action>` is printed (and flushed) only after the message, its
//! decision, escalation and outbox entry are on disk, so every line on stdout is a promise.
//!
//! Messages are spread over worker threads by conversation: one conversation's messages stay in
//! order on one worker (its counters depend on that), while different conversations are decided
//! in parallel and share the store's group commits. A file is not a crowd of callers: each worker
//! commits what queued up for it in one transaction ([`Intake::accept_batch`]), and acknowledges
//! those messages after that commit.

use std::collections::hash_map::DefaultHasher;
use std::fmt::Write as _;
use std::fs::File;
use std::hash::{Hash, Hasher};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, mpsc};
use std::time::Instant;

use anyhow::Context;
use chrono::Utc;
use clap::Args;
use webcare_adapters::jsonl::JsonlReader;
use webcare_engine::{Inbound, Intake, Rulebook, Store, store};

use crate::config::StoreArgs;

#[derive(Args)]
pub struct IngestArgs {
    /// JSON Lines file, one message per line (`-` reads stdin). Only `text` is required; give
    /// `id` and `channel` so a repeated delivery is recognised.
    #[arg(long, value_name = "FILE.jsonl")]
    input: PathBuf,
    /// Time for lines without `received_at`, local (`2026-11-23 10:00`) or RFC 3339; default now.
    #[arg(long)]
    at: Option<String>,
    /// Worker threads; conversations are spread over them.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
    workers: u16,
}

pub fn run(
    rules: Option<&Path>,
    store_args: &StoreArgs,
    args: IngestArgs,
) -> anyhow::Result<ExitCode> {
    let rulebook = super::load_rulebook(rules)?;
    let default_time = super::parse_at(&rulebook, args.at.as_deref())?;
    let (store, config) = super::open_store(store_args)?;
    apply_retention(&*store, config.retention_days)?;
    // Every decision names its rulebook version; the store keeps that version's files, so any
    // decision can be explained later with exactly the rules that made it.
    store::save_rulebook(&*store, &rulebook, "ingest", Utc::now())?;
    let input: Box<dyn BufRead + Send> = if args.input.as_os_str() == "-" {
        Box::new(BufReader::new(std::io::stdin()))
    } else {
        let file = File::open(&args.input)
            .with_context(|| format!("cannot open `{}`", args.input.display()))?;
        Box::new(BufReader::new(file))
    };

    let failed = AtomicBool::new(false);
    let first_error: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    let stdout = Mutex::new(std::io::stdout());
    let (mut accepted, mut duplicates, mut skipped) = (0usize, 0usize, 0usize);
    // The rate counts from the first line read to the last acknowledgement: loading the
    // rulebook and opening the store come before and take the same time for any file.
    let mut started: Option<Instant> = None;
    let mut conflicts = 0usize;
    // With redaction the stored text differs from the input by design: no comparison.
    let compare = !config.options.redact;
    std::thread::scope(|scope| {
        let (done_tx, done_rx) = mpsc::channel::<Done>();
        let mut workers = Vec::new();
        for _ in 0..args.workers {
            // Bounded, so a fast reader cannot queue the whole file in memory; as deep as a
            // batch, so a worker's next commit can take a full batch.
            let (tx, rx) = mpsc::sync_channel::<Inbound>(BATCH);
            workers.push(tx);
            let (rulebook, store, failed, first_error, stdout, done_tx) = (
                &rulebook,
                &store,
                &failed,
                &first_error,
                &stdout,
                done_tx.clone(),
            );
            // Deciding runs the rulebook's scripts, which need their stack (DECIDE_STACK_BYTES).
            let spawned = std::thread::Builder::new()
                .stack_size(webcare_engine::script::DECIDE_STACK_BYTES)
                .spawn_scoped(scope, move || {
                    worker(
                        rulebook,
                        &**store,
                        rx,
                        failed,
                        first_error,
                        stdout,
                        done_tx,
                        compare,
                    )
                });
            if let Err(error) = spawned {
                failed.store(true, Ordering::Relaxed);
                if let Ok(mut first) = first_error.lock() {
                    first.get_or_insert(anyhow::anyhow!("cannot start a deciding thread: {error}"));
                }
            }
        }
        drop(done_tx);
        for message in JsonlReader::new(input, default_time) {
            started.get_or_insert_with(Instant::now);
            if failed.load(Ordering::Relaxed) {
                break;
            }
            match message {
                Ok(message) => {
                    let mut hasher = DefaultHasher::new();
                    (message.channel, &message.conversation).hash(&mut hasher);
                    let index = (hasher.finish() % workers.len() as u64) as usize;
                    if workers[index].send(message).is_err() {
                        break;
                    }
                }
                Err(error) => {
                    eprintln!("{}: {error}", args.input.display());
                    skipped += 1;
                }
            }
        }
        // Closing the queues lets the workers finish what they have and stop.
        drop(workers);
        for done in done_rx {
            accepted += done.acknowledged;
            duplicates += done.duplicates;
            conflicts += done.conflicts;
        }
    });
    if let Some(error) = first_error.into_inner().ok().flatten() {
        return Err(error.context(format!(
            "ingest stopped after {accepted} acknowledged messages; the rest was not stored"
        )));
    }
    let seconds = started.map_or(0.0, |t| t.elapsed().as_secs_f64());
    let rate = if seconds > 0.0 {
        format!(", {:.0} messages/s", accepted as f64 / seconds)
    } else {
        String::new()
    };
    eprintln!(
        "ingested {accepted} messages in {seconds:.2} s{rate} with rulebook {} ({duplicates} duplicates, {skipped} lines skipped{})",
        rulebook.version,
        if conflicts > 0 {
            format!(
                ", {conflicts} conflicts: ids taken in before with a different text, which kept the first text"
            )
        } else {
            String::new()
        }
    );
    Ok(if skipped == 0 && conflicts == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// One acknowledged batch, for the summary.
struct Done {
    acknowledged: usize,
    duplicates: usize,
    /// Repeats of an id whose stored text differs: the platform reused an id, or the file
    /// was edited; the first text stays and this is reported.
    conflicts: usize,
}

/// A text's fingerprint, kept instead of a copy of the text: only a repeated delivery's text
/// is compared with the stored one, and a batch's texts would otherwise all be copied for it.
fn fingerprint(text: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    text.hash(&mut hasher);
    hasher.finish()
}

#[allow(clippy::too_many_arguments)] // the scoped thread's shared state, passed by reference
fn worker(
    rulebook: &Rulebook,
    store: &dyn Store,
    queue: mpsc::Receiver<Inbound>,
    failed: &AtomicBool,
    first_error: &Mutex<Option<anyhow::Error>>,
    stdout: &Mutex<std::io::Stdout>,
    done: mpsc::Sender<Done>,
    compare: bool,
) {
    let intake = Intake::new(rulebook, store);
    // What queued up while the last batch was committed goes into the next one: one durable
    // commit for many messages instead of one each, and each ack still only after its commit.
    while let Ok(first) = queue.recv() {
        let mut batch = Vec::with_capacity(BATCH);
        batch.push(first);
        while batch.len() < BATCH {
            match queue.try_recv() {
                Ok(message) => batch.push(message),
                Err(_) => break,
            }
        }
        if failed.load(Ordering::Relaxed) {
            return;
        }
        let ids: Vec<String> = batch.iter().map(|m| m.id.clone()).collect();
        let inputs: Vec<(webcare_engine::ChannelKind, u64)> = batch
            .iter()
            .map(|m| (m.channel, fingerprint(&m.text)))
            .collect();
        let receipts = match intake.accept_batch(batch, Utc::now()) {
            Ok(receipts) => receipts,
            Err(error) => {
                failed.store(true, Ordering::Relaxed);
                if let Ok(mut slot) = first_error.lock()
                    && slot.is_none()
                {
                    let first = ids.first().map(String::as_str).unwrap_or_default();
                    *slot = Some(
                        anyhow::Error::new(error)
                            .context(format!("the batch from message `{first}` on")),
                    );
                }
                return;
            }
        };
        let mut lines = String::with_capacity(receipts.len() * 32);
        for (id, receipt) in ids.iter().zip(&receipts) {
            let duplicate = if receipt.duplicate { " duplicate" } else { "" };
            let action = receipt.decision.action.name();
            // Writing into a String cannot fail.
            let _ = writeln!(lines, "ack {id} {action}{duplicate}");
        }
        // The lines go out, whole and flushed, only now that the store said durable.
        let written = stdout
            .lock()
            .map(|mut out| out.write_all(lines.as_bytes()).and_then(|()| out.flush()));
        if !matches!(written, Ok(Ok(()))) {
            // Nobody is listening any more (a closed pipe); stop quietly.
            failed.store(true, Ordering::Relaxed);
            return;
        }
        let mut tally = Done {
            acknowledged: receipts.len(),
            duplicates: 0,
            conflicts: 0,
        };
        for ((id, (channel, text)), receipt) in ids.iter().zip(&inputs).zip(&receipts) {
            if !receipt.duplicate {
                continue;
            }
            tally.duplicates += 1;
            let conflict = compare
                && store
                    .message(*channel, id)
                    .ok()
                    .flatten()
                    .is_some_and(|stored| fingerprint(&stored.message.text) != *text);
            if conflict {
                tally.conflicts += 1;
                eprintln!(
                    "conflict: message `{id}` on {channel} was taken in before with a different text; the first text stays"
                );
            }
        }
        let _ = done.send(tally);
    }
}

/// The most messages one worker commits at once; bounds a commit's size, the memory it holds
/// (at most about 1.1 GB in all on a 1,000,000-message desk history with 4 workers, 190 MB more
/// than at 16,384) and the acks it holds back. A commit rewrites every B-tree page it touches,
/// and a batch's messages touch pages of the dedupe, conversation and escalation tables all
/// over, so a bigger batch writes fewer pages per message; a batch may hold several messages of
/// a conversation, so a long history is taken in with a fraction of the commits of 4,096
/// (BENCHMARKS.md, "Ingest in batches" and "Session 29").
const BATCH: usize = 32768;

/// Retention, when configured: run at the start of an ingest, before anything new is stored.
pub fn apply_retention(store: &dyn Store, days: Option<u32>) -> anyhow::Result<()> {
    let Some(days) = days else {
        return Ok(());
    };
    let now = Utc::now();
    let report = store.purge_before(
        now - chrono::Duration::days(i64::from(days)),
        "retention",
        now,
    )?;
    if report.messages + report.conversations + report.outbox > 0 {
        eprintln!(
            "retention ({days} days): deleted {} messages, {} conversations, {} escalations, {} outbox entries",
            report.messages, report.conversations, report.escalations, report.outbox
        );
    }
    Ok(())
}
