//! What Meta posts to the webhook, and how it becomes webcare's messages. WhatsApp (object
//! `whatsapp_business_account`) nests messages and delivery statuses under `entry[].changes[]
//! .value`; Messenger (`page`) and Instagram (`instagram`) put events under `entry[].messaging[]`.
//! Only the fields webcare uses are read; everything else is ignored so a new field from Meta
//! never makes a delivery fail.
//!
//! What is decided is text: a text message's body, an image's caption (the media id kept in the
//! message so a person can fetch it), a button's title, and for a location the coordinates in
//! words and a map link, so the team sees where the report is in the escalation itself.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeZone, Utc};
use serde::Deserialize;
use webcare_engine::message::ATTACHMENT_ONLY;
use webcare_engine::{ChannelKind, Inbound};

/// One webhook delivery.
#[derive(Debug, Deserialize)]
pub struct Notification {
    pub object: String,
    #[serde(default)]
    pub entry: Vec<Entry>,
}

#[derive(Debug, Deserialize)]
pub struct Entry {
    /// The page or Instagram account (Messenger, Instagram); the business account (WhatsApp).
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub changes: Vec<Change>,
    #[serde(default)]
    pub messaging: Vec<Messaging>,
}

#[derive(Debug, Deserialize)]
pub struct Change {
    #[serde(default)]
    pub field: String,
    pub value: Option<ChangeValue>,
}

#[derive(Debug, Deserialize)]
pub struct ChangeValue {
    pub metadata: Option<WaMetadata>,
    #[serde(default)]
    pub contacts: Vec<WaContact>,
    #[serde(default)]
    pub messages: Vec<WaMessage>,
    #[serde(default)]
    pub statuses: Vec<WaStatus>,
}

#[derive(Debug, Deserialize)]
pub struct WaMetadata {
    pub phone_number_id: String,
}

#[derive(Debug, Deserialize)]
pub struct WaContact {
    pub wa_id: String,
    pub profile: Option<WaProfile>,
}

