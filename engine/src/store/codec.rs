//! The on-disk encoding of stored messages and decisions. It exists because the store must stay
//! within three times the size of the raw JSON of the messages it holds, while every message
//! also keeps its full decision (reply, reasons, rules, rulebook version), which as JSON is
//! several times larger than the message itself.
//!
//! Two things make it small. Records are postcard (varints, no field names); and the strings of
//! a decision come from a rulebook, so the same reply, reason and rule text repeats across
//! millions of messages: each distinct string is stored once in a symbol table and decisions
//! refer to it by a small number. A string that contains the message's own text or id is kept
//! inline instead, so customer content never lands in the shared table (where `forget` could not
//! erase it) and per-message strings cannot grow the table without bound.
//!
//! Only the store's own structs here are postcard-encoded: the public types use serde features
//! (`flatten`, internally tagged enums) that need a self-describing format.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::decision::{
    Action, Category, Decision, Diagnostics, Language, Priority, Sentiment, SentimentLabel,
    TopicMatch,
};
use crate::message::{ChannelKind, Inbound};
use crate::pipeline::{ConversationFacts, ConversationState};

/// A decision string: a symbol-table id, or the text itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Text {
    Sym(u32),
    Inline(String),
}

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

/// A stored message with its decision; the value of the `m` records.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MessageRec {
    pub channel: u8,
    pub id: String,
    pub conversation: String,
    pub author: String,
    pub text: String,
    pub received_at: i64,
    pub stored_at: i64,
    pub metadata: Vec<(String, String)>,
    pub decision: DecisionRec,
    /// The conversation facts the decision saw, so a replay can give a new rulebook the same
    /// situation: state (0 bot, 1 human, 2 closed), messages today, automatic replies,
    /// complaints in 24 h and in 7 days.
    pub facts: (u8, i64, i64, i64, i64),
}

/// An outbox entry on disk: the reply text is the decision's reply, so it is interned like it
/// (one copy per distinct reply, not per message), and times are microseconds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutboxRec {
    pub channel: u8,
    pub conversation: String,
    pub in_reply_to: String,
    pub text: Text,
    pub attempts: u32,
    pub last_error: Option<String>,
    /// 0 pending, 1 sent (at `sent_at`), 2 dead.
    pub status: u8,
    pub sent_at: i64,
    pub created_at: i64,
    pub next_attempt_at: i64,
}

pub const OUTBOX_PENDING: u8 = 0;
pub const OUTBOX_SENT: u8 = 1;
pub const OUTBOX_DEAD: u8 = 2;

/// Encodes one decision string, inline when it contains any of `private` (see the module docs).
pub fn encode_text(
    text: &str,
    private: &[&str],
    interner: &mut impl Intern,
) -> Result<Text, crate::store::StoreError> {
    let private = private.iter().any(|p| p.len() >= 3 && text.contains(p));
    if private || text.len() > 2048 {
        Ok(Text::Inline(text.to_owned()))
    } else {
        Ok(Text::Sym(interner.intern(text)?))
    }
}

pub fn decode_outbox(
    id: u64,
    rec: &OutboxRec,
    symbols: &mut impl Resolve,
    corrupt: impl Fn(String) -> crate::store::StoreError,
) -> Result<crate::store::OutboxEntry, crate::store::StoreError> {
    use crate::store::OutboxStatus;
    Ok(crate::store::OutboxEntry {
        id,
        channel: channel_from(rec.channel).map_err(&corrupt)?,
        conversation: rec.conversation.clone(),
        in_reply_to: rec.in_reply_to.clone(),
        text: text(&rec.text, symbols)?,
        attempts: rec.attempts,
        last_error: rec.last_error.clone(),
        status: match rec.status {
            OUTBOX_PENDING => OutboxStatus::Pending,
            OUTBOX_SENT => OutboxStatus::Sent {
                at: from_micros(rec.sent_at).map_err(&corrupt)?,
            },
            _ => OutboxStatus::Dead,
        },
        created_at: from_micros(rec.created_at).map_err(&corrupt)?,
        next_attempt_at: from_micros(rec.next_attempt_at).map_err(&corrupt)?,
    })
}

