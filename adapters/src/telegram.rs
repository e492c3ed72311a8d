//! Telegram: customers write to the organisation's bot, and the bot answers in the same chat.
//!
//! Intake is a long-polling loop of our own over teloxide's `getUpdates` rather than teloxide's
//! dispatcher, because the loop decides when Telegram may forget an update: the offset moves
//! past an update only after the [`Gateway`] stored it durably, so a crash or a store error
//! makes Telegram deliver it again instead of losing it, and intake's dedupe by (channel, id)
//! makes sure the redelivered message is answered once. Replies never go out from here: intake
//! puts them in the durable outbox and the outbox worker hands them to [`TelegramDeliver`].
//!
//! Webhook mode ([`WebhookConfig`], `[telegram] webhook_url`) replaces the polling loop: the
//! bot calls `setWebhook` with the public URL and the secret token, and [`TelegramWebhook`]
//! serves the URL's path on webcare's own web server. An update is answered 200 only after
//! the gateway stored it (anything else makes Telegram post it again), a request without the
//! right `X-Telegram-Bot-Api-Secret-Token` is refused with 401 before anything is read, and
//! every update takes the same path as a polled one ([`to_inbound`] with its loop guard,
//! intake's dedupe by message id), so a repeated POST is answered once.
//!
//! `TelegramDeliver` calls `sendMessage` with teloxide's HTTP client but reads the response
//! itself: teloxide-core waits 10 s inside every 5xx response and its errors do not keep the
//! HTTP status, while the outbox needs the status and `retry_after` to choose between retry,
//! wait and dead letter, and must not be held up by a sleeping send.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};

use serde::Deserialize;
use teloxide::payloads::{GetUpdatesSetters, SetWebhookSetters};
use teloxide::requests::Requester;
use teloxide::types::{AllowedUpdate, Me, Message, Update, UpdateKind};
use teloxide::{ApiError, Bot, RequestError};
use tracing::{debug, info, warn};
use webcare_engine::store::OutboxEntry;
use webcare_engine::{ChannelKind, Inbound};

use crate::delivery::{BoxFuture, Deliver, DeliveryError};
use crate::gateway::{Gateway, GatewayError};
use crate::secret::Secret;
use crate::split::SplitSender;

/// Telegram's limit on the text of one message.
pub const MAX_MESSAGE_LEN: usize = 4096;

/// The public Bot API.
pub const DEFAULT_API_URL: &str = "https://api.telegram.org";

/// The adapter's settings, built from the `[telegram]` section and the environment.
#[derive(Debug, Clone)]
pub struct TelegramConfig {
    pub token: Secret,
    /// The Bot API server, without a trailing slash: the public one, a self-hosted
    /// `telegram-bot-api`, or a fake in tests.
    pub api_url: String,
    /// How long one `getUpdates` call waits for news. Telegram answers at once when there is
    /// any, so this only bounds how long an idle connection stays open.
    pub poll_timeout: Duration,
    /// The first wait after a failed poll or a failed intake; doubles up to `max_retry_delay`.
    pub retry_delay: Duration,
    pub max_retry_delay: Duration,
    /// The least time between two polls when the last one brought nothing: a Bot API server
    /// that answers at once (a misconfigured self-hosted one, a proxy) would otherwise be
    /// polled thousands of times a second.
    pub empty_poll_pause: Duration,
    /// Webhook mode instead of long polling.
    pub webhook: Option<WebhookConfig>,
}

/// Webhook mode: where Telegram posts updates, and the secret it sends with each.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// The public HTTPS URL (behind the TLS proxy in front of webcare); its path is the route
    /// on webcare's server, so the proxy forwards the path unchanged.
    pub url: String,
    /// Sent by Telegram in `X-Telegram-Bot-Api-Secret-Token`; 1-256 of `A-Z a-z 0-9 _ -`.
    /// Without it anyone who learns the URL can post updates.
    pub secret: Option<Secret>,
}

/// First path segments of webcare's own routes, which a webhook path must not take.
const RESERVED_PATHS: [&str; 6] = ["api", "inbox", "webchat", "dashboard", "metrics", "healthz"];

