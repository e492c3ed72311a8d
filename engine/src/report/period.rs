//! A report's period aggregated by the store ([`Store::report_period`]) instead of handed over
//! message by message: what the [`Builder`] asks ([`Builder::period_query`]: its filters, its
//! volume buckets, the bot team's opening hours as spans, the escalations it follows) and how it
//! takes the answer in ([`Builder::period`]). Apart from the builder because it is the same
//! report reached another way; the figures must be exactly the ones the scan gives
//! (`engine/tests/postgres.rs` compares them).
//!
//! [`Store::report_period`]: crate::Store::report_period

use chrono::{Duration, TimeZone, Utc};
use rustc_hash::FxHashSet;

use super::builder::Builder;
use super::{Bucket, Percentiles, Timing, Unanswered, VersionUse, spike};
use crate::store::period::{PeriodCounted, PeriodQuery};
use crate::store::{ActionKind, CountFilter, EscalationStatus};

/// How far after the period the bot's opening hours are handed over: a reply sent later than
/// this (a month after `now`) is measured by the scan instead.
const OFFICE_AHEAD_DAYS: i64 = 31;

impl<'e> Builder<'e> {
    /// What to ask the store for this builder's period; `None` when the report cannot be put as
    /// such a question (a volume bucket that begins in a gap of a clock change, opening hours
    /// that overlap), and then the report scans. `agent_replies`: the outbox ids of replies
    /// agents wrote.
    pub fn period_query(&mut self, agent_replies: &FxHashSet<u64>) -> Option<PeriodQuery<'e>> {
        let options = self.options;
        let tz = self.tz;
        let mut buckets = Vec::with_capacity(self.buckets.len());
        for date in self.buckets.keys() {
            let midnight = tz.from_local_datetime(&date.and_hms_opt(0, 0, 0)?).earliest()?;
            buckets.push(midnight.with_timezone(&Utc));
        }
        let office_until = options.now.max(options.read_until()) + Duration::days(OFFICE_AHEAD_DAYS);
        let office = match &mut self.bot_clock {
            Some(clock) => match clock.spans(options.since, office_until) {
                Some(spans) => Some(spans),
                // Calendar time, unless the hours overlap.
                None if clock.has_hours() => return None,
                None => None,
            },
            None => None,
        };
        let escalations = self
            .escalations
            .iter()
            .filter_map(|esc| {
                let resolved = matches!(esc.status, EscalationStatus::Resolved { .. });
                let first = esc.messages.first()?;
                Some((esc.channel.as_str(), first.as_str(), resolved))
            })
            .collect();
        Some(PeriodQuery {
            since: options.since,
            until: options.until,
            read_until: options.read_until(),
            now: options.now,
            filter: CountFilter {
                channel: options.channel,
                team: options.team.as_deref(),
                except_author: spike::ALERT_AUTHOR,
            },
            ftr_secs: Duration::days(options.ftr_days).num_seconds() as f64,
            agent_replies: agent_replies.iter().map(|id| *id as i64).collect(),
            escalations,
            buckets,
            office,
            office_until,
        })
    }

    /// Takes in the period the store aggregated for [`Self::period_query`]: the same as every
    /// message of `[since, read_until)` through [`Builder::message`] would have given.
    pub fn period(&mut self, counted: PeriodCounted) {
        let r = &mut self.report;
        r.messages += counted.messages;
        for (channel, n) in counted.by_channel {
            *self.by_channel.entry(channel.as_str()).or_default() += n;
        }
        for (category, n) in counted.by_category {
            *self.by_category.entry(category.as_str()).or_default() += n;
        }
        for (label, n) in counted.sentiment {
            *self.sentiment.entry(label.as_str()).or_default() += n;
        }
        for (team, n) in counted.by_team {
            self.by_team.add_n(&team, n);
        }
        for (topic, n) in counted.by_topic {
            self.by_topic.add_n(&topic, n);
        }
        let starts: Vec<_> = self.buckets.keys().copied().collect();
        for (index, messages, negative, positive) in counted.buckets {
            let Some(start) = starts.get(index).copied() else {
                continue;
            };
            let bucket = self.buckets.entry(start).or_insert(Bucket {
                start,
                messages: 0,
                negative: 0,
                positive: 0,
            });
            bucket.messages += messages;
            bucket.negative += negative;
            bucket.positive += positive;
        }
        for (version, messages, first, last) in counted.versions {
            self.versions.insert(
                version.as_str().into(),
                VersionUse {
                    version,
                    messages,
                    first,
                    last,
                },
            );
        }
        for (action, mode, n) in counted.decided {
            let rates = &mut r.rates;
            match action {
                ActionKind::Answer if !mode.sends_replies() => rates.not_acted += n,
                ActionKind::Escalate if !mode.escalates() => rates.not_acted += n,
                ActionKind::Answer => rates.automated += n,
                ActionKind::Escalate => rates.escalated += n,
                ActionKind::Log => rates.logged += n,
            }
        }
        let bot = counted.bot;
        let mut bands = [0; 7];
        for (band, n) in bands.iter_mut().zip(&bot.bands) {
            *band = *n;
        }
        self.bot_timing = Some(Timing {
            calendar: Percentiles {
                count: bot.count,
                median_secs: bot.calendar.0,
                p90_secs: bot.calendar.1,
            },
            office: Percentiles {
                count: bot.count,
                median_secs: bot.office.0,
                p90_secs: bot.office.1,
            },
            bands,
        });
        self.ftr_counted = bot.ftr;
        for (channel, conversation, at) in counted.human_replies {
            self.human_reply(channel, &conversation, at);
        }
        for m in counted.unreplied {
            let acted = match m.action {
                ActionKind::Answer => m.mode.sends_replies(),
                ActionKind::Escalate => m.mode.escalates(),
                ActionKind::Log => true,
            };
            if !acted || m.action == ActionKind::Log {
                continue;
            }
            let conversation = self.conversations.number(m.channel, &m.conversation);
            self.unanswered.push((
                conversation,
                Unanswered {
                    channel: m.channel,
                    id: m.id,
                    conversation: m.conversation,
                    received_at: m.received_at,
                    action: m.action.name(),
                    team: m.team,
                },
            ));
        }
        for (channel, id, conversation, received_at) in counted.first_messages {
            let conversation = self.conversations.number(channel, &conversation);
            self.first_message(channel, &id, received_at, conversation);
        }
        for (channel, conversation, at) in counted.written {
            let conversation = self.conversations.number(channel, &conversation);
            self.written.push((conversation, at));
        }
    }
}
