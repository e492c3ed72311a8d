//! The evaluation as a plain-text table for the terminal and CI logs, and as one self-contained
//! HTML page (inline CSS, no script, nothing from the network) to share with the team. The JSON
//! form is the report's serde shape. Message text is customer text: in the page it goes through
//! [`escape`] like everywhere else.

use std::fmt::Write;

use super::{EvalReport, Miss, Share};
use crate::html::escape;
use crate::report::html::{STYLE, kpi};

/// `0.857`, or `-` when undefined.
fn ratio(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| format!("{v:.3}"))
}

/// `81.8%`, or `-` when undefined.
fn pct(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| format!("{:.1}%", v * 100.0))
}

fn threshold_state(share: &Share, min: f64) -> &'static str {
    match share.share {
        None => "not measured",
        Some(value) if value < min - 1e-9 => "FAILED",
        Some(_) => "ok",
    }
}

impl EvalReport {
    /// The report for a terminal or a CI log; the verdict is the last line.
    pub fn to_table(&self) -> String {
        let mut out = String::new();
        let h = &self.header;
        let _ = writeln!(
            out,
            "webcare eval: {}, {} labelled messages",
            h.file, self.messages
        );
        let _ = writeln!(
            out,
            "rulebook `{}` version {}; decided as {} messages at {}",
            h.rulebook_name, h.rulebook_version, h.channel, h.decided_at
        );
        for warning in &self.warnings {
            let _ = writeln!(out, "warning: {warning}");
        }
        let t = &self.thresholds;
        let rows = [
            (
                "acceptable decisions",
                &self.acceptable,
                format!(
                    "min_acceptable {:.1}%: {}",
                    t.min_acceptable * 100.0,
                    threshold_state(&self.acceptable, t.min_acceptable)
                ),
            ),
            (
                "critical recall",
                &self.critical_recall,
                format!(
                    "min_critical_recall {:.1}%: {}",
                    t.min_critical_recall * 100.0,
                    threshold_state(&self.critical_recall, t.min_critical_recall)
                ),
            ),
            (
                "automation rate",
                &self.automation,
                "answered or logged, without a person".to_owned(),
            ),
            (
                "category accuracy",
                &self.category_accuracy,
                "the category seen is the label".to_owned(),
            ),
        ];
        out.push('\n');
        for (name, share, note) in rows {
            let _ = writeln!(
                out,
                "{name:<21} {:>6} of {:<6} {:>6}   {note}",
                share.count,
                share.of,
                share.percent()
            );
        }

        let _ = writeln!(
            out,
            "\nper category (predicted: the category the rulebook saw; true: the label)"
        );
        let _ = writeln!(
            out,
            "{:<11} {:>8} {:>9} {:>7} {:>9} {:>7} {:>6}  acceptable",
            "category", "labelled", "predicted", "correct", "precision", "recall", "F1"
        );
        for c in &self.categories {
            let acceptable = if c.labelled == 0 {
                "-".to_owned()
            } else {
                format!(
                    "{:>5} of {:<5} {:>6}",
                    c.acceptable.count,
                    c.acceptable.of,
                    c.acceptable.percent()
                )
            };
            let _ = writeln!(
                out,
                "{:<11} {:>8} {:>9} {:>7} {:>9} {:>7} {:>6}  {acceptable}",
                c.category.as_str(),
                c.labelled,
                c.predicted,
                c.correct,
                pct(c.precision),
                pct(c.recall),
                ratio(c.f1)
            );
        }

        let m = &self.confusion;
        let _ = writeln!(
            out,
            "\nconfusion (rows: the label, columns: the category the rulebook saw)"
        );
        let width = m
            .predicted
            .iter()
            .map(|c| c.as_str().len())
            .max()
            .unwrap_or(7)
            .max(7);
        let _ = write!(out, "{:<11}", "label");
        for column in &m.predicted {
            let _ = write!(out, " {:>width$}", column.as_str());
        }
        out.push('\n');
        for (label, counts) in m.labels.iter().zip(&m.counts) {
            let _ = write!(out, "{:<11}", label.as_str());
            for n in counts {
                let _ = write!(out, " {n:>width$}");
            }
            out.push('\n');
        }

        let _ = writeln!(out, "\nper language (the label's `lang`)");
        let _ = writeln!(
            out,
            "{:<6} {:>8} {:>10} {:>7}",
            "lang", "messages", "acceptable", "share"
        );
        for l in &self.languages {
            let _ = writeln!(
                out,
                "{:<6} {:>8} {:>10} {:>7}",
                l.lang,
                l.acceptable.of,
                l.acceptable.count,
                l.acceptable.percent()
            );
        }

        let _ = writeln!(
            out,
            "\ncritical misses ({}): critical messages not decided as they must be",
            self.critical_misses.len()
        );
        for miss in &self.critical_misses {
            miss_lines(&mut out, miss);
        }
        let _ = writeln!(
            out,
            "\nother unacceptable decisions ({})",
            self.other_misses.len() + self.other_misses_left_out
        );
        for miss in &self.other_misses {
            miss_lines(&mut out, miss);
        }
        if self.other_misses_left_out > 0 {
            let _ = writeln!(
                out,
                "  … and {} more, not listed",
                self.other_misses_left_out
            );
        }

        out.push('\n');
        if self.passed() {
            let _ = writeln!(
                out,
                "passed: critical recall {} and acceptable share {} meet the rulebook's [eval] thresholds",
                self.critical_recall.percent(),
                self.acceptable.percent()
            );
        } else {
            for failure in &self.failures {
                let _ = writeln!(out, "FAILED: {failure}");
            }
        }
        out
    }

