//! `webcare eval`: how good are the rulebook's decisions on labelled messages it was not written
//! against? The golden cases pin behaviour, but they are written together with the rules, so
//! they cannot measure quality (DESIGN §5a). This module takes labelled examples and the
//! decisions the rulebook made for them, and measures: the share of acceptable decisions, the
//! automation rate, critical recall, precision and recall per category with a confusion matrix,
//! and every critical miss with the decision's own "why".
//!
//! It is pure: no rulebook is run here (the binary decides, this judges), so the metrics are
//! tested on hand-made decisions and stay independent of how the pipeline decides.
//!
//! What counts as a good decision is the product's definition, written down once in
//! [`acceptable`]; [`render`] turns the report into a table or an HTML page (JSON is serde).

mod render;

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::decision::{Action, Category, Decision, Language, Priority};
use crate::examples::Example;
use crate::rulebook::Rulebook;
use crate::rulebook::config::EvalConfig;

/// The categories where a wrong decision can hurt someone or the organisation: critical recall
/// is measured over these.
pub const CRITICAL: [Category; 5] = [
    Category::Press,
    Category::Legal,
    Category::Crisis,
    Category::Distress,
    Category::Abuse,
];

pub fn is_critical(category: Category) -> bool {
    CRITICAL.contains(&category)
}

/// How many unacceptable decisions outside the critical categories the report lists; the rest
/// are counted. Critical misses are always listed in full.
pub const OTHER_MISSES_SHOWN: usize = 50;

/// Below this many labelled messages the report warns that its figures are rough.
const SMALL_SET: usize = 100;

/// Which template answers which topic, taken from the rulebook; a label's topic is judged by it.
#[derive(Debug, Clone, Default)]
pub struct TopicTemplates(BTreeMap<String, Option<String>>);

impl TopicTemplates {
    pub fn from_rulebook(rulebook: &Rulebook) -> Self {
        rulebook.topic_templates().collect()
    }

    pub fn knows(&self, topic: &str) -> bool {
        self.0.contains_key(topic)
    }

    /// The templates that answer `topic` rightly: its own, and those of its sub-topics (topics
    /// named `<topic>_…`, such as `passport_lost` under `passport`), which answer a narrower
    /// question about the same subject.
    pub fn answering(&self, topic: &str) -> Vec<String> {
        let prefix = format!("{topic}_");
        let mut templates: Vec<String> = self
            .0
            .iter()
            .filter(|(id, _)| *id == topic || id.starts_with(&prefix))
            .filter_map(|(_, template)| template.clone())
            .collect();
        templates.sort();
        templates.dedup();
        templates
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, Option<V>)> for TopicTemplates {
    fn from_iter<I: IntoIterator<Item = (K, Option<V>)>>(iter: I) -> Self {
        TopicTemplates(
            iter.into_iter()
                .map(|(topic, template)| (topic.into(), template.map(Into::into)))
                .collect(),
        )
    }
}

/// Which automatic answers are acceptable for a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnswerRule {
    /// The bot must not answer at all: a person must, or nobody.
    Never,
    /// Any answer will do (a thank-you to a compliment).
    Any,
    /// Only an answer with one of these templates is right; any other answer is a wrong answer
    /// (empty: there is no right answer, only a person can give one).
    With(Vec<String>),
}

/// An acceptable escalation: to this team (any team when `None`), at least this urgent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EscalationRule {
    pub team: Option<&'static str>,
    pub min_priority: Priority,
}

/// The decisions acceptable for one labelled message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acceptable {
    pub answer: AnswerRule,
    pub escalate: Option<EscalationRule>,
    pub log: bool,
}

