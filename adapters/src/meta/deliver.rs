//! Replies to WhatsApp, Messenger and Instagram through the Graph API's Send API
//! (`POST /{version}/{account}/messages`), with the 24-hour customer service window enforced
//! here rather than learned from Meta's refusal: the window is known from the store (the last
//! message the customer sent, `Conversation::last_activity`, which only inbound messages move),
//! so webcare can tell a bot reply from an agent reply and say why a reply was not sent.
//!
//! Outside the window the bot never replies (the reply is dead-lettered with the reason, which
//! opens an escalation: a person sees the customer was not answered). An agent's reply goes out
//! as the approved template named in `[meta] reply_template` on WhatsApp, with the agent's text
//! as its one body parameter, or on Messenger and Instagram with the `HUMAN_AGENT` tag within
//! seven days; otherwise it is refused with the reason in the same way, never silently lost.
//! A bot reply is one queued in the same transaction as its message (its outbox entry was
//! created when the message was stored); anything else was written by a person.
//!
//! Graph errors map to the outbox's outcomes: 130429 and 131056 (rate limits), 4, 80007, 613
//! and HTTP 429 wait; 131047 (re-engagement: the window closed) is dead at once with that
//! reason; 5xx, 1, 2, 131000 and 190/401 (a token to fix, not a reply to drop) are retried;
//! other 4xx are dead.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use webcare_engine::ChannelKind;
pub use webcare_engine::case::window::{self, Route};
use webcare_engine::store::OutboxEntry;

use super::MetaConfig;
use super::inbound::split_conversation;
use crate::delivery::{BoxFuture, Deliver, DeliveryError};
use crate::gateway::Gateway;
use crate::split::SplitSender;

/// Sent replies remembered for their delivery statuses (a status of an older one is logged).
const REMEMBERED: usize = 10_000;

/// The `biz_opaque_callback_data` a WhatsApp send carries: Meta repeats it in the message's
/// delivery statuses, so a status finds its outbox entry also after a restart, when the
/// in-memory [`SentLog`] is empty.
pub fn callback_data(entry: u64) -> String {
    format!("webcare-outbox:{entry}")
}

/// The outbox entry named by a status's `biz_opaque_callback_data`, if webcare wrote it.
pub fn outbox_of(callback_data: &str) -> Option<u64> {
    callback_data.strip_prefix("webcare-outbox:")?.parse().ok()
}

/// A reply Meta accepted, for a later `failed` status.
#[derive(Debug, Clone)]
pub struct SentReply {
    pub entry: u64,
    pub channel: ChannelKind,
    pub conversation: String,
    pub in_reply_to: String,
    pub text: String,
}

/// Sends outbox replies through the Graph API, for one of the three Meta channels.
pub struct MetaDeliver {
    channel: ChannelKind,
    config: MetaConfig,
    gateway: Gateway,
    client: reqwest::Client,
    parts: SplitSender,
    sent: std::sync::Arc<SentLog>,
}

/// The message ids Meta answered sends with, shared with the webhook that receives statuses.
#[derive(Debug, Default)]
pub struct SentLog {
    inner: Mutex<(HashMap<String, SentReply>, VecDeque<String>)>,
    /// Conversations whose failed reply is being recorded: their next reply waits for it.
    pub(super) holding: Mutex<Vec<(ChannelKind, String)>>,
}

impl SentLog {
    pub(super) fn remember(&self, message_id: String, reply: SentReply) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let (map, order) = &mut *inner;
        if map.insert(message_id.clone(), reply).is_none() {
            order.push_back(message_id);
        }
        while order.len() > REMEMBERED {
            if let Some(old) = order.pop_front() {
                map.remove(&old);
            }
        }
    }

    /// The reply Meta gave `message_id` for, if it is still remembered; it stays remembered.
    pub fn get(&self, message_id: &str) -> Option<SentReply> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.0.get(message_id).cloned()
    }

    /// The reply Meta gave `message_id` for, if it is still remembered; forgotten now.
    pub fn take(&self, message_id: &str) -> Option<SentReply> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.0.remove(message_id)
    }

    fn held(&self, channel: ChannelKind, conversation: &str) -> bool {
        self.holding
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .any(|(c, id)| *c == channel && id == conversation)
    }
}

