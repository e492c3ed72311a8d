//! The on-disk encoding of the store's records. It exists because the store must stay within
//! three times the size of the raw JSON of the messages it holds, while every message also keeps
//! its full decision (reply, reasons, rules, rulebook version), which as JSON is several times
//! larger than the message itself.
//!
//! Four things make it small:
//!
//! - Records are postcard (varints, no field names), with times as microseconds and codes for
//!   the closed enums.
//! - The strings of a decision come from a rulebook, so the same reply, reason and rule text
//!   repeats across millions of messages: each distinct string is stored once in a symbol table
//!   and decisions refer to it by a small number. A string that contains the message's own text
//!   or id is kept inline instead, so customer content never lands in the shared table (where
//!   `forget` could not erase it) and per-message strings cannot grow the table without bound.
//! - Messages are packed into [chunks](Chunk) of about one B-tree page. The backends' B-trees
//!   split a full leaf in half, so a key space that only grows at its end (the message log)
//!   would leave every leaf half empty; a chunk fills its page instead.
//! - Records refer to each other by number (an outbox entry to its message's sequence number)
//!   instead of repeating strings.
//!
//! Only the store's own structs here are postcard-encoded: the public types use serde features
//! (`flatten`, internally tagged enums) that need a self-describing format.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use chrono::{DateTime, NaiveDate, Utc};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::decision::{
    Action, Category, Decision, Diagnostics, Language, Priority, Sentiment, SentimentLabel,
    TopicMatch,
};
use crate::message::{ChannelKind, Inbound};
use crate::mode::Mode;
use crate::pipeline::{ConversationFacts, ConversationState};
use crate::store::{
    ActionKind, Conversation, Escalation, EscalationEvent, EscalationStatus, MessageBrief,
    OutboxEntry, OutboxStatus, StoreError,
};

/// A decision string: a symbol-table id, or the text itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

// --- the brief form, for reports ------------------------------------------------------------

/// [`MessageRec`] as a report reads it: the same fields in the same order (postcard is
/// positional), the strings borrowed from the record and what a report does not use (text,
/// metadata, rules, reasons, the facts' counters) skipped without being kept.
#[derive(Deserialize)]
pub struct BriefRec<'a> {
    pub channel: u8,
    pub id: &'a str,
    pub conversation: &'a str,
    pub author: &'a str,
    _text: Skip,
    pub received_at: i64,
    pub stored_after: i64,
    _metadata: SkipSeq<(Skip, Skip)>,
    #[serde(borrow)]
    pub decision: BriefDecision<'a>,
    /// The first is the state byte, which also holds the channel mode ([`Intake`]).
    pub facts: (u8, i64, i64, i64, i64),
}

#[derive(Deserialize)]
pub struct BriefDecision<'a> {
    pub action: u8,
    #[serde(borrow)]
    pub team: Option<TextRef<'a>>,
    _priority: u8,
    _template: Option<SkipText>,
    pub reply: Option<SkipText>,
    pub category: u8,
    #[serde(borrow)]
    pub topics: BriefTopics<'a>,
    _rules: SkipSeq<SkipText>,
    _script_errors: SkipSeq<Skip>,
    pub sentiment: u8,
    _score: i32,
    _language: u8,
    #[serde(borrow)]
    pub rulebook: TextRef<'a>,
    _reasons: SkipSeq<SkipText>,
}

#[derive(Deserialize)]
pub struct BriefTopic<'a> {
    #[serde(borrow)]
    pub topic: TextRef<'a>,
    _category: u8,
    _matched: SkipSeq<SkipText>,
}

/// The topics of a [`BriefDecision`], kept without an allocation while there are at most four.
#[derive(Default)]
pub struct BriefTopics<'a> {
    len: usize,
    inline: [Option<TextRef<'a>>; 4],
    more: Vec<TextRef<'a>>,
}

impl<'a> BriefTopics<'a> {
    pub fn iter(&self) -> impl Iterator<Item = TextRef<'a>> + '_ {
        self.inline
            .iter()
            .take(self.len)
            .flatten()
            .chain(&self.more)
            .copied()
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for BriefTopics<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for V<'a> {
            type Value = BriefTopics<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a sequence of topics")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                let mut out = BriefTopics::default();
                while let Some(t) = seq.next_element::<BriefTopic<'a>>()? {
                    match out.inline.get_mut(out.len) {
                        Some(slot) => *slot = Some(t.topic),
                        None => out.more.push(t.topic),
                    }
                    out.len += 1;
                }
                Ok(out)
            }
        }
        d.deserialize_seq(V(std::marker::PhantomData))
    }
}

