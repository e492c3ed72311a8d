//! The HTTP channel, like Chatwoot's API channel: any other platform (a Facebook, WhatsApp or
//! e-mail bridge) posts a message to `POST /api/v1/messages` and gets the decision back, and
//! replies (the bot's, and later an agent's) are posted to a configured callback URL by the
//! outbox. It exists so an organisation can connect a platform webcare has no adapter for
//! without touching webcare.
//!
//! **Inbound.** The body is JSON `{id, conversation?, author?, text, received_at?, metadata?}`
//! (unknown fields are refused, so a misspelt `conversation_id` is an error, not a silently
//! new conversation). The message is taken in durably before the answer: a 200 means it is
//! stored. The same `id` posted again is answered with the first decision and
//! `"duplicate": true`, so a bridge can simply retry on any error. Problems are 4xx with a JSON
//! body `{"error": "…"}` that says what to fix: 413 too large, 415 not JSON, 400 malformed JSON
//! (with the parser's line and column), 422 well-formed but wrong, 401 a missing or wrong
//! signature when signatures are required. A store failure is a 503: retry.
//!
//! **Signatures.** Inbound, when `require_signature` is on (the default once a secret is set):
//! `X-Webcare-Timestamp: <Unix seconds>` and `X-Webcare-Signature: sha256=<hex HMAC-SHA256 of
//! "<timestamp>.<raw body>">` with the shared secret, compared in constant time. A timestamp
//! more than [`SIGNATURE_WINDOW`] away from now is refused, so a captured request cannot be
//! replayed later; within the window a replay is the same message id, which intake answers
//! once. Callbacks carry `X-Webcare-Signature: sha256=<hex HMAC of the raw body>`.
//!
//! **Time.** A caller-set `received_at` drives SLA deadlines and retention, so it is bounded:
//! older than [`MAX_AGE`] or more than [`MAX_SKEW`] in the future is refused with 422 and a
//! message that says the allowed range (never clamped silently: the bridge has a clock or a
//! queue problem it should hear about).
//!
//! **Replies.** With a callback URL, [`CallbackDeliver`] posts each reply (see [`Callback`]) and
//! maps the answer onto the outbox's retry rules: 2xx sent, 429 wait (`Retry-After`), 408 and
//! 5xx and network errors retry, other 4xx give up. Without a callback URL the bot's reply is
//! delivered in the response itself, so it is stored as sent in the intake transaction (never
//! pending, so configuring a callback later cannot send it again); agent replies then wait in
//! the outbox until a callback URL is configured.
//!
//! **Modes.** In `shadow` and `listen` mode (see `webcare_engine::mode`) the response still
//! carries the decision, with `"mode"` saying which, but its `reply` is null and nothing is
//! posted to the callback: the bot's words stay in the store for the reports.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use webcare_engine::store::OutboxEntry;
use webcare_engine::{ChannelKind, DecisionRecord, Inbound, Mode};

use crate::delivery::{BoxFuture, Deliver, DeliveryError};
use crate::gateway::{Gateway, GatewayError};

/// The header that carries the HMAC of the body, inbound and on callbacks.
pub const SIGNATURE_HEADER: &str = "x-webcare-signature";
/// The header with the Unix time (seconds) an inbound signature covers.
pub const TIMESTAMP_HEADER: &str = "x-webcare-timestamp";
/// How far an inbound signature's timestamp may be from now.
pub const SIGNATURE_WINDOW: Duration = Duration::from_secs(300);
/// The oldest `received_at` a caller may set (a bridge catching up after a week's outage).
pub const MAX_AGE: chrono::TimeDelta = chrono::TimeDelta::days(7);
/// How far in the future a caller's `received_at` may be (clock skew).
pub const MAX_SKEW: chrono::TimeDelta = chrono::TimeDelta::minutes(5);
/// The outbox id of a callback, so a receiver can drop a repeated delivery.
pub const DELIVERY_HEADER: &str = "x-webcare-delivery";

/// On each callback: the reply's outbox id, the same on a repeat (see [`crate::outbox`]).
pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";
/// The default largest request body.
pub const DEFAULT_MAX_BODY: usize = 64 * 1024;

