//! The store over an embedded ordered key-value database, shared by the redb and sled backends
//! so both have exactly the same record layout and semantics, and the contract tests test the
//! layout once and the backends' durability twice. What a change does to a case is not decided
//! here: each area reads its records, asks [`crate::case`], and writes the outcome.
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
//! updates the conversation and escalation, and places the record. A batch's caller hands over
//! what its snapshot read (the dedupe key, the conversation's record), and the writer skips
//! reading them again when no transaction since the snapshot wrote either (`intake::Seen`,
//! `writer::Recent`). Jobs write into an ordered
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
//! | dedupe | hash(channel, id), or the next free after it | seq; the newest wait in memory ([`deferred`]) |
//! | time | received_at · seq | (none): history and retention in time order |
//! | waiting | chunk number | slot · channel of each reply to the chunk's messages waiting to be sent ([`waiting`]) |
//! | outbox | id | the entry's state when it is not fresh ([`codec::OutboxRec`]): tried, postponed, sent, given up, or one with its own words |
//! | pending | id | channel: format 3's waiting replies, read only by `upgrade` |
//! | records | `C` conversation number | [`codec::ConvRec`], with its channel, id and newest messages' numbers |
//! | | `c` channel conversation | the conversation's number; the newest wait in memory ([`deferred`]) |
//! | | `k` conversation number · first seq | older message numbers of a conversation, 64 a block |
//! | | `s` seq | the shadow rulebook's decision of the message ([`codec::DecisionRec`]), when one ran |
//! | | `e` id / `n` id | [`codec::EscRec`], with its case state ([`codec::CaseRec`]) / the open ones |
//! | | `q` author | when the customer was last asked for a satisfaction score (erased by `forget`) |
//! | | `a` author channel conversation | (none): where `forget` looks; the newest wait in memory ([`deferred`]) |
//! | | `u` id | [`AuditEntry`] |
//! | | `y` id | a symbol of the decision strings ([`codec`]) |
//! | | `v` version / `w` id | a rulebook version's files / one activation |
//! | | `z` name | format version and counters; `zdedupe` / `zconversations`: from which message / conversation number on their index entries may still wait in memory; `zcrisis`: the crisis switch (`Option<bool>`) |
//!
//! A message's sequence number is `chunk · 256 + slot`, and the reply to a message is the
//! outbox entry with the message's number, so neither needs an index of its own. A
//! conversation's messages are listed in its own record (which intake rewrites anyway) until 64
//! have gathered, which then go to a block of their own. Per message the store writes one record
//! into a chunk, a dedupe and a time entry, plus two bytes in its chunk's waiting record when it
//! has a reply; conversation and escalation records are rewritten in place. A conversation's
//! record is keyed by its number, so the records of new conversations and of the ones in use
//! lie together at the end of the `C` range. The keys the platform chooses, the dedupe entry
//! (a hash of the message id), a new conversation's index entry (its id) and a new
//! participant's author key, go to their tables later, many at once ([`deferred`]): each
//! written with its message would cost a leaf page of its own.
//!
//! # Layout
//!
//! - this file: the shared state, opening a store, and the [`Store`] trait, each method
//!   handed to the file of its area.
//! - `kv`: what a backend provides; `keys`: the key schema; `read`: reading records;
//!   `writer`: the group-commit writer and its transaction, `overlay`: the transaction's
//!   ordered writes; `deferred`: the newest dedupe, conversation index and author entries,
//!   kept in memory until they are written in bulk.
//! - `look` (the caller's lookup of a delivery and its conversation), `spare` (vectors kept
//!   between batches), `intake`, `escalations`, `outbox`, `scan` (reports), `privacy` (forget, retention),
//!   `admin` (audit, rulebook versions, crisis switch), `inbox` (users, notes, agent work),
//!   `waiting` (the replies waiting to be sent, a record a chunk).
//! - `upgrade`: a store of an older format brought up to this one when it is opened.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::mpsc::{self, Sender};
use std::thread::JoinHandle;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::codec::{self, Symbols};
use super::records::audit;
use super::redact::Redactor;
use super::{
    AuditEntry, Backend, Conversation, DeadLetter, Escalation, ForgetReport, HistoryCursor,
    IntakeLookup, IntakeReceipt, IntakeRecord, NewAudit, NewReply, OutboxEntry, OutboxStatus,
    PurgeReport, ReportItem, RulebookFile, RulebookVersion, Store, StoreError, StoreStats,
    StoredMessage,
};
use crate::case::escalation::Closing;
use crate::case::outbox::{Receipt, ReceiptEvent};
use crate::case::{CaseError, ConversationFacts, ConversationState};
use crate::message::ChannelKind;

