//! Index entries kept in memory and written in bulk: the dedupe entries of the newest
//! deliveries, the index entries of the newest conversations (platform id → number), and the
//! author keys of the newest participants (author → conversation). All are keyed by what the
//! platform chose, so a commit's new keys land all over their table, and
//! a commit rewrites every B-tree leaf it touches: once a table had more leaves than a commit
//! had new keys, each key cost a 4 KB page written, and a file of a million messages wrote ten
//! times the store's size. So a commit writes the messages and the conversation records and
//! leaves these entries here, where the writer and every reader look first, until a quarter of
//! the store's message count has gathered; then one transaction writes them all
//! ([`Deferred::write_out`]), touching each leaf once for many entries.
//!
//! Nothing is lost in a crash: all are derived. Every delivery from the message number
//! recorded with the last bulk write ([`INDEXED`]) on is in its message chunk, with its author
//! and conversation, and every conversation from the recorded conversation number
//! ([`CONVERSATIONS`]) on has its record, which names its channel and id; opening the store
//! puts their entries back ([`rebuild`]). A commit that fails puts them back the same way,
//! since it may have reached the disk.
//!
//! Entries live in generations. A bulk write starts a new one, and the written generation
//! stays reachable from every snapshot taken before, which may not show the bulk write: a
//! snapshot reads its own generation and all after it.

use std::collections::BTreeSet;
use std::ops::Bound;
use std::sync::{Arc, Mutex, OnceLock, RwLock, RwLockReadGuard};

use rustc_hash::FxHashMap;

use super::*;

/// The meta record (`z` name) holding the first message number whose dedupe entry may not be
/// in the dedupe table yet: every delivery before it is.
pub(super) const INDEXED: &str = "dedupe";
/// The meta record holding the first conversation number whose index entry (`c`) may not be
/// in the records table yet.
pub(super) const CONVERSATIONS: &str = "conversations";

/// Entries gathered before a bulk write: a quarter of the messages stored, so a bulk write
/// rewrites each leaf for several entries, at least `MIN` and at most `MAX`, which bounds the
/// memory (about 32 MB of dedupe entries) and what opening after a crash reads again.
const MIN: u64 = if cfg!(test) { 8 } else { 65_536 };
const MAX: u64 = 1 << 20;

