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

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::ws::{Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use webcare_adapters::discord::{self, DiscordConfig, DiscordDeliver};
use webcare_adapters::gateway::Gateway;
use webcare_adapters::outbox::{OutboxConfig, OutboxWorker};
use webcare_adapters::secret::Secret;
use webcare_engine::store::{self, OutboxEntry, OutboxStatus, StoreOptions};
use webcare_engine::{Action, ChannelKind, Rulebook, Runtime, Store};

const TOKEN: &str = "discord-test-token";
const BOT_ID: &str = "999";
const SUPPORT_CHANNEL: u64 = 3003;
const QUESTION: &str = "Hoe vraag ik een nieuw paspoort aan?";

/// How the fake answers one create-message call.
#[derive(Clone, Copy, Debug)]
enum Answer {
    Ok,
    TooManyRequests { retry_after: f64 },
    ServerError,
}

#[derive(Default)]
struct FakeState {
    /// The Identify payload's `d`, once the adapter identified.
    identify: Option<Value>,
    /// Replies the fake accepted: channel, content, allowed_mentions, when.
    sends: Vec<(String, String, Value, Instant)>,
    send_calls: usize,
    answers: VecDeque<Answer>,
    default_answer: Option<Answer>,
    /// Calls to routes the fake does not know (a hint when serenity changes what it asks).
    unknown: Vec<String>,
}

#[derive(Clone)]
struct Fake {
    state: Arc<Mutex<FakeState>>,
    url: String,
    /// MESSAGE_CREATE payloads for the gateway session to dispatch (after READY).
    events: Arc<Mutex<Option<mpsc::UnboundedReceiver<Value>>>>,
}

impl Fake {
    fn sends(&self) -> Vec<(String, String, Value, Instant)> {
        self.state.lock().unwrap().sends.clone()
    }

    fn script(&self, answers: &[Answer], default: Option<Answer>) {
        let mut state = self.state.lock().unwrap();
        state.answers = answers.iter().copied().collect();
        state.default_answer = default;
    }
}

async fn gateway_url(State(fake): State<Fake>) -> Response {
    axum::Json(json!({
        "url": fake.url.replace("http://", "ws://"),
        "shards": 1,
        "session_start_limit": { "total": 1000, "remaining": 1000, "reset_after": 0, "max_concurrency": 1 }
    }))
    .into_response()
}

async fn create_message(
    State(fake): State<Fake>,
    Path(channel): Path<String>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Response {
    assert_eq!(
        headers.get("authorization").unwrap(),
        &format!("Bot {TOKEN}")
    );
    let body: Value = serde_json::from_slice(&body).unwrap();
    let mut state = fake.state.lock().unwrap();
    state.send_calls += 1;
    let answer = state
        .answers
        .pop_front()
        .or(state.default_answer)
        .unwrap_or(Answer::Ok);
    match answer {
        Answer::Ok => {
            let content = body["content"].as_str().unwrap().to_owned();
            state.sends.push((
                channel.clone(),
                content.clone(),
                body["allowed_mentions"].clone(),
                Instant::now(),
            ));
            axum::Json(message_json(&format!("{}", 5000 + state.sends.len()), &channel, bot_user(BOT_ID), &content, None)).into_response()
        }
        Answer::TooManyRequests { retry_after } => (
            StatusCode::TOO_MANY_REQUESTS,
            [
                ("retry-after", format!("{}", retry_after.ceil())),
                ("x-ratelimit-scope", "user".to_owned()),
            ],
            axum::Json(json!({
                "message": "You are being rate limited.", "retry_after": retry_after, "global": false
            })),
        )
            .into_response(),
        Answer::ServerError => {
            (StatusCode::INTERNAL_SERVER_ERROR, "upstream connect error").into_response()
        }
    }
}

async fn unknown(State(fake): State<Fake>, uri: Uri) -> Response {
    fake.state.lock().unwrap().unknown.push(uri.to_string());
    (
        StatusCode::NOT_FOUND,
        axum::Json(json!({"message": "404: Not Found", "code": 0})),
    )
        .into_response()
}

async fn websocket(State(fake): State<Fake>, upgrade: WebSocketUpgrade) -> Response {
    upgrade.on_upgrade(move |socket| session(fake, socket))
}

/// One gateway session: Hello, Identify → READY, heartbeats → ACK, then the test's events.
async fn session(fake: Fake, mut socket: WebSocket) {
    let hello = json!({ "op": 10, "d": { "heartbeat_interval": 45000 }, "s": null, "t": null });
    if socket
        .send(WsMessage::Text(hello.to_string().into()))
        .await
        .is_err()
    {
        return;
    }
    let mut seq = 0u64;
    let mut events = None;
    loop {
        let step = tokio::select! {
            incoming = socket.recv() => Step::Incoming(incoming),
            event = next_event(&mut events) => Step::Event(event),
        };
        let reply = match step {
            Step::Incoming(Some(Ok(WsMessage::Text(text)))) => {
                let payload: Value = serde_json::from_str(text.as_str()).unwrap();
                match payload["op"].as_u64() {
                    Some(2) => {
                        fake.state.lock().unwrap().identify = Some(payload["d"].clone());
                        // Only the first session gets the events; a reconnect would see none.
                        events = fake.events.lock().unwrap().take();
                        seq += 1;
                        json!({
                            "op": 0, "t": "READY", "s": seq,
                            "d": {
                                "v": 10,
                                "user": bot_user(BOT_ID),
                                "guilds": [],
                                "session_id": "session-1",
                                "resume_gateway_url": fake.url.replace("http://", "ws://"),
                                "application": { "id": BOT_ID, "flags": 0 }
                            }
                        })
                    }
                    Some(1) => json!({ "op": 11, "d": null, "s": null, "t": null }),
                    _ => continue,
                }
            }
            Step::Incoming(Some(Ok(WsMessage::Close(_))) | Some(Err(_)) | None) => return,
            Step::Incoming(Some(Ok(_))) => continue,
            Step::Event(Some(message)) => {
                seq += 1;
                json!({ "op": 0, "t": "MESSAGE_CREATE", "s": seq, "d": message })
            }
            Step::Event(None) => {
                events = None;
                continue;
            }
        };
        if socket
            .send(WsMessage::Text(reply.to_string().into()))
            .await
            .is_err()
        {
            return;
        }
    }
}

enum Step {
    Incoming(Option<Result<WsMessage, axum::Error>>),
    Event(Option<Value>),
}

/// The next event to dispatch; never, before READY.
async fn next_event(events: &mut Option<mpsc::UnboundedReceiver<Value>>) -> Option<Value> {
    match events {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

fn bot_user(id: &str) -> Value {
    json!({ "id": id, "username": "gemeente", "discriminator": "0", "global_name": null, "avatar": null, "bot": true })
}

fn ann() -> Value {
    json!({ "id": "5", "username": "ann", "discriminator": "0", "global_name": "Ann de Vries", "avatar": null })
}

fn message_json(
    id: &str,
    channel: &str,
    author: Value,
    content: &str,
    guild: Option<&str>,
) -> Value {
    let mut message = json!({
        "id": id, "channel_id": channel, "author": author, "content": content,
        "timestamp": chrono::Utc::now().to_rfc3339(), "edited_timestamp": null, "tts": false,
        "mention_everyone": false, "mentions": [], "mention_roles": [], "attachments": [],
        "embeds": [], "pinned": false, "type": 0
    });
    if let Some(guild) = guild {
        message["guild_id"] = guild.into();
    }
    message
}

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

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (events, events_rx) = mpsc::unbounded_channel();
        let fake = Fake {
            state: Arc::default(),
            url: url.clone(),
            events: Arc::new(Mutex::new(Some(events_rx))),
        };
        let app = Router::new()
            .route("/", any(websocket))
            .route("/api/v10/gateway", get(gateway_url))
            .route("/api/v10/gateway/bot", get(gateway_url))
            .route("/api/v10/channels/{channel}/messages", post(create_message))
            .fallback(unknown)
            .with_state(fake.clone());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });

        let config = DiscordConfig {
            api_url: Some(url),
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
            tasks: vec![adapter, outbox, server],
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
        let server = self.tasks.pop().unwrap();
        for task in self.tasks.drain(..) {
            tokio::time::timeout(Duration::from_secs(5), task)
                .await
                .expect("stops within 5 s")
                .unwrap();
        }
        server.abort();
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
