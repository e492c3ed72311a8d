//! The one writer thread and its transaction: group commit (every job that queued during the
//! last fsync runs in the next transaction), the ordered overlay a batch writes into, and the
//! wake-up of the callers once the batch is durable.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::ops::Bound;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::thread::Thread;

use rustc_hash::{FxHashMap, FxHasher};
use serde::Serialize;

use super::overlay::{Key, Overlay};
use super::*;
use crate::store::codec::{self, Chunk, Intern, OutboxRec};
use crate::store::{AuditEntry, NewAudit, StoreError};

/// The writer's view of one batch: the backend transaction (committed data), the overlay of
/// this batch's writes, the message chunks it touches, and the counters and symbols it adds.
pub(super) struct Tx<'a> {
    pub(super) kv: &'a mut dyn KvTxn,
    pub(super) shared: &'a Shared,
    pub(super) counters: &'a mut Counters,
    pub(super) new_symbols: &'a mut HashMap<Arc<str>, u32>,
    /// `None` is a delete. Ordered, so the batch reaches the backend sorted by key.
    pub(super) overlay: Overlay,
    /// Chunks read or changed in this batch; the changed ones are written at the end. Fx
    /// hashing: the numbers are the store's own, and every message looks its chunk up a few
    /// times.
    pub(super) chunks: FxHashMap<u64, (Chunk, bool)>,
    pub(super) writes: usize,
    /// What the last transactions wrote, for [`intake::Seen`].
    pub(super) recent: &'a Recent,
    /// The dedupe entries committed but not yet in the dedupe table ([`super::deferred`]).
    pub(super) deferred: &'a Generation,
}

/// The keys the last transactions wrote that a caller's snapshot reads for intake (dedupe keys
/// and conversation records), as hashes: so the writer can tell whether a snapshot taken a
/// few commits ago still shows them ([`intake::Seen`]). Two keys with one hash only make the
/// writer read again.
#[derive(Default)]
pub(super) struct Recent {
    /// Transactions ended so far: [`Shared::commits`] between two transactions.
    ended: u64,
    /// The watched keys of the last [`RECENT_COMMITS`] transactions, oldest first.
    written: VecDeque<Watched>,
}

/// The hashes of watched keys; already hashes, so they are used as they are: hashing them
/// again cost the writer as much as the rest of keeping [`Recent`].
pub(super) type Watched = HashSet<u64, BuildHasherDefault<AsIs>>;

/// A [`Hasher`] for keys that are hashes already ([`watched`]).
#[derive(Default)]
pub(super) struct AsIs(u64);

impl Hasher for AsIs {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used; anything else still hashes, less evenly.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// How many transactions back a snapshot may have been taken and still spare the writer its
/// reads; an older one is read again.
const RECENT_COMMITS: usize = 64;

impl Recent {
    /// Whether no transaction that ended after the first `since` wrote any of `keys`.
    pub(super) fn untouched_since(&self, since: u64, keys: &[u64]) -> bool {
        let Some(back) = self
            .ended
            .checked_sub(since)
            .and_then(|n| usize::try_from(n).ok())
        else {
            return false;
        };
        back <= self.written.len()
            && self
                .written
                .iter()
                .rev()
                .take(back)
                .all(|set| keys.iter().all(|k| !set.contains(k)))
    }

