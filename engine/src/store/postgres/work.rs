//! The inbox's records on PostgreSQL (see [`crate::store::work`]): users and API tokens, and
//! the work on an escalation (notes, agent replies, reassignments, SLA breaches), each in a
//! table of its own so a team lead can count them with SQL.

use super::PgErr;
use chrono::{DateTime, Utc};
use r2d2_postgres::postgres::GenericClient;

use super::cases::{insert_reply, locked_escalation, reread, set_status};
use super::rows::{self, USER_COLUMNS};
use super::{PgStore, append_audit, audit};
use crate::case::{CaseError, EscalationStatus, escalation, history};
use crate::store::{AgentReply, Escalation, EscalationWork, Note, OutboxEntry, SlaBreach, User};

pub(super) fn load_work(client: &mut impl GenericClient, id: u64) -> Result<EscalationWork, PgErr> {
    let id = id as i64;
    let mut work = EscalationWork::default();
    for row in client.query(
        "SELECT at, author, text FROM escalation_notes WHERE escalation = $1 ORDER BY n",
        &[&id],
    )? {
        work.notes.push(Note {
            at: row.try_get(0)?,
            author: row.try_get(1)?,
            text: row.try_get(2)?,
        });
    }
    for row in client.query(
        "SELECT at, author, outbox FROM escalation_replies WHERE escalation = $1 ORDER BY n",
        &[&id],
    )? {
        work.replies.push(AgentReply {
            at: row.try_get(0)?,
            author: row.try_get(1)?,
            outbox: row.try_get::<_, i64>(2)? as u64,
        });
    }
    for row in client.query(
        "SELECT deadline, from_team, to_team, from_priority, to_priority, next_deadline, at
         FROM sla_breaches WHERE escalation = $1 ORDER BY n",
        &[&id],
    )? {
        work.breaches.push(SlaBreach {
            escalation: id as u64,
            deadline: row.try_get(0)?,
            from_team: row.try_get(1)?,
            to_team: row.try_get(2)?,
            from_priority: rows::parse(row.try_get(3)?)?,
            to_priority: rows::parse(row.try_get(4)?)?,
            next_deadline: row.try_get(5)?,
            at: row.try_get(6)?,
        });
    }
    if let Some(row) = client.query_opt(
        "SELECT first_response_at FROM escalations WHERE id = $1",
        &[&id],
    )? {
        work.first_response_at = row.try_get(0)?;
    }
    Ok(work)
}

fn user_exists(client: &mut impl GenericClient, login: &str) -> Result<bool, PgErr> {
    Ok(client
        .query_opt("SELECT 1 FROM users WHERE login = $1", &[&login])?
        .is_some())
}

