//! Store benchmark (issue 3): durable intakes per second (decide + one durable transaction with
//! message, decision, conversation, escalation and outbox), one writer at a time and with many
//! concurrent callers sharing group commits, on both backends; then the on-disk size per
//! message against the raw JSON of the same messages.
//!
//! `cargo bench -p webcare-engine --bench store`. The size report runs first and prints
//! plain lines: intakes/s from 256 callers filling a fresh store, the CPU each intake took (all
//! threads, and the writer thread alone, from `/proc`: a figure the other processes on a shared
//! machine disturb less than throughput), the file length and the bytes allocated on disk (redb
//! grows its file ahead in holes that take no disk), the same after every reply was sent, and
//! redb's tables one by one.
//!
//! - `WEBCARE_BENCH_SIZE_MESSAGES`: how many messages the size report stores (default 100 000).
//! - `WEBCARE_BENCH_BACKEND=redb|sled|postgres`: one backend only (postgres: the database in
//!   `WEBCARE_STORE_URL`; use an empty one per run, since the data directory does not apply).
//! - `WEBCARE_BENCH_INSTANCES=N` (postgres): the 256 callers spread over N stores on the one
//!   database, each with its own connection pool, as N `webcare run` processes would be.
//! - `WEBCARE_BENCH_BREAKDOWN=1` (`WEBCARE_BENCH_THREADS`): deciding alone, storing alone, and
//!   the read before deciding.
//! - `WEBCARE_BENCH_TALLY=1`: redb's tables for 20 000 messages.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use criterion::{Criterion, Throughput};
use webcare_engine::store::{self, Backend, StoreOptions};
use webcare_engine::{ChannelKind, Inbound, Intake, Rulebook, Store};

const TEXTS: [&str; 16] = [
    "Wat zijn de openingstijden van het stadskantoor?",
    "Er is brand in de flat aan de Dorpsstraat!",
    "Ik heb een klacht over de afvalinzameling, de container is weer niet geleegd",
    "Bedankt voor de snelle hulp!",
    "I lost my passport, how do I get a new one?",
    "Hoe vraag ik een parkeervergunning aan?",
    "De lantaarnpaal in onze straat is kapot, kan iemand ernaar kijken?",
    "Wanneer wordt het grofvuil opgehaald in mijn wijk?",
    "Ik ga verhuizen, hoe geef ik mijn nieuwe adres door?",
    "Waarom is de weg bij het station afgesloten?",
    "Mijn paspoort verloopt volgende maand, moet ik een afspraak maken?",
    "Er ligt al een week zwerfvuil bij het speelveld",
    "Hoe hoog is de afvalstoffenheffing dit jaar?",
    "Geweldig evenement gisteren in het park, dank jullie wel",
    "Ik wil bezwaar maken tegen mijn aanslag",
    "Kan ik subsidie krijgen voor zonnepanelen?",
];

fn rulebook() -> &'static Rulebook {
    static RULEBOOK: std::sync::OnceLock<Rulebook> = std::sync::OnceLock::new();
    RULEBOOK.get_or_init(|| match Rulebook::embedded() {
        Ok(rulebook) => rulebook,
        Err(errors) => panic!("the embedded rulebook does not load: {errors}"),
    })
}

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 9, 0, 0)
        .single()
        .unwrap_or_default()
}

/// Message `n`: 5 000 conversations, realistic texts, one second apart.
fn message(n: u64) -> Inbound {
    let mut m = Inbound::from_text(
        format!("{n:012}"),
        ChannelKind::Telegram,
        TEXTS[(n % TEXTS.len() as u64) as usize],
        start() + chrono::Duration::seconds(n as i64),
    );
    m.conversation = format!("chat-{}", n % 5000);
    m.author = format!("user-{}", n % 5000);
    m
}

/// Both embedded backends, or the one `WEBCARE_BENCH_BACKEND` names (`postgres` with its
/// database in `WEBCARE_STORE_URL`).
fn backends() -> Vec<Backend> {
    match std::env::var("WEBCARE_BENCH_BACKEND") {
        Ok(name) => vec![name.parse().unwrap_or_else(|e| panic!("{e}"))],
        Err(_) => vec![Backend::Redb, Backend::Sled],
    }
}

fn open(backend: Backend, dir: &std::path::Path) -> Arc<dyn Store> {
    match store::open(&StoreOptions {
        backend,
        data_dir: dir.to_owned(),
        redact: false,
        cache_bytes: None,
        url: std::env::var("WEBCARE_STORE_URL")
            .ok()
            .map(store::postgres::PgUrl::new),
    }) {
        Ok(store) => store,
        Err(e) => panic!("{e}"),
    }
}

