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
//! **Record layout.** One keyspace; the first byte of a key names the record kind (below).
//! Strings in keys are length-prefixed so no id can run into the next field. Numbers are
//! big-endian so keys sort in numeric order; times sort with the sign bit flipped.
//!
//! | key | value |
//! |---|---|
//! | `m` seq | the message with its decision ([`codec::MessageRec`]) |
//! | `d` channel id | seq: the dedupe index of deliveries |
//! | `t` received_at seq | (none): history and retention in time order |
//! | `a` author seq | (none): what `forget` erases |
//! | `k` channel conversation seq | (none): a conversation's messages |
//! | `c` channel conversation | [`Conversation`] |
//! | `e` id / `n` id / `s` channel conversation id | [`Escalation`] / open ones / per conversation |
//! | `o` id / `p` id / `r` channel conversation id | [`OutboxEntry`] / pending ones / per conversation |
//! | `u` id | [`AuditEntry`] |
//! | `y` id | a symbol of the decision strings ([`codec`]) |
//! | `z` name | format version and counters |

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::codec::{self, Intern, MessageRec, Resolve, Symbols};
use super::redact::Redactor;
use super::{
    AuditEntry, Backend, Conversation, DeadLetter, Escalation, EscalationEvent, EscalationStatus,
    ForgetReport, HistoryCursor, IntakeReceipt, IntakeRecord, NewAudit, NewReply, OutboxEntry,
    OutboxStatus, PurgeReport, Store, StoreError, StoreStats, StoredMessage,
};
use crate::decision::{Action, Category, Priority};
use crate::message::ChannelKind;
use crate::pipeline::{ConversationFacts, ConversationState};

// The inbox's records (users, tokens, notes, replies, breaches) in their own file.
mod inbox;

/// The few operations a backend must provide. Keys and values are bytes; the layout above is
/// this module's business.
pub trait Kv: Send + Sync + 'static {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;

    /// Entries with `start <= key < end`, in key order, at most `limit`.
    fn scan(&self, start: &[u8], end: &[u8], limit: usize) -> Result<KvPairs, StoreError>;

    /// Runs `f` exactly once in a write transaction and commits it; returns only when the
    /// commit is durable. If `f` fails, nothing of it is written.
    fn transact(
        &self,
        f: &mut dyn FnMut(&mut dyn KvTxn) -> Result<(), StoreError>,
    ) -> Result<(), StoreError>;

    fn size_on_disk(&self) -> Result<u64, StoreError>;
}

pub type KvPairs = Vec<(Vec<u8>, Vec<u8>)>;

/// The write transaction: reads see its own writes.
pub trait KvTxn {
    fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<(), StoreError>;
    fn delete(&mut self, key: &[u8]) -> Result<(), StoreError>;
    fn scan(&mut self, start: &[u8], end: &[u8], limit: usize) -> Result<KvPairs, StoreError>;
}

/// The on-disk format this code reads and writes.
const FORMAT_VERSION: u32 = 1;

/// Key construction. Every function returns a complete key or a prefix of one.
mod key {
    use super::ChannelKind;
    use crate::store::codec::channel_code;

    pub const MSG: u8 = b'm';
    pub const DEDUPE: u8 = b'd';
    pub const TIME: u8 = b't';
    pub const AUTHOR: u8 = b'a';
    pub const CONV_MSG: u8 = b'k';
    pub const CONV: u8 = b'c';
    pub const ESC: u8 = b'e';
    pub const ESC_OPEN: u8 = b'n';
    pub const ESC_CONV: u8 = b's';
    pub const OUTBOX: u8 = b'o';
    pub const PENDING: u8 = b'p';
    pub const OUTBOX_CONV: u8 = b'r';
    pub const AUDIT: u8 = b'u';
    pub const SYM: u8 = b'y';
    pub const META: u8 = b'z';

    fn str(buf: &mut Vec<u8>, s: &str) {
        buf.extend_from_slice(&(s.len() as u32).to_be_bytes());
        buf.extend_from_slice(s.as_bytes());
    }

    fn id(kind: u8, id: u64) -> Vec<u8> {
        let mut k = Vec::with_capacity(9);
        k.push(kind);
        k.extend_from_slice(&id.to_be_bytes());
        k
    }

    pub fn msg(seq: u64) -> Vec<u8> {
        id(MSG, seq)
    }
    pub fn esc(n: u64) -> Vec<u8> {
        id(ESC, n)
    }
    pub fn esc_open(n: u64) -> Vec<u8> {
        id(ESC_OPEN, n)
    }
    pub fn outbox(n: u64) -> Vec<u8> {
        id(OUTBOX, n)
    }
    pub fn pending(n: u64) -> Vec<u8> {
        id(PENDING, n)
    }
    pub fn audit(n: u64) -> Vec<u8> {
        id(AUDIT, n)
    }
    pub fn sym(n: u32) -> Vec<u8> {
        id(SYM, u64::from(n))
    }
    pub fn meta(name: &str) -> Vec<u8> {
        let mut k = vec![META];
        k.extend_from_slice(name.as_bytes());
        k
    }

    pub fn dedupe(channel: ChannelKind, message: &str) -> Vec<u8> {
        let mut k = Vec::with_capacity(6 + message.len());
        k.push(DEDUPE);
        k.push(channel_code(channel));
        str(&mut k, message);
        k
    }

