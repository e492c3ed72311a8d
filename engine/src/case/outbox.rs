//! A reply's way out: pending until it is sent, retried after a failure, postponed when the
//! platform asks to wait (without counting an attempt), given up (dead) when retries run out.
//! A finished reply (sent or dead) never changes again. And the order: replies to one
//! conversation go out in the order they were queued, so a later one waits while an earlier
//! one is still pending, also while that one waits for a retry.
//!
//! After a reply is sent the platform may still report on it ([`Receipt`]): delivered, read,
//! or failed after all (Meta's delivery statuses). That report is kept beside the finished
//! reply, so the team sees in the inbox whether the customer got it, without the reply's own
//! state changing.

use std::collections::HashSet;
use std::hash::Hash;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::error::CaseError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum OutboxStatus {
    Pending,
    Sent {
        at: DateTime<Utc>,
    },
    /// Given up after failures; a human must look.
    Dead,
}

/// A reply's delivery state: everything about it that changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub status: OutboxStatus,
    pub attempts: u32,
    pub last_error: Option<String>,
    /// `None`: at once (when it was created).
    pub next_attempt_at: Option<DateTime<Utc>>,
}

impl Delivery {
    /// A reply just queued.
    pub fn new() -> Self {
        Delivery {
            status: OutboxStatus::Pending,
            attempts: 0,
            last_error: None,
            next_attempt_at: None,
        }
    }

    /// A reply that went out in the answer to its own delivery: sent the moment it was queued,
    /// with one attempt, as if the worker had sent it.
    pub fn sent_inline(now: DateTime<Utc>) -> Self {
        Delivery {
            status: OutboxStatus::Sent { at: now },
            attempts: 1,
            ..Delivery::new()
        }
    }

    fn pending(&self, id: u64) -> Result<(), CaseError> {
        match self.status {
            OutboxStatus::Pending => Ok(()),
            _ => Err(CaseError::OutboxFinished(id)),
        }
    }

    /// The platform took reply `id`.
    pub fn sent(&mut self, id: u64, now: DateTime<Utc>) -> Result<(), CaseError> {
        self.pending(id)?;
        self.attempts += 1;
        self.status = OutboxStatus::Sent { at: now };
        Ok(())
    }

    /// A send failed: try again at `retry_at`, or give up (`None`).
    pub fn failed(
        &mut self,
        id: u64,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<(), CaseError> {
        self.pending(id)?;
        self.attempts += 1;
        self.last_error = Some(error.to_owned());
        match retry_at {
            Some(at) => self.next_attempt_at = Some(at),
            None => self.status = OutboxStatus::Dead,
        }
        Ok(())
    }

    /// The platform asked to wait: no attempt is counted, so waiting never brings a reply
    /// closer to being given up.
    pub fn postponed(
        &mut self,
        id: u64,
        reason: &str,
        retry_at: DateTime<Utc>,
    ) -> Result<(), CaseError> {
        self.pending(id)?;
        self.last_error = Some(reason.to_owned());
        self.next_attempt_at = Some(retry_at);
        Ok(())
    }

    /// Given up for good: a person must take over (see [`super::escalation`]).
    pub fn dead_letter(&mut self, id: u64, error: &str) -> Result<(), CaseError> {
        self.failed(id, error, None)
    }

    /// Whether the reply may be sent at `now`, as far as its own retry time goes.
    pub fn due(&self, now: DateTime<Utc>) -> bool {
        self.status == OutboxStatus::Pending && self.next_attempt_at.is_none_or(|t| t <= now)
    }
}

impl Default for Delivery {
    fn default() -> Self {
        Delivery::new()
    }
}

/// What a platform reported about a reply after it took it (WhatsApp's delivery statuses).
/// Each time is the first report of its kind: a webhook is posted again after a failure.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_at: Option<DateTime<Utc>>,
    /// The platform could not deliver it after all, with its error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<PlatformFailure>,
}

/// A platform's failure report for a reply it had taken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlatformFailure {
    pub at: DateTime<Utc>,
    /// The platform's error code (Graph API: 131026 undeliverable, 131047 window closed, …).
    pub code: i64,
    /// The platform's title or message for it.
    pub title: String,
}

/// One platform report about a sent reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReceiptEvent {
    Delivered,
    Read,
    Failed { code: i64, title: String },
}

