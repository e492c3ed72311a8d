//! Discord: customers write to the organisation's bot in a direct message or in one of the
//! support channels the organisation configured, and the bot answers in the same channel.
//!
//! Intake is serenity's gateway client (intents `GUILD_MESSAGES`, `DIRECT_MESSAGES` and
//! `MESSAGE_CONTENT`, without which guild messages arrive with empty text). Every accepted
//! message goes through the [`Gateway`], which stores it durably and queues the reply in the
//! outbox; a message the gateway delivers twice (a resumed session replays events) is
//! recognised by intake's dedupe on (channel, message id) and answered once. Replies never go
//! out from the event handler: the outbox worker hands them to [`DiscordDeliver`].
//!
//! `DiscordDeliver` builds its request with serenity's routes and token handling but sends it
//! with its own handle on the same HTTP client, because serenity's `Http` either hides rate
//! limits inside (its rate limiter sleeps and retries, holding the outbox worker) or, with the
//! rate limiter off, drops the `retry_after` from its error. The outbox needs both the status
//! and the wait to choose between retry, wait and dead letter; it is the rate limiter here.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde::Deserialize;
use serenity::all::{
    ChannelId, ClientBuilder, Context, EventHandler, GatewayIntents, Http, HttpBuilder,
    LightMethod, Message, MessageType, Ready, Request, Route, UserId,
};
use tokio::sync::Notify;
use tracing::{debug, error, info, warn};
use webcare_engine::store::OutboxEntry;
use webcare_engine::{ChannelKind, Inbound};

use crate::delivery::{BoxFuture, Deliver, DeliveryError};
use crate::gateway::Gateway;
use crate::secret::Secret;
use crate::split::SplitSender;

/// Discord's limit on the content of one message.
pub const MAX_MESSAGE_LEN: usize = 2000;

/// The adapter's settings, built from the `[discord]` section and the environment.
#[derive(Debug, Clone)]
pub struct DiscordConfig {
    pub token: Secret,
    /// Where REST calls go instead of `https://discord.com` (a fake in tests, or a shared
    /// rate-limiting proxy such as twilight-http-proxy); serenity's own rate limiter is off
    /// then, as the proxy is expected to do that job. The gateway URL comes from this API.
    pub api_url: Option<String>,
    /// Guild channels whose messages are taken in; direct messages always are.
    pub channels: BTreeSet<u64>,
}

impl DiscordConfig {
    pub fn new(token: Secret) -> Self {
        DiscordConfig {
            token,
            api_url: None,
            channels: BTreeSet::new(),
        }
    }

    /// serenity's HTTP client and the reqwest client inside it.
    fn http(&self) -> Result<(Http, reqwest::Client), DiscordError> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| DiscordError::Client(e.without_url().to_string()))?;
        let mut builder = HttpBuilder::new(self.token.expose()).client(client.clone());
        if let Some(url) = &self.api_url {
            let url = url.trim_end_matches('/');
            reqwest::Url::parse(url).map_err(|e| DiscordError::ApiUrl {
                url: url.to_owned(),
                reason: e.to_string(),
            })?;
            builder = builder.proxy(url).ratelimiter_disabled(true);
        }
        Ok((builder.build(), client))
    }
}

/// Why the Discord adapter stopped.
#[derive(Debug, thiserror::Error)]
pub enum DiscordError {
    #[error("the Discord API URL `{url}` is not valid: {reason}")]
    ApiUrl { url: String, reason: String },
    #[error("cannot set up the HTTP client: {0}")]
    Client(String),
    #[error("the Discord gateway stopped: {0}")]
    Gateway(String),
}

/// Connects to the Discord gateway and takes messages in through `gateway` until `shutdown`
/// completes; then closes the connection and waits for the messages being taken in.
pub async fn run(
    gateway: Gateway,
    config: DiscordConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), DiscordError> {
    let (http, _) = config.http()?;
    let intents = GatewayIntents::GUILD_MESSAGES
        | GatewayIntents::DIRECT_MESSAGES
        | GatewayIntents::MESSAGE_CONTENT;
    let in_flight = Arc::new(InFlight::default());
    let handler = Handler {
        gateway,
        channels: config
            .channels
            .iter()
            .copied()
            .map(ChannelId::new)
            .collect(),
        me: OnceLock::new(),
        in_flight: Arc::clone(&in_flight),
    };
    let mut client = ClientBuilder::new_with_http(http, intents)
        .event_handler(handler)
        .await
        .map_err(|e| DiscordError::Gateway(e.to_string()))?;
    let shards = Arc::clone(&client.shard_manager);
    info!(
        channels = config.channels.len(),
        "discord: connecting to the gateway"
    );
    let result = tokio::select! {
        result = client.start() => result.map_err(|e| DiscordError::Gateway(e.to_string())),
        () = shutdown => {
            shards.shutdown_all().await;
            Ok(())
        }
    };
    in_flight.idle().await;
    info!("discord: disconnected");
    result
}

