//! The durable store: every inbound message with its decision, the conversations, escalations,
//! the outbox of replies and the audit log. It exists so that nothing webcare acknowledged is
//! ever lost: a message whose intake returned `Ok` survives a crash, together with its decision,
//! its escalation and the reply waiting to go out.
//!
//! [`Store`] is a trait object because the set of backends is open. The two embedded backends,
//! [redb](redb) (the default) and [sled](sled), share one record layout and one writer
//! ([`embedded`]); they differ only in the few lines that read, write and durably commit bytes.
//! [`postgres`] is the backend for several instances on one database. One contract test suite
//! (`engine/tests/store_contract.rs`) runs against all three.
//!
//! # Layout
//!
//! - this file: the trait, and reading history page by page.
//! - [`StoreError`] (storage failures only, `error.rs`); [`open`], the backends and the data
//!   directory (`open.rs`).
//! - [`records`]: the records the trait returns and takes.
//! - [`embedded`]: the record layout over an ordered key-value store, and the group-commit
//!   writer, one file per area (`intake`, `escalations`, `outbox`, `scan`, `privacy`, …).
//! - [`codec`]: the compact on-disk encoding (message records and their brief form, chunks,
//!   conversation/escalation/outbox records, the symbol table).
//! - [`redact`]: optional redaction of e-mail addresses, phone numbers, IBANs and BSNs.
//! - [`redb`], [`sled`]: the two embedded backends.
//! - [`postgres`]: PostgreSQL, for several instances (plain tables, versioned migrations).
//! - [`work`]: the inbox's records: users, API tokens, notes, agent replies, SLA breaches.
//!
//! The store holds no business rules: what a message or a person's action does to a case is
//! decided in [`crate::case`]; the store reads, asks the rule, and writes the outcome in one
//! transaction. A change a rule refuses comes back as a [`CaseError`].
//!
//! All methods block; async callers run them on a blocking thread. Time is always passed in
//! (`now`), never read from the system clock here, so tests can drive a virtual clock.

pub mod codec;
pub mod embedded;
mod error;
mod open;
pub mod postgres;
pub mod records;
pub mod redact;
pub mod redb;
pub mod sled;
pub mod work;

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};

pub use self::error::StoreError;
pub(crate) use self::open::make_private;
pub use self::open::{Backend, StoreOptions, open};
pub use self::records::*;
pub use self::work::{AgentReply, EscalationWork, Note, Role, SlaBreach, User};
pub use crate::case::{
    CaseError, ConversationFacts, ConversationState, EscalationStatus,
    outbox::{OutboxStatus, Receipt, ReceiptEvent},
};
use crate::message::{ChannelKind, Inbound};
pub use crate::rulebook::RulebookFile;

/// The durable record of everything webcare did. See the module docs for the guarantees.
///
/// Every method that changes something is atomic, and durable when it returns `Ok`.
pub trait Store: Send + Sync {
    /// The backend's name as in the config (`redb`, `sled`, `postgres`).
    fn backend(&self) -> Backend;

    // --- intake --------------------------------------------------------------------------

    /// A message delivered earlier, by the platform's `(channel, id)`.
    fn message(&self, channel: ChannelKind, id: &str) -> Result<Option<StoredMessage>, StoreError>;

    /// The facts the scripts see for `conversation` at the time `at` (`today` is `at`'s local
    /// date in the rulebook's time zone). Counters count the messages stored so far, so a
    /// message's own facts never include itself.
    fn conversation_facts(
        &self,
        channel: ChannelKind,
        conversation: &str,
        at: DateTime<Utc>,
        today: NaiveDate,
    ) -> Result<ConversationFacts, StoreError>;

