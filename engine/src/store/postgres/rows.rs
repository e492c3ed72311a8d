//! Records back from rows: one reader per table, so every query that returns a record selects
//! the same columns in the same order (the `*_COLUMNS` constants).

use super::PgErr;
use std::collections::BTreeSet;

use chrono::{DateTime, NaiveDate, Utc};
use r2d2_postgres::postgres::{GenericClient, Row};

use super::corrupt;
use crate::case::outbox::{Delivery, OutboxStatus};
use crate::case::{ConversationState, EscalationStatus, Tally};
use crate::message::ChannelKind;
use crate::mode::Mode;
use crate::store::{Conversation, Escalation, EscalationEvent, OutboxEntry, StoredMessage, User};

pub const MESSAGE_COLUMNS: &str = "seq, message, decision, facts, stored_at, mode, shadow";

pub fn message(row: &Row) -> Result<StoredMessage, PgErr> {
    let seq: i64 = row.try_get(0)?;
    let json = |i: usize| -> Result<serde_json::Value, PgErr> { Ok(row.try_get(i)?) };
    let shadow: Option<serde_json::Value> = row.try_get(6)?;
    let bad = |what: &str, e: serde_json::Error| corrupt(format!("message {seq}: {what}: {e}"));
    Ok(StoredMessage {
        seq: seq as u64,
        message: serde_json::from_value(json(1)?).map_err(|e| bad("message", e))?,
        decision: serde_json::from_value(json(2)?).map_err(|e| bad("decision", e))?,
        facts: serde_json::from_value(json(3)?).map_err(|e| bad("facts", e))?,
        stored_at: row.try_get(4)?,
        mode: parse::<Mode>(row.try_get(5)?)?,
        shadow: match shadow {
            Some(v) => Some(serde_json::from_value(v).map_err(|e| bad("shadow decision", e))?),
            None => None,
        },
    })
}

pub fn parse<T: std::str::FromStr>(text: &str) -> Result<T, PgErr>
where
    T::Err: std::fmt::Display,
{
    text.parse::<T>()
        .map_err(|e| corrupt(format!("`{text}`: {e}")))
}

pub fn state(text: &str) -> Result<ConversationState, PgErr> {
    match text {
        "bot" => Ok(ConversationState::Bot),
        "human" => Ok(ConversationState::Human),
        "closed" => Ok(ConversationState::Closed),
        other => Err(corrupt(format!("unknown conversation state `{other}`"))),
    }
}

pub const CONVERSATION_COLUMNS: &str = "channel, id, state, participants, started_at, last_activity, messages, today, messages_today, auto_replies, recent_complaints, open_escalation, awaiting_score";

pub fn conversation(row: &Row) -> Result<Conversation, PgErr> {
    let participants: Vec<String> = row.try_get(3)?;
    let open: Option<i64> = row.try_get(11)?;
    Ok(Conversation {
        channel: parse(row.try_get(0)?)?,
        id: row.try_get(1)?,
        participants: participants.into_iter().collect::<BTreeSet<_>>(),
        state: state(row.try_get(2)?)?,
        started_at: row.try_get(4)?,
        last_activity: row.try_get(5)?,
        messages: row.try_get::<_, i64>(6)? as u64,
        today: row.try_get::<_, NaiveDate>(7)?,
        messages_today: row.try_get(8)?,
        auto_replies: row.try_get(9)?,
        recent_complaints: row.try_get(10)?,
        open_escalation: open.map(|id| id as u64),
        awaiting_score: row.try_get(12)?,
    })
}

/// A conversation's counters as the case rules keep them.
pub fn tally(c: &Conversation) -> Tally {
    Tally {
        last_activity: c.last_activity,
        messages: c.messages,
        today: c.today,
        messages_today: c.messages_today,
        auto_replies: c.auto_replies,
        recent_complaints: c.recent_complaints.clone(),
    }
}

pub fn read_conversation(
    client: &mut impl GenericClient,
    channel: ChannelKind,
    id: &str,
    for_update: bool,
) -> Result<Option<Conversation>, PgErr> {
    let sql = format!(
        "SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE channel = $1 AND id = $2{}",
        if for_update { " FOR UPDATE" } else { "" }
    );
    client
        .query_opt(&sql, &[&channel.as_str(), &id])?
        .map(|r| conversation(&r))
        .transpose()
}

