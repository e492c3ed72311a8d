//! Meta: WhatsApp Business (Cloud API), Facebook Messenger and Instagram messaging, three
//! channels behind one Graph API webhook. Meta posts every event of the app to one URL, signed
//! with the app secret in `X-Hub-Signature-256` over the raw body; a request without that
//! header is refused with 401 and one with a wrong signature with 403, before its body is
//! parsed, so nothing unsigned is ever decided. The signature is checked by `hmac`'s
//! constant-time comparison. The `GET` of the same URL answers Meta's subscription check
//! (`hub.mode=subscribe`, `hub.verify_token`, `hub.challenge`).
//!
//! A delivery is answered 200 only after every message in it is stored by the [`Gateway`]
//! (anything else makes Meta post it again, and intake's dedupe by the platform's message id
//! makes sure a repeat is answered once). Delivery statuses come on the same webhook: a
//! `delivered`, `read` or `failed` status is kept on the reply it reports on (its receipt,
//! shown in the inbox), and a `failed` one of a reply Meta had accepted also becomes a dead
//! letter with Meta's reason (see [`MetaWebhook`]), so a reply that never arrived is never
//! taken for sent by the team. Which reply a status is about is remembered in memory (the
//! last 10,000 sends) and, on WhatsApp, also sent along with the message as
//! `biz_opaque_callback_data` (the outbox id), which Meta repeats in its statuses, so a status
//! of a reply sent before a restart still finds it in the store. Messenger's and Instagram's
//! delivery and read events mark the same receipts (see `seen.rs`).
//!
//! # Layout
//!
//! - `inbound.rs`: the webhook's payloads and how each kind of message becomes text to decide.
//! - `deliver.rs`: [`MetaDeliver`], the Send API, the 24-hour window and the error codes.
//! - `seen.rs`: Messenger and Instagram delivery and read events on the replies they cover.

mod deliver;
pub mod inbound;
mod seen;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tracing::{debug, info, warn};
use webcare_engine::CaseError;
use webcare_engine::ChannelKind;
use webcare_engine::store::{NewReply, ReceiptEvent};

pub use deliver::{MetaDeliver, Route, SentLog, callback_data, classify, decide_route, outbox_of};

use crate::gateway::{Gateway, GatewayError};
use crate::secret::Secret;

/// The public Graph API.
pub const DEFAULT_GRAPH_URL: &str = "https://graph.facebook.com";

/// The Graph API version webcare was written against.
pub const DEFAULT_API_VERSION: &str = "v21.0";

/// The header Meta signs each delivery in.
pub const SIGNATURE_HEADER: &str = "x-hub-signature-256";

/// The three channels this adapter serves.
pub const CHANNELS: [ChannelKind; 3] = [
    ChannelKind::Whatsapp,
    ChannelKind::Messenger,
    ChannelKind::Instagram,
];

/// The adapter's settings, built from `[meta]` and the environment.
#[derive(Debug, Clone)]
pub struct MetaConfig {
    /// Signs every webhook delivery (the app's secret, from the app dashboard).
    pub app_secret: Secret,
    /// The token Meta echoes in the subscription check, chosen when the webhook is set up.
    pub verify_token: Secret,
    /// The system user or page access token the Send API is called with.
    pub access_token: Secret,
    /// The Graph API without a trailing slash; a fake in tests.
    pub graph_url: String,
    pub api_version: String,
    /// The path on webcare's server Meta posts to.
    pub webhook_path: String,
    /// The customer service window: how long after the customer's last message a free reply
    /// may be sent (24 hours on all three platforms).
    pub window: chrono::Duration,
    /// The approved WhatsApp template an agent's reply after the window is sent as.
    pub reply_template: Option<ReplyTemplate>,
    /// How long to wait after a rate limit that names no time.
    pub rate_limit_wait: Duration,
}

