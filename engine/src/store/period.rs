//! What a report asks of a store that can aggregate its period itself ([`Store::report_period`]):
//! the question ([`PeriodQuery`]) and the answer ([`PeriodCounted`]). Apart from the records
//! because it is the report's arithmetic handed to a database: counts and percentiles come back
//! finished, and only the few messages a report lists or follows one by one (unanswered
//! messages, agents' replies, escalations' first messages) come back as rows.
//!
//! [`Store::report_period`]: crate::Store::report_period

use chrono::{DateTime, Utc};

use super::{ActionKind, CountFilter};
use crate::decision::{Category, SentimentLabel};
use crate::message::ChannelKind;
use crate::mode::Mode;

/// Open from, until: a span of office time in UTC.
pub type Span = (DateTime<Utc>, DateTime<Utc>);

/// A report's period, as [`crate::report::Builder`] counts it.
pub struct PeriodQuery<'a> {
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    /// Messages up to here tell whether a customer wrote again (first-time resolution).
    pub read_until: DateTime<Utc>,
    pub now: DateTime<Utc>,
    pub filter: CountFilter<'a>,
    /// The first-time resolution window in seconds.
    pub ftr_secs: f64,
    /// The outbox ids of replies agents wrote: a message's reply with one of these is not the
    /// bot's.
    pub agent_replies: Vec<i64>,
    /// The first message (channel, id) of each escalation the report may count, and whether
    /// its conversation's later messages are needed (a resolved one: first-time resolution).
    pub escalations: Vec<(&'a str, &'a str, bool)>,
    /// Where each volume bucket begins, ascending: a message belongs to the last that began at
    /// or before it.
    pub buckets: Vec<DateTime<Utc>>,
    /// The bot's office hours as sorted, disjoint spans from the period's start until
    /// `office_until`, or `None` when the bot is measured in calendar time.
    pub office: Option<Vec<Span>>,
    /// The spans go this far: a reply later than this cannot be measured in SQL, and the store
    /// declines.
    pub office_until: DateTime<Utc>,
}

/// The bot's response times, finished: nearest-rank percentiles, and how many fall in each of
/// [`crate::report::BANDS`] (calendar time).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BotTimes {
    pub count: u64,
    pub calendar: (Option<i64>, Option<i64>),
    pub office: (Option<i64>, Option<i64>),
    pub bands: Vec<u64>,
    /// Bot answers whose first-time resolution window ended by `now`, of them those after which
    /// the customer did not write again, and those whose window had not ended.
    pub ftr: (u64, u64, u64),
}

/// A message the report may list as unanswered: no automatic reply, not only logged.
#[derive(Debug, Clone, PartialEq)]
pub struct Unreplied {
    pub channel: ChannelKind,
    pub id: String,
    pub conversation: String,
    pub received_at: DateTime<Utc>,
    pub action: ActionKind,
    pub mode: Mode,
    pub team: Option<String>,
}

/// What [`crate::Store::report_period`] aggregated.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PeriodCounted {
    pub messages: u64,
    pub by_channel: Vec<(ChannelKind, u64)>,
    pub by_category: Vec<(Category, u64)>,
    /// `(bot)` for messages without a team.
    pub by_team: Vec<(String, u64)>,
    pub by_topic: Vec<(String, u64)>,
    pub sentiment: Vec<(SentimentLabel, u64)>,
    /// Per bucket (its index in [`PeriodQuery::buckets`]): messages, negative, positive.
    pub buckets: Vec<(usize, u64, u64, u64)>,
    /// Per rulebook version: messages, first and last receipt.
    pub versions: Vec<(String, u64, DateTime<Utc>, DateTime<Utc>)>,
    pub decided: Vec<(ActionKind, Mode, u64)>,
    pub bot: BotTimes,
    /// Replies agents wrote as a message's reply: channel, conversation, sent (or queued) at.
    pub human_replies: Vec<(ChannelKind, String, DateTime<Utc>)>,
    pub unreplied: Vec<Unreplied>,
    /// Escalations' first messages in the period: channel, id, conversation, receipt.
    pub first_messages: Vec<(ChannelKind, String, String, DateTime<Utc>)>,
    /// The customers' messages in the conversations of the resolved escalations among them:
    /// channel, conversation, receipt.
    pub written: Vec<(ChannelKind, String, DateTime<Utc>)>,
}