    /// Times sort correctly as unsigned big-endian once the sign bit is flipped.
    pub fn time(micros: i64, seq: u64) -> Vec<u8> {
        let mut k = Vec::with_capacity(17);
        k.push(TIME);
        k.extend_from_slice(&((micros as u64) ^ (1 << 63)).to_be_bytes());
        k.extend_from_slice(&seq.to_be_bytes());
        k
    }

    pub fn author_prefix(author: &str) -> Vec<u8> {
        let mut k = vec![AUTHOR];
        str(&mut k, author);
        k
    }

    pub fn conv_prefix(kind: u8, channel: ChannelKind, conversation: &str) -> Vec<u8> {
        let mut k = Vec::with_capacity(14 + conversation.len());
        k.push(kind);
        k.push(channel_code(channel));
        str(&mut k, conversation);
        k
    }

    pub fn with_id(mut prefix: Vec<u8>, id: u64) -> Vec<u8> {
        prefix.extend_from_slice(&id.to_be_bytes());
        prefix
    }

    /// The trailing big-endian id of index keys.
    pub fn tail(key: &[u8]) -> Option<u64> {
        let start = key.len().checked_sub(8)?;
        Some(u64::from_be_bytes(key.get(start..)?.try_into().ok()?))
    }

    /// The first key after every key that starts with `prefix`.
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

    /// The smallest key after `key`.
    pub fn after(key: &[u8]) -> Vec<u8> {
        let mut next = key.to_vec();
        next.push(0);
        next
    }
}

/// The ids handed out so far and the message count, kept by the writer and stored once per
/// commit.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Counters {
    next_seq: u64,
    next_escalation: u64,
    next_outbox: u64,
    next_audit: u64,
    next_symbol: u32,
    messages: u64,
}

/// What both the readers and the writer share.
struct Shared {
    kv: Arc<dyn Kv>,
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
    fn read(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    fn range(&mut self, start: &[u8], end: &[u8], limit: usize) -> Result<KvPairs, StoreError>;

    fn load<T: DeserializeOwned>(&mut self, key: &[u8]) -> Result<Option<T>, StoreError> {
        match self.read(key)? {
            None => Ok(None),
            Some(bytes) => postcard::from_bytes(&bytes)
                .map(Some)
                .map_err(|e| self.shared().corrupt(key, e)),
        }
    }

    fn symbol(&mut self, id: u32) -> Result<std::sync::Arc<str>, StoreError> {
        if let Some(text) = self.shared().symbols.text_of(id) {
            return Ok(text);
        }
        let k = key::sym(id);
        let bytes = self
            .read(&k)?
            .ok_or_else(|| self.shared().corrupt(&k, "missing symbol"))?;
        let text: std::sync::Arc<str> = String::from_utf8(bytes)
            .map_err(|e| self.shared().corrupt(&k, e))?
            .into();
        Ok(text)
    }

    fn message_rec(&mut self, seq: u64) -> Result<Option<MessageRec>, StoreError> {
        self.load(&key::msg(seq))
    }

    fn stored(&mut self, seq: u64) -> Result<Option<StoredMessage>, StoreError>
    where
        Self: Sized,
    {
        let Some(rec) = self.message_rec(seq)? else {
            return Ok(None);
        };
        let k = key::msg(seq);
        let path = self.shared().path.clone();
        let codec::Decoded {
            message,
            decision,
            facts,
            stored_at,
        } = codec::decode_message(rec, &mut Resolver(self), |reason| StoreError::Corrupt {
            path: path.clone(),
            reason: format!("record `{}`: {reason}", String::from_utf8_lossy(&k)),
        })?;
        Ok(Some(StoredMessage {
            seq,
            message,
            decision,
            facts,
            stored_at,
        }))
    }

    fn outbox(&mut self, id: u64) -> Result<Option<(codec::OutboxRec, OutboxEntry)>, StoreError>
    where
        Self: Sized,
    {
        let k = key::outbox(id);
        let Some(rec) = self.load::<codec::OutboxRec>(&k)? else {
            return Ok(None);
        };
        let path = self.shared().path.clone();
        let entry = codec::decode_outbox(id, &rec, &mut Resolver(self), |reason| {
            StoreError::Corrupt {
                path: path.clone(),
                reason: format!("record `{}`: {reason}", String::from_utf8_lossy(&k)),
            }
        })?;
        Ok(Some((rec, entry)))
    }

    fn seq_of(&mut self, channel: ChannelKind, id: &str) -> Result<Option<u64>, StoreError> {
        let k = key::dedupe(channel, id);
        match self.read(&k)? {
            None => Ok(None),
            Some(bytes) => bytes
                .try_into()
                .map(|b: [u8; 8]| Some(u64::from_be_bytes(b)))
                .map_err(|_| self.shared().corrupt(&k, "bad sequence number")),
        }
    }

    /// Every id at the end of the keys under `prefix`, page by page.
    fn ids_under(&mut self, prefix: &[u8]) -> Result<Vec<u64>, StoreError> {
        let end = key::prefix_end(prefix);
        let mut start = prefix.to_vec();
        let mut ids = Vec::new();
        loop {
            let page = self.range(&start, &end, 1024)?;
            for (k, _) in &page {
                ids.push(key::tail(k).ok_or_else(|| self.shared().corrupt(k, "short key"))?);
            }
            match page.last() {
                Some((k, _)) if page.len() == 1024 => start = key::after(k),
                _ => return Ok(ids),
            }
        }
    }
}

struct Resolver<'r, R: Reader>(&'r mut R);

