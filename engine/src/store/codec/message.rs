//! A message and its decision as one compact record: the decision's strings as symbols
//! unless they hold the customer's words, the facts and the channel mode packed beside them.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::*;
use crate::case::{ConversationFacts, ConversationState};
use crate::decision::{
    Action, Decision, Diagnostics, Language, Sentiment, SentimentLabel, TopicMatch,
};
use crate::message::Inbound;
use crate::mode::Mode;
use crate::store::StoreError;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TopicRec {
    pub topic: Text,
    pub category: u8,
    pub matched: Vec<Text>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DecisionRec {
    /// 0 answer, 1 escalate, 2 log.
    pub action: u8,
    pub team: Option<Text>,
    pub priority: u8,
    pub template: Option<Text>,
    pub reply: Option<Text>,
    pub category: u8,
    pub topics: Vec<TopicRec>,
    pub rules: Vec<Text>,
    /// Script errors are rare and may quote anything; kept inline.
    pub script_errors: Vec<String>,
    pub sentiment: u8,
    pub score: i32,
    pub language: u8,
    pub rulebook: Text,
    pub reasons: Vec<Text>,
}

/// A stored message with its decision: one slot of a message [`Chunk`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MessageRec {
    pub channel: u8,
    pub id: String,
    pub conversation: String,
    pub author: String,
    pub text: String,
    pub received_at: i64,
    /// `stored_at - received_at` in microseconds: usually small, so a short varint.
    pub stored_after: i64,
    pub metadata: Vec<(String, String)>,
    pub decision: DecisionRec,
    /// The conversation facts the decision saw, so a replay can give a new rulebook the same
    /// situation: state (0 bot, 1 human, 2 closed), messages today, automatic replies,
    /// complaints in 24 h and in 7 days.
    pub facts: (u8, i64, i64, i64, i64),
}

impl MessageRec {
    pub fn stored_at(&self) -> i64 {
        self.received_at.saturating_add(self.stored_after)
    }

    pub fn has_reply(&self) -> bool {
        self.decision.reply.is_some()
    }
}

pub(super) struct Encoder<'a, I: Intern> {
    interner: &'a mut I,
    /// Strings that contain these are customer-specific and stay inline.
    private: Private<'a>,
}

impl<I: Intern> Encoder<'_, I> {
    pub(super) fn text(&mut self, s: &str) -> Result<Text, StoreError> {
        self.private.encode(s, self.interner)
    }

    pub(super) fn opt(&mut self, s: Option<&str>) -> Result<Option<Text>, StoreError> {
        s.map(|s| self.text(s)).transpose()
    }

    pub(super) fn all(&mut self, items: &[String]) -> Result<Vec<Text>, StoreError> {
        items.iter().map(|s| self.text(s)).collect()
    }
}

/// [`MessageRec`] as it is written: the same fields in the same order (postcard is positional,
/// and encodes `&str` as it encodes `String`), borrowing the message's strings instead of
/// copying them, since the caller's thread encodes every message.
#[derive(Serialize)]
pub(super) struct MessageRecRef<'a> {
    channel: u8,
    id: &'a str,
    conversation: &'a str,
    author: &'a str,
    text: &'a str,
    received_at: i64,
    stored_after: i64,
    metadata: Vec<(&'a str, &'a str)>,
    decision: DecisionRec,
    facts: (u8, i64, i64, i64, i64),
}

/// The facts' state byte also says how the message was taken in: the conversation state in
/// the low bits, the channel mode in bits 4-5 (0 is `live`, so every record written before
/// modes existed reads as live, with no new format version), and [`SHADOW_FLAG`] when a shadow
/// decision is stored under the message's number, so reading a message looks for one only
/// when there is one.
pub(super) const STATE_MASK: u8 = 0x0f;
pub(super) const MODE_SHIFT: u8 = 4;
pub(super) const MODE_MASK: u8 = 0x30;
pub const SHADOW_FLAG: u8 = 0x40;

pub fn mode_code(mode: Mode) -> u8 {
    match mode {
        Mode::Live => 0,
        Mode::Shadow => 1,
        Mode::Listen => 2,
    }
}

