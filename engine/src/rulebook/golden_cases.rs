//! The golden cases as the rulebook holds them: each `[[case]]` of `tests.toml` checked and
//! compiled with the rest of the rulebook (a misspelt team or topic in a case is a rulebook
//! error like any other), into a message, the context to decide it in, and what must come out.
//! Running them is `crate::golden`'s job; this module only reads them, so the rulebook does not
//! depend on the pipeline that decides them.

use std::collections::BTreeSet;

use chrono::{NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

use super::TopicInfo;
use super::config::TestsFile;
use super::error::{Location, RulebookError};
use super::source::SourceFile;
use crate::context::{ConversationFacts, ConversationState, DecideContext};
use crate::decision::{Category, Language, Priority};
use crate::message::{ChannelKind, Inbound};

/// The default moment of a case: a Monday morning, when every office is open.
pub const DEFAULT_CASE_TIME: &str = "2026-11-23 10:00";

#[derive(Debug, Clone)]
pub struct Expect {
    pub action: String,
    pub category: Option<Category>,
    pub team: Option<String>,
    pub priority: Option<Priority>,
    /// `Some("")` expects that no topic matched.
    pub topic: Option<String>,
    pub template: Option<String>,
    pub language: Option<Language>,
    pub reply_contains: Option<String>,
}

#[derive(Debug, Clone)]
pub struct GoldenCase {
    pub name: String,
    pub location: Location,
    pub message: Inbound,
    pub context: DecideContext,
    pub expect: Expect,
}

pub(crate) fn compile(
    file: &SourceFile,
    tests: &TestsFile,
    timezone: Tz,
    team_ids: &BTreeSet<String>,
    topics: &rustc_hash::FxHashMap<String, TopicInfo>,
    errors: &mut Vec<RulebookError>,
) -> Vec<GoldenCase> {
    let mut cases = Vec::new();
    for (i, spanned) in tests.case.iter().enumerate() {
        let location = Location::at_span(file.path.clone(), &file.text, spanned.span());
        let c = spanned.get_ref();
        let mut problems = Vec::new();
        let at = c.at.as_deref().unwrap_or(DEFAULT_CASE_TIME);
        let received_at = NaiveDateTime::parse_from_str(at, "%Y-%m-%d %H:%M")
            .ok()
            .and_then(|local| timezone.from_local_datetime(&local).earliest())
            .map(|t| t.with_timezone(&Utc));
        if received_at.is_none() {
            problems.push(format!(
                "`at = \"{at}\"` is not a local time like `2026-11-23 10:00`"
            ));
        }
        let channel = match c.channel.as_deref().map(str::parse::<ChannelKind>) {
            None => ChannelKind::Webchat,
            Some(Ok(kind)) => kind,
            Some(Err(e)) => {
                problems.push(e.to_string());
                ChannelKind::Webchat
            }
        };
        let e = &c.expect;
        if !["answer", "escalate", "log"].contains(&e.action.as_str()) {
            problems.push(format!(
                "expected action `{}` is not one of answer, escalate, log",
                e.action
            ));
        }
        let category = e
            .category
            .as_deref()
            .map(str::parse::<Category>)
            .transpose();
        let priority = e
            .priority
            .as_deref()
            .map(str::parse::<Priority>)
            .transpose();
        let language = e
            .language
            .as_deref()
            .map(str::parse::<Language>)
            .transpose();
        let state = match c.conversation.as_ref().and_then(|c| c.state.as_deref()) {
            None | Some("bot") => ConversationState::Bot,
            Some("human") => ConversationState::Human,
            Some("closed") => ConversationState::Closed,
            Some(other) => {
                problems.push(format!(
                    "conversation state `{other}` is not bot, human or closed"
                ));
                ConversationState::Bot
            }
        };
        for problem in [
            category.as_ref().err(),
            priority.as_ref().err(),
            language.as_ref().err(),
        ]
        .into_iter()
        .flatten()
        {
            problems.push(problem.clone());
        }
        if let Some(team) = &e.team
            && !team_ids.contains(team)
        {
            problems.push(format!(
                "expected team `{team}` is not defined in teams.toml"
            ));
        }
        if let Some(topic) = &e.topic
            && !topic.is_empty()
            && !topics.contains_key(topic)
        {
            problems.push(format!(
                "expected topic `{topic}` is not defined in topics.toml"
            ));
        }
        if !problems.is_empty() {
            for problem in problems {
                errors.push(RulebookError::invalid(location.clone(), problem));
            }
            continue;
        }
        let name = c.name.clone().unwrap_or_else(|| {
            let short: String = c.text.chars().take(48).collect();
            if short.len() < c.text.len() {
                format!("{short}…")
            } else {
                short
            }
        });
        let conversation = c.conversation.clone().unwrap_or_default();
        cases.push(GoldenCase {
            name,
            location,
            message: Inbound::from_text(
                format!("case-{}", i + 1),
                channel,
                c.text.clone(),
                received_at.unwrap_or_default(),
            ),
            context: DecideContext {
                conversation: ConversationFacts {
                    state,
                    messages_today: conversation.messages_today,
                    auto_replies: conversation.auto_replies,
                    complaints_24h: conversation.complaints_24h,
                    complaints_7d: conversation.complaints_7d,
                    awaiting_score: false,
                },
                crisis_mode: c.crisis_mode,
            },
            expect: Expect {
                action: e.action.clone(),
                category: category.ok().flatten(),
                team: e.team.clone(),
                priority: priority.ok().flatten(),
                topic: e.topic.clone(),
                template: e.template.clone(),
                language: language.ok().flatten(),
                reply_contains: e.reply_contains.clone(),
            },
        });
    }
    cases
}
