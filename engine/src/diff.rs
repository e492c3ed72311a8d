//! The replay diff: how decisions would change if a candidate rulebook had been in force. A
//! governance lead runs recorded history through a new rulebook before it goes live and reads
//! what would change, grouped by kind of change (answer → escalate, team A → team B, …), with a
//! few example messages per kind showing both decisions and both reasons.
//!
//! The same report compares the decisions a shadow rulebook made beside the live one as the
//! messages came in ([`DiffReport::shadow`]): `before` is then what the live rulebook decided
//! (and, in `live` mode, did), `after` what the candidate would have.
//!
//! The report keeps counts and a bounded number of samples, so its memory does not grow with the
//! length of the history; callers that need every changed message stream them as they come.

use std::collections::BTreeMap;
use std::fmt::Write;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::decision::{Action, Decision};
use crate::html::escape;
use crate::message::Inbound;

/// Examples kept per kind of change.
pub const SAMPLES_PER_CHANGE: usize = 5;

/// A decision in a few words, for reading side by side.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DecisionSummary {
    pub action: &'static str,
    pub category: String,
    pub team: Option<String>,
    pub priority: Option<String>,
    pub template: Option<String>,
    pub topics: Vec<String>,
    pub reasons: Vec<String>,
    pub rulebook: String,
}

impl From<&Decision> for DecisionSummary {
    fn from(d: &Decision) -> Self {
        let template = match &d.action {
            Action::Answer { template, .. } => Some(template.clone()),
            Action::Escalate { template, .. } => template.clone(),
            Action::Log => None,
        };
        DecisionSummary {
            action: d.action.name(),
            category: d.diagnostics.category.to_string(),
            team: d.action.team().map(str::to_owned),
            priority: d.action.priority().map(|p| p.to_string()),
            template,
            topics: d.topic_ids().map(str::to_owned).collect(),
            reasons: d.diagnostics.reasons.clone(),
            rulebook: d.diagnostics.rulebook.clone(),
        }
    }
}

/// One message whose decision would change.
#[derive(Debug, Clone, Serialize)]
pub struct ChangedMessage {
    pub change: String,
    pub id: String,
    pub channel: String,
    pub received_at: DateTime<Utc>,
    pub text: String,
    pub before: DecisionSummary,
    pub after: DecisionSummary,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct ChangeGroup {
    pub count: u64,
    pub samples: Vec<ChangedMessage>,
}

/// The kind of change between two decisions, most important aspect first; `None` when the
/// decision is the same (wording-only template edits count as a change of the reply).
pub fn change_kind(before: &Decision, after: &Decision) -> Option<String> {
    let (b, a) = (&before.action, &after.action);
    if b.name() != a.name() {
        return Some(format!("{} → {}", b.name(), a.name()));
    }
    if b.team() != a.team() {
        return Some(format!(
            "team {} → {}",
            b.team().unwrap_or("-"),
            a.team().unwrap_or("-")
        ));
    }
    if b.priority() != a.priority() {
        let name = |p: Option<crate::decision::Priority>| p.map_or("-", |p| p.as_str());
        return Some(format!(
            "priority {} → {}",
            name(b.priority()),
            name(a.priority())
        ));
    }
    if let (Action::Answer { template: tb, .. }, Action::Answer { template: ta, .. }) = (b, a)
        && tb != ta
    {
        return Some(format!("template {tb} → {ta}"));
    }
    if before.diagnostics.category != after.diagnostics.category {
        return Some(format!(
            "category {} → {}",
            before.diagnostics.category, after.diagnostics.category
        ));
    }
    if b.reply() != a.reply() {
        return Some("reply text".to_owned());
    }
    None
}

/// Counts and samples of a replay against stored decisions.
#[derive(Debug, Default, Serialize)]
pub struct DiffReport {
    /// `replay` (history decided again by `candidate`) or `shadow` (the decisions a shadow
    /// rulebook made as the messages came in).
    pub kind: &'static str,
    pub candidate: String,
    /// Candidate decisions per rulebook version that made them.
    pub candidate_versions: BTreeMap<String, u64>,
    /// Shadow reports: stored messages without a shadow decision (taken in while no shadow
    /// rulebook ran), not compared.
    pub skipped: u64,
    pub compared: u64,
    pub unchanged: u64,
    /// Stored decisions per rulebook version that made them.
    pub baseline_versions: BTreeMap<String, u64>,
    pub changes: BTreeMap<String, ChangeGroup>,
    pub first_received: Option<DateTime<Utc>>,
    pub last_received: Option<DateTime<Utc>>,
}

impl DiffReport {
    pub fn new(candidate_version: &str) -> Self {
        DiffReport {
            kind: "replay",
            candidate: candidate_version.to_owned(),
            ..DiffReport::default()
        }
    }

