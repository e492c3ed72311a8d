//! Customer satisfaction (klanttevredenheid): after a person resolves an escalation, webcare may
//! ask the customer in the same channel for a score of 1 to 5, and takes the next message that
//! is a score as the answer instead of deciding it as a new message.
//!
//! The rules, as Zendesk and Chatwoot apply them and the webcare literature asks: off unless
//! the rulebook turns it on; asked only after a person resolved the case (never after the bot);
//! never after a critical category (a journalist, a lawyer, a crisis, a threat or a person in
//! distress is not asked to rate the service); never twice to the same customer within the
//! rulebook's period; the question is a reviewed template, in the customer's language. Only the
//! customer's very next message can answer: anything else they write ends the wait and is
//! decided as usual.

use chrono::{DateTime, Duration, Utc};

use super::escalation::EscalationStatus;
use super::state::CaseState;
use crate::decision::{
    Action, Category, Decision, Diagnostics, Language, Sentiment, SentimentLabel,
};
use crate::message::Inbound;
use crate::rulebook::Rulebook;

/// The rulebook's `[cases.satisfaction]`, compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SurveyPolicy {
    /// The template that asks (reviewed and versioned like every reply).
    pub template: String,
    /// A customer is asked at most once in this period.
    pub every: Duration,
}

/// What a store needs to ask when a person resolves an escalation: the period, and the
/// question in both languages, rendered from the rulebook's template by the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SurveyAsk {
    pub every: Duration,
    pub nl: String,
    pub en: String,
}

impl SurveyAsk {
    /// The question in the customer's language (Dutch when unknown).
    pub fn question(&self, language: Option<Language>) -> &str {
        match language {
            Some(Language::En) => &self.en,
            _ => &self.nl,
        }
    }
}

/// Whether to ask the customer of the escalation `case`, which `agent` just resolved at
/// `now` from `status`, for a score. `last_asked`: when this customer was last asked, on any
/// escalation.
pub fn should_ask(
    case: &CaseState,
    status: &EscalationStatus,
    agent: &str,
    last_asked: Option<DateTime<Utc>>,
    policy: &SurveyAsk,
    now: DateTime<Utc>,
) -> bool {
    let by_person = agent != super::history::ENGINE && agent != super::history::SLA;
    by_person
        && !status.is_resolved()
        && !case.critical
        && case.author.is_some()
        && case.survey.is_none()
        && last_asked.is_none_or(|at| now - at >= policy.every)
}

/// The rule a satisfaction answer's decision names: how `webcare replay` and the reports
/// know a stored message was a score, not a message decided by the rulebook.
pub const RULE: &str = "engine:satisfaction";

/// The decision stored for a satisfaction answer: logged, never replied to or escalated.
pub fn answer(message: &Inbound, score: u8, rulebook: &Rulebook) -> Decision {
    Decision {
        message_id: message.id.clone(),
        action: Action::Log,
        diagnostics: Diagnostics {
            category: Category::Unknown,
            topics: Vec::new(),
            rules: vec![RULE.into()],
            script_errors: Vec::new(),
            sentiment: Sentiment {
                label: SentimentLabel::Neutral,
                score: 0,
            },
            language: rulebook.default_language,
            rulebook: rulebook.version.clone(),
            reasons: vec![format!("answers the satisfaction question: {score} of 5")],
        },
    }
}

/// Whether `decision` was stored for a satisfaction answer ([`answer`]).
pub fn is_answer(decision: &Decision) -> bool {
    decision.diagnostics.rules.iter().any(|r| r == RULE)
}

/// What replaying a stored message with `rulebook` gives, as intake would have taken it: a
/// stored satisfaction answer stays an answer (its score was what it was; deciding its `4`
/// as a new message would report a change no customer could cause), anything else is
/// decided again with the facts it was first decided with.
pub fn replay(
    rulebook: &Rulebook,
    message: &Inbound,
    stored: &Decision,
    context: &crate::context::DecideContext,
) -> Decision {
    if !is_answer(stored) {
        return rulebook.decide(message, context);
    }
    match score(&message.text) {
        Some(score) => answer(message, score, rulebook),
        // Redacted text no longer shows the score; the stored answer is the answer.
        None => stored.clone(),
    }
}

