//! Conversations, escalations and the outbox on PostgreSQL: read the rows, let the case rules in
//! [`crate::case`] decide, write the result in one transaction. A change to an escalation takes
//! its conversation's advisory lock first, like intake, so the two never meet halfway.

use super::PgErr;
use chrono::{DateTime, Utc};
use r2d2_postgres::postgres::Transaction;

use super::rows::{self, OUTBOX_COLUMNS};
use super::{PgStore, append_audit, audit, lock_conversation};
use crate::case::escalation::Closing;
use crate::case::outbox::{Delivery, Receipt, ReceiptEvent};
use crate::case::satisfaction::{self, SurveyAsk};
use crate::case::{CaseError, ConversationState, EscalationStatus, Survey, escalation, history};
use crate::decision::Priority;
use crate::message::ChannelKind;
use crate::store::{Conversation, DeadLetter, Escalation, NewReply, OutboxEntry};

impl PgStore {
    pub(super) fn conversation(
        &self,
        channel: ChannelKind,
        conversation: &str,
    ) -> Result<Option<Conversation>, PgErr> {
        rows::read_conversation(&mut *self.conn()?, channel, conversation, false)
    }

    pub(super) fn set_conversation_state(
        &self,
        channel: ChannelKind,
        conversation: &str,
        state: ConversationState,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Conversation, PgErr> {
        self.tx(|tx| {
            lock_conversation(tx, channel, conversation)?;
            let mut conv = rows::read_conversation(&mut *tx, channel, conversation, true)?
                .ok_or_else(|| CaseError::no_such_conversation(channel, conversation))?;
            let from = conv.state;
            conv.state = state;
            tx.execute(
                "UPDATE conversations SET state = $3 WHERE channel = $1 AND id = $2",
                &[&channel.as_str(), &conversation, &state.as_str()],
            )?;
            append_audit(
                tx,
                &audit(
                    actor,
                    "conversation.state",
                    format!("conversation {channel}/{conversation}"),
                    format!("{} → {}", from.as_str(), state.as_str()),
                    now,
                ),
            )?;
            Ok(conv)
        })
    }

    pub(super) fn escalation(&self, id: u64) -> Result<Option<Escalation>, PgErr> {
        rows::escalation(&mut *self.conn()?, id)
    }

    pub(super) fn open_escalations(&self) -> Result<Vec<Escalation>, PgErr> {
        rows::escalations(&mut *self.conn()?, "status <> 'resolved'", &[])
    }

    pub(super) fn claim_escalation(
        &self,
        id: u64,
        agent: &str,
        now: DateTime<Utc>,
    ) -> Result<Escalation, PgErr> {
        self.tx(|tx| {
            let esc = locked_escalation(tx, id)?;
            let Some(claimed) = escalation::claim(id, &esc.status, agent)? else {
                return Ok(esc);
            };
            set_status(tx, id, &claimed)?;
            rows::event(&mut *tx, id, now, agent, &history::claimed())?;
            tx.execute(
                "UPDATE conversations SET state = $3 WHERE channel = $1 AND id = $2",
                &[
                    &esc.channel.as_str(),
                    &esc.conversation,
                    &ConversationState::Human.as_str(),
                ],
            )?;
            append_audit(
                tx,
                &audit(
                    agent,
                    "escalation.claim",
                    format!("escalation {id}"),
                    String::new(),
                    now,
                ),
            )?;
            reread(tx, id)
        })
    }

    pub(super) fn resolve_escalation(
        &self,
        id: u64,
        agent: &str,
        now: DateTime<Utc>,
        survey: Option<SurveyAsk>,
        closing: Closing,
    ) -> Result<Escalation, PgErr> {
        self.tx(|tx| {
            let esc = locked_escalation(tx, id)?;
            let resolved = escalation::resolve(id, &esc.status, agent)?;
            let mut case = esc.case.clone();
            let last_asked = match &case.author {
                Some(author) => rows::surveyed(&mut *tx, author)?,
                None => None,
            };
            let ask = survey.as_ref().filter(|ask| {
                satisfaction::should_ask(&case, &esc.status, agent, last_asked, ask, now)
            });
            // The conversation's other open cases: one of them becomes the one a handoff
            // follows, and a person who claimed one still owns the conversation.
            let others: Vec<(u64, bool)> = tx
                .query(
                    "SELECT id, status = 'claimed' FROM escalations
                     WHERE channel = $1 AND conversation = $2 AND status <> 'resolved' AND id <> $3
                     ORDER BY id",
                    &[&esc.channel.as_str(), &esc.conversation, &(id as i64)],
                )?
                .iter()
                .map(|r| Ok((r.try_get::<_, i64>(0)? as u64, r.try_get(1)?)))
                .collect::<Result<_, PgErr>>()?;
            set_status(tx, id, &resolved)?;
            rows::event(&mut *tx, id, now, agent, &history::resolved())?;
            case.resolved(now);
            if let Some(mut conv) =
                rows::read_conversation(&mut *tx, esc.channel, &esc.conversation, true)?
            {
                if conv.open_escalation == Some(id) {
                    conv.open_escalation = others.first().map(|(other, _)| *other);
                }
                if !others.iter().any(|(_, claimed)| *claimed) {
                    conv.state = conv.state.after_resolve();
                }
                let mut tally = rows::tally(&conv);
                tally.case_resolved();
                conv.auto_replies = tally.auto_replies;
                if let Some(ask) = ask {
                    let question = ask.question(case.language).to_owned();
                    let in_reply_to = esc.messages.last().cloned().unwrap_or_default();
                    let entry = insert_reply(
                        tx,
                        esc.channel,
                        &esc.conversation,
                        &in_reply_to,
                        &question,
                        now,
                    )?;
                    conv.awaiting_score = true;
                    case.survey = Some(Survey {
                        asked_at: now,
                        agent: agent.to_owned(),
                        outbox: entry.id,
                        score: None,
                        answered_at: None,
                    });
                    if let Some(author) = &case.author {
                        tx.execute(
                            "INSERT INTO satisfaction_asked (author, asked_at) VALUES ($1, $2)
                             ON CONFLICT (author) DO UPDATE SET asked_at = EXCLUDED.asked_at",
                            &[author, &now],
                        )?;
                    }
                    rows::event(
                        &mut *tx,
                        id,
                        now,
                        history::ENGINE,
                        &history::survey_asked(entry.id),
                    )?;
                }
                rows::write_conversation(&mut *tx, &conv)?;
            }
            rows::write_case(&mut *tx, id, &case)?;
            append_audit(
                tx,
                &audit(
                    agent,
                    "escalation.resolve",
                    format!("escalation {id}"),
                    String::new(),
                    now,
                ),
            )?;
            if let Some((action, details)) = closing.extra_audit() {
                append_audit(
                    tx,
                    &audit(
                        agent,
                        action,
                        format!("escalation {id}"),
                        details.to_owned(),
                        now,
                    ),
                )?;
            }
            reread(tx, id)
        })
    }

    pub(super) fn conversation_escalations(
        &self,
        channel: ChannelKind,
        conversation: &str,
    ) -> Result<Vec<Escalation>, PgErr> {
        rows::escalations(
            &mut *self.conn()?,
            "channel = $1 AND conversation = $2",
            &[&channel.as_str(), &conversation],
        )
    }

    pub(super) fn outbox_entry(&self, id: u64) -> Result<Option<OutboxEntry>, PgErr> {
        let mut conn = self.conn()?;
        conn.query_opt(
            &format!("SELECT {OUTBOX_COLUMNS} FROM outbox WHERE id = $1"),
            &[&(id as i64)],
        )?
        .map(|r| rows::outbox(&r).map(|(entry, _)| entry))
        .transpose()
    }

    /// The first pending reply of each conversation, when it is due and no other instance holds
    /// it; the ones returned are claimed for this instance for [`super::CLAIM_SECS`] (or `[store] claim_secs`) (see the module
    /// docs of [`super`]). This instance sees its own claims again, so a worker that asks twice
    /// before it sent gets the same replies, as with the embedded store.
    pub(super) fn due_outbox_for(
        &self,
        now: DateTime<Utc>,
        channels: &[ChannelKind],
        limit: usize,
    ) -> Result<Vec<OutboxEntry>, PgErr> {
        let channels: Vec<&str> = channels.iter().map(|c| c.as_str()).collect();
        let limit = limit.min(i64::MAX as usize) as i64;
        self.tx(|tx| {
            let rows = tx.query(
                &format!(
                    "WITH heads AS (
                        SELECT DISTINCT ON (channel, conversation) id
                        FROM outbox WHERE status = 'pending' AND channel = ANY($1)
                        ORDER BY channel, conversation, id
                    )
                    SELECT {OUTBOX_COLUMNS} FROM outbox
                    WHERE id IN (SELECT id FROM heads) AND status = 'pending'
                      AND COALESCE(next_attempt_at, created_at) <= $2
                      AND (claimed_by IS NULL OR claimed_by = $3 OR claimed_until < clock_timestamp())
                    ORDER BY id LIMIT $4
                    FOR UPDATE SKIP LOCKED"
                ),
                &[&channels, &now, &self.instance, &limit],
            )?;
            let entries = rows
                .iter()
                .map(|r| rows::outbox(r).map(|(entry, _)| entry))
                .collect::<Result<Vec<_>, PgErr>>()?;
            let ids: Vec<i64> = entries.iter().map(|e| e.id as i64).collect();
            if !ids.is_empty() {
                tx.execute(
                    "UPDATE outbox SET claimed_by = $2, claimed_until = clock_timestamp() + make_interval(secs => $3)
                     WHERE id = ANY($1)",
                    &[&ids, &self.instance, &(self.claim_secs.load(std::sync::atomic::Ordering::Acquire) as f64)],
                )?;
            }
            Ok(entries)
        })
    }