/// Writes `c` back whole (insert or update).
pub fn write_conversation(client: &mut impl GenericClient, c: &Conversation) -> Result<(), PgErr> {
    let participants: Vec<&str> = c.participants.iter().map(String::as_str).collect();
    client.execute(
        "INSERT INTO conversations (channel, id, state, participants, started_at, last_activity, messages, today, messages_today, auto_replies, recent_complaints, open_escalation, awaiting_score)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
         ON CONFLICT (channel, id) DO UPDATE SET state = EXCLUDED.state, participants = EXCLUDED.participants,
           started_at = EXCLUDED.started_at, last_activity = EXCLUDED.last_activity, messages = EXCLUDED.messages,
           today = EXCLUDED.today, messages_today = EXCLUDED.messages_today, auto_replies = EXCLUDED.auto_replies,
           recent_complaints = EXCLUDED.recent_complaints, open_escalation = EXCLUDED.open_escalation,
           awaiting_score = EXCLUDED.awaiting_score",
        &[
            &c.channel.as_str(),
            &c.id,
            &c.state.as_str(),
            &participants,
            &c.started_at,
            &c.last_activity,
            &(c.messages as i64),
            &c.today,
            &c.messages_today,
            &c.auto_replies,
            &c.recent_complaints,
            &c.open_escalation.map(|id| id as i64),
            &c.awaiting_score,
        ],
    )?;
    Ok(())
}

pub const ESCALATION_COLUMNS: &str = "id, channel, conversation, team, priority, reason, status, status_by, created_at, sla_deadline, messages, case_state";

pub fn status(status: &str, by: Option<String>) -> Result<EscalationStatus, PgErr> {
    match (status, by) {
        ("open", _) => Ok(EscalationStatus::Open),
        ("claimed", Some(by)) => Ok(EscalationStatus::Claimed { by }),
        ("resolved", Some(by)) => Ok(EscalationStatus::Resolved { by }),
        (other, _) => Err(corrupt(format!("bad escalation status `{other}`"))),
    }
}

pub fn status_columns(s: &EscalationStatus) -> (&'static str, Option<&str>) {
    match s {
        EscalationStatus::Open => ("open", None),
        EscalationStatus::Claimed { by } => ("claimed", Some(by)),
        EscalationStatus::Resolved { by } => ("resolved", Some(by)),
    }
}

fn escalation_row(row: &Row) -> Result<Escalation, PgErr> {
    Ok(Escalation {
        id: row.try_get::<_, i64>(0)? as u64,
        channel: parse(row.try_get(1)?)?,
        conversation: row.try_get(2)?,
        team: row.try_get(3)?,
        priority: parse(row.try_get(4)?)?,
        reason: row.try_get(5)?,
        status: status(row.try_get(6)?, row.try_get(7)?)?,
        created_at: row.try_get(8)?,
        sla_deadline: row.try_get(9)?,
        messages: row.try_get(10)?,
        history: Vec::new(),
        case: serde_json::from_value(row.try_get(11)?)
            .map_err(|e| corrupt(format!("escalation case state: {e}")))?,
    })
}

/// Writes escalation `id`'s case state.
pub fn write_case(
    client: &mut impl GenericClient,
    id: u64,
    case: &crate::case::CaseState,
) -> Result<(), PgErr> {
    let json =
        serde_json::to_value(case).map_err(|e| corrupt(format!("escalation case state: {e}")))?;
    client.execute(
        "UPDATE escalations SET case_state = $2 WHERE id = $1",
        &[&(id as i64), &json],
    )?;
    Ok(())
}

/// When the customer `author` was last asked for a satisfaction score.
pub fn surveyed(
    client: &mut impl GenericClient,
    author: &str,
) -> Result<Option<DateTime<Utc>>, PgErr> {
    Ok(client
        .query_opt(
            "SELECT asked_at FROM satisfaction_asked WHERE author = $1",
            &[&author],
        )?
        .map(|r| r.try_get(0))
        .transpose()?)
}