#[derive(Debug, Deserialize)]
pub struct WaProfile {
    pub name: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct WaMessage {
    pub id: String,
    pub from: String,
    /// Seconds since the epoch, as a string.
    pub timestamp: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub text: Option<WaText>,
    pub image: Option<WaMedia>,
    pub document: Option<WaMedia>,
    pub video: Option<WaMedia>,
    pub location: Option<WaLocation>,
    pub button: Option<WaButton>,
    pub interactive: Option<WaInteractive>,
}

#[derive(Debug, Deserialize)]
pub struct WaText {
    pub body: String,
}

#[derive(Debug, Deserialize)]
pub struct WaMedia {
    pub id: String,
    pub caption: Option<String>,
    pub mime_type: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct WaLocation {
    pub latitude: f64,
    pub longitude: f64,
    pub name: Option<String>,
    pub address: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct WaButton {
    pub text: String,
    pub payload: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct WaInteractive {
    pub button_reply: Option<Choice>,
    pub list_reply: Option<Choice>,
}

#[derive(Debug, Deserialize)]
pub struct Choice {
    pub id: String,
    pub title: String,
}

/// A WhatsApp delivery status of a message webcare sent.
#[derive(Debug, Deserialize)]
pub struct WaStatus {
    /// The `wamid` the send was answered with.
    pub id: String,
    /// `sent`, `delivered`, `read` or `failed`.
    pub status: String,
    #[serde(default)]
    pub recipient_id: String,
    /// Seconds since the epoch, as a string.
    #[serde(default)]
    pub timestamp: String,
    /// What webcare sent with the message ([`super::deliver::callback_data`]).
    #[serde(default)]
    pub biz_opaque_callback_data: Option<String>,
    #[serde(default)]
    pub errors: Vec<GraphErrorDetail>,
}

#[derive(Debug, Deserialize)]
pub struct GraphErrorDetail {
    pub code: i64,
    pub title: Option<String>,
    pub message: Option<String>,
}

/// A Messenger or Instagram event.
#[derive(Debug, Deserialize)]
pub struct Messaging {
    pub sender: Party,
    pub recipient: Party,
    /// Milliseconds since the epoch.
    #[serde(default)]
    pub timestamp: i64,
    pub message: Option<MsMessage>,
    pub postback: Option<MsPostback>,
    /// The user's device got our page's messages (`message_deliveries`).
    pub delivery: Option<MsDelivery>,
    /// The user read them (`message_reads`; Instagram's `messaging_seen`).
    pub read: Option<MsRead>,
}

/// Which of our messages reached the user: those named, and every one sent by the watermark.
#[derive(Debug, Deserialize)]
pub struct MsDelivery {
    #[serde(default)]
    pub mids: Vec<String>,
    /// Milliseconds since the epoch.
    pub watermark: Option<i64>,
}

/// What the user read: every message sent by the watermark (Messenger), or the message named
/// and those before it (Instagram).
#[derive(Debug, Deserialize)]
pub struct MsRead {
    /// Milliseconds since the epoch.
    pub watermark: Option<i64>,
    pub mid: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Party {
    pub id: String,
}

#[derive(Debug, Deserialize)]
pub struct MsMessage {
    pub mid: String,
    pub text: Option<String>,
    /// Our own page's message coming back: never decided (the loop guard).
    #[serde(default)]
    pub is_echo: bool,
    pub quick_reply: Option<MsQuickReply>,
    #[serde(default)]
    pub attachments: Vec<MsAttachment>,
}

#[derive(Debug, Deserialize)]
pub struct MsQuickReply {
    pub payload: String,
}

#[derive(Debug, Deserialize)]
pub struct MsAttachment {
    #[serde(rename = "type")]
    pub kind: String,
    pub payload: Option<MsAttachmentPayload>,
}

#[derive(Debug, Deserialize)]
pub struct MsAttachmentPayload {
    pub url: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct MsPostback {
    pub mid: Option<String>,
    pub title: Option<String>,
    pub payload: Option<String>,
}

/// Why an event does not become a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Skip {
    #[error("an echo of the page's own message")]
    Echo,
    #[error("a `{0}` message has nothing to decide")]
    Unsupported(String),
}

/// The conversation id of a user on one of our accounts: `<account>:<user>`, where the
/// account (phone number id, page id, Instagram account id) is where the reply is sent from.
pub fn conversation_id(account: &str, user: &str) -> String {
    format!("{account}:{user}")
}

/// Splits a conversation id back into (account, user).
pub fn split_conversation(conversation: &str) -> Option<(&str, &str)> {
    conversation
        .split_once(':')
        .filter(|(a, u)| !a.is_empty() && !u.is_empty())
}

/// The channel of a notification's `object`, if webcare takes it.
pub fn channel_of(object: &str) -> Option<ChannelKind> {
    match object {
        "whatsapp_business_account" => Some(ChannelKind::Whatsapp),
        "page" => Some(ChannelKind::Messenger),
        "instagram" => Some(ChannelKind::Instagram),
        _ => None,
    }
}

/// A location in words the team can read and a link it can open.
pub fn describe_location(location: &WaLocation) -> String {
    let (lat, lon) = (location.latitude, location.longitude);
    let place = [location.name.as_deref(), location.address.as_deref()]
        .into_iter()
        .flatten()
        .filter(|s| !s.trim().is_empty())
        .collect::<Vec<_>>()
        .join(", ");
    let link = format!(
        "https://www.openstreetmap.org/?mlat={lat:.6}&mlon={lon:.6}#map=18/{lat:.6}/{lon:.6}"
    );
    if place.is_empty() {
        format!("Location: {lat:.6}, {lon:.6} ({link})")
    } else {
        format!("Location: {place} — {lat:.6}, {lon:.6} ({link})")
    }
}

/// A WhatsApp message as webcare's message.
pub fn whatsapp_inbound(
    phone_number_id: &str,
    contacts: &[WaContact],
    message: &WaMessage,
) -> Result<Inbound, Skip> {
    let mut metadata = BTreeMap::new();
    let text = match message.kind.as_str() {
        "text" => message.text.as_ref().map(|t| t.body.clone()),
        "image" | "document" | "video" => {
            let media = match message.kind.as_str() {
                "image" => message.image.as_ref(),
                "document" => message.document.as_ref(),
                _ => message.video.as_ref(),
            };
            media.map(|media| {
                metadata.insert("media_id".to_owned(), media.id.clone());
                metadata.insert("media_type".to_owned(), message.kind.clone());
                if let Some(mime) = &media.mime_type {
                    metadata.insert("media_mime_type".to_owned(), mime.clone());
                }
                let reference = format!("[{} attached: media id {}]", message.kind, media.id);
                match media.caption.as_deref().map(str::trim) {
                    Some(caption) if !caption.is_empty() => format!("{caption}\n{reference}"),
                    _ => {
                        metadata.insert(ATTACHMENT_ONLY.to_owned(), message.kind.clone());
                        reference
                    }
                }
            })
        }
        "location" => message.location.as_ref().map(|location| {
            metadata.insert("latitude".to_owned(), location.latitude.to_string());
            metadata.insert("longitude".to_owned(), location.longitude.to_string());
            metadata.insert(ATTACHMENT_ONLY.to_owned(), "location".to_owned());
            describe_location(location)
        }),
        "button" => message.button.as_ref().map(|button| {
            if let Some(payload) = &button.payload {
                metadata.insert("button_payload".to_owned(), payload.clone());
            }
            button.text.clone()
        }),
        "interactive" => message.interactive.as_ref().and_then(|i| {
            let choice = i.button_reply.as_ref().or(i.list_reply.as_ref())?;
            metadata.insert("button_payload".to_owned(), choice.id.clone());
            Some(choice.title.clone())
        }),
        _ => None,
    };
    let text = text.ok_or_else(|| Skip::Unsupported(message.kind.clone()))?;
    if let Some(name) = contacts
        .iter()
        .find(|c| c.wa_id == message.from)
        .and_then(|c| c.profile.as_ref()?.name.clone())
    {
        metadata.insert("display_name".to_owned(), name);
    }
    let seconds = message.timestamp.parse::<i64>().unwrap_or_default();
    Ok(Inbound {
        id: message.id.clone(),
        channel: ChannelKind::Whatsapp,
        conversation: conversation_id(phone_number_id, &message.from),
        author: message.from.clone(),
        text,
        received_at: time(seconds * 1000),
        metadata,
    })
}

/// A Messenger or Instagram event as webcare's message.
pub fn messaging_inbound(channel: ChannelKind, event: &Messaging) -> Result<Inbound, Skip> {
    let mut metadata = BTreeMap::new();
    let (id, text) = if let Some(message) = &event.message {
        if message.is_echo {
            return Err(Skip::Echo);
        }
        if let Some(quick) = &message.quick_reply {
            metadata.insert("button_payload".to_owned(), quick.payload.clone());
        }
        let mut text = message.text.clone().unwrap_or_default();
        for attachment in &message.attachments {
            let url = attachment.payload.as_ref().and_then(|p| p.url.clone());
            if let Some(url) = &url {
                metadata.insert("media_url".to_owned(), url.clone());
            }
            let reference = match url {
                Some(url) => format!("[{} attached: {url}]", attachment.kind),
                None => format!("[{} attached]", attachment.kind),
            };
            if !text.is_empty() {
                text.push('\n');
            }
            text.push_str(&reference);
        }
        (message.mid.clone(), text)
    } else if let Some(postback) = &event.postback {
        if let Some(payload) = &postback.payload {
            metadata.insert("button_payload".to_owned(), payload.clone());
        }
        let id = postback
            .mid
            .clone()
            .unwrap_or_else(|| format!("postback:{}:{}", event.sender.id, event.timestamp));
        (id, postback.title.clone().unwrap_or_default())
    } else {
        return Err(Skip::Unsupported("delivery or read".into()));
    };
    if text.trim().is_empty() {
        return Err(Skip::Unsupported("empty".into()));
    }
    Ok(Inbound {
        id,
        channel,
        conversation: conversation_id(&event.recipient.id, &event.sender.id),
        author: event.sender.id.clone(),
        text,
        received_at: time(event.timestamp),
        metadata,
    })
}

fn time(millis: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(millis)
        .single()
        .unwrap_or_else(Utc::now)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wa(value: serde_json::Value) -> WaMessage {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn whatsapp_kinds_become_text_to_decide() {
        let contacts: Vec<WaContact> = serde_json::from_value(serde_json::json!([
            { "wa_id": "31612345678", "profile": { "name": "Ann" } }
        ]))
        .unwrap();
        let text = wa(serde_json::json!({
            "id": "wamid.1", "from": "31612345678", "timestamp": "1700000000",
            "type": "text", "text": { "body": "Hoe laat is het milieupark open?" }
        }));
        let inbound = whatsapp_inbound("PN1", &contacts, &text).unwrap();
        assert_eq!(inbound.conversation, "PN1:31612345678");
        assert_eq!(inbound.channel, ChannelKind::Whatsapp);
        assert_eq!(inbound.received_at.timestamp(), 1_700_000_000);
        assert_eq!(inbound.metadata["display_name"], "Ann");

        let image = wa(serde_json::json!({
            "id": "wamid.2", "from": "31612345678", "timestamp": "1700000000", "type": "image",
            "image": { "id": "MEDIA9", "caption": "Kapotte lantaarnpaal", "mime_type": "image/jpeg" }
        }));
        let inbound = whatsapp_inbound("PN1", &contacts, &image).unwrap();
        assert!(inbound.text.starts_with("Kapotte lantaarnpaal"));
        assert!(inbound.text.contains("MEDIA9"));
        assert_eq!(inbound.metadata["media_id"], "MEDIA9");
        assert!(
            !inbound.is_attachment_only(),
            "a caption is words of its own"
        );

        let bare = wa(serde_json::json!({
            "id": "wamid.4", "from": "31612345678", "timestamp": "1700000000", "type": "image",
            "image": { "id": "MEDIA10", "mime_type": "image/jpeg" }
        }));
        let inbound = whatsapp_inbound("PN1", &contacts, &bare).unwrap();
        assert_eq!(inbound.metadata[ATTACHMENT_ONLY], "image");

        let location = wa(serde_json::json!({
            "id": "wamid.3", "from": "31612345678", "timestamp": "1700000000", "type": "location",
            "location": { "latitude": 52.370216, "longitude": 4.895168, "name": "Dam" }
        }));
        let inbound = whatsapp_inbound("PN1", &contacts, &location).unwrap();
        assert!(
            inbound.text.contains("52.370216, 4.895168"),
            "{}",
            inbound.text
        );
        assert!(inbound.text.contains("Dam"));
        assert_eq!(inbound.metadata[ATTACHMENT_ONLY], "location");

        let button = wa(serde_json::json!({
            "id": "wamid.4", "from": "31612345678", "timestamp": "1700000000",
            "type": "interactive",
            "interactive": { "type": "button_reply", "button_reply": { "id": "yes", "title": "Ja graag" } }
        }));
        assert_eq!(
            whatsapp_inbound("PN1", &contacts, &button).unwrap().text,
            "Ja graag"
        );
        let sticker = wa(serde_json::json!({
            "id": "wamid.5", "from": "3161", "timestamp": "1700000000", "type": "sticker"
        }));
        assert_eq!(
            whatsapp_inbound("PN1", &contacts, &sticker),
            Err(Skip::Unsupported("sticker".into()))
        );
    }

    #[test]
    fn messenger_echoes_are_never_decided() {
        let event: Messaging = serde_json::from_value(serde_json::json!({
            "sender": { "id": "PAGE" }, "recipient": { "id": "USER" }, "timestamp": 1700000000000i64,
            "message": { "mid": "m1", "text": "Ons antwoord", "is_echo": true }
        }))
        .unwrap();
        assert_eq!(
            messaging_inbound(ChannelKind::Messenger, &event),
            Err(Skip::Echo)
        );
        let event: Messaging = serde_json::from_value(serde_json::json!({
            "sender": { "id": "USER" }, "recipient": { "id": "PAGE" }, "timestamp": 1700000000000i64,
            "message": { "mid": "m2", "text": "Wanneer wordt het afval opgehaald?" }
        }))
        .unwrap();
        let inbound = messaging_inbound(ChannelKind::Instagram, &event).unwrap();
        assert_eq!(inbound.conversation, "PAGE:USER");
        assert_eq!(inbound.channel, ChannelKind::Instagram);
    }
}
