//! A fake Meta Graph API for tests, on 127.0.0.1 port 0. It plays both sides of Meta: it posts
//! webhook deliveries to webcare signed with the app secret (as Meta does), remembering when
//! each customer last wrote, and it serves the Send API (`POST /{version}/{account}/messages`),
//! which checks the access token, enforces the 24-hour customer service window for free text
//! (error 131047, as WhatsApp answers) and can be scripted to answer with Graph's own error
//! shapes (130429 rate limit, 500).

#![allow(dead_code, clippy::unwrap_used)] // each test binary uses a different part

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

pub const APP_SECRET: &str = "app-secret-for-tests";
pub const VERIFY_TOKEN: &str = "verify-me";
pub const ACCESS_TOKEN: &str = "EAAG-test-token";
pub const PHONE_NUMBER_ID: &str = "1065550100";
pub const CUSTOMER: &str = "31612345678";

/// How the fake answers one send.
#[derive(Clone, Copy, Debug)]
pub enum Answer {
    RateLimited,
    ServerError,
}

/// One send the fake accepted.
#[derive(Clone, Debug)]
pub struct Send {
    pub account: String,
    pub body: Value,
}

impl Send {
    pub fn to(&self) -> String {
        let wa = self.body["to"].as_str();
        let ms = self.body["recipient"]["id"].as_str();
        wa.or(ms).unwrap_or_default().to_owned()
    }

    /// The free text, or for a template its one parameter.
    pub fn text(&self) -> String {
        let body = &self.body;
        body["text"]["body"]
            .as_str()
            .or(body["message"]["text"].as_str())
            .or(body["template"]["components"][0]["parameters"][0]["text"].as_str())
            .unwrap_or_default()
            .to_owned()
    }
}

#[derive(Default)]
pub struct FakeState {
    pub sends: Vec<Send>,
    /// Every send request, accepted or not.
    pub attempts: usize,
    pub script: VecDeque<Answer>,
    /// When each customer last wrote (from the deliveries the fake posted).
    pub last_inbound: HashMap<String, DateTime<Utc>>,
    /// The fake's "now" for the window; tests move it with the service's clock.
    pub now: Option<DateTime<Utc>>,
    next_id: u64,
}

#[derive(Clone)]
pub struct Fake {
    pub state: Arc<Mutex<FakeState>>,
    pub url: String,
    client: reqwest::Client,
}

pub async fn serve() -> Fake {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let fake = Fake {
        state: Arc::default(),
        url: format!("http://{}", listener.local_addr().unwrap()),
        client: reqwest::Client::new(),
    };
    let app = Router::new()
        .route("/{version}/{account}/messages", post(send))
        .with_state(fake.clone());
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    fake
}

impl Fake {
    pub fn sends(&self) -> Vec<Send> {
        self.state.lock().unwrap().sends.clone()
    }

    pub fn script(&self, answers: &[Answer]) {
        self.state.lock().unwrap().script.extend(answers);
    }

    pub fn set_now(&self, now: DateTime<Utc>) {
        self.state.lock().unwrap().now = Some(now);
    }

    /// Posts `payload` to `webhook` signed as Meta signs (with `secret`), returning the status.
    pub async fn post_signed(&self, webhook: &str, payload: &Value, secret: &str) -> StatusCode {
        let body = serde_json::to_vec(payload).unwrap();
        self.remember_inbound(payload);
        let signature = webcare_adapters::meta::sign(secret, &body);
        self.post_raw(webhook, body, Some(&signature)).await
    }

    /// Posts raw bytes with the given signature header (or none).
    pub async fn post_raw(
        &self,
        webhook: &str,
        body: Vec<u8>,
        signature: Option<&str>,
    ) -> StatusCode {
        let mut request = self
            .client
            .post(webhook)
            .header("content-type", "application/json")
            .body(body);
        if let Some(signature) = signature {
            request = request.header("x-hub-signature-256", signature);
        }
        let status = request.send().await.unwrap().status().as_u16();
        StatusCode::from_u16(status).unwrap()
    }

