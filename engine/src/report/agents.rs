//! The figures per person and customer satisfaction: what a team lead asks after "how did we
//! do" (who handled how much, how fast, and how customers rated it). Kept apart from the
//! builder because they are read from the escalations' case state alone (who responded first,
//! who resolved, the score the customer gave), not from the message stream.
//!
//! Definitions:
//!
//! - **Handled** by an agent: escalations of the report they resolved.
//! - **First response** of an agent: the escalations they responded to first, from the
//!   escalation's first message to their reply (the same moment the inbox shows).
//! - **Resolution time** of an agent: the escalations they resolved, from the first message to
//!   the resolution.
//! - **Satisfaction**: the scores (1–5) customers gave after a person resolved their case, per
//!   team, agent (who resolved) and channel: how many were asked and answered, the mean, and
//!   the share satisfied (4 or 5, the usual CSAT).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::Percentiles;
use crate::store::{Escalation, EscalationStatus};

/// One person's figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AgentRow {
    pub agent: String,
    pub handled: u64,
    pub first_response: Percentiles,
    pub resolution: Percentiles,
    pub satisfaction: Score,
}

/// Satisfaction answers in one group.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Score {
    pub asked: u64,
    pub answered: u64,
    /// Mean score, one decimal; `None` without answers.
    pub mean: Option<f64>,
    /// Share of answers that were 4 or 5, in percent, one decimal.
    pub satisfied_pct: Option<f64>,
    #[serde(skip)]
    sum: u64,
    #[serde(skip)]
    satisfied: u64,
}

impl Score {
    fn add(&mut self, answer: Option<u8>) {
        self.asked += 1;
        if let Some(score) = answer {
            self.answered += 1;
            self.sum += u64::from(score);
            if score >= 4 {
                self.satisfied += 1;
            }
        }
    }

    fn finish(&mut self) {
        if self.answered > 0 {
            let n = self.answered as f64;
            self.mean = Some((self.sum as f64 * 10.0 / n).round() / 10.0);
            self.satisfied_pct = Some((self.satisfied as f64 * 1000.0 / n).round() / 10.0);
        }
    }
}

/// Customer satisfaction over the report's escalations.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Satisfaction {
    pub total: Score,
    pub by_team: BTreeMap<String, Score>,
    pub by_agent: BTreeMap<String, Score>,
    pub by_channel: BTreeMap<String, Score>,
}

/// The start of an escalation as the report measures it (its first message's receipt).
pub(super) type Started<'e> = (&'e Escalation, DateTime<Utc>);