/// An approved WhatsApp message template with one body parameter, which carries the agent's
/// text (for example "Antwoord van de gemeente op uw vraag: {{1}}").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyTemplate {
    pub name: String,
    /// The template's language code (`nl`, `en_US`).
    pub language: String,
}

impl MetaConfig {
    pub fn new(app_secret: Secret, verify_token: Secret, access_token: Secret) -> Self {
        MetaConfig {
            app_secret,
            verify_token,
            access_token,
            graph_url: DEFAULT_GRAPH_URL.to_owned(),
            api_version: DEFAULT_API_VERSION.to_owned(),
            webhook_path: "/meta/webhook".to_owned(),
            window: ChannelKind::Whatsapp
                .reply_window()
                .unwrap_or(chrono::Duration::hours(24)),
            reply_template: None,
            rate_limit_wait: Duration::from_secs(60),
        }
    }
}

/// Why the Meta adapter cannot start.
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    #[error("cannot set up the HTTP client: {0}")]
    Client(String),
    #[error(
        "the Meta webhook path `{0}` must start with `/`, have no query and not be one of webcare's own paths"
    )]
    WebhookPath(String),
}

/// Takes what Meta posts to the webhook; mount [`MetaWebhook::routes`] on the web server and
/// register [`MetaWebhook::deliver`] for each channel with the outbox worker. Cheap to clone.
#[derive(Clone)]
pub struct MetaWebhook {
    inner: Arc<Inner>,
}

struct Inner {
    gateway: Gateway,
    config: MetaConfig,
    sent: Arc<SentLog>,
}

impl MetaWebhook {
    pub fn new(gateway: Gateway, config: MetaConfig) -> Result<Self, MetaError> {
        check_path(&config.webhook_path)?;
        Ok(MetaWebhook {
            inner: Arc::new(Inner {
                gateway,
                config,
                sent: Arc::new(SentLog::default()),
            }),
        })
    }

    pub fn path(&self) -> &str {
        &self.inner.config.webhook_path
    }

    /// `GET` (subscription check) and `POST` (deliveries) on the webhook path.
    pub fn routes(&self) -> Router {
        Router::new()
            .route(self.path(), axum::routing::get(verify).post(receive))
            .with_state(self.clone())
    }

    /// The delivery for `channel` (one of [`CHANNELS`]), sharing the record of sent message
    /// ids with this webhook so their statuses find their reply.
    pub fn deliver(&self, channel: ChannelKind) -> Result<MetaDeliver, MetaError> {
        MetaDeliver::new(
            channel,
            self.inner.config.clone(),
            self.inner.gateway.clone(),
            Arc::clone(&self.inner.sent),
        )
    }
}

/// A path webcare can serve the webhook on: beside its own routes, never over one.
pub fn check_path(path: &str) -> Result<(), MetaError> {
    let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
    let reserved = [
        "",
        "api",
        "inbox",
        "webchat",
        "dashboard",
        "metrics",
        "healthz",
    ];
    if !path.starts_with('/')
        || path.contains(['?', '#', '{', '}', '*'])
        || reserved.contains(&first)
    {
        return Err(MetaError::WebhookPath(path.to_owned()));
    }
    Ok(())
}

#[derive(serde::Deserialize)]
struct Subscribe {
    #[serde(rename = "hub.mode")]
    mode: Option<String>,
    #[serde(rename = "hub.verify_token")]
    verify_token: Option<String>,
    #[serde(rename = "hub.challenge")]
    challenge: Option<String>,
}

/// Meta's subscription check: the challenge back when the verify token matches.
async fn verify(
    State(hook): State<MetaWebhook>,
    Query(query): Query<Subscribe>,
) -> (StatusCode, String) {
    let token_ok = query
        .verify_token
        .as_deref()
        .is_some_and(|t| hook.inner.config.verify_token.matches(t.as_bytes()));
    match (query.mode.as_deref(), token_ok, query.challenge) {
        (Some("subscribe"), true, Some(challenge)) => {
            info!("meta: webhook subscription verified");
            (StatusCode::OK, challenge)
        }
        _ => {
            warn!("meta: webhook subscription check refused (wrong verify token or mode)");
            (StatusCode::FORBIDDEN, "verification failed".into())
        }
    }
}

