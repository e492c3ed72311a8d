//! The Telegram adapter end to end against a fake Bot API on 127.0.0.1: a real runtime with
//! the embedded rulebook and a redb store in a temp dir, the real polling loop, the real outbox
//! worker and `TelegramDeliver`. Proves: a question is answered in its chat, an update is
//! acknowledged only once it is stored, a redelivered update is answered once, the bot's own
//! messages and other bots are ignored, a 429 waits its `retry_after`, and a reply that keeps
//! failing with 500 is dead-lettered into an escalation.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use tokio::sync::{Notify, oneshot};
use webcare_adapters::gateway::Gateway;
use webcare_adapters::outbox::{OutboxConfig, OutboxWorker};
use webcare_adapters::secret::Secret;
use webcare_adapters::telegram::{self, TelegramConfig, TelegramDeliver};
use webcare_engine::store::{self, OutboxEntry, OutboxStatus, StoreOptions};
use webcare_engine::{Action, ChannelKind, Rulebook, Runtime, Store};

const TOKEN: &str = "123456:TEST-token";
const BOT_ID: u64 = 99;
const QUESTION: &str = "Hoe vraag ik een nieuw paspoort aan?";

/// How the fake answers one `sendMessage`.
#[derive(Clone, Copy, Debug)]
enum Answer {
    Ok,
    TooManyRequests { retry_after: u64 },
    ServerError,
}

#[derive(Default)]
struct FakeState {
    /// Updates not yet confirmed, by update id.
    queue: BTreeMap<u32, Value>,
    /// Updates served once more regardless of the offset (a redelivery).
    again: VecDeque<Value>,
    /// Every `getUpdates` offset seen, in order.
    offsets: Vec<i64>,
    /// For each confirmed text message: was it in the store when Telegram was told to forget it?
    stored_when_confirmed: Vec<(String, bool)>,
    sends: Vec<(i64, String, Instant)>,
    /// Every `sendMessage` call, whatever the answer.
    send_calls: usize,
    answers: VecDeque<Answer>,
    /// Used when `answers` is empty.
    default_answer: Option<Answer>,
}

#[derive(Clone)]
struct Fake {
    state: Arc<Mutex<FakeState>>,
    news: Arc<Notify>,
    store: Arc<dyn Store>,
}

impl Fake {
    fn push(&self, update: Value) {
        let id = update["update_id"].as_u64().unwrap() as u32;
        self.state.lock().unwrap().queue.insert(id, update);
        self.news.notify_waiters();
    }

    fn redeliver(&self, update: Value) {
        self.state.lock().unwrap().again.push_back(update);
        self.news.notify_waiters();
    }

    fn sends(&self) -> Vec<(i64, String, Instant)> {
        self.state.lock().unwrap().sends.clone()
    }

    fn script(&self, answers: &[Answer], default: Option<Answer>) {
        let mut state = self.state.lock().unwrap();
        state.answers = answers.iter().copied().collect();
        state.default_answer = default;
    }
}

