//! `webcare migrate --from DATA_DIR --to postgres://…`: an organisation that started on the
//! embedded store moves to PostgreSQL without losing its history. Everything is copied with its
//! own numbers (messages, escalations, outbox entries and audit entries keep their ids, so an
//! audit line that says `outbox 17` still points at the right row), in one transaction, into a
//! database that must hold no webcare data yet. Then the counts are compared, table by table,
//! and a difference is an error.
//!
//! API tokens are not copied: the embedded store keeps them by digest only and cannot list
//! them; people make new ones with `webcare user token`. The report says so.

use std::collections::HashSet;

use r2d2_postgres::postgres::Transaction;

use super::rows::{self, OUTBOX_COLUMNS};
use super::{PgErr, PgStore, PgUrl};
use crate::case::outbox::OutboxStatus;
use crate::store::{Store, StoreError, history};

/// How much was copied; each count was compared with the source.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CopyReport {
    pub messages: u64,
    pub conversations: u64,
    pub escalations: u64,
    pub outbox: u64,
    pub users: u64,
    pub audit: u64,
    pub rulebook_versions: u64,
}

impl std::fmt::Display for CopyReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} messages, {} conversations, {} escalations, {} outbox entries, {} users, {} audit entries, {} rulebook versions",
            self.messages,
            self.conversations,
            self.escalations,
            self.outbox,
            self.users,
            self.audit,
            self.rulebook_versions
        )
    }
}

/// Copies everything in `from` into the (empty) PostgreSQL store at `to`, and checks the counts.
pub fn copy(from: &dyn Store, to: &PgUrl) -> Result<CopyReport, StoreError> {
    // Opening applies the migrations: the copy goes into the current schema.
    let target = PgStore::open(to, false)?;
    target.tx(|tx| copy_in(from, tx)).map_err(PgErr::store)
}

