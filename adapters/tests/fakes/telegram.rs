//! A fake Telegram Bot API for tests, on 127.0.0.1 port 0: `getMe`, `getUpdates` (queued
//! updates, long polling, offsets confirm like Telegram's), `sendMessage` (recorded, or a
//! scripted 429 or 500), and `setWebhook` / `deleteWebhook` (recorded; teloxide sends
//! `setWebhook` as multipart form data). Method names are compared case-insensitively: teloxide sends them
//! PascalCase. Shared by `adapters/tests/telegram.rs` and the `webcare run` test in `tests/`.

#![allow(dead_code, clippy::unwrap_used)] // each test binary uses a different part

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
use tokio::sync::Notify;
use webcare_engine::{ChannelKind, Store};

pub const TOKEN: &str = "123456:TEST-token";
pub const BOT_ID: u64 = 99;

/// Serves the fake; `store`, when given, is checked at every confirmation (was the update
/// stored before Telegram was told to forget it?).
pub async fn serve(store: Option<Arc<dyn Store>>) -> Fake {
    let fake = Fake {
        state: Arc::default(),
        news: Arc::default(),
        store,
        url: String::new(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let fake = Fake {
        url: format!("http://{}", listener.local_addr().unwrap()),
        ..fake
    };
    let app = Router::new()
        .route("/{token}/{method}", post(method))
        .with_state(fake.clone());
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    fake
}

/// How the fake answers one `sendMessage`.
#[derive(Clone, Copy, Debug)]
pub enum Answer {
    Ok,
    TooManyRequests { retry_after: u64 },
    ServerError,
}

#[derive(Default)]
pub struct FakeState {
    /// Updates not yet confirmed, by update id.
    pub queue: BTreeMap<u32, Value>,
    /// Updates served once more regardless of the offset (a redelivery).
    pub again: VecDeque<Value>,
    /// Every `getUpdates` offset seen, in order.
    pub offsets: Vec<i64>,
    /// For each confirmed text message: was it in the store when Telegram was told to forget it?
    pub stored_when_confirmed: Vec<(String, bool)>,
    pub sends: Vec<(i64, String, Instant)>,
    /// Every `sendMessage` call, whatever the answer.
    pub send_calls: usize,
    /// The `reply_parameters.message_id` of each accepted reply.
    pub replies_to: Vec<Option<i64>>,
    pub answers: VecDeque<Answer>,
    /// The fields of every `setWebhook` call (`url`, `secret_token`, `allowed_updates`).
    pub set_webhook: Vec<BTreeMap<String, String>>,
    pub delete_webhook_calls: usize,
    /// Used when `answers` is empty.
    pub default_answer: Option<Answer>,
}

#[derive(Clone)]
pub struct Fake {
    pub state: Arc<Mutex<FakeState>>,
    pub news: Arc<Notify>,
    pub store: Option<Arc<dyn Store>>,
    /// `http://127.0.0.1:<port>`, the Bot API URL (no trailing slash).
    pub url: String,
}

impl Fake {
    pub fn push(&self, update: Value) {
        let id = update["update_id"].as_u64().unwrap() as u32;
        self.state.lock().unwrap().queue.insert(id, update);
        self.news.notify_waiters();
    }

    pub fn redeliver(&self, update: Value) {
        self.state.lock().unwrap().again.push_back(update);
        self.news.notify_waiters();
    }

    pub fn sends(&self) -> Vec<(i64, String, Instant)> {
        self.state.lock().unwrap().sends.clone()
    }

    pub fn script(&self, answers: &[Answer], default: Option<Answer>) {
        let mut state = self.state.lock().unwrap();
        state.answers = answers.iter().copied().collect();
        state.default_answer = default;
    }
}

pub async fn method(
    State(fake): State<Fake>,
    Path((token, method)): Path<(String, String)>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Response {
    assert_eq!(token, format!("bot{TOKEN}"));
    if method.eq_ignore_ascii_case("setwebhook") {
        let content_type = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let fields = form_fields(content_type, &body);
        fake.state.lock().unwrap().set_webhook.push(fields);
        return ok(json!(true));
    }
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    match method.to_ascii_lowercase().as_str() {
        "deletewebhook" => {
            fake.state.lock().unwrap().delete_webhook_calls += 1;
            ok(json!(true))
        }
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

/// The fields of a `multipart/form-data` body (or of a JSON object), as text.
pub fn form_fields(content_type: &str, body: &[u8]) -> BTreeMap<String, String> {
    let mut fields = BTreeMap::new();
    if let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(body) {
        for (key, value) in object {
            let text = value
                .as_str()
                .map_or_else(|| value.to_string(), str::to_owned);
            fields.insert(key, text);
        }
        return fields;
    }
    let Some(boundary) = content_type.split("boundary=").nth(1) else {
        return fields;
    };
    let boundary = format!("--{}", boundary.trim_matches('"'));
    let text = String::from_utf8_lossy(body);
    for part in text.split(boundary.as_str()) {
        let Some((head, value)) = part.split_once("\r\n\r\n") else {
            continue;
        };
        let Some(name) = head
            .split("name=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
        else {
            continue;
        };
        fields.insert(name.to_owned(), value.trim_end_matches("\r\n").to_owned());
    }
    fields
}

pub fn ok(result: Value) -> Response {
    Json(json!({ "ok": true, "result": result })).into_response()
}

pub async fn get_updates(fake: Fake, body: Value) -> Response {
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
            if let (Some(text_id), Some(store)) = (message_id(&update), &fake.store) {
                let stored = store
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
pub fn message_id(update: &Value) -> Option<String> {
    let message = update.get("message")?;
    if message["from"]["is_bot"].as_bool() == Some(true) || message.get("text").is_none() {
        return None;
    }
    Some(format!(
        "{}:{}",
        message["chat"]["id"], message["message_id"]
    ))
}

pub fn send_message(fake: Fake, body: Value) -> Response {
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
            state
                .replies_to
                .push(body["reply_parameters"]["message_id"].as_i64());
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

pub fn text_update(update_id: u32, chat: i64, message_id: i64, from: Value, text: &str) -> Value {
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

pub fn ann() -> Value {
    json!({ "id": 5, "is_bot": false, "first_name": "Ann", "last_name": "de Vries" })
}