    /// [`Store::outbox_take`]: renews this instance's claim on pending reply `id` for `hold` (at
    /// least the lease), unless another instance claimed it since. The row lock orders this
    /// against another instance's [`Self::due_outbox_for`]: one of the two holds the reply.
    ///
    /// [`Store::outbox_take`]: crate::Store::outbox_take
    pub(super) fn outbox_take(&self, id: u64, hold: std::time::Duration) -> Result<bool, PgErr> {
        let lease = self.claim_secs.load(std::sync::atomic::Ordering::Acquire) as f64;
        let mut conn = self.conn()?;
        let taken = conn.query_opt(
            "UPDATE outbox SET claimed_until = clock_timestamp() + make_interval(secs => $3)
             WHERE id = $1 AND status = 'pending' AND claimed_by = $2
             RETURNING id",
            &[&(id as i64), &self.instance, &lease.max(hold.as_secs_f64())],
        )?;
        Ok(taken.is_some())
    }

    /// [`Store::outbox_release`]: ends this instance's claims on `ids`.
    ///
    /// [`Store::outbox_release`]: crate::Store::outbox_release
    pub(super) fn outbox_release(&self, ids: &[u64]) -> Result<(), PgErr> {
        let ids: Vec<i64> = ids.iter().map(|id| *id as i64).collect();
        self.conn()?.execute(
            "UPDATE outbox SET claimed_by = NULL, claimed_until = NULL
             WHERE id = ANY($1) AND claimed_by = $2",
            &[&ids, &self.instance],
        )?;
        Ok(())
    }