/// The header Telegram puts the webhook's secret token in.
pub const SECRET_HEADER: &str = "x-telegram-bot-api-secret-token";

impl TelegramConfig {
    pub fn new(token: Secret) -> Self {
        TelegramConfig {
            token,
            api_url: DEFAULT_API_URL.to_owned(),
            poll_timeout: Duration::from_secs(25),
            retry_delay: Duration::from_secs(1),
            max_retry_delay: Duration::from_secs(60),
            empty_poll_pause: Duration::from_secs(1),
            webhook: None,
        }
    }

    /// The teloxide bot for this configuration.
    fn bot(&self) -> Result<Bot, TelegramError> {
        let url = self.api_url.trim_end_matches('/');
        let api_url = reqwest::Url::parse(url).map_err(|e| TelegramError::ApiUrl {
            url: url.to_owned(),
            reason: e.to_string(),
        })?;
        // A long poll must end before the client gives up on it, so the request timeout is
        // the poll timeout plus room for the answer.
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(self.poll_timeout + Duration::from_secs(15))
            .tcp_nodelay(true)
            .build()
            .map_err(|e| TelegramError::Client(e.without_url().to_string()))?;
        Ok(Bot::with_client(self.token.expose(), client).set_api_url(api_url))
    }
}

/// Why the Telegram adapter stopped.
#[derive(Debug, thiserror::Error)]
pub enum TelegramError {
    #[error("the Telegram API URL `{url}` is not valid: {reason}")]
    ApiUrl { url: String, reason: String },
    #[error("cannot set up the HTTP client: {0}")]
    Client(String),
    #[error("Telegram refused the bot token (check TELEGRAM_BOT_TOKEN or the token file)")]
    TokenRefused,
    #[error("the Telegram webhook URL `{url}` {reason}")]
    WebhookUrl { url: String, reason: String },
    #[error("the Telegram webhook secret must be 1-256 characters of A-Z, a-z, 0-9, `_` and `-`")]
    WebhookSecret,
}

/// Polls Telegram for messages and takes each text message in through `gateway` until
/// `shutdown` completes. An update being taken in when `shutdown` fires is finished first.
pub async fn run(
    gateway: Gateway,
    config: TelegramConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), TelegramError> {
    let bot = config.bot()?;
    tokio::pin!(shutdown);
    let mut backoff = Backoff::new(config.retry_delay, config.max_retry_delay);

    let Some(me) = identify(&bot, &mut backoff, &mut shutdown).await? else {
        return Ok(());
    };
    backoff.reset();
    // getUpdates fails while a webhook is set (after webhook mode ran with this bot), so
    // polling removes it; the updates Telegram holds stay and are polled.
    if let Err(error) = bot.delete_webhook().await {
        warn!(error = %describe(&error), "telegram: deleteWebhook failed; polling may be refused while a webhook is set");
    }
    info!(bot = %me.username(), "telegram: polling for messages");

    // Telegram forgets every update below the offset we send with the next poll, so the offset
    // only ever moves past updates that are stored (or deliberately ignored).
    let mut offset: i32 = 0;
    loop {
        let result = tokio::select! {
            () = &mut shutdown => break,
            result = bot
                .get_updates()
                .offset(offset)
                .timeout(u32::try_from(config.poll_timeout.as_secs()).unwrap_or(u32::MAX))
                .allowed_updates([AllowedUpdate::Message]) => result,
        };
        let updates = match result {
            Ok(updates) => updates,
            Err(RequestError::Api(ApiError::InvalidToken)) => {
                return Err(TelegramError::TokenRefused);
            }
            Err(error) => {
                let wait = wait_after(&error, &mut backoff);
                warn!(error = %describe(&error), retry_in = ?wait, "telegram: getUpdates failed");
                if sleep_or_shutdown(wait, &mut shutdown).await {
                    break;
                }
                continue;
            }
        };
        backoff.reset();
        if updates.is_empty() {
            if sleep_or_shutdown(config.empty_poll_pause, &mut shutdown).await {
                break;
            }
            continue;
        }
        for update in updates {
            let next = next_offset(&update);
            match take(&gateway, &me, update).await {
                // Never backwards: a redelivered old update must not un-confirm newer ones.
                Ok(()) => offset = offset.max(next),
                Err(error) => {
                    // Not acknowledged: the next poll starts at this update again.
                    let wait = backoff.next_delay();
                    warn!(%error, retry_in = ?wait, "telegram: intake failed; the update will be fetched again");
                    if sleep_or_shutdown(wait, &mut shutdown).await {
                        return Ok(());
                    }
                    break;
                }
            }
        }
    }
    info!("telegram: stopped polling");
    Ok(())
}

