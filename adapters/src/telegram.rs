//! Telegram: customers write to the organisation's bot, and the bot answers in the same chat.
//!
//! Intake is a long-polling loop of our own over teloxide's `getUpdates` rather than teloxide's
//! dispatcher, because the loop decides when Telegram may forget an update: the offset moves
//! past an update only after the [`Gateway`] stored it durably, so a crash or a store error
//! makes Telegram deliver it again instead of losing it, and intake's dedupe by (channel, id)
//! makes sure the redelivered message is answered once. Replies never go out from here: intake
//! puts them in the durable outbox and the outbox worker hands them to [`TelegramDeliver`].
//!
//! `TelegramDeliver` calls `sendMessage` with teloxide's HTTP client but reads the response
//! itself: teloxide-core waits 10 s inside every 5xx response and its errors do not keep the
//! HTTP status, while the outbox needs the status and `retry_after` to choose between retry,
//! wait and dead letter, and must not be held up by a sleeping send.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use serde::Deserialize;
use teloxide::payloads::GetUpdatesSetters;
use teloxide::requests::Requester;
use teloxide::types::{AllowedUpdate, Me, Message, Update, UpdateKind};
use teloxide::{ApiError, Bot, RequestError};
use tracing::{debug, info, warn};
use webcare_engine::store::OutboxEntry;
use webcare_engine::{ChannelKind, Inbound};

use crate::delivery::{BoxFuture, Deliver, DeliveryError};
use crate::gateway::{Gateway, GatewayError};
use crate::secret::Secret;
use crate::split::split_text;

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
}