pub fn channel_code(channel: ChannelKind) -> u8 {
    ChannelKind::ALL
        .iter()
        .position(|c| *c == channel)
        .unwrap_or_default() as u8
}

pub fn channel_from(code: u8) -> Result<ChannelKind, String> {
    ChannelKind::ALL
        .get(usize::from(code))
        .copied()
        .ok_or_else(|| format!("unknown channel code {code}"))
}

fn category_code(c: Category) -> u8 {
    Category::ALL
        .iter()
        .position(|x| *x == c)
        .unwrap_or_default() as u8
}

fn category_from(code: u8) -> Result<Category, String> {
    Category::ALL
        .get(usize::from(code))
        .copied()
        .ok_or_else(|| format!("unknown category code {code}"))
}

fn priority_from(code: u8) -> Result<Priority, String> {
    Priority::ALL
        .get(usize::from(code))
        .copied()
        .ok_or_else(|| format!("unknown priority code {code}"))
}

fn priority_code(p: Priority) -> u8 {
    Priority::ALL
        .iter()
        .position(|x| *x == p)
        .unwrap_or_default() as u8
}

pub fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

pub fn from_micros(m: i64) -> Result<DateTime<Utc>, String> {
    DateTime::from_timestamp_micros(m).ok_or_else(|| format!("time {m} out of range"))
}

/// The symbol table as this process knows it: every committed symbol, both ways. The writer
/// adds to it only after the commit that stored the new symbols is durable.
#[derive(Default)]
pub struct Symbols {
    inner: RwLock<SymbolMaps>,
}

#[derive(Default)]
struct SymbolMaps {
    by_text: HashMap<Arc<str>, u32>,
    by_id: HashMap<u32, Arc<str>>,
}

impl Symbols {
    pub fn insert(&self, id: u32, text: Arc<str>) {
        if let Ok(mut maps) = self.inner.write() {
            maps.by_text.insert(Arc::clone(&text), id);
            maps.by_id.insert(id, text);
        }
    }

    pub fn id_of(&self, text: &str) -> Option<u32> {
        self.inner.read().ok()?.by_text.get(text).copied()
    }

    pub fn text_of(&self, id: u32) -> Option<Arc<str>> {
        self.inner.read().ok()?.by_id.get(&id).cloned()
    }

