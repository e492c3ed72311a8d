//! Reads what a report needs out of a [`Store`] without adding an index that every intake would
//! have to keep up (the write path is the hot one).
//!
//! - messages and the bot's replies: [`Store::report_scan`] over the previous period up to the
//!   end of the first-time resolution window, each message in brief with its reply's state;
//! - replies with details of their own (agents' replies) from the same scan; the audit log's
//!   `outbox.reply` entries tell which replies an agent wrote;
//! - escalations: the open ones, plus every one the audit log says was resolved (a resolved
//!   escalation is always audited), read by id.
//!
//! [`report`] streams the messages into [`Builder`](super::Builder)s, one per half of the time,
//! on two threads while a third reads the audit log (a 30-day report over a million messages is
//! one long read, and a second core halves it: see BENCHMARKS.md). [`gather`] collects the same
//! period as whole values for [`super::build`], the slow way (every message decoded in full, one
//! outbox read per conversation); the tests and the benchmark's check compare the two.
//!
//! A reply queued before the previous period began is not read, even when it went out within
//! the period: ids are message numbers, and the scan starts at the first message it reads.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{OnceLock, mpsc};

use chrono::{DateTime, Utc};
use rustc_hash::FxHashSet;

use super::{Builder, Reply, Report, ReportOptions, spike};
use crate::message::ChannelKind;
use crate::store::{
    self, CountFilter, Escalation, MessageBrief, OutboxEntry, OutboxStatus, ReportItem, Store,
    StoreError, StoredMessage,
};
use crate::teams::Teams;

/// What [`super::build`] takes, read from a store.
pub struct Gathered {
    pub messages: Vec<StoredMessage>,
    pub escalations: Vec<Escalation>,
    pub replies: Vec<Reply>,
}

/// The report on the period of `options`, read from `store` in one pass.
///
/// Three threads, because a report is one long read that a second core halves: one reads the
/// audit log and the escalations; the other two each read and count a half: the previous
/// period (only counted for trends, but it is this thread that merges and finishes), and the
/// period with the first-time resolution window after it.
pub fn report(
    store: &dyn Store,
    options: &ReportOptions,
    teams: &Teams,
    default_team: &str,
) -> Result<Report, StoreError> {
    let (from, to) = (options.previous_since(), options.read_until());
    let mid = options.since.clamp(from, to.max(from));
    let cell: OnceLock<Result<Audited, StoreError>> = OnceLock::new();
    let audit = &cell;
    // Reads the audit log, or waits for the thread that does.
    let read = move || audit.get_or_init(|| audited(store)).as_ref();
    let halves = std::thread::scope(|scope| {
        scope.spawn(read);
        // The halves swap their replies with details of their own, so that both see all of
        // them, as one scan would.
        let (to_second, from_first) = mpsc::channel();
        let (to_first, from_second) = mpsc::channel();
        let later = scope.spawn(move || {
            let swap = (to_first, from_first);
            half(store, options, teams, default_team, (mid, to), read, swap)
        });
        let swap = (to_second, from_second);
        let first = half(store, options, teams, default_team, (from, mid), read, swap);
        let second = match later.join() {
            Ok(second) => second,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        Ok::<_, StoreError>((first?, second?))
    });
    let report = halves.and_then(|((mut builder, mut early), (second, early_second))| {
        let (agent_replies, _) = read().map_err(|_| audit_failed())?;
        builder.merge(second);
        // Human replies with details of their own, once each.
        early.extend(early_second);
        let mut seen = FxHashSet::default();
        for entry in early.iter().filter(|e| seen.insert(e.id)) {
            let reply = Reply::from_outbox(entry, agent_replies.contains(&entry.id));
            if reply.human && !reply.dead {
                builder.human_reply(reply.channel, &reply.conversation, reply.at);
            }
        }
        let mut report = builder.finish();
        // In the order of the history (receipt, then intake), as `gather` lists the messages.
        report.unanswered.sort_by_key(|u| u.received_at);
        Ok(report)
    });
    match (report, cell.into_inner()) {
        // The audit log's own error rather than the halves' word that it failed.
        (Err(_), Some(Err(e))) => Err(e),
        (report, _) => report,
    }
}

fn audit_failed() -> StoreError {
    StoreError::Backend {
        path: Default::default(),
        reason: "the audit log could not be read".into(),
    }
}

/// Where a half's replies with details of their own go to, and the other half's come from.
type Swap = (
    mpsc::Sender<Vec<OutboxEntry>>,
    mpsc::Receiver<Vec<OutboxEntry>>,
);

/// Counts the messages received from `from` to `to` into a builder of their own; returns it
/// with the replies with details of their own that the scan handed over.
fn half<'a>(
    store: &dyn Store,
    options: &'a ReportOptions,
    teams: &'a Teams,
    default_team: &str,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
    read: impl Fn() -> Result<&'a Audited, &'a StoreError>,
    swap: Swap,
) -> Result<(Builder<'a>, Vec<OutboxEntry>), StoreError> {
    let mut swap = Some(swap);
    let mut early: Vec<OutboxEntry> = Vec::new();
    let mut state: Option<Streaming<'a>> = None;
    let mut failed = None;
    // Before the first message: what the audit log says, and every reply with details.
    let mut start = |early: &[OutboxEntry]| -> Result<Streaming<'a>, StoreError> {
        let mut others = Vec::new();
        if let Some((tx, rx)) = swap.take() {
            // Send first, then wait: neither half waits for one that waits. A half that failed
            // has dropped its sender, and the report fails with it.
            let _ = tx.send(early.to_vec());
            others = rx.recv().unwrap_or_default();
        }
        let (agent_replies, escalations) = read().map_err(|_| audit_failed())?;
        let mut s = Streaming {
            agent_replies,
            builder: Builder::new(options, teams, default_team, escalations),
            detached: HashMap::new(),
        };
        for entry in early.iter().chain(&others) {
            s.reply(entry);
        }
        Ok(s)
    };
    // Only the period's messages need their replies: the previous period counts topics, and a
    // store that counts faster than it hands messages over counts them itself.
    let with_replies = to > options.since;
    if !with_replies {
        let filter = CountFilter {
            channel: options.channel,
            team: options.team.as_deref(),
            except_author: spike::ALERT_AUTHOR,
        };
        let mut replies = |item: ReportItem<'_>| {
            if let ReportItem::Reply(entry) = item {
                early.push(entry);
            }
        };
        if let Some(counted) = store.report_count(from, to, &filter, &mut replies)? {
            let mut s = start(&early)?;
            s.builder.counted(counted);
            return Ok((s.builder, early));
        }
    }
    store.report_scan(from, to, with_replies, &mut |item| match item {
        ReportItem::Reply(entry) => early.push(entry),
        ReportItem::Message(m) => {
            if state.is_none() && failed.is_none() {
                match start(&early) {
                    Ok(s) => state = Some(s),
                    Err(e) => failed = Some(e),
                }
            }
            if let Some(s) = &mut state {
                s.message(&m);
            }
        }
    })?;
    if let Some(e) = failed {
        return Err(e);
    }
    let s = match state {
        Some(s) => s,
        None => start(&early)?,
    };
    Ok((s.builder, early))
}