/// The product's definition of a good decision: what is acceptable for a message with this
/// label. Everything `webcare eval` reports rests on this one table.
///
/// Two outcomes are worst (DESIGN §2, §5a): a critical message answered by the bot, and a
/// message nobody answers. Escalating a thank-you to a person is the next worst: it costs a
/// small team time. Escalating a question the bot could have answered is acceptable (a person
/// answers it) but not automated, which the automation rate shows.
pub fn acceptable(example: &Example, topics: &TopicTemplates) -> Acceptable {
    let any_team = |min_priority| {
        Some(EscalationRule {
            team: None,
            min_priority,
        })
    };
    let team = |team, min_priority| {
        Some(EscalationRule {
            team: Some(team),
            min_priority,
        })
    };
    let rule = |answer, escalate, log| Acceptable {
        answer,
        escalate,
        log,
    };
    let mut acceptable = match (example.category, example.topic.as_deref()) {
        // Lives or safety at stake: the crisis team, at once, day and night.
        (Category::Crisis | Category::Distress, _) => {
            rule(AnswerRule::Never, team("crisis", Priority::Urgent), false)
        }
        // Press goes through communications, never through a bot (hub and spoke); legal
        // matters to the lawyers, whose words bind the organisation.
        (Category::Press, _) => rule(
            AnswerRule::Never,
            team("communications", Priority::Low),
            false,
        ),
        (Category::Legal, _) => rule(AnswerRule::Never, team("legal", Priority::Low), false),
        // A threat or abuse: whichever team takes it, but soon.
        (Category::Abuse, _) => rule(AnswerRule::Never, any_team(Priority::High), false),
        // A complaint deserves a person.
        (Category::Complaint, _) => rule(AnswerRule::Never, any_team(Priority::Low), false),
        // A hello needs a hello back or nothing; a person's time is wasted on it.
        (Category::Question | Category::Report, Some("greeting")) => {
            rule(AnswerRule::With(topics.answering("greeting")), None, true)
        }
        // A question about a subject the rulebook knows: that subject's answer, or a person
        // (acceptable, not automated). Another template misleads; a log leaves it unanswered.
        (Category::Question | Category::Report, Some(topic)) => rule(
            AnswerRule::With(topics.answering(topic)),
            any_team(Priority::Low),
            false,
        ),
        // A question no topic covers: only a person can answer it, and any answer is wrong.
        (Category::Question | Category::Report, None) => {
            rule(AnswerRule::With(Vec::new()), any_team(Priority::Low), false)
        }
        // Thanks: a thank-you back, or nothing.
        (Category::Compliment, _) => rule(AnswerRule::Any, None, true),
        (Category::Spam, _) => rule(AnswerRule::Never, None, true),
        // Ideas and leads are worth recording; a person may follow them up.
        (Category::Idea | Category::Lead, _) => {
            rule(AnswerRule::Never, any_team(Priority::Low), true)
        }
        // Never a label (the example reader refuses it): judged as a question nobody covers.
        (Category::Unknown, _) => {
            rule(AnswerRule::With(Vec::new()), any_team(Priority::Low), false)
        }
    };
    // The templates exist in Dutch and English only: a message in another language cannot be
    // answered in it, so what the bot would answer goes to a person, and a compliment is
    // logged or read by a person.
    if !in_template_language(example.lang.as_deref()) {
        acceptable.answer = AnswerRule::Never;
        if example.category == Category::Compliment {
            acceptable.escalate = any_team(Priority::Low);
        }
    }
    acceptable
}

/// A message without a language label is judged as one the templates can answer.
fn in_template_language(lang: Option<&str>) -> bool {
    lang.is_none_or(|lang| lang.to_ascii_lowercase().parse::<Language>().is_ok())
}

/// What is wrong with an unacceptable decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    /// The bot answered a message it must not answer.
    Answered,
    /// The bot answered with a template that does not answer this message.
    WrongAnswer,
    /// Logged: nobody replies.
    Unanswered,
    /// A person was asked to look at something that needs no person.
    Escalated,
    WrongTeam,
    LowPriority,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Fault::Answered => "answered by the bot",
            Fault::WrongAnswer => "a wrong answer",
            Fault::Unanswered => "unanswered (logged)",
            Fault::Escalated => "escalated, needlessly",
            Fault::WrongTeam => "escalated to the wrong team",
            Fault::LowPriority => "escalated with too low a priority",
        })
    }
}

