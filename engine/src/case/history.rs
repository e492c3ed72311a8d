//! The words of an escalation's history, in one place: what the inbox shows and an export
//! carries. The store keeps most events compact (a message joining is a few bytes) and makes
//! the words here when it reads them.

use chrono::{DateTime, Utc};

use crate::decision::Priority;

/// The actor of what intake and the outbox worker did.
pub const ENGINE: &str = "engine";
/// The actor of an SLA breach.
pub const SLA: &str = "sla";

pub fn opened(team: &str, priority: Priority, message: &str) -> String {
    format!("opened for team `{team}`, priority {priority}, by message `{message}`")
}

/// A message added to an open escalation: the priority it raised, and the other team it was
/// meant for.
pub fn joined(message: &str, raised: Option<(Priority, Priority)>, team: Option<&str>) -> String {
    let mut change = format!("message `{message}` added");
    if let Some((from, to)) = raised {
        change.push_str(&format!(", priority {from} → {to}"));
    }
    if let Some(team) = team {
        change.push_str(&format!(", also for team `{team}`"));
    }
    change
}

/// A customer's message reopened a resolved escalation.
pub fn reopened(message: &str, raised: Option<(Priority, Priority)>) -> String {
    let mut change = format!("reopened by message `{message}`");
    if let Some((from, to)) = raised {
        change.push_str(&format!(", priority {from} → {to}"));
    }
    change
}

/// A message for another team opened that team's own escalation beside this one.
pub fn linked(other: u64, team: &str) -> String {
    format!("message for team `{team}` went to its own escalation {other}")
}

/// The customer was asked for a score (outbox entry `outbox`).
pub fn survey_asked(outbox: u64) -> String {
    format!("satisfaction question sent (outbox {outbox})")
}

/// The customer answered the satisfaction question.
pub fn survey_answered(score: u8) -> String {
    format!("customer rated {score} of 5")
}

pub fn claimed() -> String {
    "claimed".into()
}

pub fn resolved() -> String {
    "resolved".into()
}

/// An agent's reply; the first one says how it stood with the SLA, in the words the report
/// counts (see [`super::sla`]).
pub fn replied(outbox: u64, first_response: Option<super::SlaOutcome>) -> String {
    let mut change = format!("replied (outbox {outbox})");
    match first_response {
        Some(super::SlaOutcome::NoDeadline) => change.push_str(": first response (no SLA)"),
        Some(outcome) => change.push_str(&format!(": first response, SLA {}", outcome.name())),
        None => {}
    }
    change
}

pub fn reassigned(from: &str, to: &str) -> String {
    format!("reassigned from `{from}` to `{to}`")
}

pub fn breached(
    deadline: DateTime<Utc>,
    teams: (&str, &str),
    priorities: (Priority, Priority),
) -> String {
    let mut change = format!("SLA breached (due {})", deadline.to_rfc3339());
    if teams.0 != teams.1 {
        change.push_str(&format!(", reassigned from `{}` to `{}`", teams.0, teams.1));
    }
    if priorities.0 != priorities.1 {
        change.push_str(&format!(", priority {} → {}", priorities.0, priorities.1));
    }
    change
}

pub fn dead_letter_opened(team: &str, outbox: u64, attempts: u32) -> String {
    format!(
        "opened for team `{team}`, priority high: reply {outbox} could not be delivered after {attempts} attempts"
    )
}

pub fn dead_letter_reason(error: &str) -> String {
    format!("reply could not be delivered: {error}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_join_says_what_it_raised_and_for_whom() {
        assert_eq!(joined("m-9", None, None), "message `m-9` added");
        assert_eq!(
            joined(
                "m-9",
                Some((Priority::Normal, Priority::High)),
                Some("legal")
            ),
            "message `m-9` added, priority normal → high, also for team `legal`"
        );
    }

    #[test]
    fn a_breach_names_only_what_changed() {
        let due = DateTime::from_timestamp(0, 0).unwrap_or_default();
        let same = breached(due, ("kcc", "kcc"), (Priority::High, Priority::High));
        assert_eq!(same, "SLA breached (due 1970-01-01T00:00:00+00:00)");
        let moved = breached(due, ("kcc", "lead"), (Priority::High, Priority::Urgent));
        assert!(moved.ends_with(", reassigned from `kcc` to `lead`, priority high → urgent"));
    }

    #[test]
    fn the_first_reply_meets_the_sla() {
        let at = DateTime::from_timestamp(0, 0).unwrap_or_default();
        assert_eq!(
            replied(7, Some(crate::case::SlaOutcome::Met { at })),
            "replied (outbox 7): first response, SLA met"
        );
        assert_eq!(
            replied(7, Some(crate::case::SlaOutcome::Breached { due: at })),
            "replied (outbox 7): first response, SLA breached"
        );
        assert_eq!(replied(8, None), "replied (outbox 8)");
    }
}