impl PgStore {
    pub(super) fn put_user(
        &self,
        user: User,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<User, PgErr> {
        self.tx(|tx| {
            let existed = user_exists(&mut *tx, &user.login)?;
            tx.execute(
                "INSERT INTO users (login, name, role, teams, password_hash, created_at) VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (login) DO UPDATE SET name = EXCLUDED.name, role = EXCLUDED.role, teams = EXCLUDED.teams,
                   password_hash = EXCLUDED.password_hash, created_at = EXCLUDED.created_at",
                &[&user.login, &user.name, &user.role.as_str(), &user.teams, &user.password_hash, &user.created_at],
            )?;
            append_audit(
                tx,
                &audit(
                    actor,
                    if existed { "user.update" } else { "user.add" },
                    format!("user {}", user.login),
                    format!("role {}, teams {}", user.role.as_str(), user.teams.join(",")),
                    now,
                ),
            )?;
            super::cluster::announce(
                tx,
                &self.instance,
                &crate::cluster::Signal::Access {
                    login: user.login.to_owned(),
                },
            )?;
            Ok(user.clone())
        })
    }

    pub(super) fn user(&self, login: &str) -> Result<Option<User>, PgErr> {
        self.conn()?
            .query_opt(
                &format!("SELECT {USER_COLUMNS} FROM users WHERE login = $1"),
                &[&login],
            )?
            .map(|r| rows::user(&r))
            .transpose()
    }

    pub(super) fn users(&self) -> Result<Vec<User>, PgErr> {
        self.conn()?
            .query(
                &format!("SELECT {USER_COLUMNS} FROM users ORDER BY login"),
                &[],
            )?
            .iter()
            .map(rows::user)
            .collect()
    }

    pub(super) fn set_user_language(&self, login: &str, language: &str) -> Result<bool, PgErr> {
        Ok(self.conn()?.execute(
            "UPDATE users SET language = $2 WHERE login = $1",
            &[&login, &language],
        )? == 1)
    }

    pub(super) fn user_language(&self, login: &str) -> Result<Option<String>, PgErr> {
        Ok(self
            .conn()?
            .query_opt("SELECT language FROM users WHERE login = $1", &[&login])?
            .and_then(|row| row.get(0)))
    }

    pub(super) fn add_api_token(
        &self,
        login: &str,
        digest: [u8; 32],
        now: DateTime<Utc>,
    ) -> Result<(), PgErr> {
        self.tx(|tx| {
            if !user_exists(&mut *tx, login)? {
                return Err(CaseError::NoSuchUser(login.to_owned()).into());
            }
            tx.execute(
                "INSERT INTO api_tokens (digest, login, created_at) VALUES ($1, $2, $3)
                 ON CONFLICT (digest) DO UPDATE SET login = EXCLUDED.login",
                &[&&digest[..], &login, &now],
            )?;
            append_audit(
                tx,
                &audit(
                    login,
                    "user.token",
                    format!("user {login}"),
                    String::new(),
                    now,
                ),
            )?;
            Ok(())
        })
    }

    pub(super) fn user_by_token(&self, digest: [u8; 32]) -> Result<Option<User>, PgErr> {
        self.conn()?
            .query_opt(
                &format!(
                    "SELECT {} FROM users u JOIN api_tokens t ON t.login = u.login WHERE t.digest = $1",
                    USER_COLUMNS.split(", ").map(|c| format!("u.{c}")).collect::<Vec<_>>().join(", ")
                ),
                &[&&digest[..]],
            )?
            .map(|r| rows::user(&r))
            .transpose()
    }

    pub(super) fn revoke_api_tokens(
        &self,
        login: &str,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<usize, PgErr> {
        self.tx(|tx| {
            if !user_exists(&mut *tx, login)? {
                return Err(CaseError::NoSuchUser(login.to_owned()).into());
            }
            let revoked =
                tx.execute("DELETE FROM api_tokens WHERE login = $1", &[&login])? as usize;
            append_audit(
                tx,
                &audit(
                    actor,
                    "user.revoke",
                    format!("user {login}"),
                    format!("{revoked} API tokens"),
                    now,
                ),
            )?;
            super::cluster::announce(
                tx,
                &self.instance,
                &crate::cluster::Signal::Access {
                    login: login.to_owned(),
                },
            )?;
            Ok(revoked)
        })
    }

    pub(super) fn remove_user(
        &self,
        login: &str,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, PgErr> {
        self.tx(|tx| {
            if !user_exists(&mut *tx, login)? {
                return Ok(false);
            }
            let revoked = tx.execute("DELETE FROM api_tokens WHERE login = $1", &[&login])?;
            tx.execute("DELETE FROM users WHERE login = $1", &[&login])?;
            append_audit(
                tx,
                &audit(
                    actor,
                    "user.remove",
                    format!("user {login}"),
                    format!("{revoked} API tokens revoked"),
                    now,
                ),
            )?;
            super::cluster::announce(
                tx,
                &self.instance,
                &crate::cluster::Signal::Access {
                    login: login.to_owned(),
                },
            )?;
            Ok(true)
        })
    }

    pub(super) fn add_escalation_note(
        &self,
        id: u64,
        author: &str,
        text: &str,
        now: DateTime<Utc>,
    ) -> Result<EscalationWork, PgErr> {
        let text = self.redact(text);
        self.tx(|tx| {
            let exists = tx
                .query_opt("SELECT 1 FROM escalations WHERE id = $1 FOR UPDATE", &[&(id as i64)])?
                .is_some();
            escalation::note(id, exists)?;
            tx.execute(
                "INSERT INTO escalation_notes (escalation, at, author, text) VALUES ($1, $2, $3, $4)",
                &[&(id as i64), &now, &author, &text],
            )?;
            append_audit(tx, &audit(author, "escalation.note", format!("escalation {id}"), String::new(), now))?;
            load_work(&mut *tx, id)
        })
    }

    pub(super) fn reply_to_escalation(
        &self,
        id: u64,
        author: &str,
        text: &str,
        now: DateTime<Utc>,
    ) -> Result<(Escalation, OutboxEntry), PgErr> {
        let text = self.redact(text);
        self.tx(|tx| {
            let esc = locked_escalation(tx, id)?;
            let answered = load_work(&mut *tx, id)?.first_response_at.is_some();
            let reply = escalation::reply(id, &esc.status, author, answered)?;
            let Some(mut conv) = rows::read_conversation(&mut *tx, esc.channel, &esc.conversation, true)? else {
                return Err(CaseError::no_such_conversation(esc.channel, &esc.conversation).into());
            };
            let in_reply_to = esc.messages.last().cloned().unwrap_or_default();
            let entry = insert_reply(tx, esc.channel, &esc.conversation, &in_reply_to, &text, now)?;
            conv.state = conv.state.taken_by_person();
            rows::write_conversation(&mut *tx, &conv)?;
            if let Some(claim) = &reply.claim {
                set_status(tx, id, claim)?;
                rows::event(&mut *tx, id, now, author, &history::claimed())?;
            }
            // Any reply answers whoever waited and ends the running deadline (a first or a
            // next response); the first one is judged against the first-response SLA.
            let mut case = esc.case.clone();
            case.replied(now, author);
            if reply.first_response {
                tx.execute(
                    "UPDATE escalations SET first_response_at = $2 WHERE id = $1",
                    &[&(id as i64), &now],
                )?;
            }
            let outcome = reply.first_response.then(|| case.sla(esc.sla_deadline, now));
            tx.execute(
                "UPDATE escalations SET sla_deadline = NULL WHERE id = $1",
                &[&(id as i64)],
            )?;
            rows::write_case(&mut *tx, id, &case)?;
            rows::event(&mut *tx, id, now, author, &history::replied(entry.id, outcome))?;
            tx.execute(
                "INSERT INTO escalation_replies (escalation, at, author, outbox) VALUES ($1, $2, $3, $4)",
                &[&(id as i64), &now, &author, &(entry.id as i64)],
            )?;
            append_audit(
                tx,
                &audit(author, "escalation.reply", format!("escalation {id}"), format!("outbox {}", entry.id), now),
            )?;
            Ok((reread(tx, id)?, entry))
        })
    }

    pub(super) fn reassign_escalation(
        &self,
        id: u64,
        team: &str,
        sla_deadline: Option<DateTime<Utc>>,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Escalation, PgErr> {
        self.tx(|tx| {
            let esc = locked_escalation(tx, id)?;
            let answered = load_work(&mut *tx, id)?.first_response_at.is_some();
            let deadline =
                escalation::reassign(id, &esc.status, answered, esc.sla_deadline, sla_deadline)?;
            set_status(tx, id, &EscalationStatus::Open)?;
            let mut case = esc.case.clone();
            case.reassigned(sla_deadline);
            rows::write_case(&mut *tx, id, &case)?;
            tx.execute(
                "UPDATE escalations SET team = $2, sla_deadline = $3 WHERE id = $1",
                &[&(id as i64), &team, &deadline],
            )?;
            rows::event(
                &mut *tx,
                id,
                now,
                actor,
                &history::reassigned(&esc.team, team),
            )?;
            append_audit(
                tx,
                &audit(
                    actor,
                    "escalation.reassign",
                    format!("escalation {id}"),
                    format!("{} → {team}", esc.team),
                    now,
                ),
            )?;
            reread(tx, id)
        })
    }

    pub(super) fn record_sla_breach(&self, breach: SlaBreach) -> Result<Option<Escalation>, PgErr> {
        let id = breach.escalation;
        // Compared as stored: to the microsecond.
        let breached = DateTime::from_timestamp_micros(breach.deadline.timestamp_micros())
            .unwrap_or(breach.deadline);
        self.tx(|tx| {
            let esc = match locked_escalation(tx, id) {
                Ok(esc) => esc,
                Err(PgErr::Case(CaseError::NoSuchEscalation(_))) => return Ok(None),
                Err(other) => return Err(other),
            };
            if !escalation::breach_applies(&esc.status, esc.sla_deadline, breached) {
                return Ok(None);
            }
            set_status(tx, id, &EscalationStatus::Open)?;
            tx.execute(
                "UPDATE escalations SET team = $2, priority = $3, sla_deadline = $4 WHERE id = $1",
                &[&(id as i64), &breach.to_team, &breach.to_priority.as_str(), &breach.next_deadline],
            )?;
            rows::event(
                &mut *tx,
                id,
                breach.at,
                history::SLA,
                &history::breached(
                    breach.deadline,
                    (&breach.from_team, &breach.to_team),
                    (breach.from_priority, breach.to_priority),
                ),
            )?;
            tx.execute(
                "INSERT INTO sla_breaches (escalation, deadline, from_team, to_team, from_priority, to_priority, next_deadline, at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[
                    &(id as i64),
                    &breach.deadline,
                    &breach.from_team,
                    &breach.to_team,
                    &breach.from_priority.as_str(),
                    &breach.to_priority.as_str(),
                    &breach.next_deadline,
                    &breach.at,
                ],
            )?;
            append_audit(
                tx,
                &audit(
                    history::SLA,
                    "escalation.breach",
                    format!("escalation {id}"),
                    format!(
                        "{} → {}, priority {} → {}",
                        breach.from_team, breach.to_team, breach.from_priority, breach.to_priority
                    ),
                    breach.at,
                ),
            )?;
            rows::escalation(&mut *tx, id)
        })
    }

    pub(super) fn take_announcements(
        &self,
        id: u64,
    ) -> Result<Option<(Vec<crate::case::Announce>, Escalation)>, PgErr> {
        self.tx(|tx| {
            // Locked like every other change of the escalation (its conversation first), so
            // an intake that sets a new announcement cannot interleave with this one's take.
            let mut esc = match locked_escalation(tx, id) {
                Ok(esc) => esc,
                Err(PgErr::Case(CaseError::NoSuchEscalation(_))) => return Ok(None),
                Err(other) => return Err(other),
            };
            if esc.case.announce.is_empty() {
                return Ok(None);
            }
            let kinds = std::mem::take(&mut esc.case.announce);
            rows::write_case(&mut *tx, id, &esc.case)?;
            Ok(Some((kinds, esc)))
        })
    }
}
