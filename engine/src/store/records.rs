//! The records the [`Store`](super::Store) hands out and takes in: a stored message with its
//! decision, its brief for reports, a conversation, an escalation, an outbox entry, audit
//! entries and what intake, `forget` and retention report back. Plain data, the same for every
//! backend; how they are laid out on disk is each backend's business.

use std::collections::BTreeSet;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::HistoryCursor;
use crate::case::outbox::OutboxStatus;
use crate::case::{CaseInput, CaseState, ConversationFacts, ConversationState, EscalationStatus};
use crate::decision::{Action, Category, Decision, Priority, SentimentLabel};
use crate::message::{ChannelKind, Inbound};
use crate::mode::Mode;

/// A message as stored, with the decision it got.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredMessage {
    /// Intake order, unique for the store's lifetime.
    pub seq: u64,
    /// As stored: redacted when redaction is on.
    pub message: Inbound,
    pub decision: Decision,
    /// The conversation facts the decision saw.
    pub facts: ConversationFacts,
    /// When webcare stored it.
    pub stored_at: DateTime<Utc>,
    /// The channel's mode when it was taken in: whether the decision was acted on.
    pub mode: Mode,
    /// The decision of the shadow (candidate) rulebook that ran beside the live one, if any;
    /// never acted on.
    pub shadow: Option<Decision>,
}

impl StoredMessage {
    pub fn cursor(&self) -> HistoryCursor {
        HistoryCursor {
            received_at: self.message.received_at,
            seq: self.seq,
        }
    }
}

/// What [`Store::report_scan`] hands over, in this order: first every [`ReportItem::Reply`],
/// then the messages in intake order.
#[derive(Debug, Clone, PartialEq)]
pub enum ReportItem<'a> {
    /// A reply with details of its own, which no stored message leads to.
    Reply(OutboxEntry),
    Message(MessageBrief<'a>),
}

/// Which messages [`Store::report_count`] counts: those of `channel` and of `team` (when
/// given), except those written by `except_author` (the early warning's alerts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CountFilter<'a> {
    pub channel: Option<ChannelKind>,
    pub team: Option<&'a str>,
    pub except_author: &'a str,
}

/// What [`Store::report_count`] counted: the messages, and how often each topic was found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counted {
    pub messages: u64,
    pub topics: Vec<(String, u64)>,
}

/// What a decision did, without its words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActionKind {
    Answer,
    Escalate,
    Log,
}

impl ActionKind {
    pub fn of(action: &Action) -> Self {
        match action {
            Action::Answer { .. } => ActionKind::Answer,
            Action::Escalate { .. } => ActionKind::Escalate,
            Action::Log => ActionKind::Log,
        }
    }

    /// As [`Action::name`].
    pub fn name(self) -> &'static str {
        match self {
            ActionKind::Answer => "answer",
            ActionKind::Escalate => "escalate",
            ActionKind::Log => "log",
        }
    }
}

/// A few strings, kept without an allocation while there are at most four: a message's topics,
/// read a million times for a report.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Few<'a> {
    len: usize,
    inline: [&'a str; 4],
    more: Vec<&'a str>,
}

impl<'a> Few<'a> {
    pub fn push(&mut self, s: &'a str) {
        match self.inline.get_mut(self.len) {
            Some(slot) => *slot = s,
            None => self.more.push(s),
        }
        self.len += 1;
    }

    pub fn iter(&self) -> impl Iterator<Item = &'a str> + '_ {
        self.inline.iter().take(self.len).chain(&self.more).copied()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl<'a> FromIterator<&'a str> for Few<'a> {
    fn from_iter<I: IntoIterator<Item = &'a str>>(items: I) -> Self {
        let mut few = Few::default();
        for s in items {
            few.push(s);
        }
        few
    }
}

/// A stored message as a report reads it: no text, facts, rules or reasons, and its strings
/// borrowed from the stored record, so reading a million of them allocates next to nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageBrief<'a> {
    pub seq: u64,
    pub channel: ChannelKind,
    pub id: &'a str,
    pub conversation: &'a str,
    pub author: &'a str,
    pub received_at: DateTime<Utc>,
    pub stored_at: DateTime<Utc>,
    pub action: ActionKind,
    /// As [`Action::team`]: set for an escalation only.
    pub team: Option<&'a str>,
    pub category: Category,
    pub topics: Few<'a>,
    pub sentiment: SentimentLabel,
    pub rulebook: &'a str,
    /// The channel's mode when it was taken in: whether the decision was acted on.
    pub mode: Mode,
    /// The status of its reply (the outbox entry with the message's number; queued at
    /// `stored_at`), unless that entry has details of its own.
    pub reply: Option<OutboxStatus>,
}