    /// What intake must know before deciding, in one read: the first decision when
    /// `(channel, id)` was stored before, otherwise the conversation's facts (as
    /// [`Store::conversation_facts`]).
    fn intake_lookup(
        &self,
        channel: ChannelKind,
        id: &str,
        conversation: &str,
        at: DateTime<Utc>,
        today: NaiveDate,
    ) -> Result<IntakeLookup, StoreError> {
        if let Some(first) = self.message(channel, id)? {
            return Ok(IntakeLookup::Duplicate(Box::new(first)));
        }
        self.conversation_facts(channel, conversation, at, today)
            .map(IntakeLookup::New)
    }

    /// [`Store::decide_and_record`] for `messages` (each with its local day), in as few
    /// transactions as the backend can: for a file taken in whole, where a read transaction
    /// and a durable commit per message cost more than the intake itself. Each message is
    /// decided with the facts its conversation has after the messages before it in
    /// `messages`; `decide` is called for each new message, in order; each transaction's
    /// messages are stored (and durable) together or not at all. The receipts are in the order
    /// of `messages`. By default, runs of messages of different conversations, each with a
    /// lookup per message and one [`Store::record_intakes`].
    fn decide_and_record_all(
        &self,
        messages: Vec<(Inbound, NaiveDate)>,
        decide: &mut dyn FnMut(Inbound, ConversationFacts, NaiveDate) -> IntakeRecord,
    ) -> Result<Vec<IntakeReceipt>, StoreError> {
        let mut receipts = Vec::with_capacity(messages.len());
        let mut messages = messages.into_iter().peekable();
        while messages.peek().is_some() {
            // A run: the messages up to the next one of a conversation already in it, each
            // decided with its conversation's facts as committed.
            let mut conversations = HashSet::new();
            let (mut slots, mut records) = (Vec::new(), Vec::new());
            let start = receipts.len();
            while let Some((message, today)) =
                messages.next_if(|(m, _)| conversations.insert((m.channel, m.conversation.clone())))
            {
                match lookup_of(self, &message, today)? {
                    IntakeLookup::Duplicate(first) => {
                        receipts.push(Some(IntakeReceipt::duplicate_of(*first)));
                    }
                    IntakeLookup::Erased => {
                        receipts.push(Some(IntakeReceipt::erased(&message.id)));
                    }
                    IntakeLookup::New(facts) => {
                        slots.push(receipts.len());
                        records.push(decide(message, facts, today));
                        receipts.push(None);
                    }
                }
            }
            debug_assert!(receipts.len() > start);
            if !records.is_empty() {
                for (slot, receipt) in slots.into_iter().zip(self.record_intakes(records)?) {
                    receipts[slot] = Some(receipt);
                }
            }
        }
        Ok(receipts.into_iter().flatten().collect())
    }

    /// Intake of one message with its conversation held from the read to the write, where the
    /// backend can: what [`Store::intake_lookup`] finds decides it (a duplicate's first
    /// decision is returned, marked duplicate), otherwise `decide` turns the message and its
    /// conversation's facts into the record [`Store::record_intake`] writes. A backend shared
    /// by several processes holds the conversation's lock meanwhile, so each message is decided
    /// with the facts of every message before it, whichever instance took that one in; `decide`
    /// may then be called again when the transaction had to be retried. By default, the lookup
    /// and the write (the embedded store's single writer orders the writes).
    fn decide_and_record(
        &self,
        message: Inbound,
        today: NaiveDate,
        decide: &mut dyn FnMut(Inbound, ConversationFacts) -> IntakeRecord,
    ) -> Result<IntakeReceipt, StoreError> {
        match lookup_of(self, &message, today)? {
            IntakeLookup::Duplicate(first) => Ok(IntakeReceipt::duplicate_of(*first)),
            IntakeLookup::Erased => Ok(IntakeReceipt::erased(&message.id)),
            IntakeLookup::New(facts) => self.record_intake(decide(message, facts)),
        }
    }