/// `getMe`, retried until it works; `None` when `shutdown` came first.
async fn identify(
    bot: &Bot,
    backoff: &mut Backoff,
    shutdown: &mut std::pin::Pin<&mut impl Future<Output = ()>>,
) -> Result<Option<Me>, TelegramError> {
    loop {
        let result = tokio::select! {
            () = shutdown.as_mut() => return Ok(None),
            result = bot.get_me() => result,
        };
        match result {
            Ok(me) => return Ok(Some(me)),
            Err(RequestError::Api(ApiError::InvalidToken)) => {
                return Err(TelegramError::TokenRefused);
            }
            Err(error) => {
                let wait = wait_after(&error, backoff);
                warn!(error = %describe(&error), retry_in = ?wait, "telegram: getMe failed");
                if sleep_or_shutdown(wait, shutdown).await {
                    return Ok(None);
                }
            }
        }
    }
}

/// Takes the updates Telegram posts to the webhook; mount [`TelegramWebhook::routes`] on the
/// web server and run [`TelegramWebhook::run`], which registers the webhook. Cheap to clone.
#[derive(Clone)]
pub struct TelegramWebhook {
    inner: Arc<WebhookInner>,
}

struct WebhookInner {
    gateway: Gateway,
    config: TelegramConfig,
    url: reqwest::Url,
    /// The bot itself, for the loop guard; updates wait (503, Telegram retries) until known.
    me: OnceLock<Me>,
}

impl TelegramWebhook {
    /// Checks the webhook settings of `config` (which must have them).
    pub fn new(gateway: Gateway, config: TelegramConfig) -> Result<Self, TelegramError> {
        let webhook = config
            .webhook
            .as_ref()
            .ok_or_else(|| TelegramError::WebhookUrl {
                url: String::new(),
                reason: "is not set".into(),
            })?;
        let url = check_webhook(webhook)?;
        Ok(TelegramWebhook {
            inner: Arc::new(WebhookInner {
                gateway,
                config,
                url,
                me: OnceLock::new(),
            }),
        })
    }

    /// The route on webcare's server: the path of the public URL.
    pub fn path(&self) -> &str {
        self.inner.url.path()
    }

    /// `POST <path>`.
    pub fn routes(&self) -> Router {
        Router::new()
            .route(self.path(), axum::routing::post(receive_update))
            .with_state(self.clone())
    }

    /// Learns who the bot is and registers the webhook (`setWebhook` with the URL, the secret
    /// token and message updates only), retrying with backoff, then waits for `shutdown`. The
    /// webhook stays set when webcare stops: Telegram keeps the updates until it is back.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), TelegramError> {
        let config = &self.inner.config;
        let bot = config.bot()?;
        tokio::pin!(shutdown);
        let mut backoff = Backoff::new(config.retry_delay, config.max_retry_delay);
        let Some(me) = identify(&bot, &mut backoff, &mut shutdown).await? else {
            return Ok(());
        };
        let username = me.username().to_owned();
        let _ = self.inner.me.set(me);
        backoff.reset();
        let secret = config.webhook.as_ref().and_then(|w| w.secret.as_ref());
        loop {
            let mut request = bot
                .set_webhook(self.inner.url.clone())
                .allowed_updates([AllowedUpdate::Message]);
            if let Some(secret) = secret {
                request = request.secret_token(secret.expose());
            }
            let result = tokio::select! {
                () = &mut shutdown => return Ok(()),
                result = request => result,
            };
            match result {
                Ok(_) => break,
                Err(RequestError::Api(ApiError::InvalidToken)) => {
                    return Err(TelegramError::TokenRefused);
                }
                Err(error) => {
                    let wait = wait_after(&error, &mut backoff);
                    warn!(error = %describe(&error), retry_in = ?wait, "telegram: setWebhook failed");
                    if sleep_or_shutdown(wait, &mut shutdown).await {
                        return Ok(());
                    }
                }
            }
        }
        // Not the path: without a secret token it is as good as a password.
        info!(bot = %username, "telegram: webhook set; taking updates");
        shutdown.await;
        Ok(())
    }
}

