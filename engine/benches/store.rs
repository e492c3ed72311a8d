//! Store benchmark (issue 3): durable intakes per second (decide + one durable transaction with
//! message, decision, conversation, escalation and outbox), one writer at a time and with many
//! concurrent callers sharing group commits, on both backends; then the on-disk size per
//! message against the raw JSON of the same messages.
//!
//! `cargo bench -p webcare-engine --bench store`. The size report runs first and prints
//! plain lines; `WEBCARE_BENCH_SIZE_MESSAGES` sets how many messages it stores (default
//! 100 000).

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

fn open(backend: Backend, dir: &std::path::Path) -> Arc<dyn Store> {
    match store::open(&StoreOptions {
        backend,
        data_dir: dir.to_owned(),
        redact: false,
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
    for backend in [Backend::Redb, Backend::Sled] {
        let dir = match tempfile::tempdir() {
            Ok(dir) => dir,
            Err(e) => panic!("{e}"),
        };
        let store = open(backend, dir.path());
        let next = AtomicU64::new(0);
        let took = intake_many(&*store, 256, count, &next);
        let stats = match store.stats() {
            Ok(stats) => stats,
            Err(e) => panic!("{e}"),
        };
        drop(store);
        let on_disk = dir_size(dir.path());
        // redb grows its file in regions, geometrically; what the data needs shows after a
        // compaction (which a long-running store converges to as freed pages are reused).
        let compacted = match backend {
            Backend::Redb => {
                let path = dir.path().join("webcare.redb");
                let mut db = redb::Database::open(&path).unwrap_or_else(|e| panic!("{e}"));
                let stats = {
                    let txn = db.begin_read().unwrap_or_else(|e| panic!("{e}"));
                    let table = txn
                        .open_table(redb::TableDefinition::<&[u8], &[u8]>::new("webcare"))
                        .unwrap_or_else(|e| panic!("{e}"));
                    redb::ReadableTableMetadata::stats(&table).unwrap_or_else(|e| panic!("{e}"))
                };
                while db.compact().unwrap_or_else(|e| panic!("{e}")) {}
                drop(db);
                println!(
                    "size: redb: B-tree holds {:.0} bytes/message of keys and values, {:.0} of metadata, {:.0} fragmented",
                    stats.stored_bytes() as f64 / count as f64,
                    stats.metadata_bytes() as f64 / count as f64,
                    stats.fragmented_bytes() as f64 / count as f64,
                );
                Some(dir_size(dir.path()))
            }
            Backend::Sled => None,
        };
        if let Some(compacted) = compacted {
            println!(
                "size: redb compacted: {compacted} bytes = {:.0} bytes/message, {:.2}x raw JSON, {:.2} GB per million messages",
                compacted as f64 / count as f64,
                compacted as f64 / raw as f64,
                compacted as f64 / count as f64 * 1e6 / 1e9,
            );
        }
        println!(
            "size: {backend}: {} messages in {:.1} s ({:.0}/s), {on_disk} bytes on disk = {:.0} bytes/message, {:.2}x raw JSON, {:.2} GB per million messages",
            stats.messages,
            took.as_secs_f64(),
            count as f64 / took.as_secs_f64(),
            on_disk as f64 / count as f64,
            on_disk as f64 / raw as f64,
            on_disk as f64 / count as f64 * 1e6 / 1e9,
        );
    }
}

/// What the bytes are: per record kind, count and key + value bytes (redb only).
fn tally() {
    use redb::ReadableTable;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let store = open(Backend::Redb, dir.path());
    let next = AtomicU64::new(0);
    intake_many(&*store, 64, 20_000, &next);
    drop(store);
    let db =
        redb::Database::open(dir.path().join("webcare.redb")).unwrap_or_else(|e| panic!("{e}"));
    let txn = db.begin_read().unwrap_or_else(|e| panic!("{e}"));
    let table = txn
        .open_table(redb::TableDefinition::<&[u8], &[u8]>::new("webcare"))
        .unwrap_or_else(|e| panic!("{e}"));
    let mut kinds = std::collections::BTreeMap::<u8, (u64, u64, u64)>::new();
    for entry in table.iter().unwrap_or_else(|e| panic!("{e}")) {
        let (k, v) = entry.unwrap_or_else(|e| panic!("{e}"));
        let slot = kinds.entry(k.value()[0]).or_default();
        slot.0 += 1;
        slot.1 += k.value().len() as u64;
        slot.2 += v.value().len() as u64;
    }
    for (kind, (count, keys, values)) in kinds {
        println!(
            "tally: `{}` {count} records, {:.0} key + {:.0} value bytes per message",
            kind as char,
            keys as f64 / 20_000.0,
            values as f64 / 20_000.0
        );
    }
    println!(
        "tally: file {} bytes/message",
        dir_size(dir.path()) / 20_000
    );
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
    for backend in [Backend::Redb, Backend::Sled] {
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
                        };
                        if let Err(e) = store.record_intake(record) {
                            panic!("{e}");
                        }
                    }
                });
            }
        });
        let took = started.elapsed();
        println!(
            "breakdown: {backend}: store only, {threads} threads: {:.0}/s",
            n as f64 / took.as_secs_f64()
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
    for backend in [Backend::Redb, Backend::Sled] {
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