/// [`Text`], borrowed.
#[derive(Debug, Clone, Copy, Deserialize)]
pub enum TextRef<'a> {
    Sym(u32),
    Inline(&'a str),
}

/// [`Text`], skipped.
#[derive(Deserialize)]
#[allow(dead_code, reason = "read past, never looked at")]
pub enum SkipText {
    Sym(u32),
    Inline(Skip),
}

/// A string, read past.
pub struct Skip;

impl<'de> Deserialize<'de> for Skip {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Skip;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<Skip, E> {
                Ok(Skip)
            }
            fn visit_bytes<E: serde::de::Error>(self, _: &[u8]) -> Result<Skip, E> {
                Ok(Skip)
            }
        }
        // A string is its length and bytes, as bytes are: read as bytes, the text skipped is
        // not checked for UTF-8 first.
        d.deserialize_bytes(V)
    }
}

/// A sequence, read past element by element without keeping any.
pub struct SkipSeq<T>(std::marker::PhantomData<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for SkipSeq<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for V<T> {
            type Value = SkipSeq<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a sequence")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                while seq.next_element::<T>()?.is_some() {}
                Ok(SkipSeq(std::marker::PhantomData))
            }
        }
        d.deserialize_seq(V(std::marker::PhantomData))
    }
}

/// The symbols a brief needs, resolved once per report rather than once per message.
#[derive(Default)]
pub struct SymbolCache {
    texts: FxHashMap<u32, Arc<str>>,
}

impl SymbolCache {
    /// Makes sure `t` can be read with [`SymbolCache::get`].
    pub fn load(&mut self, t: TextRef<'_>, symbols: &mut impl Resolve) -> Result<(), StoreError> {
        if let TextRef::Sym(id) = t
            && !self.texts.contains_key(&id)
        {
            let text = symbols.resolve(id)?;
            self.texts.insert(id, text);
        }
        Ok(())
    }

    /// The text of `t`; empty for a symbol not [loaded](SymbolCache::load).
    pub fn get<'s>(&'s self, t: TextRef<'s>) -> &'s str {
        match t {
            TextRef::Inline(s) => s,
            TextRef::Sym(id) => self.texts.get(&id).map(|s| &**s).unwrap_or_default(),
        }
    }
}

impl BriefRec<'_> {
    /// Loads the symbols the brief refers to into `cache`.
    pub fn load_symbols(
        &self,
        cache: &mut SymbolCache,
        symbols: &mut impl Resolve,
    ) -> Result<(), StoreError> {
        let d = &self.decision;
        if let Some(t) = d.team {
            cache.load(t, symbols)?;
        }
        for t in d.topics.iter() {
            cache.load(t, symbols)?;
        }
        cache.load(d.rulebook, symbols)
    }

    /// The brief, with the symbols from `cache` (see [`BriefRec::load_symbols`]).
    pub fn brief<'s>(
        &'s self,
        seq: u64,
        cache: &'s SymbolCache,
        reply: Option<OutboxStatus>,
    ) -> Result<MessageBrief<'s>, String> {
        let d = &self.decision;
        let action = match d.action {
            0 => ActionKind::Answer,
            1 => ActionKind::Escalate,
            2 => ActionKind::Log,
            other => return Err(format!("unknown action code {other}")),
        };
        Ok(MessageBrief {
            seq,
            channel: channel_from(self.channel)?,
            id: self.id,
            conversation: self.conversation,
            author: self.author,
            received_at: from_micros(self.received_at)?,
            stored_at: from_micros(self.received_at.saturating_add(self.stored_after))?,
            action,
            // As decoded in full: an escalation without a team has the empty one.
            team: match action {
                ActionKind::Escalate => Some(d.team.map(|t| cache.get(t)).unwrap_or_default()),
                _ => None,
            },
            category: category_from(d.category)?,
            topics: d.topics.iter().map(|t| cache.get(t)).collect(),
            sentiment: match d.sentiment {
                0 => SentimentLabel::Negative,
                2 => SentimentLabel::Positive,
                _ => SentimentLabel::Neutral,
            },
            rulebook: cache.get(d.rulebook),
            mode: Intake::unpack(self.facts.0).mode,
            reply,
        })
    }
}

// --- message chunks --------------------------------------------------------------------------

/// Slots per chunk: a message's sequence number is `chunk << 8 | slot`, so the chunk holding
/// a message is found without an index, and sequence numbers still grow in intake order.
pub const CHUNK_SLOTS: u64 = 256;

/// The largest encoded chunk that still fits one 4 KiB redb leaf page with its 8-byte key:
/// page header 4, value length 4, key 8. One byte more and redb would allocate 8 KiB for it.
pub const CHUNK_BYTES: usize = 4096 - 4 - 4 - 8;

