//! The e-mail channel's intake, in process: what one citizen's mail costs from its raw bytes
//! (as IMAP hands them over) to the durable commit. That is MIME parsing (a multipart mail
//! with a plain and an HTML part, and the quoted history of an earlier reply under it),
//! reducing it to what the citizen wrote, the decision, and the store's transaction. The IMAP
//! round trips are left out: they are the server's and the network's, one fetch per mail,
//! and dwarf all of this.
//!
//! Run with `cargo bench -p webcare-adapters --features email --bench email_intake` (figures go
//! in BENCHMARKS.md). `WEBCARE_BENCH_MESSAGES` (default 20000) and `WEBCARE_BENCH_CONCURRENCY`
//! (default 64) change the run.

#![allow(clippy::unwrap_used)] // Why: a benchmark fails loudly on any error, like a test.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use webcare_adapters::email::parse::to_inbound;
use webcare_adapters::gateway::Gateway;
use webcare_engine::store::{self, Backend, StoreOptions};
use webcare_engine::{Rulebook, Runtime};

const OWN: &str = "gemeente@voorbeeld.nl";
const WARMUP: usize = 2_000;
const SERIAL: usize = 1_000;
const CONVERSATIONS: usize = 2_000;

/// What citizens write by e-mail: longer than a chat, and mostly questions.
const TEXTS: [&str; 6] = [
    "Geachte heer, mevrouw,\r\n\r\nMijn paspoort verloopt in maart. Moet ik daarvoor een afspraak maken, en wat kost het?\r\n\r\nMet vriendelijke groet,\r\nAnn de Vries",
    "Goedemiddag,\r\n\r\nAl drie weken is de container in de Lindelaan niet geleegd. Wanneer komt de vuilniswagen weer?\r\n\r\nGroet, Piet",
    "Dear municipality,\r\n\r\nI moved to Voorbeeld last week. How do I register my new address?\r\n\r\nKind regards,\r\nJohn",
    "Beste,\r\n\r\nIk heb een klacht over de behandeling aan de balie gisteren. Ik werd drie keer doorgestuurd.\r\n\r\nM. Jansen",
    "Hallo,\r\n\r\nWanneer wordt het grofvuil bij ons opgehaald? We wonen op nummer 12.\r\n\r\nDank u wel",
    "Geachte heer, mevrouw,\r\n\r\nDe lantaarnpaal voor ons huis is al een week kapot. Kunt u die laten maken?\r\n\r\nVriendelijke groet",
];

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Mail `i` as an IMAP server hands it over: a reply in a thread, plain and HTML, with the
/// municipality's earlier answer quoted under it.
fn mail(i: usize) -> Vec<u8> {
    let customer = i % CONVERSATIONS;
    let text = TEXTS[i % TEXTS.len()];
    let html = text.replace("\r\n\r\n", "</p><p>").replace("\r\n", "<br>");
    format!(
        "From: Burger {customer} <burger{customer}@example.net>\r\n\
         To: Gemeente Voorbeeld <{OWN}>\r\n\
         Subject: Re: Uw vraag\r\n\
         Date: Mon, 23 Nov 2026 10:00:00 +0100\r\n\
         Message-ID: <bench{i}@example.net>\r\n\
         In-Reply-To: <answer{customer}@voorbeeld.nl>\r\n\
         References: <first{customer}@example.net> <answer{customer}@voorbeeld.nl>\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/alternative; boundary=\"b{i}\"\r\n\r\n\
         --b{i}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n\r\n\
         Op 20 nov. 2026 om 09:12 schreef Gemeente Voorbeeld <{OWN}>:\r\n\
         > Dank voor uw bericht. Een collega neemt contact met u op.\r\n\
         > Met vriendelijke groet, Gemeente Voorbeeld\r\n\r\n\
         --b{i}\r\nContent-Type: text/html; charset=utf-8\r\n\r\n\
         <html><body><p>{html}</p><blockquote>Dank voor uw bericht.</blockquote></body></html>\r\n\
         --b{i}--\r\n"
    )
    .into_bytes()
}

fn gateway(dir: &std::path::Path) -> Gateway {
    let store = store::open(&StoreOptions {
        backend: Backend::Redb,
        data_dir: dir.join("data"),
        redact: false,
        cache_bytes: None,
        url: None,
    })
    .unwrap();
    Gateway::new(Arc::new(Runtime::new(Rulebook::embedded().unwrap(), store)))
}

/// Takes in `mails` from `callers` concurrent tasks: parse, then intake. Messages per second
/// and the 99th percentile.
async fn run(gateway: &Gateway, mails: &[Vec<u8>], callers: usize) -> (f64, Duration) {
    let next = Arc::new(AtomicUsize::new(0));
    let mails = Arc::new(mails.to_vec());
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..callers {
        let (gateway, next, mails) = (gateway.clone(), Arc::clone(&next), Arc::clone(&mails));
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while let Some(raw) = mails.get(next.fetch_add(1, Ordering::Relaxed)) {
                let sent = Instant::now();
                let inbound = to_inbound(raw, OWN, "x").unwrap();
                gateway.accept(inbound).await.unwrap();
                latencies.push(sent.elapsed());
            }
            latencies
        }));
    }
    let mut latencies = Vec::with_capacity(mails.len());
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    let p99 = latencies[(latencies.len() * 99 / 100).min(latencies.len() - 1)];
    (latencies.len() as f64 / elapsed.as_secs_f64(), p99)
}

fn main() {
    let total = env("WEBCARE_BENCH_MESSAGES", 20_000);
    let callers = env("WEBCARE_BENCH_CONCURRENCY", 64).max(1);
    let mails: Vec<Vec<u8>> = (0..WARMUP + SERIAL + total).map(mail).collect();

    // Parsing and reducing alone, without a store.
    let started = Instant::now();
    for raw in &mails {
        std::hint::black_box(to_inbound(raw, OWN, "x").unwrap());
    }
    let per_mail = started.elapsed() / mails.len() as u32;
    println!(
        "email parse + reduce         {:>8.1} µs/mail",
        per_mail.as_secs_f64() * 1e6
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let gateway = gateway(dir.path());
        run(&gateway, &mails[..WARMUP], callers).await;
        let (rate, p99) = run(&gateway, &mails[WARMUP..WARMUP + SERIAL], 1).await;
        println!(
            "email intake 1 caller        {rate:>8.0} msg/s  p99 {:>6.2} ms",
            p99.as_secs_f64() * 1e3
        );
        let (rate, p99) = run(&gateway, &mails[WARMUP + SERIAL..], callers).await;
        println!(
            "email intake {callers:>3} callers     {rate:>8.0} msg/s  p99 {:>6.2} ms",
            p99.as_secs_f64() * 1e3
        );
    });
}
