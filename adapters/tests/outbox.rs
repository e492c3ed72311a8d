//! The outbox worker against a scripted fake platform: sent, retried with growing waits,
//! rate limits obeyed without counting, dead letters escalated to the default team, replies of
//! channels without an adapter left pending, and a shutdown that finishes what is in flight.

#![allow(clippy::unwrap_used)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use webcare_adapters::delivery::{BoxFuture, Deliver, DeliveryError};
use webcare_adapters::gateway::Gateway;
use webcare_adapters::outbox::{OutboxConfig, OutboxWorker};
use webcare_engine::store::{self, OutboxEntry, OutboxStatus, StoreOptions};
use webcare_engine::{ChannelKind, Inbound, Rulebook, Runtime};

const QUESTION: &str = "Wat zijn de openingstijden van het stadskantoor?";

/// A platform that answers each call with the next scripted result (then `Ok`), after `delay`.
#[derive(Default)]
struct Fake {
    script: Mutex<VecDeque<Result<(), DeliveryError>>>,
    calls: Mutex<Vec<(u64, Instant)>>,
    delay: Duration,
}

impl Fake {
    fn new(script: Vec<Result<(), DeliveryError>>) -> Arc<Self> {
        Arc::new(Fake {
            script: Mutex::new(script.into()),
            ..Fake::default()
        })
    }

    fn calls(&self) -> Vec<(u64, Instant)> {
        self.calls.lock().unwrap().clone()
    }
}

impl Deliver for Fake {
    fn deliver<'a>(&'a self, entry: &'a OutboxEntry) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async move {
            self.calls.lock().unwrap().push((entry.id, Instant::now()));
            tokio::time::sleep(self.delay).await;
            self.script.lock().unwrap().pop_front().unwrap_or(Ok(()))
        })
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    gateway: Gateway,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = store::open(&StoreOptions {
        data_dir: dir.path().join("data"),
        ..StoreOptions::default()
    })
    .unwrap();
    let runtime = Arc::new(Runtime::new(Rulebook::embedded().unwrap(), store));
    Fixture {
        _dir: dir,
        gateway: Gateway::new(runtime),
    }
}

fn config() -> OutboxConfig {
    OutboxConfig {
        base_delay: Duration::from_millis(40),
        max_delay: Duration::from_millis(400),
        max_attempts: 3,
        poll: Duration::from_secs(30),
        ..OutboxConfig::default()
    }
}

fn message(id: &str, channel: ChannelKind) -> Inbound {
    let mut m = Inbound::from_text(id, channel, QUESTION, chrono::Utc::now());
    m.conversation = format!("conv-{id}");
    m
}

/// Starts the worker; the returned sender stops it and the handle ends when it has.
fn start(
    f: &Fixture,
    routes: Vec<(ChannelKind, Arc<dyn Deliver>)>,
    config: OutboxConfig,
) -> (oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let mut worker = OutboxWorker::new(f.gateway.clone(), config);
    for (channel, deliver) in routes {
        worker.register(channel, deliver);
    }
    let (stop, stopped) = oneshot::channel::<()>();
    let handle = tokio::spawn(worker.run(async move {
        let _ = stopped.await;
    }));
    (stop, handle)
}