/// Whether `header` (`sha256=<hex>`) is the HMAC-SHA256 of `body` with `secret`, compared in
/// constant time.
pub fn signature_valid(secret: &Secret, body: &[u8], header: &str) -> bool {
    let Some(given) = header
        .strip_prefix("sha256=")
        .and_then(|hex_text| hex::decode(hex_text.trim()).ok())
    else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes()) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&given).is_ok()
}

/// The signature Meta would send for `body`, for tests and for fakes.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

async fn receive(State(hook): State<MetaWebhook>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let Some(header) = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok()) else {
        warn!("meta: webhook delivery without X-Hub-Signature-256 refused");
        return StatusCode::UNAUTHORIZED;
    };
    if !signature_valid(&hook.inner.config.app_secret, &body, header) {
        warn!("meta: webhook delivery with a wrong signature refused (check META_APP_SECRET)");
        return StatusCode::FORBIDDEN;
    }
    let notification: inbound::Notification = match serde_json::from_slice(&body) {
        Ok(n) => n,
        Err(error) => {
            warn!(%error, "meta: signed webhook delivery is not a notification; ignored");
            return StatusCode::BAD_REQUEST;
        }
    };
    match hook.take(notification).await {
        Ok(()) => StatusCode::OK,
        Err(error) => {
            // Not acknowledged: Meta posts the delivery again, and intake answers it once.
            warn!(%error, "meta: intake failed; Meta will post the delivery again");
            StatusCode::SERVICE_UNAVAILABLE
        }
    }
}

impl MetaWebhook {
    /// Stores every message of a delivery and records its statuses.
    async fn take(&self, notification: inbound::Notification) -> Result<(), GatewayError> {
        let Some(channel) = inbound::channel_of(&notification.object) else {
            debug!(object = %notification.object, "meta: notification for another product ignored");
            return Ok(());
        };
        for entry in &notification.entry {
            for change in entry.changes.iter().filter(|c| c.field == "messages") {
                let Some(value) = &change.value else { continue };
                let Some(number) = value.metadata.as_ref().map(|m| m.phone_number_id.as_str())
                else {
                    continue;
                };
                for message in &value.messages {
                    match inbound::whatsapp_inbound(number, &value.contacts, message) {
                        Ok(message) => self.accept(message).await?,
                        Err(skip) => {
                            info!(message = %message.id, reason = %skip, "whatsapp: message ignored")
                        }
                    }
                }
                for status in &value.statuses {
                    self.status(status).await?;
                }
            }
            for event in &entry.messaging {
                if self.seen(channel, event).await? {
                    continue;
                }
                match inbound::messaging_inbound(channel, event) {
                    Ok(message) => self.accept(message).await?,
                    Err(skip) => debug!(%channel, reason = %skip, "meta: event ignored"),
                }
            }
        }
        Ok(())
    }

    async fn accept(&self, message: webcare_engine::Inbound) -> Result<(), GatewayError> {
        let (id, channel) = (message.id.clone(), message.channel);
        let receipt = self.inner.gateway.accept(message).await?;
        debug!(%channel, message = %id, duplicate = receipt.duplicate, action = ?receipt.decision.action, "meta: message taken in");
        Ok(())
    }

