//! Intake on PostgreSQL: the duplicate check, one decided message written with everything it
//! changes in one transaction, and the reads of stored history.
//!
//! Order inside the transaction: the conversation's advisory lock first (so the conversation's
//! counters and escalation are read and written by one intake at a time, whichever instance),
//! then the message row with `ON CONFLICT DO NOTHING` on `(channel, id)`. That insert is the
//! first write: when it inserts nothing, another intake (perhaps on another instance) stored the
//! same delivery first, and its decision is the answer, with nothing else written.

use super::PgErr;
use chrono::{DateTime, NaiveDate, Utc};
use r2d2_postgres::postgres::Transaction;

use super::rows::{self, MESSAGE_COLUMNS};
use super::{PgStore, corrupt};
use crate::case::ConversationFacts;
use crate::case::intake::{self, EscalationEffect, Escalations, KnownEscalation};
use crate::case::{CaseState, escalation};
use crate::case::{ConversationState, Tally, history};
use crate::decision::Priority;
use crate::message::{ChannelKind, Inbound};
use crate::store::Escalation;
use crate::store::{
    Conversation, HistoryCursor, IntakeLookup, IntakeReceipt, IntakeRecord, StoredMessage,
};
use erased::Json;

impl PgStore {
    pub(super) fn message(
        &self,
        channel: ChannelKind,
        id: &str,
    ) -> Result<Option<StoredMessage>, PgErr> {
        let mut conn = self.conn()?;
        conn.query_opt(
            &format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE channel = $1 AND id = $2"),
            &[&channel.as_str(), &id],
        )?
        .map(|r| rows::message(&r))
        .transpose()
    }

    pub(super) fn inbound_messages(
        &self,
        keys: &[(ChannelKind, String)],
    ) -> Result<Vec<Inbound>, PgErr> {
        let channels: Vec<&str> = keys.iter().map(|(c, _)| c.as_str()).collect();
        let ids: Vec<&str> = keys.iter().map(|(_, id)| id.as_str()).collect();
        // One query for all; `ord` keeps the order asked.
        let rows = self.conn()?.query(
            "SELECT m.message FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS k(channel, id, ord) \
             JOIN messages m ON m.channel = k.channel AND m.id = k.id ORDER BY k.ord",
            &[&channels, &ids],
        )?;
        rows.iter()
            .map(|row| {
                let value: serde_json::Value = row.try_get(0)?;
                serde_json::from_value(value).map_err(|e| corrupt(format!("message: {e}")))
            })
            .collect()
    }

    pub(super) fn author_conversations(
        &self,
        author: &str,
    ) -> Result<Vec<(ChannelKind, String)>, PgErr> {
        self.conn()?
            .query(
                "SELECT DISTINCT channel, conversation FROM messages WHERE author = $1 ORDER BY 1, 2",
                &[&author],
            )?
            .iter()
            .map(|row| {
                Ok((
                    rows::parse::<ChannelKind>(row.try_get(0)?)?,
                    row.try_get(1)?,
                ))
            })
            .collect()
    }

    pub(super) fn intake_lookup(
        &self,
        channel: ChannelKind,
        id: &str,
        conversation: &str,
        at: DateTime<Utc>,
        today: NaiveDate,
    ) -> Result<IntakeLookup, PgErr> {
        let mut conn = self.conn()?;
        if let Some(row) = conn.query_opt(
            &format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE channel = $1 AND id = $2"),
            &[&channel.as_str(), &id],
        )? {
            return Ok(IntakeLookup::Duplicate(Box::new(rows::message(&row)?)));
        }
        if was_erased(&mut *conn, channel, id)? {
            return Ok(IntakeLookup::Erased);
        }
        Ok(IntakeLookup::New(
            rows::read_conversation(&mut *conn, channel, conversation, false)?
                .map(|c| c.facts(at, today))
                .unwrap_or_default(),
        ))
    }

