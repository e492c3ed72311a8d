//! The Meta webhook's intake, in process: what one signed WhatsApp delivery costs from the
//! raw request to the durable commit (the `X-Hub-Signature-256` check over the body, decoding
//! the notification, the decision, and the store's transaction: message, conversation, outbox
//! entry), through the webhook's own axum routes as Meta would post them. Beside it, the same
//! messages through the HTTP channel (`POST /api/v1/messages`, unsigned) on a store of its
//! own, so the two are measured under the same load of the shared machine. And the signature
//! check plus decoding alone, without a store. No network: requests go to the router with
//! `oneshot`, so the figures are webcare's, not the kernel's loopback.
//!
//! Run with `cargo bench -p webcare-adapters --features meta,http --bench meta_intake`
//! (figures go in BENCHMARKS.md). `WEBCARE_BENCH_MESSAGES` (default 20000) and
//! `WEBCARE_BENCH_CONCURRENCY` (default 64) change the run.

#![allow(clippy::unwrap_used)] // Why: a benchmark fails loudly on any error, like a test.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use tower::ServiceExt;
use webcare_adapters::gateway::Gateway;
use webcare_adapters::http::{self, HttpChannelConfig};
use webcare_adapters::meta::{self, MetaConfig, MetaWebhook, SIGNATURE_HEADER};
use webcare_adapters::secret::Secret;
use webcare_engine::store::{self, Backend, StoreOptions};
use webcare_engine::{Rulebook, Runtime};

const APP_SECRET: &str = "bench-app-secret";
const WARMUP: usize = 2_000;
const SERIAL: usize = 1_000;
const CONVERSATIONS: usize = 2_000;

/// What citizens write, as `webcare load` sends them (mostly questions).
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

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One request as it arrives: path, headers, body.
#[derive(Clone)]
struct Raw {
    path: &'static str,
    signature: Option<String>,
    body: Vec<u8>,
}

impl Raw {
    fn request(&self) -> Request<Body> {
        let mut request = Request::post(self.path).header(header::CONTENT_TYPE, "application/json");
        if let Some(signature) = &self.signature {
            request = request.header(SIGNATURE_HEADER, signature);
        }
        request.body(Body::from(self.body.clone())).unwrap()
    }
}

/// Message `i` as Meta posts it: a WhatsApp text in its own signed delivery.
fn whatsapp(i: usize) -> Raw {
    let customer = format!("3161{:07}", i % CONVERSATIONS);
    let body = serde_json::json!({
        "object": "whatsapp_business_account",
        "entry": [{ "id": "WABA1", "changes": [{ "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": { "display_phone_number": "31850000000", "phone_number_id": "1065550100" },
            "contacts": [{ "wa_id": customer, "profile": { "name": "Ann" } }],
            "messages": [{ "id": format!("wamid.BENCH{i}"), "from": customer,
                           "timestamp": (1_790_000_000 + i).to_string(), "type": "text",
                           "text": { "body": TEXTS[i % TEXTS.len()] } }]
        }}]}]
    });
    let body = serde_json::to_vec(&body).unwrap();
    Raw {
        path: "/meta/webhook",
        signature: Some(meta::sign(APP_SECRET, &body)),
        body,
    }
}

/// Message `i` through the HTTP channel.
fn http_message(i: usize) -> Raw {
    let body = serde_json::json!({
        "id": format!("h{i}"), "conversation": format!("c{}", i % CONVERSATIONS),
        "author": format!("citizen{}", i % CONVERSATIONS), "text": TEXTS[i % TEXTS.len()]
    });
    Raw {
        path: "/api/v1/messages",
        signature: None,
        body: serde_json::to_vec(&body).unwrap(),
    }
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

struct Figures {
    per_second: f64,
    p50: Duration,
    p90: Duration,
    p99: Duration,
    max: Duration,
}

impl std::fmt::Display for Figures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:>7.0} msg/s  p50 {:>6.2} ms  p90 {:>6.2} ms  p99 {:>6.2} ms  max {:>6.2} ms",
            self.per_second,
            ms(self.p50),
            ms(self.p90),
            ms(self.p99),
            ms(self.max)
        )
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Posts `requests` to `router` from `callers` concurrent tasks; every answer must be 200.
async fn run(router: &Router, requests: &[Raw], callers: usize) -> Figures {
    let next = Arc::new(AtomicUsize::new(0));
    let requests = Arc::new(requests.to_vec());
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..callers {
        let (router, next, requests) = (router.clone(), Arc::clone(&next), Arc::clone(&requests));
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(raw) = requests.get(i) else {
                    return latencies;
                };
                let sent = Instant::now();
                let response = router.clone().oneshot(raw.request()).await.unwrap();
                assert_eq!(response.status(), StatusCode::OK, "request {i}");
                latencies.push(sent.elapsed());
            }
        }));
    }
    let mut latencies = Vec::with_capacity(requests.len());
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    Figures {
        per_second: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50: at(0.50),
        p90: at(0.90),
        p99: at(0.99),
        max: latencies[latencies.len() - 1],
    }
}

/// Warm-up, then one caller at a time (an fsync per message), then `callers` at once (the
/// store's group commit shares the fsyncs).
async fn intake(name: &str, router: Router, make: fn(usize) -> Raw, total: usize, callers: usize) {
    let all: Vec<Raw> = (0..WARMUP + SERIAL + total).map(make).collect();
    run(&router, &all[..WARMUP], callers).await;
    let serial = run(&router, &all[WARMUP..WARMUP + SERIAL], 1).await;
    println!("{name:<28} 1 caller     {serial}");
    let loaded = run(&router, &all[WARMUP + SERIAL..], callers).await;
    println!("{name:<28} {callers:>3} callers  {loaded}");
}

fn main() {
    let total = env("WEBCARE_BENCH_MESSAGES", 20_000);
    let callers = env("WEBCARE_BENCH_CONCURRENCY", 64).max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();

    // The webhook's own work before intake: signature over the raw body, then decoding.
    let secret = Secret::new(APP_SECRET);
    let raws: Vec<Raw> = (0..10_000).map(whatsapp).collect();
    let started = Instant::now();
    for raw in &raws {
        let signature = raw.signature.as_deref().unwrap_or_default();
        assert!(meta::signature_valid(&secret, &raw.body, signature));
        let decoded: meta::inbound::Notification = serde_json::from_slice(&raw.body).unwrap();
        std::hint::black_box(decoded);
    }
    let each = started.elapsed() / raws.len() as u32;
    println!(
        "meta verify + decode         {:>7.2} µs per delivery ({} deliveries, no store)",
        each.as_secs_f64() * 1e6,
        raws.len()
    );

    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let config = MetaConfig::new(
            Secret::new(APP_SECRET),
            Secret::new("bench-verify"),
            Secret::new("bench-access"),
        );
        let hook = MetaWebhook::new(gateway(&dir.path().join("meta")), config).unwrap();
        intake(
            "meta webhook intake",
            hook.routes(),
            whatsapp,
            total,
            callers,
        )
        .await;

        let router = http::routes(
            gateway(&dir.path().join("http")),
            HttpChannelConfig::default(),
        )
        .unwrap();
        intake("http channel intake", router, http_message, total, callers).await;
    });
}