async fn method(
    State(fake): State<Fake>,
    Path((token, method)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    assert_eq!(token, format!("bot{TOKEN}"));
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    match method.to_ascii_lowercase().as_str() {
        "getme" => ok(json!({
            "id": BOT_ID, "is_bot": true, "first_name": "Gemeente", "username": "gemeente_bot",
            "can_join_groups": true, "can_read_all_group_messages": false,
            "supports_inline_queries": false, "can_connect_to_business": false,
            "has_main_web_app": false
        })),
        "getupdates" => get_updates(fake, body).await,
        "sendmessage" => send_message(fake, body),
        other => (
            StatusCode::NOT_FOUND,
            Json(json!({"ok": false, "error_code": 404, "description": format!("Not Found: {other}")})),
        )
            .into_response(),
    }
}

fn ok(result: Value) -> Response {
    Json(json!({ "ok": true, "result": result })).into_response()
}

async fn get_updates(fake: Fake, body: Value) -> Response {
    let offset = body["offset"].as_i64().unwrap_or(0);
    let timeout = body["timeout"].as_u64().unwrap_or(0).min(2);
    {
        let mut state = fake.state.lock().unwrap();
        state.offsets.push(offset);
        // Like Telegram: an offset confirms (and forgets) every update below it.
        let confirmed: Vec<u32> = state
            .queue
            .keys()
            .copied()
            .filter(|id| i64::from(*id) < offset)
            .collect();
        for id in confirmed {
            let update = state.queue.remove(&id).unwrap();
            if let Some(text_id) = message_id(&update) {
                let stored = fake
                    .store
                    .message(ChannelKind::Telegram, &text_id)
                    .unwrap()
                    .is_some();
                state.stored_when_confirmed.push((text_id, stored));
            }
        }
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout);
    loop {
        let news = fake.news.notified();
        {
            let mut state = fake.state.lock().unwrap();
            let mut updates: Vec<Value> = state.again.drain(..).collect();
            updates.extend(
                state
                    .queue
                    .range(u32::try_from(offset.max(0)).unwrap()..)
                    .map(|(_, u)| u.clone()),
            );
            if !updates.is_empty() {
                return ok(Value::Array(updates));
            }
        }
        if tokio::time::timeout_at(deadline, news).await.is_err() {
            return ok(json!([]));
        }
    }
}

/// The store id of a text message from a person (what intake would store), if it is one.
fn message_id(update: &Value) -> Option<String> {
    let message = update.get("message")?;
    if message["from"]["is_bot"].as_bool() == Some(true) || message.get("text").is_none() {
        return None;
    }
    Some(format!(
        "{}:{}",
        message["chat"]["id"], message["message_id"]
    ))
}

fn send_message(fake: Fake, body: Value) -> Response {
    let mut state = fake.state.lock().unwrap();
    state.send_calls += 1;
    let answer = state
        .answers
        .pop_front()
        .or(state.default_answer)
        .unwrap_or(Answer::Ok);
    let chat = body["chat_id"].as_i64().unwrap();
    let text = body["text"].as_str().unwrap().to_owned();
    match answer {
        Answer::Ok => {
            state.sends.push((chat, text.clone(), Instant::now()));
            ok(json!({
                "message_id": 1000 + state.sends.len(), "date": 1_700_000_000,
                "chat": { "id": chat, "type": "private", "first_name": "Ann" },
                "from": { "id": BOT_ID, "is_bot": true, "first_name": "Gemeente" },
                "text": text
            }))
        }
        Answer::TooManyRequests { retry_after } => (
            StatusCode::TOO_MANY_REQUESTS,
            Json(json!({
                "ok": false, "error_code": 429, "description": "Too Many Requests",
                "parameters": { "retry_after": retry_after }
            })),
        )
            .into_response(),
        Answer::ServerError => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"ok": false, "error_code": 500, "description": "Internal Server Error"})),
        )
            .into_response(),
    }
}

fn text_update(update_id: u32, chat: i64, message_id: i64, from: Value, text: &str) -> Value {
    json!({
        "update_id": update_id,
        "message": {
            "message_id": message_id,
            "date": chrono::Utc::now().timestamp(),
            "chat": { "id": chat, "type": "private", "first_name": "Ann" },
            "from": from,
            "text": text
        }
    })
}

fn ann() -> Value {
    json!({ "id": 5, "is_bot": false, "first_name": "Ann", "last_name": "de Vries" })
}

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
        let fake = Fake {
            state: Arc::default(),
            news: Arc::default(),
            store: Arc::clone(&store),
        };
        let app = Router::new()
            .route("/{token}/{method}", post(method))
            .with_state(fake.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });

        let config = TelegramConfig {
            api_url: url,
            poll_timeout: Duration::from_secs(1),
            retry_delay: Duration::from_millis(50),
            max_retry_delay: Duration::from_millis(200),
            ..TelegramConfig::new(Secret::new(TOKEN))
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
            tasks: vec![adapter, outbox, server],
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
        let server = self.tasks.pop().unwrap();
        for task in self.tasks.drain(..) {
            tokio::time::timeout(Duration::from_secs(5), task)
                .await
                .expect("stops within 5 s")
                .unwrap();
        }
        server.abort();
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