    /// One self-contained page: the key figures, the thresholds, the tables and every listed
    /// miss with its reasons.
    pub fn to_html(&self) -> String {
        let mut out = String::with_capacity(32 * 1024);
        let h = &self.header;
        let _ = write!(
            out,
            "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\"><title>webcare eval {file}</title><style>{STYLE}{EXTRA}</style></head><body><h1>Decision quality</h1><p class=\"meta\" id=\"based-on\">{n} labelled messages from <code>{file}</code>, decided by rulebook {name} <code>{version}</code> as {channel} messages at {at}.</p>",
            file = escape(&h.file),
            n = self.messages,
            name = escape(&h.rulebook_name),
            version = escape(&h.rulebook_version),
            channel = escape(&h.channel),
            at = escape(&h.decided_at),
        );
        for warning in &self.warnings {
            let _ = write!(out, "<p class=\"warn\">{}</p>", escape(warning));
        }
        if self.passed() {
            out.push_str("<p class=\"good\" id=\"verdict\">Passed: the rulebook meets its [eval] thresholds.</p>");
        } else {
            out.push_str("<div id=\"verdict\">");
            for failure in &self.failures {
                let _ = write!(out, "<p class=\"bad\">Failed: {}</p>", escape(failure));
            }
            out.push_str("</div>");
        }
        out.push_str("<div class=\"kpis\">");
        for (share, label) in [
            (&self.acceptable, "acceptable decisions"),
            (&self.critical_recall, "critical recall"),
            (&self.automation, "automation rate"),
            (&self.category_accuracy, "category accuracy"),
        ] {
            kpi(
                &mut out,
                &share.percent(),
                &format!("{label} ({} of {})", share.count, share.of),
            );
        }
        out.push_str("</div>");

        out.push_str("<h2>Per category</h2><p class=\"meta\">Predicted: the category the rulebook saw. Precision: of the messages it saw as this category, the share labelled so. Recall: of the messages labelled so, the share it saw as such. Acceptable: of the messages labelled so, the share decided acceptably.</p><table id=\"categories\"><tr><th>category</th><th class=\"n\">labelled</th><th class=\"n\">predicted</th><th class=\"n\">correct</th><th class=\"n\">precision</th><th class=\"n\">recall</th><th class=\"n\">F1</th><th class=\"n\">acceptable</th></tr>");
        for c in &self.categories {
            let _ = write!(
                out,
                "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                c.category,
                c.labelled,
                c.predicted,
                c.correct,
                pct(c.precision),
                pct(c.recall),
                ratio(c.f1),
                if c.labelled == 0 {
                    "-".to_owned()
                } else {
                    c.acceptable.percent()
                }
            );
        }
        out.push_str("</table>");

        let m = &self.confusion;
        out.push_str("<h2>Confusion matrix</h2><p class=\"meta\">Rows: the label. Columns: the category the rulebook saw.</p><table id=\"confusion\"><tr><th>label</th>");
        for column in &m.predicted {
            let _ = write!(out, "<th class=\"n\">{column}</th>");
        }
        out.push_str("</tr>");
        for (label, counts) in m.labels.iter().zip(&m.counts) {
            let _ = write!(out, "<tr><th>{label}</th>");
            for (column, n) in m.predicted.iter().zip(counts) {
                let class = match (column == label, *n) {
                    (true, _) => "n diag",
                    (false, 0) => "n",
                    (false, _) => "n off",
                };
                let _ = write!(out, "<td class=\"{class}\">{n}</td>");
            }
            out.push_str("</tr>");
        }
        out.push_str("</table>");

        out.push_str("<h2>Per language</h2><table id=\"languages\"><tr><th>lang</th><th class=\"n\">messages</th><th class=\"n\">acceptable</th></tr>");
        for l in &self.languages {
            let _ = write!(
                out,
                "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                escape(&l.lang),
                l.acceptable.of,
                l.acceptable.percent()
            );
        }
        out.push_str("</table>");

        let _ = write!(
            out,
            "<h2>Critical misses ({})</h2><div id=\"critical-misses\">",
            self.critical_misses.len()
        );
        if self.critical_misses.is_empty() {
            out.push_str("<p>None: every critical message was decided as it must be.</p>");
        }
        for miss in &self.critical_misses {
            miss_html(&mut out, miss);
        }
        let _ = write!(
            out,
            "</div><h2>Other unacceptable decisions ({})</h2><div id=\"other-misses\">",
            self.other_misses.len() + self.other_misses_left_out
        );
        for miss in &self.other_misses {
            miss_html(&mut out, miss);
        }
        if self.other_misses_left_out > 0 {
            let _ = write!(
                out,
                "<p>… and {} more, not listed.</p>",
                self.other_misses_left_out
            );
        }
        out.push_str("</div></body></html>\n");
        out
    }
}

