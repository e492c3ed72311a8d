//! What one decided message changes, besides being stored: its conversation's counters, an
//! escalation opened, joined or reopened for the team the decision names (and its priority
//! raised), a satisfaction answer, and the reply to queue, as far as
//! the channel's mode lets the decision act (see [`crate::mode`]): in `listen` no escalation
//! opens or grows, in `shadow` and `listen` no reply is queued.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;

use crate::decision::{Action, Decision, Priority};
use crate::mode::Mode;
use crate::teams::Teams;

use super::conversation::ConversationState;
use super::state::{DEFAULT_REOPEN_DAYS, may_reopen};

/// One escalation of the conversation, as far as intake needs it: the open ones (which a
/// message for their team joins), the recently resolved ones (which it may reopen), and the
/// one whose satisfaction question awaits an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownEscalation<'a> {
    pub id: u64,
    pub team: &'a str,
    pub priority: Priority,
    /// `None` while open or claimed.
    pub resolved_at: Option<DateTime<Utc>>,
    /// Its satisfaction question was asked and not answered yet.
    pub survey_pending: bool,
}

impl KnownEscalation<'_> {
    pub fn is_open(&self) -> bool {
        self.resolved_at.is_none()
    }
}

/// The conversation's escalations intake looks at, with the one a person's handoff follows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Escalations<'a> {
    pub known: Vec<KnownEscalation<'a>>,
    /// The conversation's open escalation a handed-off conversation's messages follow.
    pub primary: Option<u64>,
}

/// What a message brings to the case rules besides its decision, made where the rulebook is
/// at hand (see [`crate::intake`]).
#[derive(Debug, Clone)]
pub struct CaseInput {
    /// How long after its resolution a message for the same team reopens an escalation.
    pub reopen_within: Duration,
    /// What a next response's deadline is counted from: set only when the message may join
    /// or reopen an escalation. Which one it reaches is known only in the store's transaction,
    /// so the deadline is worked out there, for that escalation's team and priority alone,
    /// rather than for every team and priority beforehand.
    pub next_due: Option<NextDue>,
    /// The message is a score answering the conversation's satisfaction question.
    pub score: Option<u8>,
    /// The message is only an attachment (a location, a photo) to what the customer said
    /// before: it joins their latest open escalation, whatever team it would name itself.
    pub attachment_only: bool,
}

impl Default for CaseInput {
    fn default() -> Self {
        CaseInput {
            reopen_within: Duration::days(i64::from(DEFAULT_REOPEN_DAYS)),
            next_due: None,
            score: None,
            attachment_only: false,
        }
    }
}

impl CaseInput {
    /// The next-response deadline for `team` at `priority`.
    pub fn next_due(&self, team: &str, priority: Priority) -> Option<DateTime<Utc>> {
        let from = self.next_due.as_ref()?;
        let due = from
            .teams
            .get(team)?
            .sla_deadline(from.received, priority)?;
        Some(due.with_timezone(&Utc))
    }
}

/// The rulebook's teams and the message's receipt in their time zone: what a next-response
/// deadline is counted from.
#[derive(Debug, Clone)]
pub struct NextDue {
    pub teams: Arc<Teams>,
    pub received: DateTime<Tz>,
}

/// What happens to the conversation's escalations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EscalationEffect<'d> {
    None,
    /// A new escalation for the decision's team, with the decision's reasons as its reason,
    /// linked to the conversation's other open escalations (`linked`).
    Open {
        team: &'d str,
        priority: Priority,
        reason: String,
        linked: Vec<u64>,
    },
    /// The message joins the open escalation `id` of the same team.
    Join {
        id: u64,
        /// The priority after joining: the higher of the two.
        priority: Priority,
        /// From and to, when the message raised it.
        raised: Option<(Priority, Priority)>,
    },
    /// The message reopens the escalation `id` of the same team, resolved within the
    /// rulebook's reopen period.
    Reopen {
        id: u64,
        priority: Priority,
        raised: Option<(Priority, Priority)>,
    },
    /// A person owns the conversation: a message that does not escalate goes to them in the
    /// open escalation `id` (the bot stays silent anyway).
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
    /// The score answers the satisfaction question of escalation `.0`.
    pub answer: Option<(u64, u8)>,
    /// The conversation no longer waits for a score: whatever the customer wrote next ends
    /// the wait.
    pub survey_ends: bool,
}

