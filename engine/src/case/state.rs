//! What the case keeps about an escalation besides its status and history: whether the
//! customer is waiting on us, the first-response SLA as it was set (so it survives the reply
//! that stops the clock), when it was resolved or reopened, whether a critical category ever
//! came in, the customer and their language, and the satisfaction question with its answer.
//!
//! It exists as one record so each backend stores it the same way and a rule changes it in one
//! place. Waiting follows Chatwoot's "next response time": every customer message a person has
//! not answered yet keeps the escalation waiting, and after a person's reply a new customer
//! message starts a next-response deadline of the team's SLA; the reply ends it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::sla::SlaOutcome;
use crate::decision::{Category, Language};

/// The case state of one escalation; see the module docs. Escalations opened before this
/// record existed read as the default (nothing known).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CaseState {
    /// When it opened; `None` for an escalation older than this record.
    pub opened_at: Option<DateTime<Utc>>,
    /// The first-response deadline: set when it opened, replaced by a reassignment while
    /// nobody had answered, kept after the response so the SLA can still be judged.
    pub first_response_due: Option<DateTime<Utc>>,
    /// When a person first replied, and who.
    pub first_response_at: Option<DateTime<Utc>>,
    pub first_response_by: Option<String>,
    /// Since when the customer waits for a person: their oldest message nobody answered.
    pub waiting_since: Option<DateTime<Utc>>,
    /// When it was last resolved (`None` while open).
    pub resolved_at: Option<DateTime<Utc>>,
    /// When it was first resolved: a reopening never un-answers the SLA.
    pub first_resolved_at: Option<DateTime<Utc>>,
    /// How often a customer's message reopened it.
    pub reopened: u32,
    /// A message of a critical category (press, legal, crisis, abuse, distress) is in it.
    pub critical: bool,
    /// The customer (the author of its first message) and the language they last wrote in.
    pub author: Option<String>,
    pub language: Option<Language>,
    /// The satisfaction question asked after it was resolved, and the answer.
    pub survey: Option<Survey>,
    /// What its team has not been told yet, oldest first. Added to in the transaction that
    /// opens, follows up or reopens the escalation and emptied by the one that takes it for the
    /// team's channel, so whichever instance's SLA timer runs, after a restart or a leader
    /// change, each event is told once (see the inbox's SLA timer). Escalations older than
    /// this field read as nothing to tell.
    pub announce: Vec<Announce>,
}

/// An event the team's channel is still to hear of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Announce {
    /// It opened.
    Arrived,
    /// The customer wrote again after a person had answered: it waits on us again.
    FollowUp,
    /// A customer's message reopened it after it was resolved.
    Reopened,
}

/// A satisfaction question and its answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Survey {
    pub asked_at: DateTime<Utc>,
    /// The person who resolved the escalation: the score is theirs.
    pub agent: String,
    /// The outbox entry that carried the question.
    pub outbox: u64,
    /// 1–5, once answered.
    pub score: Option<u8>,
    pub answered_at: Option<DateTime<Utc>>,
}

/// Whether a category is one after which nobody is asked for a score (and which a bot never
/// answers): press, legal, crisis, abuse, distress.
pub fn is_critical(category: Category) -> bool {
    crate::eval::is_critical(category)
}

impl CaseState {
    /// A new escalation, opened by a customer's message received at `received`.
    pub fn opened(
        at: DateTime<Utc>,
        received: DateTime<Utc>,
        due: Option<DateTime<Utc>>,
        author: &str,
        category: Category,
        language: Language,
    ) -> Self {
        CaseState {
            opened_at: Some(at),
            first_response_due: due,
            waiting_since: Some(received),
            critical: is_critical(category),
            author: Some(author.to_owned()),
            language: Some(language),
            announce: vec![Announce::Arrived],
            ..CaseState::default()
        }
    }

    /// Adds `kind` to what the team is to hear of; the same event twice in a row is told once
    /// (the team is told the case waits, not how often the customer wrote meanwhile).
    fn tell(&mut self, kind: Announce) {
        if self.announce.last() != Some(&kind) {
            self.announce.push(kind);
        }
    }

    /// Whether a person has answered since the customer last wrote.
    pub fn is_waiting(&self) -> bool {
        self.waiting_since.is_some()
    }

