//! The Telegram adapter end to end against a fake Bot API on 127.0.0.1: a real runtime with
//! the embedded rulebook and a redb store in a temp dir, the real polling loop, the real outbox
//! worker and `TelegramDeliver`. Proves: a question is answered in its chat, an update is
//! acknowledged only once it is stored, a redelivered update is answered once, the bot's own
//! messages and other bots are ignored, a 429 waits its `retry_after`, and a reply that keeps
//! failing with 500 is dead-lettered into an escalation; in webhook mode an update is answered
//! 200 only once it is stored.

#![allow(clippy::unwrap_used)]

#[path = "fakes/telegram.rs"]
mod fake;

use std::sync::Arc;
use std::time::{Duration, Instant};

use fake::{Answer, BOT_ID, Fake, TOKEN, ann, text_update};
use serde_json::json;
use tokio::sync::oneshot;
use webcare_adapters::gateway::Gateway;
use webcare_adapters::outbox::{OutboxConfig, OutboxWorker};
use webcare_adapters::secret::Secret;
use webcare_adapters::telegram::{self, TelegramConfig, TelegramDeliver};
use webcare_engine::store::{self, OutboxEntry, OutboxStatus, StoreOptions};
use webcare_engine::{Action, ChannelKind, Rulebook, Runtime, Store};

const QUESTION: &str = "Hoe vraag ik een nieuw paspoort aan?";

/// The fake, a runtime, the adapter and the outbox worker, all running.
struct Harness {
    _dir: tempfile::TempDir,
    fake: Fake,
    store: Arc<dyn Store>,
    stop: Vec<oneshot::Sender<()>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Harness {
    async fn start() -> Harness {
        Harness::start_with(|_| {}).await
    }

    async fn start_with(adjust: impl FnOnce(&mut TelegramConfig)) -> Harness {
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
        let fake = fake::serve(Some(Arc::clone(&store))).await;
        let mut config = TelegramConfig {
            api_url: fake.url.clone(),
            poll_timeout: Duration::from_secs(1),
            retry_delay: Duration::from_millis(50),
            max_retry_delay: Duration::from_millis(200),
            empty_poll_pause: Duration::from_millis(50),
            ..TelegramConfig::new(Secret::new(TOKEN))
        };
        adjust(&mut config);
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
            ChannelKind::Telegram,
            Arc::new(TelegramDeliver::new(&config).unwrap()),
        );
        let (stop_worker, worker_stopped) = oneshot::channel::<()>();
        let (stop_adapter, adapter_stopped) = oneshot::channel::<()>();
        let outbox = tokio::spawn(worker.run(async move {
            let _ = worker_stopped.await;
        }));
        let adapter = tokio::spawn(async move {
            telegram::run(gateway, config, async move {
                let _ = adapter_stopped.await;
            })
            .await
            .unwrap();
        });
        Harness {
            _dir: dir,
            fake,
            store,
            stop: vec![stop_adapter, stop_worker],
            tasks: vec![adapter, outbox],
        }
    }

