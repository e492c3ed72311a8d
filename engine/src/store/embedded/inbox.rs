//! The inbox's records in the embedded layout (see [`crate::store::work`] for what they are).
//! A child module of the layout so it shares its writer, keys and transactions, while the
//! layout's own file only delegates to it.
//!
//! | key (records space) | value |
//! |---|---|
//! | `U` login | [`User`] |
//! | `T` SHA-256 digest | the login the API token belongs to |
//! | `W` escalation id | [`EscalationWork`] |
//! | `L` login | the user's chosen inbox language (`nl`, `en`) |
//!
//! The language is a record of its own rather than a field of [`User`]: user records are
//! postcard, which cannot read an older record without the new field.

use chrono::{DateTime, Utc};

use super::codec::{self, Intern, OutboxDetail, OutboxRec, Text};
use super::escalations::{decoded, escalation_rec};
use super::{Embedded, Reader, Resolver, Space, Tx, audit, key};
use crate::case::{CaseError, EscalationStatus, escalation, history};
use crate::store::{
    AgentReply, Escalation, EscalationWork, Note, OutboxEntry, OutboxStatus, SlaBreach, StoreError,
    User,
};

const USER: u8 = b'U';
const TOKEN: u8 = b'T';
const WORK: u8 = b'W';
const LANGUAGE: u8 = b'L';

fn user_key(login: &str) -> Vec<u8> {
    let mut k = vec![USER];
    k.extend_from_slice(login.as_bytes());
    k
}

fn language_key(login: &str) -> Vec<u8> {
    let mut k = vec![LANGUAGE];
    k.extend_from_slice(login.as_bytes());
    k
}

fn token_key(digest: &[u8; 32]) -> Vec<u8> {
    let mut k = vec![TOKEN];
    k.extend_from_slice(digest);
    k
}

/// Deletes every API token of `login`; tokens are keyed by their digest, so all are read (a
/// handful per person).
fn drop_tokens(tx: &mut Tx<'_>, login: &str) -> Result<usize, StoreError> {
    let mut dropped = 0;
    for (key, value) in tx.range(Space::Records, &[TOKEN], Some(&[TOKEN + 1]), usize::MAX)? {
        let owner: String =
            postcard::from_bytes(&value).map_err(|e| tx.shared().corrupt(&key, e))?;
        if owner == login {
            tx.delete(Space::Records, &key);
            dropped += 1;
        }
    }
    Ok(dropped)
}

/// The work record of escalation `id`; deleted with the escalation.
pub(super) fn work_key(id: u64) -> Vec<u8> {
    let mut k = vec![WORK];
    k.extend_from_slice(&id.to_be_bytes());
    k
}

fn load_work(reader: &mut impl Reader, id: u64) -> Result<EscalationWork, StoreError> {
    Ok(reader.load(&work_key(id))?.unwrap_or_default())
}

