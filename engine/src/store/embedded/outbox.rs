//! The outbox in the embedded layout: a pending reply is two bytes of its chunk's waiting
//! record until something happens to it, so queueing a reply with a message costs a few bytes.

use chrono::{DateTime, Utc};

use super::*;
use crate::case::outbox::{Delivery, InOrder, Receipt, ReceiptEvent};
use crate::case::{CaseError, escalation, history};
use crate::decision::Priority;
use crate::message::ChannelKind;
use crate::store::codec::{self, CaseRec, EscRec, OutboxDetail, OutboxRec, Text};
use crate::store::{DeadLetter, NewReply, OutboxEntry, StoreError};

impl Embedded {
    pub(super) fn outbox_entry(&self, id: u64) -> Result<Option<OutboxEntry>, StoreError> {
        Ok(self.snapshot()?.outbox(id)?.map(|(_, _, entry)| entry))
    }

    pub(super) fn due_outbox(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        self.due_outbox_for(now, &ChannelKind::ALL, limit)
    }

    pub(super) fn outbox_sent(
        &self,
        id: u64,
        now: DateTime<Utc>,
    ) -> Result<OutboxEntry, CaseError> {
        self.change_delivery(id, move |d| d.sent(id, now))
    }

    pub(super) fn outbox_failed(
        &self,
        id: u64,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
        _now: DateTime<Utc>,
    ) -> Result<OutboxEntry, CaseError> {
        let error = error.to_owned();
        self.change_delivery(id, move |d| d.failed(id, &error, retry_at))
    }