/// Runs `count` intakes from `threads` threads, taking message numbers from `next`.
fn intake_many(store: &dyn Store, threads: usize, count: u64, next: &AtomicU64) -> Duration {
    let end = next.load(Ordering::Relaxed) + count;
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                let intake = Intake::new(rulebook(), store);
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= end {
                        break;
                    }
                    let m = message(n);
                    let now = m.received_at;
                    if let Err(e) = intake.accept(m, now) {
                        panic!("intake failed: {e}");
                    }
                }
            });
        }
    });
    let elapsed = started.elapsed();
    // Threads that overshot took numbers that were never used; start the next run after them.
    next.store(next.load(Ordering::Relaxed).max(end), Ordering::Relaxed);
    elapsed
}

fn size_report() {
    let count: u64 = std::env::var("WEBCARE_BENCH_SIZE_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let raw: u64 = (0..count)
        .map(|n| {
            let m = message(n);
            let line = serde_json::json!({
                "id": m.id,
                "channel": m.channel,
                "conversation": m.conversation,
                "author": m.author,
                "text": m.text,
                "received_at": m.received_at,
            });
            line.to_string().len() as u64 + 1
        })
        .sum();
    println!(
        "size: {count} messages, raw JSON Lines {raw} bytes ({:.0} bytes/message)",
        raw as f64 / count as f64
    );
    let per_message = |bytes: u64| {
        format!(
            "{bytes} bytes = {:.0} bytes/message, {:.2}x raw JSON, {:.2} GB per million messages",
            bytes as f64 / count as f64,
            bytes as f64 / raw as f64,
            bytes as f64 / count as f64 * 1e6 / 1e9,
        )
    };
    for backend in backends() {
        let dir = match tempfile::tempdir() {
            Ok(dir) => dir,
            Err(e) => panic!("{e}"),
        };
        let store = open(backend, dir.path());
        let instances: usize = std::env::var("WEBCARE_BENCH_INSTANCES")
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|_| backend == Backend::Postgres)
            .unwrap_or(1)
            .max(1);
        let others: Vec<Arc<dyn Store>> =
            (1..instances).map(|_| open(backend, dir.path())).collect();
        let next = AtomicU64::new(0);
        let cpu_before = cpu_times();
        let took = if others.is_empty() {
            intake_many(&*store, 256, count, &next)
        } else {
            println!(
                "size: {backend}: {instances} instances, {} callers each",
                256 / instances
            );
            let started = Instant::now();
            std::thread::scope(|scope| {
                for instance in std::iter::once(&store).chain(&others) {
                    let next = &next;
                    scope.spawn(move || intake_many(&**instance, 256 / instances, count, next));
                }
            });
            started.elapsed()
        };
        drop(others);
        let cpu_after = cpu_times();
        let per = |a: f64, b: f64| (b - a) * 1e6 / count as f64;
        let (all, writer) = (
            per(cpu_before.0, cpu_after.0),
            per(cpu_before.1, cpu_after.1),
        );
        // On a quiet machine with `cores` cores, intake cannot go faster than the CPU it needs
        // allows, nor faster than the writer thread alone allows.
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        println!(
            "size: {backend}: CPU per intake {all:.0} µs ({writer:.0} µs in the writer thread): at most {:.0}/s on {cores} idle cores",
            (cores * 1e6 / all).min(1e6 / writer)
        );
        let stats = match store.stats() {
            Ok(stats) => stats,
            Err(e) => panic!("{e}"),
        };
        println!(
            "size: {backend}: {} messages in {:.1} s ({:.0}/s), {} replies pending",
            stats.messages,
            took.as_secs_f64(),
            count as f64 / took.as_secs_f64(),
            stats.pending_outbox,
        );
        println!(
            "size: {backend}: file length {}",
            per_message(dir_size(dir.path()))
        );
        println!(
            "size: {backend}: allocated on disk {}",
            per_message(allocated(dir.path()))
        );
        // A running service sends its replies within seconds; the entries then hold their
        // sent state instead.
        let sent = send_all(&*store);
        drop(store);
        println!(
            "size: {backend}: after sending all {sent} replies: file length {}",
            per_message(dir_size(dir.path())),
        );
        println!(
            "size: {backend}: after sending all {sent} replies: allocated on disk {}",
            per_message(allocated(dir.path()))
        );
        match backend {
            Backend::Redb => redb_breakdown(&dir.path().join("webcare.redb"), count),
            Backend::Sled => {
                let files = files_in(&dir.path().join("sled"));
                println!("size: sled files: {files}");
            }
            // On the server: the stats' `size_on_disk` is the database's size.
            Backend::Postgres => {}
        }
    }
}