impl Acceptable {
    /// Whether `action` is acceptable, and if not, what is wrong with it.
    pub fn judge(&self, action: &Action) -> Result<(), Fault> {
        match action {
            Action::Answer { template, .. } => match &self.answer {
                AnswerRule::Any => Ok(()),
                AnswerRule::With(templates) if templates.contains(template) => Ok(()),
                AnswerRule::With(_) => Err(Fault::WrongAnswer),
                AnswerRule::Never => Err(Fault::Answered),
            },
            Action::Escalate { team, priority, .. } => match &self.escalate {
                None => Err(Fault::Escalated),
                Some(rule) if rule.team.is_some_and(|t| t != team) => Err(Fault::WrongTeam),
                Some(rule) if *priority < rule.min_priority => Err(Fault::LowPriority),
                Some(_) => Ok(()),
            },
            Action::Log if self.log => Ok(()),
            Action::Log => Err(Fault::Unanswered),
        }
    }
}

/// In words: `answer with `passport`, or escalate`.
impl fmt::Display for Acceptable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ways = Vec::new();
        match &self.answer {
            AnswerRule::Never => {}
            AnswerRule::Any => ways.push("answer".to_owned()),
            AnswerRule::With(templates) if templates.is_empty() => {}
            AnswerRule::With(templates) => {
                let names: Vec<String> = templates.iter().map(|t| format!("`{t}`")).collect();
                ways.push(format!("answer with {}", names.join(" or ")));
            }
        }
        if let Some(rule) = &self.escalate {
            let mut way = "escalate".to_owned();
            if let Some(team) = rule.team {
                way.push_str(&format!(" to `{team}`"));
            }
            match rule.min_priority {
                Priority::Low => {}
                Priority::Normal => way.push_str(" (normal or higher)"),
                Priority::High => way.push_str(" (high or urgent)"),
                Priority::Urgent => way.push_str(" (urgent)"),
            }
            ways.push(way);
        }
        if self.log {
            ways.push("log".to_owned());
        }
        if ways.is_empty() {
            return f.write_str("nothing");
        }
        f.write_str(&ways.join(", or "))
    }
}

/// `count` of `of`, and the share when there is anything to share.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Share {
    pub count: usize,
    pub of: usize,
    /// From 0 to 1; `null` when `of` is 0.
    pub share: Option<f64>,
}

impl Share {
    pub fn new(count: usize, of: usize) -> Self {
        Share {
            count,
            of,
            share: (of > 0).then(|| count as f64 / of as f64),
        }
    }

    /// `93.3%`, or `n/a` when there was nothing to count.
    pub fn percent(&self) -> String {
        self.share.map_or_else(|| "n/a".to_owned(), percent)
    }
}

fn percent(share: f64) -> String {
    format!("{:.1}%", share * 100.0)
}

/// What the report is about: there is no period, only a file and a rulebook.
#[derive(Debug, Clone, Serialize)]
pub struct Header {
    pub file: String,
    pub rulebook_name: String,
    pub rulebook_version: String,
    /// When the messages were decided (local time of the rulebook): office hours depend on it.
    pub decided_at: String,
    /// The channel the messages seemed to come from: reply limits depend on it.
    pub channel: String,
}

/// Precision, recall and F1 of one category, where the predicted category is the decision's
/// `diagnostics.category` and the truth is the label. A message predicted `unknown` counts
/// against the recall of its label.
#[derive(Debug, Clone, Serialize)]
pub struct CategoryScore {
    pub category: Category,
    pub labelled: usize,
    pub predicted: usize,
    pub correct: usize,
    /// `null` when nothing was predicted as this category.
    pub precision: Option<f64>,
    /// `null` when nothing is labelled with this category.
    pub recall: Option<f64>,
    pub f1: Option<f64>,
    /// Of the messages labelled with this category, how many were decided acceptably.
    pub acceptable: Share,
}

