//! The store on PostgreSQL: for organisations that run more than one `webcare run`, or cannot
//! accept that the machine with the embedded store is a single point of failure. The database is
//! then the only coordinator between instances, so every guarantee the embedded writer gives by
//! being the only writer is given here by the database itself:
//!
//! - **a delivery is taken in once**: `messages` has a unique key on `(channel, id)`; an intake
//!   that loses the race finds the first one's row and returns its decision as a duplicate;
//! - **one conversation at a time**: every transaction that changes a conversation (intake,
//!   claim, reply, resolve, dead letter) first takes a transaction-level advisory lock on it
//!   (`pg_advisory_xact_lock`), so its messages are counted and escalated in one order whichever
//!   instance received them, and two such transactions cannot deadlock on its rows;
//! - **each reply sent once, in order**: [`Store::due_outbox_for`] claims the first pending reply
//!   of each conversation with `FOR UPDATE SKIP LOCKED` and leases it to this instance for
//!   [`CLAIM_SECS`]; another instance takes it over only when the lease ran out (its worker
//!   died). A later reply of the conversation waits until the earlier one is finished.
//!
//! The schema is plain tables with proper columns (`migrations/`), because management reporting
//! tools read it with SQL. The sync `postgres` client fits the sync [`Store`] trait (callers
//! already run store calls on blocking threads); `r2d2` pools the connections, checks each one
//! before use and opens a new one when the server is back after an outage, so an instance
//! recovers by itself. While the server is unreachable every call fails with
//! [`StoreError::Unavailable`], which the channels answer with 503: nothing is acknowledged that
//! was not committed.
//!
//! # Layout
//!
//! - this file: the connection pool, errors, the [`Store`] trait handed to the area files.
//! - `url`: the connection URL, a secret that never reaches a log.
//! - `migrate`: the versioned schema migrations in `migrations/`.
//! - `rows`: reading records back from rows; `error`: driver errors as store errors.
//! - `intake`: dedupe, intake, history; `cases`: conversations, escalations, the outbox;
//!   `work`: users, tokens and the inbox's work; `admin`: audit, rulebook versions, crisis
//!   switch, forget, retention, stats; `report`: what a report reads, and what it counts in SQL.
//! - `cluster`, `listen`: several instances (see [`crate::cluster`]): NOTIFY/LISTEN, leader
//!   roles by session advisory locks, shared inbox sessions and login limits.
//! - `copy`: `webcare migrate --from DATA_DIR --to postgres://…`.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use r2d2_postgres::PostgresConnectionManager;
use r2d2_postgres::postgres::{self, NoTls, Transaction};

use super::records::audit;
use super::redact::Redactor;
use super::{
    AuditEntry, Backend, Conversation, CountFilter, Counted, DeadLetter, Escalation,
    EscalationWork, ForgetReport, HistoryCursor, IntakeLookup, IntakeReceipt, IntakeRecord,
    NewAudit, NewReply, OutboxEntry, PurgeReport, ReportItem, RulebookFile, RulebookVersion,
    SlaBreach, Store, StoreError, StoreStats, StoredMessage, User,
};
use crate::case::escalation::Closing;
use crate::case::outbox::{Receipt, ReceiptEvent};
use crate::case::{CaseError, ConversationFacts, ConversationState};
use crate::message::{ChannelKind, Inbound};

mod admin;
mod cases;
mod cluster;
pub mod copy;
mod error;
mod intake;
mod listen;
mod migrate;
mod report;
mod rows;
mod url;
mod work;

pub use error::PgErr;
use error::{corrupt, where_};

pub use cluster::PgCluster;
pub use migrate::{MIGRATIONS, Migration};
pub use url::PgUrl;

/// How long an instance's outbox worker owns the replies it took before another instance may
/// take them over: longer than a delivery may take (`[outbox] send_timeout_secs`, 15 s by
/// default), short enough that the replies of a dead instance go out soon. `[store]
/// claim_secs` changes it.
pub const CLAIM_SECS: i64 = 60;

/// How long a caller waits for a connection before the call fails with
/// [`StoreError::Unavailable`]: a delivery then gets a 503 within this time and the platform
/// retries, instead of hanging while the server is down.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

type Pool = r2d2::Pool<PostgresConnectionManager<NoTls>>;