impl Receipt {
    /// Takes in a report made at `at`; whether anything changed. Reports arrive out of order
    /// and more than once, so the first of each kind is kept. A failure after the customer
    /// read the reply is kept too (the platform said it), but never hides the read.
    pub fn apply(&mut self, event: &ReceiptEvent, at: DateTime<Utc>) -> bool {
        let slot = match event {
            ReceiptEvent::Delivered => &mut self.delivered_at,
            ReceiptEvent::Read => &mut self.read_at,
            ReceiptEvent::Failed { code, title } => {
                if self.failed.is_some() {
                    return false;
                }
                self.failed = Some(PlatformFailure {
                    at,
                    code: *code,
                    title: title.clone(),
                });
                return true;
            }
        };
        if slot.is_some() {
            return false;
        }
        *slot = Some(at);
        true
    }
}

/// Order per conversation: of the pending replies, taken in the order they were queued, only
/// the first of each conversation may go out; the later ones wait for it, also while it waits
/// for a retry. Otherwise a failing callback lets later replies overtake an earlier one.
#[derive(Debug)]
pub struct InOrder<C> {
    seen: HashSet<C>,
}

impl<C: Eq + Hash> InOrder<C> {
    pub fn new() -> Self {
        InOrder {
            seen: HashSet::new(),
        }
    }

    /// Whether the next pending reply (in queue order), of `conversation` and `due` by its own
    /// retry time, may go out now.
    pub fn admits(&mut self, conversation: C, due: bool) -> bool {
        self.seen.insert(conversation) && due
    }
}

impl<C: Eq + Hash> Default for InOrder<C> {
    fn default() -> Self {
        InOrder::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(s, 0).unwrap_or_default()
    }

    #[test]
    fn a_reply_is_retried_then_given_up_and_then_never_changes() {
        let mut d = Delivery::new();
        assert!(d.due(t(0)));
        d.failed(1, "502", Some(t(60))).ok();
        assert_eq!((d.attempts, d.due(t(30)), d.due(t(60))), (1, false, true));
        d.postponed(1, "429", t(90)).ok();
        assert_eq!((d.attempts, d.last_error.as_deref()), (1, Some("429")));
        d.dead_letter(1, "gone").ok();
        assert_eq!((d.status.clone(), d.attempts), (OutboxStatus::Dead, 2));
        assert!(matches!(
            d.sent(1, t(100)),
            Err(CaseError::OutboxFinished(1))
        ));
        assert!(matches!(
            d.failed(1, "x", None),
            Err(CaseError::OutboxFinished(1))
        ));
    }

    #[test]
    fn a_sent_reply_is_finished() {
        let mut d = Delivery::new();
        d.sent(2, t(5)).ok();
        assert_eq!(
            (d.status.clone(), d.attempts),
            (OutboxStatus::Sent { at: t(5) }, 1)
        );
        assert!(matches!(
            d.postponed(2, "x", t(9)),
            Err(CaseError::OutboxFinished(2))
        ));
    }

    #[test]
    fn a_receipt_keeps_the_first_report_of_each_kind() {
        let mut r = Receipt::default();
        assert!(r.apply(&ReceiptEvent::Read, t(20)));
        assert!(r.apply(&ReceiptEvent::Delivered, t(10)));
        assert!(!r.apply(&ReceiptEvent::Delivered, t(30)), "a repeat");
        let failed = ReceiptEvent::Failed {
            code: 131026,
            title: "Message undeliverable".into(),
        };
        assert!(r.apply(&failed, t(40)));
        assert!(!r.apply(&failed, t(50)));
        assert_eq!(
            (r.delivered_at, r.read_at, r.failed.map(|f| (f.code, f.at))),
            (Some(t(10)), Some(t(20)), Some((131026, t(40))))
        );
        let json = serde_json::to_string(&Receipt::default()).unwrap_or_default();
        assert_eq!(json, "{}", "an empty receipt stores nothing");
    }

    #[test]
    fn a_later_reply_waits_for_an_earlier_one_of_its_conversation() {
        // b0 waits for a retry; b1 (same conversation) must wait too; c0 goes.
        let mut order = InOrder::new();
        let replies = [("b", false), ("b", true), ("c", true), ("b", true)];
        let admitted: Vec<bool> = replies.map(|(c, due)| order.admits(c, due)).to_vec();
        assert_eq!(admitted, vec![false, false, true, false]);
        let mut order = InOrder::new();
        assert_eq!(
            (order.admits("b", true), order.admits("b", true)),
            (true, false)
        );
    }
}
