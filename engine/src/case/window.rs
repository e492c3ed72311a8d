//! The customer service window of WhatsApp, Messenger and Instagram: how a reply may go out,
//! given when the customer last wrote. One rule for the two places that need it: the Meta
//! adapter, which enforces it when it sends, and the inbox, which refuses an agent's reply
//! that could never go out in the reply form itself (with the reason), instead of letting it
//! become a dead letter a minute later. Both call [`route`], so they cannot disagree.
//!
//! While the window is open a reply is plain text. After it the bot never replies; a person's
//! reply goes out as an approved template on WhatsApp (when one is configured), or tagged as
//! a human agent's on Messenger and Instagram for seven days after the customer's last
//! message; anything else is refused with a reason the agent can act on.

use chrono::{DateTime, Duration, Utc};

use crate::message::ChannelKind;

/// Messenger and Instagram let a person answer with the `HUMAN_AGENT` tag this long after the
/// customer's last message.
pub const HUMAN_AGENT_WINDOW: Duration = Duration::days(7);

/// How a reply goes out, given the window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Inside the window: plain text.
    Free,
    /// WhatsApp after the window: the approved template with the text as its parameter.
    Template,
    /// Messenger or Instagram after the window, within seven days: tagged `HUMAN_AGENT`.
    HumanAgent,
}

/// Why a reply may not go out. The words name the times and what would make it possible.
/// Serializable so the inbox can keep a refusal for a page another instance may serve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum Refused {
    #[error("{closed}; the bot does not reply after it, a person must follow up")]
    Bot { closed: String },
    #[error(
        "{closed}; an agent's reply needs an approved template and none is configured ([meta] reply_template), so it was not sent"
    )]
    NoTemplate { closed: String },
    #[error(
        "{closed}, and the 7 days in which a person may still answer are over; it was not sent"
    )]
    TooLate { closed: String },
}

/// When the free reply window of a conversation whose customer last wrote at `last` closes,
/// or `None` on a channel without one.
pub fn closes(channel: ChannelKind, last: DateTime<Utc>) -> Option<DateTime<Utc>> {
    channel.reply_window().map(|window| last + window)
}

/// The window rule: free text while the window (of length `window`) is open; after it, no
/// bot reply at all, and a person's reply only by template (WhatsApp, when `has_template`) or
/// with the human-agent tag (Messenger, Instagram, within [`HUMAN_AGENT_WINDOW`]). A channel
/// without a window always gets [`Route::Free`].
pub fn route(
    channel: ChannelKind,
    last_customer_message: DateTime<Utc>,
    now: DateTime<Utc>,
    window: Duration,
    by_bot: bool,
    has_template: bool,
) -> Result<Route, Refused> {
    if channel.reply_window().is_none() {
        return Ok(Route::Free);
    }
    let closes = last_customer_message + window;
    if now < closes {
        return Ok(Route::Free);
    }
    let closed = format!(
        "{channel}: outside the 24-hour customer service window (the customer last wrote at {}, the window closed at {})",
        last_customer_message.format("%Y-%m-%d %H:%M UTC"),
        closes.format("%Y-%m-%d %H:%M UTC")
    );
    if by_bot {
        return Err(Refused::Bot { closed });
    }
    match channel {
        ChannelKind::Whatsapp if has_template => Ok(Route::Template),
        ChannelKind::Whatsapp => Err(Refused::NoTemplate { closed }),
        _ if now < last_customer_message + HUMAN_AGENT_WINDOW => Ok(Route::HumanAgent),
        _ => Err(Refused::TooLate { closed }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(rfc: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(rfc)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    #[test]
    fn the_bot_never_replies_after_the_window_and_an_agent_only_by_template() {
        let last = at("2026-03-02T10:00:00Z");
        let day = Duration::hours(24);
        let inside = last + Duration::hours(23);
        let after = last + Duration::hours(25);
        let wa = ChannelKind::Whatsapp;
        assert_eq!(route(wa, last, inside, day, true, false), Ok(Route::Free));
        let bot = route(wa, last, after, day, true, true);
        assert!(matches!(bot, Err(Refused::Bot { .. })), "{bot:?}");
        assert_eq!(
            route(wa, last, after, day, false, true),
            Ok(Route::Template)
        );
        let refused = route(wa, last, after, day, false, false);
        let words = refused.as_ref().map_err(ToString::to_string).err();
        assert!(
            words.as_deref().is_some_and(|w| w.contains("reply_template")
                && w.contains("2026-03-03 10:00 UTC")),
            "{words:?}"
        );
        let ms = ChannelKind::Messenger;
        assert_eq!(
            route(ms, last, after, day, false, false),
            Ok(Route::HumanAgent)
        );
        let late = last + Duration::days(8);
        assert!(matches!(
            route(ms, last, late, day, false, false),
            Err(Refused::TooLate { .. })
        ));
        // Channels without a window are never refused.
        let mail = ChannelKind::Email;
        assert_eq!(route(mail, last, late, day, true, false), Ok(Route::Free));
        assert_eq!(closes(mail, last), None);
        assert_eq!(closes(wa, last), Some(last + day));
    }
}