/// The webhook URL, if it can serve as one (see [`WebhookConfig`]), and a secret Telegram
/// accepts.
pub fn check_webhook(webhook: &WebhookConfig) -> Result<reqwest::Url, TelegramError> {
    let bad = |reason: &str| TelegramError::WebhookUrl {
        url: webhook.url.clone(),
        reason: reason.to_owned(),
    };
    let url = reqwest::Url::parse(&webhook.url).map_err(|e| bad(&format!("is not valid: {e}")))?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(bad("is not an https:// URL"));
    }
    if url.path() == "/" || url.path().is_empty() {
        return Err(bad(
            "needs a path (for example `/telegram/updates`), which webcare serves",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("must not have a query or a fragment"));
    }
    // The path becomes a route beside webcare's own, which it must not shadow.
    let first = url
        .path()
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or_default();
    if RESERVED_PATHS.contains(&first) || url.path().contains(['{', '}', '*']) {
        return Err(bad(
            "has a path webcare uses itself; choose one like `/telegram/updates`",
        ));
    }
    if let Some(secret) = &webhook.secret {
        let text = secret.expose();
        let allowed = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
        if text.is_empty() || text.len() > 256 || !text.chars().all(allowed) {
            return Err(TelegramError::WebhookSecret);
        }
    }
    Ok(url)
}

/// One update from Telegram: 401 without the secret, 503 before the bot knows itself, 400
/// for a body that is no update, 500 when intake failed (Telegram posts it again), else 200.
async fn receive_update(
    State(hook): State<TelegramWebhook>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let inner = &hook.inner;
    if let Some(secret) = inner
        .config
        .webhook
        .as_ref()
        .and_then(|w| w.secret.as_ref())
    {
        let given = headers
            .get(SECRET_HEADER)
            .map(|v| v.as_bytes())
            .unwrap_or_default();
        if !secret.matches(given) {
            warn!("telegram: webhook request refused (missing or wrong secret token)");
            return StatusCode::UNAUTHORIZED;
        }
    }
    let Some(me) = inner.me.get() else {
        return StatusCode::SERVICE_UNAVAILABLE;
    };
    let update: Update = match serde_json::from_slice(&body) {
        Ok(update) => update,
        Err(error) => {
            warn!(%error, "telegram: webhook request is not an update");
            return StatusCode::BAD_REQUEST;
        }
    };
    match take(&inner.gateway, me, update).await {
        Ok(()) => StatusCode::OK,
        Err(error) => {
            warn!(%error, "telegram: intake failed; Telegram will post the update again");
            StatusCode::INTERNAL_SERVER_ERROR
        }
    }
}

/// Compares in time that depends on the length only, so the secret cannot be guessed byte by
/// byte from response times.
fn next_offset(update: &Update) -> i32 {
    i32::try_from(update.id.0)
        .unwrap_or(i32::MAX)
        .saturating_add(1)
}

async fn take(gateway: &Gateway, me: &Me, update: Update) -> Result<(), GatewayError> {
    let message = match update.kind {
        UpdateKind::Message(message) => message,
        other => {
            debug!(update = update.id.0, kind = ?std::mem::discriminant(&other), "telegram: update ignored (not a new message)");
            return Ok(());
        }
    };
    let inbound = match to_inbound(&message, me) {
        Ok(inbound) => inbound,
        Err(skip) => {
            info!(
                chat = message.chat.id.0,
                message = message.id.0,
                reason = %skip,
                "telegram: message ignored"
            );
            return Ok(());
        }
    };
    let id = inbound.id.clone();
    let receipt = gateway.accept(inbound).await?;
    debug!(
        message = %id,
        duplicate = receipt.duplicate,
        action = ?receipt.decision.action,
        "telegram: message taken in"
    );
    Ok(())
}