    /// One message read, decided and written in one transaction under its conversation's lock.
    pub(super) fn decide_and_record(
        &self,
        message: Inbound,
        today: NaiveDate,
        decide: &mut dyn FnMut(Inbound, ConversationFacts) -> IntakeRecord,
    ) -> Result<IntakeReceipt, PgErr> {
        self.tx(|tx| {
            super::lock_conversation(tx, message.channel, &message.conversation)?;
            if let Some(row) = tx.query_opt(
                &format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE channel = $1 AND id = $2"),
                &[&message.channel.as_str(), &message.id],
            )? {
                return Ok(IntakeReceipt::duplicate_of(rows::message(&row)?));
            }
            if was_erased(&mut *tx, message.channel, &message.id)? {
                return Ok(IntakeReceipt::erased(&message.id));
            }
            let facts =
                rows::read_conversation(&mut *tx, message.channel, &message.conversation, false)?
                    .map(|c| c.facts(message.received_at, today))
                    .unwrap_or_default();
            // Called again when the transaction is retried: the message is the caller's.
            let mut record = decide(message.clone(), facts);
            if let Some(redactor) = &self.redactor {
                record.message.text = redactor.redact(&record.message.text).into_owned();
            }
            place(tx, &record)
        })
    }

    /// Every intake in one transaction: all are stored or none.
    pub(super) fn record_intakes(
        &self,
        intakes: Vec<IntakeRecord>,
    ) -> Result<Vec<IntakeReceipt>, PgErr> {
        let mut intakes = intakes;
        if let Some(redactor) = &self.redactor {
            for i in &mut intakes {
                i.message.text = redactor.redact(&i.message.text).into_owned();
            }
        }
        // The locks in one order, so two batches on two instances cannot wait for each other.
        let mut locks: Vec<(ChannelKind, &str)> = intakes
            .iter()
            .map(|i| (i.message.channel, i.message.conversation.as_str()))
            .collect();
        locks.sort_by(|a, b| (a.0.as_str(), a.1).cmp(&(b.0.as_str(), b.1)));
        locks.dedup();
        self.tx(|tx| {
            for (channel, conversation) in &locks {
                super::lock_conversation(tx, *channel, conversation)?;
            }
            intakes.iter().map(|i| place(tx, i)).collect()
        })
    }