pub fn mode_from(code: u8) -> Mode {
    match code {
        1 => Mode::Shadow,
        2 => Mode::Listen,
        _ => Mode::Live,
    }
}

/// How a message was taken in, as [`encode_message`] keeps it beside the facts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Intake {
    pub mode: Mode,
    pub has_shadow: bool,
}

impl Intake {
    pub(super) fn pack(self, state: ConversationState) -> u8 {
        state_code(state)
            | (mode_code(self.mode) << MODE_SHIFT)
            | if self.has_shadow { SHADOW_FLAG } else { 0 }
    }

    pub fn unpack(byte: u8) -> Intake {
        Intake {
            mode: mode_from((byte & MODE_MASK) >> MODE_SHIFT),
            has_shadow: byte & SHADOW_FLAG != 0,
        }
    }
}

impl MessageRec {
    /// The mode and shadow flag kept in the facts' state byte.
    pub fn intake(&self) -> Intake {
        Intake::unpack(self.facts.0)
    }
}

/// Encodes a decision's fields; strings holding the message's own words (`private`) stay inline.
pub fn encode_decision(
    decision: &Decision,
    private: [&str; 2],
    interner: &mut impl Intern,
) -> Result<DecisionRec, StoreError> {
    let mut enc = Encoder {
        interner,
        private: Private::new(private),
    };
    let (action, team, priority, template, reply) = match &decision.action {
        Action::Answer { template, reply } => (0, None, 0, Some(template.as_str()), Some(reply)),
        Action::Escalate {
            team,
            priority,
            template,
            reply,
        } => (
            1,
            Some(team.as_str()),
            priority_code(*priority),
            template.as_deref(),
            reply.as_ref(),
        ),
        Action::Log => (2, None, 0, None, None),
    };
    let d = &decision.diagnostics;
    Ok(DecisionRec {
        action,
        team: enc.opt(team)?,
        priority,
        template: enc.opt(template)?,
        reply: enc.opt(reply.map(String::as_str))?,
        category: category_code(d.category),
        topics: {
            let mut topics = Vec::with_capacity(d.topics.len());
            for t in &d.topics {
                topics.push(TopicRec {
                    topic: enc.text(&t.topic)?,
                    category: category_code(t.category),
                    matched: enc.all(&t.matched)?,
                });
            }
            topics
        },
        rules: enc.all(&d.rules)?,
        script_errors: d.script_errors.clone(),
        sentiment: match d.sentiment.label {
            SentimentLabel::Negative => 0,
            SentimentLabel::Neutral => 1,
            SentimentLabel::Positive => 2,
        },
        score: d.sentiment.score,
        language: match d.language {
            Language::Nl => 0,
            Language::En => 1,
        },
        rulebook: enc.text(&d.rulebook)?,
        reasons: enc.all(&d.reasons)?,
    })
}

/// Encodes a message (already redacted) and its decision as the bytes of a [`MessageRec`].
pub fn encode_message(
    message: &Inbound,
    decision: &Decision,
    facts: &ConversationFacts,
    intake: Intake,
    stored_at: DateTime<Utc>,
    interner: &mut impl Intern,
) -> Result<Vec<u8>, StoreError> {
    let rec = encode_decision(
        decision,
        [message.text.as_str(), message.id.as_str()],
        interner,
    )?;
    let received_at = micros(message.received_at);
    let record = MessageRecRef {
        channel: channel_code(message.channel),
        id: &message.id,
        conversation: &message.conversation,
        author: &message.author,
        text: &message.text,
        received_at,
        stored_after: micros(stored_at).saturating_sub(received_at),
        metadata: message
            .metadata
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect(),
        decision: rec,
        facts: (
            intake.pack(facts.state),
            facts.messages_today,
            facts.auto_replies,
            facts.complaints_24h,
            facts.complaints_7d,
        ),
    };
    // Room for a typical record, so the encoder does not grow the buffer step by step.
    let buffer = Vec::with_capacity(128 + message.text.len());
    postcard::to_extend(&record, buffer).map_err(|e| StoreError::Backend {
        path: std::path::PathBuf::new(),
        reason: format!("cannot encode a message: {e}"),
    })
}

