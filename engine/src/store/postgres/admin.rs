//! The records around the cases on PostgreSQL (audit log, rulebook versions, crisis switch),
//! erasing (`forget`, retention), the report's pass over a period, and the counts.

use super::PgErr;
use chrono::{DateTime, Utc};
use r2d2_postgres::postgres::Transaction;
use sha2::{Digest, Sha256};

use super::rows;
use super::{PgStore, append_audit, audit, lock_conversation};
use crate::message::ChannelKind;
use crate::store::{
    Activation, AuditEntry, ForgetReport, PurgeReport, RulebookFile, RulebookVersion, StoreStats,
};

impl PgStore {
    pub(super) fn audit_log(
        &self,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, PgErr> {
        let after = after.map_or(-1, |a| a as i64);
        let limit = limit.min(i64::MAX as usize) as i64;
        self.conn()?
            .query(
                "SELECT id, at, actor, action, subject, details FROM audit WHERE id > $1 ORDER BY id LIMIT $2",
                &[&after, &limit],
            )?
            .iter()
            .map(|r| {
                Ok(AuditEntry {
                    id: r.try_get::<_, i64>(0)? as u64,
                    at: r.try_get(1)?,
                    actor: r.try_get(2)?,
                    action: r.try_get(3)?,
                    subject: r.try_get(4)?,
                    details: r.try_get(5)?,
                })
            })
            .collect()
    }

    pub(super) fn save_rulebook_version(
        &self,
        version: &str,
        files: &[RulebookFile],
        activated_by: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, PgErr> {
        self.tx(|tx| {
            let new = tx.execute(
                "INSERT INTO rulebook_versions (version) VALUES ($1) ON CONFLICT DO NOTHING",
                &[&version],
            )? == 1;
            if new {
                for (position, f) in files.iter().enumerate() {
                    tx.execute(
                        "INSERT INTO rulebook_files (version, position, role, path, text) VALUES ($1, $2, $3, $4, $5)",
                        &[&version, &(position as i32), &f.role, &f.path, &f.text],
                    )?;
                }
            }
            tx.execute(
                "INSERT INTO rulebook_activations (version, at, by) VALUES ($1, $2, $3)",
                &[&version, &at, &activated_by],
            )?;
            // The other instances put it in force too (they read its files from here).
            super::cluster::announce(
                tx,
                &self.instance,
                &crate::cluster::Signal::Rulebook {
                    version: version.to_owned(),
                },
            )?;
            Ok(new)
        })
    }

    pub(super) fn rulebook_version(
        &self,
        version: &str,
    ) -> Result<Option<Vec<RulebookFile>>, PgErr> {
        let mut conn = self.conn()?;
        if conn
            .query_opt(
                "SELECT 1 FROM rulebook_versions WHERE version = $1",
                &[&version],
            )?
            .is_none()
        {
            return Ok(None);
        }
        conn.query(
            "SELECT role, path, text FROM rulebook_files WHERE version = $1 ORDER BY position",
            &[&version],
        )?
        .iter()
        .map(|r| {
            Ok(RulebookFile {
                role: r.try_get(0)?,
                path: r.try_get(1)?,
                text: r.try_get(2)?,
            })
        })
        .collect::<Result<Vec<_>, PgErr>>()
        .map(Some)
    }

    pub(super) fn rulebook_versions(&self) -> Result<Vec<RulebookVersion>, PgErr> {
        let rows = self.conn()?.query(
            "SELECT version, at, by FROM rulebook_activations ORDER BY id",
            &[],
        )?;
        let mut versions: Vec<RulebookVersion> = Vec::new();
        let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
        for r in &rows {
            let version: String = r.try_get(0)?;
            let activation = Activation {
                at: r.try_get(1)?,
                by: r.try_get(2)?,
            };
            match index.get(&version) {
                Some(i) => versions[*i].activations.push(activation),
                None => {
                    index.insert(version.clone(), versions.len());
                    versions.push(RulebookVersion {
                        version,
                        activations: vec![activation],
                    });
                }
            }
        }
        Ok(versions)
    }

    pub(super) fn crisis_switch(&self) -> Result<Option<bool>, PgErr> {
        let row = self.conn()?.query_opt(
            "SELECT value FROM settings WHERE name = 'crisis_switch'",
            &[],
        )?;
        let value: Option<serde_json::Value> = match row {
            Some(r) => r.try_get(0)?,
            None => None,
        };
        Ok(value.and_then(|v| v.as_bool()))
    }

    pub(super) fn set_crisis_switch(
        &self,
        on: Option<bool>,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<(), PgErr> {
        let (subject, details) = match on {
            Some(true) => ("on", "crisis mode is now on"),
            Some(false) => ("off", "crisis mode is now off"),
            None => ("rulebook", "crisis mode follows the rulebook"),
        };
        let value = on.map(serde_json::Value::Bool);
        self.tx(|tx| {
            tx.execute(
                "INSERT INTO settings (name, value) VALUES ('crisis_switch', $1)
                 ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value",
                &[&value],
            )?;
            append_audit(
                tx,
                &audit(
                    actor,
                    "crisis.switch",
                    subject.to_owned(),
                    details.to_owned(),
                    now,
                ),
            )?;
            super::cluster::announce(tx, &self.instance, &crate::cluster::Signal::Crisis)?;
            Ok(())
        })
    }

    pub(super) fn forget_author(
        &self,
        author: &str,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<ForgetReport, PgErr> {
        self.tx(|tx| {
            let mut report = PurgeReport::default();
            // Every delivery erased here leaves a tombstone (a digest of `channel:id`, as
            // `erased_digest` makes it), so a bridge that delivers it again does not get it
            // stored as new. A conversation that is theirs alone holds only their messages.
            tx.execute(
                "INSERT INTO erased_deliveries (digest, erased_at)
                 SELECT sha256(convert_to(channel || ':' || id, 'UTF8')), $2
                 FROM messages WHERE author = $1
                 ON CONFLICT (digest) DO NOTHING",
                &[&author, &now],
            )?;
            let conversations = tx.query(
                "SELECT channel, id, participants FROM conversations WHERE participants @> ARRAY[$1] ORDER BY channel, id",
                &[&author],
            )?;
            for row in &conversations {
                let channel: ChannelKind = rows::parse(row.try_get(0)?)?;
                let id: String = row.try_get(1)?;
                let participants: Vec<String> = row.try_get(2)?;
                lock_conversation(tx, channel, &id)?;
                if participants.iter().all(|p| p == author) {
                    // Theirs alone: pending replies to them go too; they asked to be forgotten.
                    delete_conversation(tx, channel, &id, true, &mut report)?;
                    continue;
                }
                // Replies to their messages stay, standing on their own.
                tx.execute(
                    "UPDATE outbox o SET own_details = true FROM messages m
                     WHERE m.channel = $1 AND m.conversation = $2 AND m.author = $3 AND o.id = m.seq",
                    &[&channel.as_str(), &id, &author],
                )?;
                report.messages += tx.execute(
                    "DELETE FROM messages WHERE channel = $1 AND conversation = $2 AND author = $3",
                    &[&channel.as_str(), &id, &author],
                )?;
                tx.execute(
                    "UPDATE conversations SET participants = array_remove(participants, $3) WHERE channel = $1 AND id = $2",
                    &[&channel.as_str(), &id, &author],
                )?;
                // The escalations stay for the others in it, but not as theirs.
                tx.execute(
                    "UPDATE escalations SET case_state = case_state - 'author'
                     WHERE channel = $1 AND conversation = $2 AND case_state ->> 'author' = $3",
                    &[&channel.as_str(), &id, &author],
                )?;
            }
            // When they were last asked for a score names them too.
            tx.execute("DELETE FROM satisfaction_asked WHERE author = $1", &[&author])?;
            let digest = Sha256::digest(author.as_bytes());
            let hash: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
            append_audit(
                tx,
                &audit(
                    actor,
                    "privacy.forget",
                    format!("author sha256:{hash}"),
                    format!(
                        "erased {} messages, {} conversations, {} escalations, {} outbox entries",
                        report.messages, report.conversations, report.escalations, report.outbox
                    ),
                    now,
                ),
            )?;
            Ok(ForgetReport {
                messages: report.messages,
                conversations: report.conversations,
                escalations: report.escalations,
                outbox: report.outbox,
            })
        })
    }

    pub(super) fn purge_before(
        &self,
        cutoff: DateTime<Utc>,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<PurgeReport, PgErr> {
        // In chunks, each its own transaction, so a large purge never holds up intake for long.
        const CHUNK: i64 = 1000;
        let mut total = PurgeReport::default();
        loop {
            let (messages, outbox) = self.tx(|tx| {
                let seqs: Vec<i64> = tx
                    .query(
                        "SELECT seq FROM messages WHERE received_at < $1 ORDER BY received_at, seq LIMIT $2",
                        &[&cutoff, &CHUNK],
                    )?
                    .iter()
                    .map(|r| r.get(0))
                    .collect();
                // A finished reply of an old message goes with it; a pending one stays.
                let outbox = tx.execute(
                    "DELETE FROM outbox o USING messages m
                     WHERE o.id = ANY($1) AND m.seq = o.id AND NOT o.own_details AND o.status <> 'pending' AND m.stored_at < $2",
                    &[&seqs, &cutoff],
                )?;
                tx.execute(
                    "UPDATE outbox SET own_details = true WHERE id = ANY($1)",
                    &[&seqs],
                )?;
                let messages = tx.execute("DELETE FROM messages WHERE seq = ANY($1)", &[&seqs])?;
                Ok::<_, PgErr>((messages, outbox))
            })?;
            total.messages += messages;
            total.outbox += outbox;
            if messages < CHUNK as u64 {
                break;
            }
        }
        loop {
            let report = self.tx(|tx| {
                let mut report = PurgeReport::default();
                let stale = tx.query(
                    "SELECT channel, id FROM conversations WHERE last_activity < $1 AND open_escalation IS NULL
                     ORDER BY channel, id LIMIT $2 FOR UPDATE SKIP LOCKED",
                    &[&cutoff, &CHUNK],
                )?;
                for row in &stale {
                    let channel: ChannelKind = rows::parse(row.try_get(0)?)?;
                    let id: String = row.try_get(1)?;
                    delete_conversation(tx, channel, &id, false, &mut report)?;
                }
                Ok::<_, PgErr>((report, stale.len()))
            })?;
            total.conversations += report.0.conversations;
            total.escalations += report.0.escalations;
            total.outbox += report.0.outbox;
            total.messages += report.0.messages;
            if report.1 < CHUNK as usize {
                break;
            }
        }
        total.outbox += self.tx(|tx| {
            Ok::<_, PgErr>(tx.execute(
                "DELETE FROM outbox WHERE status <> 'pending' AND created_at < $1",
                &[&cutoff],
            )?)
        })?;
        let details = format!(
            "retention: deleted {} messages, {} conversations, {} escalations, {} outbox entries from before {}",
            total.messages,
            total.conversations,
            total.escalations,
            total.outbox,
            cutoff.to_rfc3339()
        );
        self.tx(|tx| {
            append_audit(
                tx,
                &audit(
                    actor,
                    "privacy.retention",
                    "store".into(),
                    details.clone(),
                    now,
                ),
            )
        })?;
        Ok(total)
    }

    pub(super) fn stats(&self) -> Result<StoreStats, PgErr> {
        let row = self.conn()?.query_one(
            "SELECT (SELECT count(*) FROM messages), (SELECT count(*) FROM escalations WHERE status <> 'resolved'),
                    (SELECT count(*) FROM outbox WHERE status = 'pending'), pg_database_size(current_database())",
            &[],
        )?;
        Ok(StoreStats {
            messages: row.try_get::<_, i64>(0)? as u64,
            open_escalations: row.try_get::<_, i64>(1)? as u64,
            pending_outbox: row.try_get::<_, i64>(2)? as u64,
            size_on_disk: row.try_get::<_, i64>(3)? as u64,
        })
    }
}

/// Deletes a conversation with its messages, escalations (and their work, by cascade) and its
/// outbox entries; pending replies are kept unless `drop_pending` (still owed, but not to
/// somebody who asked to be forgotten).
fn delete_conversation(
    tx: &mut Transaction<'_>,
    channel: ChannelKind,
    id: &str,
    drop_pending: bool,
    report: &mut PurgeReport,
) -> Result<(), PgErr> {
    let c = channel.as_str();
    report.messages += tx.execute(
        "DELETE FROM messages WHERE channel = $1 AND conversation = $2",
        &[&c, &id],
    )?;
    report.outbox += tx.execute(
        "DELETE FROM outbox WHERE channel = $1 AND conversation = $2 AND ($3 OR status <> 'pending')",
        &[&c, &id, &drop_pending],
    )?;
    tx.execute(
        "UPDATE outbox SET own_details = true WHERE channel = $1 AND conversation = $2",
        &[&c, &id],
    )?;
    report.escalations += tx.execute(
        "DELETE FROM escalations WHERE channel = $1 AND conversation = $2",
        &[&c, &id],
    )?;
    tx.execute(
        "DELETE FROM conversations WHERE channel = $1 AND id = $2",
        &[&c, &id],
    )?;
    report.conversations += 1;
    Ok(())
}