impl<R: Reader> Resolve for Resolver<'_, R> {
    fn resolve(&mut self, id: u32) -> Result<std::sync::Arc<str>, StoreError> {
        self.0.symbol(id)
    }
}

/// Reads committed data.
struct Snapshot<'a>(&'a Shared);

impl Reader for Snapshot<'_> {
    fn shared(&self) -> &Shared {
        self.0
    }
    fn read(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.0.kv.get(key)
    }
    fn range(&mut self, start: &[u8], end: &[u8], limit: usize) -> Result<KvPairs, StoreError> {
        self.0.kv.scan(start, end, limit)
    }
}

/// The writer's view of one batch: the backend transaction plus the counters and the
/// symbols it adds.
struct Tx<'a> {
    kv: &'a mut dyn KvTxn,
    shared: &'a Shared,
    counters: &'a mut Counters,
    new_symbols: &'a mut HashMap<Arc<str>, u32>,
    writes: usize,
}

impl Reader for Tx<'_> {
    fn shared(&self) -> &Shared {
        self.shared
    }
    fn read(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.kv.get(key)
    }
    fn range(&mut self, start: &[u8], end: &[u8], limit: usize) -> Result<KvPairs, StoreError> {
        self.kv.scan(start, end, limit)
    }
}

impl Tx<'_> {
    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.writes += 1;
        self.kv.put(key, value)
    }

    fn put_rec<T: Serialize>(&mut self, key: &[u8], value: &T) -> Result<(), StoreError> {
        let bytes = encode(value)?;
        self.put(key, &bytes)
    }

    fn delete(&mut self, key: &[u8]) -> Result<(), StoreError> {
        self.writes += 1;
        self.kv.delete(key)
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

    fn delete_message(&mut self, seq: u64, rec: &MessageRec) -> Result<(), StoreError> {
        let channel =
            codec::channel_from(rec.channel).map_err(|e| self.shared.corrupt(&key::msg(seq), e))?;
        self.delete(&key::msg(seq))?;
        self.delete(&key::dedupe(channel, &rec.id))?;
        self.delete(&key::time(rec.received_at, seq))?;
        self.delete(&key::with_id(key::author_prefix(&rec.author), seq))?;
        self.delete(&key::with_id(
            key::conv_prefix(key::CONV_MSG, channel, &rec.conversation),
            seq,
        ))?;
        self.counters.messages = self.counters.messages.saturating_sub(1);
        Ok(())
    }

    /// Deletes a conversation with its messages, its escalations and its finished outbox
    /// entries (pending replies are kept: they are still owed). Returns the counts deleted.
    fn delete_conversation(
        &mut self,
        channel: ChannelKind,
        conversation: &str,
        report: &mut PurgeReport,
    ) -> Result<(), StoreError> {
        for seq in self.ids_under(&key::conv_prefix(key::CONV_MSG, channel, conversation))? {
            if let Some(rec) = self.message_rec(seq)? {
                self.delete_message(seq, &rec)?;
                report.messages += 1;
            }
        }
        let esc_prefix = key::conv_prefix(key::ESC_CONV, channel, conversation);
        for id in self.ids_under(&esc_prefix)? {
            self.delete(&key::esc(id))?;
            self.delete(&inbox::work_key(id))?;
            self.delete(&key::esc_open(id))?;
            self.delete(&key::with_id(esc_prefix.clone(), id))?;
            report.escalations += 1;
        }
        let out_prefix = key::conv_prefix(key::OUTBOX_CONV, channel, conversation);
        for id in self.ids_under(&out_prefix)? {
            let entry: Option<codec::OutboxRec> = self.load(&key::outbox(id))?;
            if entry.is_some_and(|e| e.status == codec::OUTBOX_PENDING) {
                continue;
            }
            self.delete(&key::outbox(id))?;
            self.delete(&key::with_id(out_prefix.clone(), id))?;
            report.outbox += 1;
        }
        self.delete(&key::conv_prefix(key::CONV, channel, conversation))?;
        report.conversations += 1;
        Ok(())
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
        self.put(&key::sym(id), text.as_bytes())?;
        self.new_symbols.insert(text.into(), id);
        Ok(id)
    }
}