const MAX_ID: usize = 256;
const MAX_TEXT: usize = 16 * 1024;

/// The shared secret for signatures. Its `Debug` never shows it; it is never logged.
#[derive(Clone)]
pub struct SigningKey(Arc<[u8]>);

impl SigningKey {
    pub fn new(secret: impl AsRef<[u8]>) -> Self {
        SigningKey(Arc::from(secret.as_ref()))
    }

    fn mac(&self) -> Hmac<Sha256> {
        match <Hmac<Sha256> as Mac>::new_from_slice(&self.0) {
            Ok(mac) => mac,
            Err(_) => unreachable!("HMAC takes keys of every length"),
        }
    }

    /// The header value for `body`: `sha256=<hex>`.
    pub fn sign(&self, body: &[u8]) -> String {
        let mut mac = self.mac();
        mac.update(body);
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    }

    /// The inbound signature header value for `body` sent at `timestamp` (Unix seconds).
    pub fn sign_timestamped(&self, timestamp: i64, body: &[u8]) -> String {
        let mut mac = self.mac();
        mac.update(format!("{timestamp}.").as_bytes());
        mac.update(body);
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    }

    /// Whether `header` signs `timestamp` and `body` (see [`SigningKey::sign_timestamped`]),
    /// compared in constant time.
    pub fn verify_timestamped(&self, timestamp: i64, body: &[u8], header: &str) -> bool {
        let Some(hex_digest) = header.trim().strip_prefix("sha256=") else {
            return false;
        };
        let Ok(digest) = hex::decode(hex_digest) else {
            return false;
        };
        let mut mac = self.mac();
        mac.update(format!("{timestamp}.").as_bytes());
        mac.update(body);
        mac.verify_slice(&digest).is_ok()
    }

    /// Whether `header` is the signature of `body`, compared in constant time.
    pub fn verify(&self, body: &[u8], header: &str) -> bool {
        let Some(hex_digest) = header.trim().strip_prefix("sha256=") else {
            return false;
        };
        let Ok(digest) = hex::decode(hex_digest) else {
            return false;
        };
        let mut mac = self.mac();
        mac.update(body);
        mac.verify_slice(&digest).is_ok()
    }
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// The HTTP channel's settings; the runtime form of `[http_channel]`.
#[derive(Debug, Clone)]
pub struct HttpChannelConfig {
    /// Where replies are posted; `None` delivers the bot's reply in the response only.
    pub callback_url: Option<String>,
    pub secret: Option<SigningKey>,
    /// Refuse inbound requests without a valid signature (needs `secret`).
    pub require_signature: bool,
    pub max_body: usize,
    /// The longest a callback may take.
    pub callback_timeout: Duration,
}

impl Default for HttpChannelConfig {
    fn default() -> Self {
        HttpChannelConfig {
            callback_url: None,
            secret: None,
            require_signature: false,
            max_body: DEFAULT_MAX_BODY,
            callback_timeout: Duration::from_secs(10),
        }
    }
}

/// Why the HTTP channel cannot start.
#[derive(Debug, thiserror::Error)]
pub enum HttpChannelError {
    #[error(
        "`require_signature` is on but no secret is set; set WEBCARE_HTTP_SECRET or `secret_file`"
    )]
    SignatureWithoutSecret,
    #[error("the callback URL `{0}` is not an http:// or https:// URL")]
    BadCallbackUrl(String),
    #[error("cannot build the HTTP client for callbacks: {0}")]
    Client(String),
}

/// The inbound request body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MessageIn {
    id: String,
    #[serde(default)]
    conversation: Option<String>,
    #[serde(default)]
    author: Option<String>,
    text: String,
    #[serde(default)]
    received_at: Option<String>,
    #[serde(default)]
    metadata: std::collections::BTreeMap<String, String>,
}

