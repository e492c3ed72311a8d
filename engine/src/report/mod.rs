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
//! - this file: the report's shape, its definitions, [`build`] and the [`Builder`] it is made
//!   of, which takes one message at a time so a store can stream a million of them.
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
pub mod gather;
pub mod html;
pub mod render;
pub mod spike;

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use rustc_hash::{FxHashMap, FxHasher};
use serde::Serialize;

// The tests build decisions with `super::*`.
use crate::case::SlaOutcome;
#[cfg(test)]
use crate::decision::Action;
use crate::decision::{Priority, SentimentLabel};
use crate::message::ChannelKind;
use crate::store::{
    ActionKind, Escalation, EscalationStatus, MessageBrief, OutboxEntry, OutboxStatus,
    StoredMessage,
};
use crate::teams::{Team, Teams};

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

/// Seconds of `team`'s office time between `from` and `to` (zero when `to` is not later). A team
/// without hours counts calendar time.
pub fn office_seconds(
    team: &Team,
    tz: chrono_tz::Tz,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> i64 {
    if to <= from {
        return 0;
    }
    let Some(hours) = &team.hours else {
        return (to - from).num_seconds();
    };
    let first = from.with_timezone(&tz).date_naive();
    let last = to.with_timezone(&tz).date_naive();
    let mut total = 0;
    let mut date = first;
    while date <= last {
        if !team.holidays.contains(&date) {
            for (open, close) in &hours[date.weekday().num_days_from_monday() as usize] {
                let (Some(start), Some(end)) = (
                    tz.from_local_datetime(&date.and_time(*open)).earliest(),
                    tz.from_local_datetime(&date.and_time(*close)).earliest(),
                ) else {
                    continue;
                };
                let start = start.with_timezone(&Utc).max(from);
                let end = end.with_timezone(&Utc).min(to);
                if end > start {
                    total += (end - start).num_seconds();
                }
            }
        }
        match date.succ_opt() {
            Some(next) => date = next,
            None => break,
        }
    }
    total
}

/// The hash of a channel and an id: Fx, then murmur3's finaliser, because Fx leaves ids that
/// differ only at the end (`m1`, `m2`, …) close together in the high bits a hash table probes by.
fn key_hash(channel: ChannelKind, text: &str) -> u64 {
    let mut h = FxHasher::default();
    channel.hash(&mut h);
    text.hash(&mut h);
    let mut x = h.finish();
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

/// Conversations by number, so the per-message bookkeeping holds a `u32` instead of a copy of
/// the channel and conversation id: a report over a million messages keeps one string per
/// conversation, not one per message.
#[derive(Default)]
struct Conversations {
    /// Hash of (channel, id) → the newest conversation with that hash; collisions are chained.
    by_hash: FxHashMap<u64, u32>,
    /// Channel, id, the previous conversation with the same hash.
    all: Vec<(ChannelKind, Box<str>, u32)>,
}

impl Conversations {
    const NONE: u32 = u32::MAX;

    fn number(&mut self, channel: ChannelKind, conversation: &str) -> u32 {
        let h = key_hash(channel, conversation);
        let head = self.by_hash.get(&h).copied().unwrap_or(Self::NONE);
        let mut at = head;
        while let Some((c, id, next)) = self.all.get(at as usize) {
            if *c == channel && **id == *conversation {
                return at;
            }
            at = *next;
        }
        let number = self.all.len() as u32;
        self.all.push((channel, conversation.into(), head));
        self.by_hash.insert(h, number);
        number
    }
}

/// A count per string, allocating the string once, on its first occurrence.
#[derive(Default)]
struct Counts(FxHashMap<Box<str>, u64>);

impl Counts {
    fn add(&mut self, key: &str) {
        match self.0.get_mut(key) {
            Some(n) => *n += 1,
            None => {
                self.0.insert(key.into(), 1);
            }
        }
    }

    fn into_map(self) -> BTreeMap<String, u64> {
        self.0.into_iter().map(|(k, n)| (k.into(), n)).collect()
    }
}

/// Open from, until.
type Span = (DateTime<Utc>, DateTime<Utc>);

/// [`office_seconds`] for one team, with each day's opening hours converted to UTC once per
/// report instead of once per reply.
struct OfficeClock<'t> {
    team: &'t Team,
    tz: chrono_tz::Tz,
    days: FxHashMap<NaiveDate, Vec<Span>>,
}

impl<'t> OfficeClock<'t> {
    fn new(team: &'t Team, tz: chrono_tz::Tz) -> Self {
        OfficeClock {
            team,
            tz,
            days: FxHashMap::default(),
        }
    }

    /// Exactly [`office_seconds`].
    fn seconds(&mut self, from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
        if to <= from {
            return 0;
        }
        let Some(hours) = &self.team.hours else {
            return (to - from).num_seconds();
        };
        let (team, tz) = (self.team, self.tz);
        let first = from.with_timezone(&tz).date_naive();
        let last = to.with_timezone(&tz).date_naive();
        let mut total = 0;
        let mut date = first;
        while date <= last {
            let spans = self.days.entry(date).or_insert_with(|| {
                if team.holidays.contains(&date) {
                    return Vec::new();
                }
                hours[date.weekday().num_days_from_monday() as usize]
                    .iter()
                    .filter_map(|(open, close)| {
                        let start = tz.from_local_datetime(&date.and_time(*open)).earliest()?;
                        let end = tz.from_local_datetime(&date.and_time(*close)).earliest()?;
                        Some((start.with_timezone(&Utc), end.with_timezone(&Utc)))
                    })
                    .collect()
            });
            for (start, end) in spans.iter() {
                let start = (*start).max(from);
                let end = (*end).min(to);
                if end > start {
                    total += (end - start).num_seconds();
                }
            }
            match date.succ_opt() {
                Some(next) => date = next,
                None => break,
            }
        }
        total
    }
}

/// The report computed one message at a time, so the messages can stream out of the store
/// instead of being collected first ([`build`] and [`gather::report`] feed it). Everything per
/// message is kept as numbers; strings are copied once per distinct value.
pub struct Builder<'e> {
    options: &'e ReportOptions,
    teams: &'e Teams,
    escalations: &'e [Escalation],
    tz: chrono_tz::Tz,
    granularity: Granularity,
    report: Report,
    bot_clock: Option<OfficeClock<'e>>,
    conversations: Conversations,
    /// Human replies: conversation, time.
    human: Vec<(u32, DateTime<Utc>)>,
    /// Every customer message (any period): conversation, time; to see whether they wrote again.
    written: Vec<(u32, DateTime<Utc>)>,
    previous_topics: FxHashMap<Box<str>, u64>,
    by_channel: BTreeMap<&'static str, u64>,
    by_category: BTreeMap<&'static str, u64>,
    by_team: Counts,
    by_topic: Counts,
    sentiment: BTreeMap<&'static str, u64>,
    buckets: BTreeMap<NaiveDate, Bucket>,
    versions: FxHashMap<Box<str>, VersionUse>,
    /// The escalations by the hash of their first message's channel and id: the first
    /// escalation with that hash, and for each escalation the next one.
    wanted: FxHashMap<u64, u32>,
    next_wanted: Vec<u32>,
    /// Per escalation: receipt and conversation of its first message, once seen in the period.
    first_seen: Vec<Option<(DateTime<Utc>, u32)>>,
    bot_answers: Vec<(u32, DateTime<Utc>)>,
    bot_frt: (Vec<i64>, Vec<i64>),
    /// Messages without an automatic reply: answered only if a human replied.
    unanswered: Vec<(u32, Unanswered)>,
}

