//! The store over an embedded ordered key-value database, shared by the redb and sled backends
//! so both have exactly the same record layout and semantics, and the contract tests test the
//! logic once and the backends' durability twice.
//!
//! **One writer.** Every change goes through one thread that owns the write side. Callers hand
//! it a job and wait; the thread takes every job that queued up while the previous commit was
//! being fsynced, runs them all in one transaction, commits once (durably), and only then
//! answers each caller. This is group commit: one fsync is shared by everybody who arrived
//! during the last one, so throughput grows with concurrency while each caller still gets its
//! answer only after its data is on disk. A single writer also makes every job serialisable
//! without locks in the data, and is what lets the intake re-check a duplicate inside its
//! transaction: two concurrent deliveries of one message are decided once.
//!
//! **Little work for the writer.** On two cores the writer competes with the callers that
//! decide, so it does only what must be serial: the caller encodes the message record (with the
//! symbols already committed) and hashes its dedupe key; the writer checks for a duplicate,
//! updates the conversation and escalation, and places the record. Jobs write into an ordered
//! overlay that later jobs of the batch read through; the batch goes to the backend sorted by
//! key at the end, so each B-tree page is touched once per commit.
//!
//! **Record layout.** Seven key spaces ([`Space`]). Fixed-width keys sort as big-endian numbers;
//! times sort with the sign bit flipped; strings in variable keys are length-prefixed so no id
//! can run into the next field.
//!
//! | space | key | value |
//! |---|---|---|
//! | messages | chunk number | up to 256 messages with their decisions ([`codec::Chunk`]) |
//! | dedupe | hash(channel, id), or the next free after it | seq |
//! | time | received_at · seq | (none): history and retention in time order |
//! | pending | id | channel: the replies waiting to be sent |
//! | outbox | id | the entry's state when it is not fresh ([`codec::OutboxRec`]): tried, postponed, sent, given up, or one with its own words |
//! | records | `c` channel conversation | [`codec::ConvRec`], with its newest messages' numbers |
//! | | `k` conversation number · first seq | older message numbers of a conversation, 64 a block |
//! | | `s` seq | the shadow rulebook's decision of the message ([`codec::DecisionRec`]), when one ran |
//! | | `e` id / `n` id | [`codec::EscRec`] / the open ones |
//! | | `a` author channel conversation | (none): where `forget` looks |
//! | | `u` id | [`AuditEntry`] |
//! | | `y` id | a symbol of the decision strings ([`codec`]) |
//! | | `v` version / `w` id | a rulebook version's files / one activation |
//! | | `z` name | format version and counters; `zcrisis`: the crisis switch (`Option<bool>`) |
//!
//! A message's sequence number is `chunk · 256 + slot`, and the reply to a message is the
//! outbox entry with the message's number, so neither needs an index of its own. A
//! conversation's messages are listed in its own record (which intake rewrites anyway) until 64
//! have gathered, which then go to a block of their own. Per message the store writes one record
//! into a chunk, a dedupe and a time entry, plus a few bytes of outbox entry when it has a reply;
//! conversation and escalation records are rewritten in place.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::{JoinHandle, Thread};

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::codec::{
    self, Chunk, ConvRec, EscRec, Intern, JoinRec, MessageRec, OutboxDetail, OutboxRec, Resolve,
    Symbols, Text,
};
use super::redact::Redactor;
use super::{
    Activation, AuditEntry, Backend, Conversation, DeadLetter, Escalation, ForgetReport,
    HistoryCursor, IntakeLookup, IntakeReceipt, IntakeRecord, NewAudit, NewReply, OutboxEntry,
    OutboxStatus, PurgeReport, ReportItem, RulebookFile, RulebookVersion, Store, StoreError,
    StoreStats, StoredMessage,
};
use crate::decision::{Action, Category, Priority};
use crate::message::ChannelKind;
use crate::pipeline::{ConversationFacts, ConversationState};

// The inbox's records (users, tokens, notes, replies, breaches) in their own file.
mod inbox;

/// The key spaces. redb keeps each in its own table, with fixed-width keys where the layout
/// allows (no length per entry); sled keeps them in one tree behind a one-byte prefix, because
/// only a single tree's batch is atomic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Space {
    /// Variable keys, the first byte naming the record kind.
    Records,
    /// 8-byte chunk number → chunk.
    Messages,
    /// 8-byte hash → 8-byte sequence number.
    Dedupe,
    /// 16 bytes → nothing.
    Time,
    /// 8-byte id → 1-byte channel code. Fixed width: redb's leaves of variable values rewrite
    /// every entry's offset on each insert, and every reply is inserted here.
    Pending,
    /// 8-byte id → outbox record.
    Outbox,
}

impl Space {
    pub const ALL: [Space; 6] = [
        Space::Records,
        Space::Messages,
        Space::Dedupe,
        Space::Time,
        Space::Pending,
        Space::Outbox,
    ];

    /// The key length of a fixed-width space.
    pub fn key_len(self) -> Option<usize> {
        match self {
            Space::Records => None,
            Space::Messages | Space::Dedupe | Space::Pending | Space::Outbox => Some(8),
            Space::Time => Some(16),
        }
    }

    pub fn code(self) -> u8 {
        self as u8
    }
}

/// Reading committed data (or, in a [`KvTxn`], the data as it was when the transaction began:
/// the writer keeps its own writes in an overlay until the end).
pub trait KvRead {
    fn get(&mut self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;

    /// Entries with `start <= key < end` (no `end`: to the end of the space), in key order, at
    /// most `limit`.
    fn scan(
        &mut self,
        space: Space,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<KvPairs, StoreError>;

    /// The entries with `start <= key < end` (no `end`: to the end of the space), in key
    /// order, each handed to `each` without a copy; stops at the first error. For long scans,
    /// where a page of copies would cost an allocation per key and value.
    fn scan_each(
        &mut self,
        space: Space,
        start: &[u8],
        end: Option<&[u8]>,
        each: &mut EachEntry<'_>,
    ) -> Result<(), StoreError> {
        const PAGE: usize = 1024;
        let mut start = start.to_vec();
        loop {
            let page = self.scan(space, &start, end, PAGE)?;
            for (k, v) in &page {
                each(k, v)?;
            }
            match page.last() {
                Some((k, _)) if page.len() == PAGE => match space.key_len() {
                    Some(_) => match key::successor(k) {
                        Some(next) => start = next,
                        None => return Ok(()),
                    },
                    None => start = key::after(k),
                },
                _ => return Ok(()),
            }
        }
    }
}

/// The few operations a backend must provide. Keys and values are bytes; the layout above is
/// this module's business.
pub trait Kv: Send + Sync + 'static {
    /// A consistent view of committed data, for one method call.
    fn snapshot(&self) -> Result<Box<dyn KvRead + '_>, StoreError>;

    /// Runs `f` exactly once in a write transaction and commits it; returns only when the
    /// commit is durable. If `f` fails, nothing of it is written.
    fn transact(
        &self,
        f: &mut dyn FnMut(&mut dyn KvTxn) -> Result<(), StoreError>,
    ) -> Result<(), StoreError>;

    fn size_on_disk(&self) -> Result<u64, StoreError>;

    /// How large a message chunk may grow: what fills one leaf page.
    fn chunk_bytes(&self) -> usize {
        codec::CHUNK_BYTES
    }
}

pub type KvPairs = Vec<(Vec<u8>, Vec<u8>)>;

/// What [`KvRead::scan_each`] hands each key and value to.
pub type EachEntry<'a> = dyn FnMut(&[u8], &[u8]) -> Result<(), StoreError> + 'a;

/// The write transaction. Writes arrive sorted by space and key, after all reads.
pub trait KvTxn: KvRead {
    fn put(&mut self, space: Space, key: &[u8], value: &[u8]) -> Result<(), StoreError>;
    fn delete(&mut self, space: Space, key: &[u8]) -> Result<(), StoreError>;
}

/// The dedupe value of a deleted delivery that had a collision after it.
const DEDUPE_DELETED: u64 = u64::MAX;

/// The on-disk format this code reads and writes.
const FORMAT_VERSION: u32 = 2;

/// Key construction. Every function returns a complete key or a prefix of one.
mod key {
    use super::ChannelKind;
    use crate::store::codec::channel_code;

    pub const CONV: u8 = b'c';
    pub const CONV_BLOCK: u8 = b'k';
    pub const ESC: u8 = b'e';
    pub const ESC_OPEN: u8 = b'n';
    pub const AUTHOR: u8 = b'a';
    pub const AUDIT: u8 = b'u';
    pub const SYM: u8 = b'y';
    pub const VERSION: u8 = b'v';
    pub const ACTIVATION: u8 = b'w';
    pub const META: u8 = b'z';
    pub const SHADOW: u8 = b's';

    fn str(buf: &mut Vec<u8>, s: &str) {
        buf.extend_from_slice(&(s.len() as u32).to_be_bytes());
        buf.extend_from_slice(s.as_bytes());
    }

    fn tagged(kind: u8, id: u64) -> Vec<u8> {
        let mut k = Vec::with_capacity(9);
        k.push(kind);
        k.extend_from_slice(&id.to_be_bytes());
        k
    }

    /// A number key of the fixed-width spaces (chunks, outbox ids).
    pub fn id(n: u64) -> [u8; 8] {
        n.to_be_bytes()
    }

    pub fn pair(a: u64, b: u64) -> [u8; 16] {
        let mut k = [0u8; 16];
        k[..8].copy_from_slice(&a.to_be_bytes());
        k[8..].copy_from_slice(&b.to_be_bytes());
        k
    }

    /// Times sort correctly as unsigned big-endian once the sign bit is flipped.
    pub fn time(micros: i64, seq: u64) -> [u8; 16] {
        pair((micros as u64) ^ (1 << 63), seq)
    }

    pub fn conv_block(number: u64, first: u64) -> Vec<u8> {
        let mut k = Vec::with_capacity(17);
        k.push(CONV_BLOCK);
        k.extend_from_slice(&pair(number, first));
        k
    }

    pub fn conv_blocks(number: u64) -> Vec<u8> {
        tagged(CONV_BLOCK, number)
    }

    pub fn esc(n: u64) -> Vec<u8> {
        tagged(ESC, n)
    }
    pub fn esc_open(n: u64) -> Vec<u8> {
        tagged(ESC_OPEN, n)
    }
    /// The shadow decision of message `seq`.
    pub fn shadow(seq: u64) -> Vec<u8> {
        tagged(SHADOW, seq)
    }
    pub fn audit(n: u64) -> Vec<u8> {
        tagged(AUDIT, n)
    }
    pub fn sym(n: u32) -> Vec<u8> {
        tagged(SYM, u64::from(n))
    }
    pub fn activation(n: u64) -> Vec<u8> {
        tagged(ACTIVATION, n)
    }
    pub fn meta(name: &str) -> Vec<u8> {
        let mut k = vec![META];
        k.extend_from_slice(name.as_bytes());
        k
    }
    pub fn version(version: &str) -> Vec<u8> {
        let mut k = vec![VERSION];
        k.extend_from_slice(version.as_bytes());
        k
    }

    pub fn conv(channel: ChannelKind, conversation: &str) -> Vec<u8> {
        let mut k = Vec::with_capacity(6 + conversation.len());
        k.push(CONV);
        k.push(channel_code(channel));
        str(&mut k, conversation);
        k
    }

    /// Channel code and conversation id of a conversation key.
    pub fn parse_conv(k: &[u8]) -> Option<(u8, String)> {
        let (&code, rest) = k.strip_prefix(&[CONV])?.split_first()?;
        let len = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
        let id = std::str::from_utf8(rest.get(4..4 + len)?).ok()?;
        Some((code, id.to_owned()))
    }

    pub fn author_prefix(author: &str) -> Vec<u8> {
        let mut k = vec![AUTHOR];
        str(&mut k, author);
        k
    }

    pub fn author(author: &str, channel: ChannelKind, conversation: &str) -> Vec<u8> {
        let mut k = author_prefix(author);
        k.push(channel_code(channel));
        str(&mut k, conversation);
        k
    }

    /// Channel code and conversation id at the end of an author key.
    pub fn parse_author(k: &[u8], prefix_len: usize) -> Option<(u8, String)> {
        let (&code, rest) = k.get(prefix_len..)?.split_first()?;
        let len = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
        let id = std::str::from_utf8(rest.get(4..4 + len)?).ok()?;
        Some((code, id.to_owned()))
    }

    /// The trailing big-endian number of a key.
    pub fn tail(key: &[u8]) -> Option<u64> {
        let start = key.len().checked_sub(8)?;
        Some(u64::from_be_bytes(key.get(start..)?.try_into().ok()?))
    }

    /// The first key after every key that starts with `prefix` (variable keys).
    pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
        let mut end = prefix.to_vec();
        while let Some(last) = end.pop() {
            if last < u8::MAX {
                end.push(last + 1);
                return end;
            }
        }
        vec![u8::MAX; prefix.len() + 1]
    }

