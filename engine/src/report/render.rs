//! The report as text for a terminal and as CSV for a spreadsheet. Both print the same figures as
//! the JSON and HTML forms; the CSV is long (`section,key,value`) so that a new figure never
//! shifts the columns a team lead's spreadsheet reads.

use std::fmt::Write;

use super::{Percentiles, Report, Timing};

/// `1h 05m`, `12m 30s`, `-` when there is no value.
pub fn duration(secs: Option<i64>) -> String {
    let Some(s) = secs else {
        return "-".to_owned();
    };
    let (d, h, m, s) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60, s % 60);
    if d > 0 {
        format!("{d}d {h:02}h")
    } else if h > 0 {
        format!("{h}h {m:02}m")
    } else if m > 0 {
        format!("{m}m {s:02}s")
    } else {
        format!("{s}s")
    }
}

/// The period as a person reads it: in the rulebook's local time, which is where "a week"
/// starts and ends.
pub fn period(report: &Report) -> String {
    match report.timezone.parse::<chrono_tz::Tz>() {
        Ok(tz) => format!(
            "{} – {} ({})",
            report.since.with_timezone(&tz).format("%Y-%m-%d %H:%M"),
            report.until.with_timezone(&tz).format("%Y-%m-%d %H:%M"),
            report.timezone
        ),
        Err(_) => format!(
            "{} – {} (UTC)",
            report.since.format("%Y-%m-%d %H:%M"),
            report.until.format("%Y-%m-%d %H:%M")
        ),
    }
}

fn timing_line(out: &mut String, name: &str, t: &Timing) {
    let p = |p: &Percentiles| {
        format!(
            "median {:>8}  p90 {:>8}",
            duration(p.median_secs),
            duration(p.p90_secs)
        )
    };
    let _ = writeln!(
        out,
        "  {name:<22} n={:<6} calendar: {}   office: {}",
        t.calendar.count,
        p(&t.calendar),
        p(&t.office)
    );
}

/// The terminal form.
pub fn table(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "webcare report  {}", period(report));
    let _ = writeln!(
        out,
        "based on {} messages (previous period: {}){}{}",
        report.messages,
        report.previous_messages,
        report
            .channel
            .map(|c| format!(", channel {c}"))
            .unwrap_or_default(),
        report
            .team
            .as_ref()
            .map(|t| format!(", team {t}"))
            .unwrap_or_default()
    );
    for warning in &report.warnings {
        let _ = writeln!(out, "WARNING: {warning}");
    }
    let versions: Vec<String> = report
        .rulebook_versions
        .iter()
        .map(|v| format!("{} ({} messages)", v.version, v.messages))
        .collect();
    let _ = writeln!(
        out,
        "rulebook versions: {}",
        if versions.is_empty() {
            "-".to_owned()
        } else {
            versions.join(", ")
        }
    );

    let r = &report.rates;
    let _ = writeln!(out, "\nhandling");
    let _ = writeln!(
        out,
        "  automated (bot only)   {:>7}  {:>5.1}%",
        r.automated, r.automation_pct
    );
    let _ = writeln!(
        out,
        "  escalated              {:>7}  {:>5.1}%",
        r.escalated, r.escalation_pct
    );
    let _ = writeln!(
        out,
        "  log only               {:>7}  {:>5.1}%",
        r.logged, r.log_pct
    );
    if r.not_acted > 0 {
        let _ = writeln!(
            out,
            "  not acted on           {:>7}  (listen or shadow mode: recorded, nothing sent)",
            r.not_acted
        );
    }
    let _ = writeln!(
        out,
        "  unanswered             {:>7}",
        report.unanswered.len()
    );
    for u in &report.unanswered {
        let _ = writeln!(
            out,
            "    {} {} {} (conversation {}, {}{})",
            u.received_at.format("%Y-%m-%d %H:%M"),
            u.channel,
            u.id,
            u.conversation,
            u.action,
            u.team
                .as_ref()
                .map(|t| format!(" to {t}"))
                .unwrap_or_default()
        );
    }

    let _ = writeln!(out, "\nresponse times");
    timing_line(&mut out, "first response, bot", &report.frt_bot);
    timing_line(&mut out, "first response, human", &report.frt_human);
    timing_line(&mut out, "resolution", &report.resolution);

    let (met, breached, pending) = report.sla_totals();
    let _ = writeln!(
        out,
        "\nSLA ({} escalations): met {met}, breached {breached}, pending {pending}",
        report.escalations
    );
    for row in &report.sla {
        let _ = writeln!(
            out,
            "  {:<16} {:<7} met {:>5}  breached {:>5}  pending {:>5}  no SLA {:>5}",
            row.team, row.priority, row.met, row.breached, row.pending, row.no_deadline
        );
    }
    super::agents::text(&mut out, &report.agents, &report.satisfaction);
    let f = &report.first_time_resolution;
    let _ = writeln!(
        out,
        "\nfirst-time resolution ({} days): {} of {} cases{}{}",
        f.days,
        f.resolved_first_time,
        f.cases,
        f.pct.map(|p| format!(" = {p:.1}%")).unwrap_or_default(),
        if f.not_yet_known > 0 {
            format!(" ({} not yet known)", f.not_yet_known)
        } else {
            String::new()
        }
    );

    let _ = writeln!(out, "\nsentiment");
    for (label, count) in &report.sentiment {
        let _ = writeln!(out, "  {label:<10} {count:>7}");
    }
    for (title, map) in [
        ("channel", &report.by_channel),
        ("category", &report.by_category),
        ("team", &report.by_team),
    ] {
        let _ = writeln!(out, "\nvolume per {title}");
        for (key, count) in map {
            let _ = writeln!(out, "  {key:<22} {count:>7}");
        }
    }
    let _ = writeln!(
        out,
        "\nvolume per {}",
        match report.granularity {
            super::Granularity::Day => "day",
            super::Granularity::Week => "week (from Monday)",
        }
    );
    for b in &report.volume {
        let _ = writeln!(
            out,
            "  {}  {:>7}  negative {:>5}  positive {:>5}",
            b.start, b.messages, b.negative, b.positive
        );
    }
    let _ = writeln!(out, "\ntop topics (previous period)");
    for t in &report.top_topics {
        let _ = writeln!(out, "  {:<22} {:>7}  ({})", t.topic, t.count, t.previous);
    }
    let _ = writeln!(out, "\ntrending topics");
    for t in &report.trending {
        let growth = t
            .growth_pct
            .map(|g| format!("{g:+.1}%"))
            .unwrap_or_else(|| "new".to_owned());
        let _ = writeln!(
            out,
            "  {:<22} {:>7}  was {:>5}  {growth}",
            t.topic, t.count, t.previous
        );
    }
    out
}