    pub(super) fn history_page(
        &self,
        since: Option<DateTime<Utc>>,
        cursor: Option<HistoryCursor>,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, PgErr> {
        let mut conn = self.conn()?;
        let limit = limit.min(i64::MAX as usize) as i64;
        let rows = match (cursor, since) {
            (Some(c), _) => conn.query(
                &format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE (received_at, seq) > ($1, $2) ORDER BY received_at, seq LIMIT $3"),
                &[&c.received_at, &(c.seq as i64), &limit],
            )?,
            (None, Some(since)) => conn.query(
                &format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE received_at >= $1 ORDER BY received_at, seq LIMIT $2"),
                &[&since, &limit],
            )?,
            (None, None) => conn.query(
                &format!("SELECT {MESSAGE_COLUMNS} FROM messages ORDER BY received_at, seq LIMIT $1"),
                &[&limit],
            )?,
        };
        rows.iter().map(rows::message).collect()
    }

    pub(super) fn conversation_messages(
        &self,
        channel: ChannelKind,
        conversation: &str,
    ) -> Result<Vec<StoredMessage>, PgErr> {
        let mut conn = self.conn()?;
        conn.query(
            &format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE channel = $1 AND conversation = $2 ORDER BY seq"),
            &[&channel.as_str(), &conversation],
        )?
        .iter()
        .map(rows::message)
        .collect()
    }
}

/// Writes one intake in `tx`, whose conversation lock is held.
fn place(tx: &mut Transaction<'_>, i: &IntakeRecord) -> Result<IntakeReceipt, PgErr> {
    let m = &i.message;
    let d = &i.decision;
    let channel = m.channel.as_str();
    let topics: Vec<&str> = d.topic_ids().collect();
    let priority = d.action.priority().map(Priority::as_str);
    let inserted = tx.query_opt(
        "INSERT INTO messages (seq, channel, id, conversation, author, text, received_at, stored_at, mode, action, team, priority, category, topics, sentiment, rulebook, reply, message, decision, facts, shadow)
         VALUES (nextval('item_seq'), $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)
         ON CONFLICT (channel, id) DO NOTHING RETURNING seq",
        &[
            &channel,
            &m.id,
            &m.conversation,
            &m.author,
            &m.text,
            &m.received_at,
            &i.now,
            &i.mode.as_str(),
            &d.action.name(),
            &d.action.team(),
            &priority,
            &d.diagnostics.category.as_str(),
            &topics,
            &d.diagnostics.sentiment.label.as_str(),
            &d.diagnostics.rulebook,
            &d.action.reply(),
            &m.json()?,
            &d.json()?,
            &i.facts.json()?,
            &i.shadow.as_ref().map(|s| s.json()).transpose()?,
        ],
    )?;
    let Some(row) = inserted else {
        // Stored before, by this instance or another: its first decision is the answer.
        let first = tx.query_one(
            &format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE channel = $1 AND id = $2"),
            &[&channel, &m.id],
        )?;
        return Ok(IntakeReceipt::duplicate_of(rows::message(&first)?));
    };
    let seq = row.try_get::<_, i64>(0)? as u64;

    let existing = rows::read_conversation(&mut *tx, m.channel, &m.conversation, true)?;
    let state = existing
        .as_ref()
        .map_or(ConversationState::Bot, |c| c.state);
    let awaiting = existing.as_ref().is_some_and(|c| c.awaiting_score);
    // The conversation's escalations, when the message may join, reopen or answer one.
    let mut loaded: Vec<Escalation> =
        if intake::reads_escalations(i.mode, &d.action, state, awaiting) {
            rows::escalations(
                &mut *tx,
                "channel = $1 AND conversation = $2",
                &[&channel, &m.conversation],
            )?
        } else {
            Vec::new()
        };
    let effects = {
        let escalations = Escalations {
            known: loaded.iter().map(known).collect(),
            primary: existing.as_ref().and_then(|c| c.open_escalation),
        };
        intake::effects(
            i.mode,
            d,
            state,
            &escalations,
            m.received_at,
            &i.case,
            awaiting,
        )
    };
    let mut conversation = existing.unwrap_or_else(|| {
        let tally = Tally::new(m.received_at, i.today);
        Conversation {
            channel: m.channel,
            id: m.conversation.clone(),
            participants: Default::default(),
            state: ConversationState::Bot,
            started_at: m.received_at,
            last_activity: tally.last_activity,
            messages: tally.messages,
            today: tally.today,
            messages_today: tally.messages_today,
            auto_replies: tally.auto_replies,
            recent_complaints: tally.recent_complaints,
            open_escalation: None,
            awaiting_score: false,
        }
    });
    if effects.survey_ends {
        conversation.awaiting_score = false;
    }
    conversation.participants.insert(m.author.clone());
    let mut tally = rows::tally(&conversation);
    tally.count(m.received_at, i.today, d.diagnostics.category);
    if effects.queue_reply {
        tally.replied();
    }
    conversation.last_activity = tally.last_activity;
    conversation.messages = tally.messages;
    conversation.today = tally.today;
    conversation.messages_today = tally.messages_today;
    conversation.auto_replies = tally.auto_replies;
    conversation.recent_complaints = tally.recent_complaints;

    let category = d.diagnostics.category;
    let language = d.diagnostics.language;
    let mut take = |id: u64| -> Result<Escalation, PgErr> {
        match loaded.iter().position(|e| e.id == id) {
            Some(at) => Ok(loaded.swap_remove(at)),
            None => Err(corrupt(format!(
                "escalation {id} changed without being read"
            ))),
        }
    };
    let escalation = match effects.escalation {
        EscalationEffect::None => None,
        EscalationEffect::Open {
            team,
            priority,
            reason,
            linked,
        } => {
            let case = CaseState::opened(
                i.now,
                m.received_at,
                i.sla_deadline,
                &m.author,
                category,
                language,
            );
            let case_json = serde_json::to_value(&case)
                .map_err(|e| corrupt(format!("escalation case state: {e}")))?;
            let id = tx
                .query_one(
                    "INSERT INTO escalations (channel, conversation, team, priority, reason, status, created_at, sla_deadline, messages, case_state)
                     VALUES ($1, $2, $3, $4, $5, 'open', $6, $7, $8, $9) RETURNING id",
                    &[&channel, &m.conversation, &team, &priority.as_str(), &reason, &i.now, &i.sla_deadline, &vec![m.id.as_str()], &case_json],
                )?
                .try_get::<_, i64>(0)? as u64;
            rows::event(
                &mut *tx,
                id,
                i.now,
                history::ENGINE,
                &history::opened(team, priority, &m.id),
            )?;
            for other in linked {
                rows::event(
                    &mut *tx,
                    other,
                    i.now,
                    history::ENGINE,
                    &history::linked(id, team),
                )?;
            }
            conversation.open_escalation =
                escalation::open_escalation_after(conversation.open_escalation, id);
            Some(id)
        }
        EscalationEffect::Join {
            id,
            priority,
            raised,
        } => {
            let mut esc = take(id)?;
            let next = i.case.next_due(&esc.team, priority);
            let running =
                esc.case
                    .customer_wrote(m.received_at, category, language, esc.sla_deadline, next);
            tx.execute(
                "UPDATE escalations SET messages = array_append(messages, $2), priority = $3, sla_deadline = $4 WHERE id = $1",
                &[&(id as i64), &m.id, &priority.as_str(), &running],
            )?;
            rows::write_case(&mut *tx, id, &esc.case)?;
            rows::event(
                &mut *tx,
                id,
                i.now,
                history::ENGINE,
                &history::joined(&m.id, raised, None),
            )?;
            Some(id)
        }
        EscalationEffect::Reopen {
            id,
            priority,
            raised,
        } => {
            let mut esc = take(id)?;
            let next = i.case.next_due(&esc.team, priority);
            let running = esc
                .case
                .reopened_by(m.received_at, category, language, next);
            tx.execute(
                "UPDATE escalations SET messages = array_append(messages, $2), priority = $3, sla_deadline = $4,
                   status = 'open', status_by = NULL WHERE id = $1",
                &[&(id as i64), &m.id, &priority.as_str(), &running],
            )?;
            rows::write_case(&mut *tx, id, &esc.case)?;
            rows::event(
                &mut *tx,
                id,
                i.now,
                history::ENGINE,
                &history::joined(&m.id, None, None),
            )?;
            rows::event(
                &mut *tx,
                id,
                i.now,
                history::ENGINE,
                &history::reopened(&m.id, raised),
            )?;
            conversation.open_escalation =
                escalation::open_escalation_after(conversation.open_escalation, id);
            Some(id)
        }
        EscalationEffect::Follow { id } => {
            let mut esc = take(id)?;
            let next = i.case.next_due(&esc.team, esc.priority);
            let running =
                esc.case
                    .customer_wrote(m.received_at, category, language, esc.sla_deadline, next);
            tx.execute(
                "UPDATE escalations SET messages = array_append(messages, $2), sla_deadline = $3 WHERE id = $1",
                &[&(id as i64), &m.id, &running],
            )?;
            rows::write_case(&mut *tx, id, &esc.case)?;
            rows::event(
                &mut *tx,
                id,
                i.now,
                history::ENGINE,
                &history::joined(&m.id, None, None),
            )?;
            Some(id)
        }
    };
    if let Some((id, score)) = effects.answer {
        let mut esc = take(id)?;
        if let Some(survey) = esc.case.survey.as_mut() {
            survey.score = Some(score);
            survey.answered_at = Some(m.received_at);
        }
        rows::write_case(&mut *tx, id, &esc.case)?;
        rows::event(
            &mut *tx,
            id,
            i.now,
            history::ENGINE,
            &history::survey_answered(score),
        )?;
    }

    let outbox = if effects.queue_reply {
        let text = d
            .action
            .reply()
            .ok_or_else(|| corrupt(format!("message {seq}: a reply to queue without text")))?;
        let (status, attempts, sent_at) = if i.reply_inline {
            ("sent", 1, Some(i.now))
        } else {
            ("pending", 0, None)
        };
        tx.execute(
            "INSERT INTO outbox (id, channel, conversation, in_reply_to, text, status, attempts, created_at, sent_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &[&(seq as i64), &channel, &m.conversation, &m.id, &text, &status, &{ attempts }, &i.now, &sent_at],
        )?;
        Some(seq)
    } else {
        None
    };
    rows::write_conversation(&mut *tx, &conversation)?;
    Ok(IntakeReceipt {
        seq,
        decision: d.clone(),
        duplicate: false,
        escalation,
        outbox,
        mode: i.mode,
    })
}

/// Inserts a message stored before (by another backend) with its own number; for
/// [`super::copy`].
pub(super) fn insert_stored(tx: &mut Transaction<'_>, s: &StoredMessage) -> Result<(), PgErr> {
    let m = &s.message;
    let d = &s.decision;
    let topics: Vec<&str> = d.topic_ids().collect();
    let priority = d.action.priority().map(Priority::as_str);
    tx.execute(
        "INSERT INTO messages (seq, channel, id, conversation, author, text, received_at, stored_at, mode, action, team, priority, category, topics, sentiment, rulebook, reply, message, decision, facts, shadow)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)",
        &[
            &(s.seq as i64),
            &m.channel.as_str(),
            &m.id,
            &m.conversation,
            &m.author,
            &m.text,
            &m.received_at,
            &s.stored_at,
            &s.mode.as_str(),
            &d.action.name(),
            &d.action.team(),
            &priority,
            &d.diagnostics.category.as_str(),
            &topics,
            &d.diagnostics.sentiment.label.as_str(),
            &d.diagnostics.rulebook,
            &d.action.reply(),
            &m.json()?,
            &d.json()?,
            &s.facts.json()?,
            &s.shadow.as_ref().map(|s| s.json()).transpose()?,
        ],
    )?;
    Ok(())
}

/// Serialising the records kept whole as jsonb.
mod erased {
    use super::PgErr;
    use crate::store::StoreError;