/// The response: the flat decision record plus whether this was a repeat and the channel's
/// mode. Outside `live` the `reply` is always null: a bridge that forwards `reply` to the
/// customer must not send what the bot only would have said.
#[derive(Serialize)]
struct DecisionOut<'a> {
    #[serde(flatten)]
    decision: DecisionRecord<'a>,
    duplicate: bool,
    mode: Mode,
}

/// A 4xx/5xx with a JSON body `{"error": "…"}`.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.message });
        (self.status, axum::Json(body)).into_response()
    }
}

struct ChannelState {
    gateway: Gateway,
    config: HttpChannelConfig,
}

/// The HTTP channel: its routes.
pub struct HttpChannel {
    router: Router,
}

impl HttpChannel {
    pub fn new(gateway: Gateway, config: HttpChannelConfig) -> Result<Self, HttpChannelError> {
        if config.require_signature && config.secret.is_none() {
            return Err(HttpChannelError::SignatureWithoutSecret);
        }
        let max_body = config.max_body;
        let state = Arc::new(ChannelState { gateway, config });
        let router = Router::new()
            .route("/api/v1/messages", post(receive))
            .layer(axum::extract::DefaultBodyLimit::max(max_body))
            .with_state(state);
        Ok(HttpChannel { router })
    }

    /// `POST /api/v1/messages`.
    pub fn routes(&self) -> Router {
        self.router.clone()
    }

    /// Ends the channel after the web server stopped. Replies given in responses are stored as
    /// sent at intake, so nothing is left to record.
    pub async fn finish(self) {
        drop(self.router);
    }
}

/// The routes alone, for tests and callers that do not need [`HttpChannel::finish`].
pub fn routes(gateway: Gateway, config: HttpChannelConfig) -> Result<Router, HttpChannelError> {
    Ok(HttpChannel::new(gateway, config)?.routes())
}

async fn receive(
    State(state): State<Arc<ChannelState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let config = &state.config;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if mime != "application/json" {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "the body must be JSON with `Content-Type: application/json`",
        ));
    }
    let bytes = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the body is larger than {} bytes", config.max_body),
            )
        } else {
            ApiError::new(
                rejection.status(),
                format!("cannot read the body: {rejection}"),
            )
        }
    })?;

    if config.require_signature {
        let key = config
            .secret
            .as_ref()
            .ok_or_else(|| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "no signing secret"))?;
        check_signature(key, &headers, &bytes, state.gateway.now())?;
    }

    let message = parse(&bytes, state.gateway.now())?;
    // No callback: the reply is in this response, so it is stored as delivered.
    let accepted = match config.callback_url {
        None => state.gateway.accept_inline(message).await,
        Some(_) => state.gateway.accept(message).await,
    };
    let receipt = accepted.map_err(|error| {
        tracing::error!(error = %error, "http channel: intake failed");
        match error {
            GatewayError::Store(_) | GatewayError::Case(_) | GatewayError::Stopped(_) => {
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the message could not be stored; retry (a repeat is answered once)",
                )
            }
        }
    })?;
    let mut decision = DecisionRecord::from(&receipt.decision);
    if !receipt.mode.sends_replies() {
        decision.reply = None;
    }
    let out = DecisionOut {
        decision,
        duplicate: receipt.duplicate,
        mode: receipt.mode,
    };
    Ok(axum::Json(out).into_response())
}

/// Checks the timestamp and the signature of an inbound request (see the module docs).
fn check_signature(
    key: &SigningKey,
    headers: &HeaderMap,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    let unauthorized = |message: &str| ApiError::new(StatusCode::UNAUTHORIZED, message);
    let Some(signature) = headers.get(SIGNATURE_HEADER) else {
        return Err(unauthorized(
            "missing `X-Webcare-Signature` header (`sha256=<hex HMAC-SHA256 of \"<X-Webcare-Timestamp>.<body>\">`)",
        ));
    };
    let Some(timestamp) = headers
        .get(TIMESTAMP_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok())
    else {
        return Err(unauthorized(
            "missing or malformed `X-Webcare-Timestamp` header (Unix seconds, signed with the body)",
        ));
    };
    let window = SIGNATURE_WINDOW.as_secs() as i64;
    if (now.timestamp() - timestamp).abs() > window {
        return Err(unauthorized(&format!(
            "the `X-Webcare-Timestamp` is more than {window} s from now; sign each request when it is sent (and check the clock)"
        )));
    }
    let ok = signature
        .to_str()
        .is_ok_and(|value| key.verify_timestamped(timestamp, body, value));
    if !ok {
        return Err(unauthorized(
            "the `X-Webcare-Signature` does not match the timestamp and body",
        ));
    }
    Ok(())
}

