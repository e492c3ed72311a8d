//! A fake Discord for tests, on 127.0.0.1 port 0: the REST API serenity reaches through
//! `HttpBuilder::proxy` (`GET /api/v10/gateway[/bot]`, `POST /api/v10/channels/{id}/messages`
//! recorded or answered with a scripted 429 or 500) and a gateway WebSocket that says Hello,
//! takes Identify, sends READY, answers heartbeats and dispatches the test's MESSAGE_CREATE
//! events to the session that identified (when it ends, the next one to identify gets the
//! events not yet sent, as a bot that reconnects elsewhere would). Shared by
//! `adapters/tests/discord.rs` and the `webcare run` tests in `tests/`.

#![allow(dead_code, clippy::unwrap_used)] // each test binary uses a different part

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::ws::{Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use serde_json::{Value, json};
use tokio::sync::mpsc;

pub const TOKEN: &str = "discord-test-token";
pub const BOT_ID: &str = "999";

/// Serves the fake; `dispatch` queues events for the first gateway session (sent after READY).
pub async fn serve() -> (Fake, mpsc::UnboundedSender<Value>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (events, events_rx) = mpsc::unbounded_channel();
    let fake = Fake {
        state: Arc::default(),
        url,
        events: Arc::new(Mutex::new(Some(events_rx))),
    };
    let app = Router::new()
        .route("/", any(websocket))
        .route("/api/v10/gateway", get(gateway_url))
        .route("/api/v10/gateway/bot", get(gateway_url))
        .route("/api/v10/channels/{channel}/messages", post(create_message))
        .fallback(unknown)
        .with_state(fake.clone());
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (fake, events)
}

/// How the fake answers one create-message call.
#[derive(Clone, Copy, Debug)]
pub enum Answer {
    Ok,
    TooManyRequests { retry_after: f64 },
    ServerError,
}

#[derive(Default)]
pub struct FakeState {
    /// The Identify payload's `d`, once the adapter identified.
    pub identify: Option<Value>,
    /// When each gateway session identified.
    pub identified: Vec<Instant>,
    /// Sessions identified and not yet ended, now and at most.
    pub live: usize,
    pub most_live: usize,
    /// Replies the fake accepted: channel, content, allowed_mentions, when.
    pub sends: Vec<(String, String, Value, Instant)>,
    pub send_calls: usize,
    /// The `message_reference` of each accepted reply (`null` when it quotes nothing).
    pub references: Vec<Value>,
    pub answers: VecDeque<Answer>,
    pub default_answer: Option<Answer>,
    /// The message created for each nonce sent with `enforce_nonce`, as Discord keeps them for
    /// a few minutes: a second create with the same nonce gets that message back.
    pub nonces: std::collections::HashMap<String, Value>,
    /// Calls to routes the fake does not know (a hint when serenity changes what it asks).
    pub unknown: Vec<String>,
}

#[derive(Clone)]
pub struct Fake {
    pub state: Arc<Mutex<FakeState>>,
    pub url: String,
    /// MESSAGE_CREATE payloads for the gateway session to dispatch (after READY).
    pub events: Arc<Mutex<Option<mpsc::UnboundedReceiver<Value>>>>,
}

impl Fake {
    pub fn sends(&self) -> Vec<(String, String, Value, Instant)> {
        self.state.lock().unwrap().sends.clone()
    }

    pub fn script(&self, answers: &[Answer], default: Option<Answer>) {
        let mut state = self.state.lock().unwrap();
        state.answers = answers.iter().copied().collect();
        state.default_answer = default;
    }
}

pub async fn gateway_url(State(fake): State<Fake>) -> Response {
    axum::Json(json!({
        "url": fake.url.replace("http://", "ws://"),
        "shards": 1,
        "session_start_limit": { "total": 1000, "remaining": 1000, "reset_after": 0, "max_concurrency": 1 }
    }))
    .into_response()
}

pub async fn create_message(
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
    let nonce = body["nonce"]
        .as_str()
        .filter(|_| body["enforce_nonce"] == true)
        .map(str::to_owned);
    if let Some(created) = nonce.as_ref().and_then(|n| state.nonces.get(n)) {
        return axum::Json(created.clone()).into_response();
    }
    match answer {
        Answer::Ok => {
            state.references.push(body["message_reference"].clone());
            let content = body["content"].as_str().unwrap().to_owned();
            state.sends.push((
                channel.clone(),
                content.clone(),
                body["allowed_mentions"].clone(),
                Instant::now(),
            ));
            let created = message_json(&format!("{}", 5000 + state.sends.len()), &channel, bot_user(BOT_ID), &content, None);
            if let Some(nonce) = nonce {
                state.nonces.insert(nonce, created.clone());
            }
            axum::Json(created).into_response()
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

pub async fn unknown(State(fake): State<Fake>, uri: Uri) -> Response {
    fake.state.lock().unwrap().unknown.push(uri.to_string());
    (
        StatusCode::NOT_FOUND,
        axum::Json(json!({"message": "404: Not Found", "code": 0})),
    )
        .into_response()
}

pub async fn websocket(State(fake): State<Fake>, upgrade: WebSocketUpgrade) -> Response {
    upgrade.on_upgrade(move |socket| session(fake, socket))
}

/// One gateway session: Hello, Identify → READY, heartbeats → ACK, then the test's events.
/// When it ends, the events not yet sent wait for the next session to identify.
pub async fn session(fake: Fake, socket: WebSocket) {
    let mut identified = false;
    if let Some(events) = dispatch(&fake, socket, &mut identified).await {
        fake.events.lock().unwrap().get_or_insert(events);
    }
    if identified {
        fake.state.lock().unwrap().live -= 1;
    }
}

/// Runs a session; returns the events it held when it ends.
async fn dispatch(
    fake: &Fake,
    mut socket: WebSocket,
    identified: &mut bool,
) -> Option<mpsc::UnboundedReceiver<Value>> {
    let hello = json!({ "op": 10, "d": { "heartbeat_interval": 45000 }, "s": null, "t": null });
    if socket
        .send(WsMessage::Text(hello.to_string().into()))
        .await
        .is_err()
    {
        return None;
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
                        let mut state = fake.state.lock().unwrap();
                        state.identify = Some(payload["d"].clone());
                        state.identified.push(Instant::now());
                        if !*identified {
                            *identified = true;
                            state.live += 1;
                            state.most_live = state.most_live.max(state.live);
                        }
                        drop(state);
                        // The events go to this session while it lasts (none while another
                        // session still holds them).
                        if events.is_none() {
                            events = fake.events.lock().unwrap().take();
                        }
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
            Step::Incoming(Some(Ok(WsMessage::Close(_))) | Some(Err(_)) | None) => return events,
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
            return events;
        }
    }
}

pub enum Step {
    Incoming(Option<Result<WsMessage, axum::Error>>),
    Event(Option<Value>),
}

/// The next event to dispatch; never, before READY.
pub async fn next_event(events: &mut Option<mpsc::UnboundedReceiver<Value>>) -> Option<Value> {
    match events {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

pub fn bot_user(id: &str) -> Value {
    json!({ "id": id, "username": "gemeente", "discriminator": "0", "global_name": null, "avatar": null, "bot": true })
}

pub fn ann() -> Value {
    json!({ "id": "5", "username": "ann", "discriminator": "0", "global_name": "Ann de Vries", "avatar": null })
}

pub fn message_json(
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
