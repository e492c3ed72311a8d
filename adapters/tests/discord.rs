//! The Discord adapter end to end against a fake Discord on 127.0.0.1: the REST API serenity
//! reaches through `HttpBuilder::proxy` (with its rate limiter off), `GET /api/v10/gateway`
//! pointing at a fake gateway WebSocket that says Hello, takes Identify, sends READY, answers
//! heartbeats and dispatches MESSAGE_CREATE events. A real runtime (embedded rulebook, redb in
//! a temp dir), the real outbox worker and `DiscordDeliver`. Proves: a DM and a message in a
//! configured channel are answered where they were asked, other guild channels are not
//! watched, a message dispatched twice is answered once, messages by the bot itself and by
//! other bots are ignored, a 429 waits its `retry_after`, and a reply that keeps failing with
//! 500 is dead-lettered into an escalation.

#![allow(clippy::unwrap_used)]

#[path = "fakes/discord.rs"]
mod fake;

use std::sync::Arc;
use std::time::{Duration, Instant};

use fake::{Answer, BOT_ID, Fake, TOKEN, ann, bot_user, message_json};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use webcare_adapters::discord::{self, DiscordConfig, DiscordDeliver};
use webcare_adapters::gateway::Gateway;
use webcare_adapters::outbox::{OutboxConfig, OutboxWorker};
use webcare_adapters::secret::Secret;
use webcare_engine::store::{self, OutboxEntry, OutboxStatus, StoreOptions};
use webcare_engine::{Action, ChannelKind, Rulebook, Runtime, Store};

const SUPPORT_CHANNEL: u64 = 3003;
const QUESTION: &str = "Hoe vraag ik een nieuw paspoort aan?";

/// The fake, a runtime, the adapter and the outbox worker, all running.
struct Harness {
    _dir: tempfile::TempDir,
    fake: Fake,
    events: mpsc::UnboundedSender<Value>,
    store: Arc<dyn Store>,
    stop: Vec<oneshot::Sender<()>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Harness {
    async fn start() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let store = store::open(&StoreOptions {
            data_dir: dir.path().join("data"),
            ..StoreOptions::default()
        })
        .unwrap();
        let runtime = Arc::new(Runtime::new(
            Rulebook::embedded().unwrap(),
            Arc::clone(&store),
        ));
        let gateway = Gateway::new(runtime);

        let (fake, events) = fake::serve().await;
        let config = DiscordConfig {
            api_url: Some(fake.url.clone()),
            channels: [SUPPORT_CHANNEL].into(),
            ..DiscordConfig::new(Secret::new(TOKEN))
        };
        let mut worker = OutboxWorker::new(
            gateway.clone(),
            OutboxConfig {
                base_delay: Duration::from_millis(50),
                max_delay: Duration::from_millis(200),
                max_attempts: 3,
                poll: Duration::from_millis(200),
                ..OutboxConfig::default()
            },
        );
        worker.register(
            ChannelKind::Discord,
            Arc::new(DiscordDeliver::new(&config).unwrap()),
        );
        let (stop_worker, worker_stopped) = oneshot::channel::<()>();
        let (stop_adapter, adapter_stopped) = oneshot::channel::<()>();
        let outbox = tokio::spawn(worker.run(async move {
            let _ = worker_stopped.await;
        }));
        let adapter = tokio::spawn(async move {
            discord::run(gateway, config, async move {
                let _ = adapter_stopped.await;
            })
            .await
            .unwrap();
        });
        let harness = Harness {
            _dir: dir,
            fake,
            events,
            store,
            stop: vec![stop_adapter, stop_worker],
            tasks: vec![adapter, outbox],
        };
        let fake = harness.fake.clone();
        eventually(Duration::from_secs(5), || {
            fake.state.lock().unwrap().identify.clone()
        })
        .await;
        harness
    }

    fn dispatch(&self, message: Value) {
        self.events.send(message).unwrap();
    }