/// The [`Store`] on a PostgreSQL database.
pub struct PgStore {
    /// `None` only while dropping (see the `Drop` impl).
    pool: Option<Pool>,
    redactor: Option<Redactor>,
    /// This process's name in outbox claims and signals: unique per open store.
    instance: String,
    /// Signals, leader roles, shared sessions and login limits (see [`crate::cluster`]).
    cluster: std::sync::Arc<PgCluster>,
    /// The outbox claim lease, [`CLAIM_SECS`] unless the service sets it
    /// ([`crate::cluster::Cluster::set_claim`]).
    claim_secs: std::sync::Arc<std::sync::atomic::AtomicI64>,
}

/// The connection settings of `url`.
fn config(url: &PgUrl) -> Result<postgres::Config, StoreError> {
    let mut config: postgres::Config = url.expose().parse().map_err(|e| StoreError::Config {
        reason: format!("the PostgreSQL URL {url} cannot be read: {e}"),
    })?;
    config.connect_timeout(CONNECT_TIMEOUT);
    if config.get_application_name().is_none() {
        config.application_name("webcare");
    }
    Ok(config)
}

/// The pool of `url`, without touching the database yet.
fn pool(url: &PgUrl, size: u32) -> Result<Pool, StoreError> {
    let config = config(url)?;
    let manager = PostgresConnectionManager::new(config, NoTls);
    Ok(r2d2::Pool::builder()
        .max_size(size)
        .min_idle(Some(1))
        .connection_timeout(CONNECT_TIMEOUT)
        // r2d2 logs every failed connect itself; ours go through our errors.
        .error_handler(Box::new(r2d2::NopErrorHandler))
        .build_unchecked(manager))
}