    /// Stores a decided message in one transaction: the message and its decision (and the
    /// shadow rulebook's, when there is one), the conversation update, a new escalation or an
    /// addition to the conversation's open one, and an outbox entry when the decision has a
    /// reply, as far as the record's [`Mode`] lets the decision act (no outbox entry in
    /// `shadow`, neither that nor an escalation in `listen`). If the same `(channel, id)` was stored
    /// before (also by a concurrent caller), nothing is written and the first decision is
    /// returned with `duplicate: true`.
    fn record_intake(&self, intake: IntakeRecord) -> Result<IntakeReceipt, StoreError>;

    /// [`Store::record_intake`] for many messages at once, in one transaction: all are stored
    /// (and durable) or none. For a file taken in whole, where a commit per message would cost
    /// a disk sync each. The receipts are in the order of `intakes`.
    fn record_intakes(&self, intakes: Vec<IntakeRecord>) -> Result<Vec<IntakeReceipt>, StoreError> {
        intakes
            .into_iter()
            .map(|intake| self.record_intake(intake))
            .collect()
    }

    /// One page of stored messages in order of `received_at` (then intake order), starting
    /// after `cursor` (or at `since`). An empty page means the end.
    fn history_page(
        &self,
        since: Option<DateTime<Utc>>,
        cursor: Option<HistoryCursor>,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, StoreError>;

    /// The messages of one conversation, oldest first.
    fn conversation_messages(
        &self,
        channel: ChannelKind,
        conversation: &str,
    ) -> Result<Vec<StoredMessage>, StoreError>;

    /// These messages as they arrived (without their decisions), read in one go, in the order
    /// asked; ids no longer stored (forgotten, purged) are left out. The inbox's queue shows
    /// and searches the text of thousands of open escalations per page, where one read each
    /// with its decision would cost more than the whole page may take.
    fn inbound_messages(&self, keys: &[(ChannelKind, String)]) -> Result<Vec<Inbound>, StoreError>;

    /// The conversations `author` wrote in, on any channel (the inbox shows a customer's
    /// other conversations beside the one being answered).
    fn author_conversations(&self, author: &str) -> Result<Vec<(ChannelKind, String)>, StoreError>;

    // --- conversations -------------------------------------------------------------------

    fn conversation(
        &self,
        channel: ChannelKind,
        conversation: &str,
    ) -> Result<Option<Conversation>, StoreError>;

    /// Hands a conversation to a human, back to the bot, or closes it; audited.
    fn set_conversation_state(
        &self,
        channel: ChannelKind,
        conversation: &str,
        state: ConversationState,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Conversation, CaseError>;

    // --- escalations ---------------------------------------------------------------------

    fn escalation(&self, id: u64) -> Result<Option<Escalation>, StoreError>;

    /// Escalations that are open or claimed, oldest first.
    fn open_escalations(&self) -> Result<Vec<Escalation>, StoreError>;

    /// An agent takes an escalation; the conversation becomes theirs (the bot goes silent).
    fn claim_escalation(
        &self,
        id: u64,
        agent: &str,
        now: DateTime<Utc>,
    ) -> Result<Escalation, CaseError>;

    /// The escalation is done; the conversation goes back to the bot (unless a person still
    /// holds another of its escalations).
    fn resolve_escalation(
        &self,
        id: u64,
        agent: &str,
        now: DateTime<Utc>,
    ) -> Result<Escalation, CaseError> {
        self.resolve_and_ask(id, agent, now, None)
    }

    /// [`Store::resolve_escalation`], and in the same transaction, when `survey` is given and
    /// the rules of [`crate::case::satisfaction`] allow, the satisfaction question queued to the
    /// customer (in their language), the conversation set to take their next score as the
    /// answer, and the customer's last-asked time kept.
    fn resolve_and_ask(
        &self,
        id: u64,
        agent: &str,
        now: DateTime<Utc>,
        survey: Option<crate::case::satisfaction::SurveyAsk>,
    ) -> Result<Escalation, CaseError>;

    /// The escalation closes without a solution and the conversation goes back to the bot, the
    /// same as [`Store::resolve_escalation`], with the hand-back in the audit log in the same
    /// transaction.
    fn hand_back_escalation(
        &self,
        id: u64,
        agent: &str,
        now: DateTime<Utc>,
    ) -> Result<Escalation, CaseError>;

    /// Every escalation of one conversation, resolved ones too, oldest first: the cases of
    /// several teams a conversation can have at once.
    fn conversation_escalations(
        &self,
        channel: ChannelKind,
        conversation: &str,
    ) -> Result<Vec<Escalation>, StoreError>;

    // --- outbox --------------------------------------------------------------------------

    fn outbox_entry(&self, id: u64) -> Result<Option<OutboxEntry>, StoreError>;

    /// Pending replies whose `next_attempt_at` has come, oldest first, at most `limit`; of each
    /// conversation only its oldest pending reply, and only when that one is due (see
    /// [`crate::case::outbox::InOrder`]): replies reach a conversation in the order queued.
    fn due_outbox(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<OutboxEntry>, StoreError>;

    fn outbox_sent(&self, id: u64, now: DateTime<Utc>) -> Result<OutboxEntry, CaseError>;

    /// A send failed: record the error and try again at `retry_at`, or give up (`None`: the
    /// entry becomes dead and stays visible for a human).
    fn outbox_failed(
        &self,
        id: u64,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<OutboxEntry, CaseError>;

    /// Like [`Store::due_outbox`], for `channels` only. The outbox worker asks only for the
    /// channels it has a running adapter for, so the replies of the others stay pending without
    /// crowding the rest out of the page.
    fn due_outbox_for(
        &self,
        now: DateTime<Utc>,
        channels: &[ChannelKind],
        limit: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError>;

    /// Called right before reply `id` is sent: whether this process may send it now. A store
    /// shared by several instances renews this instance's claim for `hold` and says no when
    /// another instance took the reply over meanwhile (this one's claim ran out while it waited
    /// in a batch), so a slow batch never sends a reply that another instance sends too. A
    /// store only one process opens always says yes.
    fn outbox_take(&self, id: u64, hold: std::time::Duration) -> Result<bool, StoreError> {
        let _ = (id, hold);
        Ok(true)
    }

    /// Gives back replies this process was handed ([`Store::due_outbox_for`]) and will not send
    /// after all (it is stopping): a store shared by several instances ends this instance's
    /// claims, so another sends them at once instead of after the lease. Nothing to do for a
    /// store only one process opens.
    fn outbox_release(&self, ids: &[u64]) -> Result<(), StoreError> {
        let _ = ids;
        Ok(())
    }

    /// The platform asked to wait (a rate limit): try again at `retry_at` without counting an
    /// attempt, so waiting never brings a reply closer to being given up.
    fn outbox_postponed(
        &self,
        id: u64,
        reason: &str,
        retry_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<OutboxEntry, CaseError>;

    /// Gives up on a reply and hands it to a human in one transaction: the entry becomes dead
    /// and an escalation for `team` ("reply could not be delivered: `error`") opens in its
    /// conversation. Audited. An undelivered reply must never be lost silently.
    fn outbox_dead_letter(
        &self,
        id: u64,
        error: &str,
        team: &str,
        sla_deadline: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<DeadLetter, CaseError>;

    /// A conversation's replies (pending, sent and dead), oldest first: what a chat window
    /// shows after a reload.
    fn conversation_outbox(
        &self,
        channel: ChannelKind,
        conversation: &str,
    ) -> Result<Vec<OutboxEntry>, StoreError>;

    /// A platform's later report on reply `id` (delivered, read, failed after all), kept
    /// beside it by [`Receipt::apply`]; the reply's own state does not change. Returns the
    /// receipt as it is now.
    fn outbox_receipt(
        &self,
        id: u64,
        event: ReceiptEvent,
        at: DateTime<Utc>,
    ) -> Result<Receipt, CaseError>;

    /// The receipts of a conversation's replies that have one, by outbox id, oldest first.
    fn outbox_receipts(
        &self,
        channel: ChannelKind,
        conversation: &str,
    ) -> Result<Vec<(u64, Receipt)>, StoreError>;

    /// What a report reads, in one pass over the period instead of one read per conversation:
    /// every message received in `[since, until)` in brief, each with the state of its own reply
    /// when `with_replies` (without, `reply` is `None`: a report's previous period only counts
    /// topics), and every reply with details of its own (an agent's, or one whose message was
    /// deleted) numbered from the first of those messages on. See [`ReportItem`] for the order.
    fn report_scan(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        with_replies: bool,
        visit: &mut dyn FnMut(ReportItem<'_>),
    ) -> Result<(), StoreError>;

    /// The messages received in `[since, until)` that pass `filter`, counted by the store
    /// itself, for a period a report only counts (the previous one, for trends); `None` when
    /// the store cannot count faster than [`Store::report_scan`] hands the messages over (the
    /// embedded stores, whose scan is the count). Hands over the replies with details of their
    /// own as `report_scan` does.
    fn report_count(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        filter: &CountFilter<'_>,
        visit: &mut dyn FnMut(ReportItem<'_>),
    ) -> Result<Option<Counted>, StoreError> {
        let _ = (since, until, filter, visit);
        Ok(None)
    }

    /// Queues a reply a person wrote (an agent) into an existing conversation; audited. The
    /// text is stored with the entry only, never in the shared symbol table, so `forget` can
    /// erase it.
    fn queue_reply(&self, reply: NewReply) -> Result<OutboxEntry, CaseError>;

    // --- audit ---------------------------------------------------------------------------

    fn append_audit(&self, entry: NewAudit) -> Result<u64, StoreError>;

    /// Audit entries after id `after`, oldest first, at most `limit`.
    fn audit_log(&self, after: Option<u64>, limit: usize) -> Result<Vec<AuditEntry>, StoreError>;

    // --- privacy -------------------------------------------------------------------------

    /// Erases everything `author` wrote and the conversations that were theirs alone (with
    /// their escalations and outbox entries), on every channel. The audit entry names the author
    /// only by a one-way hash.
    fn forget_author(
        &self,
        author: &str,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<ForgetReport, StoreError>;

    /// Retention: deletes messages received before `cutoff`, conversations idle since then
    /// without an open escalation (and their resolved escalations), and finished outbox entries
    /// created before it. Audited.
    fn purge_before(
        &self,
        cutoff: DateTime<Utc>,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<PurgeReport, StoreError>;

    // --- rulebook versions ----------------------------------------------------------------

    /// Keeps the files of rulebook `version` and records that `activated_by` put it in force at
    /// `at`, so any past decision can be explained with the exact rules that made it.
    /// Idempotent: a version stored before keeps its files and only gets the new activation.
    /// Returns whether the files were stored now. (The activations are the record of who put
    /// which rules in force; a reload in the service audits itself besides.)
    fn save_rulebook_version(
        &self,
        version: &str,
        files: &[RulebookFile],
        activated_by: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// The files of a stored rulebook version.
    fn rulebook_version(&self, version: &str) -> Result<Option<Vec<RulebookFile>>, StoreError>;

    /// Every stored rulebook version with its activations, in order of first activation.
    fn rulebook_versions(&self) -> Result<Vec<RulebookVersion>, StoreError>;

    // --- crisis switch --------------------------------------------------------------------

    /// The crisis switch a lead set: `Some(true)` on, `Some(false)` off, `None` (also when it
    /// was never set) follow the rulebook's `crisis_mode`. Kept across restarts.
    fn crisis_switch(&self) -> Result<Option<bool>, StoreError>;

    /// Sets the crisis switch and audits it in the same transaction (`crisis.switch`, subject
    /// `on`, `off` or `rulebook`), so what is in force after a restart is what the audit log
    /// says last.
    fn set_crisis_switch(
        &self,
        on: Option<bool>,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    // --- inbox: people and the work on escalations ----------------------------------------

    /// Creates or replaces the user `user.login`; audited (never the password hash).
    fn put_user(&self, user: User, actor: &str, now: DateTime<Utc>) -> Result<User, StoreError>;

    fn user(&self, login: &str) -> Result<Option<User>, StoreError>;

    /// Every user, by login.
    fn users(&self) -> Result<Vec<User>, StoreError>;

    /// Keeps `login`'s choice of inbox language (`nl`, `en`), so it follows them to any
    /// browser; returns whether there was such a user. Removing the user removes it.
    fn set_user_language(&self, login: &str, language: &str) -> Result<bool, StoreError>;

    /// `login`'s chosen inbox language; `None` until they chose one.
    fn user_language(&self, login: &str) -> Result<Option<String>, StoreError>;

    /// Stores an API token of `login` by the SHA-256 `digest` of its text; audited.
    fn add_api_token(
        &self,
        login: &str,
        digest: [u8; 32],
        now: DateTime<Utc>,
    ) -> Result<(), CaseError>;

    /// The user an API token (by its digest) belongs to.
    fn user_by_token(&self, digest: [u8; 32]) -> Result<Option<User>, StoreError>;

    /// Revokes every API token of `login` (audited); returns how many there were.
    fn revoke_api_tokens(
        &self,
        login: &str,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<usize, CaseError>;

    /// Removes `login` and its API tokens (audited): from the next request on, neither a
    /// browser session (which reads the user on every request) nor a token lets them in.
    /// Their name stays on what they did. Returns whether there was such a user.
    fn remove_user(&self, login: &str, actor: &str, now: DateTime<Utc>)
    -> Result<bool, StoreError>;

    /// What the inbox added to escalation `id` (empty when nothing yet).
    fn escalation_work(&self, id: u64) -> Result<EscalationWork, StoreError>;

    /// An internal note on an escalation; audited without its text.
    fn add_escalation_note(
        &self,
        id: u64,
        author: &str,
        text: &str,
        now: DateTime<Utc>,
    ) -> Result<EscalationWork, CaseError>;

    /// An agent's reply in one transaction: queued in the outbox to the escalation's
    /// conversation (answering its last message), the escalation claimed by `author` when
    /// nobody had claimed it, the conversation handed to a human (the bot goes silent), and
    /// the first reply recorded as the first human response, which meets the SLA (the
    /// escalation's deadline is cleared). Audited without the text.
    fn reply_to_escalation(
        &self,
        id: u64,
        author: &str,
        text: &str,
        now: DateTime<Utc>,
    ) -> Result<(Escalation, OutboxEntry), CaseError>;

    /// Moves an unresolved escalation to `team` with a new deadline (a claim is released: the
    /// new team picks it up); audited.
    fn reassign_escalation(
        &self,
        id: u64,
        team: &str,
        sla_deadline: Option<DateTime<Utc>>,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Escalation, CaseError>;

    /// Applies an SLA breach: the escalation moves to `breach.to_team` at `breach.to_priority`
    /// with `breach.next_deadline`, the claim is released, and the breach is recorded in its
    /// history, its work and the audit log. Only while the escalation is unresolved and
    /// `breach.deadline` is still its deadline; otherwise nothing is written and `None` is
    /// returned, so a breach is handled once however often it is offered.
    fn record_sla_breach(&self, breach: SlaBreach) -> Result<Option<Escalation>, StoreError>;

    /// Takes what escalation `id`'s team is still to hear of ([`crate::case::Announce`], oldest
    /// first) and clears it in the same transaction, so of two instances offering it only one
    /// gets it. `None` when nothing is pending or the escalation no longer exists.
    fn take_announcements(
        &self,
        id: u64,
    ) -> Result<Option<(Vec<crate::case::Announce>, Escalation)>, StoreError>;

    // --- maintenance ---------------------------------------------------------------------

    fn stats(&self) -> Result<StoreStats, StoreError>;

    /// Writes one small record durably (when the service last checked that it can write). It
    /// is how `/healthz` learns that intake can write again after a failure (a full disk, a
    /// database that was down) without waiting for a message, which a load balancer no longer
    /// sends to an instance it took out.
    fn probe_write(&self, now: DateTime<Utc>) -> Result<(), StoreError>;

    // --- several instances -----------------------------------------------------------------

    /// How several instances on this store coordinate (signals, leader roles, shared inbox
    /// sessions and login limits); `None` for the embedded backends, which one process opens.
    fn cluster(&self) -> Option<Arc<dyn crate::cluster::Cluster>> {
        None
    }

    // --- export: what `webcare migrate` copies to another backend ---------------------------

    /// Every conversation, by channel and id.
    fn conversation_keys(&self) -> Result<Vec<(ChannelKind, String)>, StoreError>;

    /// The id of every escalation, resolved ones too, in order.
    fn escalation_ids(&self) -> Result<Vec<u64>, StoreError>;

    /// The id of every outbox entry (pending, sent and dead), in order.
    fn outbox_ids(&self) -> Result<Vec<u64>, StoreError>;

    /// The tombstone of every delivery `forget` erased: its [`erased_digest`] and when.
    fn erased_deliveries(&self) -> Result<Vec<Tombstone>, StoreError>;

    /// Writes a consistent copy of the whole store, as of one moment, into the new store file
    /// or directory `target` (which must not exist), while the store stays in use. A fresh
    /// copy holds only live data: nothing an erasure removed.
    fn backup(&self, target: &Path) -> Result<(), StoreError> {
        let _ = target;
        Err(StoreError::Unsupported(
            "this backend makes no backups itself; use its own tools (pg_dump for PostgreSQL)",
        ))
    }
}

/// Stores `rulebook`'s version and files as activated by `actor` at `at`: what a service calls
/// when a rulebook goes into force (at start and on every reload), before the first message is
/// decided with it.
pub fn save_rulebook(
    store: &dyn Store,
    rulebook: &crate::Rulebook,
    actor: &str,
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    store.save_rulebook_version(&rulebook.version, &rulebook.source.files(), actor, at)
}

/// Reads all stored history from `since` in `received_at` order, one page at a time, so a
/// replay of years of traffic runs in constant memory.
pub fn history(store: &dyn Store, since: Option<DateTime<Utc>>) -> History<'_> {
    History {
        store,
        since,
        cursor: None,
        page: Vec::new().into_iter(),
        done: false,
    }
}

/// The iterator [`history`] returns.
pub struct History<'a> {
    store: &'a dyn Store,
    since: Option<DateTime<Utc>>,
    cursor: Option<HistoryCursor>,
    page: std::vec::IntoIter<StoredMessage>,
    done: bool,
}

impl Iterator for History<'_> {
    type Item = Result<StoredMessage, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        const PAGE: usize = 512;
        if let Some(next) = self.page.next() {
            return Some(Ok(next));
        }
        if self.done {
            return None;
        }
        match self.store.history_page(self.since, self.cursor, PAGE) {
            Ok(page) => {
                self.done = page.len() < PAGE;
                self.cursor = page.last().map(StoredMessage::cursor);
                self.page = page.into_iter();
                self.page.next().map(Ok)
            }
            Err(error) => {
                self.done = true;
                Some(Err(error))
            }
        }
    }
}

/// Where a [`Store::history_page`] stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryCursor {
    pub received_at: DateTime<Utc>,
    pub seq: u64,
}

/// [`Store::intake_lookup`] for `message`, received on `today`.
fn lookup_of<S: Store + ?Sized>(
    store: &S,
    message: &Inbound,
    today: NaiveDate,
) -> Result<IntakeLookup, StoreError> {
    store.intake_lookup(
        message.channel,
        &message.id,
        &message.conversation,
        message.received_at,
        today,
    )
}