impl<'e> Builder<'e> {
    /// `escalations`: everything that may concern the period (see [`build`]).
    pub fn new(
        options: &'e ReportOptions,
        teams: &'e Teams,
        default_team: &str,
        escalations: &'e [Escalation],
    ) -> Self {
        let tz = teams.timezone;
        let days = (options.until - options.since).num_days();
        let granularity = if days > 62 {
            Granularity::Week
        } else {
            Granularity::Day
        };
        let report = Report {
            since: options.since,
            until: options.until,
            generated_at: options.now,
            timezone: tz.name().to_owned(),
            channel: options.channel,
            team: options.team.clone(),
            messages: 0,
            previous_messages: 0,
            warnings: Vec::new(),
            rulebook_versions: Vec::new(),
            by_channel: BTreeMap::new(),
            by_category: BTreeMap::new(),
            by_team: BTreeMap::new(),
            by_topic: BTreeMap::new(),
            granularity,
            volume: Vec::new(),
            rates: Rates::default(),
            unanswered: Vec::new(),
            frt_bot: Timing::default(),
            frt_human: Timing::default(),
            resolution: Timing::default(),
            escalations: 0,
            sla: Vec::new(),
            first_time_resolution: FirstTimeResolution {
                days: options.ftr_days,
                ..FirstTimeResolution::default()
            },
            sentiment: BTreeMap::new(),
            top_topics: Vec::new(),
            trending: Vec::new(),
            agents: Vec::new(),
            satisfaction: agents::Satisfaction::default(),
        };
        let mut sentiment = BTreeMap::new();
        for label in ["negative", "neutral", "positive"] {
            sentiment.insert(label, 0);
        }
        let mut wanted = FxHashMap::default();
        let mut next_wanted = vec![Conversations::NONE; escalations.len()];
        for (i, esc) in escalations.iter().enumerate() {
            if let Some(id) = esc.messages.first() {
                let head = wanted.insert(key_hash(esc.channel, id), i as u32);
                next_wanted[i] = head.unwrap_or(Conversations::NONE);
            }
        }
        let mut builder = Builder {
            options,
            teams,
            tz,
            granularity,
            report,
            bot_clock: teams.get(default_team).map(|t| OfficeClock::new(t, tz)),
            conversations: Conversations::default(),
            human: Vec::new(),
            written: Vec::new(),
            previous_topics: FxHashMap::default(),
            by_channel: BTreeMap::new(),
            by_category: BTreeMap::new(),
            by_team: Counts::default(),
            by_topic: Counts::default(),
            sentiment,
            buckets: BTreeMap::new(),
            versions: FxHashMap::default(),
            first_seen: vec![None; escalations.len()],
            escalations,
            wanted,
            next_wanted,
            bot_answers: Vec::new(),
            bot_frt: (Vec::new(), Vec::new()),
            unanswered: Vec::new(),
        };
        // Fill every bucket of the period, so a quiet day shows as zero rather than missing.
        let mut day = builder.bucket_of(options.since);
        let last_bucket = builder.bucket_of(options.until - Duration::seconds(1));
        while day <= last_bucket {
            builder.buckets.insert(
                day,
                Bucket {
                    start: day,
                    messages: 0,
                    negative: 0,
                    positive: 0,
                },
            );
            day += match granularity {
                Granularity::Day => Duration::days(1),
                Granularity::Week => Duration::days(7),
            };
        }
        builder
    }