/// Waits (bounded) until the entry is no longer pending, and returns it.
async fn settled(f: &Fixture, id: u64) -> OutboxEntry {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let entry = f
            .gateway
            .store(move |s| s.outbox_entry(id))
            .await
            .unwrap()
            .unwrap();
        if entry.status != OutboxStatus::Pending {
            return entry;
        }
        assert!(
            Instant::now() < deadline,
            "entry {id} still pending: {entry:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_is_sent_as_soon_as_intake_queues_it() {
    let f = fixture();
    let fake = Fake::new(vec![]);
    let (stop, handle) = start(&f, vec![(ChannelKind::Http, fake.clone())], config());
    let started = Instant::now();
    let receipt = f
        .gateway
        .accept(message("m1", ChannelKind::Http))
        .await
        .unwrap();
    let entry = settled(&f, receipt.outbox.unwrap()).await;
    assert!(matches!(entry.status, OutboxStatus::Sent { .. }));
    assert_eq!(entry.attempts, 1);
    // Woken by intake, not by the 30 s poll.
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(fake.calls().len(), 1);
    stop.send(()).unwrap();
    handle.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn temporary_failures_back_off_then_dead_letter_to_the_default_team() {
    let f = fixture();
    let error = || Err(DeliveryError::Temporary("500 internal server error".into()));
    let fake = Fake::new(vec![error(), error(), error(), Ok(())]);
    let (stop, handle) = start(&f, vec![(ChannelKind::Http, fake.clone())], config());
    let receipt = f
        .gateway
        .accept(message("m1", ChannelKind::Http))
        .await
        .unwrap();
    let entry = settled(&f, receipt.outbox.unwrap()).await;
    assert_eq!(entry.status, OutboxStatus::Dead);
    assert_eq!(entry.attempts, 3);
    assert_eq!(
        entry.last_error.as_deref(),
        Some("500 internal server error")
    );

    let calls = fake.calls();
    assert_eq!(calls.len(), 3, "max_attempts is 3");
    let first_wait = calls[1].1 - calls[0].1;
    let second_wait = calls[2].1 - calls[1].1;
    assert!(first_wait >= Duration::from_millis(40), "{first_wait:?}");
    assert!(second_wait >= Duration::from_millis(80), "{second_wait:?}");

    let default_team = f.gateway.runtime().rulebook().default_team.clone();
    let escalations = f.gateway.store(|s| s.open_escalations()).await.unwrap();
    let dead = escalations
        .iter()
        .find(|e| e.reason.starts_with("reply could not be delivered"))
        .expect("the dead reply is escalated");
    assert_eq!(dead.team, default_team);
    assert_eq!(
        dead.reason,
        "reply could not be delivered: 500 internal server error"
    );
    assert_eq!(dead.conversation, "conv-m1");
    stop.send(()).unwrap();
    handle.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_are_obeyed_and_not_counted() {
    let f = fixture();
    let limited = || {
        Err(DeliveryError::RateLimited {
            retry_after: Duration::from_millis(60),
        })
    };
    // Four rate limits with max_attempts 3: only real failures count.
    let fake = Fake::new(vec![limited(), limited(), limited(), limited(), Ok(())]);
    let (stop, handle) = start(&f, vec![(ChannelKind::Http, fake.clone())], config());
    let receipt = f
        .gateway
        .accept(message("m1", ChannelKind::Http))
        .await
        .unwrap();
    let entry = settled(&f, receipt.outbox.unwrap()).await;
    assert!(
        matches!(entry.status, OutboxStatus::Sent { .. }),
        "{entry:?}"
    );
    assert_eq!(entry.attempts, 1);
    let calls = fake.calls();
    assert_eq!(calls.len(), 5);
    for pair in calls.windows(2) {
        let waited = pair[1].1 - pair[0].1;
        assert!(waited >= Duration::from_millis(60), "{waited:?}");
    }
    stop.send(()).unwrap();
    handle.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_error_is_dead_at_once() {
    let f = fixture();
    let fake = Fake::new(vec![Err(DeliveryError::Permanent(
        "403 bot was blocked by the user".into(),
    ))]);
    let (stop, handle) = start(&f, vec![(ChannelKind::Http, fake.clone())], config());
    let receipt = f
        .gateway
        .accept(message("m1", ChannelKind::Http))
        .await
        .unwrap();
    let entry = settled(&f, receipt.outbox.unwrap()).await;
    assert_eq!(entry.status, OutboxStatus::Dead);
    assert_eq!(fake.calls().len(), 1);
    let escalations = f.gateway.store(|s| s.open_escalations()).await.unwrap();
    assert!(
        escalations
            .iter()
            .any(|e| e.reason == "reply could not be delivered: 403 bot was blocked by the user")
    );
    stop.send(()).unwrap();
    handle.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_of_a_channel_without_an_adapter_stay_pending() {
    let f = fixture();
    let fake = Fake::new(vec![]);
    // Only the web chat runs; the Telegram replies wait for their adapter.
    let (stop, handle) = start(&f, vec![(ChannelKind::Webchat, fake.clone())], config());
    let mut waiting = Vec::new();
    for i in 0..5 {
        let receipt = f
            .gateway
            .accept(message(&format!("t{i}"), ChannelKind::Telegram))
            .await
            .unwrap();
        waiting.push(receipt.outbox.unwrap());
    }
    let web = f
        .gateway
        .accept(message("w1", ChannelKind::Webchat))
        .await
        .unwrap();
    let entry = settled(&f, web.outbox.unwrap()).await;
    assert!(matches!(entry.status, OutboxStatus::Sent { .. }));
    stop.send(()).unwrap();
    handle.await.unwrap();
    for id in waiting {
        let entry = f
            .gateway
            .store(move |s| s.outbox_entry(id))
            .await
            .unwrap()
            .unwrap();
        assert_eq!((entry.status, entry.attempts), (OutboxStatus::Pending, 0));
    }
    assert_eq!(fake.calls().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_the_delivery_in_flight() {
    let f = fixture();
    let fake = Arc::new(Fake {
        delay: Duration::from_millis(300),
        ..Fake::default()
    });
    let (stop, handle) = start(&f, vec![(ChannelKind::Http, fake.clone())], config());
    let receipt = f
        .gateway
        .accept(message("m1", ChannelKind::Http))
        .await
        .unwrap();
    // Wait until the delivery has started, then ask the worker to stop.
    let deadline = Instant::now() + Duration::from_secs(10);
    while fake.calls().is_empty() {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), handle)
        .await
        .expect("the worker stops")
        .unwrap();
    let id = receipt.outbox.unwrap();
    let entry = f
        .gateway
        .store(move |s| s.outbox_entry(id))
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(entry.status, OutboxStatus::Sent { .. }),
        "the reply in flight was recorded before the worker returned: {entry:?}"
    );
}

/// A platform whose first attempt at one reply fails; it records what it accepted, in order.
struct FailsOnce {
    fail: u64,
    failed: Mutex<bool>,
    accepted: Mutex<Vec<u64>>,
}

impl Deliver for FailsOnce {
    fn deliver<'a>(&'a self, entry: &'a OutboxEntry) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async move {
            {
                let mut failed = self.failed.lock().unwrap();
                if entry.id == self.fail && !*failed {
                    *failed = true;
                    return Err(DeliveryError::Temporary("502 bad gateway".into()));
                }
            }
            self.accepted.lock().unwrap().push(entry.id);
            Ok(())
        })
    }
}

/// Replies to one conversation arrive in the order they were queued, also when the first one
/// has to be retried: the later ones wait for it instead of overtaking it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_to_one_conversation_arrive_in_order_across_retries() {
    let f = fixture();
    let mut queued = Vec::new();
    for i in 0..4 {
        let mut m = message(&format!("b{i}"), ChannelKind::Http);
        m.conversation = "conv-b".into();
        let receipt = f.gateway.accept(m).await.unwrap();
        queued.push(receipt.outbox.expect("a question is answered"));
    }
    let fake = Arc::new(FailsOnce {
        fail: queued[0],
        failed: Mutex::new(false),
        accepted: Mutex::new(Vec::new()),
    });
    let (stop, handle) = start(&f, vec![(ChannelKind::Http, fake.clone())], config());
    for id in &queued {
        let entry = settled(&f, *id).await;
        assert!(
            matches!(entry.status, OutboxStatus::Sent { .. }),
            "{entry:?}"
        );
    }
    assert_eq!(
        *fake.accepted.lock().unwrap(),
        queued,
        "delivered in queue order"
    );
    stop.send(()).unwrap();
    handle.await.unwrap();
}