struct Handler {
    gateway: Gateway,
    channels: BTreeSet<ChannelId>,
    /// The bot's own user, from READY: the loop guard needs it before any message.
    me: OnceLock<UserId>,
    in_flight: Arc<InFlight>,
}

#[serenity::async_trait]
impl EventHandler for Handler {
    async fn ready(&self, _ctx: Context, ready: Ready) {
        // A reconnect sends READY again, for the same user.
        let _ = self.me.set(ready.user.id);
        info!(bot = %ready.user.name, "discord: connected");
    }

    async fn message(&self, _ctx: Context, message: Message) {
        let inbound = match to_inbound(&message, self.me.get().copied(), &self.channels) {
            Ok(inbound) => inbound,
            Err(Skip::NotWatched) => return,
            Err(skip) => {
                info!(channel = %message.channel_id, message = %message.id, reason = %skip, "discord: message ignored");
                return;
            }
        };
        let _busy = self.in_flight.enter();
        // The gateway does not redeliver, so a failed intake is retried here a few times
        // before the message is given up (and logged as lost).
        let mut wait = Duration::from_millis(200);
        for attempt in 1..=4 {
            match self.gateway.accept(inbound.clone()).await {
                Ok(receipt) => {
                    debug!(message = %inbound.id, duplicate = receipt.duplicate, action = ?receipt.decision.action, "discord: message taken in");
                    return;
                }
                Err(e) if attempt < 4 => {
                    warn!(message = %inbound.id, error = %e, retry_in = ?wait, "discord: intake failed");
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                }
                Err(e) => {
                    error!(message = %inbound.id, channel = %inbound.conversation, error = %e, "discord: intake failed; message lost");
                }
            }
        }
    }
}

/// Counts event handlers that are taking a message in, so shutdown can wait for them.
#[derive(Default)]
struct InFlight {
    count: AtomicUsize,
    idle: Notify,
}

struct Busy<'a>(&'a InFlight);

impl InFlight {
    fn enter(&self) -> Busy<'_> {
        self.count.fetch_add(1, Ordering::AcqRel);
        Busy(self)
    }

    async fn idle(&self) {
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            // Registered before the check, so a handler finishing in between still wakes us.
            notified.as_mut().enable();
            if self.count.load(Ordering::Acquire) == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

/// Why a Discord message does not become an [`Inbound`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Skip {
    /// The loop guard: never answer a bot, least of all ourselves.
    #[error("sent by a bot")]
    FromBot,
    /// A guild channel that is not one of the configured support channels.
    #[error("not a configured channel")]
    NotWatched,
    /// Only attachments, a system message, or text withheld (the MESSAGE_CONTENT intent is off).
    #[error("no text")]
    NoText,
}

/// Turns a Discord message into the engine's message: id = message id (unique across Discord),
/// conversation = channel (a DM is a channel too), author = user.
pub fn to_inbound(
    message: &Message,
    me: Option<UserId>,
    channels: &BTreeSet<ChannelId>,
) -> Result<Inbound, Skip> {
    if message.author.bot || Some(message.author.id) == me || message.webhook_id.is_some() {
        return Err(Skip::FromBot);
    }
    if message.guild_id.is_some() && !channels.contains(&message.channel_id) {
        return Err(Skip::NotWatched);
    }
    if !matches!(
        message.kind,
        MessageType::Regular | MessageType::InlineReply
    ) || message.content.trim().is_empty()
    {
        return Err(Skip::NoText);
    }
    let mut metadata = BTreeMap::new();
    metadata.insert(
        "display_name".to_owned(),
        message.author.display_name().to_owned(),
    );
    metadata.insert("username".to_owned(), message.author.name.clone());
    if let Some(guild) = message.guild_id {
        metadata.insert("guild".to_owned(), guild.to_string());
    }
    Ok(Inbound {
        id: message.id.to_string(),
        channel: ChannelKind::Discord,
        conversation: message.channel_id.to_string(),
        author: message.author.id.to_string(),
        text: message.content.clone(),
        received_at: *message.timestamp,
        metadata,
    })
}