    /// A report of stored shadow decisions against the live ones; `candidate` names the
    /// shadow versions met as they are added.
    pub fn shadow() -> Self {
        DiffReport {
            kind: "shadow",
            ..DiffReport::default()
        }
    }

    fn is_shadow(&self) -> bool {
        self.kind == "shadow"
    }

    /// A stored message without a shadow decision.
    pub fn skip(&mut self) {
        self.skipped += 1;
    }

    /// Records one comparison; returns the changed message when the decision changed.
    pub fn add(
        &mut self,
        message: &Inbound,
        before: &Decision,
        after: &Decision,
    ) -> Option<ChangedMessage> {
        self.compared += 1;
        // Nearly every message names a version already counted: no key to allocate then.
        match self.baseline_versions.get_mut(&before.diagnostics.rulebook) {
            Some(count) => *count += 1,
            None => {
                self.baseline_versions
                    .insert(before.diagnostics.rulebook.clone(), 1);
            }
        }
        if !self
            .candidate_versions
            .contains_key(&after.diagnostics.rulebook)
        {
            self.candidate_versions
                .insert(after.diagnostics.rulebook.clone(), 0);
            if self.is_shadow() {
                self.candidate = versions_line(self.candidate_versions.keys());
            }
        }
        if let Some(n) = self.candidate_versions.get_mut(&after.diagnostics.rulebook) {
            *n += 1;
        }
        let at = message.received_at;
        self.first_received = Some(self.first_received.map_or(at, |f| f.min(at)));
        self.last_received = Some(self.last_received.map_or(at, |l| l.max(at)));
        let Some(change) = change_kind(before, after) else {
            self.unchanged += 1;
            return None;
        };
        let changed = ChangedMessage {
            change: change.clone(),
            id: message.id.clone(),
            channel: message.channel.to_string(),
            received_at: at,
            text: message.text.chars().take(280).collect(),
            before: before.into(),
            after: after.into(),
        };
        let group = self.changes.entry(change).or_default();
        group.count += 1;
        if group.samples.len() < SAMPLES_PER_CHANGE {
            group.samples.push(changed.clone());
        }
        Some(changed)
    }

    pub fn changed(&self) -> u64 {
        self.compared - self.unchanged
    }

    /// Change kinds, most frequent first.
    fn ranked(&self) -> Vec<(&String, &ChangeGroup)> {
        let mut groups: Vec<_> = self.changes.iter().collect();
        groups.sort_by(|a, b| b.1.count.cmp(&a.1.count).then(a.0.cmp(b.0)));
        groups
    }

    fn period(&self) -> String {
        match (self.first_received, self.last_received) {
            (Some(first), Some(last)) => format!(
                "{} to {}",
                first.format("%Y-%m-%d %H:%M UTC"),
                last.format("%Y-%m-%d %H:%M UTC")
            ),
            _ => "no messages".to_owned(),
        }
    }

    fn baselines(&self) -> String {
        counted(&self.baseline_versions)
    }

    /// What the two sides of a sample are called.
    fn sides(&self) -> (&'static str, &'static str) {
        if self.is_shadow() {
            ("live", "shadow")
        } else {
            ("before", "after")
        }
    }