/// Parses and checks the body; 400 for JSON that is not JSON, 422 for JSON that is wrong.
fn parse(bytes: &[u8], now: DateTime<Utc>) -> Result<Inbound, ApiError> {
    let unprocessable = |message: String| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, message);
    let input: MessageIn = serde_json::from_slice(bytes).map_err(|e| {
        use serde_json::error::Category;
        match e.classify() {
            Category::Data => unprocessable(format!("invalid message: {e}")),
            Category::Syntax | Category::Eof | Category::Io => {
                ApiError::new(StatusCode::BAD_REQUEST, format!("malformed JSON: {e}"))
            }
        }
    })?;
    let id = input.id.trim();
    if id.is_empty() || id.len() > MAX_ID {
        return Err(unprocessable(format!(
            "`id` must be 1 to {MAX_ID} bytes: the platform's id of the message"
        )));
    }
    if input.text.trim().is_empty() {
        return Err(unprocessable("`text` is empty".into()));
    }
    if input.text.len() > MAX_TEXT {
        return Err(unprocessable(format!(
            "`text` is longer than {MAX_TEXT} bytes"
        )));
    }
    for (name, value) in [
        ("conversation", &input.conversation),
        ("author", &input.author),
    ] {
        if value
            .as_deref()
            .is_some_and(|v| v.trim().is_empty() || v.len() > MAX_ID)
        {
            return Err(unprocessable(format!(
                "`{name}` must be 1 to {MAX_ID} bytes when given"
            )));
        }
    }
    let received_at = match input.received_at.as_deref() {
        None => now,
        Some(stamp) => DateTime::parse_from_rfc3339(stamp)
            .map_err(|_| {
                unprocessable(format!(
                    "`received_at` `{stamp}` is not an RFC 3339 time like `2026-11-23T10:00:00+01:00`"
                ))
            })?
            .with_timezone(&Utc),
    };
    if received_at < now - MAX_AGE || received_at > now + MAX_SKEW {
        return Err(unprocessable(format!(
            "`received_at` must be within the last {} days and at most {} minutes ahead of the server's clock (now {}); leave it out to use the time of arrival",
            MAX_AGE.num_days(),
            MAX_SKEW.num_minutes(),
            now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        )));
    }
    let mut message = Inbound::from_text(id, ChannelKind::Http, input.text, received_at);
    if let Some(conversation) = input.conversation {
        message.conversation = conversation;
    }
    if let Some(author) = input.author {
        message.author = author;
    }
    message.metadata = input.metadata;
    Ok(message)
}

/// The JSON body of a callback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Callback {
    /// Always `reply`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The outbox id; the same in the `X-Webcare-Delivery` header. A repeat has the same id.
    pub id: u64,
    pub conversation: String,
    /// The `id` of the message it answers.
    pub in_reply_to: String,
    pub text: String,
    pub created_at: DateTime<Utc>,
}

/// Posts replies to the callback URL; see the module docs for how answers map onto retries.
pub struct CallbackDeliver {
    client: reqwest::Client,
    url: String,
    secret: Option<SigningKey>,
}

