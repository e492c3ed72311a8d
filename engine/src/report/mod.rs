//! Reports: the figures a webcare team is judged on and management decides on (volume, automation,
//! unanswered messages, response and resolution times, SLA, first-time resolution, sentiment,
//! trending topics), computed from what the store recorded.
//!
//! The computation ([`build`]) is pure: it takes the stored messages, escalations and replies as
//! plain values plus the rulebook's teams (for office-hours arithmetic), so every figure can be
//! tested exactly on a generated history without a store. Reading those values out of a store is
//! [`gather`]'s job; turning a [`Report`] into text, CSV, JSON or a self-contained HTML page is
//! [`render`]'s and [`html`]'s.
//!
//! # Layout
//!
//! - this file: the report's shape, its definitions and [`build`].
//! - `builder`: the [`Builder`] a report is made of, which takes one message at a time so a
//!   store can stream a million of them, and merges two builders that each saw a part.
//! - `finish`: from what a builder gathered to the figures (escalations, SLA, first-time
//!   resolution, trends, warnings).
//! - `office`: office time, [`office_seconds`].
//! - [`agents`]: figures per person (handled, first response, resolution, satisfaction) and
//!   customer satisfaction per team, agent and channel.
//! - [`gather`]: reading a period (and what comes around it) from a [`Store`](crate::Store).
//! - [`render`]: table and CSV.
//! - [`html`]: the HTML page with inline SVG charts (weekly digest, quarterly report).
//! - [`spike`]: early warning, a topic far above its usual hourly rate or a burst of negative
//!   messages.
//!
//! # Definitions
//!
//! - A message is **in the period** when it was received in `[since, until)`.
//! - **Automated**: answered by the bot without a human (action `answer`, channel `live`).
//!   **Escalated**: handed to a team. **Logged**: recorded only.
//! - **Not acted on**: decided while the channel was in `listen` mode (an answer or an
//!   escalation) or `shadow` mode (an answer): recorded, but the bot sent nothing and, in
//!   `listen`, nobody was told. Counted apart from automated and escalated, and never
//!   unanswered: in those modes the team answers by hand, outside webcare.
//! - **Unanswered**: a message that is not log-only and got neither an automatic reply (an
//!   answer or a holding reply, queued or sent, not given up) nor a human reply in its
//!   conversation at or after it. Must be zero; each one is listed.
//! - **First response** of the bot: the reply's send time (its queue time while unconfirmed)
//!   minus the message's receipt. Of a human: the first agent reply in the conversation at or
//!   after the escalation opened, minus the receipt of the escalation's first message.
//! - **Resolution time**: from the escalation's first message to its resolution.
//! - **Office time** counts only the team's opening hours (holidays and closed days skipped);
//!   the bot is measured against the rulebook's default team.
//! - **Percentiles** use the nearest-rank method (the value at rank ⌈p·n⌉), so they are always a
//!   measured value and exact to test.
//! - **SLA**: as [`crate::case::sla`] defines it, the same figure the inbox shows: *met* when
//!   a human replied or resolved it by its first-response deadline, *breached* when that
//!   happened later or not at all while the deadline has passed (at the report's `now`),
//!   *pending* otherwise. An escalation's own first response counts, not a reply to another
//!   team's escalation in the same conversation. (Escalations stored before their case state
//!   existed are judged by their deadline and the conversation's replies, as before.)
//! - **First-time resolution**: a bot answer, or a resolved escalation, after which the customer
//!   did not write again in that conversation within `ftr_days`. Cases whose window has not
//!   ended at `now` are not counted yet.
//! - **Trending**: a topic's count against the previous period of the same length.

pub mod agents;
mod builder;
mod finish;
pub mod gather;
pub mod html;
mod office;
pub mod render;
pub mod spike;

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::Serialize;

pub use builder::Builder;
pub use office::office_seconds;