/// Marks every pending reply sent, from many threads (so in group commits).
fn send_all(store: &dyn Store) -> usize {
    let far = start() + chrono::Duration::days(3650);
    let pending = store
        .due_outbox(far, usize::MAX)
        .unwrap_or_else(|e| panic!("{e}"));
    let ids: Vec<u64> = pending.iter().map(|e| e.id).collect();
    let next = AtomicU64::new(0);
    std::thread::scope(|scope| {
        for _ in 0..256 {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                    let Some(id) = ids.get(i) else {
                        break;
                    };
                    if let Err(e) = store.outbox_sent(*id, far) {
                        panic!("{e}");
                    }
                }
            });
        }
    });
    ids.len()
}

/// What redb's B-trees hold, per table: entries, key and value bytes, and the pages' unused
/// space; then the whole file's pages.
fn redb_breakdown(path: &std::path::Path, count: u64) {
    use redb::{ReadableDatabase, ReadableTableMetadata, TableHandle};
    let db = redb::Database::open(path).unwrap_or_else(|e| panic!("{e}"));
    let txn = db.begin_read().unwrap_or_else(|e| panic!("{e}"));
    let per = |b: u64| b as f64 / count as f64;
    for handle in txn.list_tables().unwrap_or_else(|e| panic!("{e}")) {
        let name = handle.name().to_owned();
        let table = txn
            .open_untyped_table(handle)
            .unwrap_or_else(|e| panic!("{e}"));
        let stats = table.stats().unwrap_or_else(|e| panic!("{e}"));
        println!(
            "size: redb table {name}: {} entries; per message {:.1} bytes stored, {:.1} metadata, {:.1} unused in its pages ({} leaf + {} branch pages)",
            table.len().unwrap_or_else(|e| panic!("{e}")),
            per(stats.stored_bytes()),
            per(stats.metadata_bytes()),
            per(stats.fragmented_bytes()),
            stats.leaf_pages(),
            stats.branch_pages(),
        );
    }
    drop(txn);
    let write = db.begin_write().unwrap_or_else(|e| panic!("{e}"));
    let stats = write.stats().unwrap_or_else(|e| panic!("{e}"));
    println!(
        "size: redb file: {} pages allocated ({:.0} bytes/message); B-trees {:.0} stored + {:.0} metadata + {:.0} unused bytes/message",
        stats.allocated_pages(),
        per(stats.allocated_pages() * stats.page_size() as u64),
        per(stats.stored_bytes()),
        per(stats.metadata_bytes()),
        per(stats.fragmented_bytes()),
    );
    write.abort().unwrap_or_else(|e| panic!("{e}"));
}

/// CPU seconds used so far by this process, and by the store's writer thread(s), from
/// `/proc` (Linux; zeros elsewhere).
fn cpu_times() -> (f64, f64) {
    // Clock ticks per second; 100 on every Linux this runs on.
    const TICKS: f64 = 100.0;
    fn ticks(stat: &str) -> f64 {
        // Fields after the command (which may contain spaces) start after the last `)`.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        let utime: f64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0);
        let stime: f64 = fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
        (utime + stime) / TICKS
    }
    let all = std::fs::read_to_string("/proc/self/stat")
        .map(|s| ticks(&s))
        .unwrap_or(0.0);
    let mut writer = 0.0;
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        for task in tasks.flatten() {
            let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            if comm.starts_with("webcare-store") {
                writer += std::fs::read_to_string(task.path().join("stat"))
                    .map(|s| ticks(&s))
                    .unwrap_or(0.0);
            }
        }
    }
    (all, writer)
}

/// Every file under `dir` with its length, for seeing where sled's bytes are.
fn files_in(dir: &std::path::Path) -> String {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            match entry.metadata() {
                Ok(m) if m.is_dir() => stack.push(entry.path()),
                Ok(m) => out.push(format!(
                    "{} {}",
                    entry
                        .path()
                        .strip_prefix(dir)
                        .unwrap_or(&entry.path())
                        .display(),
                    m.len()
                )),
                Err(_) => {}
            }
        }
    }
    out.sort();
    out.join(", ")
}

/// Bytes the files take on disk (a file's length may include holes that take none).
fn allocated(path: &std::path::Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => allocated(&e.path()),
            Ok(m) => m.blocks() * 512,
            Err(_) => 0,
        })
        .sum()
}

