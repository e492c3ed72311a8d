//! Conversations and escalations in the embedded layout: read the records, let the case
//! rules decide, write the result in one transaction.

use chrono::{DateTime, Utc};

use super::*;
use crate::case::satisfaction::{self, SurveyAsk};
use crate::case::{CaseError, ConversationState, EscalationStatus, Survey, escalation, history};
use crate::message::ChannelKind;
use crate::store::codec::{self, ConvRec, EscRec, OutboxDetail, OutboxRec, Text};
use crate::store::{Conversation, Escalation, StoreError};

impl Embedded {
    pub(super) fn conversation(
        &self,
        channel: ChannelKind,
        conversation: &str,
    ) -> Result<Option<Conversation>, StoreError> {
        let Some((k, rec)) = self.snapshot()?.conv_with_key(channel, conversation)? else {
            return Ok(None);
        };
        rec.to_public(channel, conversation, |e| self.shared.corrupt(&k, e))
            .map(Some)
    }

    pub(super) fn set_conversation_state(
        &self,
        channel: ChannelKind,
        conversation: &str,
        state: ConversationState,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Conversation, CaseError> {
        let conversation = conversation.to_owned();
        let actor = actor.to_owned();
        let path = self.shared.path.clone();
        self.write(move |tx| {
            let (k, mut conv) = tx
                .conv_with_key(channel, &conversation)?
                .ok_or_else(|| CaseError::no_such_conversation(channel, &conversation))?;
            let from = codec::state_from(conv.state);
            conv.set_owner(state);
            tx.put_rec(&k, &conv)?;
            tx.audit(audit(
                &actor,
                "conversation.state",
                format!("conversation {channel}/{conversation}"),
                format!("{} → {}", from.as_str(), state.as_str()),
                now,
            ))?;
            Ok(
                conv.to_public(channel, &conversation, |reason| StoreError::Corrupt {
                    path: path.clone(),
                    reason: reason.to_string(),
                })?,
            )
        })
    }

    pub(super) fn escalation(&self, id: u64) -> Result<Option<Escalation>, StoreError> {
        self.snapshot()?.escalation(id)
    }

    pub(super) fn open_escalations(&self) -> Result<Vec<Escalation>, StoreError> {
        let mut snap = self.snapshot()?;
        let mut out = Vec::new();
        for id in snap.ids_under(&[key::ESC_OPEN])? {
            if let Some(esc) = snap.escalation(id)? {
                out.push(esc);
            }
        }
        Ok(out)
    }

    pub(super) fn claim_escalation(
        &self,
        id: u64,
        agent: &str,
        now: DateTime<Utc>,
    ) -> Result<Escalation, CaseError> {
        let agent = agent.to_owned();
        self.write(move |tx| {
            let (mut esc, status) = escalation_rec(tx, id)?;
            let Some(claimed) = escalation::claim(id, &status, &agent)? else {
                return decoded(tx, id);
            };
            let conv = conversation_of(tx, id, &esc)?;
            esc.set_status(claimed);
            esc.event(now, &agent, history::claimed());
            tx.put_rec(&key::esc(id), &esc)?;
            if let Some((conv_key, mut conv)) = conv {
                conv.set_owner(conv.owner().taken_by_person());
                tx.put_rec(&conv_key, &conv)?;
            }
            tx.audit(audit(
                &agent,
                "escalation.claim",
                format!("escalation {id}"),
                String::new(),
                now,
            ))?;
            decoded(tx, id)
        })
    }

    pub(super) fn resolve_escalation(
        &self,
        id: u64,
        agent: &str,
        now: DateTime<Utc>,
        survey: Option<SurveyAsk>,
        closing: Closing,
    ) -> Result<Escalation, CaseError> {
        let agent = agent.to_owned();
        self.write(move |tx| {
            let (mut esc, status) = escalation_rec(tx, id)?;
            let resolved = escalation::resolve(id, &status, &agent)?;
            let conv = conversation_of(tx, id, &esc)?;
            let mut case = tx.case_of(id, &esc)?;
            let last_asked = match &case.author {
                Some(author) => tx.surveyed(author)?,
                None => None,
            };
            let ask = survey.filter(|ask| {
                satisfaction::should_ask(&case, &status, &agent, last_asked, ask, now)
            });
            // The conversation's other open cases: one of them becomes the one a handoff
            // follows, and a person who claimed one still owns the conversation.
            let mut others = Vec::new();
            for other in conv.iter().flat_map(|(_, c)| c.escalations.iter().copied()) {
                if other != id
                    && let Some(rec) = tx.esc_rec(other)?
                    && rec.is_open()
                {
                    others.push((other, rec.status == codec::ESC_CLAIMED));
                }
            }
            esc.set_status(resolved);
            esc.event(now, &agent, history::resolved());
            case.resolved(now);
            tx.delete(Space::Records, &key::esc_open(id));
            if let Some((conv_key, mut conv)) = conv {
                if conv.open_escalation == Some(id) {
                    conv.open_escalation = others.first().map(|(other, _)| *other);
                }
                if !others.iter().any(|(_, claimed)| *claimed) {
                    conv.set_owner(conv.owner().after_resolve());
                }
                let mut tally = conv.tally();
                tally.case_resolved();
                conv.set_tally(tally);
                if let Some(ask) = ask {
                    let question = ask.question(case.language).to_owned();
                    let outbox = tx.append_message(&[])?;
                    tx.put_outbox(
                        outbox,
                        &OutboxRec {
                            channel: esc.channel,
                            detail: Some(OutboxDetail {
                                conversation: esc.conversation.clone(),
                                in_reply_to: esc.messages.last().cloned().unwrap_or_default(),
                                text: Text::Inline(question),
                                created_at: codec::micros(now),
                            }),
                            ..OutboxRec::default()
                        },
                    )?;
                    conv.replies.push(outbox);
                    conv.set_awaiting_score(true);
                    case.survey = Some(Survey {
                        asked_at: now,
                        agent: agent.clone(),
                        outbox,
                        score: None,
                        answered_at: None,
                    });
                    if let Some(author) = &case.author {
                        tx.put_rec(&key::surveyed(author), &codec::micros(now))?;
                    }
                    esc.event(now, history::ENGINE, history::survey_asked(outbox));
                }
                tx.put_rec(&conv_key, &conv)?;
            }
            esc.set_case(&case);
            tx.put_rec(&key::esc(id), &esc)?;
            tx.audit(audit(
                &agent,
                "escalation.resolve",
                format!("escalation {id}"),
                String::new(),
                now,
            ))?;
            if let Some((action, details)) = closing.extra_audit() {
                tx.audit(audit(
                    &agent,
                    action,
                    format!("escalation {id}"),
                    details.to_owned(),
                    now,
                ))?;
            }
            decoded(tx, id)
        })
    }
}

/// An escalation's record and status, or the conflict that it does not exist.
pub(super) fn escalation_rec(
    tx: &mut Tx<'_>,
    id: u64,
) -> Result<(EscRec, EscalationStatus), CaseError> {
    let esc = tx.esc_rec(id)?.ok_or(CaseError::NoSuchEscalation(id))?;
    let status = esc
        .status()
        .map_err(|e| tx.shared.corrupt(&key::esc(id), e))?;
    Ok((esc, status))
}

/// The conversation an escalation belongs to, with its record's key.
fn conversation_of(
    tx: &mut Tx<'_>,
    id: u64,
    esc: &EscRec,
) -> Result<Option<(Vec<u8>, ConvRec)>, StoreError> {
    let channel =
        codec::channel_from(esc.channel).map_err(|e| tx.shared.corrupt(&key::esc(id), e))?;
    tx.conv_with_key(channel, &esc.conversation)
}

/// Escalation `id` as callers see it, with what this transaction wrote.
pub(super) fn decoded(tx: &mut Tx<'_>, id: u64) -> Result<Escalation, CaseError> {
    tx.escalation(id)?.ok_or(CaseError::NoSuchEscalation(id))
}