    pub trait Json {
        fn json(&self) -> Result<serde_json::Value, PgErr>;
    }

    impl<T: serde::Serialize> Json for T {
        fn json(&self) -> Result<serde_json::Value, PgErr> {
            serde_json::to_value(self).map_err(|e| {
                PgErr::Store(StoreError::Backend {
                    path: super::super::where_(),
                    reason: format!("cannot encode a record: {e}"),
                })
            })
        }
    }
}

/// What intake needs of one of the conversation's escalations.
fn known(e: &Escalation) -> KnownEscalation<'_> {
    KnownEscalation {
        id: e.id,
        team: &e.team,
        priority: e.priority,
        // One resolved before the case state existed reads as resolved long ago.
        resolved_at: e
            .status
            .is_resolved()
            .then(|| e.case.resolved_at.unwrap_or(DateTime::<Utc>::MIN_UTC)),
        survey_pending: e.case.survey.as_ref().is_some_and(|s| s.score.is_none()),
    }
}

/// Whether `forget` erased the delivery `(channel, id)`: its tombstone is there.
fn was_erased(
    client: &mut impl r2d2_postgres::postgres::GenericClient,
    channel: ChannelKind,
    id: &str,
) -> Result<bool, PgErr> {
    let digest = crate::store::erased_digest(channel, id);
    Ok(client
        .query_opt(
            "SELECT 1 FROM erased_deliveries WHERE digest = $1",
            &[&&digest[..]],
        )?
        .is_some())
}