impl Embedded {
    pub(super) fn inbox_put_user(
        &self,
        user: User,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<User, StoreError> {
        let actor = actor.to_owned();
        self.write(move |tx| {
            let existed = tx.read(Space::Records, &user_key(&user.login))?.is_some();
            tx.put_rec(&user_key(&user.login), &user)?;
            tx.audit(audit(
                &actor,
                if existed { "user.update" } else { "user.add" },
                format!("user {}", user.login),
                format!(
                    "role {}, teams {}",
                    user.role.as_str(),
                    user.teams.join(",")
                ),
                now,
            ))?;
            Ok(user)
        })
    }

    pub(super) fn inbox_user(&self, login: &str) -> Result<Option<User>, StoreError> {
        self.snapshot()?.load(&user_key(login))
    }

    pub(super) fn inbox_users(&self) -> Result<Vec<User>, StoreError> {
        let mut snap = self.snapshot()?;
        let pairs = snap.range(Space::Records, &[USER], Some(&[USER + 1]), usize::MAX)?;
        pairs
            .into_iter()
            .map(|(k, v)| postcard::from_bytes(&v).map_err(|e| self.shared.corrupt(&k, e)))
            .collect()
    }

    pub(super) fn inbox_add_api_token(
        &self,
        login: &str,
        digest: [u8; 32],
        now: DateTime<Utc>,
    ) -> Result<(), CaseError> {
        let login = login.to_owned();
        self.write(move |tx| {
            if tx.read(Space::Records, &user_key(&login))?.is_none() {
                return Err(CaseError::NoSuchUser(login));
            }
            tx.put_rec(&token_key(&digest), &login)?;
            tx.audit(audit(
                &login,
                "user.token",
                format!("user {login}"),
                String::new(),
                now,
            ))?;
            Ok(())
        })
    }

    pub(super) fn inbox_user_by_token(&self, digest: [u8; 32]) -> Result<Option<User>, StoreError> {
        let mut snap = self.snapshot()?;
        let Some(login) = snap.load::<String>(&token_key(&digest))? else {
            return Ok(None);
        };
        snap.load(&user_key(&login))
    }

    pub(super) fn inbox_revoke_api_tokens(
        &self,
        login: &str,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<usize, CaseError> {
        let (login, actor) = (login.to_owned(), actor.to_owned());
        self.write(move |tx| {
            if tx.read(Space::Records, &user_key(&login))?.is_none() {
                return Err(CaseError::NoSuchUser(login));
            }
            let revoked = drop_tokens(tx, &login)?;
            tx.audit(audit(
                &actor,
                "user.revoke",
                format!("user {login}"),
                format!("{revoked} API tokens"),
                now,
            ))?;
            Ok(revoked)
        })
    }

    pub(super) fn inbox_remove_user(
        &self,
        login: &str,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let (login, actor) = (login.to_owned(), actor.to_owned());
        self.write(move |tx| {
            if tx.read(Space::Records, &user_key(&login))?.is_none() {
                return Ok(false);
            }
            tx.delete(Space::Records, &user_key(&login));
            tx.delete(Space::Records, &language_key(&login));
            let revoked = drop_tokens(tx, &login)?;
            tx.audit(audit(
                &actor,
                "user.remove",
                format!("user {login}"),
                format!("{revoked} API tokens revoked"),
                now,
            ))?;
            Ok(true)
        })
    }

    pub(super) fn inbox_set_user_language(
        &self,
        login: &str,
        language: &str,
    ) -> Result<bool, StoreError> {
        let (login, language) = (login.to_owned(), language.to_owned());
        self.write(move |tx| {
            if tx.read(Space::Records, &user_key(&login))?.is_none() {
                return Ok(false);
            }
            tx.put_rec(&language_key(&login), &language)?;
            Ok(true)
        })
    }

    pub(super) fn inbox_user_language(&self, login: &str) -> Result<Option<String>, StoreError> {
        self.snapshot()?.load(&language_key(login))
    }

    pub(super) fn inbox_escalation_work(&self, id: u64) -> Result<EscalationWork, StoreError> {
        load_work(&mut self.snapshot()?, id)
    }

    pub(super) fn inbox_add_note(
        &self,
        id: u64,
        author: &str,
        text: &str,
        now: DateTime<Utc>,
    ) -> Result<EscalationWork, CaseError> {
        let author = author.to_owned();
        let text = self.redact_text(text);
        self.write(move |tx| {
            let exists = tx.esc_rec(id)?.is_some();
            escalation::note(id, exists)?;
            let mut work = load_work(tx, id)?;
            work.notes.push(Note {
                at: now,
                author: author.clone(),
                text,
            });
            tx.put_rec(&work_key(id), &work)?;
            tx.audit(audit(
                &author,
                "escalation.note",
                format!("escalation {id}"),
                String::new(),
                now,
            ))?;
            Ok(work)
        })
    }

    pub(super) fn inbox_reply(
        &self,
        id: u64,
        author: &str,
        text: &str,
        now: DateTime<Utc>,
    ) -> Result<(Escalation, OutboxEntry), CaseError> {
        let author = author.to_owned();
        let text = self.redact_text(text);
        self.write(move |tx| {
            let (mut esc, status) = escalation_rec(tx, id)?;
            let mut work = load_work(tx, id)?;
            let reply = escalation::reply(id, &status, &author, work.first_response_at.is_some())?;
            let channel = codec::channel_from(esc.channel)
                .map_err(|e| tx.shared.corrupt(&key::esc(id), e))?;
            let conversation = esc.conversation.clone();
            let Some((conv_key, mut conv)) = tx.conv_with_key(channel, &conversation)? else {
                return Err(CaseError::no_such_conversation(channel, &conversation));
            };

            // Reads are done; from here on only writes.
            let in_reply_to = esc.messages.last().cloned().unwrap_or_default();
            // Like `queue_reply`: a number from the message sequence, the text inline (a
            // person's words, which `forget` must be able to erase).
            let outbox = tx.append_message(&[])?;
            tx.put_outbox(
                outbox,
                &OutboxRec {
                    channel: codec::channel_code(channel),
                    detail: Some(OutboxDetail {
                        conversation: conversation.clone(),
                        in_reply_to: in_reply_to.clone(),
                        text: Text::Inline(text.clone()),
                        created_at: codec::micros(now),
                    }),
                    ..OutboxRec::default()
                },
            )?;
            conv.replies.push(outbox);
            conv.set_owner(conv.owner().taken_by_person());
            tx.put_rec(&conv_key, &conv)?;

            if let Some(claim) = reply.claim {
                esc.set_status(claim);
                esc.event(now, &author, history::claimed());
            }
            // Any reply answers whoever waited and ends the running deadline (a first or a
            // next response); the first one is judged against the first-response SLA.
            let mut case = tx.case_of(id, &esc)?;
            let running = esc
                .sla_deadline
                .map(codec::from_micros)
                .transpose()
                .map_err(|e| tx.shared.corrupt(&key::esc(id), e))?;
            case.replied(now, &author);
            if reply.first_response {
                work.first_response_at = Some(now);
            }
            let outcome = reply.first_response.then(|| case.sla(running, now));
            esc.sla_deadline = None;
            esc.set_case(&case);
            esc.event(now, &author, history::replied(outbox, outcome));
            work.replies.push(AgentReply {
                at: now,
                author: author.clone(),
                outbox,
            });
            tx.put_rec(&key::esc(id), &esc)?;
            tx.put_rec(&work_key(id), &work)?;
            tx.audit(audit(
                &author,
                "escalation.reply",
                format!("escalation {id}"),
                format!("outbox {outbox}"),
                now,
            ))?;
            let entry = OutboxEntry {
                id: outbox,
                channel,
                conversation,
                in_reply_to,
                text,
                attempts: 0,
                last_error: None,
                status: OutboxStatus::Pending,
                created_at: now,
                next_attempt_at: now,
            };
            Ok((decoded(tx, id)?, entry))
        })
    }

    pub(super) fn inbox_reassign(
        &self,
        id: u64,
        team: &str,
        sla_deadline: Option<DateTime<Utc>>,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Escalation, CaseError> {
        let team = team.to_owned();
        let actor = actor.to_owned();
        self.write(move |tx| {
            let (mut esc, status) = escalation_rec(tx, id)?;
            let answered = load_work(tx, id)?.first_response_at.is_some();
            let deadline = esc
                .sla_deadline
                .map(codec::from_micros)
                .transpose()
                .map_err(|e| tx.shared.corrupt(&key::esc(id), e))?;
            let deadline = escalation::reassign(id, &status, answered, deadline, sla_deadline)?;
            let mut case = tx.case_of(id, &esc)?;
            case.reassigned(sla_deadline);
            esc.set_case(&case);
            let from = codec::text(&esc.team, &mut Resolver(&mut *tx))?;
            esc.team = Text::Sym(tx.intern(&team)?);
            esc.set_status(EscalationStatus::Open);
            esc.sla_deadline = deadline.map(codec::micros);
            esc.event(now, &actor, history::reassigned(&from, &team));
            tx.put_rec(&key::esc(id), &esc)?;
            tx.audit(audit(
                &actor,
                "escalation.reassign",
                format!("escalation {id}"),
                format!("{from} → {team}"),
                now,
            ))?;
            decoded(tx, id)
        })
    }

    pub(super) fn inbox_breach(&self, breach: SlaBreach) -> Result<Option<Escalation>, StoreError> {
        self.write(move |tx| {
            let id = breach.escalation;
            let Some(mut esc) = tx.esc_rec(id)? else {
                return Ok(None);
            };
            let status = esc
                .status()
                .map_err(|e| tx.shared.corrupt(&key::esc(id), e))?;
            let deadline = esc
                .sla_deadline
                .map(codec::from_micros)
                .transpose()
                .map_err(|e| tx.shared.corrupt(&key::esc(id), e))?;
            // Compared as stored: to the microsecond.
            let breached = codec::from_micros(codec::micros(breach.deadline))
                .map_err(|e| tx.shared.corrupt(&key::esc(id), e))?;
            if !escalation::breach_applies(&status, deadline, breached) {
                return Ok(None);
            }
            esc.team = Text::Sym(tx.intern(&breach.to_team)?);
            esc.priority = codec::priority_code(breach.to_priority);
            esc.sla_deadline = breach.next_deadline.map(codec::micros);
            esc.set_status(EscalationStatus::Open);
            esc.event(
                breach.at,
                history::SLA,
                history::breached(
                    breach.deadline,
                    (&breach.from_team, &breach.to_team),
                    (breach.from_priority, breach.to_priority),
                ),
            );
            let mut work = load_work(tx, id)?;
            work.breaches.push(breach.clone());
            tx.put_rec(&key::esc(id), &esc)?;
            tx.put_rec(&work_key(id), &work)?;
            tx.audit(audit(
                history::SLA,
                "escalation.breach",
                format!("escalation {id}"),
                format!(
                    "{} → {}, priority {} → {}",
                    breach.from_team, breach.to_team, breach.from_priority, breach.to_priority
                ),
                breach.at,
            ))?;
            tx.escalation(id)
        })
    }

    pub(super) fn inbox_take_announcements(
        &self,
        id: u64,
    ) -> Result<Option<(Vec<crate::case::Announce>, Escalation)>, StoreError> {
        self.write(move |tx| {
            let Some(mut esc) = tx.esc_rec(id)? else {
                return Ok(None);
            };
            let mut case = tx.case_of(id, &esc)?;
            if case.announce.is_empty() {
                return Ok(None);
            }
            let kinds = std::mem::take(&mut case.announce);
            esc.set_case(&case);
            tx.put_rec(&key::esc(id), &esc)?;
            Ok(tx.escalation(id)?.map(|esc| (kinds, esc)))
        })
    }

    fn redact_text(&self, text: &str) -> String {
        match &self.redactor {
            Some(redactor) => redactor.redact(text).into_owned(),
            None => text.to_owned(),
        }
    }
}
