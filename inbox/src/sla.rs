//! The SLA timer: nothing waits past its deadline unnoticed. Deadlines are in the store (intake
//! sets them from when the customer wrote, in the team's office time), so the timer holds no
//! state of its own and survives restarts: each tick reads the open escalations, and every one
//! whose deadline has passed without a first human response climbs one step up the chain.
//!
//! One step, for an escalation of team T at priority P whose deadline D passed:
//!
//! 1. it moves to the first team of T's `chain` (it stays with T when the chain has ended);
//! 2. its priority goes up one step (urgent stays urgent);
//! 3. its new deadline is the new team's SLA for the new priority, counted from now;
//! 4. the history, the escalation's work record and the audit log say so, and the new team
//!    is notified.
//!
//! The store applies a breach only while D is still the escalation's deadline, in the same
//! transaction that replaces it, so a breach is handled once even when two ticks (or a crash
//! and a restart) offer it twice. The first agent reply clears the deadline (see
//! [`crate::actions`]), which is what stops the clock.
//!
//! A customer's follow-up after a person answered starts a next-response deadline (see
//! [`webcare_engine::case::state`]); the timer treats it like any other: nobody answering in
//! time moves the escalation up the chain.
//!
//! What the inbox shows of the SLA is [`cell`]: the countdown while a deadline runs, and after
//! the first response the same met or breached the report counts ([`Escalation::sla`]). The
//! queue's order is [`queue_key`]: waiting on us first.
//!
//! The timer also tells a team's channel what it has not heard yet: a new escalation, a
//! customer's follow-up after a person answered, a reopening. The intake that causes one marks
//! the escalation in the same transaction ([`webcare_engine::case::Announce`]), and the timer
//! takes the mark in a transaction of its own before telling: with several instances only the
//! leader's timer runs, and one that takes over after a crash catches up on what the old
//! leader left, without telling anything twice. It wakes when intake opens or adds to an
//! escalation (so the team hears of it within a moment; events a quarter of a second apart
//! are told in one tick), at the earliest deadline, and at most every `poll`, so a manual
//! clock in tests is noticed within one poll.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use webcare_adapters::gateway::GatewayError;
use webcare_engine::case::SlaOutcome;
use webcare_engine::store::{Escalation, SlaBreach};
use webcare_engine::{Priority, Rulebook};

use crate::Inbox;
use crate::notify::Event;
use crate::text::Lang;

/// The next step up the chain for an escalation whose `deadline` passed at `now`.
pub fn next_step(
    rulebook: &Rulebook,
    escalation: &Escalation,
    deadline: DateTime<Utc>,
    now: DateTime<Utc>,
) -> SlaBreach {
    let teams = rulebook.teams();
    let to_team = teams
        .get(&escalation.team)
        .and_then(|team| team.chain.iter().find(|id| teams.get(id).is_some()))
        .cloned()
        .unwrap_or_else(|| escalation.team.clone());
    let to_priority = raise(escalation.priority);
    let next_deadline = teams
        .get(&to_team)
        .and_then(|team| team.sla_deadline(teams.local(now), to_priority))
        .map(|d| d.with_timezone(&Utc));
    SlaBreach {
        escalation: escalation.id,
        deadline,
        from_team: escalation.team.clone(),
        to_team,
        from_priority: escalation.priority,
        to_priority,
        next_deadline,
        at: now,
    }
}

/// Whether the customer waits on us: they wrote and no person answered since. (An escalation
/// older than its case state waits while its deadline runs.)
pub fn waiting(e: &Escalation) -> bool {
    e.case.is_waiting() || (e.case.opened_at.is_none() && e.sla_deadline.is_some())
}

/// A follow-up: waiting again after a person had answered. The queue flags these, since the
/// SLA cell alone would not show that the customer wrote again.
pub fn follow_up(e: &Escalation) -> bool {
    e.case.is_waiting() && e.case.first_response_at.is_some()
}

/// Where an escalation stands in the queue; smaller comes first (see [`queue_key`]).
pub type QueueKey = (
    bool,
    bool,
    Option<DateTime<Utc>>,
    std::cmp::Reverse<Priority>,
    Option<DateTime<Utc>>,
    DateTime<Utc>,
);

/// The queue's order, most urgent first: waiting on us (soonest running deadline, then the
/// highest priority, then the longest waiting), then the answered ones (highest priority,
/// oldest).
pub fn queue_key(e: &Escalation) -> QueueKey {
    (
        !waiting(e),
        e.sla_deadline.is_none(),
        e.sla_deadline,
        std::cmp::Reverse(e.priority),
        e.case.waiting_since,
        e.created_at,
    )
}

/// The SLA cell and its class: `in 2 h 5 min`, `overdue 15 min` while a deadline runs;
/// otherwise the first-response SLA in the report's words: `SLA met`, `SLA breached`, `no SLA`.
pub fn cell(e: &Escalation, now: DateTime<Utc>) -> (String, &'static str) {
    cell_in(e, now, Lang::En)
}