pub fn chunk_of(seq: u64) -> u64 {
    seq / CHUNK_SLOTS
}

pub fn slot_of(seq: u64) -> usize {
    (seq % CHUNK_SLOTS) as usize
}

/// Consecutive message records, encoded as a slot count, each slot's length, then the slots'
/// bytes. An empty slot is a deleted message, or a number taken by an agent reply. In memory
/// the slots share one buffer, so loading the last chunk for every commit costs two
/// allocations, not one per message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Chunk {
    /// Where each slot ends in `body`.
    ends: Vec<usize>,
    body: Vec<u8>,
}

impl Chunk {
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        let mut at = 0;
        let count = read_varint(bytes, &mut at)?;
        if count > CHUNK_SLOTS {
            return Err(format!("chunk with {count} slots"));
        }
        let mut ends = Vec::with_capacity(count as usize + 1);
        let mut end = 0usize;
        for _ in 0..count {
            end = end
                .checked_add(read_varint(bytes, &mut at)? as usize)
                .ok_or("chunk offset overflow")?;
            ends.push(end);
        }
        let body = bytes
            .get(at..)
            .filter(|body| body.len() == end)
            .ok_or("chunk length does not match its slots")?;
        Ok(Chunk {
            ends,
            body: body.to_vec(),
        })
    }

    /// Where each slot of an encoded chunk lies in it (an empty slot as an empty range), for a
    /// reader that wants most of them: the lengths are read once, not once per slot.
    pub fn slot_ranges(bytes: &[u8], out: &mut Vec<std::ops::Range<usize>>) -> Result<(), String> {
        out.clear();
        let mut at = 0;
        let count = read_varint(bytes, &mut at)?;
        if count > CHUNK_SLOTS {
            return Err(format!("chunk with {count} slots"));
        }
        let mut end = 0usize;
        for _ in 0..count {
            let start = end;
            end = end
                .checked_add(read_varint(bytes, &mut at)? as usize)
                .ok_or("chunk offset overflow")?;
            out.push(start..end);
        }
        if bytes.len().checked_sub(at) != Some(end) {
            return Err("chunk length does not match its slots".into());
        }
        for range in out.iter_mut() {
            *range = range.start + at..range.end + at;
        }
        Ok(())
    }

    /// One slot of an encoded chunk without decoding the others: `None` when the slot is
    /// empty or past the end.
    pub fn slot_in(bytes: &[u8], slot: usize) -> Result<Option<&[u8]>, String> {
        let mut at = 0;
        let count = read_varint(bytes, &mut at)? as usize;
        if slot >= count {
            return Ok(None);
        }
        let mut start = 0usize;
        let mut len = 0usize;
        for i in 0..count {
            let l = read_varint(bytes, &mut at)? as usize;
            if i < slot {
                start += l;
            } else if i == slot {
                len = l;
            }
        }
        let begin = at.checked_add(start).ok_or("chunk offset overflow")?;
        let end = begin.checked_add(len).ok_or("chunk offset overflow")?;
        if end > bytes.len() {
            return Err("chunk shorter than its slots".into());
        }
        Ok((len > 0).then(|| &bytes[begin..end]))
    }

    fn start(&self, slot: usize) -> usize {
        slot.checked_sub(1)
            .and_then(|prev| self.ends.get(prev))
            .copied()
            .unwrap_or(0)
    }

    fn slot_len(&self, slot: usize) -> usize {
        self.ends.get(slot).map_or(0, |end| end - self.start(slot))
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        write_varint(&mut out, self.ends.len() as u64);
        for slot in 0..self.ends.len() {
            write_varint(&mut out, self.slot_len(slot) as u64);
        }
        out.extend_from_slice(&self.body);
        out
    }

    pub fn encoded_len(&self) -> usize {
        varint_len(self.ends.len() as u64)
            + (0..self.ends.len())
                .map(|slot| varint_len(self.slot_len(slot) as u64))
                .sum::<usize>()
            + self.body.len()
    }

    /// Whether a record of `len` bytes still fits in `limit` bytes with the others.
    pub fn fits(&self, len: usize, limit: usize) -> bool {
        self.ends.is_empty() || self.encoded_len() + 2 + varint_len(len as u64) + len <= limit
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// No message in it (all slots empty).
    pub fn is_empty(&self) -> bool {
        self.body.is_empty()
    }

    pub fn push(&mut self, record: &[u8]) {
        self.body.extend_from_slice(record);
        self.ends.push(self.body.len());
    }

    pub fn get(&self, slot: usize) -> Option<&[u8]> {
        let end = *self.ends.get(slot)?;
        let start = self.start(slot);
        (end > start).then(|| &self.body[start..end])
    }

    /// Empties a slot; its number is never reused.
    pub fn clear(&mut self, slot: usize) {
        let len = self.slot_len(slot);
        if len == 0 {
            return;
        }
        let start = self.start(slot);
        self.body.drain(start..start + len);
        for end in self.ends.iter_mut().skip(slot) {
            *end -= len;
        }
    }
}