/// Sends outbox replies to Discord channels.
pub struct DiscordDeliver {
    http: Http,
    client: reqwest::Client,
    /// The configured support channels: there several people ask at once, so an answer quotes
    /// the message it answers; a DM needs no quote.
    channels: BTreeSet<u64>,
    parts: SplitSender,
}

impl DiscordDeliver {
    pub fn new(config: &DiscordConfig) -> Result<Self, DiscordError> {
        let (http, client) = config.http()?;
        Ok(DiscordDeliver {
            http,
            client,
            channels: config.channels.clone(),
            parts: SplitSender::new(MAX_MESSAGE_LEN),
        })
    }

    /// `nonce`: the same for every attempt at this part, so Discord creates it once (see
    /// [`nonce`]).
    async fn send_part(
        &self,
        channel_id: ChannelId,
        text: &str,
        reply_to: Option<u64>,
        nonce: String,
    ) -> Result<(), DeliveryError> {
        // No mentions are parsed: a reply quoting a customer must never ping @everyone.
        let mut body = serde_json::json!({
            "content": text,
            "allowed_mentions": { "parse": [] },
            "nonce": nonce,
            "enforce_nonce": true,
        });
        if let Some(message_id) = reply_to {
            // A reply whose question was deleted meanwhile still goes out, unthreaded.
            body["message_reference"] = serde_json::json!({
                "message_id": message_id.to_string(),
                "fail_if_not_exists": false
            });
        }
        let body = serde_json::to_vec(&body)
            .map_err(|e| DeliveryError::Permanent(format!("discord: {e}")))?;
        let unbuildable = |e: &dyn std::fmt::Display| {
            DeliveryError::Permanent(format!("discord: cannot build the request: {e}"))
        };
        let request = Request::new(Route::ChannelMessages { channel_id }, LightMethod::Post)
            .body(Some(body))
            .build(&self.client, self.http.token(), self.http.proxy.as_deref())
            .map_err(|e| unbuildable(&e))?
            .build()
            .map_err(|e| unbuildable(&e.without_url()))?;
        let response = self
            .client
            .execute(request)
            .await
            .map_err(|e| DeliveryError::Temporary(format!("discord: {}", e.without_url())))?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok());
        let body = response
            .bytes()
            .await
            .map_err(|e| DeliveryError::Temporary(format!("discord: {}", e.without_url())))?;
        classify(status, retry_after, &body)
    }
}

impl Deliver for DiscordDeliver {
    fn deliver<'a>(&'a self, entry: &'a OutboxEntry) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async move {
            let channel_id = entry
                .conversation
                .parse::<u64>()
                .ok()
                .filter(|id| *id != 0)
                .map(ChannelId::new)
                .ok_or_else(|| {
                    DeliveryError::Permanent(format!(
                        "`{}` is not a Discord channel id",
                        entry.conversation
                    ))
                })?;
            let reply_to = entry
                .in_reply_to
                .parse::<u64>()
                .ok()
                .filter(|_| self.channels.contains(&channel_id.get()));
            self.parts
                .send(entry.id, &entry.text, |index, part| async move {
                    let reply_to = reply_to.filter(|_| index == 0);
                    self.send_part(channel_id, &part, reply_to, nonce(entry.id, index))
                        .await
                })
                .await
        })
    }
}

/// The nonce of part `index` of outbox reply `id`. With `enforce_nonce`, Discord creates no
/// second message with a nonce the bot used in the last few minutes and answers with the first
/// one instead, so a reply sent again after a crash (see [`crate::outbox`]) shows once. At most
/// 25 characters: 20 digits of an id, a dot and the part.
pub fn nonce(id: u64, index: usize) -> String {
    format!("{id}.{index}")
}

#[derive(Deserialize)]
struct ErrorBody {
    code: Option<i64>,
    message: Option<String>,
    /// Seconds, with a fraction; on 429 answers.
    retry_after: Option<f64>,
}