    /// The smallest variable key after `key`.
    pub fn after(key: &[u8]) -> Vec<u8> {
        let mut next = key.to_vec();
        next.push(0);
        next
    }

    /// The next fixed-width key of the same length, `None` after the last.
    pub fn successor(key: &[u8]) -> Option<Vec<u8>> {
        let mut next = key.to_vec();
        for byte in next.iter_mut().rev() {
            if *byte < u8::MAX {
                *byte += 1;
                return Some(next);
            }
            *byte = 0;
        }
        None
    }
}

/// The numbers handed out so far and the message count, kept by the writer and stored once per
/// commit.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Counters {
    /// The next message (or agent reply) number; see [`codec::CHUNK_SLOTS`].
    next_seq: u64,
    next_escalation: u64,
    next_audit: u64,
    next_symbol: u32,
    next_conversation: u64,
    next_activation: u64,
    messages: u64,
}

/// What both the readers and the writer share.
struct Shared {
    kv: Arc<dyn Kv>,
    /// [`Kv::chunk_bytes`].
    chunk_bytes: usize,
    symbols: Symbols,
    path: PathBuf,
    backend: Backend,
}

impl Shared {
    fn corrupt(&self, key: &[u8], reason: impl std::fmt::Display) -> StoreError {
        StoreError::Corrupt {
            path: self.path.clone(),
            reason: format!("record `{}`: {reason}", String::from_utf8_lossy(key)),
        }
    }

    fn corrupt_seq(&self, seq: u64, reason: impl std::fmt::Display) -> StoreError {
        StoreError::Corrupt {
            path: self.path.clone(),
            reason: format!("message {seq}: {reason}"),
        }
    }
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    postcard::to_stdvec(value).map_err(|e| StoreError::Backend {
        path: PathBuf::new(),
        reason: format!("cannot encode a record: {e}"),
    })
}

/// Reading records, from a snapshot of committed data or inside the writer's transaction.
trait Reader {
    fn shared(&self) -> &Shared;
    fn read(&mut self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    fn range(
        &mut self,
        space: Space,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<KvPairs, StoreError>;
    /// The encoded record of message `seq`.
    fn message_bytes(&mut self, seq: u64) -> Result<Option<Vec<u8>>, StoreError>;

    fn load<T: DeserializeOwned>(&mut self, key: &[u8]) -> Result<Option<T>, StoreError> {
        match self.read(Space::Records, key)? {
            None => Ok(None),
            Some(bytes) => postcard::from_bytes(&bytes)
                .map(Some)
                .map_err(|e| self.shared().corrupt(key, e)),
        }
    }

    fn symbol(&mut self, id: u32) -> Result<Arc<str>, StoreError> {
        if let Some(text) = self.shared().symbols.text_of(id) {
            return Ok(text);
        }
        let k = key::sym(id);
        let bytes = self
            .read(Space::Records, &k)?
            .ok_or_else(|| self.shared().corrupt(&k, "missing symbol"))?;
        let text: Arc<str> = String::from_utf8(bytes)
            .map_err(|e| self.shared().corrupt(&k, e))?
            .into();
        Ok(text)
    }

    fn message_rec(&mut self, seq: u64) -> Result<Option<MessageRec>, StoreError> {
        match self.message_bytes(seq)? {
            None => Ok(None),
            Some(bytes) => postcard::from_bytes(&bytes)
                .map(Some)
                .map_err(|e| self.shared().corrupt_seq(seq, e)),
        }
    }

    fn decode_stored(&mut self, seq: u64, rec: MessageRec) -> Result<StoredMessage, StoreError>
    where
        Self: Sized,
    {
        let path = self.shared().path.clone();
        let corrupt = |reason| StoreError::Corrupt {
            path: path.clone(),
            reason: format!("message {seq}: {reason}"),
        };
        let intake = rec.intake();
        let codec::Decoded {
            message,
            decision,
            facts,
            stored_at,
        } = codec::decode_message(rec, &mut Resolver(self), corrupt)?;
        let shadow = match intake.has_shadow {
            false => None,
            true => self
                .load::<codec::DecisionRec>(&key::shadow(seq))?
                .map(|rec| codec::decode_decision(&rec, &message.id, &mut Resolver(self), &corrupt))
                .transpose()?,
        };
        Ok(StoredMessage {
            seq,
            message,
            decision,
            facts,
            stored_at,
            mode: intake.mode,
            shadow,
        })
    }

    fn stored(&mut self, seq: u64) -> Result<Option<StoredMessage>, StoreError>
    where
        Self: Sized,
    {
        match self.message_rec(seq)? {
            None => Ok(None),
            Some(rec) => self.decode_stored(seq, rec).map(Some),
        }
    }

    /// The stored delivery `(channel, id)`, found through its dedupe hash, and the dedupe key
    /// where a new delivery with this hash goes. The dedupe space is a hash table with open
    /// addressing: a delivery sits at its hash or, when that is taken by a colliding one, at
    /// the next free key after it. Keys and values are 8 bytes each, so the B-tree needs no
    /// lengths per entry and an insert in the middle of a leaf only moves bytes.
    fn find_message(
        &mut self,
        hash: [u8; 8],
        channel: ChannelKind,
        id: &str,
    ) -> Result<Found, StoreError> {
        let code = codec::channel_code(channel);
        let mut slot = u64::from_be_bytes(hash);
        let mut free = None;
        loop {
            let k = key::id(slot);
            match self.dedupe_at(&k)? {
                None => {
                    return Ok(Found {
                        message: None,
                        free: free.unwrap_or(k),
                    });
                }
                Some(None) => free = free.or(Some(k)),
                Some(Some(seq)) => {
                    if let Some(rec) = self.message_rec(seq)?
                        && rec.channel == code
                        && rec.id == id
                    {
                        return Ok(Found {
                            message: Some((seq, rec)),
                            free: free.unwrap_or(k),
                        });
                    }
                }
            }
            slot = slot.wrapping_add(1);
        }
    }

    /// A dedupe key: `None` when free, `Some(None)` for the mark a deleted delivery leaves
    /// inside a run of collisions (so the run stays connected), else the sequence number.
    fn dedupe_at(&mut self, k: &[u8]) -> Result<Option<Option<u64>>, StoreError> {
        match self.read(Space::Dedupe, k)? {
            None => Ok(None),
            Some(v) => {
                let seq = u64::from_be_bytes(
                    v.as_slice()
                        .try_into()
                        .map_err(|_| self.shared().corrupt(k, "bad dedupe entry"))?,
                );
                Ok(Some((seq != DEDUPE_DELETED).then_some(seq)))
            }
        }
    }

    fn conv(
        &mut self,
        channel: ChannelKind,
        conversation: &str,
    ) -> Result<Option<ConvRec>, StoreError> {
        self.load(&key::conv(channel, conversation))
    }

    /// The blocks of a conversation's older message numbers: key and numbers, oldest first.
    fn conv_blocks(&mut self, number: u64) -> Result<Vec<Block>, StoreError> {
        let prefix = key::conv_blocks(number);
        let end = key::prefix_end(&prefix);
        let mut start = prefix;
        let mut blocks = Vec::new();
        loop {
            let page = self.range(Space::Records, &start, Some(&end), 256)?;
            let full = page.len() == 256;
            for (k, v) in page {
                let seqs = codec::read_deltas(&v).map_err(|e| self.shared().corrupt(&k, e))?;
                start = key::after(&k);
                blocks.push((k, seqs));
            }
            if !full {
                return Ok(blocks);
            }
        }
    }

    /// The sequence numbers of a conversation's messages, oldest first.
    fn conv_seqs(&mut self, conv: &ConvRec) -> Result<Vec<u64>, StoreError> {
        let mut seqs: Vec<u64> = self
            .conv_blocks(conv.number)?
            .into_iter()
            .flat_map(|(_, seqs)| seqs)
            .collect();
        seqs.extend_from_slice(&conv.recent);
        Ok(seqs)
    }

    fn esc_rec(&mut self, id: u64) -> Result<Option<EscRec>, StoreError> {
        self.load(&key::esc(id))
    }

    fn escalation(&mut self, id: u64) -> Result<Option<Escalation>, StoreError>
    where
        Self: Sized,
    {
        let Some(rec) = self.esc_rec(id)? else {
            return Ok(None);
        };
        let k = key::esc(id);
        let path = self.shared().path.clone();
        rec.decode(id, &mut Resolver(self), |reason| StoreError::Corrupt {
            path: path.clone(),
            reason: format!("record `{}`: {reason}", String::from_utf8_lossy(&k)),
        })
        .map(Some)
    }

    /// An outbox record, and whether it is pending: a pending entry has a `pending` key, and a
    /// record in `outbox` only once it is no longer fresh (a fresh reply is all defaults).
    fn outbox_rec(&mut self, id: u64) -> Result<Option<(OutboxRec, bool)>, StoreError> {
        let pending = self.read(Space::Pending, &key::id(id))?;
        match self.read(Space::Outbox, &key::id(id))? {
            Some(bytes) => {
                let rec: OutboxRec = postcard::from_bytes(&bytes)
                    .map_err(|e| self.shared().corrupt(format!("outbox {id}").as_bytes(), e))?;
                let pending = rec.status == codec::OUTBOX_PENDING;
                Ok(Some((rec, pending)))
            }
            None => match pending.as_deref() {
                Some([channel]) => Ok(Some((
                    OutboxRec {
                        channel: *channel,
                        ..OutboxRec::default()
                    },
                    true,
                ))),
                Some(_) => Err(self
                    .shared()
                    .corrupt(format!("pending {id}").as_bytes(), "bad channel code")),
                None => Ok(None),
            },
        }
    }

    fn decode_outbox(&mut self, id: u64, rec: &OutboxRec) -> Result<OutboxEntry, StoreError>
    where
        Self: Sized,
    {
        let message = match rec.detail {
            Some(_) => None,
            None => self.message_rec(id)?,
        };
        let path = self.shared().path.clone();
        rec.decode(id, message.as_ref(), &mut Resolver(self), |reason| {
            StoreError::Corrupt {
                path: path.clone(),
                reason: format!("outbox {id}: {reason}"),
            }
        })
    }

    fn outbox(&mut self, id: u64) -> Result<Option<(OutboxRec, bool, OutboxEntry)>, StoreError>
    where
        Self: Sized,
    {
        let Some((rec, pending)) = self.outbox_rec(id)? else {
            return Ok(None);
        };
        let entry = self.decode_outbox(id, &rec)?;
        Ok(Some((rec, pending, entry)))
    }

    /// Every key under a variable `prefix` of the records, page by page.
    fn keys_under(&mut self, prefix: &[u8]) -> Result<Vec<Vec<u8>>, StoreError> {
        let end = key::prefix_end(prefix);
        let mut start = prefix.to_vec();
        let mut keys = Vec::new();
        loop {
            let page = self.range(Space::Records, &start, Some(&end), 1024)?;
            let full = page.len() == 1024;
            let last = page.last().map(|(k, _)| key::after(k));
            keys.extend(page.into_iter().map(|(k, _)| k));
            match last {
                Some(next) if full => start = next,
                _ => return Ok(keys),
            }
        }
    }

    /// Every id at the end of the keys under `prefix`.
    fn ids_under(&mut self, prefix: &[u8]) -> Result<Vec<u64>, StoreError> {
        self.keys_under(prefix)?
            .iter()
            .map(|k| key::tail(k).ok_or_else(|| self.shared().corrupt(k, "short key")))
            .collect()
    }

    /// The ids in a fixed-width id space (pending, finished outbox), page by page.
    fn ids_in(&mut self, space: Space) -> Result<Vec<u64>, StoreError> {
        let mut start = key::id(0).to_vec();
        let mut ids = Vec::new();
        loop {
            let page = self.range(space, &start, None, 4096)?;
            for (k, _) in &page {
                ids.push(key::tail(k).ok_or_else(|| self.shared().corrupt(k, "short key"))?);
            }
            match page.last() {
                Some((k, _)) if page.len() == 4096 => match key::successor(k) {
                    Some(next) => start = next,
                    None => return Ok(ids),
                },
                _ => return Ok(ids),
            }
        }
    }
}

/// The numbers of the messages received from `from` to `until` (microseconds), from the time
/// index.
fn numbers_received(
    kv: &mut dyn KvRead,
    shared: &Shared,
    from: i64,
    until: i64,
) -> Result<Vec<u64>, StoreError> {
    let mut seqs = Vec::new();
    if until <= from {
        return Ok(seqs);
    }
    kv.scan_each(
        Space::Time,
        &key::time(from, 0),
        Some(&key::time(until, 0)),
        &mut |k, _| {
            seqs.push(key::tail(k).ok_or_else(|| shared.corrupt(k, "short key"))?);
            Ok(())
        },
    )?;
    Ok(seqs)
}

/// A block of a conversation's message numbers: its key, and the numbers.
type Block = (Vec<u8>, Vec<u64>);

/// What [`Reader::find_message`] found: the stored delivery, and where in the dedupe table a
/// new delivery with the same hash goes.
struct Found {
    message: Option<(u64, MessageRec)>,
    free: [u8; 8],
}

struct Resolver<'r, R: Reader>(&'r mut R);

impl<R: Reader> Resolve for Resolver<'_, R> {
    fn resolve(&mut self, id: u32) -> Result<Arc<str>, StoreError> {
        self.0.symbol(id)
    }
}