mod admin;
mod copy;
mod deferred;
mod escalations;
// The inbox's records (users, tokens, notes, replies, breaches) in their own file.
mod inbox;
mod intake;
mod keys;
mod kv;
mod look;
mod outbox;
mod overlay;
mod privacy;
mod read;
mod scan;
mod spare;
mod upgrade;
mod waiting;
mod writer;

use deferred::{Deferred, Generation};
use keys as key;
pub use kv::{EachEntry, Kv, KvPairs, KvRead, KvTxn, Space};
use read::{Reader, Resolver, Snapshot, numbers_received};
use writer::{Job, Tx, run_writer};

/// The dedupe value of a deleted delivery that had a collision after it.
const DEDUPE_DELETED: u64 = u64::MAX;

/// The on-disk format this code reads and writes; `upgrade` brings older ones up to it.
const FORMAT_VERSION: u32 = 5;

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
    /// Transactions the writer has ended, committed or not. Taken before a snapshot, it tells
    /// the writer which transactions the snapshot may not show ([`intake::Seen`]).
    commits: AtomicU64,
    /// The newest deliveries' dedupe entries, until they are written in bulk.
    deferred: Deferred,
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
    // Room for a conversation's record with its recent message numbers, the one written for
    // every message: grown from empty, the buffer was reallocated several times each.
    let buffer = Vec::with_capacity(256);
    postcard::to_extend(value, buffer).map_err(|e| StoreError::Backend {
        path: PathBuf::new(),
        reason: format!("cannot encode a record: {e}"),
    })
}

/// The [`Store`] over any [`Kv`] backend.
pub struct Embedded {
    shared: Arc<Shared>,
    redactor: Option<Redactor>,
    /// Shared by every caller (a `Sender` is `Sync`); taken on drop to stop the writer.
    sender: Option<Sender<Job>>,
    writer: Option<JoinHandle<()>>,
    /// The vectors of batches written before, kept for the next ([`spare::Spare`]).
    spare: spare::Spare,
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
            commits: AtomicU64::new(0),
            deferred: Deferred::default(),
        });
        let version_key = key::meta("version");
        let found = {
            let mut snap = shared.kv.snapshot()?;
            match snap.get(Space::Records, &version_key)? {
                Some(bytes) => Some(
                    bytes
                        .try_into()
                        .map(u32::from_be_bytes)
                        .map_err(|_| shared.corrupt(&version_key, "bad format version"))?,
                ),
                None => {
                    // A new store. Anything already in it means it is not one of ours.
                    for space in Space::ALL {
                        if !snap.scan(space, &[], None, 1)?.is_empty() {
                            return Err(shared.corrupt(&version_key, "no format version"));
                        }
                    }
                    None
                }
            }
        };
        let counters: Counters = match found {
            Some(found) => {
                if found != FORMAT_VERSION {
                    upgrade::upgrade(&shared, found)?;
                }
                let mut snap = Snapshot::new(&shared)?;
                snap.load(&key::meta("counters"))?.unwrap_or_default()
            }
            None => {
                shared.kv.transact(&mut |txn| {
                    deferred::put_marks(txn, &Counters::default())?;
                    txn.put(Space::Records, &version_key, &FORMAT_VERSION.to_be_bytes())
                })?;
                Counters::default()
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
        // The dedupe entries a crash (or a stop before their bulk write) kept off the table.
        shared.deferred.reload(&shared)?;
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
            spare: Default::default(),
        })
    }

    fn snapshot(&self) -> Result<Snapshot<'_>, StoreError> {
        Snapshot::new(&self.shared)
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

impl Store for Embedded {
    fn backend(&self) -> Backend {
        self.shared.backend
    }

    fn message(&self, channel: ChannelKind, id: &str) -> Result<Option<StoredMessage>, StoreError> {
        Embedded::message(self, channel, id)
    }

