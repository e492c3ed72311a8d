//! The platform-neutral inbound message. Every adapter (Telegram, Discord, web chat, the HTTP
//! channel, the terminal, a replay file) turns what its platform delivers into one of these, so the
//! engine never needs to know where a message came from beyond its [`ChannelKind`].

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The platforms webcare talks to. Closed on purpose: every kind has its own reply limits and
/// delivery rules, so adding one is a deliberate change across the code, not a config string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelKind {
    Telegram,
    Discord,
    Webchat,
    Http,
    Terminal,
    // New kinds go at the end: the store encodes a channel as its position in `ALL`.
    Whatsapp,
    Messenger,
    Instagram,
    Email,
}

impl ChannelKind {
    pub const ALL: [ChannelKind; 9] = [
        ChannelKind::Telegram,
        ChannelKind::Discord,
        ChannelKind::Webchat,
        ChannelKind::Http,
        ChannelKind::Terminal,
        ChannelKind::Whatsapp,
        ChannelKind::Messenger,
        ChannelKind::Instagram,
        ChannelKind::Email,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Telegram => "telegram",
            ChannelKind::Discord => "discord",
            ChannelKind::Webchat => "webchat",
            ChannelKind::Http => "http",
            ChannelKind::Terminal => "terminal",
            ChannelKind::Whatsapp => "whatsapp",
            ChannelKind::Messenger => "messenger",
            ChannelKind::Instagram => "instagram",
            ChannelKind::Email => "email",
        }
    }
}

impl ChannelKind {
    /// The customer service window: how long after the customer's last message a platform
    /// lets a business send a free reply (24 hours on WhatsApp, Messenger and Instagram);
    /// `None` where replies are not limited in time. The Meta adapter refuses replies after it
    /// and the inbox shows it.
    pub fn reply_window(self) -> Option<chrono::Duration> {
        match self {
            ChannelKind::Whatsapp | ChannelKind::Messenger | ChannelKind::Instagram => {
                Some(chrono::Duration::hours(24))
            }
            _ => None,
        }
    }
}

impl fmt::Display for ChannelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error for a channel name that is not one of [`ChannelKind::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown channel `{0}`; expected one of telegram, discord, webchat, http, terminal, whatsapp, messenger, instagram, email"
)]
pub struct UnknownChannelError(pub String);

impl FromStr for ChannelKind {
    type Err = UnknownChannelError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ChannelKind::ALL
            .into_iter()
            .find(|kind| kind.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownChannelError(s.to_owned()))
    }
}

/// The metadata key an adapter sets on a message that is only an attachment, without words of
/// its own (a shared location, a photo without a caption); its value names the kind. Such a
/// message adds to what the customer said just before, so it joins their open case whatever
/// team its own decision would name (see [`crate::case::intake`]).
pub const ATTACHMENT_ONLY: &str = "attachment_only";

/// One message from a customer or citizen, as the engine sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Inbound {
    /// The platform's own id for the message; together with `channel` it identifies a delivery,
    /// so a platform retry of the same message can be recognised.
    pub id: String,
    pub channel: ChannelKind,
    /// The conversation (chat, DM, widget session, thread) the message belongs to.
    pub conversation: String,
    /// The platform's id for the author.
    pub author: String,
    pub text: String,
    pub received_at: DateTime<Utc>,
    /// Platform extras worth keeping (display name, thread id, bridge source); only
    /// [`ATTACHMENT_ONLY`] is interpreted.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
}

impl Inbound {
    /// Only an attachment, without words of its own: see [`ATTACHMENT_ONLY`].
    pub fn is_attachment_only(&self) -> bool {
        self.metadata.contains_key(ATTACHMENT_ONLY)
    }

    /// A message with only text, as typed in `webcare chat` or listed in a golden case.
    pub fn from_text(
        id: impl Into<String>,
        channel: ChannelKind,
        text: impl Into<String>,
        received_at: DateTime<Utc>,
    ) -> Self {
        let id = id.into();
        Inbound {
            conversation: id.clone(),
            author: "anonymous".to_owned(),
            id,
            channel,
            text: text.into(),
            received_at,
            metadata: BTreeMap::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_names_round_trip_and_unknown_names_are_explained() {
        for kind in ChannelKind::ALL {
            assert_eq!(kind.as_str().parse::<ChannelKind>(), Ok(kind));
        }
        assert_eq!("Telegram".parse::<ChannelKind>(), Ok(ChannelKind::Telegram));
        let err = "fax".parse::<ChannelKind>().unwrap_err();
        assert!(err.to_string().contains("`fax`"), "{err}");
    }
}