    pub(super) fn due_outbox_for(
        &self,
        now: DateTime<Utc>,
        channels: &[ChannelKind],
        limit: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let codes: Vec<u8> = channels.iter().map(|c| codec::channel_code(*c)).collect();
        let mut snap = self.snapshot()?;
        let mut out = Vec::new();
        // Pending ids are in queue order (a reply's id is a message number), which is the
        // order the case rule needs.
        let mut order = InOrder::new();
        let mut from = Some(0);
        'pages: while let Some(chunk) = from {
            let (waiting, next) = waiting::page(&mut *snap.kv, &self.shared, chunk)?;
            from = next;
            for (id, channel) in waiting {
                if out.len() >= limit {
                    break 'pages;
                }
                // The channel is in the waiting record: the replies on a channel without an
                // adapter are skipped without reading anything else.
                if !codes.contains(&channel) {
                    continue;
                }
                let Some((rec, true)) = snap.outbox_rec(id)? else {
                    continue;
                };
                let entry = snap.decode_outbox(id, &rec)?;
                let due = entry.next_attempt_at <= now;
                if order.admits((entry.channel, entry.conversation.clone()), due) {
                    out.push(entry);
                }
            }
        }
        Ok(out)
    }

    pub(super) fn outbox_postponed(
        &self,
        id: u64,
        reason: &str,
        retry_at: DateTime<Utc>,
        _now: DateTime<Utc>,
    ) -> Result<OutboxEntry, CaseError> {
        let reason = reason.to_owned();
        self.change_delivery(id, move |d| d.postponed(id, &reason, retry_at))
    }

    /// Reads reply `id`, lets `change` (a rule of [`Delivery`]) change its delivery state,
    /// and writes it.
    fn change_delivery(
        &self,
        id: u64,
        change: impl FnOnce(&mut Delivery) -> Result<(), CaseError> + Send + 'static,
    ) -> Result<OutboxEntry, CaseError> {
        self.write(move |tx| {
            let (mut rec, mut entry, mut delivery) = delivery_of(tx, id)?;
            change(&mut delivery)?;
            rec.set_delivery(&delivery);
            tx.put_outbox(id, &rec)?;
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
    ) -> Result<DeadLetter, CaseError> {
        let error = error.to_owned();
        let team = team.to_owned();
        self.write(move |tx| {
            let (mut rec, mut entry, mut delivery) = delivery_of(tx, id)?;
            delivery.dead_letter(id, &error)?;
            let conversation = tx.conv_with_key(entry.channel, &entry.conversation)?;

            // Reads are done; from here on only writes.
            rec.set_delivery(&delivery);
            tx.put_outbox(id, &rec)?;
            apply(&mut entry, delivery);

            // Always a new escalation, for the default team: the conversation's open one (if
            // any) belongs to a specialist team that cannot fix a delivery problem.
            let esc_id = tx.counters.next_escalation;
            tx.counters.next_escalation += 1;
            let mut esc = EscRec {
                channel: codec::channel_code(entry.channel),
                conversation: entry.conversation.clone(),
                team: codec::encode_text(&team, &[], tx)?,
                priority: codec::priority_code(Priority::High),
                reason: Text::Inline(history::dead_letter_reason(&error)),
                status: codec::ESC_OPEN,
                by: None,
                created_at: codec::micros(now),
                sla_deadline: sla_deadline.map(codec::micros),
                messages: vec![entry.in_reply_to.clone()],
                joins: Vec::new(),
                events: Vec::new(),
                case: CaseRec::default(),
            };
            esc.event(
                now,
                history::ENGINE,
                history::dead_letter_opened(&team, id, entry.attempts),
            );
            tx.put_rec(&key::esc(esc_id), &esc)?;
            tx.put(Space::Records, &key::esc_open(esc_id), Vec::new());
            if let Some((conv_key, mut conversation)) = conversation {
                conversation.open_escalation =
                    escalation::open_escalation_after(conversation.open_escalation, esc_id);
                conversation.escalations.push(esc_id);
                tx.put_rec(&conv_key, &conversation)?;
            }
            tx.audit(audit(
                history::ENGINE,
                "outbox.dead",
                format!("outbox {id}"),
                format!("escalation {esc_id} for team `{team}`"),
                now,
            ))?;
            let escalation = super::escalations::decoded(tx, esc_id)?;
            Ok(DeadLetter { entry, escalation })
        })
    }

    pub(super) fn conversation_outbox(
        &self,
        channel: ChannelKind,
        conversation: &str,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let mut snap = self.snapshot()?;
        let Some(conv) = snap.conv(channel, conversation)? else {
            return Ok(Vec::new());
        };
        let mut ids = conv.replies.clone();
        for seq in snap.conv_seqs(&conv)? {
            if snap.message_rec(seq)?.is_some_and(|m| m.has_reply()) {
                ids.push(seq);
            }
        }
        ids.sort_unstable();
        ids.dedup();
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some((_, _, entry)) = snap.outbox(id)? {
                out.push(entry);
            }
        }
        Ok(out)
    }

    pub(super) fn outbox_receipt(
        &self,
        id: u64,
        event: ReceiptEvent,
        at: DateTime<Utc>,
    ) -> Result<Receipt, CaseError> {
        self.write(move |tx| {
            if tx.outbox_rec(id)?.is_none() {
                return Err(CaseError::NoSuchOutboxEntry(id));
            }
            let mut receipt = tx.receipt(id)?.unwrap_or_default();
            if receipt.apply(&event, at) {
                tx.put_receipt(id, &receipt)?;
            }
            Ok(receipt)
        })
    }

    pub(super) fn outbox_receipts(
        &self,
        channel: ChannelKind,
        conversation: &str,
    ) -> Result<Vec<(u64, Receipt)>, StoreError> {
        let replies = self.conversation_outbox(channel, conversation)?;
        let mut snap = self.snapshot()?;
        let mut out = Vec::new();
        for entry in replies {
            if let Some(receipt) = snap.receipt(entry.id)? {
                out.push((entry.id, receipt));
            }
        }
        Ok(out)
    }

    pub(super) fn queue_reply(&self, reply: NewReply) -> Result<OutboxEntry, CaseError> {
        let NewReply {
            channel,
            conversation,
            in_reply_to,
            mut text,
            actor,
            now,
        } = reply;
        if let Some(redactor) = &self.redactor {
            text = redactor.redact(&text).into_owned();
        }
        self.write(move |tx| {
            let (conv_key, mut conv) = tx
                .conv_with_key(channel, &conversation)?
                .ok_or_else(|| CaseError::no_such_conversation(channel, &conversation))?;
            // An agent's reply takes a number from the message sequence (an empty slot), so
            // outbox ids stay unique without a counter of their own. The text stays inline: it
            // is a person's words, which `forget` must be able to erase.
            let id = tx.append_message(&[])?;
            tx.put_outbox(
                id,
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
            conv.replies.push(id);
            tx.put_rec(&conv_key, &conv)?;
            tx.audit(audit(
                &actor,
                "outbox.reply",
                format!("conversation {channel}/{conversation}"),
                format!("outbox {id}"),
                now,
            ))?;
            Ok(OutboxEntry {
                id,
                channel,
                conversation,
                in_reply_to,
                text,
                attempts: 0,
                last_error: None,
                status: super::OutboxStatus::Pending,
                created_at: now,
                next_attempt_at: now,
            })
        })
    }
}

/// A reply's record, as callers see it, and its delivery state; a conflict when it does not
/// exist.
fn delivery_of(tx: &mut Tx<'_>, id: u64) -> Result<(OutboxRec, OutboxEntry, Delivery), CaseError> {
    let (rec, _, entry) = tx.outbox(id)?.ok_or(CaseError::NoSuchOutboxEntry(id))?;
    let delivery = rec
        .delivery()
        .map_err(|e| tx.shared.corrupt(format!("outbox {id}").as_bytes(), e))?;
    Ok((rec, entry, delivery))
}

/// What callers see of a changed delivery.
fn apply(entry: &mut OutboxEntry, delivery: Delivery) {
    entry.status = delivery.status;
    entry.attempts = delivery.attempts;
    entry.last_error = delivery.last_error;
    entry.next_attempt_at = delivery.next_attempt_at.unwrap_or(entry.created_at);
}