/// What a Discord answer means for the outbox: 429 waits `retry_after` (body, else header),
/// 5xx and 401 are retried, other 4xx (missing access, unknown channel, a user who does not
/// accept DMs) never work and go to the dead letter at once.
pub fn classify(
    status: u16,
    retry_after_header: Option<f64>,
    body: &[u8],
) -> Result<(), DeliveryError> {
    if (200..300).contains(&status) {
        return Ok(());
    }
    let parsed: Option<ErrorBody> = serde_json::from_slice(body).ok();
    if status == 429 {
        let seconds = parsed
            .as_ref()
            .and_then(|b| b.retry_after)
            .or(retry_after_header)
            .filter(|s| s.is_finite() && *s >= 0.0)
            .unwrap_or(1.0);
        return Err(DeliveryError::RateLimited {
            retry_after: Duration::from_secs_f64(seconds.min(86_400.0)),
        });
    }
    let message = match parsed {
        Some(ErrorBody {
            message: Some(text),
            code,
            ..
        }) => match code {
            Some(code) => format!("discord {status}: {text} (code {code})"),
            None => format!("discord {status}: {text}"),
        },
        _ => format!("discord: HTTP {status}"),
    };
    match status {
        401 | 500..=599 => Err(DeliveryError::Temporary(message)),
        400..=499 => Err(DeliveryError::Permanent(message)),
        _ => Err(DeliveryError::Temporary(message)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(author: serde_json::Value, guild: Option<&str>, content: &str) -> Message {
        let mut value = serde_json::json!({
            "id": "1001", "channel_id": "2002", "author": author, "content": content,
            "timestamp": "2026-03-02T09:30:00+00:00", "edited_timestamp": null, "tts": false,
            "mention_everyone": false, "mentions": [], "mention_roles": [], "attachments": [],
            "embeds": [], "pinned": false, "type": 0
        });
        if let Some(guild) = guild {
            value["guild_id"] = guild.into();
        }
        serde_json::from_value(value).unwrap()
    }

    fn ann() -> serde_json::Value {
        serde_json::json!({ "id": "5", "username": "ann", "global_name": "Ann de Vries", "discriminator": "0" })
    }

    #[test]
    fn a_direct_message_becomes_an_inbound() {
        let inbound = to_inbound(
            &message(ann(), None, "Waar vind ik de afvalkalender?"),
            Some(UserId::new(9)),
            &BTreeSet::new(),
        )
        .unwrap();
        assert_eq!(inbound.id, "1001");
        assert_eq!(inbound.conversation, "2002");
        assert_eq!(inbound.author, "5");
        assert_eq!(inbound.channel, ChannelKind::Discord);
        assert_eq!(
            inbound.received_at.to_rfc3339(),
            "2026-03-02T09:30:00+00:00"
        );
        assert_eq!(inbound.metadata["display_name"], "Ann de Vries");
    }

    #[test]
    fn only_configured_guild_channels_are_watched() {
        let watched = BTreeSet::from([ChannelId::new(2002)]);
        let msg = message(ann(), Some("3003"), "hallo");
        assert_eq!(
            to_inbound(&msg, None, &BTreeSet::new()),
            Err(Skip::NotWatched)
        );
        assert!(to_inbound(&msg, None, &watched).is_ok());
    }

    #[test]
    fn bots_ourselves_and_empty_messages_are_skipped() {
        let bot = serde_json::json!({ "id": "7", "username": "other", "bot": true });
        assert_eq!(
            to_inbound(&message(bot, None, "hi"), None, &BTreeSet::new()),
            Err(Skip::FromBot)
        );
        let us = serde_json::json!({ "id": "9", "username": "us" });
        assert_eq!(
            to_inbound(
                &message(us, None, "hi"),
                Some(UserId::new(9)),
                &BTreeSet::new()
            ),
            Err(Skip::FromBot)
        );
        assert_eq!(
            to_inbound(&message(ann(), None, "  "), None, &BTreeSet::new()),
            Err(Skip::NoText)
        );
    }

    #[test]
    fn discord_answers_are_classified() {
        assert_eq!(classify(200, None, b"{}"), Ok(()));
        assert_eq!(
            classify(
                429,
                Some(9.0),
                br#"{"message":"You are being rate limited.","retry_after":1.5,"global":false}"#
            ),
            Err(DeliveryError::RateLimited {
                retry_after: Duration::from_millis(1500)
            })
        );
        assert_eq!(
            classify(429, Some(2.0), b""),
            Err(DeliveryError::RateLimited {
                retry_after: Duration::from_secs(2)
            })
        );
        assert!(matches!(
            classify(500, None, b"oops"),
            Err(DeliveryError::Temporary(_))
        ));
        let missing = classify(403, None, br#"{"message":"Missing Access","code":50001}"#);
        assert!(
            matches!(&missing, Err(DeliveryError::Permanent(m)) if m.contains("Missing Access")),
            "{missing:?}"
        );
        assert!(matches!(
            classify(404, None, b""),
            Err(DeliveryError::Permanent(_))
        ));
    }
}