    fn bucket_of(&self, t: DateTime<Utc>) -> NaiveDate {
        let date = t.with_timezone(&self.tz).date_naive();
        match self.granularity {
            Granularity::Day => date,
            Granularity::Week => {
                date - Duration::days(i64::from(date.weekday().num_days_from_monday()))
            }
        }
    }

    /// A reply an agent wrote (not given up), sent (or queued while unconfirmed) at `at`.
    pub fn human_reply(&mut self, channel: ChannelKind, conversation: &str, at: DateTime<Utc>) {
        let number = self.conversations.number(channel, conversation);
        self.human.push((number, at));
    }

    /// One stored message; `bot_reply`: when the bot's reply to it went out (or was queued
    /// while unconfirmed), unless it was given up. Every human reply may come before or after.
    pub fn message(&mut self, m: &MessageBrief<'_>, bot_reply: Option<DateTime<Utc>>) {
        let options = self.options;
        // Alerts are the system talking to the hub, not customer traffic.
        if options.channel.is_some_and(|c| c != m.channel) || m.author == spike::ALERT_AUTHOR {
            return;
        }
        let conversation = self.conversations.number(m.channel, m.conversation);
        self.written.push((conversation, m.received_at));
        if let Some(team) = &options.team
            && m.team != Some(team.as_str())
        {
            return;
        }
        if m.received_at >= options.previous_since() && m.received_at < options.since {
            self.report.previous_messages += 1;
            for topic in m.topics.iter() {
                match self.previous_topics.get_mut(topic) {
                    Some(n) => *n += 1,
                    None => {
                        self.previous_topics.insert(topic.into(), 1);
                    }
                }
            }
            return;
        }
        if m.received_at < options.since || m.received_at >= options.until {
            return;
        }
        self.report.messages += 1;
        *self.by_channel.entry(m.channel.as_str()).or_default() += 1;
        *self.by_category.entry(m.category.as_str()).or_default() += 1;
        self.by_team.add(m.team.unwrap_or("(bot)"));
        for topic in m.topics.iter() {
            self.by_topic.add(topic);
        }
        *self.sentiment.entry(m.sentiment.as_str()).or_default() += 1;
        let start = self.bucket_of(m.received_at);
        let bucket = self.buckets.entry(start).or_insert(Bucket {
            start,
            messages: 0,
            negative: 0,
            positive: 0,
        });
        bucket.messages += 1;
        match m.sentiment {
            SentimentLabel::Negative => bucket.negative += 1,
            SentimentLabel::Positive => bucket.positive += 1,
            SentimentLabel::Neutral => {}
        }
        match self.versions.get_mut(m.rulebook) {
            Some(version) => {
                version.messages += 1;
                version.first = version.first.min(m.received_at);
                version.last = version.last.max(m.received_at);
            }
            None => {
                self.versions.insert(
                    m.rulebook.into(),
                    VersionUse {
                        version: m.rulebook.to_owned(),
                        messages: 1,
                        first: m.received_at,
                        last: m.received_at,
                    },
                );
            }
        }
        // Decided in listen or shadow mode: recorded, nothing sent (see the module docs).
        let acted = match m.action {
            ActionKind::Answer => m.mode.sends_replies(),
            ActionKind::Escalate => m.mode.escalates(),
            ActionKind::Log => true,
        };
        match m.action {
            _ if !acted => self.report.rates.not_acted += 1,
            ActionKind::Answer => self.report.rates.automated += 1,
            ActionKind::Escalate => self.report.rates.escalated += 1,
            ActionKind::Log => self.report.rates.logged += 1,
        }
        if let Some(&head) = self.wanted.get(&key_hash(m.channel, m.id)) {
            let mut at = head as usize;
            while let Some(esc) = self.escalations.get(at) {
                if esc.channel == m.channel
                    && esc.messages.first().is_some_and(|id| id == m.id)
                    && let Some(seen) = self.first_seen.get_mut(at)
                {
                    *seen = Some((m.received_at, conversation));
                }
                at = self.next_wanted.get(at).map_or(usize::MAX, |n| *n as usize);
            }
        }

        if let Some(at) = bot_reply {
            let calendar = (at - m.received_at).num_seconds().max(0);
            let office = match &mut self.bot_clock {
                Some(clock) => clock.seconds(m.received_at, at),
                None => calendar,
            };
            self.bot_frt.0.push(calendar);
            self.bot_frt.1.push(office);
            if m.action == ActionKind::Answer {
                self.bot_answers.push((conversation, at));
            }
        } else if acted && m.action != ActionKind::Log {
            self.unanswered.push((
                conversation,
                Unanswered {
                    channel: m.channel,
                    id: m.id.to_owned(),
                    conversation: m.conversation.to_owned(),
                    received_at: m.received_at,
                    action: m.action.name(),
                    team: m.team.map(str::to_owned),
                },
            ));
        }
    }