    fn end(&mut self, keys: Watched) {
        if self.written.len() == RECENT_COMMITS {
            self.written.pop_front();
        }
        self.written.push_back(keys);
        self.ended += 1;
    }
}

/// The hash [`Recent`] keeps of a key intake's snapshot reads: a dedupe key, a conversation's
/// index entry or its record; `None` for any other. Fx hashing, cheaper than the default for a
/// key hashed twice a message: a collision, chosen or not, only makes the writer read again.
pub(super) fn watched(space: Space, key: &[u8]) -> Option<u64> {
    match space {
        Space::Dedupe => key.try_into().ok().map(u64::from_be_bytes),
        Space::Records if matches!(key.first(), Some(&key::CONV | &key::CONV_REC)) => {
            let mut hasher = FxHasher::default();
            key.hash(&mut hasher);
            Some(hasher.finish())
        }
        _ => None,
    }
}

impl Reader for Tx<'_> {
    fn shared(&self) -> &Shared {
        self.shared
    }
    fn read(&mut self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        if let Some(value) = self.overlay.space(space).get(&Key::new(key)) {
            return Ok(value.clone());
        }
        if let Some(entry) = deferred::Entry::of(space, key)
            && let Some(value) = self.deferred.get(&entry)
        {
            return Ok(Some(value));
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
        let mine: Vec<(&Key, &Option<Vec<u8>>)> = self
            .overlay
            .space(space)
            .range::<[u8], _>((Bound::Included(start), upper))
            .collect();
        // Each overlay entry hides at most one committed entry: ask for that many more.
        let want = limit.saturating_add(mine.len());
        let mut committed = self.kv.scan(space, start, end, want)?;
        if space == Space::Records {
            let waiting = self.deferred.authors_in(start, end, false);
            committed = deferred::with_authors(committed, waiting, want);
        }
        let mut out = Vec::with_capacity(limit.min(committed.len() + mine.len()));
        let mut theirs = committed.into_iter().peekable();
        let mut mine = mine.into_iter().peekable();
        while out.len() < limit {
            let take_mine = match (mine.peek(), theirs.peek()) {
                (None, None) => break,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (Some((mk, _)), Some((tk, _))) => mk[..] <= tk[..],
            };
            if take_mine {
                if let Some((k, v)) = mine.next() {
                    if theirs.peek().is_some_and(|(tk, _)| tk[..] == k[..]) {
                        theirs.next();
                    }
                    if let Some(v) = v {
                        out.push((k.to_vec(), v.clone()));
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
    pub(super) fn put(&mut self, space: Space, key: &[u8], value: Vec<u8>) {
        self.writes += 1;
        self.overlay
            .space_mut(space)
            .insert(Key::new(key), Some(value));
    }

    pub(super) fn put_rec<T: Serialize>(
        &mut self,
        key: &[u8],
        value: &T,
    ) -> Result<(), StoreError> {
        let bytes = encode(value)?;
        self.put(Space::Records, key, bytes);
        Ok(())
    }

    /// Writes an outbox entry's state: in its chunk's waiting record while it waits, and its
    /// record in `outbox` unless it is fresh.
    pub(super) fn put_outbox(&mut self, id: u64, rec: &OutboxRec) -> Result<(), StoreError> {
        if rec.status == codec::OUTBOX_PENDING {
            self.set_waiting(id, Some(rec.channel))?;
            if rec.is_fresh() {
                self.delete(Space::Outbox, &key::id(id));
                return Ok(());
            }
        } else {
            self.set_waiting(id, None)?;
        }
        let bytes = encode(rec)?;
        self.put(Space::Outbox, &key::id(id), bytes);
        Ok(())
    }

    pub(super) fn delete_outbox(&mut self, id: u64) -> Result<(), StoreError> {
        self.set_waiting(id, None)?;
        self.delete(Space::Outbox, &key::id(id));
        self.delete(Space::Records, &key::receipt(id));
        Ok(())
    }

    /// Writes reply `id`'s receipt (JSON; see [`key::RECEIPT`]).
    pub(super) fn put_receipt(
        &mut self,
        id: u64,
        receipt: &crate::case::outbox::Receipt,
    ) -> Result<(), StoreError> {
        let k = key::receipt(id);
        let bytes = serde_json::to_vec(receipt).map_err(|e| self.shared.corrupt(&k, e))?;
        self.put(Space::Records, &k, bytes);
        Ok(())
    }

    pub(super) fn delete(&mut self, space: Space, key: &[u8]) {
        self.writes += 1;
        self.overlay.space_mut(space).insert(Key::new(key), None);
    }

    /// A chunk as this batch sees it, loaded on first use.
    pub(super) fn chunk(&mut self, number: u64) -> Result<&mut Chunk, StoreError> {
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

    pub(super) fn chunk_mut(&mut self, number: u64) -> Result<&mut Chunk, StoreError> {
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
    pub(super) fn append_message(&mut self, record: &[u8]) -> Result<u64, StoreError> {
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
    pub(super) fn finish(&mut self) -> Result<(), StoreError> {
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

    pub(super) fn audit(&mut self, entry: NewAudit) -> Result<u64, StoreError> {
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
pub(super) type Completion = Box<dyn FnOnce(Result<(), StoreError>, Vec<Thread>) + Send>;
/// A unit of work for the writer. It runs inside the batch transaction and must do its reads
/// before its writes: a job that fails after writing poisons the whole batch. It returns
/// whether it failed after writing, its completion, and its caller's thread.
pub(super) type Job = Box<dyn FnOnce(&mut Tx<'_>) -> (bool, Completion, Thread) + Send>;

/// Answers every job of a batch and wakes their callers as a tree: the writer wakes the first,
/// and each caller wakes two more once it has its answer. Waking is a system call per thread;
/// done by the writer for a whole batch it would hold up the next commit by as much, while the
/// callers have the time (and there are many of them).
///
/// The answers are left last job first, so a caller's children have theirs before it has its
/// own. A caller can wake before the writer unparks it (a wake-up left over from its previous
/// call): it then finds its answer at once and wakes its children, and in the first-job-first
/// order those could still have found nothing, parked again, and never been woken: the store
/// bench hung that way with 256 callers on sled.
pub(super) fn wake_all(
    done: Vec<(Completion, Thread)>,
    result: &Result<(), StoreError>,
    path: &Path,
) {
    let threads: Vec<Thread> = done.iter().map(|(_, t)| t.clone()).collect();
    for (i, (complete, _)) in done.into_iter().enumerate().rev() {
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
pub(super) fn share_error(error: &StoreError, path: &Path) -> StoreError {
    match error {
        StoreError::Corrupt { path, reason } => StoreError::Corrupt {
            path: path.clone(),
            reason: reason.clone(),
        },
        // Already names the file: not "failed on `x`: failed on `x`: …".
        StoreError::Backend { path, reason } => StoreError::Backend {
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
pub(super) const MAX_BATCH: usize = 2048;

pub(super) fn run_writer(shared: Arc<Shared>, mut counters: Counters, jobs: Receiver<Job>) {
    let mut recent = Recent::default();
    // Whether the deferred dedupe entries may miss some of the store's: after a failed commit
    // that could not read them back.
    let mut stale = false;
    // Commits to let pass before a bulk write that failed is tried again.
    let mut write_out_wait = 0u32;
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
        let mut watched_keys = Watched::default();
        // New dedupe, conversation index and author entries wait in memory; deleted and
        // marked keys go to their tables.
        let mut deferred_added: Vec<deferred::Kept> = Vec::new();
        let mut deferred_removed: Vec<deferred::Owned> = Vec::new();
        if stale {
            stale = shared.deferred.reload(&shared).is_err();
        }
        let generation = shared.deferred.current();
        // Whether the transaction got as far as its commit: only then can a failure have
        // reached the disk.
        let mut committing = false;
        let result = if stale {
            Err(StoreError::Backend {
                path: shared.path.clone(),
                reason:
                    "the last commit failed and its dedupe entries could not be read back; retry"
                        .into(),
            })
        } else {
            shared.kv.transact(&mut |txn| {
                let mut tx = Tx {
                    kv: txn,
                    shared: &shared,
                    counters: &mut counters,
                    new_symbols: &mut new_symbols,
                    overlay: Overlay::default(),
                    chunks: FxHashMap::default(),
                    writes: 0,
                    recent: &recent,
                    deferred: &generation,
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
                        reason: "a change failed halfway, so its batch was rolled back; retry"
                            .into(),
                    });
                }
                tx.finish()?;
                let Tx { kv, overlay, .. } = tx;
                deferred_added.clear();
                deferred_removed.clear();
                for (space, k, v) in overlay.into_sorted() {
                    watched_keys.extend(watched(space, &k));
                    if let Some(entry) = deferred::Entry::of(space, &k) {
                        match entry.kept(v.as_deref()) {
                            Some(kept) => {
                                deferred_added.push(kept);
                                continue;
                            }
                            None => deferred_removed.push(entry.owned()),
                        }
                    }
                    match v {
                        Some(v) => kv.put(space, &k, &v)?,
                        None => kv.delete(space, &k)?,
                    }
                }
                committing = true;
                Ok(())
            })
        };
        // Before the commit is counted, so a snapshot that shows the commit's messages but
        // was taken before their entries were here is one the writer does not trust.
        match &result {
            Ok(()) => shared
                .deferred
                .apply(std::mem::take(&mut deferred_added), &deferred_removed),
            // A commit that failed may still have reached the disk: read the entries back
            // from what they are derived from.
            Err(_) if committing => stale = shared.deferred.reload(&shared).is_err(),
            Err(_) => {}
        }
        // Counted whatever the outcome: a commit that failed may still have reached the disk.
        recent.end(watched_keys);
        shared.commits.fetch_add(1, Ordering::Release);
        match &result {
            Ok(()) => {
                for (text, id) in new_symbols {
                    shared.symbols.insert(id, text);
                }
            }
            Err(error) => {
                tracing::error!(error = %error, "store commit failed");
                // If it reached the disk, its numbers are taken: go on from the stored ones.
                counters = match committing {
                    true => committed_counters(&shared).unwrap_or(saved),
                    false => saved,
                };
            }
        }
        if let (Some(unstarted), Err(error)) = (batch.take(), &result) {
            // The transaction did not start (the store refused it, a full disk): its jobs
            // never ran, so they are answered with the store's error as they are dropped.
            UNSTARTED.with(|u| *u.borrow_mut() = Some(share_error(error, &shared.path)));
            drop(unstarted);
            UNSTARTED.with(|u| *u.borrow_mut() = None);
        }
        wake_all(completions, &result, &shared.path);
        if result.is_ok() && shared.deferred.due(counters.messages) {
            if write_out_wait > 0 {
                write_out_wait -= 1;
            } else if !write_out_deferred(&shared, &counters) {
                // A full disk, say: the messages' own commits may still go through, and a
                // large transaction tried after each of them would only slow them down.
                write_out_wait = WRITE_OUT_BACKOFF;
            }
        }
    }
    // Stopping: the next start then has nothing to read back.
    if !stale {
        write_out_deferred(&shared, &counters);
    }
}

/// Commits between two tries of a bulk write that failed.
const WRITE_OUT_BACKOFF: u32 = 256;

/// Writes the index entries kept in memory to their tables; a failure only leaves them there
/// for the next try (what they are derived from is on disk).
fn write_out_deferred(shared: &Shared, counters: &Counters) -> bool {
    match shared.deferred.write_out(shared, counters) {
        Ok(()) => true,
        Err(error) => {
            tracing::warn!(error = %error, "the index entries kept in memory could not be written to the store yet");
            false
        }
    }
}

/// The counters as stored, read after a commit that failed and may have reached the disk.
fn committed_counters(shared: &Shared) -> Option<Counters> {
    Snapshot::new(shared)
        .ok()?
        .load(&key::meta("counters"))
        .ok()
        .flatten()
}

/// Where the writer leaves one job's answer, with the callers to wake next. The caller parks
/// until it is there: one wake-up per job, the least a blocking call can cost (a channel per
/// call costs a lock and a waker registration more).
pub(super) struct Slot<R> {
    answer: Mutex<Option<Answer<R>>>,
    caller: Thread,
}

pub(super) type Answer<R> = (Result<R, StoreError>, Vec<Thread>);

/// The writer's end of a [`Slot`]. Dropped unanswered (the writer died), it answers
/// [`StoreError::WriterStopped`] so the caller never waits forever.
pub(super) struct Reply<R>(Option<Arc<Slot<R>>>);

impl<R> Reply<R> {
    /// Leaves the answer; the caller is woken by [`wake_all`]'s tree, not here.
    pub(super) fn send(mut self, result: Result<R, StoreError>, wake: Vec<Thread>) {
        if let Some(slot) = self.0.take()
            && let Ok(mut answer) = slot.answer.lock()
        {
            *answer = Some((result, wake));
        }
    }
}

thread_local! {
    /// Set on the writer's thread while it drops the jobs of a transaction that did not start:
    /// the error their callers get instead of [`StoreError::WriterStopped`].
    static UNSTARTED: std::cell::RefCell<Option<StoreError>> = const { std::cell::RefCell::new(None) };
}

impl<R> Drop for Reply<R> {
    fn drop(&mut self) {
        if let Some(slot) = self.0.take() {
            // The error set there already names the store's file; `share_error` keeps it.
            let error = UNSTARTED
                .with(|u| u.borrow().as_ref().map(|e| share_error(e, Path::new(""))))
                .unwrap_or(StoreError::WriterStopped);
            if let Ok(mut answer) = slot.answer.lock() {
                *answer = Some((Err(error), Vec::new()));
            }
            slot.caller.unpark();
        }
    }
}

impl Embedded {
    /// Runs `f` in the writer's next batch and waits until that batch is durable. `f` may fail
    /// with a case conflict (`E`) as well as a storage error; either, returned before `f`
    /// wrote anything, leaves the rest of the batch alone.
    pub(super) fn write<R, E>(
        &self,
        f: impl FnOnce(&mut Tx<'_>) -> Result<R, E> + Send + 'static,
    ) -> Result<R, E>
    where
        R: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
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
                Box::new(move |commit, wake| reply.send(commit.map(|()| result), wake));
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
                return result?;
            }
            // Spurious wake-ups are fine: the slot is checked again.
            std::thread::park();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whenever a caller can see its answer, the callers it must wake can see theirs: otherwise
    /// a caller woken early wakes children that find nothing and park for good.
    #[test]
    fn a_callers_children_have_their_answers_before_it_has_its_own() {
        let answered = Arc::new(Mutex::new(Vec::new()));
        let me = std::thread::current();
        let done: Vec<(Completion, Thread)> = (0..7)
            .map(|i| {
                let answered = Arc::clone(&answered);
                let complete: Completion = Box::new(move |_, children: Vec<Thread>| {
                    let mut answered = answered.lock().unwrap();
                    for child in [2 * i + 1, 2 * i + 2].into_iter().filter(|c| *c < 7) {
                        assert!(
                            answered.contains(&child),
                            "job {i} answered before its child {child}"
                        );
                    }
                    assert_eq!(
                        children.len(),
                        [2 * i + 1, 2 * i + 2].iter().filter(|c| **c < 7).count()
                    );
                    answered.push(i);
                });
                (complete, me.clone())
            })
            .collect();
        wake_all(done, &Ok(()), Path::new("store"));
        assert_eq!(answered.lock().unwrap().len(), 7);
    }
}