/// [`cell`] in the words of `lang` (the pages speak the person's language; the words are in
/// [`crate::text`]).
pub fn cell_in(e: &Escalation, now: DateTime<Utc>, lang: Lang) -> (String, &'static str) {
    let t = lang.texts();
    match e.sla_deadline {
        Some(d) if d <= now => (
            lang.overdue(&lang.span((now - d).num_minutes().max(0))),
            "sla-overdue",
        ),
        Some(d) => {
            let left = (d - now).num_minutes().max(0);
            (
                lang.due_in(&lang.span(left)),
                if left < 60 { "sla-soon" } else { "sla-ok" },
            )
        }
        None => match e.sla(now) {
            SlaOutcome::Met { .. } => (t.sla_met.to_owned(), "sla-met"),
            SlaOutcome::Breached { .. } => (t.sla_breached.to_owned(), "sla-overdue"),
            SlaOutcome::Pending { .. } => (t.sla_pending.to_owned(), "sla-ok"),
            SlaOutcome::NoDeadline => (t.no_sla.to_owned(), "sla-met"),
        },
    }
}

/// One step up: low → normal → high → urgent.
pub fn raise(priority: Priority) -> Priority {
    match priority {
        Priority::Low => Priority::Normal,
        Priority::Normal => Priority::High,
        Priority::High | Priority::Urgent => Priority::Urgent,
    }
}

/// How long the timer gathers arrivals after the first one woke it.
const ARRIVAL_BATCH: Duration = Duration::from_millis(250);

/// See the module docs.
pub struct SlaTimer {
    inbox: Inbox,
    poll: Duration,
}

impl SlaTimer {
    pub fn new(inbox: Inbox, poll: Duration) -> Self {
        SlaTimer {
            inbox,
            poll: poll.max(Duration::from_millis(1)),
        }
    }

    /// Handles every breach due now; returns the escalations that moved.
    pub async fn tick(&mut self) -> Result<Vec<Escalation>, GatewayError> {
        let gateway = self.inbox.gateway().clone();
        let now = gateway.now();
        let rulebook = gateway.runtime().rulebook();
        let open = gateway.store(|s| s.open_escalations()).await?;

        // What the teams are still to hear of (arrivals, follow-ups, reopenings) is kept with
        // each escalation in the store and taken once: whichever instance's timer runs, and
        // after a restart or a leader change, nothing is lost or told twice.
        let mut told = false;
        for id in open
            .iter()
            .filter(|e| !e.case.announce.is_empty())
            .map(|e| e.id)
        {
            let Some((kinds, escalation)) =
                gateway.store(move |s| s.take_announcements(id)).await?
            else {
                continue;
            };
            told = true;
            for kind in kinds {
                self.inbox
                    .notify(Event::from(kind), &escalation, &rulebook, now)
                    .await;
            }
        }
        if told {
            self.inbox.changed();
        }

        let due: Vec<SlaBreach> = open
            .iter()
            .filter_map(|e| {
                let deadline = e.sla_deadline?;
                (deadline <= now).then(|| next_step(&rulebook, e, deadline, now))
            })
            .collect();
        let mut moved = Vec::new();
        for breach in due {
            let applied = gateway.store(move |s| s.record_sla_breach(breach)).await?;
            if let Some(escalation) = applied {
                tracing::warn!(
                    escalation = escalation.id,
                    team = %escalation.team,
                    priority = %escalation.priority,
                    "sla: breached; moved up the chain"
                );
                self.inbox
                    .notify(Event::Breached, &escalation, &rulebook, now)
                    .await;
                moved.push(escalation);
            }
        }
        if !moved.is_empty() {
            self.inbox.changed();
        }
        Ok(moved)
    }

    /// How long to sleep: until the earliest future deadline, at most `poll`.
    async fn next_wake(&self) -> Duration {
        let gateway = self.inbox.gateway().clone();
        let now = gateway.now();
        let earliest = gateway
            .store(|s| s.open_escalations())
            .await
            .ok()
            .and_then(|open| open.iter().filter_map(|e| e.sla_deadline).min());
        earliest
            .and_then(|at| (at - now).to_std().ok())
            .map_or(self.poll, |wait| wait.min(self.poll))
            .max(Duration::from_millis(1))
    }

    /// Ticks until `shutdown` completes.
    pub async fn run(mut self, shutdown: impl Future<Output = ()> + Send) {
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            if let Err(error) = self.tick().await {
                tracing::error!(error = %error, "sla: cannot read the deadlines; retrying");
            }
            let wait = self.next_wake().await;
            let arrived = Arc::clone(self.inbox.gateway().escalation_signal());
            let woken_by_arrival = tokio::select! {
                () = tokio::time::sleep(wait) => false,
                () = arrived.notified() => true,
                () = &mut shutdown => return,
            };
            // A tick reads every open escalation: under a burst of escalations, the arrivals
            // of one short window are announced together rather than one tick each.
            if woken_by_arrival {
                tokio::select! {
                    () = tokio::time::sleep(ARRIVAL_BATCH) => {}
                    () = &mut shutdown => return,
                }
                // A message that joined an open escalation is news for open pages too (the
                // tick only sees new escalations): the queue shows it without a reload.
                self.inbox.changed();
            }
        }
    }
}