/// The per-person figures and satisfaction of the report's escalations, each with when its
/// first message was received.
pub(super) fn figures(escalations: &[Started<'_>]) -> (Vec<AgentRow>, Satisfaction) {
    #[derive(Default)]
    struct Acc {
        handled: u64,
        first: Vec<i64>,
        resolution: Vec<i64>,
        score: Score,
    }
    let mut agents: BTreeMap<&str, Acc> = BTreeMap::new();
    let mut satisfaction = Satisfaction::default();
    for (esc, start) in escalations {
        let case = &esc.case;
        if let (Some(at), Some(by)) = (case.first_response_at, &case.first_response_by) {
            agents
                .entry(by)
                .or_default()
                .first
                .push((at - *start).num_seconds().max(0));
        }
        if let EscalationStatus::Resolved { by } = &esc.status {
            let acc = agents.entry(by).or_default();
            acc.handled += 1;
            if let Some(at) = case.resolved_at {
                acc.resolution.push((at - *start).num_seconds().max(0));
            }
        }
        if let Some(survey) = &case.survey {
            satisfaction.total.add(survey.score);
            for (map, key) in [
                (&mut satisfaction.by_team, esc.team.as_str()),
                (&mut satisfaction.by_agent, survey.agent.as_str()),
                (&mut satisfaction.by_channel, esc.channel.as_str()),
            ] {
                map.entry(key.to_owned()).or_default().add(survey.score);
            }
            agents
                .entry(&survey.agent)
                .or_default()
                .score
                .add(survey.score);
        }
    }
    satisfaction.total.finish();
    for map in [
        &mut satisfaction.by_team,
        &mut satisfaction.by_agent,
        &mut satisfaction.by_channel,
    ] {
        map.values_mut().for_each(Score::finish);
    }
    let rows = agents
        .into_iter()
        .map(|(agent, mut acc)| {
            acc.score.finish();
            AgentRow {
                agent: agent.to_owned(),
                handled: acc.handled,
                first_response: Percentiles::of(acc.first),
                resolution: Percentiles::of(acc.resolution),
                satisfaction: acc.score,
            }
        })
        .collect();
    (rows, satisfaction)
}

fn score_words(s: &Score) -> String {
    match (s.mean, s.satisfied_pct) {
        (Some(mean), Some(pct)) => format!(
            "{} of {} answered, mean {mean:.1}, {pct:.1}% satisfied",
            s.answered, s.asked
        ),
        _ => format!("{} asked, no answers", s.asked),
    }
}

/// The terminal lines of both sections.
pub(super) fn text(out: &mut String, agents: &[AgentRow], satisfaction: &Satisfaction) {
    use super::render::duration;
    use std::fmt::Write;
    if !agents.is_empty() {
        let _ = writeln!(out, "\nper agent");
        for a in agents {
            let _ = writeln!(
                out,
                "  {:<16} handled {:>5}  first response median {:>8}  resolution median {:>8}  satisfaction {}",
                a.agent,
                a.handled,
                duration(a.first_response.median_secs),
                duration(a.resolution.median_secs),
                score_words(&a.satisfaction)
            );
        }
    }
    if satisfaction.total.asked == 0 {
        return;
    }
    let _ = writeln!(
        out,
        "\ncustomer satisfaction: {}",
        score_words(&satisfaction.total)
    );
    for (what, map) in [
        ("team", &satisfaction.by_team),
        ("agent", &satisfaction.by_agent),
        ("channel", &satisfaction.by_channel),
    ] {
        for (key, s) in map {
            let _ = writeln!(out, "  {what} {key:<16} {}", score_words(s));
        }
    }
}

/// The CSV rows (section, key, value) of both sections.
pub(super) fn rows(
    agents: &[AgentRow],
    satisfaction: &Satisfaction,
    row: &mut dyn FnMut(&str, &str, String),
) {
    let opt = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
    let optf = |v: Option<f64>| v.map(|v| format!("{v:.1}")).unwrap_or_default();
    for a in agents {
        row("agent_handled", &a.agent, a.handled.to_string());
        row(
            "agent_first_response_median_secs",
            &a.agent,
            opt(a.first_response.median_secs),
        );
        row(
            "agent_resolution_median_secs",
            &a.agent,
            opt(a.resolution.median_secs),
        );
        row(
            "agent_satisfaction_mean",
            &a.agent,
            optf(a.satisfaction.mean),
        );
    }
    let mut score = |section: &str, key: &str, s: &Score| {
        row(&format!("{section}_asked"), key, s.asked.to_string());
        row(&format!("{section}_answered"), key, s.answered.to_string());
        row(&format!("{section}_mean"), key, optf(s.mean));
        row(
            &format!("{section}_satisfied_pct"),
            key,
            optf(s.satisfied_pct),
        );
    };
    score("satisfaction", "total", &satisfaction.total);
    for (section, map) in [
        ("satisfaction_team", &satisfaction.by_team),
        ("satisfaction_agent", &satisfaction.by_agent),
        ("satisfaction_channel", &satisfaction.by_channel),
    ] {
        for (key, s) in map {
            score(section, key, s);
        }
    }
}

/// The HTML sections: a table per person, and satisfaction per team, agent and channel.
pub(super) fn html(out: &mut String, agents: &[AgentRow], satisfaction: &Satisfaction) {
    use super::render::duration;
    use crate::html::escape;
    use std::fmt::Write;
    let cell = |v: Option<f64>| v.map(|v| format!("{v:.1}")).unwrap_or_else(|| "–".into());
    if agents.is_empty() {
        return;
    }
    out.push_str("<h2>Per agent</h2><table id=\"agents\"><tr><th>agent</th><th class=\"n\">handled</th><th class=\"n\">first response (median)</th><th class=\"n\">resolution (median)</th><th class=\"n\">satisfaction (mean)</th></tr>");
    for a in agents {
        let _ = write!(
            out,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            escape(&a.agent),
            a.handled,
            duration(a.first_response.median_secs),
            duration(a.resolution.median_secs),
            cell(a.satisfaction.mean)
        );
    }
    out.push_str("</table>");
    let t = &satisfaction.total;
    if t.asked == 0 {
        return;
    }
    let _ = write!(
        out,
        "<h2>Customer satisfaction</h2><p id=\"satisfaction\">{}</p><table id=\"satisfaction-table\"><tr><th></th><th></th><th class=\"n\">asked</th><th class=\"n\">answered</th><th class=\"n\">mean</th><th class=\"n\">satisfied (4–5)</th></tr>",
        escape(&score_words(t))
    );
    for (what, map) in [
        ("team", &satisfaction.by_team),
        ("agent", &satisfaction.by_agent),
        ("channel", &satisfaction.by_channel),
    ] {
        for (key, s) in map {
            let _ = write!(
                out,
                "<tr><td>{what}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                escape(key),
                s.asked,
                s.answered,
                cell(s.mean),
                s.satisfied_pct
                    .map(|p| format!("{p:.1}%"))
                    .unwrap_or_else(|| "–".into())
            );
        }
    }
    out.push_str("</table>");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::case::{CaseState, Survey};
    use crate::decision::{Category, Language, Priority};
    use crate::message::ChannelKind;

    fn t(m: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_795_000_000 + m * 60, 0).unwrap_or_default()
    }

    fn escalation(
        id: u64,
        team: &str,
        channel: ChannelKind,
        replied: Option<(i64, &str)>,
        resolved: Option<(i64, &str)>,
        score: Option<Option<u8>>,
    ) -> Escalation {
        let mut case = CaseState::opened(
            t(0),
            t(0),
            Some(t(60)),
            "citizen",
            Category::Complaint,
            Language::Nl,
        );
        if let Some((m, by)) = replied {
            case.replied(t(m), by);
        }
        let status = match resolved {
            Some((m, by)) => {
                case.resolved(t(m));
                EscalationStatus::Resolved { by: by.into() }
            }
            None => EscalationStatus::Open,
        };
        if let (Some(score), Some((m, by))) = (score, resolved) {
            case.survey = Some(Survey {
                asked_at: t(m),
                agent: by.into(),
                outbox: 99,
                score,
                answered_at: score.map(|_| t(m + 5)),
            });
        }
        Escalation {
            id,
            channel,
            conversation: format!("c{id}"),
            team: team.into(),
            priority: Priority::Normal,
            reason: "r".into(),
            status,
            created_at: t(0),
            sla_deadline: None,
            messages: vec![format!("m{id}")],
            history: Vec::new(),
            case,
        }
    }

    #[test]
    fn per_agent_figures_and_satisfaction_per_team_agent_and_channel() {
        let all = [
            escalation(
                1,
                "webcare",
                ChannelKind::Http,
                Some((10, "ann")),
                Some((30, "ann")),
                Some(Some(5)),
            ),
            escalation(
                2,
                "webcare",
                ChannelKind::Telegram,
                Some((20, "bob")),
                Some((40, "ann")),
                Some(Some(2)),
            ),
            escalation(
                3,
                "legal",
                ChannelKind::Http,
                None,
                Some((50, "bob")),
                Some(None),
            ),
            escalation(
                4,
                "webcare",
                ChannelKind::Http,
                Some((5, "bob")),
                None,
                None,
            ),
        ];
        let started: Vec<Started<'_>> = all.iter().map(|e| (e, t(0))).collect();
        let (agents, s) = figures(&started);
        let ann = agents
            .iter()
            .find(|a| a.agent == "ann")
            .unwrap_or_else(|| panic!("{agents:?}"));
        assert_eq!(ann.handled, 2);
        assert_eq!(ann.first_response.count, 1);
        assert_eq!(ann.first_response.median_secs, Some(600));
        assert_eq!(ann.resolution.median_secs, Some(1800));
        assert_eq!(
            (ann.satisfaction.answered, ann.satisfaction.mean),
            (2, Some(3.5))
        );
        let bob = agents
            .iter()
            .find(|a| a.agent == "bob")
            .unwrap_or_else(|| panic!("{agents:?}"));
        assert_eq!((bob.handled, bob.first_response.count), (1, 2));
        assert_eq!((bob.satisfaction.asked, bob.satisfaction.answered), (1, 0));

        assert_eq!((s.total.asked, s.total.answered), (3, 2));
        assert_eq!(
            (s.total.mean, s.total.satisfied_pct),
            (Some(3.5), Some(50.0))
        );
        assert_eq!(s.by_team["webcare"].mean, Some(3.5));
        assert_eq!(s.by_team["legal"].answered, 0);
        assert_eq!(s.by_channel["http"].mean, Some(5.0));
        assert_eq!(s.by_channel["telegram"].mean, Some(2.0));
        assert_eq!(s.by_agent["ann"].answered, 2);
    }
}