/// What the bytes are, on a small store: redb's tables one by one.
fn tally() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let store = open(Backend::Redb, dir.path());
    let next = AtomicU64::new(0);
    intake_many(&*store, 64, 20_000, &next);
    drop(store);
    redb_breakdown(&dir.path().join("webcare.redb"), 20_000);
}

/// Where the time goes: deciding alone, and storing alone (decisions made beforehand).
fn breakdown() {
    let n = 20_000u64;
    let messages: Vec<Inbound> = (0..n).map(message).collect();
    let started = Instant::now();
    let decisions: Vec<_> = messages
        .iter()
        .map(|m| rulebook().decide(m, &Default::default()))
        .collect();
    let decide = started.elapsed();
    println!(
        "breakdown: decide {:.1} µs/message on one thread",
        decide.as_secs_f64() * 1e6 / n as f64
    );
    for backend in backends() {
        let dir = match tempfile::tempdir() {
            Ok(dir) => dir,
            Err(e) => panic!("{e}"),
        };
        let store = open(backend, dir.path());
        let next = AtomicU64::new(0);
        let threads: usize = std::env::var("WEBCARE_BENCH_THREADS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(16);
        let started = Instant::now();
        let cpu_before = cpu_times();
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= n {
                            break;
                        }
                        let m = messages[i as usize].clone();
                        let record = store::IntakeRecord {
                            today: m.received_at.date_naive(),
                            now: m.received_at,
                            decision: decisions[i as usize].clone(),
                            facts: Default::default(),
                            sla_deadline: None,
                            message: m,
                            mode: Default::default(),
                            shadow: None,
                            reply_inline: false,
                            case: Default::default(),
                        };
                        if let Err(e) = store.record_intake(record) {
                            panic!("{e}");
                        }
                    }
                });
            }
        });
        let took = started.elapsed();
        let cpu_after = cpu_times();
        println!(
            "breakdown: {backend}: store only, {threads} threads: {:.0}/s, CPU per intake {:.0} µs ({:.0} µs in the writer)",
            n as f64 / took.as_secs_f64(),
            (cpu_after.0 - cpu_before.0) * 1e6 / n as f64,
            (cpu_after.1 - cpu_before.1) * 1e6 / n as f64,
        );
        // What intake reads before deciding, on one thread: new ids, existing conversations.
        let started = Instant::now();
        for i in 0..n {
            let m = message(n + i);
            let today = m.received_at.date_naive();
            if let Err(e) =
                store.intake_lookup(m.channel, &m.id, &m.conversation, m.received_at, today)
            {
                panic!("{e}");
            }
        }
        println!(
            "breakdown: {backend}: lookup before deciding {:.1} µs/message on one thread",
            started.elapsed().as_secs_f64() * 1e6 / n as f64
        );
        // What a replay reads: all of history in time order, decoded.
        let started = Instant::now();
        let mut read = 0u64;
        for m in store::history(&*store, None) {
            m.unwrap_or_else(|e| panic!("{e}"));
            read += 1;
        }
        println!(
            "breakdown: {backend}: history read back at {:.0} messages/s ({read} messages)",
            read as f64 / started.elapsed().as_secs_f64()
        );
    }
}

fn dir_size(path: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

fn intake(c: &mut Criterion) {
    let mut group = c.benchmark_group("store/intake");
    group.throughput(Throughput::Elements(1));
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(2));
    group.measurement_time(Duration::from_secs(6));
    for backend in backends() {
        for (name, threads) in [
            ("single", 1),
            ("group-commit-16", 16),
            ("group-commit-256", 256),
        ] {
            let dir = match tempfile::tempdir() {
                Ok(dir) => dir,
                Err(e) => panic!("{e}"),
            };
            let store = open(backend, dir.path());
            let next = AtomicU64::new(0);
            group.bench_function(format!("{name}/{backend}"), |b| {
                b.iter_custom(|iters| intake_many(&*store, threads, iters, &next))
            });
        }
    }
    group.finish();
}

fn main() {
    // `cargo test --benches` runs benches once as a smoke test; the size report is too slow
    // for that and only means something in a release build.
    if std::env::args().any(|a| a == "--bench") {
        if std::env::var_os("WEBCARE_BENCH_TALLY").is_some() {
            tally();
            return;
        }
        if std::env::var_os("WEBCARE_BENCH_BREAKDOWN").is_some() {
            breakdown();
            return;
        }
        size_report();
    }
    let mut criterion = Criterion::default().configure_from_args();
    intake(&mut criterion);
    criterion.final_summary();
}