/// Why a Telegram message does not become an [`Inbound`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Skip {
    /// The loop guard: never answer a bot, least of all ourselves.
    #[error("sent by a bot")]
    FromBot,
    #[error("no sender (a channel post)")]
    NoSender,
    #[error("not a text message")]
    NotText,
}

/// Turns a Telegram message into the engine's message: id `<chat_id>:<message_id>` (message
/// ids are only unique within a chat), conversation = chat, author = user.
pub fn to_inbound(message: &Message, me: &Me) -> Result<Inbound, Skip> {
    let from = message.from.as_ref().ok_or(Skip::NoSender)?;
    if from.is_bot || from.id == me.id {
        return Err(Skip::FromBot);
    }
    let text = message.text().ok_or(Skip::NotText)?;
    let mut metadata = BTreeMap::new();
    metadata.insert("display_name".to_owned(), from.full_name());
    if let Some(username) = &from.username {
        metadata.insert("username".to_owned(), username.clone());
    }
    Ok(Inbound {
        id: format!("{}:{}", message.chat.id.0, message.id.0),
        channel: ChannelKind::Telegram,
        conversation: message.chat.id.0.to_string(),
        author: from.id.0.to_string(),
        text: text.to_owned(),
        received_at: message.date,
        metadata,
    })
}

/// Sends outbox replies to Telegram chats with `sendMessage`.
pub struct TelegramDeliver {
    bot: Bot,
    parts: SplitSender,
}

impl TelegramDeliver {
    pub fn new(config: &TelegramConfig) -> Result<Self, TelegramError> {
        Ok(TelegramDeliver {
            bot: config.bot()?,
            parts: SplitSender::new(MAX_MESSAGE_LEN),
        })
    }

    async fn send_part(
        &self,
        chat_id: i64,
        text: &str,
        reply_to: Option<i64>,
    ) -> Result<(), DeliveryError> {
        let mut url = self.bot.api_url();
        url.path_segments_mut()
            .map_err(|()| DeliveryError::Permanent("the Telegram API URL has no path".into()))?
            .push(&format!("bot{}", self.bot.token()))
            .push("sendMessage");
        // Plain text, no parse_mode: a reply quoting the customer must not turn into markup.
        let mut body = serde_json::json!({ "chat_id": chat_id, "text": text });
        if let Some(message_id) = reply_to {
            // A reply whose question was deleted meanwhile still goes out, unthreaded.
            body["reply_parameters"] = serde_json::json!({
                "message_id": message_id,
                "allow_sending_without_reply": true
            });
        }
        let response = self
            .bot
            .client()
            .post(url)
            .json(&body)
            .send()
            .await
            .map_err(|e| DeliveryError::Temporary(format!("telegram: {}", e.without_url())))?;
        let status = response.status().as_u16();
        let body = response
            .bytes()
            .await
            .map_err(|e| DeliveryError::Temporary(format!("telegram: {}", e.without_url())))?;
        classify(status, &body)
    }
}

impl Deliver for TelegramDeliver {
    fn deliver<'a>(&'a self, entry: &'a OutboxEntry) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async move {
            let chat_id: i64 = entry.conversation.parse().map_err(|_| {
                DeliveryError::Permanent(format!(
                    "`{}` is not a Telegram chat id",
                    entry.conversation
                ))
            })?;
            let reply_to = thread_reply(chat_id, &entry.in_reply_to);
            self.parts
                .send(entry.id, &entry.text, |index, part| async move {
                    let reply_to = reply_to.filter(|_| index == 0);
                    self.send_part(chat_id, &part, reply_to).await
                })
                .await
        })
    }
}

