//! The dedupe entries of the newest deliveries, kept in memory and written to the dedupe table
//! in bulk. Dedupe keys are hashes, so a commit's new keys land all over the table, and a
//! commit rewrites every B-tree leaf it touches: once the table had more leaves than a commit
//! had messages, each message cost a 4 KB page written, and a file of a million messages wrote
//! ten times the store's size. So a commit writes the messages and leaves their dedupe entries
//! here, where the writer and every reader look first, until a quarter of the table's size has
//! gathered; then one transaction writes them all ([`Deferred::write_out`]), touching each leaf
//! once for many entries.
//!
//! Nothing is lost in a crash: every delivery numbered from the one recorded with the last
//! bulk write ([`INDEXED`]) on is in its message chunk, and opening the store puts their
//! entries back ([`rebuild`]). A commit that fails puts them back the same way, since it may
//! have reached the disk.
//!
//! Entries live in generations. A bulk write starts a new one, and the written generation
//! stays reachable from every snapshot taken before, which may not show the bulk write: a
//! snapshot reads its own generation and all after it.

use std::sync::{Arc, Mutex, OnceLock, RwLock};

use rustc_hash::FxHashMap;

use super::*;

/// The meta record (`z` name) holding the first message number whose dedupe entry may not be
/// in the dedupe table yet: every delivery before it is.
pub(super) const INDEXED: &str = "dedupe";

/// Entries gathered before a bulk write: a quarter of the messages stored, so a bulk write
/// rewrites each leaf for several entries, at least `MIN` and at most `MAX`, which bounds the
/// memory (about 32 MB) and what opening after a crash reads again.
const MIN: u64 = if cfg!(test) { 4 } else { 65_536 };
const MAX: u64 = 1 << 20;

/// Dedupe keys (as numbers) and the message each holds, of one generation.
#[derive(Default)]
pub(super) struct Generation {
    entries: RwLock<FxHashMap<u64, u64>>,
    /// The generation after this one, set when this one was written to the dedupe table.
    next: OnceLock<Arc<Generation>>,
}

impl Generation {
    /// The message at dedupe key `slot`, in this generation or a later one; the latest wins.
    pub(super) fn find(&self, slot: u64) -> Option<u64> {
        if let Some(next) = self.next.get()
            && let Some(seq) = next.find(slot)
        {
            return Some(seq);
        }
        self.get(slot)
    }

    /// The message at dedupe key `slot` in this generation alone.
    pub(super) fn get(&self, slot: u64) -> Option<u64> {
        read(&self.entries).get(&slot).copied()
    }

    pub(super) fn len(&self) -> usize {
        read(&self.entries).len()
    }
}

fn read(
    entries: &RwLock<FxHashMap<u64, u64>>,
) -> std::sync::RwLockReadGuard<'_, FxHashMap<u64, u64>> {
    // A panic while the writer held the lock left a map that is still whole: entries are only
    // inserted and removed.
    entries
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
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

    /// After a commit: its new dedupe entries join the current generation, and the keys it
    /// freed or marked (written to the table as before) leave it.
    pub(super) fn apply(&self, added: &[(u64, u64)], removed: &[u64]) {
        let generation = self.current();
        let mut entries = generation
            .entries
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for slot in removed {
            entries.remove(slot);
        }
        entries.extend(added.iter().copied());
    }

    /// Replaces the current generation's entries with what the store holds ([`rebuild`]).
    pub(super) fn reload(&self, shared: &Shared) -> Result<(), StoreError> {
        let entries = rebuild(shared)?;
        let generation = self.current();
        *generation
            .entries
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = entries;
        Ok(())
    }

    /// Whether enough entries have gathered for a bulk write, with `messages` stored.
    pub(super) fn due(&self, messages: u64) -> bool {
        let at = (messages / 4).clamp(MIN, MAX);
        self.current().len() as u64 >= at
    }

    /// Writes the current generation's entries to the dedupe table in one transaction, with
    /// `next_seq` as the new [`INDEXED`], and starts a new generation. On failure nothing
    /// changes: the entries stay here and are tried again later.
    pub(super) fn write_out(&self, shared: &Shared, next_seq: u64) -> Result<(), StoreError> {
        let generation = self.current();
        let mut sorted: Vec<(u64, u64)> = read(&generation.entries)
            .iter()
            .map(|(&slot, &seq)| (slot, seq))
            .collect();
        if sorted.is_empty() {
            return Ok(());
        }
        sorted.sort_unstable();
        shared.kv.transact(&mut |txn| {
            txn.put(Space::Records, &key::meta(INDEXED), &next_seq.to_be_bytes())?;
            for (slot, seq) in &sorted {
                txn.put(Space::Dedupe, &key::id(*slot), &seq.to_be_bytes())?;
            }
            Ok(())
        })?;
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

/// The dedupe entries of the deliveries from [`INDEXED`] on, read from their message chunks,
/// each at the key a new delivery with its hash would take (as intake placed it).
pub(super) fn rebuild(shared: &Shared) -> Result<FxHashMap<u64, u64>, StoreError> {
    let generation = Arc::new(Generation::default());
    let mut snap = Snapshot::with_generation(shared, Arc::clone(&generation))?;
    let indexed_key = key::meta(INDEXED);
    let from = match snap.read(Space::Records, &indexed_key)? {
        Some(bytes) => u64::from_be_bytes(
            bytes
                .try_into()
                .map_err(|_| shared.corrupt(&indexed_key, "bad dedupe mark"))?,
        ),
        None => return Err(shared.corrupt(&indexed_key, "missing dedupe mark")),
    };
    // The deliveries first, since the lookups below read the snapshot the scan holds.
    let mut deliveries: Vec<(u64, u8, String)> = Vec::new();
    let mut ranges = Vec::new();
    snap.kv.scan_each(
        Space::Messages,
        &key::id(codec::chunk_of(from)),
        None,
        &mut |k, bytes| {
            let number = key::tail(k).ok_or_else(|| shared.corrupt(k, "short key"))?;
            codec::Chunk::slot_ranges(bytes, &mut ranges).map_err(|e| shared.corrupt(k, e))?;
            for (slot, range) in ranges.iter().enumerate() {
                let seq = number * codec::CHUNK_SLOTS + slot as u64;
                if seq < from || range.is_empty() {
                    continue;
                }
                // A message record starts with its channel and id.
                let ((channel, id), _) =
                    postcard::take_from_bytes::<(u8, &str)>(&bytes[range.clone()])
                        .map_err(|e| shared.corrupt_seq(seq, e))?;
                deliveries.push((seq, channel, id.to_owned()));
            }
            Ok(())
        },
    )?;
    for (seq, code, id) in deliveries {
        let channel = codec::channel_from(code).map_err(|e| shared.corrupt_seq(seq, e))?;
        let found = snap.find_message(codec::dedupe_hash(channel, &id), channel, &id)?;
        if found.message.is_none() {
            generation
                .entries
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(u64::from_be_bytes(found.free), seq);
        }
    }
    drop(snap);
    let entries = std::mem::take(
        &mut *generation
            .entries
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    Ok(entries)
}