/// Reads committed data, all from one consistent view. Remembers the last chunk read, since
/// readers mostly read neighbouring messages.
struct Snapshot<'a> {
    shared: &'a Shared,
    kv: Box<dyn KvRead + 'a>,
    chunk: Option<(u64, Option<Vec<u8>>)>,
}

impl Reader for Snapshot<'_> {
    fn shared(&self) -> &Shared {
        self.shared
    }
    fn read(&mut self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.kv.get(space, key)
    }
    fn range(
        &mut self,
        space: Space,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<KvPairs, StoreError> {
        self.kv.scan(space, start, end, limit)
    }
    fn message_bytes(&mut self, seq: u64) -> Result<Option<Vec<u8>>, StoreError> {
        let number = codec::chunk_of(seq);
        if self.chunk.as_ref().is_none_or(|(n, _)| *n != number) {
            let bytes = self.kv.get(Space::Messages, &key::id(number))?;
            self.chunk = Some((number, bytes));
        }
        let Some((_, Some(bytes))) = &self.chunk else {
            return Ok(None);
        };
        Chunk::slot_in(bytes, codec::slot_of(seq))
            .map(|slot| slot.map(<[u8]>::to_vec))
            .map_err(|e| self.shared.corrupt_seq(seq, e))
    }
}

/// One batch's writes, per key space; `None` is a delete. Ordered, so the batch reaches the
/// backend sorted by key and each B-tree page is changed once, in one pass.
#[derive(Default)]
struct Overlay {
    spaces: [BTreeMap<Vec<u8>, Option<Vec<u8>>>; Space::ALL.len()],
}

impl Overlay {
    fn space(&self, space: Space) -> &BTreeMap<Vec<u8>, Option<Vec<u8>>> {
        &self.spaces[space as usize]
    }

    fn space_mut(&mut self, space: Space) -> &mut BTreeMap<Vec<u8>, Option<Vec<u8>>> {
        &mut self.spaces[space as usize]
    }

    fn into_sorted(self) -> impl Iterator<Item = (Space, Vec<u8>, Option<Vec<u8>>)> {
        Space::ALL
            .into_iter()
            .zip(self.spaces)
            .flat_map(|(space, writes)| writes.into_iter().map(move |(k, v)| (space, k, v)))
    }
}

/// The writer's view of one batch: the backend transaction (committed data), the overlay of
/// this batch's writes, the message chunks it touches, and the counters and symbols it adds.
struct Tx<'a> {
    kv: &'a mut dyn KvTxn,
    shared: &'a Shared,
    counters: &'a mut Counters,
    new_symbols: &'a mut HashMap<Arc<str>, u32>,
    /// `None` is a delete. Ordered, so the batch reaches the backend sorted by key.
    overlay: Overlay,
    /// Chunks read or changed in this batch; the changed ones are written at the end.
    chunks: HashMap<u64, (Chunk, bool)>,
    writes: usize,
}

impl Reader for Tx<'_> {
    fn shared(&self) -> &Shared {
        self.shared
    }
    fn read(&mut self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        if let Some(value) = self.overlay.space(space).get(key) {
            return Ok(value.clone());
        }
        self.kv.get(space, key)
    }

    /// Merges committed entries with the overlay's; the overlay wins on equal keys.
    fn range(
        &mut self,
        space: Space,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<KvPairs, StoreError> {
        let upper = match end {
            Some(end) => Bound::Excluded(end),
            None => Bound::Unbounded,
        };
        let mine: Vec<(&Vec<u8>, &Option<Vec<u8>>)> = self
            .overlay
            .space(space)
            .range::<[u8], _>((Bound::Included(start), upper))
            .collect();
        // Each overlay entry hides at most one committed entry: ask for that many more.
        let committed = self
            .kv
            .scan(space, start, end, limit.saturating_add(mine.len()))?;
        let mut out = Vec::with_capacity(limit.min(committed.len() + mine.len()));
        let mut theirs = committed.into_iter().peekable();
        let mut mine = mine.into_iter().peekable();
        while out.len() < limit {
            let take_mine = match (mine.peek(), theirs.peek()) {
                (None, None) => break,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (Some((mk, _)), Some((tk, _))) => mk.as_slice() <= tk.as_slice(),
            };
            if take_mine {
                if let Some((k, v)) = mine.next() {
                    if theirs.peek().is_some_and(|(tk, _)| tk == k) {
                        theirs.next();
                    }
                    if let Some(v) = v {
                        out.push((k.clone(), v.clone()));
                    }
                }
            } else if let Some(entry) = theirs.next() {
                out.push(entry);
            }
        }
        Ok(out)
    }

    fn message_bytes(&mut self, seq: u64) -> Result<Option<Vec<u8>>, StoreError> {
        let chunk = self.chunk(codec::chunk_of(seq))?;
        Ok(chunk.get(codec::slot_of(seq)).map(<[u8]>::to_vec))
    }
}

impl Tx<'_> {
    fn put(&mut self, space: Space, key: &[u8], value: Vec<u8>) {
        self.writes += 1;
        self.overlay
            .space_mut(space)
            .insert(key.to_vec(), Some(value));
    }

    fn put_rec<T: Serialize>(&mut self, key: &[u8], value: &T) -> Result<(), StoreError> {
        let bytes = encode(value)?;
        self.put(Space::Records, key, bytes);
        Ok(())
    }

    /// Writes an outbox entry's state: a `pending` key while it waits, and its record in
    /// `outbox` unless it is fresh.
    fn put_outbox(&mut self, id: u64, rec: &OutboxRec) -> Result<(), StoreError> {
        if rec.status == codec::OUTBOX_PENDING {
            self.put(Space::Pending, &key::id(id), vec![rec.channel]);
            if rec.is_fresh() {
                self.delete(Space::Outbox, &key::id(id));
                return Ok(());
            }
        } else {
            self.delete(Space::Pending, &key::id(id));
        }
        let bytes = encode(rec)?;
        self.put(Space::Outbox, &key::id(id), bytes);
        Ok(())
    }

    fn delete_outbox(&mut self, id: u64) {
        self.delete(Space::Pending, &key::id(id));
        self.delete(Space::Outbox, &key::id(id));
    }

    fn delete(&mut self, space: Space, key: &[u8]) {
        self.writes += 1;
        self.overlay.space_mut(space).insert(key.to_vec(), None);
    }

    /// A chunk as this batch sees it, loaded on first use.
    fn chunk(&mut self, number: u64) -> Result<&mut Chunk, StoreError> {
        if !self.chunks.contains_key(&number) {
            let chunk = match self.kv.get(Space::Messages, &key::id(number))? {
                Some(bytes) => Chunk::decode(&bytes).map_err(|e| {
                    self.shared
                        .corrupt_seq(number * codec::CHUNK_SLOTS, format!("its chunk: {e}"))
                })?,
                None => Chunk::default(),
            };
            self.chunks.insert(number, (chunk, false));
        }
        match self.chunks.get_mut(&number) {
            Some((chunk, _)) => Ok(chunk),
            None => Err(self.shared.corrupt_seq(number, "chunk vanished")),
        }
    }

    fn chunk_mut(&mut self, number: u64) -> Result<&mut Chunk, StoreError> {
        self.writes += 1;
        self.chunk(number)?;
        match self.chunks.get_mut(&number) {
            Some((chunk, dirty)) => {
                *dirty = true;
                Ok(chunk)
            }
            None => Err(self.shared.corrupt_seq(number, "chunk vanished")),
        }
    }

    /// Places an encoded message record (empty: only take a number) and returns its sequence
    /// number: the next slot of the last chunk, or the first of a new chunk when the record
    /// would not fit the page.
    fn append_message(&mut self, record: &[u8]) -> Result<u64, StoreError> {
        let mut seq = self.counters.next_seq;
        let limit = self.shared.chunk_bytes;
        let (len, fits) = {
            let chunk = self.chunk(codec::chunk_of(seq))?;
            (chunk.len(), chunk.fits(record.len(), limit))
        };
        if len > codec::slot_of(seq) {
            return Err(self
                .shared
                .corrupt_seq(seq, format!("its chunk already has {len} slots")));
        }
        if !fits {
            seq = (codec::chunk_of(seq) + 1) * codec::CHUNK_SLOTS;
        }
        let slot = codec::slot_of(seq);
        let chunk = self.chunk_mut(codec::chunk_of(seq))?;
        // Numbers taken by messages that were deleted since, and whose chunk went with them.
        while chunk.len() < slot {
            chunk.push(&[]);
        }
        chunk.push(record);
        self.counters.next_seq = seq + 1;
        Ok(seq)
    }

    /// Writes the changed chunks and the counters into the overlay.
    fn finish(&mut self) -> Result<(), StoreError> {
        let mut changed: Vec<(u64, Option<Vec<u8>>)> = Vec::new();
        for (number, (chunk, dirty)) in &self.chunks {
            if *dirty {
                changed.push((
                    number.to_owned(),
                    (!chunk.is_empty()).then(|| chunk.encode()),
                ));
            }
        }
        for (number, bytes) in changed {
            match bytes {
                Some(bytes) => self.put(Space::Messages, &key::id(number), bytes),
                None => self.delete(Space::Messages, &key::id(number)),
            }
        }
        let counters = self.counters.clone();
        self.put_rec(&key::meta("counters"), &counters)
    }

    fn audit(&mut self, entry: NewAudit) -> Result<u64, StoreError> {
        let id = self.counters.next_audit;
        self.counters.next_audit += 1;
        let NewAudit {
            at,
            actor,
            action,
            subject,
            details,
        } = entry;
        self.put_rec(
            &key::audit(id),
            &AuditEntry {
                id,
                at,
                actor,
                action,
                subject,
                details,
            },
        )?;
        Ok(id)
    }

    /// Deletes a message with its index entries. Its outbox entry, if any, loses the message
    /// it took its words from: a finished one created before `drop_finished_before` goes, the
    /// others get a copy of what they need (and a place in the conversation's `replies`).
    fn delete_message(
        &mut self,
        seq: u64,
        rec: &MessageRec,
        drop_finished_before: i64,
    ) -> Result<bool, StoreError> {
        let channel =
            codec::channel_from(rec.channel).map_err(|e| self.shared.corrupt_seq(seq, e))?;
        let conv_key = key::conv(channel, &rec.conversation);
        let mut conv: Option<ConvRec> = self.load(&conv_key)?;
        let mut outbox_deleted = false;
        if rec.has_reply()
            && let Some((mut out, _)) = self.outbox_rec(seq)?
            && out.detail.is_none()
        {
            if out.status != codec::OUTBOX_PENDING && rec.stored_at() < drop_finished_before {
                self.delete_outbox(seq);
                outbox_deleted = true;
            } else {
                out.detail = Some(detail_of(rec));
                self.put_outbox(seq, &out)?;
                if let Some(conv) = &mut conv {
                    conv.replies.push(seq);
                }
            }
        }
        let chunk = self.chunk_mut(codec::chunk_of(seq))?;
        chunk.clear(codec::slot_of(seq));
        if rec.intake().has_shadow {
            self.delete(Space::Records, &key::shadow(seq));
        }
        self.forget_delivery(codec::dedupe_hash(channel, &rec.id), seq)?;
        self.delete(Space::Time, &key::time(rec.received_at, seq));
        if let Some(mut conv) = conv {
            self.unlist(&mut conv, seq)?;
            self.put_rec(&conv_key, &conv)?;
        }
        self.counters.messages = self.counters.messages.saturating_sub(1);
        Ok(outbox_deleted)
    }

    /// Takes message `seq` off its conversation's list: out of the record's newest numbers, or
    /// out of the block that holds it.
    fn unlist(&mut self, conv: &mut ConvRec, seq: u64) -> Result<(), StoreError> {
        if let Some(at) = conv.recent.iter().position(|s| *s == seq) {
            conv.recent.remove(at);
            return Ok(());
        }
        for (k, mut seqs) in self.conv_blocks(conv.number)? {
            if let Some(at) = seqs.iter().position(|s| *s == seq) {
                seqs.remove(at);
                if seqs.is_empty() {
                    self.delete(Space::Records, &k);
                } else {
                    self.put(Space::Records, &k, codec::write_deltas(&seqs));
                }
                return Ok(());
            }
        }
        Ok(())
    }

    /// Takes delivery `seq` out of the dedupe table: its key is freed, or marked deleted when
    /// the key after it is taken (a collision run must not be cut).
    fn forget_delivery(&mut self, hash: [u8; 8], seq: u64) -> Result<(), StoreError> {
        let mut slot = u64::from_be_bytes(hash);
        loop {
            let k = key::id(slot);
            match self.dedupe_at(&k)? {
                None => return Ok(()),
                Some(Some(found)) if found == seq => {
                    let next = key::id(slot.wrapping_add(1));
                    if self.dedupe_at(&next)?.is_some() {
                        self.put(Space::Dedupe, &k, DEDUPE_DELETED.to_be_bytes().to_vec());
                    } else {
                        self.delete(Space::Dedupe, &k);
                    }
                    return Ok(());
                }
                Some(_) => slot = slot.wrapping_add(1),
            }
        }
    }

    /// Deletes a conversation with its messages, its escalations and its outbox entries; pending
    /// replies are kept unless `drop_pending` (they are still owed, but not to somebody who asked
    /// to be forgotten).
    fn delete_conversation(
        &mut self,
        channel: ChannelKind,
        conversation: &str,
        drop_pending: bool,
        report: &mut PurgeReport,
    ) -> Result<(), StoreError> {
        let conv_key = key::conv(channel, conversation);
        let Some(conv) = self.load::<ConvRec>(&conv_key)? else {
            return Ok(());
        };
        let mut outbox = conv.replies.clone();
        let seqs = self.conv_seqs(&conv)?;
        for (k, _) in self.conv_blocks(conv.number)? {
            self.delete(Space::Records, &k);
        }
        for seq in seqs {
            let Some(rec) = self.message_rec(seq)? else {
                continue;
            };
            if rec.has_reply() {
                outbox.push(seq);
            }
            let chunk = self.chunk_mut(codec::chunk_of(seq))?;
            chunk.clear(codec::slot_of(seq));
            if rec.intake().has_shadow {
                self.delete(Space::Records, &key::shadow(seq));
            }
            self.forget_delivery(codec::dedupe_hash(channel, &rec.id), seq)?;
            self.delete(Space::Time, &key::time(rec.received_at, seq));
            self.counters.messages = self.counters.messages.saturating_sub(1);
            report.messages += 1;
            // A kept pending reply needs its words once the message is gone.
            if !drop_pending
                && rec.has_reply()
                && let Some((mut out, true)) = self.outbox_rec(seq)?
                && out.detail.is_none()
            {
                out.detail = Some(detail_of(&rec));
                self.put_outbox(seq, &out)?;
            }
        }
        for id in outbox {
            match self.outbox_rec(id)? {
                Some((_, true)) if !drop_pending => {}
                Some(_) => {
                    self.delete_outbox(id);
                    report.outbox += 1;
                }
                None => {}
            }
        }
        for id in &conv.escalations {
            if self.esc_rec(*id)?.is_some() {
                self.delete(Space::Records, &key::esc(*id));
                self.delete(Space::Records, &key::esc_open(*id));
                self.delete(Space::Records, &inbox::work_key(*id));
                report.escalations += 1;
            }
        }
        for author in &conv.participants {
            self.delete(Space::Records, &key::author(author, channel, conversation));
        }
        self.delete(Space::Records, &conv_key);
        report.conversations += 1;
        Ok(())
    }
}