// The tests build decisions, escalations and teams with `super::*`.
use crate::decision::Priority;
use crate::message::ChannelKind;
use crate::store::{Escalation, MessageBrief, OutboxEntry, OutboxStatus, StoredMessage};
use crate::teams::Teams;
#[cfg(test)]
use crate::{decision::Action, store::EscalationStatus, teams::Team};

/// Below this many messages a report warns that its figures are too few to trust.
pub const DEFAULT_MIN_MESSAGES: u64 = 100;

/// What to report on.
#[derive(Debug, Clone)]
pub struct ReportOptions {
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub channel: Option<ChannelKind>,
    pub team: Option<String>,
    /// The window of first-time resolution.
    pub ftr_days: i64,
    /// Warn below this many messages.
    pub min_messages: u64,
    /// The moment the report is made: SLA deadlines and resolution windows that end later are
    /// still open.
    pub now: DateTime<Utc>,
    /// How many topics the top and trending lists show.
    pub top: usize,
}

impl ReportOptions {
    pub fn new(since: DateTime<Utc>, until: DateTime<Utc>, now: DateTime<Utc>) -> Self {
        ReportOptions {
            since,
            until,
            channel: None,
            team: None,
            ftr_days: 7,
            min_messages: DEFAULT_MIN_MESSAGES,
            now,
            top: 10,
        }
    }

    /// The previous period of the same length, for trends.
    pub fn previous_since(&self) -> DateTime<Utc> {
        self.since - (self.until - self.since)
    }

    /// Messages up to here are needed to know whether a customer wrote again.
    pub fn read_until(&self) -> DateTime<Utc> {
        (self.until + Duration::days(self.ftr_days)).min(self.now.max(self.until))
    }
}

/// A reply as the report sees it: who wrote it and when it went out.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub channel: ChannelKind,
    pub conversation: String,
    pub in_reply_to: String,
    /// When it was sent, or queued while not confirmed sent.
    pub at: DateTime<Utc>,
    /// Written by an agent (not the bot).
    pub human: bool,
    /// Given up after failures: the customer never got it.
    pub dead: bool,
}

impl Reply {
    pub fn from_outbox(entry: &OutboxEntry, human: bool) -> Self {
        let at = match entry.status {
            OutboxStatus::Sent { at } => at,
            _ => entry.created_at,
        };
        Reply {
            channel: entry.channel,
            conversation: entry.conversation.clone(),
            in_reply_to: entry.in_reply_to.clone(),
            at,
            human,
            dead: entry.status == OutboxStatus::Dead,
        }
    }
}

/// Median and 90th percentile of a set of durations, in seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Percentiles {
    pub count: u64,
    pub median_secs: Option<i64>,
    pub p90_secs: Option<i64>,
}

impl Percentiles {
    /// Nearest rank: the value at rank ⌈p·n⌉ of the sorted values.
    pub fn of(mut values: Vec<i64>) -> Self {
        values.sort_unstable();
        let rank = |p: f64| -> Option<i64> {
            if values.is_empty() {
                return None;
            }
            let n = values.len();
            let r = ((p * n as f64).ceil() as usize).clamp(1, n);
            values.get(r - 1).copied()
        };
        Percentiles {
            count: values.len() as u64,
            median_secs: rank(0.5),
            p90_secs: rank(0.9),
        }
    }
}