/// How many message numbers a conversation record holds before they move to a block: enough
/// that most conversations never need a block, few enough that rewriting the record stays
/// cheap.
pub const RECENT: usize = 64;

/// Ascending sequence numbers as varint differences (a conversation block).
pub fn write_deltas(seqs: &[u64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(seqs.len() * 3);
    let mut last = 0;
    for seq in seqs {
        write_varint(&mut out, seq.wrapping_sub(last));
        last = *seq;
    }
    out
}

pub fn read_deltas(bytes: &[u8]) -> Result<Vec<u64>, String> {
    let mut last = 0u64;
    Ok(read_seqs(bytes)?
        .into_iter()
        .map(|d| {
            last = last.wrapping_add(d);
            last
        })
        .collect())
}

/// Varints to the end of `bytes`.
fn read_seqs(bytes: &[u8]) -> Result<Vec<u64>, String> {
    let mut at = 0;
    let mut seqs = Vec::with_capacity(1);
    while at < bytes.len() {
        seqs.push(read_varint(bytes, &mut at)?);
    }
    Ok(seqs)
}

fn write_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

fn read_varint(bytes: &[u8], at: &mut usize) -> Result<u64, String> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *bytes.get(*at).ok_or("chunk ends inside a length")?;
        *at += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Ok(v);
        }
    }
    Err("chunk length too long".into())
}

/// The dedupe key of a delivery: 8 bytes of SHA-256 over channel and platform id. A fixed,
/// short key keeps the dedupe index at about 16 bytes an entry whatever the platform's ids look
/// like; the store compares the stored message's channel and id, so a collision (or an id
/// crafted to collide) costs a lookup, never a lost message.
pub fn dedupe_hash(channel: ChannelKind, id: &str) -> [u8; 8] {
    let mut hasher = Sha256::new();
    hasher.update([channel_code(channel)]);
    hasher.update(id.as_bytes());
    let digest = hasher.finalize();
    let mut out = [0u8; 8];
    out.copy_from_slice(&digest[..8]);
    out
}

// --- conversations ---------------------------------------------------------------------------

/// A conversation on disk; channel and id are in its key.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ConvRec {
    /// A number for the conversation, so its message index holds 8 bytes instead of the
    /// channel and id string with every message.
    pub number: u64,
    /// Sorted, distinct.
    pub participants: Vec<String>,
    /// 0 bot, 1 human, 2 closed.
    pub state: u8,
    pub started_at: i64,
    pub last_activity: i64,
    pub messages: u64,
    /// Days since 0001-01-01 (`NaiveDate::num_days_from_ce`).
    pub today: i32,
    pub messages_today: i64,
    pub auto_replies: i64,
    pub recent_complaints: Vec<i64>,
    pub open_escalation: Option<u64>,
    /// The numbers of its newest messages, at most [`RECENT`]; older ones are in blocks.
    pub recent: Vec<u64>,
    /// Every escalation of the conversation, so deleting it finds them without an index.
    pub escalations: Vec<u64>,
    /// Outbox entries no stored message leads to: agent replies, and replies whose message was
    /// deleted.
    pub replies: Vec<u64>,
}

pub fn state_code(state: ConversationState) -> u8 {
    match state {
        ConversationState::Bot => 0,
        ConversationState::Human => 1,
        ConversationState::Closed => 2,
    }
}

pub fn state_from(code: u8) -> ConversationState {
    match code {
        1 => ConversationState::Human,
        2 => ConversationState::Closed,
        _ => ConversationState::Bot,
    }
}

pub fn day_code(date: NaiveDate) -> i32 {
    chrono::Datelike::num_days_from_ce(&date)
}