    fn conversation_facts(
        &self,
        channel: ChannelKind,
        conversation: &str,
        at: DateTime<Utc>,
        today: chrono::NaiveDate,
    ) -> Result<ConversationFacts, StoreError> {
        Embedded::conversation_facts(self, channel, conversation, at, today)
    }

    fn intake_lookup(
        &self,
        channel: ChannelKind,
        id: &str,
        conversation: &str,
        at: DateTime<Utc>,
        today: chrono::NaiveDate,
    ) -> Result<IntakeLookup, StoreError> {
        Embedded::intake_lookup(self, channel, id, conversation, at, today)
    }

    fn decide_and_record_all(
        &self,
        messages: Vec<(crate::message::Inbound, chrono::NaiveDate)>,
        decide: &mut dyn FnMut(
            crate::message::Inbound,
            ConversationFacts,
            chrono::NaiveDate,
        ) -> IntakeRecord,
    ) -> Result<Vec<IntakeReceipt>, StoreError> {
        Embedded::decide_and_record_all(self, messages, decide)
    }

    fn record_intake(&self, intake: IntakeRecord) -> Result<IntakeReceipt, StoreError> {
        Embedded::record_intake(self, intake)
    }

    fn record_intakes(&self, intakes: Vec<IntakeRecord>) -> Result<Vec<IntakeReceipt>, StoreError> {
        Embedded::record_intakes(self, intakes)
    }

    fn history_page(
        &self,
        since: Option<DateTime<Utc>>,
        cursor: Option<HistoryCursor>,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        Embedded::history_page(self, since, cursor, limit)
    }

    fn conversation_messages(
        &self,
        channel: ChannelKind,
        conversation: &str,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        Embedded::conversation_messages(self, channel, conversation)
    }

    fn conversation(
        &self,
        channel: ChannelKind,
        conversation: &str,
    ) -> Result<Option<Conversation>, StoreError> {
        Embedded::conversation(self, channel, conversation)
    }