impl PgStore {
    /// Connects to `url`, applies the migrations this webcare has and the database lacks, and
    /// returns the store. A database that is unreachable is [`StoreError::Unavailable`]; one whose
    /// schema is newer than this webcare is [`StoreError::Version`].
    pub fn open(url: &PgUrl, redact: bool) -> Result<Self, StoreError> {
        let pool = pool(url, 16)?;
        {
            let mut conn = get(&pool)?;
            migrate::apply(&mut conn).map_err(PgErr::store)?;
        }
        let instance = format!(
            "{}-{}-{}",
            std::process::id(),
            Utc::now().timestamp_micros(),
            INSTANCES.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let claim_secs = std::sync::Arc::new(std::sync::atomic::AtomicI64::new(CLAIM_SECS));
        let cluster = std::sync::Arc::new(PgCluster::new(
            pool.clone(),
            config(url)?,
            instance.clone(),
            std::sync::Arc::clone(&claim_secs),
        ));
        Ok(PgStore {
            pool: Some(pool),
            redactor: redact.then(Redactor::new),
            instance,
            cluster,
            claim_secs,
        })
    }

    fn conn(&self) -> Result<r2d2::PooledConnection<PostgresConnectionManager<NoTls>>, PgErr> {
        match &self.pool {
            Some(pool) => Ok(get(pool)?),
            None => Err(PgErr::Store(StoreError::Unavailable {
                reason: "the store is closing".into(),
            })),
        }
    }

    /// Runs `f` in one transaction and commits it. A transaction the server aborted because it
    /// collided with another (a deadlock, a serialization failure) is run again, a few times:
    /// the caller never sees a conflict between two instances that the rules do not know.
    fn tx<T>(
        &self,
        mut f: impl FnMut(&mut Transaction<'_>) -> Result<T, PgErr>,
    ) -> Result<T, PgErr> {
        let mut conn = self.conn()?;
        let mut tries = 0;
        loop {
            tries += 1;
            let mut tx = conn.transaction()?;
            let result = f(&mut tx);
            let outcome = match result {
                Ok(value) => tx.commit().map(|()| value),
                Err(e) => {
                    // Rolled back on drop; a rule's refusal is the answer.
                    drop(tx);
                    return Err(e);
                }
            };
            match outcome {
                Ok(value) => return Ok(value),
                Err(e) if tries < 5 && retryable(&e) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn redact(&self, text: &str) -> String {
        match &self.redactor {
            Some(r) => r.redact(text).into_owned(),
            None => text.to_owned(),
        }
    }
}

/// Applies the migrations the database at `url` lacks (what `webcare migrate` does); returns
/// the versions and names applied now, empty when it was up to date.
pub fn migrate(url: &PgUrl) -> Result<Vec<(i32, &'static str)>, StoreError> {
    let pool = pool(url, 1)?;
    let mut conn = get(&pool)?;
    let applied = migrate::apply(&mut conn).map_err(PgErr::store)?;
    Ok(MIGRATIONS
        .iter()
        .filter(|m| applied.contains(&m.version))
        .map(|m| (m.version, m.name))
        .collect())
}

impl Drop for PgStore {
    /// The sync client closes each connection by running its own small async runtime, which
    /// panics on a thread inside the service's tokio runtime, where the last handle to the store
    /// may well be dropped at shutdown. So the pool is dropped on a thread of its own.
    fn drop(&mut self) {
        if let Some(pool) = self.pool.take() {
            let closer = std::thread::Builder::new()
                .name("webcare-pg-close".into())
                .spawn(move || drop(pool));
            if let Ok(closer) = closer {
                let _ = closer.join();
            }
        }
    }
}

static INSTANCES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn get(
    pool: &Pool,
) -> Result<r2d2::PooledConnection<PostgresConnectionManager<NoTls>>, StoreError> {
    pool.get().map_err(|e| StoreError::Unavailable {
        reason: e.to_string(),
    })
}

/// A transaction that failed only because it met another one, and succeeds when run again.
fn retryable(e: &postgres::Error) -> bool {
    use postgres::error::SqlState;
    e.code().is_some_and(|c| {
        *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED
    })
}

/// The advisory lock of one conversation, taken at the start of every transaction that changes
/// it and held until that transaction ends. The two-key form keeps webcare's locks apart from
/// any an operator takes with one key.
pub(super) fn lock_conversation(
    tx: &mut Transaction<'_>,
    channel: ChannelKind,
    conversation: &str,
) -> Result<(), postgres::Error> {
    tx.execute(
        "SELECT pg_advisory_xact_lock(1466262, hashtext($1 || '/' || $2))",
        &[&channel.as_str(), &conversation],
    )?;
    Ok(())
}

/// The name the errors give the store.
/// Appends an audit entry in the transaction `tx`.
fn append_audit(tx: &mut Transaction<'_>, entry: &NewAudit) -> Result<u64, PgErr> {
    let row = tx.query_one(
        "INSERT INTO audit (at, actor, action, subject, details) VALUES ($1, $2, $3, $4, $5) RETURNING id",
        &[&entry.at, &entry.actor, &entry.action, &entry.subject, &entry.details],
    )?;
    Ok(row.get::<_, i64>(0) as u64)
}

impl Store for PgStore {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    fn message(&self, channel: ChannelKind, id: &str) -> Result<Option<StoredMessage>, StoreError> {
        PgStore::message(self, channel, id).map_err(PgErr::store)
    }

    fn conversation_facts(
        &self,
        channel: ChannelKind,
        conversation: &str,
        at: DateTime<Utc>,
        today: NaiveDate,
    ) -> Result<ConversationFacts, StoreError> {
        Ok(PgStore::conversation(self, channel, conversation)
            .map_err(PgErr::store)?
            .map(|c| c.facts(at, today))
            .unwrap_or_default())
    }

    fn intake_lookup(
        &self,
        channel: ChannelKind,
        id: &str,
        conversation: &str,
        at: DateTime<Utc>,
        today: NaiveDate,
    ) -> Result<IntakeLookup, StoreError> {
        PgStore::intake_lookup(self, channel, id, conversation, at, today).map_err(PgErr::store)
    }

    fn decide_and_record(
        &self,
        message: crate::message::Inbound,
        today: NaiveDate,
        decide: &mut dyn FnMut(crate::message::Inbound, ConversationFacts) -> IntakeRecord,
    ) -> Result<IntakeReceipt, StoreError> {
        PgStore::decide_and_record(self, message, today, decide).map_err(PgErr::store)
    }

    fn record_intake(&self, intake: IntakeRecord) -> Result<IntakeReceipt, StoreError> {
        let mut receipts = PgStore::record_intakes(self, vec![intake]).map_err(PgErr::store)?;
        receipts
            .pop()
            .ok_or_else(|| corrupt("intake returned no receipt").store())
    }

    fn record_intakes(&self, intakes: Vec<IntakeRecord>) -> Result<Vec<IntakeReceipt>, StoreError> {
        PgStore::record_intakes(self, intakes).map_err(PgErr::store)
    }

    fn history_page(
        &self,
        since: Option<DateTime<Utc>>,
        cursor: Option<HistoryCursor>,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        PgStore::history_page(self, since, cursor, limit).map_err(PgErr::store)
    }

    fn conversation_messages(
        &self,
        channel: ChannelKind,
        conversation: &str,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        PgStore::conversation_messages(self, channel, conversation).map_err(PgErr::store)
    }

    fn conversation(
        &self,
        channel: ChannelKind,
        conversation: &str,
    ) -> Result<Option<Conversation>, StoreError> {
        PgStore::conversation(self, channel, conversation).map_err(PgErr::store)
    }

    fn set_conversation_state(
        &self,
        channel: ChannelKind,
        conversation: &str,
        state: ConversationState,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Conversation, CaseError> {
        PgStore::set_conversation_state(self, channel, conversation, state, actor, now)
            .map_err(PgErr::case)
    }

    fn escalation(&self, id: u64) -> Result<Option<Escalation>, StoreError> {
        PgStore::escalation(self, id).map_err(PgErr::store)
    }

    fn open_escalations(&self) -> Result<Vec<Escalation>, StoreError> {
        PgStore::open_escalations(self).map_err(PgErr::store)
    }

    fn inbound_messages(&self, keys: &[(ChannelKind, String)]) -> Result<Vec<Inbound>, StoreError> {
        PgStore::inbound_messages(self, keys).map_err(PgErr::store)
    }

    fn author_conversations(&self, author: &str) -> Result<Vec<(ChannelKind, String)>, StoreError> {
        PgStore::author_conversations(self, author).map_err(PgErr::store)
    }

    fn claim_escalation(
        &self,
        id: u64,
        agent: &str,
        now: DateTime<Utc>,
    ) -> Result<Escalation, CaseError> {
        PgStore::claim_escalation(self, id, agent, now).map_err(PgErr::case)
    }

    fn resolve_and_ask(
        &self,
        id: u64,
        agent: &str,
        now: DateTime<Utc>,
        survey: Option<crate::case::satisfaction::SurveyAsk>,
    ) -> Result<Escalation, CaseError> {
        PgStore::resolve_escalation(self, id, agent, now, survey, Closing::Solved)
            .map_err(PgErr::case)
    }

    fn hand_back_escalation(
        &self,
        id: u64,
        agent: &str,
        now: DateTime<Utc>,
    ) -> Result<Escalation, CaseError> {
        PgStore::resolve_escalation(self, id, agent, now, None, Closing::HandedBack)
            .map_err(PgErr::case)
    }

    fn conversation_escalations(
        &self,
        channel: ChannelKind,
        conversation: &str,
    ) -> Result<Vec<Escalation>, StoreError> {
        PgStore::conversation_escalations(self, channel, conversation).map_err(PgErr::store)
    }

    fn outbox_entry(&self, id: u64) -> Result<Option<OutboxEntry>, StoreError> {
        PgStore::outbox_entry(self, id).map_err(PgErr::store)
    }

    fn due_outbox(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<OutboxEntry>, StoreError> {
        PgStore::due_outbox_for(self, now, &ChannelKind::ALL, limit).map_err(PgErr::store)
    }

    fn outbox_sent(&self, id: u64, now: DateTime<Utc>) -> Result<OutboxEntry, CaseError> {
        self.change_delivery(id, |d| Ok(d.sent(id, now)?))
            .map_err(PgErr::case)
    }

    fn outbox_failed(
        &self,
        id: u64,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
        _now: DateTime<Utc>,
    ) -> Result<OutboxEntry, CaseError> {
        self.change_delivery(id, |d| Ok(d.failed(id, error, retry_at)?))
            .map_err(PgErr::case)
    }

    fn due_outbox_for(
        &self,
        now: DateTime<Utc>,
        channels: &[ChannelKind],
        limit: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        PgStore::due_outbox_for(self, now, channels, limit).map_err(PgErr::store)
    }

    fn outbox_take(&self, id: u64, hold: Duration) -> Result<bool, StoreError> {
        PgStore::outbox_take(self, id, hold).map_err(PgErr::store)
    }

    fn outbox_release(&self, ids: &[u64]) -> Result<(), StoreError> {
        PgStore::outbox_release(self, ids).map_err(PgErr::store)
    }

    fn outbox_postponed(
        &self,
        id: u64,
        reason: &str,
        retry_at: DateTime<Utc>,
        _now: DateTime<Utc>,
    ) -> Result<OutboxEntry, CaseError> {
        self.change_delivery(id, |d| Ok(d.postponed(id, reason, retry_at)?))
            .map_err(PgErr::case)
    }

    fn outbox_dead_letter(
        &self,
        id: u64,
        error: &str,
        team: &str,
        sla_deadline: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<DeadLetter, CaseError> {
        PgStore::outbox_dead_letter(self, id, error, team, sla_deadline, now).map_err(PgErr::case)
    }

    fn conversation_outbox(
        &self,
        channel: ChannelKind,
        conversation: &str,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        PgStore::conversation_outbox(self, channel, conversation).map_err(PgErr::store)
    }

    fn report_scan(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        with_replies: bool,
        visit: &mut dyn FnMut(ReportItem<'_>),
    ) -> Result<(), StoreError> {
        PgStore::report_scan(self, since, until, with_replies, visit).map_err(PgErr::store)
    }

    fn report_count(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        filter: &CountFilter<'_>,
        visit: &mut dyn FnMut(ReportItem<'_>),
    ) -> Result<Option<Counted>, StoreError> {
        let counted = PgStore::report_count(self, since, until, filter, visit);
        counted.map(Some).map_err(PgErr::store)
    }

    fn queue_reply(&self, reply: NewReply) -> Result<OutboxEntry, CaseError> {
        PgStore::queue_reply(self, reply).map_err(PgErr::case)
    }

    fn outbox_receipt(
        &self,
        id: u64,
        event: ReceiptEvent,
        at: DateTime<Utc>,
    ) -> Result<Receipt, CaseError> {
        PgStore::outbox_receipt(self, id, &event, at).map_err(PgErr::case)
    }

    fn outbox_receipts(
        &self,
        channel: ChannelKind,
        conversation: &str,
    ) -> Result<Vec<(u64, Receipt)>, StoreError> {
        PgStore::outbox_receipts(self, channel, conversation).map_err(PgErr::store)
    }

    fn append_audit(&self, entry: NewAudit) -> Result<u64, StoreError> {
        self.tx(|tx| append_audit(tx, &entry)).map_err(PgErr::store)
    }

    fn audit_log(&self, after: Option<u64>, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        PgStore::audit_log(self, after, limit).map_err(PgErr::store)
    }

    fn forget_author(
        &self,
        author: &str,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<ForgetReport, StoreError> {
        PgStore::forget_author(self, author, actor, now).map_err(PgErr::store)
    }

    fn purge_before(
        &self,
        cutoff: DateTime<Utc>,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<PurgeReport, StoreError> {
        PgStore::purge_before(self, cutoff, actor, now).map_err(PgErr::store)
    }

    fn save_rulebook_version(
        &self,
        version: &str,
        files: &[RulebookFile],
        activated_by: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        PgStore::save_rulebook_version(self, version, files, activated_by, at).map_err(PgErr::store)
    }

    fn rulebook_version(&self, version: &str) -> Result<Option<Vec<RulebookFile>>, StoreError> {
        PgStore::rulebook_version(self, version).map_err(PgErr::store)
    }

    fn rulebook_versions(&self) -> Result<Vec<RulebookVersion>, StoreError> {
        PgStore::rulebook_versions(self).map_err(PgErr::store)
    }

    fn crisis_switch(&self) -> Result<Option<bool>, StoreError> {
        PgStore::crisis_switch(self).map_err(PgErr::store)
    }

    fn set_crisis_switch(
        &self,
        on: Option<bool>,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        PgStore::set_crisis_switch(self, on, actor, now).map_err(PgErr::store)
    }

    fn put_user(&self, user: User, actor: &str, now: DateTime<Utc>) -> Result<User, StoreError> {
        PgStore::put_user(self, user, actor, now).map_err(PgErr::store)
    }

    fn user(&self, login: &str) -> Result<Option<User>, StoreError> {
        PgStore::user(self, login).map_err(PgErr::store)
    }

    fn users(&self) -> Result<Vec<User>, StoreError> {
        PgStore::users(self).map_err(PgErr::store)
    }

    fn add_api_token(
        &self,
        login: &str,
        digest: [u8; 32],
        now: DateTime<Utc>,
    ) -> Result<(), CaseError> {
        PgStore::add_api_token(self, login, digest, now).map_err(PgErr::case)
    }

    fn user_by_token(&self, digest: [u8; 32]) -> Result<Option<User>, StoreError> {
        PgStore::user_by_token(self, digest).map_err(PgErr::store)
    }

    fn revoke_api_tokens(
        &self,
        login: &str,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<usize, CaseError> {
        PgStore::revoke_api_tokens(self, login, actor, now).map_err(PgErr::case)
    }

    fn set_user_language(&self, login: &str, language: &str) -> Result<bool, StoreError> {
        PgStore::set_user_language(self, login, language).map_err(PgErr::store)
    }

    fn user_language(&self, login: &str) -> Result<Option<String>, StoreError> {
        PgStore::user_language(self, login).map_err(PgErr::store)
    }

    fn remove_user(
        &self,
        login: &str,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        PgStore::remove_user(self, login, actor, now).map_err(PgErr::store)
    }

    fn escalation_work(&self, id: u64) -> Result<EscalationWork, StoreError> {
        let mut conn = self.conn().map_err(PgErr::store)?;
        work::load_work(&mut *conn, id).map_err(PgErr::store)
    }

    fn add_escalation_note(
        &self,
        id: u64,
        author: &str,
        text: &str,
        now: DateTime<Utc>,
    ) -> Result<EscalationWork, CaseError> {
        PgStore::add_escalation_note(self, id, author, text, now).map_err(PgErr::case)
    }

    fn reply_to_escalation(
        &self,
        id: u64,
        author: &str,
        text: &str,
        now: DateTime<Utc>,
    ) -> Result<(Escalation, OutboxEntry), CaseError> {
        PgStore::reply_to_escalation(self, id, author, text, now).map_err(PgErr::case)
    }

    fn reassign_escalation(
        &self,
        id: u64,
        team: &str,
        sla_deadline: Option<DateTime<Utc>>,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Escalation, CaseError> {
        PgStore::reassign_escalation(self, id, team, sla_deadline, actor, now).map_err(PgErr::case)
    }

    fn record_sla_breach(&self, breach: SlaBreach) -> Result<Option<Escalation>, StoreError> {
        PgStore::record_sla_breach(self, breach).map_err(PgErr::store)
    }

    fn take_announcements(
        &self,
        id: u64,
    ) -> Result<Option<(Vec<crate::case::Announce>, Escalation)>, StoreError> {
        PgStore::take_announcements(self, id).map_err(PgErr::store)
    }

    fn probe_write(&self, now: DateTime<Utc>) -> Result<(), StoreError> {
        let at = serde_json::Value::String(now.to_rfc3339());
        self.conn()
            .and_then(|mut conn| {
                conn.execute(
                    "INSERT INTO settings (name, value) VALUES ('write_probe', $1)
                     ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value",
                    &[&at],
                )
                .map_err(PgErr::from)
            })
            .map(drop)
            .map_err(PgErr::store)
    }

    fn stats(&self) -> Result<StoreStats, StoreError> {
        PgStore::stats(self).map_err(PgErr::store)
    }

    fn conversation_keys(&self) -> Result<Vec<(ChannelKind, String)>, StoreError> {
        let rows = self
            .conn()
            .map_err(PgErr::store)?
            .query(
                "SELECT channel, id FROM conversations ORDER BY channel, id",
                &[],
            )
            .map_err(|e| PgErr::from(e).store())?;
        rows.iter()
            .map(|r| Ok((rows::parse(r.get(0)).map_err(PgErr::store)?, r.get(1))))
            .collect()
    }

    fn cluster(&self) -> Option<std::sync::Arc<dyn crate::cluster::Cluster>> {
        Some(std::sync::Arc::clone(&self.cluster) as std::sync::Arc<dyn crate::cluster::Cluster>)
    }

    fn escalation_ids(&self) -> Result<Vec<u64>, StoreError> {
        self.ids("SELECT id FROM escalations ORDER BY id")
            .map_err(PgErr::store)
    }

    fn outbox_ids(&self) -> Result<Vec<u64>, StoreError> {
        self.ids("SELECT id FROM outbox ORDER BY id")
            .map_err(PgErr::store)
    }

    fn erased_deliveries(&self) -> Result<Vec<super::Tombstone>, StoreError> {
        let rows = self
            .conn()
            .and_then(|mut conn| {
                conn.query(
                    "SELECT digest, erased_at FROM erased_deliveries ORDER BY digest",
                    &[],
                )
                .map_err(PgErr::from)
            })
            .map_err(PgErr::store)?;
        rows.iter()
            .map(|row| {
                let digest: Vec<u8> = row.try_get(0).map_err(PgErr::from)?;
                let digest = digest
                    .try_into()
                    .map_err(|_| corrupt("a tombstone digest is not 32 bytes"))?;
                Ok((digest, row.try_get(1).map_err(PgErr::from)?))
            })
            .collect::<Result<_, PgErr>>()
            .map_err(PgErr::store)
    }
}

impl PgStore {
    fn ids(&self, sql: &str) -> Result<Vec<u64>, PgErr> {
        Ok(self
            .conn()?
            .query(sql, &[])?
            .iter()
            .map(|r| r.get::<_, i64>(0) as u64)
            .collect())
    }
}