/// The ids of the replies agents wrote, and the escalations a report may need.
type Audited = (FxHashSet<u64>, Vec<Escalation>);

/// A part of a report taking in what [`Store::report_scan`] hands over.
struct Streaming<'a> {
    agent_replies: &'a FxHashSet<u64>,
    builder: Builder<'a>,
    /// Bot replies with details of their own (their message was deleted), by what they answer.
    detached: HashMap<(ChannelKind, String), DateTime<Utc>>,
}

impl Streaming<'_> {
    /// A reply with details of its own: a bot's is matched to its message here, an agent's is
    /// counted once for the whole report (see [`report`]).
    fn reply(&mut self, entry: &OutboxEntry) {
        let reply = Reply::from_outbox(entry, self.agent_replies.contains(&entry.id));
        if !reply.dead && !reply.human {
            self.detached
                .insert((reply.channel, reply.in_reply_to), reply.at);
        }
    }

    fn message(&mut self, m: &MessageBrief<'_>) {
        let at = match m.reply {
            None | Some(OutboxStatus::Dead) => None,
            Some(OutboxStatus::Sent { at }) => Some(at),
            Some(OutboxStatus::Pending) => Some(m.stored_at),
        };
        let mut bot = None;
        if let Some(at) = at {
            if self.agent_replies.contains(&m.seq) {
                self.builder.human_reply(m.channel, m.conversation, at);
            } else {
                bot = Some(at);
            }
        }
        if bot.is_none() && !self.detached.is_empty() {
            bot = self.detached.get(&(m.channel, m.id.to_owned())).copied();
        }
        self.builder.message(m, bot);
    }
}

/// The ids of the replies agents wrote, and the escalations a report may need: the open ones
/// and the resolved ones still stored.
fn audited(store: &dyn Store) -> Result<Audited, StoreError> {
    // One pass over the audit log: agent replies and resolved escalations.
    let mut agent_replies = FxHashSet::default();
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
                // An agent's reply: written into a conversation, or from the inbox on an escalation.
                "outbox.reply" | "escalation.reply" => {
                    agent_replies.extend(number(&entry.details, "outbox "))
                }
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