impl MetaDeliver {
    pub fn new(
        channel: ChannelKind,
        config: MetaConfig,
        gateway: Gateway,
        sent: std::sync::Arc<SentLog>,
    ) -> Result<Self, super::MetaError> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(15))
            .build()
            .map_err(|e| super::MetaError::Client(e.without_url().to_string()))?;
        let max = match channel {
            ChannelKind::Whatsapp => 4096,
            ChannelKind::Instagram => 1000,
            _ => 2000,
        };
        Ok(MetaDeliver {
            channel,
            config,
            gateway,
            client,
            parts: SplitSender::new(max),
            sent,
        })
    }

    /// Whether and how `entry` may go out at `now`, from the conversation's last customer
    /// message; `Err` says why not, in words for the escalation.
    async fn route(&self, entry: &OutboxEntry) -> Result<Route, DeliveryError> {
        let (channel, conversation) = (entry.channel, entry.conversation.clone());
        let reply_to = entry.in_reply_to.clone();
        let store_error = |e: crate::gateway::GatewayError| {
            DeliveryError::Temporary(format!("{channel}: cannot read the conversation: {e}"))
        };
        let (found, answered) = self
            .gateway
            .store(move |s| {
                let found = s.conversation(channel, &conversation)?;
                let answered = s.message(channel, &reply_to)?;
                Ok::<_, webcare_engine::StoreError>((found, answered))
            })
            .await
            .map_err(store_error)?;
        let Some(found) = found else {
            return Err(DeliveryError::Permanent(format!(
                "{channel}: conversation `{}` is not known",
                entry.conversation
            )));
        };
        let by_bot = answered.is_some_and(|m| m.stored_at == entry.created_at);
        decide_route(
            channel,
            found.last_activity,
            self.gateway.now(),
            self.config.window,
            by_bot,
            self.config.reply_template.is_some(),
        )
    }

    async fn send_part(
        &self,
        entry: u64,
        account: &str,
        user: &str,
        text: &str,
        route: &Route,
    ) -> Result<Option<String>, DeliveryError> {
        let url = format!(
            "{}/{}/{account}/messages",
            self.config.graph_url.trim_end_matches('/'),
            self.config.api_version
        );
        let body = match (self.channel, route) {
            (ChannelKind::Whatsapp, Route::Template) => {
                let template = self.config.reply_template.as_ref().ok_or_else(|| {
                    DeliveryError::Permanent("whatsapp: no reply template configured".into())
                })?;
                serde_json::json!({
                    "messaging_product": "whatsapp", "recipient_type": "individual", "to": user,
                    "biz_opaque_callback_data": callback_data(entry),
                    "type": "template",
                    "template": {
                        "name": template.name, "language": { "code": template.language },
                        "components": [{ "type": "body", "parameters": [{ "type": "text", "text": text }] }]
                    }
                })
            }
            (ChannelKind::Whatsapp, _) => serde_json::json!({
                "messaging_product": "whatsapp", "recipient_type": "individual", "to": user,
                "biz_opaque_callback_data": callback_data(entry),
                "type": "text", "text": { "preview_url": false, "body": text }
            }),
            (_, Route::HumanAgent) => serde_json::json!({
                "recipient": { "id": user }, "messaging_type": "MESSAGE_TAG", "tag": "HUMAN_AGENT",
                "message": { "text": text }
            }),
            _ => serde_json::json!({
                "recipient": { "id": user }, "messaging_type": "RESPONSE", "message": { "text": text }
            }),
        };
        let channel = self.channel;
        let response = self
            .client
            .post(url)
            .bearer_auth(self.config.access_token.expose())
            .json(&body)
            .send()
            .await
            .map_err(|e| DeliveryError::Temporary(format!("{channel}: {}", e.without_url())))?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
            .map(Duration::from_secs);
        let bytes = response
            .bytes()
            .await
            .map_err(|e| DeliveryError::Temporary(format!("{channel}: {}", e.without_url())))?;
        let wait = retry_after.unwrap_or(self.config.rate_limit_wait);
        classify(channel, status, &bytes, wait)
    }
}

impl Deliver for MetaDeliver {
    fn deliver<'a>(&'a self, entry: &'a OutboxEntry) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async move {
            if self.sent.held(entry.channel, &entry.conversation) {
                // A failed reply of this conversation is being recorded; keep the order.
                return Err(DeliveryError::RateLimited {
                    retry_after: Duration::from_secs(1),
                });
            }
            let (account, user) = split_conversation(&entry.conversation).ok_or_else(|| {
                DeliveryError::Permanent(format!(
                    "`{}` is not a {} conversation (account:user)",
                    entry.conversation, self.channel
                ))
            })?;
            let route = self.route(entry).await?;
            let (account, user) = (account.to_owned(), user.to_owned());
            let route = &route;
            let (account, user) = (&account, &user);
            self.parts
                .send(entry.id, &entry.text, |_, part| async move {
                    let id = self
                        .send_part(entry.id, account, user, &part, route)
                        .await?;
                    if let Some(id) = id {
                        self.sent.remember(
                            id,
                            SentReply {
                                entry: entry.id,
                                channel: entry.channel,
                                conversation: entry.conversation.clone(),
                                in_reply_to: entry.in_reply_to.clone(),
                                text: part,
                            },
                        );
                    }
                    Ok(())
                })
                .await
        })
    }
}

