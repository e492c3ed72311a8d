//! Whether an escalation met its SLA, in one definition that the inbox shows and the report
//! counts, so the two can never disagree about the same escalation (they did: the inbox said
//! "first response, SLA met" while the report, which read the deadline the reply had cleared,
//! listed the escalation under "no SLA").
//!
//! The SLA is the first-response target: the deadline in force until a person first
//! responded (set when the escalation opened, replaced by a reassignment before anyone
//! answered, never by a breach). It is **met** when a person replied, or resolved it, by then;
//! **breached** when that happened later, or not at all while the deadline has passed;
//! **pending** before the deadline; an escalation of a team without an SLA has **no deadline**.
//! The running deadline the SLA timer watches (which a customer's follow-up restarts as the
//! next-response target) is a separate thing: see [`super::state`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The SLA of one escalation at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "sla")]
pub enum SlaOutcome {
    /// A person responded at `at`, by the deadline.
    Met { at: DateTime<Utc> },
    /// A person responded late, or not at all while the deadline passed.
    Breached { due: DateTime<Utc> },
    /// Nobody responded yet and the deadline is still ahead.
    Pending { due: DateTime<Utc> },
    /// The team has no SLA.
    NoDeadline,
}

impl SlaOutcome {
    /// The outcome for a first-response deadline `due` and the first person's response
    /// (reply or resolve) `handled`, as seen at `now`.
    pub fn of(
        due: Option<DateTime<Utc>>,
        handled: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Self {
        match (due, handled) {
            (None, _) => SlaOutcome::NoDeadline,
            (Some(due), Some(at)) if at <= due => SlaOutcome::Met { at },
            (Some(due), Some(_)) => SlaOutcome::Breached { due },
            (Some(due), None) if now > due => SlaOutcome::Breached { due },
            (Some(due), None) => SlaOutcome::Pending { due },
        }
    }

    /// The word a report column and the inbox share.
    pub fn name(self) -> &'static str {
        match self {
            SlaOutcome::Met { .. } => "met",
            SlaOutcome::Breached { .. } => "breached",
            SlaOutcome::Pending { .. } => "pending",
            SlaOutcome::NoDeadline => "no SLA",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> Option<DateTime<Utc>> {
        DateTime::from_timestamp(s, 0)
    }

    #[test]
    fn met_breached_pending_and_none() {
        let now = t(100).unwrap_or_default();
        assert_eq!(SlaOutcome::of(t(50), t(50), now).name(), "met");
        assert_eq!(SlaOutcome::of(t(50), t(51), now).name(), "breached");
        assert_eq!(SlaOutcome::of(t(50), None, now).name(), "breached");
        assert_eq!(SlaOutcome::of(t(150), None, now).name(), "pending");
        assert_eq!(SlaOutcome::of(None, t(1), now), SlaOutcome::NoDeadline);
    }
}