impl TelegramConfig {
    pub fn new(token: Secret) -> Self {
        TelegramConfig {
            token,
            api_url: DEFAULT_API_URL.to_owned(),
            poll_timeout: Duration::from_secs(25),
            retry_delay: Duration::from_secs(1),
            max_retry_delay: Duration::from_secs(60),
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

    let me = loop {
        let result = tokio::select! {
            () = &mut shutdown => return Ok(()),
            result = bot.get_me() => result,
        };
        match result {
            Ok(me) => break me,
            Err(RequestError::Api(ApiError::InvalidToken)) => {
                return Err(TelegramError::TokenRefused);
            }
            Err(error) => {
                let wait = wait_after(&error, &mut backoff);
                warn!(error = %describe(&error), retry_in = ?wait, "telegram: getMe failed");
                if sleep_or_shutdown(wait, &mut shutdown).await {
                    return Ok(());
                }
            }
        }
    };
    backoff.reset();
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
    /// Parts of a split reply already sent, by outbox entry, so a retry after a failure in the
    /// middle does not repeat the first parts. Lost on restart, when a retry may repeat them.
    progress: Mutex<HashMap<u64, usize>>,
}

impl TelegramDeliver {
    pub fn new(config: &TelegramConfig) -> Result<Self, TelegramError> {
        Ok(TelegramDeliver {
            bot: config.bot()?,
            progress: Mutex::new(HashMap::new()),
        })
    }

    fn sent_parts(&self, entry: u64) -> usize {
        self.progress
            .lock()
            .map(|p| p.get(&entry).copied().unwrap_or(0))
            .unwrap_or(0)
    }

    fn set_sent_parts(&self, entry: u64, parts: Option<usize>) {
        if let Ok(mut progress) = self.progress.lock() {
            match parts {
                Some(parts) => progress.insert(entry, parts),
                None => progress.remove(&entry),
            };
        }
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
            let parts = split_text(&entry.text, MAX_MESSAGE_LEN);
            if parts.is_empty() {
                return Err(DeliveryError::Permanent("the reply is empty".into()));
            }
            let reply_to = thread_reply(chat_id, &entry.in_reply_to);
            let done = self.sent_parts(entry.id);
            for (index, part) in parts.iter().enumerate().skip(done) {
                let reply_to = reply_to.filter(|_| index == 0);
                match self.send_part(chat_id, part, reply_to).await {
                    Ok(()) => self.set_sent_parts(entry.id, Some(index + 1)),
                    Err(error) => {
                        if matches!(error, DeliveryError::Permanent(_)) {
                            self.set_sent_parts(entry.id, None);
                        }
                        return Err(error);
                    }
                }
            }
            self.set_sent_parts(entry.id, None);
            Ok(())
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
mod tests {
    use super::*;

    fn me() -> Me {
        serde_json::from_value(serde_json::json!({
            "id": 99, "is_bot": true, "first_name": "Gemeente", "username": "gemeente_bot",
            "can_join_groups": true, "can_read_all_group_messages": false,
            "supports_inline_queries": false, "can_connect_to_business": false,
            "has_main_web_app": false
        }))
        .unwrap()
    }

    fn message(from: serde_json::Value, text: Option<&str>) -> Message {
        let mut value = serde_json::json!({
            "message_id": 7, "date": 1_700_000_000,
            "chat": { "id": 42, "type": "private", "first_name": "Ann" },
            "from": from,
        });
        match text {
            Some(text) => value["text"] = text.into(),
            None => {
                value["sticker"] = serde_json::json!({
                    "file_id": "f", "file_unique_id": "u", "type": "regular", "width": 1,
                    "height": 1, "is_animated": false, "is_video": false
                })
            }
        }
        serde_json::from_value(value).unwrap()
    }

    fn ann() -> serde_json::Value {
        serde_json::json!({ "id": 5, "is_bot": false, "first_name": "Ann", "last_name": "de Vries", "username": "ann" })
    }

    #[test]
    fn a_text_message_becomes_an_inbound() {
        let inbound = to_inbound(
            &message(ann(), Some("Wanneer is het milieupark open?")),
            &me(),
        )
        .unwrap();
        assert_eq!(inbound.id, "42:7");
        assert_eq!(inbound.conversation, "42");
        assert_eq!(inbound.author, "5");
        assert_eq!(inbound.channel, ChannelKind::Telegram);
        assert_eq!(inbound.received_at.timestamp(), 1_700_000_000);
        assert_eq!(inbound.metadata["display_name"], "Ann de Vries");
        assert_eq!(inbound.metadata["username"], "ann");
    }

    #[test]
    fn bots_ourselves_and_stickers_are_skipped() {
        let bot = serde_json::json!({ "id": 77, "is_bot": true, "first_name": "Other" });
        assert_eq!(
            to_inbound(&message(bot, Some("hi")), &me()),
            Err(Skip::FromBot)
        );
        let us = serde_json::json!({ "id": 99, "is_bot": false, "first_name": "Us" });
        assert_eq!(
            to_inbound(&message(us, Some("hi")), &me()),
            Err(Skip::FromBot)
        );
        assert_eq!(to_inbound(&message(ann(), None), &me()), Err(Skip::NotText));
    }

    #[test]
    fn bot_api_answers_are_classified() {
        assert_eq!(classify(200, br#"{"ok":true,"result":{}}"#), Ok(()));
        assert_eq!(
            classify(
                429,
                br#"{"ok":false,"error_code":429,"description":"Too Many Requests","parameters":{"retry_after":3}}"#
            ),
            Err(DeliveryError::RateLimited { retry_after: Duration::from_secs(3) })
        );
        assert!(matches!(
            classify(500, b"oops"),
            Err(DeliveryError::Temporary(_))
        ));
        assert!(matches!(
            classify(502, b""),
            Err(DeliveryError::Temporary(_))
        ));
        let blocked = classify(
            403,
            br#"{"ok":false,"error_code":403,"description":"Forbidden: bot was blocked by the user"}"#,
        );
        assert!(
            matches!(&blocked, Err(DeliveryError::Permanent(m)) if m.contains("blocked")),
            "{blocked:?}"
        );
        assert!(matches!(
            classify(
                400,
                br#"{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}"#
            ),
            Err(DeliveryError::Permanent(_))
        ));
        assert!(matches!(
            classify(401, b""),
            Err(DeliveryError::Temporary(_))
        ));
    }

    #[test]
    fn replies_quote_the_question_in_groups_only() {
        assert_eq!(thread_reply(-100_123, "-100123:45"), Some(45));
        assert_eq!(thread_reply(42, "42:7"), None);
        assert_eq!(thread_reply(-100_123, "-100999:45"), None);
        assert_eq!(thread_reply(-100_123, "agent"), None);
    }

    #[test]
    fn backoff_doubles_up_to_the_ceiling() {
        let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(5));
        let waits: Vec<_> = (0..5).map(|_| backoff.next_delay().as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 5, 5]);
        backoff.reset();
        assert_eq!(backoff.next_delay(), Duration::from_secs(1));
    }
}
