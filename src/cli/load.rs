//! `webcare load`: a bounded load generator for the HTTP channel, so the throughput and latency
//! figures in BENCHMARKS.md can be measured again by anyone with one command. It posts
//! realistic messages to `POST /api/v1/messages` from many concurrent connections and measures,
//! per message, the time from sending the request to having the decision (which the server
//! gives only after the durable commit).
//!
//! It is deliberately harmless: it only talks to loopback addresses (a load generator must
//! never be pointed at somebody else's server by a typo), and both the number of messages and
//! the running time are capped.

use std::net::{IpAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};

const MAX_MESSAGES: usize = 1_000_000;
const MAX_CONCURRENCY: usize = 1024;
const MAX_SECONDS: u64 = 600;

/// What citizens write, in the proportions a municipal desk sees them (mostly questions).
const TEXTS: [&str; 10] = [
    "Wat zijn de openingstijden van het stadskantoor?",
    "Hoe vraag ik een nieuw paspoort aan?",
    "Wanneer wordt het grofvuil opgehaald in mijn wijk?",
    "Hoe vraag ik een parkeervergunning aan?",
    "De lantaarnpaal in onze straat is al een week kapot",
    "I lost my passport, how do I get a new one?",
    "Ik heb een klacht over de afvalinzameling, al drie keer niet opgehaald",
    "Bedankt voor de snelle hulp met mijn melding!",
    "Wat kost een uittreksel uit de basisregistratie?",
    "qwerty asdf zxcv",
];

#[derive(Debug, clap::Args)]
pub struct LoadArgs {
    /// The webcare to load; loopback addresses only.
    #[arg(long, default_value = "http://127.0.0.1:8080", value_name = "URL")]
    target: String,
    /// Messages to send (at most 1 000 000).
    #[arg(long, default_value_t = 20_000)]
    messages: usize,
    /// Requests in flight at once (at most 1024).
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Stop after this many seconds even if not all messages were sent (at most 600).
    #[arg(long, default_value_t = 60)]
    max_seconds: u64,
    /// Distinct conversations the messages are spread over.
    #[arg(long, default_value_t = 2_000)]
    conversations: usize,
    /// Messages sent first and left out of the figures (connections, caches, file growth).
    #[arg(long, default_value_t = 2_000)]
    warmup: usize,
}

/// Refuses anything that does not resolve to loopback addresses only.
fn loopback_only(target: &str) -> anyhow::Result<String> {
    let rest = target
        .strip_prefix("http://")
        .ok_or_else(|| anyhow!("`--target {target}`: only http:// on a loopback address"))?;
    let authority = rest.split('/').next().unwrap_or_default();
    let with_port = if authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    let addrs: Vec<IpAddr> = with_port
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve `{authority}`"))?
        .map(|a| a.ip())
        .collect();
    if addrs.is_empty() || !addrs.iter().all(IpAddr::is_loopback) {
        bail!(
            "`--target {target}` is not a loopback address; `webcare load` only loads a webcare on this machine"
        );
    }
    Ok(format!("http://{authority}/api/v1/messages"))
}

pub fn run(args: LoadArgs) -> anyhow::Result<ExitCode> {
    let url = loopback_only(&args.target)?;
    if args.messages == 0 || args.messages > MAX_MESSAGES {
        bail!("`--messages` must be 1 to {MAX_MESSAGES}");
    }
    if args.concurrency == 0 || args.concurrency > MAX_CONCURRENCY {
        bail!("`--concurrency` must be 1 to {MAX_CONCURRENCY}");
    }
    if args.max_seconds == 0 || args.max_seconds > MAX_SECONDS {
        bail!("`--max-seconds` must be 1 to {MAX_SECONDS}");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(load(url, args))
}

/// One finished request: when it was sent (relative to the start) and how long it took.
struct Sample {
    sent: Duration,
    latency: Duration,
}

async fn load(url: String, args: LoadArgs) -> anyhow::Result<ExitCode> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .timeout(Duration::from_secs(30))
        .build()?;
    // Ids unique per run, so a second run against the same store is not all duplicates.
    let run = chrono::Utc::now().timestamp_millis();
    let next = Arc::new(AtomicUsize::new(0));
    let errors = Arc::new(AtomicUsize::new(0));
    let total = args.messages + args.warmup;
    let start = Instant::now();
    let deadline = start + Duration::from_secs(args.max_seconds);

    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..args.concurrency {
        let client = client.clone();
        let url = url.clone();
        let next = Arc::clone(&next);
        let errors = Arc::clone(&errors);
        let conversations = args.conversations.max(1);
        let warmup = args.warmup;
        tasks.spawn(async move {
            let mut samples = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total || Instant::now() >= deadline {
                    return samples;
                }
                let body = serde_json::json!({
                    "id": format!("load-{run}-{i}"),
                    "conversation": format!("load-{run}-c{}", i % conversations),
                    "author": format!("load-{run}-a{}", i % conversations),
                    "text": TEXTS[i % TEXTS.len()],
                })
                .to_string();
                let sent = Instant::now();
                let result = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await;
                let ok = match result {
                    Ok(response) if response.status().is_success() => response
                        .json::<serde_json::Value>()
                        .await
                        .is_ok_and(|decision| decision.get("action").is_some()),
                    _ => false,
                };
                let latency = sent.elapsed();
                if !ok {
                    errors.fetch_add(1, Ordering::Relaxed);
                } else if i >= warmup {
                    samples.push(Sample {
                        sent: sent.duration_since(start),
                        latency,
                    });
                }
            }
        });
    }
    let mut samples = Vec::with_capacity(args.messages);
    while let Some(result) = tasks.join_next().await {
        samples.extend(result?);
    }
    let errors = errors.load(Ordering::Relaxed);
    if samples.is_empty() {
        bail!("no message was answered ({errors} errors); is webcare running at {url}?");
    }
    // Throughput over the measured window: from the first measured request to the last answer.
    let first = samples.iter().map(|s| s.sent).min().unwrap_or_default();
    let last = samples
        .iter()
        .map(|s| s.sent + s.latency)
        .max()
        .unwrap_or_default();
    let window = last.saturating_sub(first).as_secs_f64().max(1e-9);
    let mut latencies: Vec<Duration> = samples.iter().map(|s| s.latency).collect();
    latencies.sort_unstable();
    let pct = |p: f64| {
        let index = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1;
        latencies[index].as_secs_f64() * 1000.0
    };
    println!(
        "messages: {} measured ({} warm-up), {} errors, concurrency {}",
        samples.len(),
        args.warmup.min(total),
        errors,
        args.concurrency
    );
    println!(
        "throughput: {:.0} messages/s",
        samples.len() as f64 / window
    );
    println!(
        "latency (request to decision): p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        pct(0.50),
        pct(0.90),
        pct(0.99),
        pct(1.0)
    );
    Ok(if errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_targets_are_loaded() {
        assert!(loopback_only("http://127.0.0.1:8080").is_ok());
        assert!(loopback_only("http://localhost:9000/").is_ok());
        assert!(loopback_only("http://[::1]:8080").is_ok());
        for target in [
            "http://10.0.0.1:8080",
            "http://192.168.1.5",
            "https://127.0.0.1:8080",
            "ftp://127.0.0.1",
        ] {
            assert!(loopback_only(target).is_err(), "{target}");
        }
    }
}