/// What an outbox entry needs of its message once the message is gone.
fn detail_of(rec: &MessageRec) -> OutboxDetail {
    OutboxDetail {
        conversation: rec.conversation.clone(),
        in_reply_to: rec.id.clone(),
        text: rec
            .decision
            .reply
            .clone()
            .unwrap_or(Text::Inline(String::new())),
        created_at: rec.stored_at(),
    }
}

impl Intern for Tx<'_> {
    fn intern(&mut self, text: &str) -> Result<u32, StoreError> {
        if let Some(id) = self.shared.symbols.id_of(text) {
            return Ok(id);
        }
        if let Some(id) = self.new_symbols.get(text) {
            return Ok(*id);
        }
        let id = self.counters.next_symbol;
        self.counters.next_symbol += 1;
        self.put(Space::Records, &key::sym(id), text.as_bytes().to_vec());
        self.new_symbols.insert(text.into(), id);
        Ok(id)
    }
}

/// Hands a job's answer to its caller once the batch is durable (or failed), with the callers
/// this one must wake in turn (see [`wake_all`]).
type Completion = Box<dyn FnOnce(Result<(), StoreError>, Vec<Thread>) + Send>;
/// A unit of work for the writer. It runs inside the batch transaction and must do its reads
/// before its writes: a job that fails after writing poisons the whole batch. It returns
/// whether it failed after writing, its completion, and its caller's thread.
type Job = Box<dyn FnOnce(&mut Tx<'_>) -> (bool, Completion, Thread) + Send>;

/// Answers every job of a batch and wakes their callers as a tree: the writer wakes the first,
/// and each caller wakes two more once it has its answer. Waking is a system call per thread;
/// done by the writer for a whole batch it would hold up the next commit by as much, while the
/// callers have the time (and there are many of them).
fn wake_all(done: Vec<(Completion, Thread)>, result: &Result<(), StoreError>, path: &Path) {
    let threads: Vec<Thread> = done.iter().map(|(_, t)| t.clone()).collect();
    for (i, (complete, _)) in done.into_iter().enumerate() {
        let children = [2 * i + 1, 2 * i + 2]
            .iter()
            .filter_map(|c| threads.get(*c).cloned())
            .collect();
        complete(
            match result {
                Ok(()) => Ok(()),
                Err(error) => Err(share_error(error, path)),
            },
            children,
        );
    }
    if let Some(first) = threads.first() {
        first.unpark();
    }
}

/// Copies an error for every caller of a failed batch (I/O errors are not `Clone`).
fn share_error(error: &StoreError, path: &Path) -> StoreError {
    match error {
        StoreError::Corrupt { path, reason } => StoreError::Corrupt {
            path: path.clone(),
            reason: reason.clone(),
        },
        other => StoreError::Backend {
            path: path.to_owned(),
            reason: other.to_string(),
        },
    }
}

/// The most jobs in one transaction; bounds a commit's size and latency.
const MAX_BATCH: usize = 2048;

fn run_writer(shared: Arc<Shared>, mut counters: Counters, jobs: Receiver<Job>) {
    while let Ok(first) = jobs.recv() {
        let mut batch = Vec::with_capacity(64);
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let saved = counters.clone();
        let mut new_symbols = HashMap::new();
        let mut completions: Vec<(Completion, Thread)> = Vec::with_capacity(batch.len());
        let mut batch = Some(batch);
        let result = shared.kv.transact(&mut |txn| {
            let mut tx = Tx {
                kv: txn,
                shared: &shared,
                counters: &mut counters,
                new_symbols: &mut new_symbols,
                overlay: Overlay::default(),
                chunks: HashMap::new(),
                writes: 0,
            };
            let mut poisoned = false;
            for job in batch.take().into_iter().flatten() {
                let (failed_after_writing, done, caller) = job(&mut tx);
                poisoned |= failed_after_writing;
                completions.push((done, caller));
            }
            if poisoned {
                return Err(StoreError::Backend {
                    path: shared.path.clone(),
                    reason: "a change failed halfway, so its batch was rolled back; retry".into(),
                });
            }
            tx.finish()?;
            let Tx { kv, overlay, .. } = tx;
            for (space, k, v) in overlay.into_sorted() {
                match v {
                    Some(v) => kv.put(space, &k, &v)?,
                    None => kv.delete(space, &k)?,
                }
            }
            Ok(())
        });
        match &result {
            Ok(()) => {
                for (text, id) in new_symbols {
                    shared.symbols.insert(id, text);
                }
            }
            Err(error) => {
                tracing::error!(error = %error, "store commit failed");
                counters = saved;
            }
        }
        wake_all(completions, &result, &shared.path);
    }
}

/// Where the writer leaves one job's answer, with the callers to wake next. The caller parks
/// until it is there: one wake-up per job, the least a blocking call can cost (a channel per
/// call costs a lock and a waker registration more).
struct Slot<R> {
    answer: Mutex<Option<Answer<R>>>,
    caller: Thread,
}

type Answer<R> = (Result<R, StoreError>, Vec<Thread>);

/// The writer's end of a [`Slot`]. Dropped unanswered (the writer died), it answers
/// [`StoreError::WriterStopped`] so the caller never waits forever.
struct Reply<R>(Option<Arc<Slot<R>>>);

impl<R> Reply<R> {
    /// Leaves the answer; the caller is woken by [`wake_all`]'s tree, not here.
    fn send(mut self, result: Result<R, StoreError>, wake: Vec<Thread>) {
        if let Some(slot) = self.0.take()
            && let Ok(mut answer) = slot.answer.lock()
        {
            *answer = Some((result, wake));
        }
    }
}

impl<R> Drop for Reply<R> {
    fn drop(&mut self) {
        if let Some(slot) = self.0.take() {
            if let Ok(mut answer) = slot.answer.lock() {
                *answer = Some((Err(StoreError::WriterStopped), Vec::new()));
            }
            slot.caller.unpark();
        }
    }
}

/// The [`Store`] over any [`Kv`] backend.
pub struct Embedded {
    shared: Arc<Shared>,
    redactor: Option<Redactor>,
    /// Shared by every caller (a `Sender` is `Sync`); taken on drop to stop the writer.
    sender: Option<Sender<Job>>,
    writer: Option<JoinHandle<()>>,
}

impl Embedded {
    /// Reads the format version, counters and symbol table, and starts the writer.
    pub fn new(
        kv: Arc<dyn Kv>,
        backend: Backend,
        path: PathBuf,
        redactor: Option<Redactor>,
    ) -> Result<Self, StoreError> {
        let shared = Arc::new(Shared {
            chunk_bytes: kv.chunk_bytes(),
            kv,
            symbols: Symbols::default(),
            path,
            backend,
        });
        let version_key = key::meta("version");
        let counters: Counters = {
            let mut snap = Snapshot {
                shared: &shared,
                kv: shared.kv.snapshot()?,
                chunk: None,
            };
            match snap.read(Space::Records, &version_key)? {
                Some(bytes) => {
                    let found = bytes
                        .try_into()
                        .map(u32::from_be_bytes)
                        .map_err(|_| shared.corrupt(&version_key, "bad format version"))?;
                    if found != FORMAT_VERSION {
                        return Err(StoreError::Version {
                            path: shared.path.clone(),
                            found,
                            supported: FORMAT_VERSION,
                        });
                    }
                    snap.load(&key::meta("counters"))?.unwrap_or_default()
                }
                None => {
                    // A new store. Anything already in it means it is not one of ours.
                    for space in Space::ALL {
                        if !snap.range(space, &[], None, 1)?.is_empty() {
                            return Err(shared.corrupt(&version_key, "no format version"));
                        }
                    }
                    drop(snap);
                    shared.kv.transact(&mut |txn| {
                        txn.put(Space::Records, &version_key, &FORMAT_VERSION.to_be_bytes())
                    })?;
                    Counters::default()
                }
            }
        };
        // The symbol table is small (one entry per distinct decision string of the rulebooks
        // that were used); loading it whole keeps encoding free of lookups.
        {
            let mut snap = shared.kv.snapshot()?;
            let start = vec![key::SYM];
            let end = key::prefix_end(&start);
            let mut from = start.clone();
            loop {
                let page = snap.scan(Space::Records, &from, Some(&end), 4096)?;
                for (k, v) in &page {
                    let id = key::tail(k).ok_or_else(|| shared.corrupt(k, "short key"))?;
                    let text = String::from_utf8(v.clone()).map_err(|e| shared.corrupt(k, e))?;
                    shared.symbols.insert(id as u32, text.into());
                }
                match page.last() {
                    Some((k, _)) if page.len() == 4096 => from = key::after(k),
                    _ => break,
                }
            }
        }
        let (sender, receiver) = mpsc::channel();
        let writer_shared = Arc::clone(&shared);
        let writer = std::thread::Builder::new()
            .name("webcare-store-writer".into())
            .spawn(move || run_writer(writer_shared, counters, receiver))
            .map_err(|source| StoreError::Io {
                path: shared.path.clone(),
                action: "start the writer thread for",
                source,
            })?;
        Ok(Embedded {
            shared,
            redactor,
            sender: Some(sender),
            writer: Some(writer),
        })
    }

    /// Runs `f` in the writer's next batch and waits until that batch is durable.
    fn write<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Tx<'_>) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        let caller = std::thread::current();
        let slot = Arc::new(Slot {
            answer: Mutex::new(None),
            caller: caller.clone(),
        });
        let reply = Reply(Some(Arc::clone(&slot)));
        let job: Job = Box::new(move |tx| {
            let before = tx.writes;
            let result = f(tx);
            let poisoned = result.is_err() && tx.writes != before;
            let done: Completion =
                Box::new(move |commit, wake| reply.send(commit.and(result), wake));
            (poisoned, done, caller)
        });
        let sender = self.sender.as_ref().ok_or(StoreError::WriterStopped)?;
        sender.send(job).map_err(|_| StoreError::WriterStopped)?;
        loop {
            let answer = slot
                .answer
                .lock()
                .map_err(|_| StoreError::WriterStopped)?
                .take();
            if let Some((result, wake)) = answer {
                for next in wake {
                    next.unpark();
                }
                return result;
            }
            // Spurious wake-ups are fine: the slot is checked again.
            std::thread::park();
        }
    }

    fn snapshot(&self) -> Result<Snapshot<'_>, StoreError> {
        Ok(Snapshot {
            shared: &self.shared,
            kv: self.shared.kv.snapshot()?,
            chunk: None,
        })
    }

    /// Number of distinct decision strings stored; for the benchmark's size report.
    pub fn symbol_count(&self) -> usize {
        self.shared.symbols.len()
    }
}