impl CallbackDeliver {
    pub fn new(
        url: &str,
        secret: Option<SigningKey>,
        timeout: Duration,
    ) -> Result<Self, HttpChannelError> {
        let parsed =
            reqwest::Url::parse(url).map_err(|_| HttpChannelError::BadCallbackUrl(url.into()))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(HttpChannelError::BadCallbackUrl(url.into()));
        }
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            // A redirected POST turns into a GET on the way; a callback must not move.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("webcare/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| HttpChannelError::Client(e.to_string()))?;
        Ok(CallbackDeliver {
            client,
            url: url.to_owned(),
            secret,
        })
    }

    async fn post(&self, entry: &OutboxEntry) -> Result<(), DeliveryError> {
        let body = serde_json::to_vec(&Callback {
            kind: "reply".into(),
            id: entry.id,
            conversation: entry.conversation.clone(),
            in_reply_to: entry.in_reply_to.clone(),
            text: entry.text.clone(),
            created_at: entry.created_at,
        })
        .map_err(|e| DeliveryError::Permanent(format!("cannot encode the callback: {e}")))?;
        let mut request = self
            .client
            .post(&self.url)
            .header(header::CONTENT_TYPE, "application/json")
            .header(DELIVERY_HEADER, entry.id.to_string())
            // The reply id again, under the name receivers know: a reply sent again after a
            // crash (see `crate::outbox`) carries the same key, so a receiver drops the repeat.
            .header(IDEMPOTENCY_HEADER, entry.id.to_string());
        if let Some(key) = &self.secret {
            request = request.header(SIGNATURE_HEADER, key.sign(&body));
        }
        // The URL may hold a token in its query; errors never show it.
        let response = request.body(body).send().await.map_err(|e| {
            DeliveryError::Temporary(format!("callback unreachable: {}", e.without_url()))
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let what = format!("callback answered {status}");
        Err(match status.as_u16() {
            429 => DeliveryError::RateLimited {
                retry_after: retry_after(response.headers()).unwrap_or(Duration::from_secs(5)),
            },
            408 | 500..=599 => DeliveryError::Temporary(what),
            _ => DeliveryError::Permanent(what),
        })
    }
}

/// `Retry-After` in seconds (the HTTP-date form is rare for APIs and treated as absent).
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    let seconds: f64 = value.trim().parse().ok()?;
    (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds.min(86_400.0)))
}