impl ConvRec {
    pub fn to_public(
        &self,
        channel: ChannelKind,
        id: &str,
        corrupt: impl Fn(String) -> StoreError,
    ) -> Result<Conversation, StoreError> {
        Ok(Conversation {
            channel,
            id: id.to_owned(),
            participants: self.participants.iter().cloned().collect(),
            state: state_from(self.state),
            started_at: from_micros(self.started_at).map_err(&corrupt)?,
            last_activity: from_micros(self.last_activity).map_err(&corrupt)?,
            messages: self.messages,
            today: NaiveDate::from_num_days_from_ce_opt(self.today)
                .ok_or_else(|| corrupt(format!("day {} out of range", self.today)))?,
            messages_today: self.messages_today,
            auto_replies: self.auto_replies,
            recent_complaints: self
                .recent_complaints
                .iter()
                .map(|t| from_micros(*t).map_err(&corrupt))
                .collect::<Result<_, _>>()?,
            open_escalation: self.open_escalation,
        })
    }

    /// Adds `author`; true when they are new here.
    pub fn join(&mut self, author: &str) -> bool {
        match self
            .participants
            .binary_search_by(|p| p.as_str().cmp(author))
        {
            Ok(_) => false,
            Err(at) => {
                self.participants.insert(at, author.to_owned());
                true
            }
        }
    }

    /// The facts a decision at `at` (local date `today`) may read; the same rules as
    /// [`Conversation::facts`], without building one.
    pub fn facts(&self, at: DateTime<Utc>, today: NaiveDate) -> ConversationFacts {
        let at = micros(at);
        let day = chrono::Duration::days(1)
            .num_microseconds()
            .unwrap_or(86_400_000_000);
        let within = |days: i64| {
            self.recent_complaints
                .iter()
                .filter(|t| **t <= at && at - **t < day * days)
                .count() as i64
        };
        ConversationFacts {
            state: state_from(self.state),
            messages_today: if self.today == day_code(today) {
                self.messages_today
            } else {
                0
            },
            auto_replies: self.auto_replies,
            complaints_24h: within(1),
            complaints_7d: within(7),
        }
    }
}

// --- escalations -----------------------------------------------------------------------------