/// The score in a customer's reply, when the whole reply is one: `4`, `4/5`, `4 van 5`,
/// `4 out of 5`, `score: 4`, `****` or ⭐⭐⭐⭐, a number word (`vier`, `four`), with
/// punctuation around it. Anything more is a message of its own.
pub fn score(text: &str) -> Option<u8> {
    let t = text
        .trim()
        .trim_matches(|c: char| c.is_ascii_punctuation() && c != '*')
        .trim()
        .to_lowercase();
    let t = t
        .strip_prefix("score")
        .or_else(|| t.strip_prefix("cijfer"))
        .map_or(t.as_str(), |rest| rest.trim_start_matches([':', ' ']))
        .trim();
    if !t.is_empty() && t.chars().all(|c| c == '*' || c == '⭐' || c == '★') {
        let n = t.chars().count();
        return (1..=5).contains(&n).then_some(n as u8);
    }
    let t = ["/5", "/ 5", " van 5", " uit 5", " out of 5", " of 5"]
        .iter()
        .find_map(|suffix| t.strip_suffix(suffix))
        .unwrap_or(t)
        .trim();
    let n = match t {
        "1" | "een" | "één" | "one" => 1,
        "2" | "twee" | "two" => 2,
        "3" | "drie" | "three" => 3,
        "4" | "vier" | "four" => 4,
        "5" | "vijf" | "five" => 5,
        _ => return None,
    };
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::Category;

    fn t(d: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_795_000_000 + d * 86_400, 0).unwrap_or_default()
    }

    fn case(category: Category) -> CaseState {
        CaseState::opened(t(0), t(0), None, "citizen", category, Language::Nl)
    }

    fn policy() -> SurveyAsk {
        SurveyAsk {
            every: Duration::days(30),
            nl: "Hoe tevreden bent u?".into(),
            en: "How satisfied are you?".into(),
        }
    }

    #[test]
    fn asked_once_a_period_after_a_person_never_after_a_critical_category() {
        let open = EscalationStatus::Open;
        let p = policy();
        assert!(should_ask(
            &case(Category::Complaint),
            &open,
            "ann",
            None,
            &p,
            t(1)
        ));
        assert!(!should_ask(
            &case(Category::Press),
            &open,
            "ann",
            None,
            &p,
            t(1)
        ));
        let mut joined = case(Category::Complaint);
        joined.critical = true;
        assert!(!should_ask(&joined, &open, "ann", None, &p, t(1)));
        // Once in 30 days per customer.
        let c = case(Category::Question);
        assert!(!should_ask(&c, &open, "ann", Some(t(0)), &p, t(29)));
        assert!(should_ask(&c, &open, "ann", Some(t(0)), &p, t(30)));
        // Not when the engine closes a case, nor an escalation without a known customer.
        assert!(!should_ask(&c, &open, "engine", None, &p, t(1)));
        assert!(!should_ask(
            &CaseState::default(),
            &open,
            "ann",
            None,
            &p,
            t(1)
        ));
        let resolved = EscalationStatus::Resolved { by: "x".into() };
        assert!(!should_ask(&c, &resolved, "ann", None, &p, t(1)));
    }

    #[test]
    fn a_whole_reply_that_is_a_score_is_one() {
        for (text, n) in [
            ("4", 4),
            (" 5! ", 5),
            ("3/5", 3),
            ("2 van 5", 2),
            ("Score: 1", 1),
            ("vier", 4),
            ("Five.", 5),
            ("⭐⭐⭐", 3),
            ("**", 2),
        ] {
            assert_eq!(score(text), Some(n), "{text}");
        }
        for text in [
            "0",
            "6",
            "",
            "4 uur wachten is te lang",
            "1234",
            "******",
            "ik geef een 4",
        ] {
            assert_eq!(score(text), None, "{text}");
        }
    }
}