/// One kind of response time, in calendar and office time.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Timing {
    pub calendar: Percentiles,
    pub office: Percentiles,
    /// Every measured value in calendar seconds, for the distribution chart.
    #[serde(skip)]
    pub samples: Vec<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SlaRow {
    pub team: String,
    pub priority: Priority,
    pub met: u64,
    pub breached: u64,
    pub pending: u64,
    /// Escalations without a deadline (a team without an SLA).
    pub no_deadline: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopicTrend {
    pub topic: String,
    pub count: u64,
    pub previous: u64,
    /// Growth against the previous period in percent; `None` for a topic that is new.
    pub growth_pct: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unanswered {
    pub channel: ChannelKind,
    pub id: String,
    pub conversation: String,
    pub received_at: DateTime<Utc>,
    pub action: &'static str,
    pub team: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionUse {
    pub version: String,
    pub messages: u64,
    pub first: DateTime<Utc>,
    pub last: DateTime<Utc>,
}

/// Volume in one day or week (its first day, local time).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Bucket {
    pub start: NaiveDate,
    pub messages: u64,
    pub negative: u64,
    pub positive: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Granularity {
    Day,
    Week,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Rates {
    pub automated: u64,
    pub escalated: u64,
    pub logged: u64,
    /// Decided in `listen` or `shadow` mode and not acted on (see the module docs).
    pub not_acted: u64,
    pub automation_pct: f64,
    pub escalation_pct: f64,
    pub log_pct: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FirstTimeResolution {
    pub days: i64,
    pub cases: u64,
    pub resolved_first_time: u64,
    pub pct: Option<f64>,
    /// Cases whose window had not ended at `now`.
    pub not_yet_known: u64,
}

/// Everything a report states. Serialised as the JSON format.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub generated_at: DateTime<Utc>,
    pub timezone: String,
    pub channel: Option<ChannelKind>,
    pub team: Option<String>,
    /// Messages the report is based on.
    pub messages: u64,
    pub previous_messages: u64,
    pub warnings: Vec<String>,
    pub rulebook_versions: Vec<VersionUse>,
    pub by_channel: BTreeMap<String, u64>,
    pub by_category: BTreeMap<String, u64>,
    pub by_team: BTreeMap<String, u64>,
    pub by_topic: BTreeMap<String, u64>,
    pub granularity: Granularity,
    pub volume: Vec<Bucket>,
    pub rates: Rates,
    pub unanswered: Vec<Unanswered>,
    pub frt_bot: Timing,
    pub frt_human: Timing,
    pub resolution: Timing,
    pub escalations: u64,
    pub sla: Vec<SlaRow>,
    pub first_time_resolution: FirstTimeResolution,
    pub sentiment: BTreeMap<String, u64>,
    pub top_topics: Vec<TopicTrend>,
    pub trending: Vec<TopicTrend>,
    /// Per person: handled, first response, resolution time, satisfaction.
    pub agents: Vec<agents::AgentRow>,
    pub satisfaction: agents::Satisfaction,
}

impl Report {
    pub fn sla_totals(&self) -> (u64, u64, u64) {
        self.sla.iter().fold((0, 0, 0), |(m, b, p), r| {
            (m + r.met, b + r.breached, p + r.pending)
        })
    }
}

fn pct(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        // One decimal, so reports and tests agree on the figure printed.
        (part as f64 * 1000.0 / whole as f64).round() / 10.0
    }
}

/// Computes the report. `messages` must hold the messages received from
/// [`ReportOptions::previous_since`] to [`ReportOptions::read_until`] (more is ignored), in any
/// order; `escalations` and `replies` everything that may concern them.
pub fn build(
    options: &ReportOptions,
    teams: &Teams,
    default_team: &str,
    messages: impl IntoIterator<Item = StoredMessage>,
    escalations: &[Escalation],
    replies: &[Reply],
) -> Report {
    // Replies by the message they answer; human replies go to their conversation.
    let mut builder = Builder::new(options, teams, default_team, escalations);
    let mut bot_reply: HashMap<(ChannelKind, &str), &Reply> = HashMap::new();
    for reply in replies {
        if reply.dead {
            continue;
        }
        if reply.human {
            builder.human_reply(reply.channel, &reply.conversation, reply.at);
        } else {
            bot_reply.insert((reply.channel, reply.in_reply_to.as_str()), reply);
        }
    }
    for stored in messages {
        let m = &stored.message;
        let bot = bot_reply.get(&(m.channel, m.id.as_str())).map(|r| r.at);
        builder.message(&MessageBrief::of(&stored), bot);
    }
    builder.finish()
}

#[cfg(test)]
mod tests;
