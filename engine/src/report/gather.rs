//! Reads what a report needs out of a [`Store`] with the trait's existing read methods only, so
//! reporting adds no index to keep up on every intake (the write path is the hot one).
//!
//! - messages: [`store::history`] from the previous period to the end of the first-time
//!   resolution window;
//! - escalations: the open ones, plus every one the audit log says was resolved (a resolved
//!   escalation is always audited), read by id;
//! - replies: each conversation's outbox; the audit log's `outbox.reply` entries tell which
//!   replies an agent wrote.

use std::collections::{BTreeSet, HashSet};

use super::{Reply, ReportOptions};
use crate::message::ChannelKind;
use crate::store::{self, Escalation, Store, StoreError, StoredMessage};

/// What [`super::build`] takes, read from a store.
pub struct Gathered {
    pub messages: Vec<StoredMessage>,
    pub escalations: Vec<Escalation>,
    pub replies: Vec<Reply>,
}

/// Reads the period of `options` with what surrounds it.
pub fn gather(store: &dyn Store, options: &ReportOptions) -> Result<Gathered, StoreError> {
    let from = options.previous_since();
    let to = options.read_until();
    let mut messages = Vec::new();
    for stored in store::history(store, Some(from)) {
        let stored = stored?;
        if stored.message.received_at >= to {
            break;
        }
        messages.push(stored);
    }

    // One pass over the audit log: agent replies and resolved escalations.
    let mut agent_replies: HashSet<u64> = HashSet::new();
    let mut resolved: BTreeSet<u64> = BTreeSet::new();
    let mut after = None;
    loop {
        let page = store.audit_log(after, 1024)?;
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        for entry in &page {
            let number = |text: &str, prefix: &str| {
                text.strip_prefix(prefix)
                    .and_then(|n| n.trim().parse::<u64>().ok())
            };
            match entry.action.as_str() {
                "outbox.reply" => agent_replies.extend(number(&entry.details, "outbox ")),
                "escalation.resolve" => resolved.extend(number(&entry.subject, "escalation ")),
                _ => {}
            }
        }
    }

    let mut escalations = store.open_escalations()?;
    let open: HashSet<u64> = escalations.iter().map(|e| e.id).collect();
    for id in resolved.into_iter().filter(|id| !open.contains(id)) {
        // Gone when retention or `forget` removed it since.
        if let Some(esc) = store.escalation(id)? {
            escalations.push(esc);
        }
    }

    let in_period = |m: &StoredMessage| {
        m.message.received_at >= options.since && m.message.received_at < options.until
    };
    let conversations: HashSet<(ChannelKind, &str)> = messages
        .iter()
        .filter(|m| in_period(m))
        .map(|m| (m.message.channel, m.message.conversation.as_str()))
        .collect();
    let mut replies = Vec::new();
    for (channel, conversation) in conversations {
        for entry in store.conversation_outbox(channel, conversation)? {
            let human = agent_replies.contains(&entry.id);
            replies.push(Reply::from_outbox(&entry, human));
        }
    }
    Ok(Gathered {
        messages,
        escalations,
        replies,
    })
}