/// Colours for the confusion matrix and the misses, on top of the report style.
const EXTRA: &str = "td.diag{background:#e3f9e5}td.off{background:#ffe3e3}th{font-weight:600}
.miss{border-left:4px solid #ab091e;padding-left:1rem;margin:1rem 0}.miss p{margin:.2rem 0}
blockquote{margin:.3rem 0;color:#3e4c59;white-space:pre-wrap}";

fn label_of(miss: &Miss) -> String {
    let mut label = miss.label.as_str().to_owned();
    let extras: Vec<String> = [("topic", &miss.topic), ("lang", &miss.lang)]
        .into_iter()
        .filter_map(|(name, value)| value.as_ref().map(|v| format!("{name} {v}")))
        .collect();
    if !extras.is_empty() {
        label.push_str(&format!(" ({})", extras.join(", ")));
    }
    label
}

fn miss_lines(out: &mut String, miss: &Miss) {
    let _ = writeln!(
        out,
        "  {}: {} {:?}",
        miss.location(),
        label_of(miss),
        miss.text
    );
    let _ = writeln!(
        out,
        "    decided: {}; category {}",
        miss.decided(),
        miss.category
    );
    let _ = writeln!(
        out,
        "    problem: {}; acceptable: {}",
        miss.fault, miss.acceptable
    );
    for reason in &miss.why {
        let _ = writeln!(out, "    why: {reason}");
    }
}

fn miss_html(out: &mut String, miss: &Miss) {
    let _ = write!(
        out,
        "<div class=\"miss\"><p>{} &middot; labelled <b>{}</b></p><blockquote>{}</blockquote><p>Decided: {}; category {}</p><p class=\"bad\">{}; acceptable: {}</p>",
        escape(&miss.location()),
        escape(&label_of(miss)),
        escape(&miss.text),
        escape(&miss.decided()),
        miss.category,
        miss.fault,
        escape(&miss.acceptable)
    );
    for reason in &miss.why {
        let _ = write!(out, "<p class=\"meta\">why: {}</p>", escape(reason));
    }
    out.push_str("</div>");
}