/// Whether intake must read the conversation's escalations: only a message that may join,
/// reopen or answer one does (one that escalates, any while a person owns the conversation,
/// or a score while a question waits). Most messages skip the read.
pub fn reads_escalations(
    mode: Mode,
    action: &Action,
    state: ConversationState,
    awaiting_score: bool,
) -> bool {
    awaiting_score
        || (mode.escalates()
            && (matches!(action, Action::Escalate { .. }) || state == ConversationState::Human))
}

/// Whether the reply of `decision` is queued, for a message that answers no satisfaction
/// question (one that does queues nothing). [`effects`] says so; a batch that decides a
/// conversation's next message before this one is stored counts the reply by it too.
pub fn queues_reply(mode: Mode, decision: &Decision) -> bool {
    mode.sends_replies() && decision.action.reply().is_some()
}

/// What `decision`, taken in under `mode` into a conversation in `state` with `escalations`
/// (when [`reads_escalations`] asked for them), changes. `received`: when the customer wrote.
///
/// Each message reaches the team its decision names: it joins that team's open escalation, or
/// reopens that team's recently resolved one, or opens a new one for that team, linked to the
/// conversation's others. So a press question inside a complaint conversation lands in
/// Communications' queue with a holding reply that names Communications, and answering the
/// complaint does not answer it. An attachment without words (the location of the fallen tree
/// just reported to the crisis team) has no team of its own: it joins the latest open
/// escalation, where the person handling the report needs it.
pub fn effects<'d>(
    mode: Mode,
    decision: &'d Decision,
    state: ConversationState,
    escalations: &Escalations<'_>,
    received: DateTime<Utc>,
    input: &CaseInput,
    awaiting_score: bool,
) -> IntakeEffects<'d> {
    let answer = input.score.and_then(|score| {
        escalations
            .known
            .iter()
            .rev()
            .find(|k| k.survey_pending)
            .map(|k| (k.id, score))
    });
    if answer.is_some() {
        return IntakeEffects {
            escalation: EscalationEffect::None,
            queue_reply: false,
            answer,
            survey_ends: true,
        };
    }
    let raise = |from: Priority, to: Priority| (to > from).then_some((from, to));
    let escalation = match &decision.action {
        Action::Escalate { .. } if !mode.escalates() => EscalationEffect::None,
        Action::Escalate { team, priority, .. } => {
            let same = |k: &&KnownEscalation<'_>| k.team == team.as_str();
            let mut open = escalations.known.iter().filter(|k| k.is_open());
            let joins = if input.attachment_only {
                open.max_by_key(|k| k.id)
            } else {
                open.find(same)
            };
            if let Some(open) = joins {
                EscalationEffect::Join {
                    id: open.id,
                    priority: open.priority.max(*priority),
                    raised: raise(open.priority, *priority),
                }
            } else if let Some(resolved) = escalations
                .known
                .iter()
                .filter(same)
                .filter(|k| may_reopen(k.resolved_at, received, input.reopen_within))
                .max_by_key(|k| k.resolved_at)
            {
                EscalationEffect::Reopen {
                    id: resolved.id,
                    priority: resolved.priority.max(*priority),
                    raised: raise(resolved.priority, *priority),
                }
            } else {
                EscalationEffect::Open {
                    team,
                    priority: *priority,
                    reason: decision.diagnostics.reasons.join("; "),
                    linked: escalations
                        .known
                        .iter()
                        .filter(|k| k.is_open())
                        .map(|k| k.id)
                        .collect(),
                }
            }
        }
        _ if mode.escalates() && state == ConversationState::Human => match escalations.primary {
            Some(id) => EscalationEffect::Follow { id },
            None => EscalationEffect::None,
        },
        _ => EscalationEffect::None,
    };
    IntakeEffects {
        escalation,
        queue_reply: queues_reply(mode, decision),
        answer: None,
        survey_ends: awaiting_score,
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

    fn t(h: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_795_000_000 + h * 3600, 0).unwrap_or_default()
    }

    fn known(team: &str, priority: Priority, resolved: Option<i64>) -> KnownEscalation<'_> {
        KnownEscalation {
            id: 7,
            team,
            priority,
            resolved_at: resolved.map(t),
            survey_pending: false,
        }
    }

    fn open(priority: Priority) -> Escalations<'static> {
        Escalations {
            known: vec![known("kcc", priority, None)],
            primary: Some(7),
        }
    }

    fn run<'d>(
        d: &'d Decision,
        state: ConversationState,
        e: &Escalations<'_>,
    ) -> IntakeEffects<'d> {
        effects(Mode::Live, d, state, e, t(10), &CaseInput::default(), false)
    }

    #[test]
    fn an_escalation_opens_with_the_reasons_and_a_holding_reply() {
        let d = escalate("kcc", Priority::High);
        let e = run(&d, ConversationState::Bot, &Escalations::default());
        assert_eq!(
            e.escalation,
            EscalationEffect::Open {
                team: "kcc",
                priority: Priority::High,
                reason: "a; b".into(),
                linked: Vec::new(),
            }
        );
        assert!(e.queue_reply);
    }

    #[test]
    fn a_message_for_the_same_team_joins_and_raises_the_priority() {
        let d = escalate("kcc", Priority::Urgent);
        let e = run(&d, ConversationState::Bot, &open(Priority::Normal));
        assert_eq!(
            e.escalation,
            EscalationEffect::Join {
                id: 7,
                priority: Priority::Urgent,
                raised: Some((Priority::Normal, Priority::Urgent)),
            }
        );
        let d = escalate("kcc", Priority::Low);
        let e = run(&d, ConversationState::Bot, &open(Priority::High));
        assert_eq!(
            e.escalation,
            EscalationEffect::Join {
                id: 7,
                priority: Priority::High,
                raised: None,
            }
        );
    }

    #[test]
    fn a_message_for_another_team_opens_that_team_s_own_escalation_linked() {
        // The press question in a complaint conversation: Communications' own escalation,
        // also while a person owns the complaint.
        let d = escalate("communicatie", Priority::High);
        for state in [ConversationState::Bot, ConversationState::Human] {
            let e = run(&d, state, &open(Priority::Normal));
            assert_eq!(
                e.escalation,
                EscalationEffect::Open {
                    team: "communicatie",
                    priority: Priority::High,
                    reason: "a; b".into(),
                    linked: vec![7],
                }
            );
            assert!(
                e.queue_reply,
                "its holding reply names the team that sees it"
            );
        }
    }

    #[test]
    fn a_message_reopens_the_same_team_s_case_within_the_period_only() {
        let d = escalate("kcc", Priority::High);
        let resolved = Escalations {
            known: vec![known("kcc", Priority::Normal, Some(0))],
            primary: None,
        };
        let e = run(&d, ConversationState::Bot, &resolved);
        assert_eq!(
            e.escalation,
            EscalationEffect::Reopen {
                id: 7,
                priority: Priority::High,
                raised: Some((Priority::Normal, Priority::High)),
            }
        );
        let short = CaseInput {
            reopen_within: Duration::hours(2),
            ..CaseInput::default()
        };
        let e = effects(
            Mode::Live,
            &d,
            ConversationState::Bot,
            &resolved,
            t(10),
            &short,
            false,
        );
        assert!(matches!(e.escalation, EscalationEffect::Open { .. }));
        let other = escalate("legal", Priority::High);
        let e = run(&other, ConversationState::Bot, &resolved);
        assert!(matches!(e.escalation, EscalationEffect::Open { .. }));
    }

    #[test]
    fn an_attachment_without_words_joins_the_latest_open_escalation_whatever_its_team() {
        let mut two = Escalations {
            known: vec![
                known("kcc", Priority::Normal, None),
                known("crisis", Priority::Urgent, None),
            ],
            primary: Some(7),
        };
        two.known[1].id = 8;
        let location = escalate("kcc", Priority::Normal);
        let attachment = CaseInput {
            attachment_only: true,
            ..CaseInput::default()
        };
        let e = effects(
            Mode::Live,
            &location,
            ConversationState::Bot,
            &two,
            t(10),
            &attachment,
            false,
        );
        assert_eq!(
            e.escalation,
            EscalationEffect::Join {
                id: 8,
                priority: Priority::Urgent,
                raised: None
            }
        );
        // The same words typed out are a message of their own: the team they name.
        let e = run(&location, ConversationState::Bot, &two);
        assert!(matches!(e.escalation, EscalationEffect::Join { id: 7, .. }));
        // With nothing open there is nothing to add to: it opens its own.
        let e = effects(
            Mode::Live,
            &location,
            ConversationState::Bot,
            &Escalations::default(),
            t(10),
            &attachment,
            false,
        );
        assert!(matches!(
            e.escalation,
            EscalationEffect::Open { team: "kcc", .. }
        ));
    }

    #[test]
    fn a_score_answers_the_waiting_question_and_anything_else_ends_the_wait() {
        let d = decision(Action::Log);
        let mut asked = Escalations {
            known: vec![known("kcc", Priority::Normal, Some(0))],
            primary: None,
        };
        asked.known[0].survey_pending = true;
        let score = CaseInput {
            score: Some(4),
            ..CaseInput::default()
        };
        let e = effects(
            Mode::Live,
            &d,
            ConversationState::Bot,
            &asked,
            t(1),
            &score,
            true,
        );
        assert_eq!(e.answer, Some((7, 4)));
        assert_eq!(e.escalation, EscalationEffect::None);
        assert!(e.survey_ends && !e.queue_reply);
        let other = escalate("kcc", Priority::Normal);
        let e = effects(
            Mode::Live,
            &other,
            ConversationState::Bot,
            &asked,
            t(1),
            &CaseInput::default(),
            true,
        );
        assert_eq!(e.answer, None);
        assert!(e.survey_ends);
        assert!(matches!(e.escalation, EscalationEffect::Reopen { .. }));
    }

    #[test]
    fn during_a_handoff_every_message_follows_the_person() {
        let d = decision(Action::Log);
        assert!(reads_escalations(
            Mode::Live,
            &d.action,
            ConversationState::Human,
            false
        ));
        assert!(!reads_escalations(
            Mode::Live,
            &d.action,
            ConversationState::Bot,
            false
        ));
        assert!(reads_escalations(
            Mode::Live,
            &d.action,
            ConversationState::Bot,
            true
        ));
        let e = run(&d, ConversationState::Human, &open(Priority::High));
        assert_eq!(e.escalation, EscalationEffect::Follow { id: 7 });
        let e = run(&d, ConversationState::Bot, &open(Priority::High));
        assert_eq!(e.escalation, EscalationEffect::None);
    }

    #[test]
    fn modes_limit_the_effects() {
        let d = escalate("kcc", Priority::High);
        let none = Escalations::default();
        let shadow = effects(
            Mode::Shadow,
            &d,
            ConversationState::Bot,
            &none,
            t(0),
            &CaseInput::default(),
            false,
        );
        assert!(matches!(shadow.escalation, EscalationEffect::Open { .. }));
        assert!(!shadow.queue_reply);
        assert!(!reads_escalations(
            Mode::Listen,
            &d.action,
            ConversationState::Human,
            false
        ));
        let listen = effects(
            Mode::Listen,
            &d,
            ConversationState::Human,
            &none,
            t(0),
            &CaseInput::default(),
            false,
        );
        assert_eq!(listen.escalation, EscalationEffect::None);
        assert!(!listen.queue_reply);
    }
}