    /// Takes in what `other` (made with the same options, teams and escalations) has seen of
    /// messages that come after this one's: two parts of a period can be counted at once.
    pub fn merge(&mut self, other: Builder<'_>) {
        // `other`'s conversation numbers in this one's.
        let numbers: Vec<u32> = other
            .conversations
            .all
            .iter()
            .map(|(channel, id, _)| self.conversations.number(*channel, id))
            .collect();
        let number = |n: u32| {
            numbers
                .get(n as usize)
                .copied()
                .unwrap_or(Conversations::NONE)
        };
        let r = &mut self.report;
        r.messages += other.report.messages;
        r.previous_messages += other.report.previous_messages;
        r.rates.automated += other.report.rates.automated;
        r.rates.escalated += other.report.rates.escalated;
        r.rates.logged += other.report.rates.logged;
        r.rates.not_acted += other.report.rates.not_acted;
        let remap = |v: Vec<(u32, DateTime<Utc>)>| v.into_iter().map(move |(c, t)| (number(c), t));
        self.human.extend(remap(other.human));
        self.written.extend(remap(other.written));
        self.bot_answers.extend(remap(other.bot_answers));
        self.unanswered
            .extend(other.unanswered.into_iter().map(|(c, u)| (number(c), u)));
        for (topic, n) in other.previous_topics {
            *self.previous_topics.entry(topic).or_default() += n;
        }
        for (to, from) in [
            (&mut self.by_channel, other.by_channel),
            (&mut self.by_category, other.by_category),
            (&mut self.sentiment, other.sentiment),
        ] {
            for (k, n) in from {
                *to.entry(k).or_default() += n;
            }
        }
        for (to, from) in [
            (&mut self.by_team, other.by_team),
            (&mut self.by_topic, other.by_topic),
        ] {
            for (k, n) in from.0 {
                *to.0.entry(k).or_default() += n;
            }
        }
        for (start, b) in other.buckets {
            let bucket = self.buckets.entry(start).or_insert(Bucket {
                start,
                messages: 0,
                negative: 0,
                positive: 0,
            });
            bucket.messages += b.messages;
            bucket.negative += b.negative;
            bucket.positive += b.positive;
        }
        for (version, v) in other.versions {
            match self.versions.get_mut(&version) {
                Some(mine) => {
                    mine.messages += v.messages;
                    mine.first = mine.first.min(v.first);
                    mine.last = mine.last.max(v.last);
                }
                None => {
                    self.versions.insert(version, v);
                }
            }
        }
        // Later messages win, as they do within one part.
        for (mine, theirs) in self.first_seen.iter_mut().zip(other.first_seen) {
            if let Some((at, c)) = theirs {
                *mine = Some((at, number(c)));
            }
        }
        self.bot_frt.0.extend(other.bot_frt.0);
        self.bot_frt.1.extend(other.bot_frt.1);
    }