/// In a group several people ask at once, so the answer quotes the message it answers there
/// (`in_reply_to` is `<chat_id>:<message_id>`, group chat ids are negative); a private chat
/// needs no quote.
fn thread_reply(chat_id: i64, in_reply_to: &str) -> Option<i64> {
    let (chat, message) = in_reply_to.split_once(':')?;
    (chat_id < 0 && chat.parse::<i64>().ok()? == chat_id)
        .then(|| message.parse::<i64>().ok())
        .flatten()
}

#[derive(Deserialize)]
struct BotApiResponse {
    ok: bool,
    error_code: Option<u16>,
    description: Option<String>,
    parameters: Option<ResponseParameters>,
}

#[derive(Deserialize)]
struct ResponseParameters {
    retry_after: Option<u64>,
    migrate_to_chat_id: Option<i64>,
}

/// What a Bot API answer means for the outbox: 429 waits `retry_after`, 5xx and answers that
/// cannot be read are retried, other 4xx (chat not found, bot blocked or kicked, bad request)
/// never work and go to the dead letter at once. 401 is retried: a refused token is the
/// deployment's fault, not the reply's, and is fixed without losing the replies.
pub fn classify(status: u16, body: &[u8]) -> Result<(), DeliveryError> {
    let parsed: Option<BotApiResponse> = serde_json::from_slice(body).ok();
    if (200..300).contains(&status) && parsed.as_ref().is_some_and(|r| r.ok) {
        return Ok(());
    }
    let code = parsed.as_ref().and_then(|r| r.error_code).unwrap_or(status);
    let description = parsed
        .as_ref()
        .and_then(|r| r.description.clone())
        .unwrap_or_else(|| format!("HTTP {status}"));
    let parameters = parsed.as_ref().and_then(|r| r.parameters.as_ref());
    if code == 429 || status == 429 {
        let seconds = parameters.and_then(|p| p.retry_after).unwrap_or(1);
        return Err(DeliveryError::RateLimited {
            retry_after: Duration::from_secs(seconds),
        });
    }
    let message = match parameters.and_then(|p| p.migrate_to_chat_id) {
        Some(chat) => format!("telegram {code}: {description} (the group is now chat {chat})"),
        None => format!("telegram {code}: {description}"),
    };
    match code {
        500..=599 | 401 => Err(DeliveryError::Temporary(message)),
        400..=499 => Err(DeliveryError::Permanent(message)),
        _ if (200..300).contains(&status) => Err(DeliveryError::Temporary(format!(
            "telegram: unreadable answer to sendMessage (HTTP {status})"
        ))),
        _ => Err(DeliveryError::Temporary(message)),
    }
}

/// A teloxide error without the request URL, which holds the bot token.
fn describe(error: &RequestError) -> String {
    match error {
        RequestError::Network(e) => format!("network error: {}", clone_without_url(e)),
        other => other.to_string(),
    }
}

fn clone_without_url(error: &reqwest::Error) -> String {
    let text = error.to_string();
    match error.url() {
        Some(url) => text.replace(url.as_str(), "<api url>"),
        None => text,
    }
}

fn wait_after(error: &RequestError, backoff: &mut Backoff) -> Duration {
    match error {
        RequestError::RetryAfter(seconds) => seconds.duration(),
        _ => backoff.next_delay(),
    }
}

/// Sleeps `wait`, or less if `shutdown` completes first; true when it did.
async fn sleep_or_shutdown(
    wait: Duration,
    shutdown: &mut std::pin::Pin<&mut impl Future<Output = ()>>,
) -> bool {
    tokio::select! {
        () = shutdown.as_mut() => true,
        () = tokio::time::sleep(wait) => false,
    }
}

/// Exponential backoff for a platform that keeps failing: each wait doubles up to a ceiling.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    first: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub(crate) fn new(first: Duration, max: Duration) -> Self {
        Backoff {
            first,
            max,
            next: first,
        }
    }

    pub(crate) fn next_delay(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(self.max);
        wait
    }

    pub(crate) fn reset(&mut self) {
        self.next = self.first;
    }
}

#[cfg(test)]
mod tests;
