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
//!
//! # Layout
//!
//! - this file: decision strings ([`Text`]) and the codes of the closed enums and times.
//! - [`message`]: a message with its decision; [`brief`]: the same record as a report reads it.
//! - [`chunk`]: messages packed into pages, number lists, the dedupe hash.
//! - [`records`]: conversations, escalations, outbox entries, rulebook versions; [`case`]: an
//!   escalation's case state, which its record carries.
//! - [`symbols`]: the symbol table.

use std::cell::{Cell, OnceCell};

use chrono::{DateTime, Utc};
use memchr::memmem;
use serde::{Deserialize, Serialize};

use crate::decision::{Category, Priority};
use crate::message::ChannelKind;
use crate::store::StoreError;

pub mod brief;
pub mod case;
pub mod chunk;
pub mod message;
pub mod records;
pub mod symbols;
#[cfg(test)]
mod tests;

pub use brief::*;
pub use case::*;
pub use chunk::*;
pub use message::*;
pub use records::*;
pub use symbols::*;

/// A decision string: a symbol-table id, or the text itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Text {
    Sym(u32),
    Inline(String),
}

// --- codes -----------------------------------------------------------------------------------

/// Encodes one decision string, inline when it contains any of `private` (see the module docs).
pub fn encode_text(
    text: &str,
    private: &[&str],
    interner: &mut impl Intern,
) -> Result<Text, StoreError> {
    let private = private.iter().any(|p| p.len() >= 3 && text.contains(p));
    store_text(text, private, interner)
}

/// The message's own words (its text and id), searched for in every string of its decision.
/// `str::contains` makes a searcher from the needle on every call, and with the message text
/// as the needle that was most of what encoding a decision cost; here each needle's searcher
/// is made once per record, and only when a string at least as long as the needle comes.
/// Even once a record, making the searchers was a third of what encoding cost, while a
/// decision's strings mostly hold the needle's first byte a few times or not at all: those
/// places are checked by hand, and a searcher is made only after [`Private::BY_HAND`] of
/// them did not match.
pub(crate) struct Private<'a> {
    needles: [&'a str; 2],
    finders: [OnceCell<memmem::Finder<'a>>; 2],
    /// Places checked by hand so far, per needle.
    tried: [Cell<usize>; 2],
}

impl<'a> Private<'a> {
    /// Places checked by hand, per needle and record, before its searcher is made: bounds what
    /// a text full of the needle's first byte costs.
    const BY_HAND: usize = 16;

    pub(crate) fn new(needles: [&'a str; 2]) -> Private<'a> {
        Private {
            needles,
            finders: Default::default(),
            tried: Default::default(),
        }
    }

    /// Whether `text` contains any of them: the same answer as [`encode_text`]'s `contains`.
    fn in_text(&self, text: &str) -> bool {
        (0..self.needles.len()).any(|i| {
            let needle = self.needles[i];
            needle.len() >= 3 && needle.len() <= text.len() && self.contains(i, text.as_bytes())
        })
    }

    /// Whether `haystack`, at least as long as needle `i`, contains it.
    fn contains(&self, i: usize, haystack: &[u8]) -> bool {
        let needle = self.needles[i].as_bytes();
        let finder = &self.finders[i];
        if let Some(finder) = finder.get() {
            return finder.find(haystack).is_some();
        }
        let (Some(&first), Some(last)) = (needle.first(), haystack.len().checked_sub(needle.len()))
        else {
            return false;
        };
        // Every place the needle could start at holds its first byte, up to `last`.
        let mut from = 0;
        while let Some(found) = haystack
            .get(from..=last)
            .and_then(|rest| memchr::memchr(first, rest))
        {
            let at = from + found;
            if haystack[at..].starts_with(needle) {
                return true;
            }
            from = at + 1;
            self.tried[i].set(self.tried[i].get() + 1);
            if self.tried[i].get() > Self::BY_HAND {
                return finder
                    .get_or_init(|| memmem::Finder::new(needle))
                    .find(&haystack[from..])
                    .is_some();
            }
        }
        false
    }

    /// [`encode_text`] with these searchers.
    pub(crate) fn encode(
        &self,
        text: &str,
        interner: &mut impl Intern,
    ) -> Result<Text, StoreError> {
        store_text(text, self.in_text(text), interner)
    }
}

/// A decision string inline when it is `private` or long, else by symbol.
fn store_text(text: &str, private: bool, interner: &mut impl Intern) -> Result<Text, StoreError> {
    if private || text.len() > 2048 {
        Ok(Text::Inline(text.to_owned()))
    } else {
        Ok(Text::Sym(interner.intern(text)?))
    }
}

/// Why stored bytes could not be read back: the store is damaged, or was not written by this
/// code. The store reports it as corrupt, with the record it was reading.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("unknown {what} code {code}")]
    UnknownCode { what: &'static str, code: u64 },
    #[error("time {0} out of range")]
    TimeOutOfRange(i64),
    /// The bytes do not have the shape of the record (lengths, counts, varints).
    #[error("{0}")]
    Malformed(String),
}

impl CodecError {
    pub fn malformed(what: impl Into<String>) -> Self {
        CodecError::Malformed(what.into())
    }
}

pub fn channel_code(channel: ChannelKind) -> u8 {
    ChannelKind::ALL
        .iter()
        .position(|c| *c == channel)
        .unwrap_or_default() as u8
}

pub fn channel_from(code: u8) -> Result<ChannelKind, CodecError> {
    ChannelKind::ALL
        .get(usize::from(code))
        .copied()
        .ok_or(CodecError::UnknownCode {
            what: "channel",
            code: code.into(),
        })
}

fn category_code(c: Category) -> u8 {
    Category::ALL
        .iter()
        .position(|x| *x == c)
        .unwrap_or_default() as u8
}

fn category_from(code: u8) -> Result<Category, CodecError> {
    Category::ALL
        .get(usize::from(code))
        .copied()
        .ok_or(CodecError::UnknownCode {
            what: "category",
            code: code.into(),
        })
}

pub fn priority_from(code: u8) -> Result<Priority, CodecError> {
    Priority::ALL
        .get(usize::from(code))
        .copied()
        .ok_or(CodecError::UnknownCode {
            what: "priority",
            code: code.into(),
        })
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

pub fn from_micros(m: i64) -> Result<DateTime<Utc>, CodecError> {
    DateTime::from_timestamp_micros(m).ok_or(CodecError::TimeOutOfRange(m))
}
