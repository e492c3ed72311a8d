//! What one decided message changes, besides being stored: its conversation's counters, an
//! escalation opened or joined (and its priority raised), and the reply to queue, as far as
//! the channel's mode lets the decision act (see [`crate::mode`]): in `listen` no escalation
//! opens or grows, in `shadow` and `listen` no reply is queued.

use crate::decision::{Action, Decision, Priority};
use crate::mode::Mode;

use super::conversation::ConversationState;

/// The conversation's open escalation, as far as intake needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenEscalation<'a> {
    pub id: u64,
    pub team: &'a str,
    pub priority: Priority,
}

/// What happens to the conversation's escalations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EscalationEffect<'d> {
    None,
    /// A new escalation, with the decision's reasons as its reason.
    Open {
        team: &'d str,
        priority: Priority,
        reason: String,
    },
    /// The message joins the open escalation `id`.
    Join {
        id: u64,
        /// The priority after joining: the higher of the two.
        priority: Priority,
        /// From and to, when the message raised it.
        raised: Option<(Priority, Priority)>,
        /// The other team the message was meant for.
        other_team: Option<&'d str>,
    },
    /// A person owns the conversation: whatever the decision, the message goes to them in
    /// the open escalation `id` (the bot stays silent anyway).
    Follow {
        id: u64,
    },
}

/// Everything one decided message changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntakeEffects<'d> {
    pub escalation: EscalationEffect<'d>,
    /// Queue the decision's reply (it counts as an automatic reply).
    pub queue_reply: bool,
}

/// Whether intake must read the conversation's open escalation: only a message that may join
/// it does (one that escalates, or any while a person owns the conversation). Most messages
/// skip the read.
pub fn reads_open_escalation(mode: Mode, action: &Action, state: ConversationState) -> bool {
    mode.escalates()
        && (matches!(action, Action::Escalate { .. }) || state == ConversationState::Human)
}

/// What `decision`, taken in under `mode` into a conversation in `state` with `open` as its
/// open escalation (when [`reads_open_escalation`] asked for it), changes.
pub fn effects<'d>(
    mode: Mode,
    decision: &'d Decision,
    state: ConversationState,
    open: Option<OpenEscalation<'_>>,
) -> IntakeEffects<'d> {
    let escalation = match (&decision.action, open) {
        (Action::Escalate { .. }, _) if !mode.escalates() => EscalationEffect::None,
        (Action::Escalate { team, priority, .. }, Some(open)) => EscalationEffect::Join {
            id: open.id,
            priority: open.priority.max(*priority),
            raised: (*priority > open.priority).then_some((open.priority, *priority)),
            other_team: (team.as_str() != open.team).then_some(team.as_str()),
        },
        (Action::Escalate { team, priority, .. }, None) => EscalationEffect::Open {
            team,
            priority: *priority,
            reason: decision.diagnostics.reasons.join("; "),
        },
        (_, Some(open)) if mode.escalates() && state == ConversationState::Human => {
            EscalationEffect::Follow { id: open.id }
        }
        _ => EscalationEffect::None,
    };
    IntakeEffects {
        escalation,
        queue_reply: mode.sends_replies() && decision.action.reply().is_some(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::{Category, Diagnostics, Language, Sentiment, SentimentLabel};

    fn decision(action: Action) -> Decision {
        Decision {
            message_id: "m1".into(),
            action,
            diagnostics: Diagnostics {
                category: Category::Complaint,
                topics: Vec::new(),
                rules: Vec::new(),
                script_errors: Vec::new(),
                sentiment: Sentiment {
                    label: SentimentLabel::Negative,
                    score: -2,
                },
                language: Language::Nl,
                rulebook: "v1".into(),
                reasons: vec!["a".into(), "b".into()],
            },
        }
    }

    fn escalate(team: &str, priority: Priority) -> Decision {
        decision(Action::Escalate {
            team: team.into(),
            priority,
            reply: Some("we come back to you".into()),
            template: None,
        })
    }

    fn open(priority: Priority) -> Option<OpenEscalation<'static>> {
        Some(OpenEscalation {
            id: 7,
            team: "kcc",
            priority,
        })
    }

    #[test]
    fn an_escalation_opens_with_the_reasons_and_a_holding_reply() {
        let d = escalate("kcc", Priority::High);
        let e = effects(Mode::Live, &d, ConversationState::Bot, None);
        assert_eq!(
            e.escalation,
            EscalationEffect::Open {
                team: "kcc",
                priority: Priority::High,
                reason: "a; b".into()
            }
        );
        assert!(e.queue_reply);
    }

    #[test]
    fn a_second_escalation_joins_and_raises_the_priority() {
        let d = escalate("legal", Priority::Urgent);
        let e = effects(
            Mode::Live,
            &d,
            ConversationState::Bot,
            open(Priority::Normal),
        );
        assert_eq!(
            e.escalation,
            EscalationEffect::Join {
                id: 7,
                priority: Priority::Urgent,
                raised: Some((Priority::Normal, Priority::Urgent)),
                other_team: Some("legal"),
            }
        );
        let d = escalate("kcc", Priority::Low);
        let e = effects(Mode::Live, &d, ConversationState::Bot, open(Priority::High));
        assert_eq!(
            e.escalation,
            EscalationEffect::Join {
                id: 7,
                priority: Priority::High,
                raised: None,
                other_team: None,
            }
        );
    }

    #[test]
    fn during_a_handoff_every_message_follows_the_person() {
        let d = decision(Action::Log);
        assert!(reads_open_escalation(
            Mode::Live,
            &d.action,
            ConversationState::Human
        ));
        assert!(!reads_open_escalation(
            Mode::Live,
            &d.action,
            ConversationState::Bot
        ));
        let e = effects(
            Mode::Live,
            &d,
            ConversationState::Human,
            open(Priority::High),
        );
        assert_eq!(e.escalation, EscalationEffect::Follow { id: 7 });
        let e = effects(Mode::Live, &d, ConversationState::Bot, open(Priority::High));
        assert_eq!(e.escalation, EscalationEffect::None);
    }

    #[test]
    fn modes_limit_the_effects() {
        let d = escalate("kcc", Priority::High);
        let shadow = effects(Mode::Shadow, &d, ConversationState::Bot, None);
        assert!(matches!(shadow.escalation, EscalationEffect::Open { .. }));
        assert!(!shadow.queue_reply);
        assert!(!reads_open_escalation(
            Mode::Listen,
            &d.action,
            ConversationState::Human
        ));
        let listen = effects(Mode::Listen, &d, ConversationState::Human, None);
        assert_eq!(listen.escalation, EscalationEffect::None);
        assert!(!listen.queue_reply);
    }
}
