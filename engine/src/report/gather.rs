//! Reads what a report needs out of a [`Store`] without adding an index that every intake would
//! have to keep up (the write path is the hot one).
//!
//! - messages and the bot's replies: [`Store::report_scan`] over the previous period up to the
//!   end of the first-time resolution window, one pass in intake order, each message in brief
//!   with its reply's state;
//! - replies with details of their own (agents' replies) from the same pass; the audit log's
//!   `outbox.reply` entries tell which replies an agent wrote;
//! - escalations: the open ones, plus every one the audit log says was resolved (a resolved
//!   escalation is always audited), read by id.
//!
//! [`report`] streams the messages into a [`Builder`](super::Builder); [`gather`] collects the
//! same period as whole values for [`super::build`] (slower: it reads every message in full and
//! every conversation's outbox).

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};

use super::{Builder, Reply, Report, ReportOptions};
use crate::message::ChannelKind;
use crate::store::{self, Escalation, OutboxStatus, ReportItem, Store, StoreError, StoredMessage};
use crate::teams::Teams;

/// What [`super::build`] takes, read from a store.
pub struct Gathered {
    pub messages: Vec<StoredMessage>,
    pub escalations: Vec<Escalation>,
    pub replies: Vec<Reply>,
}

/// The report on the period of `options`, read from `store` in one pass.
pub fn report(
    store: &dyn Store,
    options: &ReportOptions,
    teams: &Teams,
    default_team: &str,
) -> Result<Report, StoreError> {
    let (agent_replies, escalations) = audited(store)?;
    let mut builder = Builder::new(options, teams, default_team, &escalations);
    // Bot replies with details of their own (their message was deleted), by what they answer.
    let mut detached: HashMap<(ChannelKind, String), DateTime<Utc>> = HashMap::new();
    store.report_scan(
        options.previous_since(),
        options.read_until(),
        &mut |item| match item {
            ReportItem::Reply(entry) => {
                let reply = Reply::from_outbox(&entry, agent_replies.contains(&entry.id));
                if reply.dead {
                    return;
                }
                if reply.human {
                    builder.human_reply(reply.channel, &reply.conversation, reply.at);
                } else {
                    detached.insert((reply.channel, reply.in_reply_to), reply.at);
                }
            }
            ReportItem::Message(m) => {
                let at = match m.reply {
                    None | Some(OutboxStatus::Dead) => None,
                    Some(OutboxStatus::Sent { at }) => Some(at),
                    Some(OutboxStatus::Pending) => Some(m.stored_at),
                };
                let mut bot = None;
                if let Some(at) = at {
                    if agent_replies.contains(&m.seq) {
                        builder.human_reply(m.channel, m.conversation, at);
                    } else {
                        bot = Some(at);
                    }
                }
                if bot.is_none() && !detached.is_empty() {
                    bot = detached.get(&(m.channel, m.id.to_owned())).copied();
                }
                builder.message(&m, bot);
            }
        },
    )?;
    let mut report = builder.finish();
    // In the order of the history (receipt, then intake), as `gather` lists the messages.
    report.unanswered.sort_by_key(|u| u.received_at);
    Ok(report)
}

/// The ids of the replies agents wrote, and the escalations a report may need: the open ones
/// and the resolved ones still stored.
fn audited(store: &dyn Store) -> Result<(HashSet<u64>, Vec<Escalation>), StoreError> {
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
    Ok((agent_replies, escalations))
}

/// Reads the period of `options` with what surrounds it, as whole values.
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
    let (agent_replies, escalations) = audited(store)?;

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