/// Escalations by `where_` (a condition on `escalations`, with `params`), in id order, each
/// with its history.
pub fn escalations(
    client: &mut impl GenericClient,
    where_: &str,
    params: &[&(dyn r2d2_postgres::postgres::types::ToSql + Sync)],
) -> Result<Vec<Escalation>, PgErr> {
    let rows = client.query(
        &format!("SELECT {ESCALATION_COLUMNS} FROM escalations WHERE {where_} ORDER BY id"),
        params,
    )?;
    let mut out = rows
        .iter()
        .map(escalation_row)
        .collect::<Result<Vec<_>, _>>()?;
    if out.is_empty() {
        return Ok(out);
    }
    let ids: Vec<i64> = out.iter().map(|e| e.id as i64).collect();
    let events = client.query(
        "SELECT escalation, at, actor, change FROM escalation_history WHERE escalation = ANY($1) ORDER BY escalation, n",
        &[&ids],
    )?;
    let mut at = 0;
    for row in &events {
        let id = row.try_get::<_, i64>(0)? as u64;
        while out.get(at).is_some_and(|e| e.id < id) {
            at += 1;
        }
        if let Some(esc) = out.get_mut(at).filter(|e| e.id == id) {
            esc.history.push(EscalationEvent {
                at: row.try_get(1)?,
                actor: row.try_get(2)?,
                change: row.try_get(3)?,
            });
        }
    }
    Ok(out)
}

pub fn escalation(client: &mut impl GenericClient, id: u64) -> Result<Option<Escalation>, PgErr> {
    Ok(escalations(client, "id = $1", &[&(id as i64)])?.pop())
}

pub fn event(
    client: &mut impl GenericClient,
    id: u64,
    at: DateTime<Utc>,
    actor: &str,
    change: &str,
) -> Result<(), PgErr> {
    client.execute(
        "INSERT INTO escalation_history (escalation, at, actor, change) VALUES ($1, $2, $3, $4)",
        &[&(id as i64), &at, &actor, &change],
    )?;
    Ok(())
}

pub const OUTBOX_COLUMNS: &str = "id, channel, conversation, in_reply_to, text, attempts, last_error, status, sent_at, created_at, next_attempt_at";

pub fn outbox_status(status: &str, sent_at: Option<DateTime<Utc>>) -> Result<OutboxStatus, PgErr> {
    match (status, sent_at) {
        ("pending", _) => Ok(OutboxStatus::Pending),
        ("sent", Some(at)) => Ok(OutboxStatus::Sent { at }),
        ("dead", _) => Ok(OutboxStatus::Dead),
        (other, _) => Err(corrupt(format!("bad outbox status `{other}`"))),
    }
}

pub fn outbox(row: &Row) -> Result<(OutboxEntry, Delivery), PgErr> {
    let status = outbox_status(row.try_get(7)?, row.try_get(8)?)?;
    let created_at: DateTime<Utc> = row.try_get(9)?;
    let next: Option<DateTime<Utc>> = row.try_get(10)?;
    let attempts = row.try_get::<_, i32>(5)? as u32;
    let last_error: Option<String> = row.try_get(6)?;
    let entry = OutboxEntry {
        id: row.try_get::<_, i64>(0)? as u64,
        channel: parse(row.try_get(1)?)?,
        conversation: row.try_get(2)?,
        in_reply_to: row.try_get(3)?,
        text: row.try_get(4)?,
        attempts,
        last_error: last_error.clone(),
        status: status.clone(),
        created_at,
        next_attempt_at: next.unwrap_or(created_at),
    };
    let delivery = Delivery {
        status,
        attempts,
        last_error,
        next_attempt_at: next,
    };
    Ok((entry, delivery))
}

pub fn outbox_delivery_columns(d: &Delivery) -> (&'static str, Option<DateTime<Utc>>) {
    match d.status {
        OutboxStatus::Pending => ("pending", None),
        OutboxStatus::Sent { at } => ("sent", Some(at)),
        OutboxStatus::Dead => ("dead", None),
    }
}

pub const USER_COLUMNS: &str = "login, name, role, teams, password_hash, created_at";

pub fn user(row: &Row) -> Result<User, PgErr> {
    Ok(User {
        login: row.try_get(0)?,
        name: row.try_get(1)?,
        role: parse(row.try_get(2)?)?,
        teams: row.try_get(3)?,
        password_hash: row.try_get(4)?,
        created_at: row.try_get(5)?,
    })
}
