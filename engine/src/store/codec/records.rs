//! The records of conversations, escalations, outbox entries and rulebook versions, each
//! only what changes, with times as microseconds and codes for the closed enums.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::*;
use crate::case::outbox::Delivery;
use crate::case::{CaseState, ConversationFacts, ConversationState, Tally, history};
use crate::message::ChannelKind;
use crate::store::{
    Conversation, Escalation, EscalationEvent, EscalationStatus, OutboxEntry, OutboxStatus,
    StoreError,
};

// --- conversations ---------------------------------------------------------------------------

/// A conversation on disk; channel and id are in its key.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ConvRec {
    /// A number for the conversation, so its message index holds 8 bytes instead of the
    /// channel and id string with every message.
    pub number: u64,
    /// Sorted, distinct.
    pub participants: Vec<String>,
    /// 0 bot, 1 human, 2 closed; plus [`AWAITING_SCORE`] while a satisfaction question waits
    /// (a flag in a byte every intake reads anyway, so the common message pays no extra read).
    pub state: u8,
    pub started_at: i64,
    pub last_activity: i64,
    pub messages: u64,
    /// Days since 0001-01-01 (`NaiveDate::num_days_from_ce`).
    pub today: i32,
    pub messages_today: i64,
    pub auto_replies: i64,
    pub recent_complaints: Vec<i64>,
    pub open_escalation: Option<u64>,
    /// The numbers of its newest messages, at most [`RECENT`]; older ones are in blocks.
    pub recent: Vec<u64>,
    /// Every escalation of the conversation, so deleting it finds them without an index.
    pub escalations: Vec<u64>,
    /// Outbox entries no stored message leads to: agent replies, and replies whose message was
    /// deleted.
    pub replies: Vec<u64>,
    /// The channel's code and the platform's id, which the record's key (its number) does not
    /// hold: for whatever lists conversations. Last, so a format-4 record becomes one by
    /// appending them.
    pub channel: u8,
    pub conversation: String,
}

pub fn state_code(state: ConversationState) -> u8 {
    match state {
        ConversationState::Bot => 0,
        ConversationState::Human => 1,
        ConversationState::Closed => 2,
    }
}

/// The flag in [`ConvRec::state`] that a satisfaction question waits for the next message.
pub const AWAITING_SCORE: u8 = 0x80;

pub fn state_from(code: u8) -> ConversationState {
    match code & !AWAITING_SCORE {
        1 => ConversationState::Human,
        2 => ConversationState::Closed,
        _ => ConversationState::Bot,
    }
}

pub fn day_code(date: NaiveDate) -> i32 {
    chrono::Datelike::num_days_from_ce(&date)
}

impl ConvRec {
    /// Who owns it.
    pub fn owner(&self) -> ConversationState {
        state_from(self.state)
    }

    /// Sets who owns it, keeping the satisfaction flag.
    pub fn set_owner(&mut self, state: ConversationState) {
        self.state = state_code(state) | (self.state & AWAITING_SCORE);
    }

    pub fn awaiting_score(&self) -> bool {
        self.state & AWAITING_SCORE != 0
    }

    pub fn set_awaiting_score(&mut self, awaiting: bool) {
        self.state = if awaiting {
            self.state | AWAITING_SCORE
        } else {
            self.state & !AWAITING_SCORE
        };
    }

    pub fn to_public(
        &self,
        channel: ChannelKind,
        id: &str,
        corrupt: impl Fn(CodecError) -> StoreError,
    ) -> Result<Conversation, StoreError> {
        Ok(Conversation {
            channel,
            id: id.to_owned(),
            participants: self.participants.iter().cloned().collect(),
            state: state_from(self.state),
            started_at: from_micros(self.started_at).map_err(&corrupt)?,
            last_activity: from_micros(self.last_activity).map_err(&corrupt)?,
            messages: self.messages,
            today: NaiveDate::from_num_days_from_ce_opt(self.today).ok_or_else(|| {
                corrupt(CodecError::malformed(format!(
                    "day {} out of range",
                    self.today
                )))
            })?,
            messages_today: self.messages_today,
            auto_replies: self.auto_replies,
            recent_complaints: self
                .recent_complaints
                .iter()
                .map(|t| from_micros(*t).map_err(&corrupt))
                .collect::<Result<_, _>>()?,
            open_escalation: self.open_escalation,
            awaiting_score: self.awaiting_score(),
        })
    }