    /// The report for a terminal.
    pub fn to_table(&self) -> String {
        let mut out = String::new();
        let pct = |n: u64| {
            if self.compared == 0 {
                0.0
            } else {
                n as f64 * 100.0 / self.compared as f64
            }
        };
        if self.is_shadow() {
            let _ = writeln!(
                out,
                "compared {} live decisions ({}) with the shadow decisions made beside them",
                self.compared,
                self.period()
            );
            let _ = writeln!(out, "live decisions made by rulebook {}", self.baselines());
            let _ = writeln!(
                out,
                "shadow decisions made by rulebook {}",
                counted(&self.candidate_versions)
            );
            if self.skipped > 0 {
                let _ = writeln!(
                    out,
                    "{} stored messages had no shadow decision (no shadow rulebook ran) and are not compared",
                    self.skipped
                );
            }
        } else {
            let _ = writeln!(
                out,
                "replayed {} stored messages ({}) with candidate rulebook {}",
                self.compared,
                self.period(),
                self.candidate
            );
            let _ = writeln!(
                out,
                "stored decisions made by rulebook {}",
                self.baselines()
            );
        }
        let _ = writeln!(
            out,
            "{} unchanged, {} would change ({:.1}%)",
            self.unchanged,
            self.changed(),
            pct(self.changed())
        );
        if self.changes.is_empty() {
            return out;
        }
        let ranked = self.ranked();
        let width = ranked
            .iter()
            .map(|(k, _)| k.chars().count())
            .max()
            .unwrap_or(6)
            .max(6);
        let _ = writeln!(
            out,
            "\n{:<width$}  {:>8}  {:>6}",
            "change", "messages", "share"
        );
        for (kind, group) in &ranked {
            let _ = writeln!(
                out,
                "{kind:<width$}  {:>8}  {:>5.1}%",
                group.count,
                pct(group.count)
            );
        }
        let (before, after) = self.sides();
        let width = before.len().max(after.len()) + 1;
        for (kind, group) in &ranked {
            let _ = writeln!(out, "\n{kind}: {} messages, for example", group.count);
            for s in &group.samples {
                let _ = writeln!(out, "  {} ({}) {:?}", s.id, s.channel, s.text);
                let _ = writeln!(
                    out,
                    "    {:<width$} {}",
                    format!("{before}:"),
                    summary_line(&s.before)
                );
                let _ = writeln!(
                    out,
                    "    {:<width$} {}",
                    format!("{after}:"),
                    summary_line(&s.after)
                );
            }
        }
        out
    }

