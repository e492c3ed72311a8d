//! Messenger and Instagram delivery and read events, kept on the replies they report on as
//! WhatsApp's statuses are (the same receipts, shown in the inbox). Unlike WhatsApp these name
//! a moment more than a message: a delivery lists the message ids (`mids`) and a `watermark`,
//! a read only the watermark (Messenger) or the last message seen (Instagram), and each means
//! every message sent until then. So a reply is marked when its id is named and this process
//! sent it (the in-memory [`SentLog`](super::SentLog)), and every reply of the conversation
//! that webcare recorded as sent at or before the watermark is marked from the store, which
//! also covers replies sent before a restart. webcare records a send once Meta answered it, a
//! moment after Meta's own time for it, so a watermark equal to that time leaves the reply for
//! the next event (Messenger posts one each time the user opens the conversation).

use std::collections::BTreeSet;

use chrono::DateTime;
use tracing::debug;
use webcare_engine::store::OutboxStatus;
use webcare_engine::store::ReceiptEvent;
use webcare_engine::{CaseError, ChannelKind};

use super::MetaWebhook;
use super::inbound::{Messaging, conversation_id};
use crate::gateway::GatewayError;

impl MetaWebhook {
    /// Keeps a delivery or read event on the replies it covers; false when `event` is neither.
    pub(super) async fn seen(
        &self,
        channel: ChannelKind,
        event: &Messaging,
    ) -> Result<bool, GatewayError> {
        let (kind, mut mids, watermark) = match (&event.delivery, &event.read) {
            (Some(d), _) => (ReceiptEvent::Delivered, d.mids.clone(), d.watermark),
            (None, Some(r)) => (
                ReceiptEvent::Read,
                r.mid.iter().cloned().collect(),
                r.watermark,
            ),
            (None, None) => return Ok(false),
        };
        let millis = |ms: i64| DateTime::from_timestamp_millis(ms).filter(|_| ms > 0);
        let at = millis(event.timestamp).unwrap_or_else(|| self.inner.gateway.now());
        let watermark = watermark.and_then(millis);
        // The user wrote to our account: the account is the recipient.
        let conversation = conversation_id(&event.recipient.id, &event.sender.id);
        mids.retain(|m| !m.is_empty());
        let named: BTreeSet<u64> = mids
            .iter()
            .filter_map(|mid| self.inner.sent.get(mid))
            .filter(|r| r.channel == channel && r.conversation == conversation)
            .map(|r| r.entry)
            .collect();
        let read = kind == ReceiptEvent::Read;
        let marked = self
            .inner
            .gateway
            .store(move |s| {
                let replies = s.conversation_outbox(channel, &conversation)?;
                let sent = |id: &u64| {
                    replies
                        .iter()
                        .find(|e| e.id == *id)
                        .and_then(|e| match e.status {
                            OutboxStatus::Sent { at } => Some(at),
                            _ => None,
                        })
                };
                // A message read means those before it were read too.
                let until = match read {
                    true => named.iter().filter_map(sent).chain(watermark).max(),
                    false => watermark,
                };
                let covered = replies.iter().filter(|e| match e.status {
                    OutboxStatus::Sent { at } => until.is_some_and(|until| at <= until),
                    _ => false,
                });
                let mut due: BTreeSet<u64> = covered.map(|e| e.id).collect();
                due.extend(&named);
                // Only what is new, so a repeated event writes nothing.
                for (id, receipt) in s.outbox_receipts(channel, &conversation)? {
                    let known = match kind {
                        ReceiptEvent::Read => receipt.read_at.is_some(),
                        _ => receipt.delivered_at.is_some(),
                    };
                    if known {
                        due.remove(&id);
                    }
                }
                let mut marked = 0;
                for id in due {
                    match s.outbox_receipt(id, kind.clone(), at) {
                        Ok(_) => marked += 1,
                        // Deleted meanwhile (retention, `forget`): nothing left to mark.
                        Err(CaseError::NoSuchOutboxEntry(_)) => {}
                        Err(error) => return Err(error),
                    }
                }
                Ok::<_, CaseError>(marked)
            })
            .await?;
        debug!(%channel, read, marked, "meta: delivery or read event kept");
        Ok(true)
    }
}