/// The window rule ([`window::route`]), its refusal as a dead letter with the reason.
pub fn decide_route(
    channel: ChannelKind,
    last_customer_message: DateTime<Utc>,
    now: DateTime<Utc>,
    window: chrono::Duration,
    by_bot: bool,
    has_template: bool,
) -> Result<Route, DeliveryError> {
    window::route(
        channel,
        last_customer_message,
        now,
        window,
        by_bot,
        has_template,
    )
    .map_err(|refused| DeliveryError::Permanent(refused.to_string()))
}

#[derive(Deserialize)]
struct GraphAnswer {
    error: Option<GraphError>,
    #[serde(default)]
    messages: Vec<SentId>,
    message_id: Option<String>,
}

#[derive(Deserialize)]
struct SentId {
    id: String,
}

#[derive(Deserialize)]
struct GraphError {
    code: Option<i64>,
    message: Option<String>,
    error_data: Option<ErrorData>,
}

#[derive(Deserialize)]
struct ErrorData {
    details: Option<String>,
}

/// What a Send API answer means for the outbox (see the module docs); `Ok` holds the id Meta
/// gave the message, for its delivery statuses.
pub fn classify(
    channel: ChannelKind,
    status: u16,
    body: &[u8],
    rate_limit_wait: Duration,
) -> Result<Option<String>, DeliveryError> {
    let parsed: Option<GraphAnswer> = serde_json::from_slice(body).ok();
    if (200..300).contains(&status) {
        if let Some(answer) = parsed.filter(|a| a.error.is_none()) {
            let id = answer.messages.into_iter().next().map(|m| m.id);
            return Ok(id.or(answer.message_id));
        }
        return Err(DeliveryError::Temporary(format!(
            "{channel}: unreadable answer to a send (HTTP {status})"
        )));
    }
    let error = parsed.and_then(|a| a.error);
    let code = error.as_ref().and_then(|e| e.code).unwrap_or(0);
    let text = error
        .as_ref()
        .map(|e| {
            let message = e.message.clone().unwrap_or_default();
            match e.error_data.as_ref().and_then(|d| d.details.clone()) {
                Some(details) if !details.is_empty() => format!("{message} ({details})"),
                _ => message,
            }
        })
        .unwrap_or_else(|| format!("HTTP {status}"));
    let message = format!("{channel} {code}: {text}");
    match (code, status) {
        (130429 | 131056 | 4 | 80007 | 613, _) | (_, 429) => Err(DeliveryError::RateLimited {
            retry_after: rate_limit_wait,
        }),
        (131047, _) => Err(DeliveryError::Permanent(format!(
            "{message}: more than 24 hours since the customer last wrote; not retried"
        ))),
        (1 | 2 | 131000 | 190, _) | (_, 500..=599 | 401) => Err(DeliveryError::Temporary(message)),
        _ => Err(DeliveryError::Permanent(message)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WAIT: Duration = Duration::from_secs(7);

    fn error(code: i64) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "error": { "message": "msg", "type": "OAuthException", "code": code,
                       "error_data": { "messaging_product": "whatsapp", "details": "why" },
                       "fbtrace_id": "A1" }
        }))
        .unwrap()
    }

    #[test]
    fn callback_data_names_the_outbox_entry() {
        assert_eq!(outbox_of(&callback_data(42)), Some(42));
        assert_eq!(outbox_of("somebody-else:42"), None);
        assert_eq!(outbox_of("webcare-outbox:x"), None);
    }

    #[test]
    fn graph_error_codes_map_to_wait_retry_or_dead_letter() {
        let wa = ChannelKind::Whatsapp;
        let ok = br#"{"messaging_product":"whatsapp","contacts":[],"messages":[{"id":"wamid.9"}]}"#;
        assert_eq!(classify(wa, 200, ok, WAIT), Ok(Some("wamid.9".into())));
        for code in [130429, 131056] {
            assert_eq!(
                classify(wa, 400, &error(code), WAIT),
                Err(DeliveryError::RateLimited { retry_after: WAIT })
            );
        }
        assert_eq!(
            classify(wa, 429, b"", WAIT),
            Err(DeliveryError::RateLimited { retry_after: WAIT })
        );
        let outside = classify(wa, 400, &error(131047), WAIT);
        assert!(
            matches!(&outside, Err(DeliveryError::Permanent(m)) if m.contains("131047") && m.contains("24 hours")),
            "{outside:?}"
        );
        assert!(matches!(
            classify(wa, 503, b"", WAIT),
            Err(DeliveryError::Temporary(_))
        ));
        assert!(matches!(
            classify(wa, 400, &error(100), WAIT),
            Err(DeliveryError::Permanent(_))
        ));
    }
}