    /// Reads reply `id`, lets `change` (a rule of [`Delivery`]) change its delivery state, and
    /// writes it; the claim ends with the attempt.
    pub(super) fn change_delivery(
        &self,
        id: u64,
        change: impl Fn(&mut Delivery) -> Result<(), PgErr>,
    ) -> Result<OutboxEntry, PgErr> {
        self.tx(|tx| {
            let (mut entry, mut delivery) = locked_outbox(tx, id)?;
            change(&mut delivery)?;
            write_delivery(tx, id, &delivery)?;
            apply(&mut entry, delivery);
            Ok(entry)
        })
    }

    pub(super) fn outbox_dead_letter(
        &self,
        id: u64,
        error: &str,
        team: &str,
        sla_deadline: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<DeadLetter, PgErr> {
        self.tx(|tx| {
            let (channel, conversation) = outbox_conversation(tx, id)?;
            lock_conversation(tx, channel, &conversation)?;
            let (mut entry, mut delivery) = locked_outbox(tx, id)?;
            delivery.dead_letter(id, error)?;
            write_delivery(tx, id, &delivery)?;
            apply(&mut entry, delivery);
            // Always a new escalation, for the default team: the conversation's open one (if
            // any) belongs to a specialist team that cannot fix a delivery problem.
            let esc_id = tx
                .query_one(
                    "INSERT INTO escalations (channel, conversation, team, priority, reason, status, created_at, sla_deadline, messages)
                     VALUES ($1, $2, $3, $4, $5, 'open', $6, $7, $8) RETURNING id",
                    &[
                        &channel.as_str(),
                        &conversation,
                        &team,
                        &Priority::High.as_str(),
                        &history::dead_letter_reason(error),
                        &now,
                        &sla_deadline,
                        &vec![entry.in_reply_to.as_str()],
                    ],
                )?
                .try_get::<_, i64>(0)? as u64;
            rows::event(
                &mut *tx,
                esc_id,
                now,
                history::ENGINE,
                &history::dead_letter_opened(team, id, entry.attempts),
            )?;
            if let Some(mut conv) = rows::read_conversation(&mut *tx, channel, &conversation, true)? {
                conv.open_escalation = escalation::open_escalation_after(conv.open_escalation, esc_id);
                rows::write_conversation(&mut *tx, &conv)?;
            }
            append_audit(
                tx,
                &audit(
                    history::ENGINE,
                    "outbox.dead",
                    format!("outbox {id}"),
                    format!("escalation {esc_id} for team `{team}`"),
                    now,
                ),
            )?;
            let escalation = reread(tx, esc_id)?;
            Ok(DeadLetter { entry, escalation })
        })
    }

    pub(super) fn conversation_outbox(
        &self,
        channel: ChannelKind,
        conversation: &str,
    ) -> Result<Vec<OutboxEntry>, PgErr> {
        let mut conn = self.conn()?;
        conn.query(
            &format!("SELECT {OUTBOX_COLUMNS} FROM outbox WHERE channel = $1 AND conversation = $2 ORDER BY id"),
            &[&channel.as_str(), &conversation],
        )?
        .iter()
        .map(|r| rows::outbox(r).map(|(entry, _)| entry))
        .collect()
    }

    pub(super) fn outbox_receipt(
        &self,
        id: u64,
        event: &ReceiptEvent,
        at: DateTime<Utc>,
    ) -> Result<Receipt, PgErr> {
        self.tx(|tx| {
            let row = tx
                .query_opt(
                    "SELECT receipt FROM outbox WHERE id = $1 FOR UPDATE",
                    &[&(id as i64)],
                )?
                .ok_or(CaseError::NoSuchOutboxEntry(id))?;
            let stored: Option<serde_json::Value> = row.try_get(0)?;
            let mut receipt = receipt_of(id, stored)?.unwrap_or_default();
            if receipt.apply(event, at) {
                let json = serde_json::to_value(&receipt)
                    .map_err(|e| super::corrupt(format!("outbox {id} receipt: {e}")))?;
                tx.execute(
                    "UPDATE outbox SET receipt = $2 WHERE id = $1",
                    &[&(id as i64), &json],
                )?;
            }
            Ok(receipt)
        })
    }

    pub(super) fn outbox_receipts(
        &self,
        channel: ChannelKind,
        conversation: &str,
    ) -> Result<Vec<(u64, Receipt)>, PgErr> {
        let mut conn = self.conn()?;
        let mut out = Vec::new();
        for row in conn.query(
            "SELECT id, receipt FROM outbox
              WHERE channel = $1 AND conversation = $2 AND receipt IS NOT NULL ORDER BY id",
            &[&channel.as_str(), &conversation],
        )? {
            let id = row.try_get::<_, i64>(0)? as u64;
            if let Some(receipt) = receipt_of(id, row.try_get(1)?)? {
                out.push((id, receipt));
            }
        }
        Ok(out)
    }

    pub(super) fn queue_reply(&self, reply: NewReply) -> Result<OutboxEntry, PgErr> {
        let text = self.redact(&reply.text);
        let NewReply {
            channel,
            conversation,
            in_reply_to,
            actor,
            now,
            ..
        } = reply;
        self.tx(|tx| {
            lock_conversation(tx, channel, &conversation)?;
            if rows::read_conversation(&mut *tx, channel, &conversation, false)?.is_none() {
                return Err(CaseError::no_such_conversation(channel, &conversation).into());
            }
            let entry = insert_reply(tx, channel, &conversation, &in_reply_to, &text, now)?;
            append_audit(
                tx,
                &audit(
                    &actor,
                    "outbox.reply",
                    format!("conversation {channel}/{conversation}"),
                    format!("outbox {}", entry.id),
                    now,
                ),
            )?;
            Ok(entry)
        })
    }
}

/// A reply a person wrote: a number from the message sequence, the entry standing on its own.
pub(super) fn insert_reply(
    tx: &mut Transaction<'_>,
    channel: ChannelKind,
    conversation: &str,
    in_reply_to: &str,
    text: &str,
    now: DateTime<Utc>,
) -> Result<OutboxEntry, PgErr> {
    let row = tx.query_one(
        &format!(
            "INSERT INTO outbox (id, channel, conversation, in_reply_to, text, status, created_at, own_details)
             VALUES (nextval('item_seq'), $1, $2, $3, $4, 'pending', $5, true) RETURNING {OUTBOX_COLUMNS}"
        ),
        &[&channel.as_str(), &conversation, &in_reply_to, &text, &now],
    )?;
    Ok(rows::outbox(&row)?.0)
}

/// Escalation `id` with its conversation locked and its row locked; a conflict when it does
/// not exist.
pub(super) fn locked_escalation(tx: &mut Transaction<'_>, id: u64) -> Result<Escalation, PgErr> {
    let row = tx
        .query_opt(
            "SELECT channel, conversation FROM escalations WHERE id = $1",
            &[&(id as i64)],
        )?
        .ok_or(CaseError::NoSuchEscalation(id))?;
    let channel: ChannelKind = rows::parse(row.try_get(0)?)?;
    let conversation: String = row.try_get(1)?;
    lock_conversation(tx, channel, &conversation)?;
    tx.execute(
        "SELECT 1 FROM escalations WHERE id = $1 FOR UPDATE",
        &[&(id as i64)],
    )?;
    reread(tx, id)
}

pub(super) fn reread(tx: &mut Transaction<'_>, id: u64) -> Result<Escalation, PgErr> {
    rows::escalation(&mut *tx, id)?.ok_or(CaseError::NoSuchEscalation(id).into())
}

pub(super) fn set_status(
    tx: &mut Transaction<'_>,
    id: u64,
    status: &EscalationStatus,
) -> Result<(), PgErr> {
    let (name, by) = rows::status_columns(status);
    tx.execute(
        "UPDATE escalations SET status = $2, status_by = $3 WHERE id = $1",
        &[&(id as i64), &name, &by],
    )?;
    Ok(())
}

fn outbox_conversation(tx: &mut Transaction<'_>, id: u64) -> Result<(ChannelKind, String), PgErr> {
    let row = tx
        .query_opt(
            "SELECT channel, conversation FROM outbox WHERE id = $1",
            &[&(id as i64)],
        )?
        .ok_or(CaseError::NoSuchOutboxEntry(id))?;
    let channel = rows::parse(row.try_get(0)?)?;
    Ok((channel, row.try_get(1)?))
}

fn receipt_of(id: u64, stored: Option<serde_json::Value>) -> Result<Option<Receipt>, PgErr> {
    stored
        .map(|json| {
            serde_json::from_value(json)
                .map_err(|e| super::corrupt(format!("outbox {id} receipt: {e}")))
        })
        .transpose()
}

fn locked_outbox(tx: &mut Transaction<'_>, id: u64) -> Result<(OutboxEntry, Delivery), PgErr> {
    let row = tx
        .query_opt(
            &format!("SELECT {OUTBOX_COLUMNS} FROM outbox WHERE id = $1 FOR UPDATE"),
            &[&(id as i64)],
        )?
        .ok_or(CaseError::NoSuchOutboxEntry(id))?;
    rows::outbox(&row)
}

fn write_delivery(tx: &mut Transaction<'_>, id: u64, d: &Delivery) -> Result<(), PgErr> {
    let (status, sent_at) = rows::outbox_delivery_columns(d);
    tx.execute(
        "UPDATE outbox SET status = $2, sent_at = $3, attempts = $4, last_error = $5, next_attempt_at = $6,
           claimed_by = NULL, claimed_until = NULL
         WHERE id = $1",
        &[&(id as i64), &status, &sent_at, &(d.attempts as i32), &d.last_error, &d.next_attempt_at],
    )?;
    Ok(())
}

/// What callers see of a changed delivery.
fn apply(entry: &mut OutboxEntry, delivery: Delivery) {
    entry.status = delivery.status;
    entry.attempts = delivery.attempts;
    entry.last_error = delivery.last_error;
    entry.next_attempt_at = delivery.next_attempt_at.unwrap_or(entry.created_at);
}
