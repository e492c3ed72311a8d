//! Intake: one inbound message, from delivery to a durable decision, exactly once. It exists so
//! that the order of the steps, which is what makes a crash or a platform retry harmless, lives
//! in one place:
//!
//! 1. a delivery already stored returns its first decision, marked duplicate;
//! 2. the conversation's facts (state, counters) are read, and the rulebook decides;
//! 3. one transaction stores the message, the decision, the conversation update, the escalation
//!    and the outbox entry, after checking once more for a duplicate (two concurrent deliveries
//!    of one message may both pass step 1; the store's single writer lets only one through).
//!    The embedded store's writer skips that second look where it can prove that nothing
//!    written since step 1's read could change its answer.
//!
//! On PostgreSQL, where several instances take in messages, the three steps of one message run
//! in one transaction that holds its conversation's lock ([`Store::decide_and_record`]), so a
//! message is decided with the facts of every earlier one, whichever instance took that in.
//!
//! Only when step 3 returns has the message been accepted; an adapter acknowledges the platform
//! after that, never before. Time comes in as `now`, never from the system clock.
//!
//! The channel's [`Mode`] goes into the transaction with the decision and chooses its effects
//! (see [`crate::mode`]). A shadow rulebook, when one runs, decides in step 2 too, with the
//! same facts, and its decision is stored in the same transaction, with no effect at all. It
//! is decided here, before the commit, rather than after the acknowledgment: deciding costs
//! about 11 µs of CPU against the milliseconds of the durable commit every intake waits for
//! (BENCHMARKS.md), while a second store job per message after the commit cost 40 % of the
//! throughput where it was measured; and in one transaction every stored message has its
//! shadow decision, even after a crash, so the shadow report never has holes.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};

use crate::case::intake::NextDue;
use crate::case::satisfaction;
use crate::case::{CaseInput, ConversationFacts, ConversationState};
use crate::context::DecideContext;
use crate::decision::Action;
use crate::message::Inbound;
use crate::mode::Mode;
use crate::rulebook::Rulebook;
use crate::store::{IntakeReceipt, IntakeRecord, Store, StoreError};

/// The rulebook and the store a message goes through.
pub struct Intake<'a> {
    rulebook: &'a Rulebook,
    store: &'a dyn Store,
    crisis_mode: Option<bool>,
    mode: Mode,
    shadow: Option<&'a Rulebook>,
    reply_inline: bool,
}

impl<'a> Intake<'a> {
    pub fn new(rulebook: &'a Rulebook, store: &'a dyn Store) -> Self {
        Intake {
            rulebook,
            store,
            crisis_mode: None,
            mode: Mode::Live,
            shadow: None,
            reply_inline: false,
        }
    }

    /// The mode of the message's channel; `live` unless set.
    pub fn with_mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// A candidate rulebook that decides every message beside the live one, without effect.
    pub fn with_shadow(mut self, shadow: Option<&'a Rulebook>) -> Self {
        self.shadow = shadow;
        self
    }

    /// The reply goes out in the answer to this delivery (the HTTP channel without a
    /// callback), so it is stored as sent in the same transaction as the message.
    pub fn with_inline_reply(mut self, inline: bool) -> Self {
        self.reply_inline = inline;
        self
    }

    /// The running service's crisis switch; `None` uses the rulebook's setting.
    pub fn with_crisis_mode(mut self, crisis_mode: Option<bool>) -> Self {
        self.crisis_mode = crisis_mode;
        self
    }

    /// Decides and stores `message`; see the module docs. `now` is when webcare handles it (the
    /// message's own `received_at` is what office hours and counters use).
    pub fn accept(
        &self,
        message: Inbound,
        now: DateTime<Utc>,
    ) -> Result<IntakeReceipt, StoreError> {
        let today = self
            .rulebook
            .teams()
            .local(message.received_at)
            .date_naive();
        self.store
            .decide_and_record(message, today, &mut |message, facts| {
                self.record_for(message, facts, today, now)
            })
    }

    /// Decides and stores `messages` in as few transactions as the store allows, each durable
    /// before it returns: a message is decided with the facts its conversation has after the
    /// messages before it (see [`Store::decide_and_record_all`]). The receipts are in the order
    /// of `messages`. For a file taken in whole (`webcare ingest`), where one commit per
    /// message spends its time waiting for the disk.
    pub fn accept_batch(
        &self,
        messages: Vec<Inbound>,
        now: DateTime<Utc>,
    ) -> Result<Vec<IntakeReceipt>, StoreError> {
        let teams = self.rulebook.teams();
        let messages = messages
            .into_iter()
            .map(|message| {
                let today = teams.local(message.received_at).date_naive();
                (message, today)
            })
            .collect();
        self.store
            .decide_and_record_all(messages, &mut |message, facts, today| {
                self.record_for(message, facts, today, now)
            })
    }

    /// Step 2 for a new message: the rulebook (and the shadow rulebook) decide with the
    /// conversation's facts, and the record to store is made.
    fn record_for(
        &self,
        message: Inbound,
        conversation: ConversationFacts,
        today: NaiveDate,
        now: DateTime<Utc>,
    ) -> IntakeRecord {
        let teams = self.rulebook.teams();
        // A score right after a satisfaction question answers it; it is not a new message to
        // decide (see [`crate::case::satisfaction`]).
        let score = conversation
            .awaiting_score
            .then(|| satisfaction::score(&message.text))
            .flatten();
        let context = DecideContext {
            conversation,
            crisis_mode: self.crisis_mode,
        };
        let (decision, shadow) = match score {
            Some(score) => (satisfaction::answer(&message, score, self.rulebook), None),
            None => (
                self.rulebook.decide(&message, &context),
                self.shadow
                    .map(|candidate| candidate.decide(&message, &context)),
            ),
        };
        // The SLA runs from when the customer wrote, in the team's office time (or calendar
        // time, as the team's `sla_clock` says), for the escalation's priority.
        let local = teams.local(message.received_at);
        let sla_deadline = match &decision.action {
            Action::Escalate { team, priority, .. } => teams
                .get(team)
                .and_then(|t| t.sla_deadline(local, *priority))
                .map(|due| due.with_timezone(&Utc)),
            _ => None,
        };
        // A message that may join or reopen an escalation may start its next-response clock,
        // counted from its receipt; most messages need none.
        let may_follow = matches!(decision.action, Action::Escalate { .. })
            || context.conversation.state == ConversationState::Human;
        let next_due = may_follow.then(|| NextDue {
            teams: Arc::clone(&self.rulebook.teams),
            received: local,
        });
        let attachment_only = message.is_attachment_only();
        IntakeRecord {
            message,
            decision,
            facts: context.conversation,
            today,
            sla_deadline,
            now,
            mode: self.mode,
            shadow,
            reply_inline: self.reply_inline,
            case: CaseInput {
                reopen_within: self.rulebook.cases.reopen_within,
                next_due,
                score,
                attachment_only,
            },
        }
    }
}