/// An escalation on disk. The history of a busy escalation is mostly "message added" events;
/// they are kept as [`JoinRec`]s (a few bytes) and their words are made when it is read, so an
/// escalation that collects many messages stays small and cheap to rewrite.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EscRec {
    pub channel: u8,
    pub conversation: String,
    pub team: Text,
    pub priority: u8,
    pub reason: Text,
    /// 0 open, 1 claimed, 2 resolved (by `by`).
    pub status: u8,
    pub by: Option<String>,
    pub created_at: i64,
    pub sla_deadline: Option<i64>,
    /// Platform ids of its messages; `messages[i + 1]` joined as `joins[i]`.
    pub messages: Vec<String>,
    pub joins: Vec<JoinRec>,
    /// Every other event, each placed after the first `joins_before` joins.
    pub events: Vec<EventRec>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JoinRec {
    /// Microseconds after `created_at`.
    pub after: i64,
    /// The priority it raised the escalation from and to.
    pub raised: Option<(u8, u8)>,
    /// The other team the message was meant for.
    pub team: Option<Text>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventRec {
    pub joins_before: u32,
    pub at: i64,
    pub actor: String,
    pub change: String,
}

pub const ESC_OPEN: u8 = 0;
pub const ESC_CLAIMED: u8 = 1;
pub const ESC_RESOLVED: u8 = 2;

impl EscRec {
    pub fn is_open(&self) -> bool {
        self.status != ESC_RESOLVED
    }

    pub fn event(&mut self, at: DateTime<Utc>, actor: &str, change: String) {
        self.events.push(EventRec {
            joins_before: self.joins.len() as u32,
            at: micros(at),
            actor: actor.to_owned(),
            change,
        });
    }

    pub fn decode(
        &self,
        id: u64,
        symbols: &mut impl Resolve,
        corrupt: impl Fn(String) -> StoreError,
    ) -> Result<Escalation, StoreError> {
        let channel = channel_from(self.channel).map_err(&corrupt)?;
        let status = match (self.status, &self.by) {
            (ESC_OPEN, _) => EscalationStatus::Open,
            (ESC_CLAIMED, Some(by)) => EscalationStatus::Claimed { by: by.clone() },
            (ESC_RESOLVED, Some(by)) => EscalationStatus::Resolved { by: by.clone() },
            (code, _) => return Err(corrupt(format!("bad escalation status {code}"))),
        };
        let mut history = Vec::with_capacity(self.events.len() + self.joins.len());
        let mut joins = self.joins.iter().enumerate().peekable();
        let mut join_event = |i: usize, join: &JoinRec| -> Result<EscalationEvent, StoreError> {
            let id = self.messages.get(i + 1).map(String::as_str).unwrap_or("");
            let mut change = format!("message `{id}` added");
            if let Some((from, to)) = join.raised {
                change.push_str(&format!(
                    ", priority {} → {}",
                    priority_from(from).map_err(&corrupt)?,
                    priority_from(to).map_err(&corrupt)?
                ));
            }
            if let Some(team) = &join.team {
                change.push_str(&format!(", also for team `{}`", text(team, symbols)?));
            }
            Ok(EscalationEvent {
                at: from_micros(self.created_at.saturating_add(join.after)).map_err(&corrupt)?,
                actor: "engine".into(),
                change,
            })
        };
        for event in &self.events {
            while let Some((i, join)) = joins.next_if(|(i, _)| *i < event.joins_before as usize) {
                history.push(join_event(i, join)?);
            }
            history.push(EscalationEvent {
                at: from_micros(event.at).map_err(&corrupt)?,
                actor: event.actor.clone(),
                change: event.change.clone(),
            });
        }
        for (i, join) in joins {
            history.push(join_event(i, join)?);
        }
        Ok(Escalation {
            id,
            channel,
            conversation: self.conversation.clone(),
            team: text(&self.team, symbols)?,
            priority: priority_from(self.priority).map_err(&corrupt)?,
            reason: text(&self.reason, symbols)?,
            status,
            created_at: from_micros(self.created_at).map_err(&corrupt)?,
            sla_deadline: self
                .sla_deadline
                .map(|t| from_micros(t).map_err(&corrupt))
                .transpose()?,
            messages: self.messages.clone(),
            history,
        })
    }
}

// --- outbox ----------------------------------------------------------------------------------

/// An outbox entry on disk. The reply to a stored message has that message's sequence number
/// as its id and takes its conversation, `in_reply_to`, text and creation time from the
/// message, so a fresh entry is a few bytes; only what changes (attempts, errors, times) is
/// here. An entry no message leads to (an agent's reply, or a reply whose message was deleted)
/// carries its own [`OutboxDetail`].
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct OutboxRec {
    pub channel: u8,
    /// 0 pending, 1 sent, 2 dead.
    pub status: u8,
    pub attempts: u32,
    pub last_error: Option<String>,
    /// `None`: when it was created.
    pub next_attempt_at: Option<i64>,
    pub sent_at: Option<i64>,
    pub detail: Option<OutboxDetail>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutboxDetail {
    pub conversation: String,
    pub in_reply_to: String,
    pub text: Text,
    pub created_at: i64,
}

impl OutboxRec {
    /// A pending entry nothing has happened to yet: all it needs is its `pending` key.
    pub fn is_fresh(&self) -> bool {
        self.status == OUTBOX_PENDING
            && self.attempts == 0
            && self.last_error.is_none()
            && self.next_attempt_at.is_none()
            && self.sent_at.is_none()
            && self.detail.is_none()
    }
}

pub const OUTBOX_PENDING: u8 = 0;
pub const OUTBOX_SENT: u8 = 1;
pub const OUTBOX_DEAD: u8 = 2;

impl OutboxRec {
    /// The entry as callers see it; `message` is the record of message `id` when the entry
    /// has no detail of its own.
    pub fn decode(
        &self,
        id: u64,
        message: Option<&MessageRec>,
        symbols: &mut impl Resolve,
        corrupt: impl Fn(String) -> StoreError,
    ) -> Result<OutboxEntry, StoreError> {
        let (conversation, in_reply_to, text_of, created_at) = match (&self.detail, message) {
            (Some(d), _) => (
                d.conversation.clone(),
                d.in_reply_to.clone(),
                text(&d.text, symbols)?,
                d.created_at,
            ),
            (None, Some(m)) => (
                m.conversation.clone(),
                m.id.clone(),
                match &m.decision.reply {
                    Some(t) => text(t, symbols)?,
                    None => return Err(corrupt("outbox entry for a message without reply".into())),
                },
                m.stored_at(),
            ),
            (None, None) => return Err(corrupt("outbox entry without its message".into())),
        };
        Ok(OutboxEntry {
            id,
            channel: channel_from(self.channel).map_err(&corrupt)?,
            conversation,
            in_reply_to,
            text: text_of,
            attempts: self.attempts,
            last_error: self.last_error.clone(),
            status: match (self.status, self.sent_at) {
                (OUTBOX_PENDING, _) => OutboxStatus::Pending,
                (OUTBOX_SENT, Some(at)) => OutboxStatus::Sent {
                    at: from_micros(at).map_err(&corrupt)?,
                },
                (OUTBOX_DEAD, _) => OutboxStatus::Dead,
                (code, _) => return Err(corrupt(format!("bad outbox status {code}"))),
            },
            created_at: from_micros(created_at).map_err(&corrupt)?,
            next_attempt_at: from_micros(self.next_attempt_at.unwrap_or(created_at))
                .map_err(&corrupt)?,
        })
    }
}

// --- rulebook versions -----------------------------------------------------------------------

/// The files of one rulebook version.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VersionRec {
    /// Role (`rulebook`, `topics`, …, `escalation`), path as loaded, text.
    pub files: Vec<(String, String, String)>,
}

/// One activation of a rulebook version.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ActivationRec {
    pub version: String,
    pub by: String,
    pub at: i64,
}