    /// A customer's message received at `received` joined the open escalation. Returns the
    /// running deadline (the SLA timer's) after it: while the first response is still due it
    /// stays as it is; after a person answered, the first unanswered follow-up starts the
    /// next-response deadline `next_due`, and later ones keep it (the clock runs from the
    /// oldest unanswered message).
    pub fn customer_wrote(
        &mut self,
        received: DateTime<Utc>,
        category: Category,
        language: Language,
        running: Option<DateTime<Utc>>,
        next_due: Option<DateTime<Utc>>,
    ) -> Option<DateTime<Utc>> {
        self.critical |= is_critical(category);
        self.language = Some(language);
        if self.waiting_since.is_none() {
            self.waiting_since = Some(received);
            // Waiting again after a person answered: news for the team (once, not for every
            // message while nobody answered).
            if self.first_response_at.is_some() {
                self.tell(Announce::FollowUp);
            }
        }
        if self.first_response_at.is_none() && self.opened_at.is_some() {
            running
        } else {
            running.or(next_due)
        }
    }

    /// A customer's message reopened the resolved escalation (see [`may_reopen`]): it waits
    /// again, with a next-response deadline of `next_due`.
    pub fn reopened_by(
        &mut self,
        received: DateTime<Utc>,
        category: Category,
        language: Language,
        next_due: Option<DateTime<Utc>>,
    ) -> Option<DateTime<Utc>> {
        self.resolved_at = None;
        self.reopened += 1;
        self.waiting_since = None;
        let pending = self.announce.len();
        let running = self
            .customer_wrote(received, category, language, None, next_due)
            .or(next_due);
        // The news is the reopening, not a follow-up.
        self.announce.truncate(pending);
        self.tell(Announce::Reopened);
        running
    }

    /// A person replied at `at`: nobody waits any more, and the running deadline ends (the
    /// next response was given). Returns whether this was the first response.
    pub fn replied(&mut self, at: DateTime<Utc>, by: &str) -> bool {
        self.waiting_since = None;
        if self.first_response_at.is_some() {
            return false;
        }
        self.first_response_at = Some(at);
        self.first_response_by = Some(by.to_owned());
        true
    }

    /// A person resolved it at `at`.
    pub fn resolved(&mut self, at: DateTime<Utc>) {
        self.resolved_at = Some(at);
        self.first_resolved_at.get_or_insert(at);
        self.waiting_since = None;
    }

    /// It moved to another team with deadline `due`: before the first response that is the
    /// new first-response target; after it, the SLA was already met or missed.
    pub fn reassigned(&mut self, due: Option<DateTime<Utc>>) {
        if self.first_response_at.is_none() {
            self.first_response_due = due;
        }
    }

    /// The first-response SLA at `now`. `running` is the escalation's running deadline, which
    /// stands in for the first-response deadline of an escalation older than this record
    /// (until a reply cleared it).
    pub fn sla(&self, running: Option<DateTime<Utc>>, now: DateTime<Utc>) -> SlaOutcome {
        let due = if self.opened_at.is_some() {
            self.first_response_due
        } else {
            running
        };
        let handled = match (self.first_response_at, self.first_resolved_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        SlaOutcome::of(due, handled, now)
    }
}

/// Whether a customer's escalating message for `team` reopens an escalation of that team
/// resolved at `resolved_at`, `window` ago at most, rather than opening a new one. A message
/// for another team opens that team's own escalation instead.
pub fn may_reopen(
    resolved_at: Option<DateTime<Utc>>,
    received: DateTime<Utc>,
    window: chrono::Duration,
) -> bool {
    resolved_at.is_some_and(|at| received >= at && received - at <= window)
}

/// How long after resolution a customer's message reopens an escalation, unless the rulebook's
/// `[cases] reopen_days` says otherwise.
pub const DEFAULT_REOPEN_DAYS: u32 = 7;

#[cfg(test)]
mod tests {
    use super::*;

    fn t(h: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_795_000_000 + h * 3600, 0).unwrap_or_default()
    }

    fn opened() -> CaseState {
        CaseState::opened(
            t(0),
            t(0),
            Some(t(4)),
            "citizen",
            Category::Complaint,
            Language::Nl,
        )
    }