    /// A WhatsApp delivery status. `delivered`, `read` and `failed` are kept on the reply they
    /// report on (its receipt, shown with the reply in the inbox); `sent` says nothing new (the
    /// reply is sent once Meta accepted it). `failed` means the customer never got it, so the
    /// failed text is also queued again and dead-lettered at once with Meta's reason, which
    /// opens an escalation for the default team (the store cannot dead-letter a reply it
    /// recorded as sent). Its conversation's later replies wait meanwhile, so none overtakes it.
    async fn status(&self, status: &inbound::WaStatus) -> Result<(), GatewayError> {
        let at = status
            .timestamp
            .parse::<i64>()
            .ok()
            .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
            .unwrap_or_else(|| self.inner.gateway.now());
        let event = match status.status.as_str() {
            "delivered" => ReceiptEvent::Delivered,
            "read" => ReceiptEvent::Read,
            "failed" => {
                let error = status.errors.first();
                ReceiptEvent::Failed {
                    code: error.map_or(0, |e| e.code),
                    title: error
                        .and_then(|e| e.title.clone().or(e.message.clone()))
                        .unwrap_or_default(),
                }
            }
            _ => {
                debug!(message = %status.id, status = %status.status, "whatsapp: delivery status");
                return Ok(());
            }
        };
        let failed = matches!(event, ReceiptEvent::Failed { .. });
        let remembered = if failed {
            self.inner.sent.take(&status.id)
        } else {
            self.inner.sent.get(&status.id)
        };
        let Some(reply) = remembered else {
            return self.status_after_restart(status, event, at).await;
        };
        if let Err(error) = self.receipt(&reply, event, at).await {
            if failed {
                // Meta posts the status again; it must find the reply again.
                self.inner.sent.remember(status.id.clone(), reply.clone());
            }
            return Err(error);
        }
        if !failed {
            debug!(outbox = reply.entry, status = %status.status, "whatsapp: delivery status kept");
            return Ok(());
        }
        let reason = failure_reason(status);
        let held = (reply.channel, reply.conversation.clone());
        self.hold(&held, true);
        let result = self.dead_letter_failed(&reply, &reason).await;
        self.hold(&held, false);
        if result.is_err() {
            // Meta posts the status again; it must find the reply again.
            self.inner.sent.remember(status.id.clone(), reply.clone());
        }
        let escalation = result?;
        warn!(outbox = reply.entry, escalation, %reason, "whatsapp: a sent reply failed; escalated to the default team");
        Ok(())
    }

    /// A status of a reply the in-memory log does not know (sent before a restart, or more
    /// than 10,000 sends ago): found by the outbox id webcare sent along as
    /// `biz_opaque_callback_data`, read from the store. A failure is dead-lettered once: not
    /// when the reply's receipt already has one (Meta posting the status again), and before
    /// the receipt is written, so a crash between the two repeats the escalation rather than
    /// losing it.
    async fn status_after_restart(
        &self,
        status: &inbound::WaStatus,
        event: ReceiptEvent,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), GatewayError> {
        let failed = matches!(event, ReceiptEvent::Failed { .. });
        let Some(entry) = status
            .biz_opaque_callback_data
            .as_deref()
            .and_then(deliver::outbox_of)
        else {
            // Only a failure matters enough to be seen in the log: the team cannot be told
            // which reply it was.
            if failed {
                warn!(message = %status.id, recipient = %status.recipient_id, "whatsapp: a reply webcare cannot trace failed");
            } else {
                debug!(message = %status.id, status = %status.status, "whatsapp: status of a reply webcare cannot trace");
            }
            return Ok(());
        };
        let found = self
            .inner
            .gateway
            .store(move |s| {
                let Some(reply) = s.outbox_entry(entry)? else {
                    return Ok::<_, webcare_engine::StoreError>(None);
                };
                let receipts = s.outbox_receipts(reply.channel, &reply.conversation)?;
                let failed_before = receipts
                    .iter()
                    .any(|(id, r)| *id == entry && r.failed.is_some());
                Ok(Some((reply, failed_before)))
            })
            .await?;
        let Some((entry, failed_before)) =
            found.filter(|(e, _)| e.channel == ChannelKind::Whatsapp)
        else {
            debug!(outbox = entry, "meta: status of a reply no longer stored");
            return Ok(());
        };
        let reply = deliver::SentReply {
            entry: entry.id,
            channel: entry.channel,
            conversation: entry.conversation,
            in_reply_to: entry.in_reply_to,
            text: entry.text,
        };
        if failed && !failed_before {
            let reason = failure_reason(status);
            let held = (reply.channel, reply.conversation.clone());
            self.hold(&held, true);
            let result = self.dead_letter_failed(&reply, &reason).await;
            self.hold(&held, false);
            let escalation = result?;
            warn!(outbox = reply.entry, escalation, %reason, "whatsapp: a reply sent before the restart failed; escalated to the default team");
        }
        self.receipt(&reply, event, at).await
    }