fn copy_in(from: &dyn Store, tx: &mut Transaction<'_>) -> Result<CopyReport, PgErr> {
    let present: i64 = tx
        .query_one(
            "SELECT (SELECT count(*) FROM messages) + (SELECT count(*) FROM audit) + (SELECT count(*) FROM conversations) + (SELECT count(*) FROM users)",
            &[],
        )?
        .get(0);
    if present > 0 {
        return Err(PgErr::Store(StoreError::Config {
            reason:
                "the target database already holds webcare data; migrate into an empty database"
                    .into(),
        }));
    }
    let mut report = CopyReport::default();
    let mut seqs = HashSet::new();

    for stored in history(from, None) {
        let stored = stored?;
        seqs.insert(stored.seq);
        super::intake::insert_stored(tx, &stored)?;
        report.messages += 1;
    }
    for (channel, id) in from.conversation_keys()? {
        if let Some(conversation) = from.conversation(channel, &id)? {
            rows::write_conversation(&mut *tx, &conversation)?;
            report.conversations += 1;
        }
    }
    for id in from.escalation_ids()? {
        let Some(esc) = from.escalation(id)? else {
            continue;
        };
        let (status, by) = rows::status_columns(&esc.status);
        let work = from.escalation_work(id)?;
        tx.execute(
            "INSERT INTO escalations (id, channel, conversation, team, priority, reason, status, status_by, created_at, sla_deadline, messages, first_response_at)
             OVERRIDING SYSTEM VALUE VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            &[
                &(id as i64),
                &esc.channel.as_str(),
                &esc.conversation,
                &esc.team,
                &esc.priority.as_str(),
                &esc.reason,
                &status,
                &by,
                &esc.created_at,
                &esc.sla_deadline,
                &esc.messages,
                &work.first_response_at,
            ],
        )?;
        rows::write_case(&mut *tx, id, &esc.case)?;
        for event in &esc.history {
            rows::event(&mut *tx, id, event.at, &event.actor, &event.change)?;
        }
        for note in &work.notes {
            tx.execute(
                "INSERT INTO escalation_notes (escalation, at, author, text) VALUES ($1, $2, $3, $4)",
                &[&(id as i64), &note.at, &note.author, &note.text],
            )?;
        }
        for reply in &work.replies {
            tx.execute(
                "INSERT INTO escalation_replies (escalation, at, author, outbox) VALUES ($1, $2, $3, $4)",
                &[&(id as i64), &reply.at, &reply.author, &(reply.outbox as i64)],
            )?;
        }
        for b in &work.breaches {
            tx.execute(
                "INSERT INTO sla_breaches (escalation, deadline, from_team, to_team, from_priority, to_priority, next_deadline, at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[
                    &(id as i64),
                    &b.deadline,
                    &b.from_team,
                    &b.to_team,
                    &b.from_priority.as_str(),
                    &b.to_priority.as_str(),
                    &b.next_deadline,
                    &b.at,
                ],
            )?;
        }
        report.escalations += 1;
    }
    // The conversations with replies, for their receipts after the replies are in.
    let mut replied: Vec<(crate::message::ChannelKind, String)> = Vec::new();
    for id in from.outbox_ids()? {
        let Some(e) = from.outbox_entry(id)? else {
            continue;
        };
        replied.push((e.channel, e.conversation.clone()));
        let (status, sent_at) = match e.status {
            OutboxStatus::Pending => ("pending", None),
            OutboxStatus::Sent { at } => ("sent", Some(at)),
            OutboxStatus::Dead => ("dead", None),
        };
        let next = (e.next_attempt_at != e.created_at).then_some(e.next_attempt_at);
        tx.execute(
            &format!(
                "INSERT INTO outbox ({OUTBOX_COLUMNS}, own_details) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
            ),
            &[
                &(id as i64),
                &e.channel.as_str(),
                &e.conversation,
                &e.in_reply_to,
                &e.text,
                &(e.attempts as i32),
                &e.last_error,
                &status,
                &sent_at,
                &e.created_at,
                &next,
                // A reply whose message is not its number stands on its own.
                &!seqs.contains(&id),
            ],
        )?;
        report.outbox += 1;
    }
    replied.sort_unstable_by(|a, b| (a.0.as_str(), &a.1).cmp(&(b.0.as_str(), &b.1)));
    replied.dedup();
    for (channel, conversation) in replied {
        for (id, receipt) in from.outbox_receipts(channel, &conversation)? {
            let json = serde_json::to_value(&receipt)
                .map_err(|e| super::corrupt(format!("outbox {id} receipt: {e}")))?;
            tx.execute(
                "UPDATE outbox SET receipt = $2 WHERE id = $1",
                &[&(id as i64), &json],
            )?;
        }
    }
    for user in from.users()? {
        let language = from.user_language(&user.login)?;
        tx.execute(
            "INSERT INTO users (login, name, role, teams, password_hash, created_at, language) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[&user.login, &user.name, &user.role.as_str(), &user.teams, &user.password_hash, &user.created_at, &language],
        )?;
        report.users += 1;
    }
    let mut after = None;
    loop {
        let page = from.audit_log(after, 4096)?;
        for a in &page {
            tx.execute(
                "INSERT INTO audit (id, at, actor, action, subject, details) OVERRIDING SYSTEM VALUE VALUES ($1, $2, $3, $4, $5, $6)",
                &[&(a.id as i64), &a.at, &a.actor, &a.action, &a.subject, &a.details],
            )?;
            report.audit += 1;
        }
        match page.last() {
            Some(last) if page.len() == 4096 => after = Some(last.id),
            _ => break,
        }
    }
    for version in from.rulebook_versions()? {
        tx.execute(
            "INSERT INTO rulebook_versions (version) VALUES ($1)",
            &[&version.version],
        )?;
        for (position, f) in from
            .rulebook_version(&version.version)?
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            tx.execute(
                "INSERT INTO rulebook_files (version, position, role, path, text) VALUES ($1, $2, $3, $4, $5)",
                &[&version.version, &(position as i32), &f.role, &f.path, &f.text],
            )?;
        }
        for a in &version.activations {
            tx.execute(
                "INSERT INTO rulebook_activations (version, at, by) VALUES ($1, $2, $3)",
                &[&version.version, &a.at, &a.by],
            )?;
        }
        report.rulebook_versions += 1;
    }
    // What `forget` erased stays erased on the new store too.
    for (digest, at) in from.erased_deliveries()? {
        tx.execute(
            "INSERT INTO erased_deliveries (digest, erased_at) VALUES ($1, $2)",
            &[&&digest[..], &at],
        )?;
    }
    if let Some(on) = from.crisis_switch()? {
        tx.execute(
            "INSERT INTO settings (name, value) VALUES ('crisis_switch', $1)",
            &[&serde_json::Value::Bool(on)],
        )?;
    }
    // New numbers continue after the copied ones.
    tx.batch_execute(
        "SELECT setval('item_seq', GREATEST((SELECT max(seq) FROM messages), (SELECT max(id) FROM outbox), 0) + 1, false);
         SELECT setval(pg_get_serial_sequence('escalations', 'id'), COALESCE((SELECT max(id) FROM escalations) + 1, 0), false);
         SELECT setval(pg_get_serial_sequence('audit', 'id'), COALESCE((SELECT max(id) FROM audit) + 1, 0), false);",
    )?;
    verify(from, tx, &report)?;
    Ok(report)
}

/// Compares the source's counts with what the target holds now.
fn verify(from: &dyn Store, tx: &mut Transaction<'_>, report: &CopyReport) -> Result<(), PgErr> {
    let count = |tx: &mut Transaction<'_>, table: &str| -> Result<u64, PgErr> {
        Ok(tx
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])?
            .get::<_, i64>(0) as u64)
    };
    let stats = from.stats()?;
    let checks = [
        ("messages", stats.messages, count(tx, "messages")?),
        (
            "conversations",
            report.conversations,
            count(tx, "conversations")?,
        ),
        (
            "escalations",
            from.escalation_ids()?.len() as u64,
            count(tx, "escalations")?,
        ),
        (
            "outbox entries",
            from.outbox_ids()?.len() as u64,
            count(tx, "outbox")?,
        ),
        ("users", from.users()?.len() as u64, count(tx, "users")?),
        ("audit entries", report.audit, count(tx, "audit")?),
        (
            "rulebook versions",
            from.rulebook_versions()?.len() as u64,
            count(tx, "rulebook_versions")?,
        ),
        (
            "pending replies",
            stats.pending_outbox,
            tx.query_one("SELECT count(*) FROM outbox WHERE status = 'pending'", &[])?
                .get::<_, i64>(0) as u64,
        ),
    ];
    for (what, source, target) in checks {
        if source != target {
            return Err(PgErr::Store(StoreError::Backend {
                path: super::where_(),
                reason: format!(
                    "the copy has {target} {what}, the source {source}; nothing was committed"
                ),
            }));
        }
    }
    Ok(())
}