    fn set_conversation_state(
        &self,
        channel: ChannelKind,
        conversation: &str,
        state: ConversationState,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Conversation, CaseError> {
        Embedded::set_conversation_state(self, channel, conversation, state, actor, now)
    }

    fn escalation(&self, id: u64) -> Result<Option<Escalation>, StoreError> {
        Embedded::escalation(self, id)
    }

    fn open_escalations(&self) -> Result<Vec<Escalation>, StoreError> {
        Embedded::open_escalations(self)
    }

    fn inbound_messages(
        &self,
        keys: &[(ChannelKind, String)],
    ) -> Result<Vec<crate::message::Inbound>, StoreError> {
        Embedded::inbound_messages(self, keys)
    }

    fn author_conversations(&self, author: &str) -> Result<Vec<(ChannelKind, String)>, StoreError> {
        Embedded::author_conversations(self, author)
    }

    fn claim_escalation(
        &self,
        id: u64,
        agent: &str,
        now: DateTime<Utc>,
    ) -> Result<Escalation, CaseError> {
        Embedded::claim_escalation(self, id, agent, now)
    }

    fn resolve_and_ask(
        &self,
        id: u64,
        agent: &str,
        now: DateTime<Utc>,
        survey: Option<crate::case::satisfaction::SurveyAsk>,
    ) -> Result<Escalation, CaseError> {
        Embedded::resolve_escalation(self, id, agent, now, survey, Closing::Solved)
    }

    fn hand_back_escalation(
        &self,
        id: u64,
        agent: &str,
        now: DateTime<Utc>,
    ) -> Result<Escalation, CaseError> {
        Embedded::resolve_escalation(self, id, agent, now, None, Closing::HandedBack)
    }

    fn conversation_escalations(
        &self,
        channel: ChannelKind,
        conversation: &str,
    ) -> Result<Vec<Escalation>, StoreError> {
        let mut snap = self.snapshot()?;
        let Some(conv) = snap.conv(channel, conversation)? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for id in conv.escalations {
            if let Some(esc) = snap.escalation(id)? {
                out.push(esc);
            }
        }
        Ok(out)
    }

    fn outbox_entry(&self, id: u64) -> Result<Option<OutboxEntry>, StoreError> {
        Embedded::outbox_entry(self, id)
    }

    fn due_outbox(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<OutboxEntry>, StoreError> {
        Embedded::due_outbox(self, now, limit)
    }

    fn outbox_sent(&self, id: u64, now: DateTime<Utc>) -> Result<OutboxEntry, CaseError> {
        Embedded::outbox_sent(self, id, now)
    }

    fn outbox_failed(
        &self,
        id: u64,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
        _now: DateTime<Utc>,
    ) -> Result<OutboxEntry, CaseError> {
        Embedded::outbox_failed(self, id, error, retry_at, _now)
    }

    fn due_outbox_for(
        &self,
        now: DateTime<Utc>,
        channels: &[ChannelKind],
        limit: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        Embedded::due_outbox_for(self, now, channels, limit)
    }

    fn outbox_postponed(
        &self,
        id: u64,
        reason: &str,
        retry_at: DateTime<Utc>,
        _now: DateTime<Utc>,
    ) -> Result<OutboxEntry, CaseError> {
        Embedded::outbox_postponed(self, id, reason, retry_at, _now)
    }

    fn outbox_dead_letter(
        &self,
        id: u64,
        error: &str,
        team: &str,
        sla_deadline: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<DeadLetter, CaseError> {
        Embedded::outbox_dead_letter(self, id, error, team, sla_deadline, now)
    }

    fn conversation_outbox(
        &self,
        channel: ChannelKind,
        conversation: &str,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        Embedded::conversation_outbox(self, channel, conversation)
    }

    fn report_scan(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        with_replies: bool,
        visit: &mut dyn FnMut(ReportItem<'_>),
    ) -> Result<(), StoreError> {
        Embedded::report_scan(self, since, until, with_replies, visit)
    }

    fn queue_reply(&self, reply: NewReply) -> Result<OutboxEntry, CaseError> {
        Embedded::queue_reply(self, reply)
    }

    fn outbox_receipt(
        &self,
        id: u64,
        event: ReceiptEvent,
        at: DateTime<Utc>,
    ) -> Result<Receipt, CaseError> {
        Embedded::outbox_receipt(self, id, event, at)
    }

    fn outbox_receipts(
        &self,
        channel: ChannelKind,
        conversation: &str,
    ) -> Result<Vec<(u64, Receipt)>, StoreError> {
        Embedded::outbox_receipts(self, channel, conversation)
    }

    fn append_audit(&self, entry: NewAudit) -> Result<u64, StoreError> {
        Embedded::append_audit(self, entry)
    }

    fn audit_log(&self, after: Option<u64>, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        Embedded::audit_log(self, after, limit)
    }

    fn forget_author(
        &self,
        author: &str,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<ForgetReport, StoreError> {
        Embedded::forget_author(self, author, actor, now)
    }

    fn purge_before(
        &self,
        cutoff: DateTime<Utc>,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<PurgeReport, StoreError> {
        Embedded::purge_before(self, cutoff, actor, now)
    }

    fn save_rulebook_version(
        &self,
        version: &str,
        files: &[RulebookFile],
        activated_by: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        Embedded::save_rulebook_version(self, version, files, activated_by, at)
    }

    fn rulebook_version(&self, version: &str) -> Result<Option<Vec<RulebookFile>>, StoreError> {
        Embedded::rulebook_version(self, version)
    }

    fn rulebook_versions(&self) -> Result<Vec<RulebookVersion>, StoreError> {
        Embedded::rulebook_versions(self)
    }

    fn crisis_switch(&self) -> Result<Option<bool>, StoreError> {
        Embedded::crisis_switch(self)
    }

    fn set_crisis_switch(
        &self,
        on: Option<bool>,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        Embedded::set_crisis_switch(self, on, actor, now)
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
    ) -> Result<(), CaseError> {
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
    ) -> Result<usize, CaseError> {
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

    fn set_user_language(&self, login: &str, language: &str) -> Result<bool, StoreError> {
        self.inbox_set_user_language(login, language)
    }

    fn user_language(&self, login: &str) -> Result<Option<String>, StoreError> {
        self.inbox_user_language(login)
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
    ) -> Result<super::EscalationWork, CaseError> {
        self.inbox_add_note(id, author, text, now)
    }

    fn reply_to_escalation(
        &self,
        id: u64,
        author: &str,
        text: &str,
        now: DateTime<Utc>,
    ) -> Result<(Escalation, OutboxEntry), CaseError> {
        self.inbox_reply(id, author, text, now)
    }

    fn reassign_escalation(
        &self,
        id: u64,
        team: &str,
        sla_deadline: Option<DateTime<Utc>>,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Escalation, CaseError> {
        self.inbox_reassign(id, team, sla_deadline, actor, now)
    }

    fn record_sla_breach(
        &self,
        breach: super::SlaBreach,
    ) -> Result<Option<Escalation>, StoreError> {
        self.inbox_breach(breach)
    }

    fn take_announcements(
        &self,
        id: u64,
    ) -> Result<Option<(Vec<crate::case::Announce>, Escalation)>, StoreError> {
        self.inbox_take_announcements(id)
    }

    fn probe_write(&self, now: DateTime<Utc>) -> Result<(), StoreError> {
        // As large as a message can be (the HTTP channel's limit on its text), so on a nearly
        // full disk the probe fails where a message would, instead of fitting in a gap that
        // a message does not fit in.
        const MESSAGE_BYTES: usize = 16 * 1024;
        let probe = (now.timestamp_micros(), vec![0u8; MESSAGE_BYTES]);
        self.write(move |tx| tx.put_rec(&key::meta("write_probe"), &probe))
    }

    fn stats(&self) -> Result<StoreStats, StoreError> {
        let mut snap = self.snapshot()?;
        let counters: Counters = snap.load(&key::meta("counters"))?.unwrap_or_default();
        Ok(StoreStats {
            messages: counters.messages,
            open_escalations: snap.ids_under(&[key::ESC_OPEN])?.len() as u64,
            pending_outbox: waiting::all_ids(&mut *snap.kv, &self.shared)?.len() as u64,
            size_on_disk: self.shared.kv.size_on_disk()?,
        })
    }

    fn conversation_keys(&self) -> Result<Vec<(ChannelKind, String)>, StoreError> {
        // From the records, not the index: the newest index entries may wait in memory.
        let mut snap = self.snapshot()?;
        let mut keys = Vec::new();
        snap.kv.scan_each(
            Space::Records,
            &[key::CONV_REC],
            Some(&[key::CONV_REC + 1]),
            &mut |k, bytes| {
                let conv: codec::ConvRec =
                    postcard::from_bytes(bytes).map_err(|e| self.shared.corrupt(k, e))?;
                let channel =
                    codec::channel_from(conv.channel).map_err(|e| self.shared.corrupt(k, e))?;
                keys.push((channel, conv.conversation));
                Ok(())
            },
        )?;
        // In the index's order, as before.
        keys.sort_by_cached_key(|(channel, id)| key::conv(*channel, id));
        Ok(keys)
    }

    fn escalation_ids(&self) -> Result<Vec<u64>, StoreError> {
        self.snapshot()?.ids_under(&[key::ESC])
    }

    fn outbox_ids(&self) -> Result<Vec<u64>, StoreError> {
        let mut snap = self.snapshot()?;
        // A fresh reply is only its place in a waiting record; any other has an outbox record.
        let mut ids = waiting::all_ids(&mut *snap.kv, &self.shared)?;
        ids.extend(snap.ids_in(Space::Outbox)?);
        ids.sort_unstable();
        ids.dedup();
        Ok(ids)
    }

    fn erased_deliveries(&self) -> Result<Vec<super::Tombstone>, StoreError> {
        let mut snap = self.snapshot()?;
        let mut out = Vec::new();
        for k in snap.keys_under(&[key::ERASED])? {
            let digest: [u8; 32] = k
                .get(1..)
                .and_then(|d| d.try_into().ok())
                .ok_or_else(|| self.shared.corrupt(&k, "bad tombstone key"))?;
            let at: i64 = snap
                .load(&k)?
                .ok_or_else(|| self.shared.corrupt(&k, "tombstone vanished"))?;
            let at = codec::from_micros(at).map_err(|e| self.shared.corrupt(&k, e))?;
            out.push((digest, at));
        }
        Ok(out)
    }

    fn backup(&self, target: &std::path::Path) -> Result<(), StoreError> {
        self.copy_to(target)
    }
}

#[cfg(test)]
mod tests;