pub fn text(t: &Text, symbols: &mut impl Resolve) -> Result<String, StoreError> {
    match t {
        Text::Inline(s) => Ok(s.clone()),
        Text::Sym(id) => Ok(symbols.resolve(*id)?.to_string()),
    }
}

pub(super) fn texts(ts: &[Text], symbols: &mut impl Resolve) -> Result<Vec<String>, StoreError> {
    ts.iter().map(|t| text(t, symbols)).collect()
}

/// A decoded message record.
pub struct Decoded {
    pub message: Inbound,
    pub decision: Decision,
    pub facts: ConversationFacts,
    pub stored_at: DateTime<Utc>,
}

/// Decodes a stored decision of message `message_id`.
pub fn decode_decision(
    d: &DecisionRec,
    message_id: &str,
    symbols: &mut impl Resolve,
    corrupt: &impl Fn(CodecError) -> StoreError,
) -> Result<Decision, StoreError> {
    pub(super) fn opt(
        t: &Option<Text>,
        symbols: &mut impl Resolve,
    ) -> Result<Option<String>, StoreError> {
        t.as_ref().map(|t| text(t, symbols)).transpose()
    }
    let action = match d.action {
        0 => Action::Answer {
            template: opt(&d.template, symbols)?.unwrap_or_default(),
            reply: opt(&d.reply, symbols)?.unwrap_or_default(),
        },
        1 => Action::Escalate {
            team: opt(&d.team, symbols)?.unwrap_or_default(),
            priority: priority_from(d.priority).map_err(corrupt)?,
            template: opt(&d.template, symbols)?,
            reply: opt(&d.reply, symbols)?,
        },
        2 => Action::Log,
        other => {
            return Err(corrupt(CodecError::malformed(format!(
                "unknown action code {other}"
            ))));
        }
    };
    let mut topics = Vec::with_capacity(d.topics.len());
    for t in &d.topics {
        topics.push(TopicMatch {
            topic: text(&t.topic, symbols)?,
            category: category_from(t.category).map_err(corrupt)?,
            matched: texts(&t.matched, symbols)?,
        });
    }
    let diagnostics = Diagnostics {
        category: category_from(d.category).map_err(corrupt)?,
        topics,
        rules: texts(&d.rules, symbols)?,
        script_errors: d.script_errors.clone(),
        sentiment: Sentiment {
            label: match d.sentiment {
                0 => SentimentLabel::Negative,
                2 => SentimentLabel::Positive,
                _ => SentimentLabel::Neutral,
            },
            score: d.score,
        },
        language: if d.language == 1 {
            Language::En
        } else {
            Language::Nl
        },
        rulebook: text(&d.rulebook, symbols)?,
        reasons: texts(&d.reasons, symbols)?,
    };
    Ok(Decision {
        message_id: message_id.to_owned(),
        action,
        diagnostics,
    })
}

/// Decodes a stored message; `corrupt` turns a bad value into the store's error.
pub fn decode_message(
    rec: MessageRec,
    symbols: &mut impl Resolve,
    corrupt: impl Fn(CodecError) -> StoreError,
) -> Result<Decoded, StoreError> {
    let decision = decode_decision(&rec.decision, &rec.id, symbols, &corrupt)?;
    let stored_at = from_micros(rec.stored_at()).map_err(&corrupt)?;
    let message = Inbound {
        id: rec.id,
        channel: channel_from(rec.channel).map_err(&corrupt)?,
        conversation: rec.conversation,
        author: rec.author,
        text: rec.text,
        received_at: from_micros(rec.received_at).map_err(&corrupt)?,
        metadata: rec.metadata.into_iter().collect::<BTreeMap<_, _>>(),
    };
    let (state, messages_today, auto_replies, complaints_24h, complaints_7d) = rec.facts;
    let facts = ConversationFacts {
        state: state_from(state & STATE_MASK),
        messages_today,
        auto_replies,
        complaints_24h,
        complaints_7d,
        awaiting_score: false,
    };
    Ok(Decoded {
        message,
        decision,
        facts,
        stored_at,
    })
}
