//! The transitions of an escalation after intake opened it: claim, reply, note, reassign, SLA
//! breach, resolve, and the escalation a dead letter opens. Each takes the escalation's status
//! (and what else it needs), says whether the step is allowed, and what changes; the store
//! writes that in one transaction with the conversation and the audit entry.
//!
//! The rules in short: an open escalation may be claimed by anyone, a claimed one only again
//! by its owner; a resolved one is finished. A reply by anyone other than the owner is a
//! conflict; the first reply claims an open escalation and meets its SLA. Reassigning and a
//! breach release the claim so the new team can pick it up.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::error::CaseError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum EscalationStatus {
    Open,
    Claimed { by: String },
    Resolved { by: String },
}

impl EscalationStatus {
    pub fn name(&self) -> &'static str {
        match self {
            EscalationStatus::Open => "open",
            EscalationStatus::Claimed { .. } => "claimed",
            EscalationStatus::Resolved { .. } => "resolved",
        }
    }

    pub fn is_resolved(&self) -> bool {
        matches!(self, EscalationStatus::Resolved { .. })
    }
}

/// `agent` claims escalation `id`. `Ok(None)`: it is theirs already and nothing changes.
pub fn claim(
    id: u64,
    status: &EscalationStatus,
    agent: &str,
) -> Result<Option<EscalationStatus>, CaseError> {
    match status {
        EscalationStatus::Resolved { .. } => Err(CaseError::AlreadyResolved(id)),
        EscalationStatus::Claimed { by } if by == agent => Ok(None),
        EscalationStatus::Claimed { by } => Err(CaseError::AlreadyClaimed { id, by: by.clone() }),
        EscalationStatus::Open => Ok(Some(EscalationStatus::Claimed {
            by: agent.to_owned(),
        })),
    }
}

/// `agent` resolves escalation `id`; anyone may, also over somebody else's claim.
pub fn resolve(
    id: u64,
    status: &EscalationStatus,
    agent: &str,
) -> Result<EscalationStatus, CaseError> {
    match status {
        EscalationStatus::Resolved { .. } => Err(CaseError::AlreadyResolved(id)),
        _ => Ok(EscalationStatus::Resolved {
            by: agent.to_owned(),
        }),
    }
}

/// How a person closes an escalation. Both resolve it and give the conversation back to the bot;
/// the audit log tells a hand-back (no solution) from a solution, in the same transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closing {
    Solved,
    HandedBack,
}

impl Closing {
    /// The audit entry a closing writes besides `escalation.resolve`, which every closing
    /// writes because reports count resolutions by it: its action and details.
    pub fn extra_audit(self) -> Option<(&'static str, &'static str)> {
        match self {
            Closing::Solved => None,
            Closing::HandedBack => Some(("escalation.handback", "conversation back to the bot")),
        }
    }
}

/// What an agent's reply does to its escalation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The claim the reply makes, when the escalation was still open.
    pub claim: Option<EscalationStatus>,
    /// The first human response: it meets the SLA, so the deadline is cleared.
    pub first_response: bool,
}

/// `author` replies on escalation `id`. `answered`: a person responded before.
pub fn reply(
    id: u64,
    status: &EscalationStatus,
    author: &str,
    answered: bool,
) -> Result<Reply, CaseError> {
    let claim = match status {
        EscalationStatus::Resolved { .. } => return Err(CaseError::AlreadyResolved(id)),
        EscalationStatus::Claimed { by } if by != author => {
            return Err(CaseError::AlreadyClaimed { id, by: by.clone() });
        }
        EscalationStatus::Claimed { .. } => None,
        EscalationStatus::Open => Some(EscalationStatus::Claimed {
            by: author.to_owned(),
        }),
    };
    Ok(Reply {
        claim,
        first_response: !answered,
    })
}

/// Escalation `id` moves to another team: the claim is released, and the new deadline
/// applies unless a person already answered (then the SLA stays met). Returns the deadline.
pub fn reassign(
    id: u64,
    status: &EscalationStatus,
    answered: bool,
    deadline: Option<DateTime<Utc>>,
    new_deadline: Option<DateTime<Utc>>,
) -> Result<Option<DateTime<Utc>>, CaseError> {
    if status.is_resolved() {
        return Err(CaseError::AlreadyResolved(id));
    }
    Ok(if answered { deadline } else { new_deadline })
}

