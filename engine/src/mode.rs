//! Channel modes: what the service does with a decision on each channel. Organisations start
//! by listening, then run a pilot, learn and only then let the bot answer (DESIGN.md §2), so a
//! channel can be put in force step by step without a second rulebook or a second deployment.
//!
//! The rulebook decides every message the same way in every mode, and the decision is stored
//! with the mode it was taken in, so reports, `webcare explain` and a replay see all traffic;
//! the mode only chooses which effects the intake transaction writes:
//!
//! | mode | stored and decided | automatic reply (answer or holding reply) | escalation into the inbox |
//! |---|---|---|---|
//! | `live` | yes | queued in the outbox | yes |
//! | `shadow` | yes | no: recorded as what the bot would have said | yes: the hub works them in the inbox as in a pilot |
//! | `listen` | yes | no | no: the organisation answers elsewhere, by hand |
//!
//! In `listen` nobody is told about the message by webcare: that is the point of listening
//! (the team keeps answering on the platform itself, as before), so a channel must not be put in
//! `listen` unless somebody answers it there. Early-warning alerts (`report::spike`) are the
//! system talking to the hub, not a decision on one message: they reach the inbox from every
//! mode, since spotting trouble early is what listening is for.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::message::ChannelKind;

/// What the service does with a decision on one channel. See the module docs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Today's behaviour: replies go out, escalations reach the inbox.
    #[default]
    Live,
    /// Decide and escalate, never send anything automatic.
    Shadow,
    /// Decide and record only: nothing is sent and nothing is escalated.
    Listen,
}

impl Mode {
    pub const ALL: [Mode; 3] = [Mode::Live, Mode::Shadow, Mode::Listen];

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Live => "live",
            Mode::Shadow => "shadow",
            Mode::Listen => "listen",
        }
    }

    /// Whether the bot's own reply (answer or holding reply) is sent.
    pub fn sends_replies(self) -> bool {
        matches!(self, Mode::Live)
    }

    /// Whether an escalation reaches the inbox.
    pub fn escalates(self) -> bool {
        matches!(self, Mode::Live | Mode::Shadow)
    }

    /// What happens to a decision in this mode, in a few words for logs and `explain`.
    pub fn effect(self) -> &'static str {
        match self {
            Mode::Live => "acted on",
            Mode::Shadow => "not sent (shadow mode: escalations only)",
            Mode::Listen => "not acted on (listen mode: recorded only)",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error for a mode name that is not one of [`Mode::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown mode `{0}`; expected live, shadow or listen")]
pub struct UnknownModeError(pub String);

impl FromStr for Mode {
    type Err = UnknownModeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Mode::ALL
            .into_iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownModeError(s.to_owned()))
    }
}

/// The mode of every channel; `live` unless set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChannelModes([Mode; ChannelKind::ALL.len()]);

impl ChannelModes {
    pub fn get(&self, channel: ChannelKind) -> Mode {
        self.0[index(channel)]
    }

    pub fn set(&mut self, channel: ChannelKind, mode: Mode) {
        self.0[index(channel)] = mode;
    }

    pub fn with(mut self, channel: ChannelKind, mode: Mode) -> Self {
        self.set(channel, mode);
        self
    }
}

fn index(channel: ChannelKind) -> usize {
    match channel {
        ChannelKind::Telegram => 0,
        ChannelKind::Discord => 1,
        ChannelKind::Webchat => 2,
        ChannelKind::Http => 3,
        ChannelKind::Terminal => 4,
        ChannelKind::Whatsapp => 5,
        ChannelKind::Messenger => 6,
        ChannelKind::Instagram => 7,
        ChannelKind::Email => 8,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_and_default_to_live() {
        for mode in Mode::ALL {
            assert_eq!(mode.as_str().parse::<Mode>(), Ok(mode));
        }
        assert_eq!("Listen".parse::<Mode>(), Ok(Mode::Listen));
        let error = "pilot".parse::<Mode>().err().map(|e| e.to_string());
        assert!(error.is_some_and(|e| e.contains("`pilot`")));
        let modes = ChannelModes::default().with(ChannelKind::Http, Mode::Listen);
        assert_eq!(modes.get(ChannelKind::Http), Mode::Listen);
        for channel in ChannelKind::ALL {
            if channel != ChannelKind::Http {
                assert_eq!(modes.get(channel), Mode::Live);
            }
        }
    }
}