    pub fn len(&self) -> usize {
        self.inner.read().map(|m| m.by_id.len()).unwrap_or_default()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Interning during encoding. The writer implements it with symbols that become part of the
/// same transaction as the record that uses them.
pub trait Intern {
    fn intern(&mut self, text: &str) -> Result<u32, crate::store::StoreError>;
}

/// Resolving during decoding.
pub trait Resolve {
    fn resolve(&mut self, id: u32) -> Result<Arc<str>, crate::store::StoreError>;
}

struct Encoder<'a, I: Intern> {
    interner: &'a mut I,
    /// Strings that contain these are customer-specific and stay inline.
    private: [&'a str; 2],
}

impl<I: Intern> Encoder<'_, I> {
    fn text(&mut self, s: &str) -> Result<Text, crate::store::StoreError> {
        let private = self.private.iter().any(|p| p.len() >= 3 && s.contains(p));
        if private || s.len() > 2048 {
            Ok(Text::Inline(s.to_owned()))
        } else {
            Ok(Text::Sym(self.interner.intern(s)?))
        }
    }

    fn opt(&mut self, s: Option<&str>) -> Result<Option<Text>, crate::store::StoreError> {
        s.map(|s| self.text(s)).transpose()
    }

    fn all(&mut self, items: &[String]) -> Result<Vec<Text>, crate::store::StoreError> {
        items.iter().map(|s| self.text(s)).collect()
    }
}

/// Encodes a message (already redacted) and its decision.
pub fn encode_message(
    message: &Inbound,
    decision: &Decision,
    facts: &ConversationFacts,
    stored_at: DateTime<Utc>,
    interner: &mut impl Intern,
) -> Result<MessageRec, crate::store::StoreError> {
    let mut enc = Encoder {
        interner,
        private: [message.text.as_str(), message.id.as_str()],
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
    let rec = DecisionRec {
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
    };
    Ok(MessageRec {
        channel: channel_code(message.channel),
        id: message.id.clone(),
        conversation: message.conversation.clone(),
        author: message.author.clone(),
        text: message.text.clone(),
        received_at: micros(message.received_at),
        stored_at: micros(stored_at),
        metadata: message
            .metadata
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        decision: rec,
        facts: (
            facts.state as u8,
            facts.messages_today,
            facts.auto_replies,
            facts.complaints_24h,
            facts.complaints_7d,
        ),
    })
}

fn text(t: &Text, symbols: &mut impl Resolve) -> Result<String, crate::store::StoreError> {
    match t {
        Text::Inline(s) => Ok(s.clone()),
        Text::Sym(id) => Ok(symbols.resolve(*id)?.to_string()),
    }
}

fn texts(ts: &[Text], symbols: &mut impl Resolve) -> Result<Vec<String>, crate::store::StoreError> {
    ts.iter().map(|t| text(t, symbols)).collect()
}

/// A decoded message record.
pub struct Decoded {
    pub message: Inbound,
    pub decision: Decision,
    pub facts: ConversationFacts,
    pub stored_at: DateTime<Utc>,
}

/// Decodes a stored message; `corrupt` turns a bad value into the store's error.
pub fn decode_message(
    rec: MessageRec,
    symbols: &mut impl Resolve,
    corrupt: impl Fn(String) -> crate::store::StoreError,
) -> Result<Decoded, crate::store::StoreError> {
    let d = &rec.decision;
    fn opt(
        t: &Option<Text>,
        symbols: &mut impl Resolve,
    ) -> Result<Option<String>, crate::store::StoreError> {
        t.as_ref().map(|t| text(t, symbols)).transpose()
    }
    let action = match d.action {
        0 => Action::Answer {
            template: opt(&d.template, symbols)?.unwrap_or_default(),
            reply: opt(&d.reply, symbols)?.unwrap_or_default(),
        },
        1 => Action::Escalate {
            team: opt(&d.team, symbols)?.unwrap_or_default(),
            priority: priority_from(d.priority).map_err(&corrupt)?,
            template: opt(&d.template, symbols)?,
            reply: opt(&d.reply, symbols)?,
        },
        2 => Action::Log,
        other => return Err(corrupt(format!("unknown action code {other}"))),
    };
    let mut topics = Vec::with_capacity(d.topics.len());
    for t in &d.topics {
        topics.push(TopicMatch {
            topic: text(&t.topic, symbols)?,
            category: category_from(t.category).map_err(&corrupt)?,
            matched: texts(&t.matched, symbols)?,
        });
    }
    let diagnostics = Diagnostics {
        category: category_from(d.category).map_err(&corrupt)?,
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
    let message = Inbound {
        id: rec.id,
        channel: channel_from(rec.channel).map_err(&corrupt)?,
        conversation: rec.conversation,
        author: rec.author,
        text: rec.text,
        received_at: from_micros(rec.received_at).map_err(&corrupt)?,
        metadata: rec.metadata.into_iter().collect::<BTreeMap<_, _>>(),
    };
    let decision = Decision {
        message_id: message.id.clone(),
        action,
        diagnostics,
    };
    let stored_at = from_micros(rec.stored_at).map_err(&corrupt)?;
    let (state, messages_today, auto_replies, complaints_24h, complaints_7d) = rec.facts;
    let facts = ConversationFacts {
        state: match state {
            1 => ConversationState::Human,
            2 => ConversationState::Closed,
            _ => ConversationState::Bot,
        },
        messages_today,
        auto_replies,
        complaints_24h,
        complaints_7d,
    };
    Ok(Decoded {
        message,
        decision,
        facts,
        stored_at,
    })
}
