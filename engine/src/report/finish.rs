//! From what a [`Builder`] gathered to the report's figures: percentiles, the escalations' response
//! and resolution times and SLA, first-time resolution, trends and warnings. Runs once per
//! report, after every message is in.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use rustc_hash::FxHashMap;

use super::builder::Builder;
use super::office::OfficeClock;
use super::{Percentiles, Report, SlaRow, Timing, TopicTrend, agents, pct};
use crate::case::SlaOutcome;
use crate::decision::Priority;
use crate::store::EscalationStatus;

impl Builder<'_> {
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