impl<'a> MessageBrief<'a> {
    /// The brief of a whole stored message, without a reply.
    pub fn of(stored: &'a StoredMessage) -> Self {
        let m = &stored.message;
        let d = &stored.decision;
        MessageBrief {
            seq: stored.seq,
            channel: m.channel,
            id: &m.id,
            conversation: &m.conversation,
            author: &m.author,
            received_at: m.received_at,
            stored_at: stored.stored_at,
            action: ActionKind::of(&d.action),
            team: d.action.team(),
            category: d.diagnostics.category,
            topics: d.topic_ids().collect(),
            sentiment: d.diagnostics.sentiment.label,
            rulebook: &d.diagnostics.rulebook,
            mode: stored.mode,
            reply: None,
        }
    }
}

/// What [`Store::intake_lookup`] found.
#[derive(Debug, Clone, PartialEq)]
pub enum IntakeLookup {
    /// Delivered before: this is the stored message with its first decision.
    Duplicate(Box<StoredMessage>),
    /// New: the facts of its conversation.
    New(ConversationFacts),
    /// Delivered before and erased by `forget` since: it must not come back.
    Erased,
}

/// The tombstone `forget` leaves for one erased delivery: its [`erased_digest`] and when.
pub type Tombstone = ([u8; 32], DateTime<Utc>);

/// What a tombstone of an erased delivery is keyed by: SHA-256 of `channel:id`. The platform id
/// itself is not kept, so the tombstone says nothing of the message beyond "was erased".
pub fn erased_digest(channel: ChannelKind, id: &str) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    Sha256::digest(format!("{}:{id}", channel.as_str()).as_bytes()).into()
}

/// What [`Store::record_intake`] writes.
#[derive(Debug, Clone)]
pub struct IntakeRecord {
    pub message: Inbound,
    pub decision: Decision,
    /// The conversation facts the decision was made with; stored so a replay can give another
    /// rulebook the same situation.
    pub facts: ConversationFacts,
    /// The local date of `message.received_at` in the rulebook's time zone, for "today".
    pub today: NaiveDate,
    /// When an escalation this creates must be answered.
    pub sla_deadline: Option<DateTime<Utc>>,
    pub now: DateTime<Utc>,
    /// The channel's mode: `live` writes every effect; `shadow` writes no outbox entry;
    /// `listen` writes neither outbox entry nor escalation (see [`crate::mode`]).
    pub mode: Mode,
    /// The shadow rulebook's decision, stored beside the live one, without any effect.
    pub shadow: Option<Decision>,
    /// The reply goes out in the answer to the delivery itself (the HTTP channel without a
    /// callback): it is written as sent in this transaction, so nothing can send it again.
    pub reply_inline: bool,
    /// What the case rules need besides the decision: the reopen period, next-response
    /// deadlines, a satisfaction score.
    pub case: CaseInput,
}

/// What [`Store::record_intake`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct IntakeReceipt {
    pub seq: u64,
    /// The decision as stored: for a duplicate, the first delivery's decision.
    pub decision: Decision,
    pub duplicate: bool,
    /// The escalation the message created or joined.
    pub escalation: Option<u64>,
    /// The reply waiting to be sent.
    pub outbox: Option<u64>,
    /// The mode the message was taken in (for a duplicate: the first delivery's).
    pub mode: Mode,
}

impl IntakeReceipt {
    /// The answer to a delivery of a message `forget` erased: acknowledged (so the bridge stops
    /// delivering it), logged, nothing stored, decided or sent. No rulebook decided it, and
    /// its text was not read, so the language is a placeholder.
    pub fn erased(message_id: &str) -> Self {
        use crate::decision::{Diagnostics, Language, Sentiment};
        IntakeReceipt {
            seq: 0,
            decision: Decision {
                message_id: message_id.to_owned(),
                action: Action::Log,
                diagnostics: Diagnostics {
                    category: Category::Unknown,
                    topics: Vec::new(),
                    rules: vec!["engine:erased".into()],
                    script_errors: Vec::new(),
                    sentiment: Sentiment {
                        label: SentimentLabel::Neutral,
                        score: 0,
                    },
                    language: Language::Nl,
                    rulebook: String::new(),
                    reasons: vec![
                        "this message was erased with `webcare forget`; a repeated delivery is not stored or decided again".into(),
                    ],
                },
            },
            duplicate: true,
            escalation: None,
            outbox: None,
            mode: Mode::default(),
        }
    }

    /// The answer to a delivery stored before: its first decision and mode, nothing new.
    pub fn duplicate_of(first: StoredMessage) -> Self {
        IntakeReceipt {
            seq: first.seq,
            decision: first.decision,
            duplicate: true,
            escalation: None,
            outbox: None,
            mode: first.mode,
        }
    }
}