    async fn wait_for_sends(
        &self,
        n: usize,
        within: Duration,
    ) -> Vec<(String, String, Value, Instant)> {
        let deadline = Instant::now() + within;
        loop {
            let sends = self.fake.sends();
            if sends.len() >= n || Instant::now() > deadline {
                return sends;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the adapter and the worker the way `webcare run` does, and checks they return.
    async fn stop(mut self) {
        for stop in self.stop.drain(..) {
            let _ = stop.send(());
        }
        for task in self.tasks.drain(..) {
            tokio::time::timeout(Duration::from_secs(5), task)
                .await
                .expect("stops within 5 s")
                .unwrap();
        }
        let unknown = self.fake.state.lock().unwrap().unknown.clone();
        assert!(
            unknown.is_empty(),
            "calls the fake does not know: {unknown:?}"
        );
    }
}

async fn eventually<T>(within: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "condition not met within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The channel's replies once `n` of them are recorded as sent.
async fn sent_replies(store: &Arc<dyn Store>, channel: &str, n: usize) -> Vec<OutboxEntry> {
    eventually(Duration::from_secs(5), || {
        let outbox = store
            .conversation_outbox(ChannelKind::Discord, channel)
            .unwrap();
        let sent = outbox
            .iter()
            .filter(|e| matches!(e.status, OutboxStatus::Sent { .. }))
            .count();
        (sent >= n).then_some(outbox)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_direct_message_is_answered_once_even_when_dispatched_twice() {
    let harness = Harness::start().await;
    let identify = harness.fake.state.lock().unwrap().identify.clone().unwrap();
    let intents = identify["intents"].as_u64().unwrap();
    for (bit, name) in [
        (1 << 9, "GUILD_MESSAGES"),
        (1 << 12, "DIRECT_MESSAGES"),
        (1 << 15, "MESSAGE_CONTENT"),
    ] {
        assert!(intents & bit != 0, "identify asks for {name}");
    }
    assert_eq!(identify["token"], format!("Bot {TOKEN}"));

    let dm = message_json("1001", "2002", ann(), QUESTION, None);
    harness.dispatch(dm.clone());
    let sends = harness.wait_for_sends(1, Duration::from_secs(5)).await;
    assert_eq!(sends.len(), 1, "one reply");
    let (channel, content, mentions, _) = &sends[0];
    assert_eq!(channel, "2002", "answered in the DM channel");
    assert_eq!(
        mentions,
        &json!({ "parse": [] }),
        "replies never ping anyone"
    );
    assert_eq!(
        harness.fake.state.lock().unwrap().references,
        vec![Value::Null],
        "a DM answer quotes nothing"
    );
    let stored = harness
        .store
        .message(ChannelKind::Discord, "1001")
        .unwrap()
        .unwrap();
    let Action::Answer { reply, .. } = &stored.decision.action else {
        panic!("answered, not {:?}", stored.decision.action);
    };
    assert_eq!(reply, content, "the rulebook's answer went out");
    assert_eq!(stored.message.author, "5");
    assert_eq!(stored.message.metadata["display_name"], "Ann de Vries");
    sent_replies(&harness.store, "2002", 1).await;

    // A resumed session replays the event: stored once, answered once.
    harness.dispatch(dm);
    // A later message proves the replay was processed before we count.
    harness.dispatch(message_json("1002", "2002", ann(), "Dank je wel!", None));
    eventually(Duration::from_secs(5), || {
        harness.store.message(ChannelKind::Discord, "1002").unwrap()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let replies_to_question = harness
        .fake
        .sends()
        .iter()
        .filter(|(_, text, _, _)| text == content)
        .count();
    assert_eq!(
        replies_to_question, 1,
        "the replayed message is answered once"
    );
    let outbox = harness
        .store
        .conversation_outbox(ChannelKind::Discord, "2002")
        .unwrap();
    assert_eq!(outbox.iter().filter(|e| e.in_reply_to == "1001").count(), 1);
    harness.stop().await;
}

/// A reply sent, then sent again as after a crash between the send and its record: Discord
/// (here the fake, which keeps nonces as Discord does) shows it once, because both sends carry
/// the same nonce with `enforce_nonce`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_sent_again_after_a_crash_shows_once() {
    let harness = Harness::start().await;
    harness.dispatch(message_json("1101", "2102", ann(), QUESTION, None));
    let outbox = sent_replies(&harness.store, "2102", 1).await;
    let config = DiscordConfig {
        api_url: Some(harness.fake.url.clone()),
        ..DiscordConfig::new(Secret::new(TOKEN))
    };
    let again = DiscordDeliver::new(&config).unwrap();
    use webcare_adapters::delivery::Deliver;
    again.deliver(&outbox[0]).await.unwrap();
    let (calls, shown, nonces) = {
        let state = harness.fake.state.lock().unwrap();
        let nonces: Vec<String> = state.nonces.keys().cloned().collect();
        (state.send_calls, state.sends.len(), nonces)
    };
    assert_eq!(calls, 2, "sent twice");
    assert_eq!(shown, 1, "shown once");
    assert_eq!(nonces, [discord::nonce(outbox[0].id, 0)]);
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_channels_are_answered_other_channels_and_bots_are_ignored() {
    let harness = Harness::start().await;
    let guild = Some("7007");
    // The bot's own message, another bot, a channel nobody configured: all passed over.
    harness.dispatch(message_json(
        "2001",
        &SUPPORT_CHANNEL.to_string(),
        bot_user(BOT_ID),
        QUESTION,
        guild,
    ));
    harness.dispatch(message_json(
        "2002",
        &SUPPORT_CHANNEL.to_string(),
        bot_user("4242"),
        QUESTION,
        guild,
    ));
    harness.dispatch(message_json("2003", "3999", ann(), QUESTION, guild));
    // A person in the support channel: answered there.
    harness.dispatch(message_json(
        "2004",
        &SUPPORT_CHANNEL.to_string(),
        ann(),
        QUESTION,
        guild,
    ));
    let sends = harness.wait_for_sends(1, Duration::from_secs(5)).await;
    assert_eq!(sends.len(), 1);
    assert_eq!(sends[0].0, SUPPORT_CHANNEL.to_string());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(harness.fake.sends().len(), 1, "only the person got a reply");
    assert_eq!(
        harness.fake.state.lock().unwrap().references,
        vec![json!({ "message_id": "2004", "fail_if_not_exists": false })],
        "in a support channel the answer quotes its question"
    );
    for id in ["2001", "2002", "2003"] {
        assert!(
            harness
                .store
                .message(ChannelKind::Discord, id)
                .unwrap()
                .is_none(),
            "{id} must not be taken in"
        );
    }
    let stored = harness
        .store
        .message(ChannelKind::Discord, "2004")
        .unwrap()
        .unwrap();
    assert_eq!(stored.message.metadata["guild"], "7007");
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_reply_waits_retry_after_and_is_then_delivered() {
    let harness = Harness::start().await;
    harness
        .fake
        .script(&[Answer::TooManyRequests { retry_after: 1.0 }], None);
    let asked = Instant::now();
    harness.dispatch(message_json("1001", "2002", ann(), QUESTION, None));
    let sends = harness.wait_for_sends(1, Duration::from_secs(6)).await;
    assert_eq!(sends.len(), 1, "delivered after the wait");
    let waited = sends[0].3.duration_since(asked);
    assert!(
        waited >= Duration::from_millis(950),
        "retry_after was respected: {waited:?}"
    );
    assert_eq!(harness.fake.state.lock().unwrap().send_calls, 2);
    let outbox = sent_replies(&harness.store, "2002", 1).await;
    assert_eq!(
        outbox[0].attempts, 1,
        "only the attempt that went through counts, not the rate limit"
    );
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_that_keeps_failing_is_retried_then_dead_lettered_as_an_escalation() {
    let harness = Harness::start().await;
    harness.fake.script(&[], Some(Answer::ServerError));
    harness.dispatch(message_json("1001", "2002", ann(), QUESTION, None));
    let store = Arc::clone(&harness.store);
    let entry = eventually(Duration::from_secs(6), || {
        store
            .conversation_outbox(ChannelKind::Discord, "2002")
            .unwrap()
            .into_iter()
            .find(|e| e.status == OutboxStatus::Dead)
    })
    .await;
    assert_eq!(
        harness.fake.state.lock().unwrap().send_calls,
        3,
        "tried max_attempts times"
    );
    assert!(
        entry.last_error.as_deref().unwrap_or("").contains("500"),
        "{:?}",
        entry.last_error
    );
    assert!(harness.fake.sends().is_empty());
    let escalation = store
        .open_escalations()
        .unwrap()
        .into_iter()
        .find(|e| e.channel == ChannelKind::Discord && e.conversation == "2002")
        .expect("the dead letter opened an escalation");
    assert!(
        escalation.reason.contains("could not be delivered"),
        "{}",
        escalation.reason
    );
    harness.stop().await;
}