/// An entry that waits here rather than in its table: which one a key is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Entry<'k> {
    /// A dedupe key, as a number.
    Dedupe(u64),
    /// A conversation's index key (`c` channel id).
    Conversation(&'k [u8]),
    /// An author key (`a` author channel conversation), which has no value.
    Author(&'k [u8]),
}

impl<'k> Entry<'k> {
    /// The entry `key` of `space` is, when it is one that waits here.
    pub(super) fn of(space: Space, key: &'k [u8]) -> Option<Self> {
        match space {
            Space::Dedupe => key
                .try_into()
                .ok()
                .map(|k| Entry::Dedupe(u64::from_be_bytes(k))),
            Space::Records => match key.first() {
                Some(&key::CONV) => Some(Entry::Conversation(key)),
                Some(&key::AUTHOR) => Some(Entry::Author(key)),
                _ => None,
            },
            _ => None,
        }
    }

    pub(super) fn owned(&self) -> Owned {
        match self {
            Entry::Dedupe(slot) => Owned::Dedupe(*slot),
            Entry::Conversation(k) => Owned::Conversation(k.to_vec()),
            Entry::Author(k) => Owned::Author(k.to_vec()),
        }
    }

    /// What a commit that writes `value` to this key leaves waiting here; `None` when the
    /// write goes to the table (a delete, or a dedupe key marked deleted).
    pub(super) fn kept(&self, value: Option<&[u8]>) -> Option<Kept> {
        let number = || {
            value
                .and_then(|v| <[u8; 8]>::try_from(v).ok())
                .map(u64::from_be_bytes)
        };
        match self {
            Entry::Dedupe(slot) => number()
                .filter(|seq| *seq != DEDUPE_DELETED)
                .map(|seq| Kept::Dedupe(*slot, seq)),
            Entry::Conversation(k) => number().map(|n| Kept::Conversation(k.to_vec(), n)),
            Entry::Author(k) => value.map(|_| Kept::Author(k.to_vec())),
        }
    }
}

/// An [`Entry`] that owns its key, for the writer's list of a commit's deletes.
#[derive(Debug, Clone)]
pub(super) enum Owned {
    Dedupe(u64),
    Conversation(Vec<u8>),
    Author(Vec<u8>),
}

/// An entry a commit wrote, with its value, to wait here.
#[derive(Debug, Clone)]
pub(super) enum Kept {
    Dedupe(u64, u64),
    Conversation(Vec<u8>, u64),
    Author(Vec<u8>),
}

/// The entries of one generation: dedupe key → message, conversation index key → number,
/// and author keys, in order for the range reads that list an author's conversations.
#[derive(Default)]
struct Entries {
    dedupe: FxHashMap<u64, u64>,
    conversations: FxHashMap<Vec<u8>, u64>,
    authors: BTreeSet<Vec<u8>>,
}

impl Entries {
    /// The value of `entry` as its table holds it.
    fn get(&self, entry: &Entry<'_>) -> Option<Vec<u8>> {
        match entry {
            Entry::Dedupe(slot) => self.dedupe.get(slot).map(|v| v.to_be_bytes().to_vec()),
            Entry::Conversation(k) => self.conversations.get(*k).map(|v| v.to_be_bytes().to_vec()),
            Entry::Author(k) => self.authors.contains(*k).then(Vec::new),
        }
    }

    fn insert(&mut self, kept: Kept) {
        match kept {
            Kept::Dedupe(slot, seq) => {
                self.dedupe.insert(slot, seq);
            }
            Kept::Conversation(k, number) => {
                self.conversations.insert(k, number);
            }
            Kept::Author(k) => {
                self.authors.insert(k);
            }
        }
    }

    fn remove(&mut self, entry: &Owned) {
        match entry {
            Owned::Dedupe(slot) => {
                self.dedupe.remove(slot);
            }
            Owned::Conversation(k) => {
                self.conversations.remove(k);
            }
            Owned::Author(k) => {
                self.authors.remove(k);
            }
        }
    }

    fn len(&self) -> usize {
        self.dedupe.len() + self.conversations.len() + self.authors.len()
    }
}

#[derive(Default)]
pub(super) struct Generation {
    entries: RwLock<Entries>,
    /// The generation after this one, set when this one was written to its tables.
    next: OnceLock<Arc<Generation>>,
}

impl Generation {
    /// The value of `entry` in this generation or a later one; the latest wins.
    pub(super) fn find(&self, entry: &Entry<'_>) -> Option<Vec<u8>> {
        if let Some(next) = self.next.get()
            && let Some(value) = next.find(entry)
        {
            return Some(value);
        }
        self.get(entry)
    }

    /// The value of `entry` in this generation alone.
    pub(super) fn get(&self, entry: &Entry<'_>) -> Option<Vec<u8>> {
        self.read().get(entry)
    }

    /// The waiting author keys in `start..end` (no `end`: to the end), in this generation
    /// and, with `later`, the ones after it.
    pub(super) fn authors_in(&self, start: &[u8], end: Option<&[u8]>, later: bool) -> Vec<Vec<u8>> {
        let upper = end.map_or(Bound::Unbounded, Bound::Excluded);
        let mut keys: Vec<Vec<u8>> = self
            .read()
            .authors
            .range::<[u8], _>((Bound::Included(start), upper))
            .cloned()
            .collect();
        if later && let Some(next) = self.next.get() {
            keys.extend(next.authors_in(start, end, true));
            keys.sort_unstable();
            keys.dedup();
        }
        keys
    }

    pub(super) fn len(&self) -> usize {
        self.read().len()
    }

    fn read(&self) -> RwLockReadGuard<'_, Entries> {
        // A panic while the writer held the lock left maps that are still whole: entries are
        // only inserted and removed.
        self.entries
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Entries> {
        self.entries
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The generation readers start from, shared by the writer and the readers.
#[derive(Default)]
pub(super) struct Deferred {
    current: Mutex<Arc<Generation>>,
}

impl Deferred {
    /// The generation a new snapshot reads; taken before the snapshot, so the snapshot shows
    /// at least every bulk write this generation's entries are not in.
    pub(super) fn current(&self) -> Arc<Generation> {
        Arc::clone(
            &self
                .current
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// After a commit: its new entries join the current generation, and the keys it deleted
    /// or marked (written to their tables as before) leave it.
    pub(super) fn apply(&self, added: Vec<Kept>, removed: &[Owned]) {
        let generation = self.current();
        let mut entries = generation.write();
        for entry in removed {
            entries.remove(entry);
        }
        for kept in added {
            entries.insert(kept);
        }
    }

    /// Replaces the current generation's entries with what the store holds ([`rebuild`]).
    pub(super) fn reload(&self, shared: &Shared) -> Result<(), StoreError> {
        let entries = rebuild(shared)?;
        *self.current().write() = entries;
        Ok(())
    }

    /// Whether enough entries have gathered for a bulk write, with `messages` stored.
    pub(super) fn due(&self, messages: u64) -> bool {
        let at = (messages / 4).clamp(MIN, MAX);
        self.current().len() as u64 >= at
    }

    /// Writes the current generation's entries to their tables in one transaction, with the
    /// next message and conversation numbers as the new [`INDEXED`] and [`CONVERSATIONS`],
    /// and starts a new generation. On failure nothing changes: the entries stay here and are
    /// tried again later.
    pub(super) fn write_out(&self, shared: &Shared, counters: &Counters) -> Result<(), StoreError> {
        let generation = self.current();
        let (mut dedupe, mut conversations, authors) = {
            let entries = generation.read();
            let dedupe: Vec<(u64, u64)> = entries.dedupe.iter().map(|(&k, &v)| (k, v)).collect();
            let conversations: Vec<(Vec<u8>, u64)> = entries
                .conversations
                .iter()
                .map(|(k, &v)| (k.clone(), v))
                .collect();
            let authors: Vec<Vec<u8>> = entries.authors.iter().cloned().collect();
            (dedupe, conversations, authors)
        };
        if dedupe.is_empty() && conversations.is_empty() && authors.is_empty() {
            return Ok(());
        }
        dedupe.sort_unstable();
        conversations.sort_unstable();
        // Intake waits while this runs: logged, so an operator can see what the pause costs.
        let started = std::time::Instant::now();
        shared.kv.transact(&mut |txn| {
            // In space and key order: the author keys (`a`), the index (`c`), the marks
            // (`z`), then the dedupe table.
            for k in &authors {
                txn.put(Space::Records, k, &[])?;
            }
            for (k, number) in &conversations {
                txn.put(Space::Records, k, &number.to_be_bytes())?;
            }
            put_marks(txn, counters)?;
            for (slot, seq) in &dedupe {
                txn.put(Space::Dedupe, &key::id(*slot), &seq.to_be_bytes())?;
            }
            Ok(())
        })?;
        tracing::info!(
            entries = dedupe.len() + conversations.len() + authors.len(),
            ms = started.elapsed().as_millis() as u64,
            "index entries written in bulk"
        );
        let next = Arc::new(Generation::default());
        // Only the writer sets `next`, once per generation.
        let _ = generation.next.set(Arc::clone(&next));
        *self
            .current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = next;
        Ok(())
    }
}

/// The marks: the next message and conversation numbers. Written by a bulk write, when a
/// store is created, and when a format-4 store is upgraded (every entry of a format-4 store
/// is in its table).
pub(super) fn put_marks(txn: &mut dyn KvTxn, counters: &Counters) -> Result<(), StoreError> {
    txn.put(
        Space::Records,
        &key::meta(CONVERSATIONS),
        &counters.next_conversation.to_be_bytes(),
    )?;
    txn.put(
        Space::Records,
        &key::meta(INDEXED),
        &counters.next_seq.to_be_bytes(),
    )
}

/// The entries that may be missing from their tables, read back from what they are derived
/// from: the dedupe entries of the deliveries from [`INDEXED`] on, each at the key a new
/// delivery with its hash would take (as intake placed it), and the index entries of the
/// conversations from [`CONVERSATIONS`] on.
fn rebuild(shared: &Shared) -> Result<Entries, StoreError> {
    let generation = Arc::new(Generation::default());
    let mut snap = Snapshot::with_generation(shared, Arc::clone(&generation))?;
    let mark = |snap: &mut Snapshot<'_>, name: &str| -> Result<u64, StoreError> {
        let k = key::meta(name);
        match snap.read(Space::Records, &k)? {
            Some(bytes) => Ok(u64::from_be_bytes(
                bytes
                    .try_into()
                    .map_err(|_| shared.corrupt(&k, "bad mark"))?,
            )),
            None => Err(shared.corrupt(&k, "missing mark")),
        }
    };
    let from_seq = mark(&mut snap, INDEXED)?;
    let from_conversation = mark(&mut snap, CONVERSATIONS)?;

    let mut conversations = FxHashMap::default();
    snap.kv.scan_each(
        Space::Records,
        &key::conv_rec(from_conversation),
        Some(&[key::CONV_REC + 1]),
        &mut |k, bytes| {
            // A damaged record is reported where it is read; it must not keep the store shut.
            match postcard::from_bytes::<codec::ConvRec>(bytes)
                .ok()
                .and_then(|conv| Some((codec::channel_from(conv.channel).ok()?, conv)))
            {
                Some((channel, conv)) => {
                    conversations.insert(key::conv(channel, &conv.conversation), conv.number);
                }
                None => skipped(shared, &String::from_utf8_lossy(k)),
            }
            Ok(())
        },
    )?;

    // The deliveries first, since the lookups below read the snapshot the scan holds.
    let mut deliveries: Vec<(u64, ChannelKind, String)> = Vec::new();
    let mut authors = BTreeSet::new();
    let mut ranges = Vec::new();
    snap.kv.scan_each(
        Space::Messages,
        &key::id(codec::chunk_of(from_seq)),
        None,
        &mut |k, bytes| {
            let number = key::tail(k).ok_or_else(|| shared.corrupt(k, "short key"))?;
            if codec::Chunk::slot_ranges(bytes, &mut ranges).is_err() {
                skipped(shared, &format!("message chunk {number}"));
                return Ok(());
            }
            for (slot, range) in ranges.iter().enumerate() {
                let seq = number * codec::CHUNK_SLOTS + slot as u64;
                if seq < from_seq || range.is_empty() {
                    continue;
                }
                // A message record starts with its channel, id, conversation and author.
                let head =
                    postcard::take_from_bytes::<(u8, &str, &str, &str)>(&bytes[range.clone()])
                        .ok()
                        .and_then(|((code, id, conversation, author), _)| {
                            Some((codec::channel_from(code).ok()?, id, conversation, author))
                        });
                let Some((channel, id, conversation, author)) = head else {
                    skipped(shared, &format!("message {seq}"));
                    continue;
                };
                // Some of these were written before the mark already; writing one again at
                // the next bulk write changes nothing.
                authors.insert(key::author(author, channel, conversation));
                deliveries.push((seq, channel, id.to_owned()));
            }
            Ok(())
        },
    )?;
    for (seq, channel, id) in deliveries {
        let found = snap.find_message(codec::dedupe_hash(channel, &id), channel, &id)?;
        if found.message.is_none() {
            generation
                .write()
                .dedupe
                .insert(u64::from_be_bytes(found.free), seq);
        }
    }
    drop(snap);
    let mut entries = std::mem::take(&mut *generation.write());
    entries.conversations = conversations;
    entries.authors = authors;
    Ok(entries)
}

/// A page of committed entries with the waiting author keys in its range added, the first
/// `limit` in key order; a key both waiting and committed is listed once.
pub(super) fn with_authors(page: KvPairs, waiting: Vec<Vec<u8>>, limit: usize) -> KvPairs {
    if waiting.is_empty() {
        return page;
    }
    let mut merged: KvPairs = page;
    merged.extend(waiting.into_iter().map(|k| (k, Vec::new())));
    merged.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    merged.dedup_by(|a, b| a.0 == b.0);
    merged.truncate(limit);
    merged
}

/// A damaged record met while reading entries back: its entries stay missing (reading the
/// record itself reports the damage), and the store opens.
fn skipped(shared: &Shared, what: &str) {
    tracing::warn!(
        store = %shared.path.display(),
        record = what,
        "a damaged record was skipped while reading back the index entries kept in memory"
    );
}