/// Whether an SLA breach for `breached` still applies: the escalation is unresolved and that
/// deadline is still its deadline. So a breach is handled once however often it is offered.
pub fn breach_applies(
    status: &EscalationStatus,
    deadline: Option<DateTime<Utc>>,
    breached: DateTime<Utc>,
) -> bool {
    !status.is_resolved() && deadline == Some(breached)
}

/// An internal note may be added to any escalation that exists, also a resolved one.
pub fn note(id: u64, exists: bool) -> Result<(), CaseError> {
    if exists {
        Ok(())
    } else {
        Err(CaseError::NoSuchEscalation(id))
    }
}

/// Which escalation a conversation points new escalating messages to after `opened` was
/// opened beside its `current` one: a dead letter never takes the place of an open case.
pub fn open_escalation_after(current: Option<u64>, opened: u64) -> Option<u64> {
    current.or(Some(opened))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claimed(by: &str) -> EscalationStatus {
        EscalationStatus::Claimed { by: by.into() }
    }

    fn resolved() -> EscalationStatus {
        EscalationStatus::Resolved { by: "x".into() }
    }

    #[test]
    fn claims_go_to_the_first_and_again_to_them_only() {
        assert_eq!(
            claim(1, &EscalationStatus::Open, "ann").ok(),
            Some(Some(claimed("ann")))
        );
        assert_eq!(claim(1, &claimed("ann"), "ann").ok(), Some(None));
        assert!(matches!(
            claim(1, &claimed("ann"), "bob"),
            Err(CaseError::AlreadyClaimed { id: 1, by }) if by == "ann"
        ));
        assert!(matches!(
            claim(1, &resolved(), "bob"),
            Err(CaseError::AlreadyResolved(1))
        ));
    }

    #[test]
    fn anyone_resolves_once() {
        assert_eq!(
            resolve(2, &claimed("ann"), "bob").ok(),
            Some(EscalationStatus::Resolved { by: "bob".into() })
        );
        assert!(matches!(
            resolve(2, &resolved(), "bob"),
            Err(CaseError::AlreadyResolved(2))
        ));
    }

    #[test]
    fn the_first_reply_claims_and_meets_the_sla() {
        let first = reply(3, &EscalationStatus::Open, "ann", false).ok();
        assert_eq!(
            first,
            Some(Reply {
                claim: Some(claimed("ann")),
                first_response: true
            })
        );
        let again = reply(3, &claimed("ann"), "ann", true).ok();
        assert_eq!(
            again,
            Some(Reply {
                claim: None,
                first_response: false
            })
        );
        assert!(matches!(
            reply(3, &claimed("ann"), "bob", true),
            Err(CaseError::AlreadyClaimed { .. })
        ));
        assert!(matches!(
            reply(3, &resolved(), "ann", true),
            Err(CaseError::AlreadyResolved(3))
        ));
    }

    #[test]
    fn reassigning_keeps_a_met_sla() {
        let old = DateTime::from_timestamp(10, 0);
        let new = DateTime::from_timestamp(20, 0);
        assert_eq!(
            reassign(4, &claimed("ann"), false, old, new).ok(),
            Some(new)
        );
        assert_eq!(
            reassign(4, &EscalationStatus::Open, true, old, new).ok(),
            Some(old)
        );
        assert!(reassign(4, &resolved(), false, old, new).is_err());
    }

    #[test]
    fn a_breach_applies_once_and_never_to_a_resolved_case() {
        let due = DateTime::from_timestamp(10, 0).unwrap_or_default();
        let later = DateTime::from_timestamp(20, 0);
        assert!(breach_applies(&claimed("ann"), Some(due), due));
        assert!(!breach_applies(&claimed("ann"), later, due));
        assert!(!breach_applies(&resolved(), Some(due), due));
    }

    #[test]
    fn notes_need_an_escalation_and_dead_letters_never_take_an_open_case_s_place() {
        assert!(note(5, true).is_ok());
        assert!(matches!(
            note(5, false),
            Err(CaseError::NoSuchEscalation(5))
        ));
        assert_eq!(open_escalation_after(Some(1), 9), Some(1));
        assert_eq!(open_escalation_after(None, 9), Some(9));
    }
}