/// Called with the commit's outcome once the batch is durable (or failed).
type Completion = Box<dyn FnOnce(Result<(), StoreError>) + Send>;
/// A unit of work for the writer. It runs inside the batch transaction and must do its reads
/// before its writes: a job that fails after writing poisons the whole batch.
type Job = Box<dyn FnOnce(&mut Tx<'_>) -> (bool, Completion) + Send>;

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
        let mut completions: Vec<Completion> = Vec::with_capacity(batch.len());
        let mut batch = Some(batch);
        let result = shared.kv.transact(&mut |txn| {
            let mut tx = Tx {
                kv: txn,
                shared: &shared,
                counters: &mut counters,
                new_symbols: &mut new_symbols,
                writes: 0,
            };
            let mut poisoned = false;
            for job in batch.take().into_iter().flatten() {
                let (failed_after_writing, done) = job(&mut tx);
                poisoned |= failed_after_writing;
                completions.push(done);
            }
            if poisoned {
                return Err(StoreError::Backend {
                    path: shared.path.clone(),
                    reason: "a change failed halfway, so its batch was rolled back; retry".into(),
                });
            }
            let snapshot = tx.counters.clone();
            tx.put_rec(&key::meta("counters"), &snapshot)
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
        for done in completions {
            done(match &result {
                Ok(()) => Ok(()),
                Err(error) => Err(share_error(error, &shared.path)),
            });
        }
    }
}

/// The [`Store`] over any [`Kv`] backend.
pub struct Embedded {
    shared: Arc<Shared>,
    redactor: Option<Redactor>,
    sender: Mutex<Option<Sender<Job>>>,
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
            kv,
            symbols: Symbols::default(),
            path,
            backend,
        });
        let mut snap = Snapshot(&shared);
        let version_key = key::meta("version");
        let counters: Counters = match snap.read(&version_key)? {
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
                // A new store. Anything already in the keyspace means it is not one of ours.
                if !shared.kv.scan(&[], &[u8::MAX], 1)?.is_empty() {
                    return Err(shared.corrupt(&version_key, "no format version"));
                }
                shared
                    .kv
                    .transact(&mut |txn| txn.put(&version_key, &FORMAT_VERSION.to_be_bytes()))?;
                Counters::default()
            }
        };
        // The symbol table is small (one entry per distinct decision string of the rulebooks
        // that were used); loading it whole keeps encoding free of lookups.
        let start = vec![key::SYM];
        let end = key::prefix_end(&start);
        let mut from = start.clone();
        loop {
            let page = shared.kv.scan(&from, &end, 4096)?;
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
            sender: Mutex::new(Some(sender)),
            writer: Some(writer),
        })
    }

    /// Runs `f` in the writer's next batch and waits until that batch is durable.
    fn write<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Tx<'_>) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        let (reply, answer) = mpsc::sync_channel(1);
        let job: Job = Box::new(move |tx| {
            let before = tx.writes;
            let result = f(tx);
            let poisoned = result.is_err() && tx.writes != before;
            let done: Completion = Box::new(move |commit| {
                // The caller may have gone away; nothing to tell then.
                let _ = reply.send(commit.and(result));
            });
            (poisoned, done)
        });
        let sender = self
            .sender
            .lock()
            .map_err(|_| StoreError::WriterStopped)?
            .clone()
            .ok_or(StoreError::WriterStopped)?;
        sender.send(job).map_err(|_| StoreError::WriterStopped)?;
        answer.recv().map_err(|_| StoreError::WriterStopped)?
    }

    fn snapshot(&self) -> Snapshot<'_> {
        Snapshot(&self.shared)
    }

    /// Number of distinct decision strings stored; for the benchmark's size report.
    pub fn symbol_count(&self) -> usize {
        self.shared.symbols.len()
    }

    fn load_all<T: DeserializeOwned>(
        &self,
        index_prefix: &[u8],
        record: fn(u64) -> Vec<u8>,
    ) -> Result<Vec<T>, StoreError> {
        let mut snap = self.snapshot();
        let mut out = Vec::new();
        for id in snap.ids_under(index_prefix)? {
            if let Some(value) = snap.load(&record(id))? {
                out.push(value);
            }
        }
        Ok(out)
    }
}