    #[test]
    fn a_follow_up_after_a_reply_waits_and_restarts_the_next_response_clock() {
        let mut case = opened();
        assert!(case.is_waiting());
        // Before anyone answered, a second message leaves the first-response clock alone.
        let running = case.customer_wrote(
            t(1),
            Category::Complaint,
            Language::Nl,
            Some(t(4)),
            Some(t(5)),
        );
        assert_eq!(running, Some(t(4)));
        assert_eq!(case.waiting_since, Some(t(0)));
        assert!(case.replied(t(2), "ann"));
        assert!(!case.is_waiting());
        // The follow-up: waiting again, a next-response deadline from the team's SLA.
        let running = case.customer_wrote(t(3), Category::Question, Language::En, None, Some(t(7)));
        assert_eq!(running, Some(t(7)));
        assert_eq!(case.waiting_since, Some(t(3)));
        // A second follow-up keeps the older deadline.
        let running =
            case.customer_wrote(t(4), Category::Question, Language::En, running, Some(t(8)));
        assert_eq!(running, Some(t(7)));
        assert!(!case.replied(t(5), "ann"), "not the first response");
        assert_eq!(
            case.announce,
            [Announce::Arrived, Announce::FollowUp],
            "never taken: each in order"
        );
        assert_eq!(case.first_response_at, Some(t(2)));
        assert_eq!(case.language, Some(Language::En));
    }

    #[test]
    fn the_sla_survives_the_reply_that_stops_the_clock() {
        let mut case = opened();
        assert_eq!(case.sla(Some(t(4)), t(1)).name(), "pending");
        case.replied(t(2), "ann");
        // The reply cleared the running deadline; the SLA is still judged against 4.
        assert_eq!(case.sla(None, t(10)), SlaOutcome::Met { at: t(2) });
        let mut late = opened();
        late.replied(t(6), "ann");
        assert_eq!(late.sla(None, t(10)).name(), "breached");
        // Resolving without a reply also answers.
        let mut resolved = opened();
        resolved.resolved(t(3));
        assert_eq!(resolved.sla(None, t(10)).name(), "met");
        // An escalation older than the record: the running deadline is all there is.
        let old = CaseState::default();
        assert_eq!(old.sla(Some(t(4)), t(5)).name(), "breached");
        assert_eq!(old.sla(None, t(5)), SlaOutcome::NoDeadline);
    }

    #[test]
    fn reassigning_before_the_first_response_moves_the_target_only_then() {
        let mut case = opened();
        case.reassigned(Some(t(9)));
        assert_eq!(case.first_response_due, Some(t(9)));
        case.replied(t(10), "bob");
        case.reassigned(Some(t(20)));
        assert_eq!(case.first_response_due, Some(t(9)));
    }

    #[test]
    fn a_resolved_case_reopens_within_the_window_and_waits() {
        let week = chrono::Duration::days(7);
        assert!(may_reopen(Some(t(0)), t(24), week));
        assert!(!may_reopen(Some(t(0)), t(24 * 8), week));
        assert!(!may_reopen(None, t(1), week));
        let mut case = opened();
        case.replied(t(1), "ann");
        case.resolved(t(2));
        let running = case.reopened_by(t(30), Category::Legal, Language::Nl, Some(t(34)));
        assert_eq!(running, Some(t(34)));
        assert_eq!((case.reopened, case.resolved_at), (1, None));
        assert_eq!(case.waiting_since, Some(t(30)));
        assert!(case.critical, "a legal message makes the case critical");
    }

    #[test]
    fn the_team_is_to_hear_of_an_arrival_a_follow_up_and_a_reopening_once_each() {
        let mut case = opened();
        assert_eq!(case.announce, [Announce::Arrived]);
        case.announce.clear(); // told
        // More messages before anyone answered: nothing new for the team.
        case.customer_wrote(t(1), Category::Complaint, Language::Nl, Some(t(4)), None);
        assert!(case.announce.is_empty());
        case.replied(t(2), "ann");
        case.customer_wrote(t(3), Category::Question, Language::Nl, None, Some(t(7)));
        assert_eq!(case.announce, [Announce::FollowUp]);
        // A second message before the answer is the same wait.
        let running = Some(t(7));
        case.customer_wrote(t(4), Category::Question, Language::Nl, running, Some(t(8)));
        assert_eq!(case.announce, [Announce::FollowUp]);
        case.replied(t(5), "ann");
        case.resolved(t(6));
        case.reopened_by(t(30), Category::Complaint, Language::Nl, Some(t(34)));
        assert_eq!(
            case.announce,
            [Announce::FollowUp, Announce::Reopened],
            "not told yet: both, in order, and the reopening is no follow-up"
        );
        // Older records: nothing to tell.
        let old: CaseState = serde_json::from_str("{\"reopened\": 1}").unwrap();
        assert!(old.announce.is_empty());
    }
}
