//! Live counters for Prometheus (`/metrics`): what came in, what was decided, how long deciding
//! took, which scripts failed. The store answers the gauges (queue depth, backlog, breaches) at
//! scrape time; these are the things only the running process sees.
//!
//! Plain atomics with relaxed ordering: each counter is independent, a scrape may see one
//! message counted in `messages` a moment before its action, and the hot path takes no lock.
//! The text exposition is hand-rolled (a few lines) rather than a metrics crate, which would
//! add a registry and global state for eight series.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::decision::{Action, Category, Decision};

/// Upper bounds of the decision latency histogram, in seconds (Prometheus `le`).
pub const LATENCY_BUCKETS: [f64; 10] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];

#[derive(Debug, Default)]
pub struct Metrics {
    messages: AtomicU64,
    duplicates: AtomicU64,
    /// Indexed answer, escalate, log.
    actions: [AtomicU64; 3],
    categories: [AtomicU64; Category::ALL.len()],
    script_errors: AtomicU64,
    intake_errors: AtomicU64,
    latency_buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    latency_count: AtomicU64,
    latency_micros: AtomicU64,
}

impl Metrics {
    /// One message decided and stored (or recognised as a duplicate) in `took`.
    pub fn record(&self, decision: &Decision, duplicate: bool, took: Duration) {
        self.messages.fetch_add(1, Ordering::Relaxed);
        if duplicate {
            self.duplicates.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let action = match decision.action {
            Action::Answer { .. } => 0,
            Action::Escalate { .. } => 1,
            Action::Log => 2,
        };
        self.actions[action].fetch_add(1, Ordering::Relaxed);
        if let Some(i) = Category::ALL
            .iter()
            .position(|c| *c == decision.diagnostics.category)
        {
            self.categories[i].fetch_add(1, Ordering::Relaxed);
        }
        if !decision.diagnostics.script_errors.is_empty() {
            self.script_errors.fetch_add(1, Ordering::Relaxed);
        }
        let secs = took.as_secs_f64();
        for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
            if secs <= *bound {
                self.latency_buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_micros.fetch_add(
            u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// A message the store could not take (it was not acknowledged).
    pub fn record_error(&self) {
        self.intake_errors.fetch_add(1, Ordering::Relaxed);
    }

    pub fn messages(&self) -> u64 {
        self.messages.load(Ordering::Relaxed)
    }

    /// The counters in the Prometheus text format (version 0.0.4).
    pub fn exposition(&self) -> String {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP webcare_messages_total Messages taken in, duplicates included.\n# TYPE webcare_messages_total counter\nwebcare_messages_total {}",
            load(&self.messages)
        );
        let _ = writeln!(
            out,
            "# HELP webcare_duplicates_total Messages delivered again and answered with their first decision.\n# TYPE webcare_duplicates_total counter\nwebcare_duplicates_total {}",
            load(&self.duplicates)
        );
        let _ = writeln!(
            out,
            "# HELP webcare_decisions_total Decisions by action.\n# TYPE webcare_decisions_total counter"
        );
        for (i, name) in ["answer", "escalate", "log"].iter().enumerate() {
            let _ = writeln!(
                out,
                "webcare_decisions_total{{action=\"{name}\"}} {}",
                load(&self.actions[i])
            );
        }
        let _ = writeln!(
            out,
            "# HELP webcare_decisions_by_category_total Decisions by message category.\n# TYPE webcare_decisions_by_category_total counter"
        );
        for (i, category) in Category::ALL.iter().enumerate() {
            let _ = writeln!(
                out,
                "webcare_decisions_by_category_total{{category=\"{category}\"}} {}",
                load(&self.categories[i])
            );
        }
        let _ = writeln!(
            out,
            "# HELP webcare_script_errors_total Decisions where a script failed and the fail-safe escalated.\n# TYPE webcare_script_errors_total counter\nwebcare_script_errors_total {}",
            load(&self.script_errors)
        );
        let _ = writeln!(
            out,
            "# HELP webcare_intake_errors_total Messages the store could not take.\n# TYPE webcare_intake_errors_total counter\nwebcare_intake_errors_total {}",
            load(&self.intake_errors)
        );
        let _ = writeln!(
            out,
            "# HELP webcare_decision_seconds Time to decide and durably store a message.\n# TYPE webcare_decision_seconds histogram"
        );
        for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "webcare_decision_seconds_bucket{{le=\"{bound}\"}} {}",
                load(&self.latency_buckets[i])
            );
        }
        let count = load(&self.latency_count);
        let _ = writeln!(
            out,
            "webcare_decision_seconds_bucket{{le=\"+Inf\"}} {count}\nwebcare_decision_seconds_sum {}\nwebcare_decision_seconds_count {count}",
            load(&self.latency_micros) as f64 / 1e6
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::{Diagnostics, Language, Sentiment, SentimentLabel};

    fn decision(action: Action, errors: usize) -> Decision {
        Decision {
            message_id: "m".into(),
            action,
            diagnostics: Diagnostics {
                category: Category::Complaint,
                topics: Vec::new(),
                rules: Vec::new(),
                script_errors: vec!["x".into(); errors],
                sentiment: Sentiment {
                    label: SentimentLabel::Neutral,
                    score: 0,
                },
                language: Language::Nl,
                rulebook: "v".into(),
                reasons: Vec::new(),
            },
        }
    }

    #[test]
    fn counters_and_histogram_follow_the_exposition_format() {
        let m = Metrics::default();
        m.record(&decision(Action::Log, 0), false, Duration::from_micros(700));
        m.record(
            &decision(
                Action::Escalate {
                    team: "t".into(),
                    priority: crate::Priority::High,
                    template: None,
                    reply: None,
                },
                1,
            ),
            false,
            Duration::from_millis(30),
        );
        m.record(&decision(Action::Log, 0), true, Duration::ZERO);
        let text = m.exposition();
        for line in [
            "webcare_messages_total 3",
            "webcare_duplicates_total 1",
            "webcare_decisions_total{action=\"log\"} 1",
            "webcare_decisions_total{action=\"escalate\"} 1",
            "webcare_decisions_by_category_total{category=\"complaint\"} 2",
            "webcare_script_errors_total 1",
            "webcare_decision_seconds_bucket{le=\"0.0005\"} 0",
            "webcare_decision_seconds_bucket{le=\"0.001\"} 1",
            "webcare_decision_seconds_bucket{le=\"0.05\"} 2",
            "webcare_decision_seconds_bucket{le=\"+Inf\"} 2",
            "webcare_decision_seconds_count 2",
            "webcare_decision_seconds_sum 0.0307",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "`{line}` missing in\n{text}"
            );
        }
    }
}