impl Drop for Embedded {
    fn drop(&mut self) {
        // Closing the channel ends the writer after the jobs already queued.
        if let Ok(mut sender) = self.sender.lock() {
            sender.take();
        }
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

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

impl Store for Embedded {
    fn backend(&self) -> Backend {
        self.shared.backend
    }

    fn message(&self, channel: ChannelKind, id: &str) -> Result<Option<StoredMessage>, StoreError> {
        let mut snap = self.snapshot();
        match snap.seq_of(channel, id)? {
            None => Ok(None),
            Some(seq) => snap.stored(seq),
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
            .conversation(channel, conversation)?
            .map(|c| c.facts(at, today))
            .unwrap_or_default())
    }

    fn record_intake(&self, intake: IntakeRecord) -> Result<IntakeReceipt, StoreError> {
        let IntakeRecord {
            mut message,
            decision,
            facts,
            today,
            sla_deadline,
            now,
        } = intake;
        // Redact here, in the caller's thread, so the writer only moves bytes.
        if let Some(redactor) = &self.redactor {
            message.text = redactor.redact(&message.text).into_owned();
        }
        self.write(move |tx| {
            let channel = message.channel;
            if let Some(seq) = tx.seq_of(channel, &message.id)? {
                let first = tx
                    .stored(seq)?
                    .ok_or_else(|| tx.shared.corrupt(&key::msg(seq), "dedupe entry without message"))?;
                return Ok(IntakeReceipt {
                    seq,
                    decision: first.decision,
                    duplicate: true,
                    escalation: None,
                    outbox: None,
                });
            }
            let conv_key = key::conv_prefix(key::CONV, channel, &message.conversation);
            let mut conversation: Conversation =
                tx.load(&conv_key)?.unwrap_or_else(|| Conversation {
                    channel,
                    id: message.conversation.clone(),
                    participants: BTreeSet::new(),
                    state: ConversationState::Bot,
                    started_at: message.received_at,
                    last_activity: message.received_at,
                    messages: 0,
                    today,
                    messages_today: 0,
                    auto_replies: 0,
                    recent_complaints: Vec::new(),
                    open_escalation: None,
                });
            let open: Option<Escalation> = match conversation.open_escalation {
                Some(id) => tx.load(&key::esc(id))?,
                None => None,
            };

            // Reads are done; from here on only writes.
            let seq = tx.counters.next_seq;
            tx.counters.next_seq += 1;
            tx.counters.messages += 1;
            let rec = codec::encode_message(&message, &decision, &facts, now, tx)?;
            tx.put_rec(&key::msg(seq), &rec)?;
            tx.put(&key::dedupe(channel, &message.id), &seq.to_be_bytes())?;
            tx.put(&key::time(rec.received_at, seq), &[])?;
            tx.put(&key::with_id(key::author_prefix(&message.author), seq), &[])?;
            tx.put(
                &key::with_id(
                    key::conv_prefix(key::CONV_MSG, channel, &message.conversation),
                    seq,
                ),
                &[],
            )?;

            let at = message.received_at;
            conversation.participants.insert(message.author.clone());
            conversation.last_activity = conversation.last_activity.max(at);
            conversation.messages += 1;
            if conversation.today == today {
                conversation.messages_today += 1;
            } else if today > conversation.today {
                conversation.today = today;
                conversation.messages_today = 1;
            }
            if decision.diagnostics.category == Category::Complaint {
                conversation.recent_complaints.push(at);
            }
            let week = chrono::Duration::days(7);
            conversation
                .recent_complaints
                .retain(|t| conversation.last_activity.signed_duration_since(*t) < week);

            let mut escalation = None;
            if let Action::Escalate { team, priority, .. } = &decision.action {
                let reason = decision.diagnostics.reasons.join("; ");
                let esc = match open {
                    Some(mut esc) => {
                        esc.messages.push(message.id.clone());
                        let mut change = format!("message `{}` added", message.id);
                        if *priority > esc.priority {
                            change.push_str(&format!(", priority {} → {}", esc.priority, priority));
                            esc.priority = *priority;
                        }
                        if *team != esc.team {
                            change.push_str(&format!(", also for team `{team}`"));
                        }
                        esc.history.push(EscalationEvent {
                            at: now,
                            actor: "engine".into(),
                            change,
                        });
                        esc
                    }
                    None => {
                        let id = tx.counters.next_escalation;
                        tx.counters.next_escalation += 1;
                        tx.put(&key::esc_open(id), &[])?;
                        tx.put(
                            &key::with_id(
                                key::conv_prefix(key::ESC_CONV, channel, &message.conversation),
                                id,
                            ),
                            &[],
                        )?;
                        conversation.open_escalation = Some(id);
                        Escalation {
                            id,
                            channel,
                            conversation: message.conversation.clone(),
                            team: team.clone(),
                            priority: *priority,
                            reason,
                            status: EscalationStatus::Open,
                            created_at: now,
                            sla_deadline,
                            messages: vec![message.id.clone()],
                            history: vec![EscalationEvent {
                                at: now,
                                actor: "engine".into(),
                                change: format!(
                                    "opened for team `{team}`, priority {priority}, by message `{}`",
                                    message.id
                                ),
                            }],
                        }
                    }
                };
                tx.put_rec(&key::esc(esc.id), &esc)?;
                escalation = Some(esc.id);
            } else if let Some(mut esc) = open
                && conversation.state == ConversationState::Human
            {
                // During a handoff everything the customer adds goes to the colleague who owns
                // the conversation, whatever the decision (the bot stays silent anyway).
                esc.messages.push(message.id.clone());
                esc.history.push(EscalationEvent {
                    at: now,
                    actor: "engine".into(),
                    change: format!("message `{}` added", message.id),
                });
                tx.put_rec(&key::esc(esc.id), &esc)?;
                escalation = Some(esc.id);
            }

            let mut outbox = None;
            if let Some(reply) = decision.action.reply() {
                let id = tx.counters.next_outbox;
                tx.counters.next_outbox += 1;
                let text = codec::encode_text(
                    reply,
                    &[message.text.as_str(), message.id.as_str()],
                    tx,
                )?;
                let entry = codec::OutboxRec {
                    channel: codec::channel_code(channel),
                    conversation: message.conversation.clone(),
                    in_reply_to: message.id.clone(),
                    text,
                    attempts: 0,
                    last_error: None,
                    status: codec::OUTBOX_PENDING,
                    sent_at: 0,
                    created_at: codec::micros(now),
                    next_attempt_at: codec::micros(now),
                };
                tx.put_rec(&key::outbox(id), &entry)?;
                tx.put(&key::pending(id), &[])?;
                tx.put(
                    &key::with_id(
                        key::conv_prefix(key::OUTBOX_CONV, channel, &message.conversation),
                        id,
                    ),
                    &[],
                )?;
                conversation.auto_replies += 1;
                outbox = Some(id);
            }
            tx.put_rec(&conv_key, &conversation)?;
            Ok(IntakeReceipt {
                seq,
                decision,
                duplicate: false,
                escalation,
                outbox,
            })
        })
    }

    fn history_page(
        &self,
        since: Option<DateTime<Utc>>,
        cursor: Option<HistoryCursor>,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let start = match (cursor, since) {
            (Some(c), _) => key::after(&key::time(codec::micros(c.received_at), c.seq)),
            (None, Some(since)) => key::time(codec::micros(since), 0),
            (None, None) => vec![key::TIME],
        };
        let mut snap = self.snapshot();
        let index = snap.range(&start, &[key::TIME + 1], limit)?;
        let mut page = Vec::with_capacity(index.len());
        for (k, _) in index {
            let seq = key::tail(&k).ok_or_else(|| self.shared.corrupt(&k, "short key"))?;
            // A message purged between the index read and this one is simply gone.
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
        let mut snap = self.snapshot();
        let mut out = Vec::new();
        for seq in snap.ids_under(&key::conv_prefix(key::CONV_MSG, channel, conversation))? {
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
        self.snapshot()
            .load(&key::conv_prefix(key::CONV, channel, conversation))
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
        self.write(move |tx| {
            let k = key::conv_prefix(key::CONV, channel, &conversation);
            let mut conv: Conversation =
                tx.load(&k)?.ok_or_else(|| StoreError::NoSuchConversation {
                    channel,
                    conversation: conversation.clone(),
                })?;
            let from = conv.state;
            conv.state = state;
            tx.put_rec(&k, &conv)?;
            tx.audit(audit(
                &actor,
                "conversation.state",
                format!("conversation {channel}/{conversation}"),
                format!("{} → {}", from.as_str(), state.as_str()),
                now,
            ))?;
            Ok(conv)
        })
    }

    fn escalation(&self, id: u64) -> Result<Option<Escalation>, StoreError> {
        self.snapshot().load(&key::esc(id))
    }

    fn open_escalations(&self) -> Result<Vec<Escalation>, StoreError> {
        self.load_all(&[key::ESC_OPEN], key::esc)
    }

    fn claim_escalation(
        &self,
        id: u64,
        agent: &str,
        now: DateTime<Utc>,
    ) -> Result<Escalation, StoreError> {
        let agent = agent.to_owned();
        self.write(move |tx| {
            let mut esc: Escalation = tx
                .load(&key::esc(id))?
                .ok_or(StoreError::NoSuchEscalation(id))?;
            match &esc.status {
                EscalationStatus::Resolved { .. } => return Err(StoreError::AlreadyResolved(id)),
                EscalationStatus::Claimed { by } if *by == agent => return Ok(esc),
                EscalationStatus::Claimed { by } => {
                    return Err(StoreError::AlreadyClaimed { id, by: by.clone() });
                }
                EscalationStatus::Open => {}
            }
            let conv_key = key::conv_prefix(key::CONV, esc.channel, &esc.conversation);
            let conv: Option<Conversation> = tx.load(&conv_key)?;
            esc.status = EscalationStatus::Claimed { by: agent.clone() };
            esc.history.push(EscalationEvent {
                at: now,
                actor: agent.clone(),
                change: "claimed".into(),
            });
            tx.put_rec(&key::esc(id), &esc)?;
            if let Some(mut conv) = conv {
                conv.state = ConversationState::Human;
                tx.put_rec(&conv_key, &conv)?;
            }
            tx.audit(audit(
                &agent,
                "escalation.claim",
                format!("escalation {id}"),
                String::new(),
                now,
            ))?;
            Ok(esc)
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
            let mut esc: Escalation = tx
                .load(&key::esc(id))?
                .ok_or(StoreError::NoSuchEscalation(id))?;
            if let EscalationStatus::Resolved { .. } = esc.status {
                return Err(StoreError::AlreadyResolved(id));
            }
            let conv_key = key::conv_prefix(key::CONV, esc.channel, &esc.conversation);
            let conv: Option<Conversation> = tx.load(&conv_key)?;
            esc.status = EscalationStatus::Resolved { by: agent.clone() };
            esc.history.push(EscalationEvent {
                at: now,
                actor: agent.clone(),
                change: "resolved".into(),
            });
            tx.put_rec(&key::esc(id), &esc)?;
            tx.delete(&key::esc_open(id))?;
            if let Some(mut conv) = conv {
                if conv.open_escalation == Some(id) {
                    conv.open_escalation = None;
                }
                if conv.state == ConversationState::Human {
                    conv.state = ConversationState::Bot;
                }
                tx.put_rec(&conv_key, &conv)?;
            }
            tx.audit(audit(
                &agent,
                "escalation.resolve",
                format!("escalation {id}"),
                String::new(),
                now,
            ))?;
            Ok(esc)
        })
    }

    fn outbox_entry(&self, id: u64) -> Result<Option<OutboxEntry>, StoreError> {
        Ok(self.snapshot().outbox(id)?.map(|(_, entry)| entry))
    }

    fn due_outbox(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<OutboxEntry>, StoreError> {
        let mut snap = self.snapshot();
        let mut out = Vec::new();
        for id in snap.ids_under(&[key::PENDING])? {
            if out.len() >= limit {
                break;
            }
            if let Some((_, entry)) = snap.outbox(id)?
                && entry.status == OutboxStatus::Pending
                && entry.next_attempt_at <= now
            {
                out.push(entry);
            }
        }
        Ok(out)
    }

    fn outbox_sent(&self, id: u64, now: DateTime<Utc>) -> Result<OutboxEntry, StoreError> {
        self.write(move |tx| {
            let (mut rec, mut entry) = tx.outbox(id)?.ok_or(StoreError::NoSuchOutboxEntry(id))?;
            if rec.status != codec::OUTBOX_PENDING {
                return Err(StoreError::OutboxFinished(id));
            }
            rec.attempts += 1;
            rec.status = codec::OUTBOX_SENT;
            rec.sent_at = codec::micros(now);
            tx.put_rec(&key::outbox(id), &rec)?;
            tx.delete(&key::pending(id))?;
            entry.attempts = rec.attempts;
            entry.status = OutboxStatus::Sent { at: now };
            Ok(entry)
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
            let (mut rec, mut entry) = tx.outbox(id)?.ok_or(StoreError::NoSuchOutboxEntry(id))?;
            if rec.status != codec::OUTBOX_PENDING {
                return Err(StoreError::OutboxFinished(id));
            }
            rec.attempts += 1;
            rec.last_error = Some(error.clone());
            match retry_at {
                Some(at) => {
                    rec.next_attempt_at = codec::micros(at);
                    entry.next_attempt_at = at;
                }
                None => {
                    rec.status = codec::OUTBOX_DEAD;
                    entry.status = OutboxStatus::Dead;
                    tx.delete(&key::pending(id))?;
                }
            }
            tx.put_rec(&key::outbox(id), &rec)?;
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
        let mut snap = self.snapshot();
        let mut out = Vec::new();
        for id in snap.ids_under(&[key::PENDING])? {
            if out.len() >= limit {
                break;
            }
            // The record is checked before it is decoded: most pending entries of a channel
            // without an adapter are skipped without resolving their text.
            let k = key::outbox(id);
            let Some(rec) = snap.load::<codec::OutboxRec>(&k)? else {
                continue;
            };
            if rec.status != codec::OUTBOX_PENDING
                || rec.next_attempt_at > now_micros
                || !codes.contains(&rec.channel)
            {
                continue;
            }
            if let Some((_, entry)) = snap.outbox(id)? {
                out.push(entry);
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
            let (mut rec, mut entry) = tx.outbox(id)?.ok_or(StoreError::NoSuchOutboxEntry(id))?;
            if rec.status != codec::OUTBOX_PENDING {
                return Err(StoreError::OutboxFinished(id));
            }
            rec.last_error = Some(reason.clone());
            rec.next_attempt_at = codec::micros(retry_at);
            tx.put_rec(&key::outbox(id), &rec)?;
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
            let (mut rec, mut entry) = tx.outbox(id)?.ok_or(StoreError::NoSuchOutboxEntry(id))?;
            if rec.status != codec::OUTBOX_PENDING {
                return Err(StoreError::OutboxFinished(id));
            }
            let conv_key = key::conv_prefix(key::CONV, entry.channel, &entry.conversation);
            let conversation: Option<Conversation> = tx.load(&conv_key)?;

            // Reads are done; from here on only writes.
            rec.attempts += 1;
            rec.last_error = Some(error.clone());
            rec.status = codec::OUTBOX_DEAD;
            tx.put_rec(&key::outbox(id), &rec)?;
            tx.delete(&key::pending(id))?;
            entry.attempts = rec.attempts;
            entry.last_error = Some(error.clone());
            entry.status = OutboxStatus::Dead;

            // Always a new escalation, for the default team: the conversation's open one (if
            // any) belongs to a specialist team that cannot fix a delivery problem.
            let esc_id = tx.counters.next_escalation;
            tx.counters.next_escalation += 1;
            let escalation = Escalation {
                id: esc_id,
                channel: entry.channel,
                conversation: entry.conversation.clone(),
                team: team.clone(),
                priority: Priority::High,
                reason: format!("reply could not be delivered: {error}"),
                status: EscalationStatus::Open,
                created_at: now,
                sla_deadline,
                messages: vec![entry.in_reply_to.clone()],
                history: vec![EscalationEvent {
                    at: now,
                    actor: "engine".into(),
                    change: format!(
                        "opened for team `{team}`, priority high: reply {id} could not be delivered after {} attempts",
                        entry.attempts
                    ),
                }],
            };
            tx.put_rec(&key::esc(esc_id), &escalation)?;
            tx.put(&key::esc_open(esc_id), &[])?;
            tx.put(
                &key::with_id(
                    key::conv_prefix(key::ESC_CONV, entry.channel, &entry.conversation),
                    esc_id,
                ),
                &[],
            )?;
            if let Some(mut conversation) = conversation
                && conversation.open_escalation.is_none()
            {
                conversation.open_escalation = Some(esc_id);
                tx.put_rec(&conv_key, &conversation)?;
            }
            tx.audit(audit(
                "engine",
                "outbox.dead",
                format!("outbox {id}"),
                format!("escalation {esc_id} for team `{team}`"),
                now,
            ))?;
            Ok(DeadLetter { entry, escalation })
        })
    }

    fn conversation_outbox(
        &self,
        channel: ChannelKind,
        conversation: &str,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let mut snap = self.snapshot();
        let mut out = Vec::new();
        for id in snap.ids_under(&key::conv_prefix(key::OUTBOX_CONV, channel, conversation))? {
            if let Some((_, entry)) = snap.outbox(id)? {
                out.push(entry);
            }
        }
        Ok(out)
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
            let conv_key = key::conv_prefix(key::CONV, channel, &conversation);
            if tx.load::<Conversation>(&conv_key)?.is_none() {
                return Err(StoreError::NoSuchConversation {
                    channel,
                    conversation,
                });
            }
            let id = tx.counters.next_outbox;
            tx.counters.next_outbox += 1;
            let rec = codec::OutboxRec {
                channel: codec::channel_code(channel),
                conversation: conversation.clone(),
                in_reply_to: in_reply_to.clone(),
                text: codec::Text::Inline(text.clone()),
                attempts: 0,
                last_error: None,
                status: codec::OUTBOX_PENDING,
                sent_at: 0,
                created_at: codec::micros(now),
                next_attempt_at: codec::micros(now),
            };
            tx.put_rec(&key::outbox(id), &rec)?;
            tx.put(&key::pending(id), &[])?;
            tx.put(
                &key::with_id(
                    key::conv_prefix(key::OUTBOX_CONV, channel, &conversation),
                    id,
                ),
                &[],
            )?;
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
                status: OutboxStatus::Pending,
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
        let mut snap = self.snapshot();
        snap.range(&start, &[key::AUDIT + 1], limit)?
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
            let seqs = tx.ids_under(&prefix)?;
            let mut recs = Vec::with_capacity(seqs.len());
            for seq in seqs {
                if let Some(rec) = tx.message_rec(seq)? {
                    recs.push((seq, rec));
                }
            }
            let mut conversations = BTreeSet::new();
            for (seq, rec) in &recs {
                conversations.insert((rec.channel, rec.conversation.clone()));
                tx.delete_message(*seq, rec)?;
                report.messages += 1;
            }
            for (code, conversation) in conversations {
                let channel =
                    codec::channel_from(code).map_err(|e| tx.shared.corrupt(&prefix, e))?;
                let k = key::conv_prefix(key::CONV, channel, &conversation);
                let Some(mut conv) = tx.load::<Conversation>(&k)? else {
                    continue;
                };
                conv.participants.remove(&author);
                if conv.participants.is_empty() {
                    // Theirs alone: nothing in it belongs to anybody else. Pending replies to
                    // them are dropped too: they asked to be forgotten.
                    tx.delete_conversation(channel, &conversation, &mut report)?;
                    let out_prefix = key::conv_prefix(key::OUTBOX_CONV, channel, &conversation);
                    for id in tx.ids_under(&out_prefix)? {
                        tx.delete(&key::outbox(id))?;
                        tx.delete(&key::pending(id))?;
                        tx.delete(&key::with_id(out_prefix.clone(), id))?;
                        report.outbox += 1;
                    }
                } else {
                    tx.put_rec(&k, &conv)?;
                }
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
                let old = tx.range(&[key::TIME], &end, CHUNK)?;
                let mut recs = Vec::with_capacity(old.len());
                for (k, _) in &old {
                    let seq = key::tail(k).ok_or_else(|| tx.shared.corrupt(k, "short key"))?;
                    if let Some(rec) = tx.message_rec(seq)? {
                        recs.push((seq, rec));
                    }
                }
                for (seq, rec) in &recs {
                    tx.delete_message(*seq, rec)?;
                    report.messages += 1;
                }
                Ok(report)
            })?;
            total.messages += report.messages;
            if report.messages < CHUNK as u64 {
                break;
            }
        }
        // Conversations idle since the cutoff, read page by page from a snapshot and re-checked
        // inside the transaction that deletes them.
        let mut from = vec![key::CONV];
        let end = [key::CONV + 1];
        loop {
            let page = self.shared.kv.scan(&from, &end, CHUNK)?;
            let mut stale = Vec::new();
            for (k, v) in &page {
                let conv: Conversation =
                    postcard::from_bytes(v).map_err(|e| self.shared.corrupt(k, e))?;
                if conv.last_activity < cutoff && conv.open_escalation.is_none() {
                    stale.push((conv.channel, conv.id));
                }
            }
            if !stale.is_empty() {
                let report = self.write(move |tx| {
                    let mut report = PurgeReport::default();
                    let mut targets = Vec::new();
                    for (channel, id) in stale {
                        let conv: Option<Conversation> =
                            tx.load(&key::conv_prefix(key::CONV, channel, &id))?;
                        if conv.is_some_and(|c| {
                            c.last_activity < cutoff && c.open_escalation.is_none()
                        }) {
                            targets.push((channel, id));
                        }
                    }
                    for (channel, id) in targets {
                        tx.delete_conversation(channel, &id, &mut report)?;
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
        // Finished replies of conversations that are still around.
        let mut from = vec![key::OUTBOX];
        let end = [key::OUTBOX + 1];
        loop {
            let page = self.shared.kv.scan(&from, &end, CHUNK)?;
            let mut old = Vec::new();
            for (k, v) in &page {
                let entry: codec::OutboxRec =
                    postcard::from_bytes(v).map_err(|e| self.shared.corrupt(k, e))?;
                if entry.status != codec::OUTBOX_PENDING && entry.created_at < cutoff_micros {
                    let id = key::tail(k).ok_or_else(|| self.shared.corrupt(k, "short key"))?;
                    let channel = codec::channel_from(entry.channel)
                        .map_err(|e| self.shared.corrupt(k, e))?;
                    old.push((id, channel, entry.conversation));
                }
            }
            if !old.is_empty() {
                total.outbox += self.write(move |tx| {
                    let mut n = 0;
                    for (id, channel, conversation) in old {
                        tx.delete(&key::outbox(id))?;
                        tx.delete(&key::with_id(
                            key::conv_prefix(key::OUTBOX_CONV, channel, &conversation),
                            id,
                        ))?;
                        n += 1;
                    }
                    Ok(n)
                })?;
            }
            match page.last() {
                Some((k, _)) if page.len() == CHUNK => from = key::after(k),
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
        let mut snap = self.snapshot();
        let counters: Counters = snap.load(&key::meta("counters"))?.unwrap_or_default();
        Ok(StoreStats {
            messages: counters.messages,
            open_escalations: snap.ids_under(&[key::ESC_OPEN])?.len() as u64,
            pending_outbox: snap.ids_under(&[key::PENDING])?.len() as u64,
            size_on_disk: self.shared.kv.size_on_disk()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::key;

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
        assert!(key::with_id(p.clone(), u64::MAX) < key::prefix_end(&p));
        // A longer author with the same start is not under the prefix: lengths differ.
        assert!(!key::author_prefix("anne").starts_with(&p));
    }
}