/// The spreadsheet form: one figure per line, `section,key,value`.
pub fn csv(report: &Report) -> String {
    let mut rows: Vec<(String, String, String)> = Vec::new();
    let mut row = |s: &str, k: &str, v: String| rows.push((s.to_owned(), k.to_owned(), v));
    row("period", "since", report.since.to_rfc3339());
    row("period", "until", report.until.to_rfc3339());
    row("period", "messages", report.messages.to_string());
    row(
        "period",
        "previous_messages",
        report.previous_messages.to_string(),
    );
    for w in &report.warnings {
        row("warning", "", w.clone());
    }
    for v in &report.rulebook_versions {
        row("rulebook_version", &v.version, v.messages.to_string());
    }
    let r = &report.rates;
    row("rates", "automated", r.automated.to_string());
    row("rates", "escalated", r.escalated.to_string());
    row("rates", "logged", r.logged.to_string());
    if r.not_acted > 0 {
        row("rates", "not_acted", r.not_acted.to_string());
    }
    row(
        "rates",
        "automation_pct",
        format!("{:.1}", r.automation_pct),
    );
    row(
        "rates",
        "escalation_pct",
        format!("{:.1}", r.escalation_pct),
    );
    row("rates", "log_pct", format!("{:.1}", r.log_pct));
    row("rates", "unanswered", report.unanswered.len().to_string());
    for u in &report.unanswered {
        row(
            "unanswered",
            &format!("{}/{}", u.channel, u.id),
            u.received_at.to_rfc3339(),
        );
    }
    let opt = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
    for (name, t) in [
        ("frt_bot", &report.frt_bot),
        ("frt_human", &report.frt_human),
        ("resolution", &report.resolution),
    ] {
        row(name, "count", t.calendar.count.to_string());
        row(name, "calendar_median_secs", opt(t.calendar.median_secs));
        row(name, "calendar_p90_secs", opt(t.calendar.p90_secs));
        row(name, "office_median_secs", opt(t.office.median_secs));
        row(name, "office_p90_secs", opt(t.office.p90_secs));
    }
    row("sla", "escalations", report.escalations.to_string());
    for s in &report.sla {
        let key = format!("{}/{}", s.team, s.priority);
        row("sla_met", &key, s.met.to_string());
        row("sla_breached", &key, s.breached.to_string());
        row("sla_pending", &key, s.pending.to_string());
        row("sla_no_deadline", &key, s.no_deadline.to_string());
    }
    super::agents::rows(&report.agents, &report.satisfaction, &mut row);
    let f = &report.first_time_resolution;
    row("ftr", "days", f.days.to_string());
    row("ftr", "cases", f.cases.to_string());
    row(
        "ftr",
        "resolved_first_time",
        f.resolved_first_time.to_string(),
    );
    row("ftr", "not_yet_known", f.not_yet_known.to_string());
    for (k, v) in &report.sentiment {
        row("sentiment", k, v.to_string());
    }
    for (section, map) in [
        ("channel", &report.by_channel),
        ("category", &report.by_category),
        ("team", &report.by_team),
        ("topic", &report.by_topic),
    ] {
        for (k, v) in map {
            row(section, k, v.to_string());
        }
    }
    for b in &report.volume {
        row("volume", &b.start.to_string(), b.messages.to_string());
    }
    for t in &report.trending {
        row(
            "trending",
            &t.topic,
            t.growth_pct
                .map(|g| format!("{g:.1}"))
                .unwrap_or_else(|| "new".to_owned()),
        );
    }
    // The csv crate quotes what needs quoting (RFC 4180); writing to memory cannot fail, and
    // every row has the same three fields.
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    let _ = writer.write_record(["section", "key", "value"]);
    for (s, k, v) in rows {
        let _ = writer.write_record([s, k, v]);
    }
    let bytes = writer.into_inner().unwrap_or_default();
    String::from_utf8(bytes).unwrap_or_default()
}
