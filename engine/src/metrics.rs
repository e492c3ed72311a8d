//! Live counters for Prometheus (`/metrics`): what came in, what was decided, how long deciding
//! took, which scripts failed. The store answers the gauges (queue depth, backlog, breaches) at
//! scrape time; these are the things only the running process sees.
//!
//! The exposition is `prometheus-client`'s (OpenMetrics text), so names, label escaping, the
//! `_total` suffix and the histogram's buckets follow the format without our own string
//! building. Every series is created here, once: the hot path only increments an atomic
//! counter (a label lookup per message would take the family's lock). The registry is this
//! struct's own, not a global one, so tests and several runtimes in one process do not mix.

use std::time::Duration;

use prometheus_client::encoding::text::encode_registry;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::decision::{Action, Category, Decision};

/// Upper bounds of the decision latency histogram, in seconds (Prometheus `le`).
pub const LATENCY_BUCKETS: [f64; 10] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];

/// A label set of one label.
type Label = [(&'static str, &'static str); 1];

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    messages: Counter,
    duplicates: Counter,
    /// Indexed answer, escalate, log.
    actions: [Counter; 3],
    /// Indexed as `Category::ALL`.
    categories: Vec<Counter>,
    script_errors: Counter,
    intake_errors: Counter,
    latency: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let messages = Counter::default();
        registry.register(
            "webcare_messages",
            "Messages taken in, duplicates included",
            messages.clone(),
        );
        let duplicates = Counter::default();
        registry.register(
            "webcare_duplicates",
            "Messages delivered again and answered with their first decision",
            duplicates.clone(),
        );
        let by_action = Family::<Label, Counter>::default();
        let actions = ["answer", "escalate", "log"]
            .map(|name| by_action.get_or_create(&[("action", name)]).clone());
        registry.register("webcare_decisions", "Decisions by action", by_action);
        let by_category = Family::<Label, Counter>::default();
        let categories = Category::ALL
            .iter()
            .map(|c| {
                by_category
                    .get_or_create(&[("category", c.as_str())])
                    .clone()
            })
            .collect();
        registry.register(
            "webcare_decisions_by_category",
            "Decisions by message category",
            by_category,
        );
        let script_errors = Counter::default();
        registry.register(
            "webcare_script_errors",
            "Decisions where a script failed and the fail-safe escalated",
            script_errors.clone(),
        );
        let intake_errors = Counter::default();
        registry.register(
            "webcare_intake_errors",
            "Messages the store could not take",
            intake_errors.clone(),
        );
        let latency = Histogram::new(LATENCY_BUCKETS);
        registry.register(
            "webcare_decision_seconds",
            "Time to decide and durably store a message",
            latency.clone(),
        );
        Metrics {
            registry,
            messages,
            duplicates,
            actions,
            categories,
            script_errors,
            intake_errors,
            latency,
        }
    }
}

impl Metrics {
    /// One message decided and stored (or recognised as a duplicate) in `took`.
    pub fn record(&self, decision: &Decision, duplicate: bool, took: Duration) {
        self.messages.inc();
        if duplicate {
            self.duplicates.inc();
            return;
        }
        let action = match decision.action {
            Action::Answer { .. } => 0,
            Action::Escalate { .. } => 1,
            Action::Log => 2,
        };
        self.actions[action].inc();
        if let Some(i) = Category::ALL
            .iter()
            .position(|c| *c == decision.diagnostics.category)
        {
            self.categories[i].inc();
        }
        if !decision.diagnostics.script_errors.is_empty() {
            self.script_errors.inc();
        }
        self.latency.observe(took.as_secs_f64());
    }

    /// A message the store could not take (it was not acknowledged).
    pub fn record_error(&self) {
        self.intake_errors.inc();
    }

    pub fn messages(&self) -> u64 {
        self.messages.get()
    }

    /// Appends these series to an OpenMetrics exposition; the caller adds its own and ends it
    /// with `prometheus_client::encoding::text::encode_eof`.
    pub fn encode_into(&self, out: &mut String) {
        // Writing into a String cannot fail.
        let _ = encode_registry(out, &self.registry);
    }

    /// These series alone as a complete OpenMetrics exposition.
    pub fn exposition(&self) -> String {
        let mut out = String::new();
        self.encode_into(&mut out);
        let _ = prometheus_client::encoding::text::encode_eof(&mut out);
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
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "`{line}` missing in\n{text}"
            );
        }
        // The sum is a float sum of the observations (0.0007 + 0.03 seconds).
        let sum: f64 = text
            .lines()
            .find_map(|l| l.strip_prefix("webcare_decision_seconds_sum "))
            .expect("the sum")
            .parse()
            .expect("a number");
        assert!((sum - 0.0307).abs() < 1e-9, "{sum}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