    /// Adds `author`; true when they are new here.
    pub fn join(&mut self, author: &str) -> bool {
        match self
            .participants
            .binary_search_by(|p| p.as_str().cmp(author))
        {
            Ok(_) => false,
            Err(at) => {
                self.participants.insert(at, author.to_owned());
                true
            }
        }
    }

    /// The counters the case rules keep. Times that do not fit read as the epoch: a record
    /// written by this code always fits.
    pub fn tally(&self) -> Tally {
        let time = |t: i64| from_micros(t).unwrap_or_default();
        Tally {
            last_activity: time(self.last_activity),
            messages: self.messages,
            today: NaiveDate::from_num_days_from_ce_opt(self.today).unwrap_or_default(),
            messages_today: self.messages_today,
            auto_replies: self.auto_replies,
            recent_complaints: self.recent_complaints.iter().map(|t| time(*t)).collect(),
        }
    }

    pub fn set_tally(&mut self, tally: Tally) {
        self.last_activity = micros(tally.last_activity);
        self.messages = tally.messages;
        self.today = day_code(tally.today);
        self.messages_today = tally.messages_today;
        self.auto_replies = tally.auto_replies;
        self.recent_complaints = tally.recent_complaints.iter().map(|t| micros(*t)).collect();
    }

    /// Counts a message received at `received` (local date `today`) and, when its reply was
    /// queued, that reply: what every stored message does to its conversation's counters.
    pub fn count(
        &mut self,
        received: DateTime<Utc>,
        today: NaiveDate,
        category: Category,
        replied: bool,
    ) {
        let mut tally = self.tally();
        tally.count(received, today, category);
        if replied {
            tally.replied();
        }
        self.set_tally(tally);
    }

    /// The record with only what its facts are made of: a batch carries it from one message
    /// of the conversation to the next (see `embedded::intake`).
    pub fn facts_only(&self) -> ConvRec {
        let mut only = ConvRec {
            state: self.state,
            ..ConvRec::default()
        };
        only.set_tally(self.tally());
        only
    }

    /// The facts a decision at `at` (local date `today`) may read.
    pub fn facts(&self, at: DateTime<Utc>, today: NaiveDate) -> ConversationFacts {
        self.tally()
            .facts(state_from(self.state), at, today)
            .awaiting(self.awaiting_score())
    }
}

// --- escalations -----------------------------------------------------------------------------