/// One conversation (chat, DM, widget session, thread) on one channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conversation {
    pub channel: ChannelKind,
    pub id: String,
    /// Authors who wrote in it.
    pub participants: BTreeSet<String>,
    pub state: ConversationState,
    pub started_at: DateTime<Utc>,
    pub last_activity: DateTime<Utc>,
    pub messages: u64,
    /// The local date `messages_today` counts.
    pub today: NaiveDate,
    pub messages_today: i64,
    /// Automatic replies (answers and holding replies) sent into it.
    pub auto_replies: i64,
    /// When its complaints arrived, the last seven days only.
    pub recent_complaints: Vec<DateTime<Utc>>,
    /// The escalation that is open or claimed, which a handed-off conversation's messages
    /// follow (a message for another team goes to that team's own escalation).
    pub open_escalation: Option<u64>,
    /// A satisfaction question waits for the customer's next message.
    #[serde(default)]
    pub awaiting_score: bool,
}

impl Conversation {
    /// The facts a decision at `at` (local date `today`) may read.
    pub fn facts(&self, at: DateTime<Utc>, today: NaiveDate) -> ConversationFacts {
        crate::case::Tally {
            last_activity: self.last_activity,
            messages: self.messages,
            today: self.today,
            messages_today: self.messages_today,
            auto_replies: self.auto_replies,
            recent_complaints: self.recent_complaints.clone(),
        }
        .facts(self.state, at, today)
        .awaiting(self.awaiting_score)
    }
}

/// One change in an escalation's life.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EscalationEvent {
    pub at: DateTime<Utc>,
    /// `engine` for what intake did, the agent otherwise.
    pub actor: String,
    /// Plain words: `opened for `kcc`, priority high`, `claimed`, `message `m-9` added`.
    pub change: String,
}

/// Work for a human team, with everything needed to pick it up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Escalation {
    pub id: u64,
    pub channel: ChannelKind,
    pub conversation: String,
    pub team: String,
    /// The highest priority of the messages in it.
    pub priority: Priority,
    /// Why, from the decision that opened it.
    pub reason: String,
    pub status: EscalationStatus,
    pub created_at: DateTime<Utc>,
    pub sla_deadline: Option<DateTime<Utc>>,
    /// The platform ids of the messages it covers, in order.
    pub messages: Vec<String>,
    pub history: Vec<EscalationEvent>,
    /// Waiting on us, the first-response SLA, the customer, satisfaction (see
    /// [`crate::case::state`]).
    #[serde(default)]
    pub case: CaseState,
}

impl Escalation {
    /// The first-response SLA at `now`, as the inbox shows it and the report counts it.
    pub fn sla(&self, now: DateTime<Utc>) -> crate::case::SlaOutcome {
        self.case.sla(self.sla_deadline, now)
    }
}

/// A reply waiting to be sent (or sent). It exists so a reply survives a restart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxEntry {
    pub id: u64,
    pub channel: ChannelKind,
    pub conversation: String,
    /// The platform id of the message this answers.
    pub in_reply_to: String,
    pub text: String,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub status: OutboxStatus,
    pub created_at: DateTime<Utc>,
    pub next_attempt_at: DateTime<Utc>,
}

/// What [`Store::outbox_dead_letter`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    pub entry: OutboxEntry,
    pub escalation: Escalation,
}

/// A reply written by a person, for [`Store::queue_reply`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewReply {
    pub channel: ChannelKind,
    pub conversation: String,
    /// The platform id of the message it answers.
    pub in_reply_to: String,
    pub text: String,
    /// Who wrote it, for the audit log.
    pub actor: String,
    pub now: DateTime<Utc>,
}

/// An audit entry to append. `details` must never hold customer content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAudit {
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub details: String,
}

/// An audit entry, as every backend writes one.
pub(crate) fn audit(
    actor: &str,
    action: &str,
    subject: String,
    details: String,
    at: DateTime<Utc>,
) -> NewAudit {
    NewAudit {
        at,
        actor: actor.to_owned(),
        action: action.to_owned(),
        subject,
        details,
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub id: u64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub details: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ForgetReport {
    pub messages: u64,
    pub conversations: u64,
    pub escalations: u64,
    pub outbox: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PurgeReport {
    pub messages: u64,
    pub conversations: u64,
    pub escalations: u64,
    pub outbox: u64,
}

/// A stored rulebook version and every time it was put in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RulebookVersion {
    pub version: String,
    /// Oldest first.
    pub activations: Vec<Activation>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Activation {
    pub at: DateTime<Utc>,
    /// Who put it in force: a person, or the command (`ingest`, `run`).
    pub by: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    pub messages: u64,
    pub open_escalations: u64,
    pub pending_outbox: u64,
    pub size_on_disk: u64,
}