    /// A self-contained HTML page (no scripts, no network), customer text escaped.
    pub fn to_html(&self) -> String {
        let mut out = String::new();
        if self.is_shadow() {
            let _ = write!(
                out,
                "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>webcare shadow diff {cand}</title><style>{CSS}</style></head><body><h1>Shadow diff</h1><p>{n} live decisions ({period}), made by rulebook {base}, against the shadow decisions made beside them by rulebook {cands}.{skipped}</p><p class=\"big\">{unchanged} unchanged &middot; <strong>{changed} would change</strong></p>",
                cand = escape(&self.candidate),
                n = self.compared,
                period = escape(&self.period()),
                base = escape(&self.baselines()),
                cands = escape(&counted(&self.candidate_versions)),
                skipped = if self.skipped > 0 {
                    format!(
                        " {} stored messages had no shadow decision and are not compared.",
                        self.skipped
                    )
                } else {
                    String::new()
                },
                unchanged = self.unchanged,
                changed = self.changed(),
            );
        } else {
            let _ = write!(
                out,
                "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>webcare replay diff {cand}</title><style>{CSS}</style></head><body><h1>Replay diff</h1><p>Candidate rulebook <code>{cand}</code> against {n} stored decisions ({period}), made by rulebook {base}.</p><p class=\"big\">{unchanged} unchanged &middot; <strong>{changed} would change</strong></p>",
                cand = escape(&self.candidate),
                n = self.compared,
                period = escape(&self.period()),
                base = escape(&self.baselines()),
                unchanged = self.unchanged,
                changed = self.changed(),
            );
        }
        let (before, after) = self.sides();
        if !self.changes.is_empty() {
            out.push_str("<table><tr><th>change</th><th>messages</th></tr>");
            for (kind, group) in self.ranked() {
                let _ = write!(
                    out,
                    "<tr><td>{}</td><td class=\"n\">{}</td></tr>",
                    escape(kind),
                    group.count
                );
            }
            out.push_str("</table>");
            for (kind, group) in self.ranked() {
                let _ = write!(
                    out,
                    "<h2>{} <small>({} messages)</small></h2>",
                    escape(kind),
                    group.count
                );
                for s in &group.samples {
                    let _ = write!(
                        out,
                        "<div class=\"msg\"><p><code>{}</code> {} &middot; {}</p><blockquote>{}</blockquote><table><tr><th></th><th>{before}</th><th>{after}</th></tr>{}</table></div>",
                        escape(&s.id),
                        escape(&s.channel),
                        s.received_at.format("%Y-%m-%d %H:%M UTC"),
                        escape(&s.text),
                        side_by_side(&s.before, &s.after)
                    );
                }
            }
        }
        out.push_str("</body></html>\n");
        out
    }
}

const CSS: &str = "body{font:15px/1.45 system-ui,sans-serif;max-width:960px;margin:2em auto;padding:0 1em;color:#222}table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}td.n{text-align:right}.big{font-size:1.2em}.msg{border-left:4px solid #c60;padding-left:1em;margin:1em 0}blockquote{margin:.3em 0;color:#444;white-space:pre-wrap}";

fn counted(versions: &BTreeMap<String, u64>) -> String {
    versions
        .iter()
        .map(|(v, n)| format!("{v} ({n})"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn versions_line<'a>(versions: impl Iterator<Item = &'a String>) -> String {
    versions.map(String::as_str).collect::<Vec<_>>().join(", ")
}

fn summary_line(s: &DecisionSummary) -> String {
    let mut line = s.action.to_owned();
    if let Some(team) = &s.team {
        let _ = write!(line, " to {team}");
    }
    if let Some(priority) = &s.priority {
        let _ = write!(line, " ({priority})");
    }
    if let Some(template) = &s.template {
        let _ = write!(line, " template {template}");
    }
    let _ = write!(line, "; {}; why: {}", s.category, s.reasons.join(" / "));
    line
}

fn side_by_side(before: &DecisionSummary, after: &DecisionSummary) -> String {
    let rows: [(&str, String, String); 7] = [
        ("action", before.action.to_owned(), after.action.to_owned()),
        (
            "team",
            before.team.clone().unwrap_or_default(),
            after.team.clone().unwrap_or_default(),
        ),
        (
            "priority",
            before.priority.clone().unwrap_or_default(),
            after.priority.clone().unwrap_or_default(),
        ),
        (
            "template",
            before.template.clone().unwrap_or_default(),
            after.template.clone().unwrap_or_default(),
        ),
        ("category", before.category.clone(), after.category.clone()),
        ("topics", before.topics.join(", "), after.topics.join(", ")),
        ("why", before.reasons.join(" / "), after.reasons.join(" / ")),
    ];
    rows.iter()
        .map(|(name, b, a)| {
            format!(
                "<tr><th>{name}</th><td>{}</td><td>{}</td></tr>",
                escape(b),
                escape(a)
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ChannelKind, DecideContext, Rulebook, RulebookSource};

    #[test]
    fn a_changed_keyword_changes_exactly_the_messages_that_use_it() {
        let base = Rulebook::embedded().unwrap_or_else(|e| panic!("{e}"));
        let mut source = RulebookSource::embedded();
        // "paspoort*" becomes "=paspoort": plurals no longer match (not even as a stem), the
        // singular still does.
        source.topics.text = source.topics.text.replacen(
            "[\"paspoort*\", \"id kaart*\"",
            "[\"=paspoort\", \"id kaart*\"",
            1,
        );
        let candidate = Rulebook::compile(source).unwrap_or_else(|e| panic!("{e}"));
        let at = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 11, 23, 9, 0, 0)
            .single()
            .unwrap_or_default();
        let texts = [
            "Ik wil een paspoort aanvragen",
            "Wat zijn de openingstijden?",
            "Er is brand!",
            "Mijn paspoorten zijn verlopen",
        ];
        let mut report = DiffReport::new(&candidate.version);
        let mut changed_ids = Vec::new();
        for (i, text) in texts.iter().enumerate() {
            let m = Inbound::from_text(format!("m{i}"), ChannelKind::Webchat, *text, at);
            let before = base.decide(&m, &DecideContext::default());
            let after = candidate.decide(&m, &DecideContext::default());
            if let Some(c) = report.add(&m, &before, &after) {
                changed_ids.push(c.id);
            }
        }
        assert_eq!(changed_ids, ["m3"]);
        assert_eq!(report.compared, 4);
        assert_eq!(report.changed() as usize, changed_ids.len());
        let table = report.to_table();
        assert!(table.contains("would change"), "{table}");
        let html = report.to_html();
        assert!(html.starts_with("<!doctype html>") && !html.contains("<script"));
        assert_eq!(report.kind, "replay");
        assert_eq!(report.candidate_versions.get(&candidate.version), Some(&4));

        // The same comparison as a shadow report names both sides and the candidate version.
        let mut shadow = DiffReport::shadow();
        for (i, text) in texts.iter().enumerate() {
            let m = Inbound::from_text(format!("m{i}"), ChannelKind::Webchat, *text, at);
            let live = base.decide(&m, &DecideContext::default());
            let beside = candidate.decide(&m, &DecideContext::default());
            shadow.add(&m, &live, &beside);
        }
        shadow.skip();
        assert_eq!(shadow.candidate, candidate.version);
        assert_eq!(
            (shadow.compared, shadow.changed(), shadow.skipped),
            (4, 1, 1)
        );
        let table = shadow.to_table();
        assert!(table.contains("compared 4 live decisions"), "{table}");
        assert!(
            table.contains("1 stored messages had no shadow decision"),
            "{table}"
        );
        assert!(
            table.contains("    live:   ") && table.contains("    shadow: "),
            "{table}"
        );
        let html = shadow.to_html();
        assert!(html.contains("<h1>Shadow diff</h1>") && html.contains("<th>shadow</th>"));
    }
}