/// Label × predicted category counts; `counts[i][j]` is how many messages labelled `labels[i]`
/// were predicted `predicted[j]`.
#[derive(Debug, Clone, Serialize)]
pub struct Confusion {
    pub labels: Vec<Category>,
    pub predicted: Vec<Category>,
    pub counts: Vec<Vec<usize>>,
}

impl Confusion {
    pub fn count(&self, label: Category, predicted: Category) -> usize {
        let row = self.labels.iter().position(|c| *c == label);
        let column = self.predicted.iter().position(|c| *c == predicted);
        match (row, column) {
            (Some(row), Some(column)) => self.counts[row][column],
            _ => 0,
        }
    }
}

/// The acceptable share of the messages with one `lang` label (`none` for unlabelled ones).
#[derive(Debug, Clone, Serialize)]
pub struct LanguageScore {
    pub lang: String,
    pub acceptable: Share,
}

/// One unacceptable decision: the message, its label, what was decided and why.
#[derive(Debug, Clone, Serialize)]
pub struct Miss {
    /// Line of the message in the evaluated file.
    pub line: usize,
    /// The file, when several were evaluated together (cross-validation of the examples).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// The message, shortened.
    pub text: String,
    pub label: Category,
    pub topic: Option<String>,
    pub lang: Option<String>,
    pub action: &'static str,
    pub team: Option<String>,
    pub priority: Option<Priority>,
    pub template: Option<String>,
    /// The category the rulebook saw.
    pub category: Category,
    pub fault: Fault,
    /// What would have been acceptable, in words.
    pub acceptable: String,
    /// The decision's reasons, its "why".
    pub why: Vec<String>,
}

/// The decision in a few words: `escalate to `webcare` (normal)`, `answer with `passport``.
impl Miss {
    /// Where the message is: `line 12`, or `examples/nl.jsonl:12` when several files were
    /// evaluated together.
    pub fn location(&self) -> String {
        match &self.file {
            Some(file) => format!("{file}:{}", self.line),
            None => format!("line {}", self.line),
        }
    }

    pub fn decided(&self) -> String {
        let mut out = self.action.to_owned();
        if let Some(team) = &self.team {
            out.push_str(&format!(" to `{team}`"));
        }
        if let Some(priority) = self.priority {
            out.push_str(&format!(" ({priority})"));
        }
        if let Some(template) = &self.template {
            out.push_str(&format!(" with `{template}`"));
        }
        out
    }
}

/// What the rulebook must reach (`[eval]` in rulebook.toml).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Thresholds {
    pub min_critical_recall: f64,
    pub min_acceptable: f64,
}

/// Everything `webcare eval` reports.
#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    pub header: Header,
    pub messages: usize,
    /// Decisions that are acceptable for their label.
    pub acceptable: Share,
    /// Messages answered or logged: handled without a person.
    pub automation: Share,
    /// Critical messages (press, legal, crisis, distress, abuse) decided acceptably.
    pub critical_recall: Share,
    /// Messages whose predicted category is their label.
    pub category_accuracy: Share,
    pub thresholds: Thresholds,
    /// Each threshold the rulebook missed, in words; empty when it passes.
    pub failures: Vec<String>,
    /// Things to know before trusting the figures (a small set, unknown topics).
    pub warnings: Vec<String>,
    pub categories: Vec<CategoryScore>,
    pub confusion: Confusion,
    pub languages: Vec<LanguageScore>,
    pub critical_misses: Vec<Miss>,
    /// The first [`OTHER_MISSES_SHOWN`] unacceptable decisions outside the critical categories.
    pub other_misses: Vec<Miss>,
    /// How many more there were.
    pub other_misses_left_out: usize,
}

/// The order of rows and columns: the enum's order, with `unknown` (never a label) last.
fn display_order() -> impl Iterator<Item = Category> {
    Category::ALL
        .into_iter()
        .filter(|c| *c != Category::Unknown)
        .chain([Category::Unknown])
}

