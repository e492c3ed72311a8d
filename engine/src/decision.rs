//! What the engine concludes about one message. A [`Decision`] is exactly one of answer, escalate
//! or log, and it always carries its [`Diagnostics`]: a governance lead must be able to ask "why?"
//! of any decision, long after it was made, and get the rules and the rulebook version that made it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The kind of message, as webcare practice sorts them. Closed: reports, scripts and governance
/// rules are written against these names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    Question,
    Complaint,
    Report,
    Compliment,
    Press,
    Legal,
    Crisis,
    Abuse,
    Spam,
    Idea,
    Lead,
    /// No topic matched.
    Unknown,
    /// A person in distress: suicidal, unsafe at home, nowhere to sleep, no money for food.
    /// Always a person, day and night, never a template answer.
    Distress,
}

impl Category {
    /// Stored records keep a category as its index here, so new categories go at the end.
    pub const ALL: [Category; 13] = [
        Category::Question,
        Category::Complaint,
        Category::Report,
        Category::Compliment,
        Category::Press,
        Category::Legal,
        Category::Crisis,
        Category::Abuse,
        Category::Spam,
        Category::Idea,
        Category::Lead,
        Category::Unknown,
        Category::Distress,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Category::Question => "question",
            Category::Complaint => "complaint",
            Category::Report => "report",
            Category::Compliment => "compliment",
            Category::Press => "press",
            Category::Legal => "legal",
            Category::Crisis => "crisis",
            Category::Abuse => "abuse",
            Category::Spam => "spam",
            Category::Idea => "idea",
            Category::Lead => "lead",
            Category::Unknown => "unknown",
            Category::Distress => "distress",
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Category {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Category::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Category::ALL.iter().map(|c| c.as_str()).collect();
                format!(
                    "unknown category `{s}`; expected one of {}",
                    names.join(", ")
                )
            })
    }
}

/// How fast a human must look at an escalation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    Low,
    Normal,
    High,
    Urgent,
}

impl Priority {
    pub const ALL: [Priority; 4] = [
        Priority::Low,
        Priority::Normal,
        Priority::High,
        Priority::Urgent,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Normal => "normal",
            Priority::High => "high",
            Priority::Urgent => "urgent",
        }
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Priority {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Priority::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| format!("unknown priority `{s}`; expected low, normal, high or urgent"))
    }
}

/// The languages the rulebook writes templates in. The message language is guessed from common
/// words; replies are sent in it, falling back to the rulebook's default language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    Nl,
    En,
}

impl Language {
    pub fn as_str(self) -> &'static str {
        match self {
            Language::Nl => "nl",
            Language::En => "en",
        }
    }
}

impl FromStr for Language {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "nl" => Ok(Language::Nl),
            "en" => Ok(Language::En),
            _ => Err(format!("unknown language `{s}`; expected nl or en")),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SentimentLabel {
    Negative,
    Neutral,
    Positive,
}

impl SentimentLabel {
    pub fn as_str(self) -> &'static str {
        match self {
            SentimentLabel::Negative => "negative",
            SentimentLabel::Neutral => "neutral",
            SentimentLabel::Positive => "positive",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sentiment {
    pub label: SentimentLabel,
    /// Sum of the lexicon scores of the words in the message, negations flipped.
    pub score: i32,
}

/// The one thing that happens to a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "lowercase")]
pub enum Action {
    /// An automatic reply, rendered from a reviewed template.
    Answer { template: String, reply: String },
    /// A human team takes over; the customer gets a truthful holding reply when there is one.
    Escalate {
        team: String,
        priority: Priority,
        template: Option<String>,
        reply: Option<String>,
    },
    /// Recorded for reporting only; nothing is sent.
    Log,
}

impl Action {
    pub fn name(&self) -> &'static str {
        match self {
            Action::Answer { .. } => "answer",
            Action::Escalate { .. } => "escalate",
            Action::Log => "log",
        }
    }

    /// The text the customer receives, if any.
    pub fn reply(&self) -> Option<&str> {
        match self {
            Action::Answer { reply, .. } => Some(reply),
            Action::Escalate { reply, .. } => reply.as_deref(),
            Action::Log => None,
        }
    }

    pub fn team(&self) -> Option<&str> {
        match self {
            Action::Escalate { team, .. } => Some(team),
            _ => None,
        }
    }

    pub fn priority(&self) -> Option<Priority> {
        match self {
            Action::Escalate { priority, .. } => Some(*priority),
            _ => None,
        }
    }
}

/// A topic that matched, with the keywords or patterns that made it match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicMatch {
    pub topic: String,
    pub category: Category,
    /// Keywords as written in the rulebook (`pas*`), and patterns as `/regex/`.
    pub matched: Vec<String>,
}

/// Everything needed to explain a decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Diagnostics {
    pub category: Category,
    /// Matched topics, strongest first (category precedence, then rulebook order).
    pub topics: Vec<TopicMatch>,
    /// The rules that shaped the decision: script lines (`escalation.rhai:12`) and engine rules.
    pub rules: Vec<String>,
    /// Script failures that forced the fail-safe; empty when the scripts ran cleanly.
    pub script_errors: Vec<String>,
    pub sentiment: Sentiment,
    pub language: Language,
    /// The content hash of the rulebook that decided.
    pub rulebook: String,
    /// Plain-language reasons, in the order they were given.
    pub reasons: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub message_id: String,
    #[serde(flatten)]
    pub action: Action,
    pub diagnostics: Diagnostics,
}

impl Decision {
    pub fn topic_ids(&self) -> impl Iterator<Item = &str> {
        self.diagnostics.topics.iter().map(|t| t.topic.as_str())
    }
}

/// The flat, stable JSON shape of a decision that `webcare replay` writes and other tools read:
/// every key is always present (null when it does not apply), so a consumer never has to guess.
#[derive(Debug, Serialize)]
pub struct DecisionRecord<'a> {
    pub id: &'a str,
    pub action: &'static str,
    pub category: Category,
    pub team: Option<&'a str>,
    pub priority: Option<Priority>,
    pub topics: Vec<&'a str>,
    pub template: Option<&'a str>,
    pub reply: Option<&'a str>,
    pub sentiment: SentimentLabel,
    pub language: Language,
    pub rulebook: &'a str,
    pub rules: &'a [String],
    pub script_errors: &'a [String],
    pub reasons: &'a [String],
}

impl<'a> From<&'a Decision> for DecisionRecord<'a> {
    fn from(d: &'a Decision) -> Self {
        let template = match &d.action {
            Action::Answer { template, .. } => Some(template.as_str()),
            Action::Escalate { template, .. } => template.as_deref(),
            Action::Log => None,
        };
        DecisionRecord {
            id: &d.message_id,
            action: d.action.name(),
            category: d.diagnostics.category,
            team: d.action.team(),
            priority: d.action.priority(),
            topics: d.topic_ids().collect(),
            template,
            reply: d.action.reply(),
            sentiment: d.diagnostics.sentiment.label,
            language: d.diagnostics.language,
            rulebook: &d.diagnostics.rulebook,
            rules: &d.diagnostics.rules,
            script_errors: &d.diagnostics.script_errors,
            reasons: &d.diagnostics.reasons,
        }
    }
}