impl Drop for Embedded {
    fn drop(&mut self) {
        // Closing the channel ends the writer after the jobs already queued.
        self.sender.take();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

/// The name of the crisis switch's record under `z`.
const CRISIS_SWITCH: &str = "crisis";

fn audit(
    actor: &str,
    action: &str,
    subject: String,
    details: String,
    at: DateTime<Utc>,
) -> NewAudit {
    NewAudit {
        at,
        actor: actor.to_owned(),
        action: action.to_owned(),
        subject,
        details,
    }
}

fn missing_conversation(channel: ChannelKind, conversation: &str) -> StoreError {
    StoreError::NoSuchConversation {
        channel,
        conversation: conversation.to_owned(),
    }
}

impl Store for Embedded {
    fn backend(&self) -> Backend {
        self.shared.backend
    }

    fn message(&self, channel: ChannelKind, id: &str) -> Result<Option<StoredMessage>, StoreError> {
        let mut snap = self.snapshot()?;
        match snap
            .find_message(codec::dedupe_hash(channel, id), channel, id)?
            .message
        {
            None => Ok(None),
            Some((seq, rec)) => snap.decode_stored(seq, rec).map(Some),
        }
    }

    fn conversation_facts(
        &self,
        channel: ChannelKind,
        conversation: &str,
        at: DateTime<Utc>,
        today: chrono::NaiveDate,
    ) -> Result<ConversationFacts, StoreError> {
        Ok(self
            .snapshot()?
            .conv(channel, conversation)?
            .map(|c| c.facts(at, today))
            .unwrap_or_default())
    }

    fn intake_lookup(
        &self,
        channel: ChannelKind,
        id: &str,
        conversation: &str,
        at: DateTime<Utc>,
        today: chrono::NaiveDate,
    ) -> Result<IntakeLookup, StoreError> {
        let mut snap = self.snapshot()?;
        if let Some((seq, rec)) = snap
            .find_message(codec::dedupe_hash(channel, id), channel, id)?
            .message
        {
            return Ok(IntakeLookup::Duplicate(Box::new(
                snap.decode_stored(seq, rec)?,
            )));
        }
        Ok(IntakeLookup::New(
            snap.conv(channel, conversation)?
                .map(|c| c.facts(at, today))
                .unwrap_or_default(),
        ))
    }

    fn record_intake(&self, intake: IntakeRecord) -> Result<IntakeReceipt, StoreError> {
        let IntakeRecord {
            mut message,
            decision,
            facts,
            today,
            sla_deadline,
            now,
            mode,
            shadow,
        } = intake;
        // Redaction, encoding and hashing happen here, in the caller's thread, so the writer only
        // places bytes. The record is encoded with the symbols committed so far; only when the
        // decision has a string the table does not know yet does the writer encode it again.
        if let Some(redactor) = &self.redactor {
            message.text = redactor.redact(&message.text).into_owned();
        }
        let mut committed = codec::Committed {
            symbols: &self.shared.symbols,
            missing: false,
        };
        let taken = codec::Intake {
            mode,
            has_shadow: shadow.is_some(),
        };
        let encoded =
            codec::encode_message(&message, &decision, &facts, taken, now, &mut committed)?;
        // The shadow decision is encoded here too, with the same rule: strings holding the
        // customer's words stay inline, so `forget` erases them with the record.
        let shadow_encoded = match &shadow {
            Some(candidate) => Some(encode(&codec::encode_decision(
                candidate,
                [message.text.as_str(), message.id.as_str()],
                &mut committed,
            )?)?),
            None => None,
        };
        let prepared = (!committed.missing).then_some((encoded, shadow_encoded));
        let channel = message.channel;
        let hash = codec::dedupe_hash(channel, &message.id);
        // The message and the decision travel back with the answer, so the caller's thread
        // frees what it allocated: a free in another thread's malloc arena takes its lock, and
        // the writer would take it for every string of every decision.
        let (receipt, message, _) = self.write(move |tx| {
            let Found {
                message: first,
                free: dedupe_key,
            } = tx.find_message(hash, channel, &message.id)?;
            if let Some((seq, first)) = first {
                let first = tx.decode_stored(seq, first)?;
                let receipt = IntakeReceipt {
                    seq,
                    decision: first.decision,
                    duplicate: true,
                    escalation: None,
                    outbox: None,
                    mode: first.mode,
                };
                return Ok((receipt, message, Some(decision)));
            }
            let conv_key = key::conv(channel, &message.conversation);
            let existing: Option<ConvRec> = tx.load(&conv_key)?;
            // The open escalation matters only to a message that joins it: one that escalates,
            // or any message while a person owns the conversation (see below). Most messages
            // skip reading it.
            let joins = mode.escalates()
                && (matches!(decision.action, Action::Escalate { .. })
                    || existing
                        .as_ref()
                        .is_some_and(|c| c.state == codec::state_code(ConversationState::Human)));
            let open = match existing.as_ref().and_then(|c| c.open_escalation) {
                Some(id) if joins => tx.esc_rec(id)?.map(|esc| (id, esc)),
                _ => None,
            };

            // Reads are done; from here on only writes.
            let received = codec::micros(message.received_at);
            let mut conversation = match existing {
                Some(conv) => conv,
                None => {
                    let number = tx.counters.next_conversation;
                    tx.counters.next_conversation += 1;
                    ConvRec {
                        number,
                        started_at: received,
                        last_activity: received,
                        today: codec::day_code(today),
                        ..ConvRec::default()
                    }
                }
            };
            let (bytes, shadow_bytes) = match prepared {
                Some(both) => both,
                None => {
                    let private = [message.text.as_str(), message.id.as_str()];
                    let shadow_bytes = match &shadow {
                        Some(candidate) => {
                            Some(encode(&codec::encode_decision(candidate, private, tx)?)?)
                        }
                        None => None,
                    };
                    let bytes = codec::encode_message(&message, &decision, &facts, taken, now, tx)?;
                    (bytes, shadow_bytes)
                }
            };
            let seq = tx.append_message(&bytes)?;
            if let Some(shadow_bytes) = shadow_bytes {
                tx.put(Space::Records, &key::shadow(seq), shadow_bytes);
            }
            tx.counters.messages += 1;
            tx.put(Space::Dedupe, &dedupe_key, seq.to_be_bytes().to_vec());
            tx.put(Space::Time, &key::time(received, seq), Vec::new());
            conversation.recent.push(seq);
            if conversation.recent.len() >= codec::RECENT {
                let first = conversation.recent[0];
                let block = codec::write_deltas(&conversation.recent);
                tx.put(
                    Space::Records,
                    &key::conv_block(conversation.number, first),
                    block,
                );
                conversation.recent.clear();
            }
            if conversation.join(&message.author) {
                tx.put(
                    Space::Records,
                    &key::author(&message.author, channel, &message.conversation),
                    Vec::new(),
                );
            }

            conversation.last_activity = conversation.last_activity.max(received);
            conversation.messages += 1;
            let day = codec::day_code(today);
            if conversation.today == day {
                conversation.messages_today += 1;
            } else if day > conversation.today {
                conversation.today = day;
                conversation.messages_today = 1;
            }
            if decision.diagnostics.category == Category::Complaint {
                conversation.recent_complaints.push(received);
            }
            const WEEK: i64 = 7 * 86_400 * 1_000_000;
            let last = conversation.last_activity;
            conversation
                .recent_complaints
                .retain(|t| last.saturating_sub(*t) < WEEK);

            // The mode decides which effects are written (see `crate::mode`): in `listen` no
            // escalation opens or grows (`open` is `None` then, see `joins`), in `shadow` and
            // `listen` no reply is queued.
            let mut escalation = None;
            if mode.escalates()
                && let Action::Escalate { team, priority, .. } = &decision.action
            {
                let private = [message.text.as_str(), message.id.as_str()];
                let team_text = codec::encode_text(team, &private, tx)?;
                let code = codec::priority_code(*priority);
                let (id, esc) = match open {
                    Some((id, mut esc)) => {
                        let other_team = codec::text(&esc.team, &mut Resolver(&mut *tx))? != *team;
                        esc.messages.push(message.id.clone());
                        let raised = (code > esc.priority).then_some((esc.priority, code));
                        esc.priority = esc.priority.max(code);
                        esc.joins.push(JoinRec {
                            after: codec::micros(now).saturating_sub(esc.created_at),
                            raised,
                            team: other_team.then_some(team_text),
                        });
                        (id, esc)
                    }
                    None => {
                        let id = tx.counters.next_escalation;
                        tx.counters.next_escalation += 1;
                        tx.put(Space::Records, &key::esc_open(id), Vec::new());
                        conversation.open_escalation = Some(id);
                        conversation.escalations.push(id);
                        let reason = decision.diagnostics.reasons.join("; ");
                        let mut esc = EscRec {
                            channel: codec::channel_code(channel),
                            conversation: message.conversation.clone(),
                            team: team_text,
                            priority: code,
                            reason: codec::encode_text(&reason, &private, tx)?,
                            status: codec::ESC_OPEN,
                            by: None,
                            created_at: codec::micros(now),
                            sla_deadline: sla_deadline.map(codec::micros),
                            messages: vec![message.id.clone()],
                            joins: Vec::new(),
                            events: Vec::new(),
                        };
                        esc.event(
                            now,
                            "engine",
                            format!(
                                "opened for team `{team}`, priority {priority}, by message `{}`",
                                message.id
                            ),
                        );
                        (id, esc)
                    }
                };
                tx.put_rec(&key::esc(id), &esc)?;
                escalation = Some(id);
            } else if let Some((id, mut esc)) = open
                && conversation.state == codec::state_code(ConversationState::Human)
            {
                // During a handoff everything the customer adds goes to the colleague who owns
                // the conversation, whatever the decision (the bot stays silent anyway).
                esc.messages.push(message.id.clone());
                esc.joins.push(JoinRec {
                    after: codec::micros(now).saturating_sub(esc.created_at),
                    raised: None,
                    team: None,
                });
                tx.put_rec(&key::esc(id), &esc)?;
                escalation = Some(id);
            }

            let mut outbox = None;
            if mode.sends_replies() && decision.action.reply().is_some() {
                // The reply's words, conversation and time are the message's, and its state is
                // fresh: one `pending` key is the whole entry (see `OutboxRec`).
                tx.put(
                    Space::Pending,
                    &key::id(seq),
                    vec![codec::channel_code(channel)],
                );
                conversation.auto_replies += 1;
                outbox = Some(seq);
            }
            tx.put_rec(&conv_key, &conversation)?;
            let receipt = IntakeReceipt {
                seq,
                decision,
                duplicate: false,
                escalation,
                outbox,
                mode,
            };
            Ok((receipt, message, None))
        })?;
        drop(message);
        Ok(receipt)
    }

    fn history_page(
        &self,
        since: Option<DateTime<Utc>>,
        cursor: Option<HistoryCursor>,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let start = match (cursor, since) {
            (Some(c), _) => match key::successor(&key::time(codec::micros(c.received_at), c.seq)) {
                Some(next) => next,
                None => return Ok(Vec::new()),
            },
            (None, Some(since)) => key::time(codec::micros(since), 0).to_vec(),
            (None, None) => vec![0; 16],
        };
        let mut snap = self.snapshot()?;
        let index = snap.range(Space::Time, &start, None, limit)?;
        let mut page = Vec::with_capacity(index.len());
        for (k, _) in index {
            let seq = key::tail(&k).ok_or_else(|| self.shared.corrupt(&k, "short key"))?;
            if let Some(stored) = snap.stored(seq)? {
                page.push(stored);
            }
        }
        Ok(page)
    }

    fn conversation_messages(
        &self,
        channel: ChannelKind,
        conversation: &str,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let mut snap = self.snapshot()?;
        let Some(conv) = snap.conv(channel, conversation)? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for seq in snap.conv_seqs(&conv)? {
            if let Some(stored) = snap.stored(seq)? {
                out.push(stored);
            }
        }
        Ok(out)
    }

    fn conversation(
        &self,
        channel: ChannelKind,
        conversation: &str,
    ) -> Result<Option<Conversation>, StoreError> {
        let k = key::conv(channel, conversation);
        let Some(rec) = self.snapshot()?.conv(channel, conversation)? else {
            return Ok(None);
        };
        rec.to_public(channel, conversation, |e| self.shared.corrupt(&k, e))
            .map(Some)
    }

    fn set_conversation_state(
        &self,
        channel: ChannelKind,
        conversation: &str,
        state: ConversationState,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Conversation, StoreError> {
        let conversation = conversation.to_owned();
        let actor = actor.to_owned();
        let path = self.shared.path.clone();
        self.write(move |tx| {
            let k = key::conv(channel, &conversation);
            let mut conv: ConvRec = tx
                .load(&k)?
                .ok_or_else(|| missing_conversation(channel, &conversation))?;
            let from = codec::state_from(conv.state);
            conv.state = codec::state_code(state);
            tx.put_rec(&k, &conv)?;
            tx.audit(audit(
                &actor,
                "conversation.state",
                format!("conversation {channel}/{conversation}"),
                format!("{} → {}", from.as_str(), state.as_str()),
                now,
            ))?;
            conv.to_public(channel, &conversation, |reason| StoreError::Corrupt {
                path: path.clone(),
                reason,
            })
        })
    }

    fn escalation(&self, id: u64) -> Result<Option<Escalation>, StoreError> {
        self.snapshot()?.escalation(id)
    }

    fn open_escalations(&self) -> Result<Vec<Escalation>, StoreError> {
        let mut snap = self.snapshot()?;
        let mut out = Vec::new();
        for id in snap.ids_under(&[key::ESC_OPEN])? {
            if let Some(esc) = snap.escalation(id)? {
                out.push(esc);
            }
        }
        Ok(out)
    }

    fn claim_escalation(
        &self,
        id: u64,
        agent: &str,
        now: DateTime<Utc>,
    ) -> Result<Escalation, StoreError> {
        let agent = agent.to_owned();
        self.write(move |tx| {
            let mut esc = tx.esc_rec(id)?.ok_or(StoreError::NoSuchEscalation(id))?;
            match (esc.status, &esc.by) {
                (codec::ESC_RESOLVED, _) => return Err(StoreError::AlreadyResolved(id)),
                (codec::ESC_CLAIMED, Some(by)) if *by == agent => {
                    return tx.escalation(id)?.ok_or(StoreError::NoSuchEscalation(id));
                }
                (codec::ESC_CLAIMED, Some(by)) => {
                    return Err(StoreError::AlreadyClaimed { id, by: by.clone() });
                }
                _ => {}
            }
            let channel = codec::channel_from(esc.channel)
                .map_err(|e| tx.shared.corrupt(&key::esc(id), e))?;
            let conv_key = key::conv(channel, &esc.conversation);
            let conv: Option<ConvRec> = tx.load(&conv_key)?;
            esc.status = codec::ESC_CLAIMED;
            esc.by = Some(agent.clone());
            esc.event(now, &agent, "claimed".into());
            tx.put_rec(&key::esc(id), &esc)?;
            if let Some(mut conv) = conv {
                conv.state = codec::state_code(ConversationState::Human);
                tx.put_rec(&conv_key, &conv)?;
            }
            tx.audit(audit(
                &agent,
                "escalation.claim",
                format!("escalation {id}"),
                String::new(),
                now,
            ))?;
            tx.escalation(id)?.ok_or(StoreError::NoSuchEscalation(id))
        })
    }

    fn resolve_escalation(
        &self,
        id: u64,
        agent: &str,
        now: DateTime<Utc>,
    ) -> Result<Escalation, StoreError> {
        let agent = agent.to_owned();
        self.write(move |tx| {
            let mut esc = tx.esc_rec(id)?.ok_or(StoreError::NoSuchEscalation(id))?;
            if esc.status == codec::ESC_RESOLVED {
                return Err(StoreError::AlreadyResolved(id));
            }
            let channel = codec::channel_from(esc.channel)
                .map_err(|e| tx.shared.corrupt(&key::esc(id), e))?;
            let conv_key = key::conv(channel, &esc.conversation);
            let conv: Option<ConvRec> = tx.load(&conv_key)?;
            esc.status = codec::ESC_RESOLVED;
            esc.by = Some(agent.clone());
            esc.event(now, &agent, "resolved".into());
            tx.put_rec(&key::esc(id), &esc)?;
            tx.delete(Space::Records, &key::esc_open(id));
            if let Some(mut conv) = conv {
                if conv.open_escalation == Some(id) {
                    conv.open_escalation = None;
                }
                if conv.state == codec::state_code(ConversationState::Human) {
                    conv.state = codec::state_code(ConversationState::Bot);
                }
                // A person closed the case: the bot's budget of automatic replies (the loop
                // guard in governance.rhai) starts again for whatever the customer asks next.
                conv.auto_replies = 0;
                tx.put_rec(&conv_key, &conv)?;
            }
            tx.audit(audit(
                &agent,
                "escalation.resolve",
                format!("escalation {id}"),
                String::new(),
                now,
            ))?;
            tx.escalation(id)?.ok_or(StoreError::NoSuchEscalation(id))
        })
    }

    fn outbox_entry(&self, id: u64) -> Result<Option<OutboxEntry>, StoreError> {
        Ok(self.snapshot()?.outbox(id)?.map(|(_, _, entry)| entry))
    }

    fn due_outbox(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<OutboxEntry>, StoreError> {
        self.due_outbox_for(now, &ChannelKind::ALL, limit)
    }

    fn outbox_sent(&self, id: u64, now: DateTime<Utc>) -> Result<OutboxEntry, StoreError> {
        self.write(move |tx| {
            let (mut rec, pending, mut entry) =
                tx.outbox(id)?.ok_or(StoreError::NoSuchOutboxEntry(id))?;
            if !pending {
                return Err(StoreError::OutboxFinished(id));
            }
            rec.attempts += 1;
            rec.status = codec::OUTBOX_SENT;
            rec.sent_at = Some(codec::micros(now));
            tx.put_outbox(id, &rec)?;
            entry.attempts = rec.attempts;
            entry.status = super::OutboxStatus::Sent { at: now };
            Ok(entry)
        })
    }

    fn outbox_sent_all(&self, ids: &[u64], now: DateTime<Utc>) -> Result<usize, StoreError> {
        let ids = ids.to_vec();
        self.write(move |tx| {
            // All reads first: a job must not fail after it wrote.
            let mut pending = Vec::with_capacity(ids.len());
            for id in ids {
                // The record alone: its words (from the message) are not needed to mark it.
                if let Some((rec, true)) = tx.outbox_rec(id)? {
                    pending.push((id, rec));
                }
            }
            let marked = pending.len();
            for (id, mut rec) in pending {
                rec.attempts += 1;
                rec.status = codec::OUTBOX_SENT;
                rec.sent_at = Some(codec::micros(now));
                tx.put_outbox(id, &rec)?;
            }
            Ok(marked)
        })
    }

    fn outbox_failed(
        &self,
        id: u64,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
        _now: DateTime<Utc>,
    ) -> Result<OutboxEntry, StoreError> {
        let error = error.to_owned();
        self.write(move |tx| {
            let (mut rec, pending, mut entry) =
                tx.outbox(id)?.ok_or(StoreError::NoSuchOutboxEntry(id))?;
            if !pending {
                return Err(StoreError::OutboxFinished(id));
            }
            rec.attempts += 1;
            rec.last_error = Some(error.clone());
            match retry_at {
                Some(at) => {
                    rec.next_attempt_at = Some(codec::micros(at));
                    entry.next_attempt_at = at;
                }
                None => {
                    rec.status = codec::OUTBOX_DEAD;
                    entry.status = super::OutboxStatus::Dead;
                }
            }
            tx.put_outbox(id, &rec)?;
            entry.attempts = rec.attempts;
            entry.last_error = Some(error);
            Ok(entry)
        })
    }

    fn due_outbox_for(
        &self,
        now: DateTime<Utc>,
        channels: &[ChannelKind],
        limit: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let codes: Vec<u8> = channels.iter().map(|c| codec::channel_code(*c)).collect();
        let now_micros = codec::micros(now);
        let mut snap = self.snapshot()?;
        let mut out = Vec::new();
        let mut start = key::id(0).to_vec();
        'pages: loop {
            let page = snap.range(Space::Pending, &start, None, 1024)?;
            for (k, v) in &page {
                if out.len() >= limit {
                    break 'pages;
                }
                let id = key::tail(k).ok_or_else(|| self.shared.corrupt(k, "short key"))?;
                // The channel is in the key's value: the pending entries of a channel without an
                // adapter are skipped without reading anything else.
                if !v.first().is_some_and(|c| codes.contains(c)) {
                    continue;
                }
                let Some((rec, true)) = snap.outbox_rec(id)? else {
                    continue;
                };
                if rec.next_attempt_at.is_some_and(|t| t > now_micros) {
                    continue;
                }
                let entry = snap.decode_outbox(id, &rec)?;
                if entry.next_attempt_at <= now {
                    out.push(entry);
                }
            }
            match page.last().and_then(|(k, _)| key::successor(k)) {
                Some(next) if page.len() == 1024 => start = next,
                _ => break,
            }
        }
        Ok(out)
    }

    fn outbox_postponed(
        &self,
        id: u64,
        reason: &str,
        retry_at: DateTime<Utc>,
        _now: DateTime<Utc>,
    ) -> Result<OutboxEntry, StoreError> {
        let reason = reason.to_owned();
        self.write(move |tx| {
            let (mut rec, pending, mut entry) =
                tx.outbox(id)?.ok_or(StoreError::NoSuchOutboxEntry(id))?;
            if !pending {
                return Err(StoreError::OutboxFinished(id));
            }
            rec.last_error = Some(reason.clone());
            rec.next_attempt_at = Some(codec::micros(retry_at));
            tx.put_outbox(id, &rec)?;
            entry.last_error = Some(reason);
            entry.next_attempt_at = retry_at;
            Ok(entry)
        })
    }

    fn outbox_dead_letter(
        &self,
        id: u64,
        error: &str,
        team: &str,
        sla_deadline: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<DeadLetter, StoreError> {
        let error = error.to_owned();
        let team = team.to_owned();
        self.write(move |tx| {
            let (mut rec, pending, mut entry) =
                tx.outbox(id)?.ok_or(StoreError::NoSuchOutboxEntry(id))?;
            if !pending {
                return Err(StoreError::OutboxFinished(id));
            }
            let conv_key = key::conv(entry.channel, &entry.conversation);
            let conversation: Option<ConvRec> = tx.load(&conv_key)?;

            // Reads are done; from here on only writes.
            rec.attempts += 1;
            rec.last_error = Some(error.clone());
            rec.status = codec::OUTBOX_DEAD;
            tx.put_outbox(id, &rec)?;
            entry.attempts = rec.attempts;
            entry.last_error = Some(error.clone());
            entry.status = super::OutboxStatus::Dead;

            // Always a new escalation, for the default team: the conversation's open one (if
            // any) belongs to a specialist team that cannot fix a delivery problem.
            let esc_id = tx.counters.next_escalation;
            tx.counters.next_escalation += 1;
            let reason = format!("reply could not be delivered: {error}");
            let mut esc = EscRec {
                channel: codec::channel_code(entry.channel),
                conversation: entry.conversation.clone(),
                team: codec::encode_text(&team, &[], tx)?,
                priority: codec::priority_code(Priority::High),
                reason: Text::Inline(reason),
                status: codec::ESC_OPEN,
                by: None,
                created_at: codec::micros(now),
                sla_deadline: sla_deadline.map(codec::micros),
                messages: vec![entry.in_reply_to.clone()],
                joins: Vec::new(),
                events: Vec::new(),
            };
            esc.event(
                now,
                "engine",
                format!(
                    "opened for team `{team}`, priority high: reply {id} could not be delivered after {} attempts",
                    entry.attempts
                ),
            );
            tx.put_rec(&key::esc(esc_id), &esc)?;
            tx.put(Space::Records, &key::esc_open(esc_id), Vec::new());
            if let Some(mut conversation) = conversation {
                if conversation.open_escalation.is_none() {
                    conversation.open_escalation = Some(esc_id);
                }
                conversation.escalations.push(esc_id);
                tx.put_rec(&conv_key, &conversation)?;
            }
            tx.audit(audit(
                "engine",
                "outbox.dead",
                format!("outbox {id}"),
                format!("escalation {esc_id} for team `{team}`"),
                now,
            ))?;
            let escalation = tx
                .escalation(esc_id)?
                .ok_or(StoreError::NoSuchEscalation(esc_id))?;
            Ok(DeadLetter { entry, escalation })
        })
    }

    fn conversation_outbox(
        &self,
        channel: ChannelKind,
        conversation: &str,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let mut snap = self.snapshot()?;
        let Some(conv) = snap.conv(channel, conversation)? else {
            return Ok(Vec::new());
        };
        let mut ids = conv.replies.clone();
        for seq in snap.conv_seqs(&conv)? {
            if snap.message_rec(seq)?.is_some_and(|m| m.has_reply()) {
                ids.push(seq);
            }
        }
        ids.sort_unstable();
        ids.dedup();
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some((_, _, entry)) = snap.outbox(id)? {
                out.push(entry);
            }
        }
        Ok(out)
    }

    fn report_scan(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        with_replies: bool,
        visit: &mut dyn FnMut(ReportItem<'_>),
    ) -> Result<(), StoreError> {
        const PAGE: usize = 4096;
        let mut snap = self.snapshot()?;
        // The period's message numbers from the time index, then in intake order: neighbours
        // share a chunk, and the outbox is keyed by the same numbers.
        let (from, to) = (codec::micros(since), codec::micros(until));
        let mut seqs = numbers_received(&mut *snap.kv, &self.shared, from, to)?;
        seqs.sort_unstable();
        let (Some(&first), Some(&last)) = (seqs.first(), seqs.last()) else {
            return Ok(());
        };

        // Replies that are no longer fresh, from the first message on: those with details of
        // their own go out now (before any message), the others' states are kept for their
        // messages. Ids are message numbers, so both lists come sorted.
        let mut states: Vec<(u64, OutboxRec)> = Vec::new();
        let mut start = key::id(first).to_vec();
        loop {
            let page = snap.range(Space::Outbox, &start, None, PAGE)?;
            for (k, v) in &page {
                let id = key::tail(k).ok_or_else(|| self.shared.corrupt(k, "short key"))?;
                let rec: OutboxRec = postcard::from_bytes(v)
                    .map_err(|e| self.shared.corrupt(format!("outbox {id}").as_bytes(), e))?;
                if rec.detail.is_some() {
                    let entry = snap.decode_outbox(id, &rec)?;
                    visit(ReportItem::Reply(entry));
                }
                if with_replies && id <= last {
                    states.push((id, rec));
                }
            }
            match page.last().and_then(|(k, _)| key::successor(k)) {
                Some(next) if page.len() == PAGE => start = next,
                _ => break,
            }
        }
        // Fresh replies are only a pending key.
        let mut pending: Vec<u64> = Vec::new();
        if with_replies {
            snap.kv.scan_each(
                Space::Pending,
                &key::id(first),
                Some(&key::id(last.saturating_add(1))),
                &mut |k, _| {
                    pending.push(key::tail(k).ok_or_else(|| self.shared.corrupt(k, "short key"))?);
                    Ok(())
                },
            )?;
        }

        let mut cache = codec::SymbolCache::default();
        let (mut states, mut pending) = (states.iter().peekable(), pending.iter().peekable());
        // The chunks in one range, read in place; symbols the shared table lacks (none, once
        // the store is open) are read on a view of their own, since the range holds this one.
        let mut symbols = self.snapshot()?;
        let shared = &*self.shared;
        let mut wanted = seqs.iter().copied().peekable();
        let mut slots = Vec::new();
        snap.kv.scan_each(
            Space::Messages,
            &key::id(codec::chunk_of(first)),
            Some(&key::id(codec::chunk_of(last) + 1)),
            &mut |k, bytes| {
                let number = key::tail(k).ok_or_else(|| shared.corrupt(k, "short key"))?;
                // Numbers whose chunk is gone (deleted messages) are passed over.
                while wanted
                    .next_if(|seq| codec::chunk_of(*seq) < number)
                    .is_some()
                {}
                if wanted
                    .peek()
                    .is_none_or(|seq| codec::chunk_of(*seq) != number)
                {
                    return Ok(());
                }
                Chunk::slot_ranges(bytes, &mut slots)
                    .map_err(|e| shared.corrupt_seq(number * codec::CHUNK_SLOTS, e))?;
                while let Some(seq) = wanted.next_if(|seq| codec::chunk_of(*seq) == number) {
                    let Some(slot) = slots
                        .get(codec::slot_of(seq))
                        .filter(|r| !r.is_empty())
                        .and_then(|r| bytes.get(r.clone()))
                    else {
                        continue;
                    };
                    let rec: codec::BriefRec<'_> =
                        postcard::from_bytes(slot).map_err(|e| shared.corrupt_seq(seq, e))?;
                    while states.next_if(|(id, _)| *id < seq).is_some() {}
                    while pending.next_if(|id| **id < seq).is_some() {}
                    let state = states.next_if(|(id, _)| *id == seq).map(|(_, r)| r);
                    let fresh = pending.next_if(|id| **id == seq).is_some();
                    let reply = match (with_replies && rec.decision.reply.is_some(), state) {
                        (false, _) => None,
                        // Went out above, with its own details.
                        (true, Some(r)) if r.detail.is_some() => None,
                        (true, Some(r)) => Some(match (r.status, r.sent_at) {
                            (codec::OUTBOX_PENDING, _) => OutboxStatus::Pending,
                            (codec::OUTBOX_SENT, Some(at)) => OutboxStatus::Sent {
                                at: codec::from_micros(at)
                                    .map_err(|e| shared.corrupt_seq(seq, e))?,
                            },
                            (codec::OUTBOX_DEAD, _) => OutboxStatus::Dead,
                            (code, _) => {
                                return Err(
                                    shared.corrupt_seq(seq, format!("bad outbox status {code}"))
                                );
                            }
                        }),
                        (true, None) => fresh.then_some(OutboxStatus::Pending),
                    };
                    rec.load_symbols(&mut cache, &mut Resolver(&mut symbols))?;
                    let brief = rec
                        .brief(seq, &cache, reply)
                        .map_err(|e| shared.corrupt_seq(seq, e))?;
                    visit(ReportItem::Message(brief));
                }
                Ok(())
            },
        )
    }

    fn queue_reply(&self, reply: NewReply) -> Result<OutboxEntry, StoreError> {
        let NewReply {
            channel,
            conversation,
            in_reply_to,
            mut text,
            actor,
            now,
        } = reply;
        if let Some(redactor) = &self.redactor {
            text = redactor.redact(&text).into_owned();
        }
        self.write(move |tx| {
            let conv_key = key::conv(channel, &conversation);
            let mut conv: ConvRec = tx
                .load(&conv_key)?
                .ok_or_else(|| missing_conversation(channel, &conversation))?;
            // An agent's reply takes a number from the message sequence (an empty slot), so
            // outbox ids stay unique without a counter of their own. The text stays inline: it
            // is a person's words, which `forget` must be able to erase.
            let id = tx.append_message(&[])?;
            tx.put_outbox(
                id,
                &OutboxRec {
                    channel: codec::channel_code(channel),
                    detail: Some(OutboxDetail {
                        conversation: conversation.clone(),
                        in_reply_to: in_reply_to.clone(),
                        text: Text::Inline(text.clone()),
                        created_at: codec::micros(now),
                    }),
                    ..OutboxRec::default()
                },
            )?;
            conv.replies.push(id);
            tx.put_rec(&conv_key, &conv)?;
            tx.audit(audit(
                &actor,
                "outbox.reply",
                format!("conversation {channel}/{conversation}"),
                format!("outbox {id}"),
                now,
            ))?;
            Ok(OutboxEntry {
                id,
                channel,
                conversation,
                in_reply_to,
                text,
                attempts: 0,
                last_error: None,
                status: super::OutboxStatus::Pending,
                created_at: now,
                next_attempt_at: now,
            })
        })
    }

    fn append_audit(&self, entry: NewAudit) -> Result<u64, StoreError> {
        self.write(move |tx| tx.audit(entry))
    }

    fn audit_log(&self, after: Option<u64>, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        let start = match after {
            Some(id) => key::audit(id.saturating_add(1)),
            None => vec![key::AUDIT],
        };
        let mut snap = self.snapshot()?;
        snap.range(Space::Records, &start, Some(&[key::AUDIT + 1]), limit)?
            .into_iter()
            .map(|(k, v)| postcard::from_bytes(&v).map_err(|e| self.shared.corrupt(&k, e)))
            .collect()
    }

    fn forget_author(
        &self,
        author: &str,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<ForgetReport, StoreError> {
        let author = author.to_owned();
        let actor = actor.to_owned();
        self.write(move |tx| {
            let mut report = PurgeReport::default();
            let prefix = key::author_prefix(&author);
            let mut conversations = Vec::new();
            for k in tx.keys_under(&prefix)? {
                let (code, conversation) = key::parse_author(&k, prefix.len())
                    .ok_or_else(|| tx.shared.corrupt(&k, "bad author key"))?;
                let channel = codec::channel_from(code).map_err(|e| tx.shared.corrupt(&k, e))?;
                conversations.push((channel, conversation));
            }
            for (channel, conversation) in conversations {
                let conv_key = key::conv(channel, &conversation);
                let Some(conv) = tx.load::<ConvRec>(&conv_key)? else {
                    continue;
                };
                if conv.participants.iter().all(|p| *p == author) {
                    // Theirs alone: nothing in it belongs to anybody else. Pending replies to
                    // them are dropped too: they asked to be forgotten.
                    tx.delete_conversation(channel, &conversation, true, &mut report)?;
                    continue;
                }
                let mut mine = Vec::new();
                for seq in tx.conv_seqs(&conv)? {
                    if let Some(rec) = tx.message_rec(seq)?
                        && rec.author == author
                    {
                        mine.push((seq, rec));
                    }
                }
                for (seq, rec) in &mine {
                    tx.delete_message(*seq, rec, i64::MIN)?;
                    report.messages += 1;
                }
                let mut conv: ConvRec = tx
                    .load(&conv_key)?
                    .ok_or_else(|| missing_conversation(channel, &conversation))?;
                conv.participants.retain(|p| *p != author);
                tx.put_rec(&conv_key, &conv)?;
                tx.delete(
                    Space::Records,
                    &key::author(&author, channel, &conversation),
                );
            }
            let digest = Sha256::digest(author.as_bytes());
            let hash: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
            tx.audit(audit(
                &actor,
                "privacy.forget",
                format!("author sha256:{hash}"),
                format!(
                    "erased {} messages, {} conversations, {} escalations, {} outbox entries",
                    report.messages, report.conversations, report.escalations, report.outbox
                ),
                now,
            ))?;
            Ok(ForgetReport {
                messages: report.messages,
                conversations: report.conversations,
                escalations: report.escalations,
                outbox: report.outbox,
            })
        })
    }

    fn purge_before(
        &self,
        cutoff: DateTime<Utc>,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<PurgeReport, StoreError> {
        // In chunks, each its own transaction, so a large purge never holds up intake for long
        // and never builds one huge commit. A crash halfway leaves the rest for the next run.
        const CHUNK: usize = 1000;
        let cutoff_micros = codec::micros(cutoff);
        let mut total = PurgeReport::default();
        loop {
            let report = self.write(move |tx| {
                let mut report = PurgeReport::default();
                let end = key::time(cutoff_micros, 0);
                let old = tx.range(Space::Time, &[0; 16], Some(&end), CHUNK)?;
                let mut recs = Vec::with_capacity(old.len());
                for (k, _) in &old {
                    let seq = key::tail(k).ok_or_else(|| tx.shared.corrupt(k, "short key"))?;
                    match tx.message_rec(seq)? {
                        Some(rec) => recs.push((seq, rec)),
                        // An index entry without its message: drop it, or it would be met again.
                        None => tx.delete(Space::Time, k),
                    }
                }
                for (seq, rec) in &recs {
                    if tx.delete_message(*seq, rec, cutoff_micros)? {
                        report.outbox += 1;
                    }
                    report.messages += 1;
                }
                Ok((report, old.len()))
            })?;
            total.messages += report.0.messages;
            total.outbox += report.0.outbox;
            if report.1 < CHUNK {
                break;
            }
        }
        // Conversations idle since the cutoff, read page by page from a snapshot and re-checked
        // inside the transaction that deletes them.
        let mut from = vec![key::CONV];
        let end = [key::CONV + 1];
        loop {
            let page = self
                .snapshot()?
                .range(Space::Records, &from, Some(&end), CHUNK)?;
            let mut stale = Vec::new();
            for (k, v) in &page {
                let conv: ConvRec =
                    postcard::from_bytes(v).map_err(|e| self.shared.corrupt(k, e))?;
                if conv.last_activity < cutoff_micros && conv.open_escalation.is_none() {
                    let (code, id) =
                        key::parse_conv(k).ok_or_else(|| self.shared.corrupt(k, "bad key"))?;
                    let channel =
                        codec::channel_from(code).map_err(|e| self.shared.corrupt(k, e))?;
                    stale.push((channel, id));
                }
            }
            if !stale.is_empty() {
                let report = self.write(move |tx| {
                    let mut report = PurgeReport::default();
                    let mut targets = Vec::new();
                    for (channel, id) in stale {
                        let conv: Option<ConvRec> = tx.conv(channel, &id)?;
                        if conv.is_some_and(|c| {
                            c.last_activity < cutoff_micros && c.open_escalation.is_none()
                        }) {
                            targets.push((channel, id));
                        }
                    }
                    for (channel, id) in targets {
                        tx.delete_conversation(channel, &id, false, &mut report)?;
                    }
                    Ok(report)
                })?;
                total.conversations += report.conversations;
                total.escalations += report.escalations;
                total.outbox += report.outbox;
                total.messages += report.messages;
            }
            match page.last() {
                Some((k, _)) if page.len() == CHUNK => from = key::after(k),
                _ => break,
            }
        }
        // Finished replies of conversations that are still around. Ids are message numbers, so
        // neighbouring entries read neighbouring chunks.
        let mut start = key::id(0).to_vec();
        loop {
            let mut snap = self.snapshot()?;
            let page = snap.range(Space::Outbox, &start, None, CHUNK)?;
            let mut old = Vec::new();
            for (k, v) in &page {
                let id = key::tail(k).ok_or_else(|| self.shared.corrupt(k, "short key"))?;
                let rec: OutboxRec = postcard::from_bytes(v)
                    .map_err(|e| self.shared.corrupt(format!("outbox {id}").as_bytes(), e))?;
                if rec.status == codec::OUTBOX_PENDING {
                    continue;
                }
                let created_at = match &rec.detail {
                    Some(d) => Some(d.created_at),
                    None => snap.message_rec(id)?.map(|m| m.stored_at()),
                };
                if created_at.is_some_and(|t| t < cutoff_micros) {
                    old.push(id);
                }
            }
            drop(snap);
            if !old.is_empty() {
                total.outbox += self.write(move |tx| {
                    let mut n = 0;
                    for id in old {
                        if let Some((_, false)) = tx.outbox_rec(id)? {
                            tx.delete(Space::Outbox, &key::id(id));
                            n += 1;
                        }
                    }
                    Ok(n)
                })?;
            }
            match page.last().and_then(|(k, _)| key::successor(k)) {
                Some(next) if page.len() == CHUNK => start = next,
                _ => break,
            }
        }
        let details = format!(
            "retention: deleted {} messages, {} conversations, {} escalations, {} outbox entries from before {}",
            total.messages,
            total.conversations,
            total.escalations,
            total.outbox,
            cutoff.to_rfc3339()
        );
        self.append_audit(audit(
            actor,
            "privacy.retention",
            "store".into(),
            details,
            now,
        ))?;
        Ok(total)
    }

    fn save_rulebook_version(
        &self,
        version: &str,
        files: &[RulebookFile],
        activated_by: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let version = version.to_owned();
        let record = codec::VersionRec {
            files: files
                .iter()
                .map(|f| (f.role.clone(), f.path.clone(), f.text.clone()))
                .collect(),
        };
        let actor = activated_by.to_owned();
        self.write(move |tx| {
            let k = key::version(&version);
            let new = tx.read(Space::Records, &k)?.is_none();
            if new {
                tx.put_rec(&k, &record)?;
            }
            let n = tx.counters.next_activation;
            tx.counters.next_activation += 1;
            tx.put_rec(
                &key::activation(n),
                &codec::ActivationRec {
                    version: version.clone(),
                    by: actor.clone(),
                    at: codec::micros(at),
                },
            )?;
            Ok(new)
        })
    }

    fn rulebook_version(&self, version: &str) -> Result<Option<Vec<RulebookFile>>, StoreError> {
        let record: Option<codec::VersionRec> = self.snapshot()?.load(&key::version(version))?;
        Ok(record.map(|r| {
            r.files
                .into_iter()
                .map(|(role, path, text)| RulebookFile { role, path, text })
                .collect()
        }))
    }

    fn rulebook_versions(&self) -> Result<Vec<RulebookVersion>, StoreError> {
        let mut snap = self.snapshot()?;
        let prefix = [key::ACTIVATION];
        let end = key::prefix_end(&prefix);
        let mut start = prefix.to_vec();
        let mut versions: Vec<RulebookVersion> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        loop {
            let page = snap.range(Space::Records, &start, Some(&end), 1024)?;
            for (k, v) in &page {
                let rec: codec::ActivationRec =
                    postcard::from_bytes(v).map_err(|e| self.shared.corrupt(k, e))?;
                let activation = Activation {
                    at: codec::from_micros(rec.at).map_err(|e| self.shared.corrupt(k, e))?,
                    by: rec.by,
                };
                match index.get(&rec.version) {
                    Some(i) => versions[*i].activations.push(activation),
                    None => {
                        index.insert(rec.version.clone(), versions.len());
                        versions.push(RulebookVersion {
                            version: rec.version,
                            activations: vec![activation],
                        });
                    }
                }
            }
            match page.last() {
                Some((k, _)) if page.len() == 1024 => start = key::after(k),
                _ => break,
            }
        }
        Ok(versions)
    }

    fn crisis_switch(&self) -> Result<Option<bool>, StoreError> {
        let switch: Option<Option<bool>> = self.snapshot()?.load(&key::meta(CRISIS_SWITCH))?;
        Ok(switch.flatten())
    }

    fn set_crisis_switch(
        &self,
        on: Option<bool>,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let (subject, details) = match on {
            Some(true) => ("on", "crisis mode is now on"),
            Some(false) => ("off", "crisis mode is now off"),
            None => ("rulebook", "crisis mode follows the rulebook"),
        };
        let entry = audit(
            actor,
            "crisis.switch",
            subject.to_owned(),
            details.to_owned(),
            now,
        );
        self.write(move |tx| {
            tx.put_rec(&key::meta(CRISIS_SWITCH), &on)?;
            tx.audit(entry)?;
            Ok(())
        })
    }

    fn put_user(
        &self,
        user: super::User,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<super::User, StoreError> {
        self.inbox_put_user(user, actor, now)
    }

    fn user(&self, login: &str) -> Result<Option<super::User>, StoreError> {
        self.inbox_user(login)
    }

    fn users(&self) -> Result<Vec<super::User>, StoreError> {
        self.inbox_users()
    }

    fn add_api_token(
        &self,
        login: &str,
        digest: [u8; 32],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.inbox_add_api_token(login, digest, now)
    }

    fn user_by_token(&self, digest: [u8; 32]) -> Result<Option<super::User>, StoreError> {
        self.inbox_user_by_token(digest)
    }

    fn revoke_api_tokens(
        &self,
        login: &str,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        self.inbox_revoke_api_tokens(login, actor, now)
    }

    fn remove_user(
        &self,
        login: &str,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.inbox_remove_user(login, actor, now)
    }

    fn escalation_work(&self, id: u64) -> Result<super::EscalationWork, StoreError> {
        self.inbox_escalation_work(id)
    }

    fn add_escalation_note(
        &self,
        id: u64,
        author: &str,
        text: &str,
        now: DateTime<Utc>,
    ) -> Result<super::EscalationWork, StoreError> {
        self.inbox_add_note(id, author, text, now)
    }

    fn reply_to_escalation(
        &self,
        id: u64,
        author: &str,
        text: &str,
        now: DateTime<Utc>,
    ) -> Result<(Escalation, OutboxEntry), StoreError> {
        self.inbox_reply(id, author, text, now)
    }

    fn reassign_escalation(
        &self,
        id: u64,
        team: &str,
        sla_deadline: Option<DateTime<Utc>>,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Escalation, StoreError> {
        self.inbox_reassign(id, team, sla_deadline, actor, now)
    }

    fn record_sla_breach(
        &self,
        breach: super::SlaBreach,
    ) -> Result<Option<Escalation>, StoreError> {
        self.inbox_breach(breach)
    }

    fn stats(&self) -> Result<StoreStats, StoreError> {
        let mut snap = self.snapshot()?;
        let counters: Counters = snap.load(&key::meta("counters"))?.unwrap_or_default();
        Ok(StoreStats {
            messages: counters.messages,
            open_escalations: snap.ids_under(&[key::ESC_OPEN])?.len() as u64,
            pending_outbox: snap.ids_in(Space::Pending)?.len() as u64,
            size_on_disk: self.shared.kv.size_on_disk()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two deliveries whose dedupe hashes collide (forced: SHA-256 gives no real pair) are
    /// still told apart by the stored channel and id, and deleting one keeps the other.
    #[test]
    fn colliding_dedupe_hashes_are_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("webcare.redb");
        let kv: Arc<dyn Kv> = Arc::new(crate::store::redb::RedbKv::open(&path, None).unwrap());
        let store = Embedded::new(kv, Backend::Redb, path, None).unwrap();
        let rulebook = crate::Rulebook::embedded().unwrap();
        let at = chrono::DateTime::from_timestamp(1_795_000_000, 0).unwrap();
        let accept = |id: &str, author: &str| {
            let mut m = crate::Inbound::from_text(id, ChannelKind::Telegram, "Hallo", at);
            m.author = author.into();
            m.conversation = author.into();
            crate::Intake::new(&rulebook, &store).accept(m, at).unwrap()
        };
        let a = accept("a", "ann");
        let b = accept("b", "bob");
        // Put b at a's hash and a after it, as if their hashes had collided. (SHA-256 gives no
        // real pair to test with.)
        let hash_a = codec::dedupe_hash(ChannelKind::Telegram, "a");
        let hash_b = codec::dedupe_hash(ChannelKind::Telegram, "b");
        let (seq_a, seq_b) = (a.seq, b.seq);
        let at_a = u64::from_be_bytes(hash_a);
        store
            .write(move |tx| {
                tx.delete(Space::Dedupe, &hash_b);
                tx.put(Space::Dedupe, &key::id(at_a), seq_b.to_be_bytes().to_vec());
                tx.put(
                    Space::Dedupe,
                    &key::id(at_a.wrapping_add(1)),
                    seq_a.to_be_bytes().to_vec(),
                );
                Ok(())
            })
            .unwrap();
        let found = |id: &str| store.message(ChannelKind::Telegram, id).unwrap();
        assert_eq!(found("a").map(|m| m.seq), Some(seq_a));
        assert!(accept("a", "ann").duplicate);

        // Deleting b leaves a mark, so a is still found behind it; a new delivery with the
        // same hash goes to the mark.
        let free = store
            .write(move |tx| {
                tx.forget_delivery(hash_a, seq_b)?;
                Ok(tx.find_message(hash_a, ChannelKind::Telegram, "new")?.free)
            })
            .unwrap();
        assert_eq!(free, key::id(at_a));
        assert_eq!(found("a").map(|m| m.seq), Some(seq_a));
        let mut snap = store.snapshot().unwrap();
        assert_eq!(snap.dedupe_at(&key::id(at_a)).unwrap(), Some(None));
        drop(snap);
        store.forget_author("ann", "dpo", at).unwrap();
        assert!(found("a").is_none());
        let mut snap = store.snapshot().unwrap();
        assert_eq!(snap.dedupe_at(&key::id(at_a + 1)).unwrap(), None);
    }

    #[test]
    fn time_keys_sort_by_time_including_before_1970() {
        let a = key::time(-5, 9);
        let b = key::time(3, 1);
        let c = key::time(3, 2);
        assert!(a < b && b < c);
    }

    #[test]
    fn prefix_end_is_past_every_key_with_the_prefix() {
        assert_eq!(key::prefix_end(&[1, 2]), vec![1, 3]);
        assert_eq!(key::prefix_end(&[1, 255]), vec![2]);
        let p = key::author_prefix("ann");
        assert!(
            key::author("ann", crate::ChannelKind::Telegram, "\u{10FFFF}\u{10FFFF}")
                < key::prefix_end(&p)
        );
        // A longer author with the same start is not under the prefix: lengths differ.
        assert!(!key::author_prefix("anne").starts_with(&p));
    }

    #[test]
    fn successors_carry_and_end() {
        assert_eq!(key::successor(&[0, 255]), Some(vec![1, 0]));
        assert_eq!(key::successor(&[255, 255]), None);
    }

    #[test]
    fn keys_parse_back() {
        let k = key::conv(crate::ChannelKind::Discord, "chat-1");
        assert_eq!(key::parse_conv(&k).map(|(_, id)| id), Some("chat-1".into()));
        let p = key::author_prefix("ann");
        let k = key::author("ann", crate::ChannelKind::Discord, "chat-1");
        assert_eq!(
            key::parse_author(&k, p.len()).map(|(_, id)| id),
            Some("chat-1".into())
        );
    }
}