// --- codes -----------------------------------------------------------------------------------

/// Encodes one decision string, inline when it contains any of `private` (see the module docs).
pub fn encode_text(
    text: &str,
    private: &[&str],
    interner: &mut impl Intern,
) -> Result<Text, StoreError> {
    let private = private.iter().any(|p| p.len() >= 3 && text.contains(p));
    if private || text.len() > 2048 {
        Ok(Text::Inline(text.to_owned()))
    } else {
        Ok(Text::Sym(interner.intern(text)?))
    }
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

pub fn priority_from(code: u8) -> Result<Priority, String> {
    Priority::ALL
        .get(usize::from(code))
        .copied()
        .ok_or_else(|| format!("unknown priority code {code}"))
}

pub fn priority_code(p: Priority) -> u8 {
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

// --- symbols ---------------------------------------------------------------------------------

/// The symbol table as this process knows it: every committed symbol, both ways. The writer
/// adds to it only after the commit that stored the new symbols is durable.
#[derive(Default)]
pub struct Symbols {
    inner: RwLock<SymbolMaps>,
}

/// Fx hashing: the keys are rulebook strings (message content is never interned), so nobody
/// outside can choose them to collide, and every string of every decision is looked up here.
#[derive(Default)]
struct SymbolMaps {
    by_text: FxHashMap<Arc<str>, u32>,
    by_id: FxHashMap<u32, Arc<str>>,
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
    fn intern(&mut self, text: &str) -> Result<u32, StoreError>;
}

/// Interning with the committed symbols only, in the caller's thread, so the writer does not
/// have to encode: `missing` says a string had no symbol yet, and the record must be encoded
/// again by the writer (which can add symbols).
pub struct Committed<'a> {
    pub symbols: &'a Symbols,
    pub missing: bool,
}

impl Intern for Committed<'_> {
    fn intern(&mut self, text: &str) -> Result<u32, StoreError> {
        match self.symbols.id_of(text) {
            Some(id) => Ok(id),
            None => {
                self.missing = true;
                Ok(0)
            }
        }
    }
}

/// Resolving during decoding.
pub trait Resolve {
    fn resolve(&mut self, id: u32) -> Result<Arc<str>, StoreError>;
}

struct Encoder<'a, I: Intern> {
    interner: &'a mut I,
    /// Strings that contain these are customer-specific and stay inline.
    private: [&'a str; 2],
}

impl<I: Intern> Encoder<'_, I> {
    fn text(&mut self, s: &str) -> Result<Text, StoreError> {
        encode_text(s, &self.private, self.interner)
    }

    fn opt(&mut self, s: Option<&str>) -> Result<Option<Text>, StoreError> {
        s.map(|s| self.text(s)).transpose()
    }

    fn all(&mut self, items: &[String]) -> Result<Vec<Text>, StoreError> {
        items.iter().map(|s| self.text(s)).collect()
    }
}