/// An escalation on disk. The history of a busy escalation is mostly "message added" events;
/// they are kept as [`JoinRec`]s (a few bytes) and their words are made when it is read, so an
/// escalation that collects many messages stays small and cheap to rewrite.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EscRec {
    pub channel: u8,
    pub conversation: String,
    pub team: Text,
    pub priority: u8,
    pub reason: Text,
    /// 0 open, 1 claimed, 2 resolved (by `by`).
    pub status: u8,
    pub by: Option<String>,
    pub created_at: i64,
    pub sla_deadline: Option<i64>,
    /// Platform ids of its messages; `messages[i + 1]` joined as `joins[i]`.
    pub messages: Vec<String>,
    pub joins: Vec<JoinRec>,
    /// Every other event, each placed after the first `joins_before` joins.
    pub events: Vec<EventRec>,
    /// Last, so a format-2 record is this record without it (see `embedded::upgrade`).
    pub case: CaseRec,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JoinRec {
    /// Microseconds after `created_at`.
    pub after: i64,
    /// The priority it raised the escalation from and to.
    pub raised: Option<(u8, u8)>,
    /// The other team the message was meant for.
    pub team: Option<Text>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventRec {
    pub joins_before: u32,
    pub at: i64,
    pub actor: String,
    pub change: String,
}

pub const ESC_OPEN: u8 = 0;
pub const ESC_CLAIMED: u8 = 1;
pub const ESC_RESOLVED: u8 = 2;

impl EscRec {
    pub fn is_open(&self) -> bool {
        self.status != ESC_RESOLVED
    }

    pub fn status(&self) -> Result<EscalationStatus, CodecError> {
        match (self.status, &self.by) {
            (ESC_OPEN, _) => Ok(EscalationStatus::Open),
            (ESC_CLAIMED, Some(by)) => Ok(EscalationStatus::Claimed { by: by.clone() }),
            (ESC_RESOLVED, Some(by)) => Ok(EscalationStatus::Resolved { by: by.clone() }),
            (code, _) => Err(CodecError::malformed(format!(
                "bad escalation status {code}"
            ))),
        }
    }

    pub fn set_status(&mut self, status: EscalationStatus) {
        (self.status, self.by) = match status {
            EscalationStatus::Open => (ESC_OPEN, None),
            EscalationStatus::Claimed { by } => (ESC_CLAIMED, Some(by)),
            EscalationStatus::Resolved { by } => (ESC_RESOLVED, Some(by)),
        };
    }

    pub fn set_case(&mut self, case: &CaseState) {
        self.case = CaseRec::of(case);
    }

    pub fn event(&mut self, at: DateTime<Utc>, actor: &str, change: String) {
        self.events.push(EventRec {
            joins_before: self.joins.len() as u32,
            at: micros(at),
            actor: actor.to_owned(),
            change,
        });
    }

    pub fn decode(
        &self,
        id: u64,
        symbols: &mut impl Resolve,
        corrupt: impl Fn(CodecError) -> StoreError,
    ) -> Result<Escalation, StoreError> {
        let channel = channel_from(self.channel).map_err(&corrupt)?;
        let status = self.status().map_err(&corrupt)?;
        let mut history = Vec::with_capacity(self.events.len() + self.joins.len());
        let mut joins = self.joins.iter().enumerate().peekable();
        let mut join_event = |i: usize, join: &JoinRec| -> Result<EscalationEvent, StoreError> {
            let id = self.messages.get(i + 1).map(String::as_str).unwrap_or("");
            let raised = match join.raised {
                Some((from, to)) => Some((
                    priority_from(from).map_err(&corrupt)?,
                    priority_from(to).map_err(&corrupt)?,
                )),
                None => None,
            };
            let team = match &join.team {
                Some(team) => Some(text(team, symbols)?),
                None => None,
            };
            let change = history::joined(id, raised, team.as_deref());
            Ok(EscalationEvent {
                at: from_micros(self.created_at.saturating_add(join.after)).map_err(&corrupt)?,
                actor: history::ENGINE.into(),
                change,
            })
        };
        for event in &self.events {
            while let Some((i, join)) = joins.next_if(|(i, _)| *i < event.joins_before as usize) {
                history.push(join_event(i, join)?);
            }
            history.push(EscalationEvent {
                at: from_micros(event.at).map_err(&corrupt)?,
                actor: event.actor.clone(),
                change: event.change.clone(),
            });
        }
        for (i, join) in joins {
            history.push(join_event(i, join)?);
        }
        Ok(Escalation {
            id,
            channel,
            conversation: self.conversation.clone(),
            team: text(&self.team, symbols)?,
            priority: priority_from(self.priority).map_err(&corrupt)?,
            reason: text(&self.reason, symbols)?,
            status,
            created_at: from_micros(self.created_at).map_err(&corrupt)?,
            sla_deadline: self
                .sla_deadline
                .map(|t| from_micros(t).map_err(&corrupt))
                .transpose()?,
            messages: self.messages.clone(),
            history,
            case: self.case.decode().map_err(&corrupt)?,
        })
    }
}

// --- outbox ----------------------------------------------------------------------------------

/// An outbox entry on disk. The reply to a stored message has that message's sequence number
/// as its id and takes its conversation, `in_reply_to`, text and creation time from the
/// message, so a fresh entry is a few bytes; only what changes (attempts, errors, times) is
/// here. An entry no message leads to (an agent's reply, or a reply whose message was deleted)
/// carries its own [`OutboxDetail`].
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct OutboxRec {
    pub channel: u8,
    /// 0 pending, 1 sent, 2 dead.
    pub status: u8,
    pub attempts: u32,
    pub last_error: Option<String>,
    /// `None`: when it was created.
    pub next_attempt_at: Option<i64>,
    pub sent_at: Option<i64>,
    pub detail: Option<OutboxDetail>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutboxDetail {
    pub conversation: String,
    pub in_reply_to: String,
    pub text: Text,
    pub created_at: i64,
}

impl OutboxRec {
    /// Its delivery state, for the case rules.
    pub fn delivery(&self) -> Result<Delivery, CodecError> {
        Ok(Delivery {
            status: match (self.status, self.sent_at) {
                (OUTBOX_PENDING, _) => OutboxStatus::Pending,
                (OUTBOX_SENT, Some(at)) => OutboxStatus::Sent {
                    at: from_micros(at)?,
                },
                (OUTBOX_DEAD, _) => OutboxStatus::Dead,
                (code, _) => {
                    return Err(CodecError::malformed(format!("bad outbox status {code}")));
                }
            },
            attempts: self.attempts,
            last_error: self.last_error.clone(),
            next_attempt_at: self.next_attempt_at.map(from_micros).transpose()?,
        })
    }

    pub fn set_delivery(&mut self, delivery: &Delivery) {
        (self.status, self.sent_at) = match delivery.status {
            OutboxStatus::Pending => (OUTBOX_PENDING, None),
            OutboxStatus::Sent { at } => (OUTBOX_SENT, Some(micros(at))),
            OutboxStatus::Dead => (OUTBOX_DEAD, self.sent_at),
        };
        self.attempts = delivery.attempts;
        self.last_error.clone_from(&delivery.last_error);
        self.next_attempt_at = delivery.next_attempt_at.map(micros);
    }

    /// A pending entry nothing has happened to yet: all it needs is its place in its chunk's
    /// waiting record.
    pub fn is_fresh(&self) -> bool {
        self.status == OUTBOX_PENDING
            && self.attempts == 0
            && self.last_error.is_none()
            && self.next_attempt_at.is_none()
            && self.sent_at.is_none()
            && self.detail.is_none()
    }
}

pub const OUTBOX_PENDING: u8 = 0;
pub const OUTBOX_SENT: u8 = 1;
pub const OUTBOX_DEAD: u8 = 2;

impl OutboxRec {
    /// The entry as callers see it; `message` is the record of message `id` when the entry
    /// has no detail of its own.
    pub fn decode(
        &self,
        id: u64,
        message: Option<&MessageRec>,
        symbols: &mut impl Resolve,
        corrupt: impl Fn(CodecError) -> StoreError,
    ) -> Result<OutboxEntry, StoreError> {
        let (conversation, in_reply_to, text_of, created_at) = match (&self.detail, message) {
            (Some(d), _) => (
                d.conversation.clone(),
                d.in_reply_to.clone(),
                text(&d.text, symbols)?,
                d.created_at,
            ),
            (None, Some(m)) => (
                m.conversation.clone(),
                m.id.clone(),
                match &m.decision.reply {
                    Some(t) => text(t, symbols)?,
                    None => {
                        return Err(corrupt(CodecError::malformed(
                            "outbox entry for a message without reply",
                        )));
                    }
                },
                m.stored_at(),
            ),
            (None, None) => {
                return Err(corrupt(CodecError::malformed(
                    "outbox entry without its message",
                )));
            }
        };
        Ok(OutboxEntry {
            id,
            channel: channel_from(self.channel).map_err(&corrupt)?,
            conversation,
            in_reply_to,
            text: text_of,
            attempts: self.attempts,
            last_error: self.last_error.clone(),
            status: match (self.status, self.sent_at) {
                (OUTBOX_PENDING, _) => OutboxStatus::Pending,
                (OUTBOX_SENT, Some(at)) => OutboxStatus::Sent {
                    at: from_micros(at).map_err(&corrupt)?,
                },
                (OUTBOX_DEAD, _) => OutboxStatus::Dead,
                (code, _) => {
                    return Err(corrupt(CodecError::malformed(format!(
                        "bad outbox status {code}"
                    ))));
                }
            },
            created_at: from_micros(created_at).map_err(&corrupt)?,
            next_attempt_at: from_micros(self.next_attempt_at.unwrap_or(created_at))
                .map_err(&corrupt)?,
        })
    }
}

// --- rulebook versions -----------------------------------------------------------------------

/// The files of one rulebook version.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VersionRec {
    /// Role (`rulebook`, `topics`, …, `escalation`), path as loaded, text.
    pub files: Vec<(String, String, String)>,
}

/// One activation of a rulebook version.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ActivationRec {
    pub version: String,
    pub by: String,
    pub at: i64,
}
