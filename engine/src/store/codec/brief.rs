//! The brief form of a message record, for reports: the same bytes read without decoding
//! text, rules or reasons, its strings borrowed, so a report over a million messages allocates
//! next to nothing.

use std::sync::Arc;

use rustc_hash::FxHashMap;
use serde::Deserialize;

use super::*;
use crate::decision::SentimentLabel;
use crate::store::{ActionKind, MessageBrief, OutboxStatus, StoreError};

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
    ) -> Result<MessageBrief<'s>, CodecError> {
        let d = &self.decision;
        let action = match d.action {
            0 => ActionKind::Answer,
            1 => ActionKind::Escalate,
            2 => ActionKind::Log,
            other => {
                return Err(CodecError::malformed(format!(
                    "unknown action code {other}"
                )));
            }
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