/// [`MessageRec`] as it is written: the same fields in the same order (postcard is positional,
/// and encodes `&str` as it encodes `String`), borrowing the message's strings instead of
/// copying them, since the caller's thread encodes every message.
#[derive(Serialize)]
struct MessageRecRef<'a> {
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
const STATE_MASK: u8 = 0x0f;
const MODE_SHIFT: u8 = 4;
const MODE_MASK: u8 = 0x30;
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
    fn pack(self, state: ConversationState) -> u8 {
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
    let mut enc = Encoder { interner, private };
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

fn texts(ts: &[Text], symbols: &mut impl Resolve) -> Result<Vec<String>, StoreError> {
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
    corrupt: &impl Fn(String) -> StoreError,
) -> Result<Decision, StoreError> {
    fn opt(t: &Option<Text>, symbols: &mut impl Resolve) -> Result<Option<String>, StoreError> {
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
        other => return Err(corrupt(format!("unknown action code {other}"))),
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
    corrupt: impl Fn(String) -> StoreError,
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
    };
    Ok(Decoded {
        message,
        decision,
        facts,
        stored_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_round_trip_and_read_one_slot() {
        let mut chunk = Chunk::default();
        for record in [&b""[..], b"", b"abc", &[7; 300], b"", b"z"] {
            chunk.push(record);
        }
        let bytes = chunk.encode();
        assert_eq!(bytes.len(), chunk.encoded_len());
        assert_eq!(Chunk::decode(&bytes), Ok(chunk.clone()));
        assert_eq!(Chunk::slot_in(&bytes, 0), Ok(None));
        assert_eq!(Chunk::slot_in(&bytes, 2), Ok(Some(&b"abc"[..])));
        assert_eq!(
            Chunk::slot_in(&bytes, 3).map(|s| s.map(<[u8]>::len)),
            Ok(Some(300))
        );
        assert_eq!(Chunk::slot_in(&bytes, 4), Ok(None));
        assert_eq!(Chunk::slot_in(&bytes, 5), Ok(Some(&b"z"[..])));
        assert_eq!(Chunk::slot_in(&bytes, 6), Ok(None));
        assert!(Chunk::decode(&bytes[..bytes.len() - 1]).is_err());

        chunk.clear(3);
        assert_eq!(chunk.get(3), None);
        assert_eq!(chunk.get(2), Some(&b"abc"[..]));
        assert_eq!(chunk.get(5), Some(&b"z"[..]));
        assert_eq!(chunk.len(), 6);
        chunk.clear(2);
        chunk.clear(5);
        assert!(chunk.is_empty());
        assert_eq!(Chunk::decode(&chunk.encode()), Ok(chunk));
    }

    #[test]
    fn a_full_chunk_fits_one_page() {
        let mut chunk = Chunk::default();
        while chunk.fits(150, CHUNK_BYTES) {
            chunk.push(&[1; 150]);
        }
        assert!(chunk.encoded_len() <= CHUNK_BYTES);
        assert!(chunk.encoded_len() > CHUNK_BYTES - 160);
        // A record larger than a page still gets a chunk of its own.
        assert!(Chunk::default().fits(10_000, CHUNK_BYTES));
    }

    #[test]
    fn an_encoded_message_decodes_as_the_stored_record() {
        struct NoSymbols;
        impl Intern for NoSymbols {
            fn intern(&mut self, _: &str) -> Result<u32, StoreError> {
                Ok(7)
            }
        }
        let at = DateTime::from_timestamp(1_795_000_000, 0).unwrap_or_default();
        let mut message = Inbound::from_text("m1", ChannelKind::Discord, "Hallo daar", at);
        message.metadata.insert("lang".into(), "nl".into());
        let rulebook = crate::Rulebook::embedded().expect("the embedded rulebook loads");
        let decision = rulebook.decide(&message, &Default::default());
        let bytes = encode_message(
            &message,
            &decision,
            &ConversationFacts::default(),
            Intake::default(),
            at + chrono::Duration::seconds(2),
            &mut NoSymbols,
        )
        .unwrap();
        let rec: MessageRec = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(rec.id, "m1");
        assert_eq!(rec.text, "Hallo daar");
        assert_eq!(rec.metadata, vec![("lang".to_owned(), "nl".to_owned())]);
        assert_eq!(rec.stored_at(), micros(at) + 2_000_000);
        assert_eq!(rec.decision.rulebook, Text::Sym(7));
        assert_eq!(rec.intake(), Intake::default());
    }

    #[test]
    fn the_state_byte_keeps_state_mode_and_shadow_flag_apart() {
        for state in [
            ConversationState::Bot,
            ConversationState::Human,
            ConversationState::Closed,
        ] {
            for mode in Mode::ALL {
                for has_shadow in [false, true] {
                    let intake = Intake { mode, has_shadow };
                    let byte = intake.pack(state);
                    assert_eq!(Intake::unpack(byte), intake);
                    assert_eq!(state_from(byte & STATE_MASK), state);
                }
            }
        }
        // A record from before modes existed is a live one without shadow.
        assert_eq!(
            Intake::unpack(state_code(ConversationState::Human)),
            Intake::default()
        );
    }

    #[test]
    fn deltas_round_trip() {
        let seqs = [3, 4, 300, 70_000, 70_001];
        assert_eq!(read_deltas(&write_deltas(&seqs)), Ok(seqs.to_vec()));
        assert_eq!(read_deltas(&[]), Ok(Vec::new()));
    }

    #[test]
    fn varints_have_the_length_they_say() {
        for v in [0, 1, 127, 128, 16_383, 16_384, u64::MAX] {
            let mut out = Vec::new();
            write_varint(&mut out, v);
            assert_eq!(out.len(), varint_len(v), "{v}");
            let mut at = 0;
            assert_eq!(read_varint(&out, &mut at), Ok(v));
        }
    }
}
