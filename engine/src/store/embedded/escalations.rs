//! Conversations and escalations in the embedded layout: read the records, let the case
//! rules decide, write the result in one transaction.

use chrono::{DateTime, Utc};

use super::*;
use crate::case::ConversationState;
use crate::message::ChannelKind;
use crate::store::codec::{self, ConvRec};
use crate::store::{Conversation, Escalation, StoreError};

impl Embedded {
    pub(super) fn conversation(
        &self,
        channel: ChannelKind,
        conversation: &str,
    ) -> Result<Option<Conversation>, StoreError> {
        let k = key::conv(channel, conversation);
        let Some(rec) = self.snapshot()?.conv(channel, conversation)? else {
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
    ) -> Result<Conversation, StoreError> {
        let conversation = conversation.to_owned();
        let actor = actor.to_owned();
        let path = self.shared.path.clone();
        self.write(move |tx| {
            let k = key::conv(channel, &conversation);
            let mut conv: ConvRec = tx
                .load(&k)?
                .ok_or_else(|| missing_conversation(channel, &conversation))?;
            let from = codec::state_from(conv.state);
            conv.state = codec::state_code(state);
            tx.put_rec(&k, &conv)?;
            tx.audit(audit(
                &actor,
                "conversation.state",
                format!("conversation {channel}/{conversation}"),
                format!("{} → {}", from.as_str(), state.as_str()),
                now,
            ))?;
            conv.to_public(channel, &conversation, |reason| StoreError::Corrupt {
                path: path.clone(),
                reason,
            })
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
    ) -> Result<Escalation, StoreError> {
        let agent = agent.to_owned();
        self.write(move |tx| {
            let mut esc = tx.esc_rec(id)?.ok_or(StoreError::NoSuchEscalation(id))?;
            match (esc.status, &esc.by) {
                (codec::ESC_RESOLVED, _) => return Err(StoreError::AlreadyResolved(id)),
                (codec::ESC_CLAIMED, Some(by)) if *by == agent => {
                    return tx.escalation(id)?.ok_or(StoreError::NoSuchEscalation(id));
                }
                (codec::ESC_CLAIMED, Some(by)) => {
                    return Err(StoreError::AlreadyClaimed { id, by: by.clone() });
                }
                _ => {}
            }
            let channel = codec::channel_from(esc.channel)
                .map_err(|e| tx.shared.corrupt(&key::esc(id), e))?;
            let conv_key = key::conv(channel, &esc.conversation);
            let conv: Option<ConvRec> = tx.load(&conv_key)?;
            esc.status = codec::ESC_CLAIMED;
            esc.by = Some(agent.clone());
            esc.event(now, &agent, "claimed".into());
            tx.put_rec(&key::esc(id), &esc)?;
            if let Some(mut conv) = conv {
                conv.state = codec::state_code(ConversationState::Human);
                tx.put_rec(&conv_key, &conv)?;
            }
            tx.audit(audit(
                &agent,
                "escalation.claim",
                format!("escalation {id}"),
                String::new(),
                now,
            ))?;
            tx.escalation(id)?.ok_or(StoreError::NoSuchEscalation(id))
        })
    }

    pub(super) fn resolve_escalation(
        &self,
        id: u64,
        agent: &str,
        now: DateTime<Utc>,
    ) -> Result<Escalation, StoreError> {
        let agent = agent.to_owned();
        self.write(move |tx| {
            let mut esc = tx.esc_rec(id)?.ok_or(StoreError::NoSuchEscalation(id))?;
            if esc.status == codec::ESC_RESOLVED {
                return Err(StoreError::AlreadyResolved(id));
            }
            let channel = codec::channel_from(esc.channel)
                .map_err(|e| tx.shared.corrupt(&key::esc(id), e))?;
            let conv_key = key::conv(channel, &esc.conversation);
            let conv: Option<ConvRec> = tx.load(&conv_key)?;
            esc.status = codec::ESC_RESOLVED;
            esc.by = Some(agent.clone());
            esc.event(now, &agent, "resolved".into());
            tx.put_rec(&key::esc(id), &esc)?;
            tx.delete(Space::Records, &key::esc_open(id));
            if let Some(mut conv) = conv {
                if conv.open_escalation == Some(id) {
                    conv.open_escalation = None;
                }
                if conv.state == codec::state_code(ConversationState::Human) {
                    conv.state = codec::state_code(ConversationState::Bot);
                }
                // A person closed the case: the bot's budget of automatic replies (the loop
                // guard in governance.rhai) starts again for whatever the customer asks next.
                conv.auto_replies = 0;
                tx.put_rec(&conv_key, &conv)?;
            }
            tx.audit(audit(
                &agent,
                "escalation.resolve",
                format!("escalation {id}"),
                String::new(),
                now,
            ))?;
            tx.escalation(id)?.ok_or(StoreError::NoSuchEscalation(id))
        })
    }
}