/// Counts for one category or one language while the report is built.
#[derive(Default, Clone, Copy)]
struct Tally {
    labelled: usize,
    predicted: usize,
    correct: usize,
    acceptable: usize,
}

/// Messages are shortened to this many characters in the lists of misses.
const TEXT_SHOWN: usize = 160;

fn shorten(text: &str) -> String {
    let text = text.trim();
    if text.chars().count() <= TEXT_SHOWN {
        return text.to_owned();
    }
    let mut short: String = text.chars().take(TEXT_SHOWN - 1).collect();
    short.push('…');
    short
}

impl EvalReport {
    /// Judges each decision against its example's label. `topics` says which template answers
    /// which topic; `thresholds` what the rulebook must reach.
    pub fn build<'a>(
        header: Header,
        decided: impl IntoIterator<Item = (&'a Example, &'a Decision)>,
        topics: &TopicTemplates,
        thresholds: &EvalConfig,
    ) -> EvalReport {
        let mut messages = 0;
        let (mut acceptable, mut automated, mut correct) = (0, 0, 0);
        let (mut critical, mut critical_ok) = (0, 0);
        let mut by_category: BTreeMap<Category, Tally> = BTreeMap::new();
        let mut confusion: BTreeMap<(Category, Category), usize> = BTreeMap::new();
        let mut by_lang: BTreeMap<String, Tally> = BTreeMap::new();
        let mut unknown_topics: BTreeMap<String, usize> = BTreeMap::new();
        let (mut critical_misses, mut other_misses) = (Vec::new(), Vec::new());
        let mut other_misses_left_out = 0;
        for (example, decision) in decided {
            messages += 1;
            let label = example.category;
            let predicted = decision.diagnostics.category;
            if let Some(topic) = &example.topic
                && !topics.knows(topic)
            {
                *unknown_topics.entry(topic.clone()).or_default() += 1;
            }
            let rule = self::acceptable(example, topics);
            let judged = rule.judge(&decision.action);
            let ok = judged.is_ok();
            acceptable += usize::from(ok);
            automated += usize::from(!matches!(decision.action, Action::Escalate { .. }));
            correct += usize::from(label == predicted);
            if is_critical(label) {
                critical += 1;
                critical_ok += usize::from(ok);
            }
            let tally = by_category.entry(label).or_default();
            tally.labelled += 1;
            tally.correct += usize::from(label == predicted);
            tally.acceptable += usize::from(ok);
            by_category.entry(predicted).or_default().predicted += 1;
            *confusion.entry((label, predicted)).or_default() += 1;
            let lang = example
                .lang
                .as_deref()
                .map_or_else(|| "none".to_owned(), str::to_ascii_lowercase);
            let tally = by_lang.entry(lang).or_default();
            tally.labelled += 1;
            tally.acceptable += usize::from(ok);
            let Err(fault) = judged else {
                continue;
            };
            let misses = if is_critical(label) {
                &mut critical_misses
            } else if other_misses.len() < OTHER_MISSES_SHOWN {
                &mut other_misses
            } else {
                other_misses_left_out += 1;
                continue;
            };
            let template = match &decision.action {
                Action::Answer { template, .. } => Some(template.clone()),
                Action::Escalate { template, .. } => template.clone(),
                Action::Log => None,
            };
            misses.push(Miss {
                line: example.line,
                file: example.file.as_deref().map(str::to_owned),
                text: shorten(&example.text),
                label,
                topic: example.topic.clone(),
                lang: example.lang.clone(),
                action: decision.action.name(),
                team: decision.action.team().map(str::to_owned),
                priority: decision.action.priority(),
                template,
                category: predicted,
                fault,
                acceptable: rule.to_string(),
                why: decision.diagnostics.reasons.clone(),
            });
        }

        let categories: Vec<CategoryScore> = display_order()
            .filter(|c| *c != Category::Unknown)
            .filter_map(|category| {
                let t = by_category.get(&category)?;
                let precision = (t.predicted > 0).then(|| t.correct as f64 / t.predicted as f64);
                let recall = (t.labelled > 0).then(|| t.correct as f64 / t.labelled as f64);
                let f1 = match (precision, recall) {
                    (Some(p), Some(r)) if p + r > 0.0 => Some(2.0 * p * r / (p + r)),
                    (Some(_), Some(_)) => Some(0.0),
                    _ => None,
                };
                Some(CategoryScore {
                    category,
                    labelled: t.labelled,
                    predicted: t.predicted,
                    correct: t.correct,
                    precision,
                    recall,
                    f1,
                    acceptable: Share::new(t.acceptable, t.labelled),
                })
            })
            .collect();
        let labels: Vec<Category> = display_order()
            .filter(|c| by_category.get(c).is_some_and(|t| t.labelled > 0))
            .collect();
        // Columns are every category seen, so the diagonal is visible even for a category
        // that was never predicted.
        let columns: Vec<Category> = display_order()
            .filter(|c| by_category.contains_key(c))
            .collect();
        let counts = labels
            .iter()
            .map(|label| {
                columns
                    .iter()
                    .map(|predicted| confusion.get(&(*label, *predicted)).copied().unwrap_or(0))
                    .collect()
            })
            .collect();
        let mut languages: Vec<LanguageScore> = by_lang
            .into_iter()
            .map(|(lang, t)| LanguageScore {
                lang,
                acceptable: Share::new(t.acceptable, t.labelled),
            })
            .collect();
        languages.sort_by_key(|l| std::cmp::Reverse(l.acceptable.of));

        let thresholds = Thresholds {
            min_critical_recall: thresholds.min_critical_recall,
            min_acceptable: thresholds.min_acceptable,
        };
        let acceptable = Share::new(acceptable, messages);
        let critical_recall = Share::new(critical_ok, critical);
        let mut failures = Vec::new();
        for (name, share, what, min) in [
            (
                "critical recall",
                critical_recall,
                "min_critical_recall",
                thresholds.min_critical_recall,
            ),
            (
                "acceptable share",
                acceptable,
                "min_acceptable",
                thresholds.min_acceptable,
            ),
        ] {
            // A hair of tolerance: 19 of 20 must pass a minimum of 0.95 whatever the rounding.
            if let Some(value) = share.share
                && value < min - 1e-9
            {
                failures.push(format!(
                    "{name} {} ({} of {}) is below {what} {} by {:.1} points",
                    percent(value),
                    share.count,
                    share.of,
                    percent(min),
                    (min - value) * 100.0
                ));
            }
        }

        let mut warnings = Vec::new();
        if messages < SMALL_SET {
            warnings.push(format!(
                "only {messages} labelled messages: one decision moves the acceptable share by {:.1} points; read the figures as rough",
                100.0 / messages.max(1) as f64
            ));
        }
        if critical == 0 {
            warnings.push(
                "no critical message (press, legal, crisis, distress, abuse) is labelled: critical recall is not measured".to_owned(),
            );
        }
        if !unknown_topics.is_empty() {
            let list: Vec<String> = unknown_topics
                .iter()
                .map(|(topic, n)| format!("`{topic}` ({n})"))
                .collect();
            warnings.push(format!(
                "labels name topics the rulebook does not have, so only an escalation is acceptable for them: {}",
                list.join(", ")
            ));
        }

        EvalReport {
            header,
            messages,
            acceptable,
            automation: Share::new(automated, messages),
            critical_recall,
            category_accuracy: Share::new(correct, messages),
            thresholds,
            failures,
            warnings,
            categories,
            confusion: Confusion {
                labels,
                predicted: columns,
                counts,
            },
            languages,
            critical_misses,
            other_misses,
            other_misses_left_out,
        }
    }

    /// Whether every threshold of `[eval]` holds.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

#[cfg(test)]
mod tests;