    /// Keeps `event` on the reply it reports on. A reply deleted meanwhile (retention,
    /// `forget`) has nothing left to mark.
    async fn receipt(
        &self,
        reply: &deliver::SentReply,
        event: ReceiptEvent,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), GatewayError> {
        let entry = reply.entry;
        match self
            .inner
            .gateway
            .store(move |s| s.outbox_receipt(entry, event, at))
            .await
        {
            Ok(_) => Ok(()),
            Err(GatewayError::Case(CaseError::NoSuchOutboxEntry(_))) => {
                debug!(outbox = entry, "meta: status of a reply no longer stored");
                Ok(())
            }
            Err(error) => Err(error),
        }
    }

    fn hold(&self, conversation: &(ChannelKind, String), on: bool) {
        let mut holding = self
            .inner
            .sent
            .holding
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if on {
            holding.push(conversation.clone());
        } else if let Some(i) = holding.iter().position(|c| c == conversation) {
            holding.swap_remove(i);
        }
    }

    async fn dead_letter_failed(
        &self,
        reply: &deliver::SentReply,
        reason: &str,
    ) -> Result<u64, GatewayError> {
        let gateway = &self.inner.gateway;
        let now = gateway.now();
        let (team, deadline) = crate::outbox::dead_letter_route(gateway, now);
        let new = NewReply {
            channel: reply.channel,
            conversation: reply.conversation.clone(),
            in_reply_to: reply.in_reply_to.clone(),
            text: reply.text.clone(),
            actor: format!("{} delivery status", reply.channel),
            now,
        };
        let reason = reason.to_owned();
        let dead = gateway
            .store(move |s| {
                let entry = s.queue_reply(new)?;
                s.outbox_dead_letter(entry.id, &reason, &team, deadline, now)
            })
            .await?;
        Ok(dead.escalation.id)
    }
}

/// Meta's reason for a failed reply, in words for the dead letter's escalation.
fn failure_reason(status: &inbound::WaStatus) -> String {
    status
        .errors
        .first()
        .map(|e| {
            let words = e.message.clone().or(e.title.clone()).unwrap_or_default();
            format!("whatsapp reported the reply failed: {} {words}", e.code)
        })
        .unwrap_or_else(|| "whatsapp reported the reply failed".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_checked_over_the_raw_body() {
        let secret = Secret::new("app-secret");
        let body = br#"{"object":"page","entry":[]}"#;
        let good = sign("app-secret", body);
        assert!(signature_valid(&secret, body, &good));
        assert!(!signature_valid(
            &secret,
            b"{\"object\":\"page\",\"entry\":[] }",
            &good
        ));
        assert!(!signature_valid(&secret, body, &sign("other", body)));
        assert!(!signature_valid(
            &secret,
            body,
            good.trim_start_matches("sha256=")
        ));
        assert!(!signature_valid(&secret, body, "sha256=zz"));
    }

    #[test]
    fn webhook_paths_must_not_take_webcares_own() {
        for bad in ["meta", "/api/meta", "/inbox", "/", "/x?y=1"] {
            assert!(check_path(bad).is_err(), "{bad}");
        }
        assert!(check_path("/meta/webhook").is_ok());
    }
}
