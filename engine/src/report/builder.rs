//! The report computed one message at a time ([`Builder`]): what each message adds to the
//! counts, and how two builders that each saw a part of the period are merged. Apart from the
//! report's shape because this is the hot loop of a report over a million messages, kept as
//! numbers; [`finish`](super::finish) turns what it gathered into the figures.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use rustc_hash::{FxHashMap, FxHasher};

use super::office::OfficeClock;
use super::{
    Bucket, FirstTimeResolution, Granularity, Rates, Report, ReportOptions, Timing, Unanswered,
    VersionUse, agents, spike,
};
use crate::decision::SentimentLabel;
use crate::message::ChannelKind;
use crate::store::{ActionKind, Counted, Escalation, MessageBrief};
use crate::teams::Teams;

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
pub(super) struct Conversations {
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
pub(super) struct Counts(FxHashMap<Box<str>, u64>);

impl Counts {
    fn add(&mut self, key: &str) {
        match self.0.get_mut(key) {
            Some(n) => *n += 1,
            None => {
                self.0.insert(key.into(), 1);
            }
        }
    }

    pub(super) fn into_map(self) -> BTreeMap<String, u64> {
        self.0.into_iter().map(|(k, n)| (k.into(), n)).collect()
    }
}

/// The report computed one message at a time, so the messages can stream out of the store
/// instead of being collected first ([`build`](super::build) and [`gather::report`](super::gather::report) feed it). Everything per
/// message is kept as numbers; strings are copied once per distinct value.
pub struct Builder<'e> {
    pub(super) options: &'e ReportOptions,
    pub(super) teams: &'e Teams,
    pub(super) escalations: &'e [Escalation],
    pub(super) tz: chrono_tz::Tz,
    pub(super) granularity: Granularity,
    pub(super) report: Report,
    pub(super) bot_clock: Option<OfficeClock<'e>>,
    pub(super) conversations: Conversations,
    /// Human replies: conversation, time.
    pub(super) human: Vec<(u32, DateTime<Utc>)>,
    /// Every customer message (any period): conversation, time; to see whether they wrote again.
    pub(super) written: Vec<(u32, DateTime<Utc>)>,
    pub(super) previous_topics: FxHashMap<Box<str>, u64>,
    pub(super) by_channel: BTreeMap<&'static str, u64>,
    pub(super) by_category: BTreeMap<&'static str, u64>,
    pub(super) by_team: Counts,
    pub(super) by_topic: Counts,
    pub(super) sentiment: BTreeMap<&'static str, u64>,
    pub(super) buckets: BTreeMap<NaiveDate, Bucket>,
    pub(super) versions: FxHashMap<Box<str>, VersionUse>,
    /// The escalations by the hash of their first message's channel and id: the first
    /// escalation with that hash, and for each escalation the next one.
    pub(super) wanted: FxHashMap<u64, u32>,
    pub(super) next_wanted: Vec<u32>,
    /// Per escalation: receipt and conversation of its first message, once seen in the period.
    pub(super) first_seen: Vec<Option<(DateTime<Utc>, u32)>>,
    pub(super) bot_answers: Vec<(u32, DateTime<Utc>)>,
    pub(super) bot_frt: (Vec<i64>, Vec<i64>),
    /// Messages without an automatic reply: answered only if a human replied.
    pub(super) unanswered: Vec<(u32, Unanswered)>,
}

impl<'e> Builder<'e> {
    /// `escalations`: everything that may concern the period (see [`build`](super::build)).
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

    /// A period only counted, counted by the store ([`Store::report_count`]) instead of handed
    /// over message by message: the previous period, for trends. Its messages are never needed
    /// one by one: first-time resolution looks only at what a customer wrote after a case of
    /// the period.
    ///
    /// [`Store::report_count`]: crate::Store::report_count
    pub fn counted(&mut self, counted: Counted) {
        self.report.previous_messages += counted.messages;
        for (topic, n) in counted.topics {
            *self.previous_topics.entry(topic.into()).or_default() += n;
        }
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
}