    async fn wait_for_sends(&self, n: usize, within: Duration) -> Vec<(i64, String, Instant)> {
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

/// The conversation's replies once `n` of them are recorded as sent (the platform sees a reply
/// just before the worker records it).
async fn sent_replies(store: &Arc<dyn Store>, chat: &str, n: usize) -> Vec<OutboxEntry> {
    eventually(Duration::from_secs(5), || {
        let outbox = store
            .conversation_outbox(ChannelKind::Telegram, chat)
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
async fn a_question_is_answered_once_and_acknowledged_only_after_it_is_stored() {
    let harness = Harness::start().await;
    let update = text_update(500, 42, 7, ann(), QUESTION);
    harness.fake.push(update.clone());

    let sends = harness.wait_for_sends(1, Duration::from_secs(5)).await;
    assert_eq!(sends.len(), 1, "one reply");
    let (chat, text, _) = &sends[0];
    assert_eq!(*chat, 42);
    let stored = harness
        .store
        .message(ChannelKind::Telegram, "42:7")
        .unwrap()
        .unwrap();
    let Action::Answer { reply, .. } = &stored.decision.action else {
        panic!("answered, not {:?}", stored.decision.action);
    };
    assert_eq!(reply, text, "the rulebook's answer went out");
    assert_eq!(stored.message.author, "5");
    assert_eq!(stored.message.metadata["display_name"], "Ann de Vries");
    let outbox = sent_replies(&harness.store, "42", 1).await;
    assert_eq!(outbox.len(), 1);
    assert_eq!(
        &outbox[0].text, text,
        "the rulebook's reply went out unchanged"
    );
    assert!(text.to_lowercase().contains("afspraak"), "{text}");

    // The same update again, as after a crash before the offset moved: stored once, and no
    // second reply.
    harness.fake.redeliver(update);
    // And a new update with the same message (Telegram's own retry): also a duplicate.
    harness.fake.push(text_update(501, 42, 7, ann(), QUESTION));
    let fake = harness.fake.clone();
    eventually(Duration::from_secs(5), || {
        let state = fake.state.lock().unwrap();
        (state.queue.is_empty() && state.again.is_empty() && state.offsets.last() == Some(&502))
            .then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        harness.fake.sends().len(),
        1,
        "the redelivered update is answered once"
    );
    assert_eq!(
        harness
            .store
            .conversation_outbox(ChannelKind::Telegram, "42")
            .unwrap()
            .len(),
        1
    );

    {
        let state = harness.fake.state.lock().unwrap();
        assert!(!state.stored_when_confirmed.is_empty());
        assert!(
            state
                .stored_when_confirmed
                .iter()
                .all(|(_, stored)| *stored),
            "every update was stored before its offset was confirmed: {:?}",
            state.stored_when_confirmed
        );
        assert_eq!(
            state.offsets.first(),
            Some(&0),
            "the first poll confirms nothing"
        );
    }
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_from_the_bot_itself_other_bots_and_stickers_are_ignored() {
    let harness = Harness::start().await;
    let me = json!({ "id": BOT_ID, "is_bot": true, "first_name": "Gemeente" });
    let other_bot = json!({ "id": 77, "is_bot": true, "first_name": "Echo" });
    harness.fake.push(text_update(10, 42, 1, me, QUESTION));
    harness
        .fake
        .push(text_update(11, 42, 2, other_bot, QUESTION));
    harness.fake.push(json!({
        "update_id": 12,
        "message": {
            "message_id": 3, "date": chrono::Utc::now().timestamp(),
            "chat": { "id": 42, "type": "private", "first_name": "Ann" }, "from": ann(),
            "sticker": { "file_id": "f", "file_unique_id": "u", "type": "regular", "width": 1,
                         "height": 1, "is_animated": false, "is_video": false }
        }
    }));
    // A person's message after them, so we know the ones before were passed over.
    harness.fake.push(text_update(13, 42, 4, ann(), QUESTION));
    let sends = harness.wait_for_sends(1, Duration::from_secs(5)).await;
    assert_eq!(sends.len(), 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(harness.fake.sends().len(), 1, "only the person got a reply");
    for id in ["42:1", "42:2", "42:3"] {
        assert!(
            harness
                .store
                .message(ChannelKind::Telegram, id)
                .unwrap()
                .is_none(),
            "{id} must not be taken in"
        );
    }
    assert!(
        harness
            .store
            .message(ChannelKind::Telegram, "42:4")
            .unwrap()
            .is_some()
    );
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_reply_waits_retry_after_and_is_then_delivered() {
    let harness = Harness::start().await;
    harness
        .fake
        .script(&[Answer::TooManyRequests { retry_after: 1 }], None);
    let asked = Instant::now();
    harness.fake.push(text_update(1, 42, 7, ann(), QUESTION));
    let sends = harness.wait_for_sends(1, Duration::from_secs(6)).await;
    assert_eq!(sends.len(), 1, "delivered after the wait");
    let waited = sends[0].2.duration_since(asked);
    assert!(
        waited >= Duration::from_millis(950),
        "retry_after was respected: {waited:?}"
    );
    let outbox = sent_replies(&harness.store, "42", 1).await;
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
    harness.fake.push(text_update(1, 42, 7, ann(), QUESTION));
    let store = Arc::clone(&harness.store);
    let entry = eventually(Duration::from_secs(6), || {
        let outbox = store
            .conversation_outbox(ChannelKind::Telegram, "42")
            .unwrap();
        outbox.into_iter().find(|e| e.status == OutboxStatus::Dead)
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
    let escalations = store.open_escalations().unwrap();
    let escalation = escalations
        .iter()
        .find(|e| e.channel == ChannelKind::Telegram && e.conversation == "42")
        .expect("the dead letter opened an escalation");
    assert!(
        escalation.reason.contains("could not be delivered"),
        "{}",
        escalation.reason
    );
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_group_the_answer_quotes_its_question_and_in_a_private_chat_not() {
    let harness = Harness::start().await;
    let mut group = text_update(1, -1_001_234, 55, ann(), QUESTION);
    group["message"]["chat"] = json!({ "id": -1_001_234, "type": "group", "title": "Wijkraad" });
    harness.fake.push(group);
    harness.fake.push(text_update(2, 42, 7, ann(), QUESTION));
    let sends = harness.wait_for_sends(2, Duration::from_secs(5)).await;
    assert_eq!(sends.len(), 2);
    let quoted: Vec<(i64, Option<i64>)> = {
        let state = harness.fake.state.lock().unwrap();
        state
            .sends
            .iter()
            .map(|(chat, _, _)| *chat)
            .zip(state.replies_to.iter().copied())
            .collect()
    };
    assert!(quoted.contains(&(-1_001_234, Some(55))), "{quoted:?}");
    assert!(quoted.contains(&(42, None)), "{quoted:?}");
    harness.stop().await;
}

/// Webhook mode in process: an update is refused (503) until the bot knows who it is, answered
/// 200 only once it is in the store (so Telegram posts it again after any failure), and a
/// body that is no update is a 400.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_update_is_answered_200_only_once_it_is_stored() {
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
    let fake = fake::serve(None).await;
    let config = TelegramConfig {
        api_url: fake.url.clone(),
        retry_delay: Duration::from_millis(50),
        max_retry_delay: Duration::from_millis(200),
        webhook: Some(telegram::WebhookConfig {
            url: "https://bot.example.org/tg/updates".into(),
            secret: Some(Secret::new("hook-secret")),
        }),
        ..TelegramConfig::new(Secret::new(TOKEN))
    };
    let hook = telegram::TelegramWebhook::new(gateway, config).unwrap();
    assert_eq!(hook.path(), "/tg/updates");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}/tg/updates", listener.local_addr().unwrap());
    let routes = hook.routes();
    tokio::spawn(async move { axum::serve(listener, routes).await.unwrap() });
    let client = reqwest::Client::new();
    let post = |body: String| {
        client
            .post(&endpoint)
            .header(telegram::SECRET_HEADER, "hook-secret")
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let update = text_update(1, 42, 7, ann(), QUESTION).to_string();

    // Not yet registered: the bot does not know itself, so the loop guard cannot run.
    let early = post(update.clone()).await.unwrap().status();
    assert_eq!(early.as_u16(), 503);
    assert!(
        store
            .message(ChannelKind::Telegram, "42:7")
            .unwrap()
            .is_none()
    );

    let (stop, stopped) = oneshot::channel::<()>();
    let running = tokio::spawn(hook.run(async move {
        let _ = stopped.await;
    }));
    eventually(Duration::from_secs(10), || {
        (!fake.state.lock().unwrap().set_webhook.is_empty()).then_some(())
    })
    .await;

    let status = post(update).await.unwrap().status();
    assert_eq!(status.as_u16(), 200);
    let stored = store.message(ChannelKind::Telegram, "42:7").unwrap();
    assert!(stored.is_some(), "stored before Telegram was told 200");
    assert!(matches!(
        stored.unwrap().decision.action,
        Action::Answer { .. }
    ));

    let garbage = post("{\"not\": \"an update\"".into())
        .await
        .unwrap()
        .status();
    assert_eq!(garbage.as_u16(), 400);

    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(5), running)
        .await
        .expect("stops within 5 s")
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bot_api_that_answers_at_once_is_not_polled_in_a_tight_loop() {
    // Long-poll timeout 0: the fake answers every getUpdates at once, with nothing.
    let h = Harness::start_with(|config| {
        config.poll_timeout = Duration::ZERO;
        config.empty_poll_pause = Duration::from_millis(300);
    })
    .await;
    let watched = Instant::now();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let elapsed = watched.elapsed();
    let polls = h.fake.state.lock().unwrap().offsets.len();
    // At most one poll per pause (and the first), however fast the server answers.
    let most = (elapsed.as_millis() / 300) as usize + 2;
    assert!(polls <= most, "{polls} polls in {elapsed:?}");
    assert!(polls >= 1);
    // A message still gets through.
    h.fake.push(text_update(1, 500, 1, ann(), QUESTION));
    let sends = h.wait_for_sends(1, Duration::from_secs(10)).await;
    assert_eq!(sends.len(), 1);
    h.stop().await;
}