    /// The report, once every message and human reply is in.
    pub fn finish(self) -> Report {
        let Builder {
            options,
            teams,
            escalations,
            tz,
            mut report,
            mut human,
            mut written,
            previous_topics,
            by_channel,
            by_category,
            by_team,
            by_topic,
            sentiment,
            buckets,
            versions,
            first_seen,
            bot_answers,
            bot_frt,
            unanswered,
            ..
        } = self;
        human.sort_unstable();
        written.sort_unstable();
        // The first human reply in `conversation` at or after `at`.
        let first_human_at = |conversation: u32, at: DateTime<Utc>| -> Option<DateTime<Utc>> {
            let i = human.partition_point(|e| *e < (conversation, at));
            human
                .get(i)
                .filter(|(c, _)| *c == conversation)
                .map(|(_, t)| *t)
        };
        report.unanswered = unanswered
            .into_iter()
            .filter(|(c, u)| first_human_at(*c, u.received_at).is_none())
            .map(|(_, u)| u)
            .collect();
        report.by_channel = by_channel
            .into_iter()
            .map(|(k, n)| (k.to_owned(), n))
            .collect();
        report.by_category = by_category
            .into_iter()
            .map(|(k, n)| (k.to_owned(), n))
            .collect();
        report.by_team = by_team.into_map();
        report.by_topic = by_topic.into_map();
        report.sentiment = sentiment
            .into_iter()
            .map(|(k, n)| (k.to_owned(), n))
            .collect();

        let n = report.messages;
        report.rates.automation_pct = pct(report.rates.automated, n);
        report.rates.escalation_pct = pct(report.rates.escalated, n);
        report.rates.log_pct = pct(report.rates.logged, n);
        report.frt_bot = Timing {
            calendar: Percentiles::of(bot_frt.0.clone()),
            office: Percentiles::of(bot_frt.1),
            samples: bot_frt.0,
        };

        // Escalations opened by a message of the period.
        let mut clocks: FxHashMap<&str, OfficeClock<'_>> = FxHashMap::default();
        let mut sla: BTreeMap<(&str, Priority), SlaRow> = BTreeMap::new();
        let mut human_frt = (Vec::new(), Vec::new());
        let mut resolution = (Vec::new(), Vec::new());
        let mut ftr_cases: Vec<(u32, DateTime<Utc>)> = bot_answers;
        let mut started: Vec<agents::Started<'_>> = Vec::new();
        for (esc, seen) in escalations.iter().zip(first_seen) {
            if options.team.as_ref().is_some_and(|t| *t != esc.team) {
                continue;
            }
            let Some((start, conversation)) = seen else {
                continue;
            };
            report.escalations += 1;
            let mut clock = teams.get(&esc.team).map(|t| {
                clocks
                    .remove(esc.team.as_str())
                    .unwrap_or_else(|| OfficeClock::new(t, tz))
            });
            let mut office = |to: DateTime<Utc>| match &mut clock {
                Some(c) => c.seconds(start, to),
                None => (to - start).num_seconds().max(0),
            };
            started.push((esc, start));
            // An escalation with its case state answers for itself: its own first response
            // (a reply in the conversation to another team's escalation is not one) and the
            // SLA as the inbox shows it. Older ones are read as before.
            let tracked = esc.case.opened_at.is_some();
            let replied = if tracked {
                esc.case.first_response_at
            } else {
                first_human_at(conversation, esc.created_at.min(start))
            };
            if let Some(at) = replied {
                human_frt.0.push((at - start).num_seconds().max(0));
                human_frt.1.push(office(at));
            }
            let resolved = match esc.status {
                EscalationStatus::Resolved { .. } => esc.case.resolved_at.or_else(|| {
                    esc.history
                        .iter()
                        .rev()
                        .find(|e| e.change == "resolved")
                        .map(|e| e.at)
                }),
                _ => None,
            };
            if let Some(at) = resolved {
                resolution.0.push((at - start).num_seconds().max(0));
                resolution.1.push(office(at));
                ftr_cases.push((conversation, at));
            }
            if let Some(clock) = clock {
                clocks.insert(esc.team.as_str(), clock);
            }
            let handled = match (replied, resolved) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let row = sla
                .entry((esc.team.as_str(), esc.priority))
                .or_insert_with(|| SlaRow {
                    team: esc.team.clone(),
                    priority: esc.priority,
                    met: 0,
                    breached: 0,
                    pending: 0,
                    no_deadline: 0,
                });
            let outcome = if tracked {
                esc.sla(options.now)
            } else {
                SlaOutcome::of(esc.sla_deadline, handled, options.now)
            };
            match outcome {
                SlaOutcome::NoDeadline => row.no_deadline += 1,
                SlaOutcome::Met { .. } => row.met += 1,
                SlaOutcome::Breached { .. } => row.breached += 1,
                SlaOutcome::Pending { .. } => row.pending += 1,
            }
        }
        (report.agents, report.satisfaction) = agents::figures(&started);
        report.sla = sla.into_values().collect();
        report.frt_human = Timing {
            calendar: Percentiles::of(human_frt.0.clone()),
            office: Percentiles::of(human_frt.1),
            samples: human_frt.0,
        };
        report.resolution = Timing {
            calendar: Percentiles::of(resolution.0.clone()),
            office: Percentiles::of(resolution.1),
            samples: resolution.0,
        };

        let window = Duration::days(options.ftr_days);
        let ftr = &mut report.first_time_resolution;
        for (conversation, at) in ftr_cases {
            if at + window > options.now {
                ftr.not_yet_known += 1;
                continue;
            }
            ftr.cases += 1;
            // The customer's first message in the conversation after `at`.
            let i = written.partition_point(|e| *e <= (conversation, at));
            let again = written
                .get(i)
                .is_some_and(|(c, t)| *c == conversation && *t <= at + window);
            if !again {
                ftr.resolved_first_time += 1;
            }
        }
        ftr.pct = (ftr.cases > 0).then(|| pct(ftr.resolved_first_time, ftr.cases));

        report.volume = buckets.into_values().collect();
        report.rulebook_versions = versions.into_values().collect();
        report
            .rulebook_versions
            .sort_by(|a, b| a.first.cmp(&b.first).then(a.version.cmp(&b.version)));

        let trend = |topic: &str, count: u64| {
            let previous = previous_topics.get(topic).copied().unwrap_or(0);
            TopicTrend {
                topic: topic.to_owned(),
                count,
                previous,
                growth_pct: (previous > 0).then(|| {
                    ((count as f64 - previous as f64) * 1000.0 / previous as f64).round() / 10.0
                }),
            }
        };
        let mut top: Vec<TopicTrend> = report
            .by_topic
            .iter()
            .map(|(topic, count)| trend(topic, *count))
            .collect();
        top.sort_by(|a, b| b.count.cmp(&a.count).then(a.topic.cmp(&b.topic)));
        // Trending: grew against the previous period, new topics first by volume, then by
        // growth; a topic needs a few messages to trend, or one message more would look like
        // +100%.
        let mut trending: Vec<TopicTrend> = top
            .iter()
            .filter(|t| t.count >= 3 && t.growth_pct.is_none_or(|g| g > 0.0))
            .cloned()
            .collect();
        trending.sort_by(|a, b| {
            let growth = |t: &TopicTrend| t.growth_pct.unwrap_or(f64::INFINITY);
            growth(b)
                .total_cmp(&growth(a))
                .then(b.count.cmp(&a.count))
                .then(a.topic.cmp(&b.topic))
        });
        top.truncate(options.top);
        trending.truncate(options.top);
        report.top_topics = top;
        report.trending = trending;

        if n < options.min_messages {
            report.warnings.push(format!(
                "based on only {n} messages (fewer than {}): too few to draw conclusions from",
                options.min_messages
            ));
        }
        if report.rulebook_versions.len() > 1 {
            report.warnings.push(format!(
                "the period spans {} rulebook versions; figures before and after a change may not compare",
                report.rulebook_versions.len()
            ));
        }
        if !report.unanswered.is_empty() {
            report.warnings.push(format!(
                "{} got no reply at all; they are listed under `unanswered`",
                match report.unanswered.len() {
                    1 => "1 message".to_owned(),
                    n => format!("{n} messages"),
                }
            ));
        }
        report
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
