//! The report as one self-contained HTML file for managers: inline CSS and inline SVG charts, no
//! script, no font or image from the network, so it opens from a mail attachment or a file
//! share on any machine, and prints. Every string from the store (topics, team names, message
//! ids) goes through [`escape`], because customer-controlled ids end up here too.
//!
//! Two presets frame the same figures: the **weekly digest** for the team (what happened, what
//! is left, what is trending) and the **quarterly report** for management (the whole picture,
//! with the definitions spelled out).

use std::fmt::Write;

use super::render::{duration, period};
use super::{Report, Timing};
use crate::html::escape;

/// Which audience the page is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Preset {
    /// Every section.
    #[default]
    Full,
    /// The team's weekly digest: the key figures, unanswered, SLA, trending.
    Weekly,
    /// The management report: every section plus the definitions.
    Quarterly,
}

/// The page style of every report page webcare renders (also `webcare eval`'s), so they look alike.
pub(crate) const STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2rem auto;max-width:60rem;color:#1f2933;padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #d9e2ec;padding-bottom:.3rem}
.meta{color:#52606d}.warn{background:#fff3c4;border-left:4px solid #f0b429;padding:.5rem 1rem;margin:.5rem 0}
.kpis{display:flex;flex-wrap:wrap;gap:1rem;margin:1rem 0}.kpi{border:1px solid #d9e2ec;border-radius:6px;padding:.7rem 1rem;min-width:9rem}
.kpi b{display:block;font-size:1.5rem}.kpi span{color:#52606d;font-size:.85rem}
table{border-collapse:collapse;margin:.5rem 0}td,th{padding:.25rem .8rem;border-bottom:1px solid #e4e7eb;text-align:left}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}.chart{display:block;margin:.5rem 0}
.bad{color:#ab091e;font-weight:bold}.good{color:#0e7c3a;font-weight:bold}
@media print{body{margin:0}}";

/// One key figure in a box: the value large, what it is below.
pub(crate) fn kpi(out: &mut String, value: &str, label: &str) {
    let _ = write!(
        out,
        "<div class=\"kpi\"><b>{}</b><span>{}</span></div>",
        escape(value),
        escape(label)
    );
}

/// A vertical bar chart; `bars` are (label, value). `id` names the chart for tests and links.
fn bar_chart(out: &mut String, id: &str, title: &str, bars: &[(String, u64)], color: &str) {
    let width = 760.0;
    let height = 220.0;
    let (left, bottom, top) = (40.0, 40.0, 10.0);
    let max = bars.iter().map(|b| b.1).max().unwrap_or(0).max(1) as f64;
    let n = bars.len().max(1) as f64;
    let slot = (width - left) / n;
    let _ = write!(
        out,
        "<svg class=\"chart\" id=\"{id}\" role=\"img\" aria-label=\"{t}\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" xmlns=\"http://www.w3.org/2000/svg\"><title>{t}</title>",
        t = escape(title)
    );
    let plot = height - bottom - top;
    let _ = write!(
        out,
        "<line x1=\"{left}\" y1=\"{y}\" x2=\"{width}\" y2=\"{y}\" stroke=\"#9aa5b1\"/><text x=\"{x}\" y=\"{ty}\" font-size=\"10\" text-anchor=\"end\">{max}</text>",
        y = height - bottom,
        x = left - 4.0,
        ty = top + 8.0,
        max = max as u64
    );
    // Label every bar when they fit, otherwise about twelve of them.
    let every = (bars.len() / 12).max(1);
    for (i, (label, value)) in bars.iter().enumerate() {
        let h = (*value as f64 / max * plot).max(if *value > 0 { 1.0 } else { 0.0 });
        let x = left + i as f64 * slot + slot * 0.1;
        let w = (slot * 0.8).max(1.0);
        let _ = write!(
            out,
            "<rect class=\"bar\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{h:.1}\" fill=\"{color}\"><title>{l}: {value}</title></rect>",
            y = height - bottom - h,
            l = escape(label)
        );
        if i % every == 0 {
            let _ = write!(
                out,
                "<text x=\"{cx:.1}\" y=\"{ty}\" font-size=\"10\" text-anchor=\"middle\">{l}</text>",
                cx = x + w / 2.0,
                ty = height - bottom + 14.0,
                l = escape(label)
            );
        }
    }
    out.push_str("</svg>");
}

/// One bar of a stacked chart: its label and its segments as (value, colour, name).
type StackedRow = (String, Vec<(u64, &'static str, &'static str)>);

/// Horizontal stacked bars, one row per label.
fn stacked_chart(out: &mut String, id: &str, title: &str, rows: &[StackedRow]) {
    let width = 760.0;
    let row_h = 26.0;
    let left = 200.0;
    let height = (rows.len().max(1) as f64) * row_h + 30.0;
    let max = rows
        .iter()
        .map(|(_, segs)| segs.iter().map(|s| s.0).sum::<u64>())
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let _ = write!(
        out,
        "<svg class=\"chart\" id=\"{id}\" role=\"img\" aria-label=\"{t}\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" xmlns=\"http://www.w3.org/2000/svg\"><title>{t}</title>",
        t = escape(title)
    );
    for (i, (label, segs)) in rows.iter().enumerate() {
        let y = i as f64 * row_h + 4.0;
        let _ = write!(
            out,
            "<text x=\"{x}\" y=\"{ty:.1}\" font-size=\"12\" text-anchor=\"end\">{l}</text>",
            x = left - 6.0,
            ty = y + 15.0,
            l = escape(label)
        );
        let mut x = left;
        for (value, color, name) in segs {
            let w = *value as f64 / max * (width - left - 10.0);
            if w > 0.0 {
                let _ = write!(
                    out,
                    "<rect class=\"bar\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{h}\" fill=\"{color}\"><title>{l} {name}: {value}</title></rect>",
                    h = row_h - 8.0,
                    l = escape(label)
                );
            }
            x += w;
        }
    }
    // The legend, so the colours need no explanation elsewhere.
    let ly = height - 10.0;
    let mut lx = left;
    if let Some((_, segs)) = rows.first() {
        for (_, color, name) in segs {
            let _ = write!(
                out,
                "<rect x=\"{lx}\" y=\"{y}\" width=\"10\" height=\"10\" fill=\"{color}\"/><text x=\"{tx}\" y=\"{ly}\" font-size=\"11\">{name}</text>",
                y = ly - 9.0,
                tx = lx + 14.0
            );
            lx += 100.0;
        }
    }
    out.push_str("</svg>");
}

/// The FRT distribution in fixed bands a manager recognises.
fn frt_bands(timing: &Timing) -> Vec<(String, u64)> {
    const BANDS: [(i64, &str); 7] = [
        (60, "< 1m"),
        (15 * 60, "< 15m"),
        (3600, "< 1h"),
        (4 * 3600, "< 4h"),
        (8 * 3600, "< 8h"),
        (24 * 3600, "< 24h"),
        (i64::MAX, "≥ 24h"),
    ];
    let mut counts = [0u64; 7];
    for s in &timing.samples {
        let i = BANDS.iter().position(|(max, _)| s < max).unwrap_or(6);
        counts[i] += 1;
    }
    BANDS
        .iter()
        .zip(counts)
        .map(|((_, l), c)| ((*l).to_owned(), c))
        .collect()
}

fn timing_row(out: &mut String, name: &str, t: &Timing) {
    let _ = write!(
        out,
        "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
        escape(name),
        t.calendar.count,
        duration(t.calendar.median_secs),
        duration(t.calendar.p90_secs),
        duration(t.office.median_secs),
        duration(t.office.p90_secs)
    );
}

fn count_table(out: &mut String, title: &str, map: &std::collections::BTreeMap<String, u64>) {
    let _ = write!(
        out,
        "<table><tr><th>{}</th><th class=\"n\">messages</th></tr>",
        escape(title)
    );
    for (k, v) in map {
        let _ = write!(
            out,
            "<tr><td>{}</td><td class=\"n\">{v}</td></tr>",
            escape(k)
        );
    }
    out.push_str("</table>");
}

/// The whole page.
pub fn page(report: &Report, preset: Preset) -> String {
    let title = match preset {
        Preset::Full => "Webcare report",
        Preset::Weekly => "Webcare weekly digest",
        Preset::Quarterly => "Webcare quarterly report",
    };
    let mut out = String::with_capacity(32 * 1024);
    let _ = write!(
        out,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\"><title>{title}</title><style>{STYLE}</style></head><body>"
    );
    let _ = write!(
        out,
        "<h1>{title}</h1><p class=\"meta\" id=\"period\">Period {}. Based on <b id=\"based-on\">{}</b> messages (previous period of the same length: {}){}{}. Generated {}.</p>",
        escape(&period(report)),
        report.messages,
        report.previous_messages,
        report
            .channel
            .map(|c| format!("; channel {c}"))
            .unwrap_or_default(),
        report
            .team
            .as_ref()
            .map(|t| format!("; team {}", escape(t)))
            .unwrap_or_default(),
        report.generated_at.format("%Y-%m-%d %H:%M UTC")
    );
    for w in &report.warnings {
        let _ = write!(out, "<p class=\"warn\">{}</p>", escape(w));
    }
    let versions: Vec<String> = report
        .rulebook_versions
        .iter()
        .map(|v| {
            format!(
                "<code>{}</code> ({} messages, {} – {})",
                escape(&v.version),
                v.messages,
                v.first.format("%Y-%m-%d"),
                v.last.format("%Y-%m-%d")
            )
        })
        .collect();
    let _ = write!(
        out,
        "<p class=\"meta\">Rulebook versions: {}</p>",
        if versions.is_empty() {
            "none".to_owned()
        } else {
            versions.join(", ")
        }
    );

    let r = &report.rates;
    let (met, breached, pending) = report.sla_totals();
    out.push_str("<div class=\"kpis\">");
    kpi(&mut out, &report.messages.to_string(), "messages");
    kpi(
        &mut out,
        &format!("{:.1}%", r.automation_pct),
        "answered by the bot",
    );
    kpi(&mut out, &format!("{:.1}%", r.escalation_pct), "escalated");
    kpi(&mut out, &report.unanswered.len().to_string(), "unanswered");
    if r.not_acted > 0 {
        kpi(
            &mut out,
            &r.not_acted.to_string(),
            "not acted on (listen or shadow mode)",
        );
    }
    kpi(
        &mut out,
        &duration(report.frt_human.calendar.median_secs),
        "median first human response",
    );
    kpi(
        &mut out,
        &if met + breached > 0 {
            format!("{:.1}%", met as f64 * 100.0 / (met + breached) as f64)
        } else {
            "-".to_owned()
        },
        "SLA met",
    );
    kpi(
        &mut out,
        &report
            .first_time_resolution
            .pct
            .map(|p| format!("{p:.1}%"))
            .unwrap_or_else(|| "-".to_owned()),
        "first-time resolution",
    );
    out.push_str("</div>");

    out.push_str("<h2>Volume over time</h2>");
    let bars: Vec<(String, u64)> = report
        .volume
        .iter()
        .map(|b| (b.start.format("%d %b").to_string(), b.messages))
        .collect();
    bar_chart(
        &mut out,
        "chart-volume",
        "Messages per period",
        &bars,
        "#2680c2",
    );

    out.push_str("<h2>Unanswered</h2>");
    if report.unanswered.is_empty() {
        out.push_str("<p class=\"good\">Every message got a reply.</p>");
    } else {
        let _ = write!(
            out,
            "<p class=\"bad\">Messages that got no reply at all: {}</p><table><tr><th>received</th><th>channel</th><th>message</th><th>conversation</th><th>decision</th></tr>",
            report.unanswered.len()
        );
        for u in &report.unanswered {
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}{}</td></tr>",
                u.received_at.format("%Y-%m-%d %H:%M"),
                u.channel,
                escape(&u.id),
                escape(&u.conversation),
                u.action,
                u.team
                    .as_ref()
                    .map(|t| format!(" to {}", escape(t)))
                    .unwrap_or_default()
            );
        }
        out.push_str("</table>");
    }

    out.push_str("<h2>Response times</h2><table><tr><th></th><th class=\"n\">n</th><th class=\"n\">median</th><th class=\"n\">p90</th><th class=\"n\">median (office hours)</th><th class=\"n\">p90 (office hours)</th></tr>");
    timing_row(&mut out, "first response, bot", &report.frt_bot);
    timing_row(&mut out, "first response, human", &report.frt_human);
    timing_row(&mut out, "resolution", &report.resolution);
    out.push_str("</table>");
    let mut combined = report.frt_human.clone();
    combined
        .samples
        .extend(report.frt_bot.samples.iter().copied());
    bar_chart(
        &mut out,
        "chart-frt",
        "First responses by time to respond (bot and human)",
        &frt_bands(&combined),
        "#3ebd93",
    );

    let _ = write!(
        out,
        "<h2>SLA by team</h2><p>{} escalations: met {met}, breached {breached}, pending {pending}.</p>",
        report.escalations
    );
    let mut teams: Vec<StackedRow> = Vec::new();
    for row in &report.sla {
        match teams.iter_mut().find(|(t, _)| *t == row.team) {
            Some((_, segs)) => {
                segs[0].0 += row.met;
                segs[1].0 += row.breached;
                segs[2].0 += row.pending;
            }
            None => teams.push((
                row.team.clone(),
                vec![
                    (row.met, "#3ebd93", "met"),
                    (row.breached, "#e12d39", "breached"),
                    (row.pending, "#f0b429", "pending"),
                ],
            )),
        }
    }
    stacked_chart(
        &mut out,
        "chart-sla",
        "SLA met and breached per team",
        &teams,
    );
    out.push_str("<table><tr><th>team</th><th>priority</th><th class=\"n\">met</th><th class=\"n\">breached</th><th class=\"n\">pending</th><th class=\"n\">no SLA</th></tr>");
    for row in &report.sla {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            escape(&row.team),
            row.priority,
            row.met,
            row.breached,
            row.pending,
            row.no_deadline
        );
    }
    out.push_str("</table>");
    super::agents::html(&mut out, &report.agents, &report.satisfaction);

    out.push_str("<h2>Topics</h2>");
    let trend_rows: Vec<StackedRow> = report
        .top_topics
        .iter()
        .map(|t| {
            (
                t.topic.clone(),
                vec![
                    (t.previous, "#9aa5b1", "previous"),
                    (t.count, "#2680c2", "this period"),
                ],
            )
        })
        .collect();
    stacked_chart(
        &mut out,
        "chart-topics",
        "Top topics, previous period against this one",
        &trend_rows,
    );
    out.push_str("<table><tr><th>trending topic</th><th class=\"n\">this period</th><th class=\"n\">previous</th><th class=\"n\">growth</th></tr>");
    for t in &report.trending {
        let _ = write!(
            out,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            escape(&t.topic),
            t.count,
            t.previous,
            t.growth_pct
                .map(|g| format!("{g:+.1}%"))
                .unwrap_or_else(|| "new".to_owned())
        );
    }
    out.push_str("</table>");

    let _ = write!(
        out,
        "<h2>Sentiment</h2><p>negative {}, neutral {}, positive {}.</p>",
        report.sentiment.get("negative").copied().unwrap_or(0),
        report.sentiment.get("neutral").copied().unwrap_or(0),
        report.sentiment.get("positive").copied().unwrap_or(0)
    );
    if preset != Preset::Weekly {
        let negative: Vec<(String, u64)> = report
            .volume
            .iter()
            .map(|b| (b.start.format("%d %b").to_string(), b.negative))
            .collect();
        bar_chart(
            &mut out,
            "chart-negative",
            "Negative messages per period",
            &negative,
            "#e12d39",
        );
        out.push_str("<h2>Volume</h2>");
        count_table(&mut out, "channel", &report.by_channel);
        count_table(&mut out, "category", &report.by_category);
        count_table(&mut out, "team", &report.by_team);
        let f = &report.first_time_resolution;
        let _ = write!(
            out,
            "<h2>First-time resolution</h2><p>{} of {} cases were resolved without the customer writing again within {} days{}.</p>",
            f.resolved_first_time,
            f.cases,
            f.days,
            if f.not_yet_known > 0 {
                format!(" ({} more cases are too recent to tell)", f.not_yet_known)
            } else {
                String::new()
            }
        );
    }
    if preset == Preset::Quarterly {
        out.push_str("<h2>How these figures are made</h2><ul>\
<li><b>Answered by the bot</b>: an automatic answer, no human involved. <b>Escalated</b>: handed to a team, with a holding reply where one applies.</li>\
<li><b>Unanswered</b>: neither an automatic reply nor a human reply; log-only messages (compliments, spam, mentions) are not expected to get one. This must be zero.</li>\
<li><b>Not acted on</b>: decided while the channel was listening (or in shadow mode, for answers): recorded, nothing sent by the bot; the team answered these by hand, outside webcare, so they are not counted as unanswered.</li>\
<li><b>First response</b>: from the customer's message to the first reply; <b>office hours</b> count only the team's opening hours.</li>\
<li><b>Median and p90</b>: half of the cases were faster than the median, nine in ten faster than the p90.</li>\
<li><b>SLA met</b>: a human replied or resolved the case before its deadline.</li>\
<li><b>First-time resolution</b>: the customer did not have to write again about it.</li>\
<li><b>Trending</b>: compared with the previous period of the same length.</li></ul>");
    }
    out.push_str("</body></html>\n");
    out
}