impl Deliver for CallbackDeliver {
    fn deliver<'a>(&'a self, entry: &'a OutboxEntry) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(self.post(entry))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bodies as callers send them: any bytes, JSON of any shape, and message objects whose
    /// fields hold anything (wrong types, empty, huge, odd times, nulls).
    fn bodies() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
        use proptest::prelude::*;
        let value = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<f64>().prop_map(serde_json::Value::from),
            any::<String>().prop_map(serde_json::Value::from),
            "[ \\t\\n]{0,3}[a-z]{0,5}[ ]{0,3}".prop_map(serde_json::Value::from),
            "(19|20|99)[0-9]{2}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-5][0-9](Z|[+-][01][0-9]:00)?"
                .prop_map(serde_json::Value::from),
            Just(serde_json::json!({"a": [1, 2]})),
        ];
        let field = prop_oneof![
            Just("id"),
            Just("text"),
            Just("conversation"),
            Just("author"),
            Just("received_at"),
            Just("metadata"),
            Just("other"),
        ];
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..512),
            any::<String>().prop_map(String::into_bytes),
            proptest::collection::vec((field, value), 0..7).prop_map(|fields| {
                let object: serde_json::Map<String, serde_json::Value> =
                    fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
                serde_json::Value::Object(object).to_string().into_bytes()
            }),
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 1024, ..Default::default() })]

        /// Whatever the body, the channel gets a message that is safe to take in (an id and a
        /// text within their limits, a time within the window) or a 400/422 with a reason.
        #[test]
        fn any_body_gives_a_message_or_a_clear_error(body in bodies()) {
            let now = DateTime::parse_from_rfc3339("2026-11-23T10:00:00Z")
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_else(|_| unreachable!());
            match parse(&body, now) {
                Ok(message) => {
                    proptest::prop_assert!(!message.id.is_empty() && message.id.len() <= MAX_ID);
                    proptest::prop_assert!(!message.text.trim().is_empty() && message.text.len() <= MAX_TEXT);
                    proptest::prop_assert!(!message.conversation.trim().is_empty());
                    proptest::prop_assert!(
                        message.received_at >= now - MAX_AGE && message.received_at <= now + MAX_SKEW
                    );
                }
                Err(error) => {
                    proptest::prop_assert!(
                        error.status == StatusCode::BAD_REQUEST
                            || error.status == StatusCode::UNPROCESSABLE_ENTITY,
                        "{}", error.status
                    );
                    proptest::prop_assert!(!error.message.trim().is_empty());
                }
            }
        }
    }

    #[test]
    fn signatures_verify_and_reject() {
        let key = SigningKey::new("s3cret");
        let signature = key.sign(b"{\"a\":1}");
        assert!(signature.starts_with("sha256=") && signature.len() == 7 + 64);
        assert!(key.verify(b"{\"a\":1}", &signature));
        assert!(!key.verify(b"{\"a\":2}", &signature));
        assert!(!key.verify(b"{\"a\":1}", "sha256=00"));
        assert!(!key.verify(b"{\"a\":1}", &signature.replace("sha256=", "sha1=")));
        assert!(!SigningKey::new("other").verify(b"{\"a\":1}", &signature));
        assert_eq!(format!("{key:?}"), "***");
    }

    #[test]
    fn received_at_is_bounded_with_a_reason() {
        let now = DateTime::parse_from_rfc3339("2026-11-23T10:00:00Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(|_| unreachable!());
        let body = |at: &str| format!(r#"{{"id":"m1","text":"hallo","received_at":"{at}"}}"#);
        for stamp in [
            "2000-01-01T00:00:00Z",
            "9999-01-01T00:00:00Z",
            "2026-11-23T10:06:00Z",
        ] {
            let error = parse(body(stamp).as_bytes(), now)
                .err()
                .unwrap_or_else(|| panic!("{stamp} accepted"));
            assert_eq!(error.status.as_u16(), 422, "{}", error.message);
            assert!(
                error.message.contains("within the last 7 days"),
                "{}",
                error.message
            );
        }
        for stamp in ["2026-11-17T10:00:00Z", "2026-11-23T10:04:00Z"] {
            let ok = parse(body(stamp).as_bytes(), now)
                .unwrap_or_else(|e| panic!("{stamp}: {}", e.message));
            assert_eq!(
                ok.received_at.to_rfc3339(),
                DateTime::parse_from_rfc3339(stamp)
                    .map(|t| t.with_timezone(&Utc).to_rfc3339())
                    .unwrap_or_default()
            );
        }
    }

    #[test]
    fn bodies_are_checked_with_reasons() {
        let now = DateTime::<Utc>::UNIX_EPOCH;
        let ok = parse(br#"{"id":"m1","text":"hallo","conversation":"c","author":"a","metadata":{"source":"mail"}}"#, now)
            .unwrap_or_else(|e| panic!("{}", e.message));
        assert_eq!((ok.conversation.as_str(), ok.author.as_str()), ("c", "a"));
        assert_eq!(ok.metadata.get("source").map(String::as_str), Some("mail"));
        let cases: [(&[u8], u16, &str); 7] = [
            (br#"{"id":"m1","text":"#, 400, "malformed JSON"),
            (b"not json", 400, "malformed JSON"),
            (br#"{"id":"m1"}"#, 422, "missing field `text`"),
            (
                br#"{"id":"m1","text":"x","conversation_id":"c"}"#,
                422,
                "unknown field `conversation_id`",
            ),
            (br#"{"id":"","text":"x"}"#, 422, "`id`"),
            (br#"{"id":"m1","text":"  "}"#, 422, "`text` is empty"),
            (
                br#"{"id":"m1","text":"x","received_at":"yesterday"}"#,
                422,
                "RFC 3339",
            ),
        ];
        for (body, status, needle) in cases {
            let error = parse(body, now).err().unwrap_or_else(|| panic!("{needle}"));
            assert_eq!(error.status.as_u16(), status, "{}", error.message);
            assert!(error.message.contains(needle), "{}", error.message);
        }
    }

    #[test]
    fn retry_after_reads_seconds() {
        let mut headers = reqwest::header::HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(
            reqwest::header::RETRY_AFTER,
            "2".parse().unwrap_or_else(|_| unreachable!()),
        );
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(2)));
    }
}