    fn remember_inbound(&self, payload: &Value) {
        let mut state = self.state.lock().unwrap();
        for entry in payload["entry"].as_array().into_iter().flatten() {
            for change in entry["changes"].as_array().into_iter().flatten() {
                for message in change["value"]["messages"].as_array().into_iter().flatten() {
                    let from = message["from"].as_str().unwrap_or_default().to_owned();
                    let seconds: i64 = message["timestamp"].as_str().unwrap().parse().unwrap();
                    let at = DateTime::from_timestamp(seconds, 0).unwrap();
                    state.last_inbound.insert(from, at);
                }
            }
        }
    }
}

/// A WhatsApp delivery with one message from [`CUSTOMER`] (`message` is its body without
/// `from` / `id` / `timestamp`).
pub fn whatsapp(id: &str, at: DateTime<Utc>, mut message: Value) -> Value {
    message["from"] = CUSTOMER.into();
    message["id"] = id.into();
    message["timestamp"] = at.timestamp().to_string().into();
    json!({
        "object": "whatsapp_business_account",
        "entry": [{ "id": "WABA1", "changes": [{ "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": { "display_phone_number": "31850000000", "phone_number_id": PHONE_NUMBER_ID },
            "contacts": [{ "profile": { "name": "Ann de Vries" }, "wa_id": CUSTOMER }],
            "messages": [message]
        }}]}]
    })
}

pub fn whatsapp_text(id: &str, at: DateTime<Utc>, text: &str) -> Value {
    whatsapp(id, at, json!({ "type": "text", "text": { "body": text } }))
}

/// A WhatsApp status delivery for message `wamid`, made at `at`.
pub fn whatsapp_status(
    wamid: &str,
    status: &str,
    at: DateTime<Utc>,
    error: Option<(i64, &str)>,
) -> Value {
    let timestamp = at.timestamp().to_string();
    let mut value =
        json!({ "id": wamid, "status": status, "timestamp": timestamp, "recipient_id": CUSTOMER });
    if let Some((code, title)) = error {
        value["errors"] = json!([{ "code": code, "title": title, "message": title }]);
    }
    json!({
        "object": "whatsapp_business_account",
        "entry": [{ "id": "WABA1", "changes": [{ "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": { "display_phone_number": "31850000000", "phone_number_id": PHONE_NUMBER_ID },
            "statuses": [value]
        }}]}]
    })
}

fn graph_error(status: StatusCode, code: i64, message: &str) -> Response {
    let body = json!({ "error": {
        "message": message, "type": "OAuthException", "code": code,
        "error_data": { "messaging_product": "whatsapp", "details": message },
        "fbtrace_id": "AbCdEf"
    }});
    (status, Json(body)).into_response()
}

async fn send(
    State(fake): State<Fake>,
    Path((_version, account)): Path<(String, String)>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let mut state = fake.state.lock().unwrap();
    state.attempts += 1;
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if auth != format!("Bearer {ACCESS_TOKEN}") {
        return graph_error(StatusCode::UNAUTHORIZED, 190, "Invalid OAuth access token");
    }
    match state.script.pop_front() {
        Some(Answer::RateLimited) => {
            return graph_error(
                StatusCode::BAD_REQUEST,
                130429,
                "Rate limit hit: Cloud API message throughput has been reached",
            );
        }
        Some(Answer::ServerError) => {
            return graph_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                1,
                "An unknown error occurred",
            );
        }
        None => {}
    }
    let to = body["to"].as_str().unwrap_or_default().to_owned();
    let free_text = body["type"] == "text";
    let last = state.last_inbound.get(&to).copied();
    let now = state.now.unwrap_or_else(Utc::now);
    if free_text && last.is_none_or(|last| now - last >= chrono::Duration::hours(24)) {
        return graph_error(
            StatusCode::BAD_REQUEST,
            131047,
            "Re-engagement message: more than 24 hours have passed since the recipient last replied",
        );
    }
    state.next_id += 1;
    // Messenger and Instagram answer with the Send API's own shape.
    if let Some(recipient) = body["recipient"]["id"].as_str() {
        let answer =
            json!({ "recipient_id": recipient, "message_id": format!("m_OUT{}", state.next_id) });
        state.sends.push(Send { account, body });
        return Json(answer).into_response();
    }
    let id = format!("wamid.OUT{}", state.next_id);
    state.sends.push(Send { account, body });
    Json(json!({
        "messaging_product": "whatsapp",
        "contacts": [{ "input": to, "wa_id": to }],
        "messages": [{ "id": id }]
    }))
    .into_response()
}
