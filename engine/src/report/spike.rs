//! Early warning: many messages on one topic in a short time, or a burst of negative ones, must
//! alert the hub at once ("een crisis in de kiem smoren"), long before a weekly report would show
//! it. This is the detector only, pure over the stored messages of a window, so the thresholds
//! are testable with a virtual clock; the service runs it on a timer and turns each [`Spike`]
//! into an alert escalation.
//!
//! A topic **spikes** when its count in the last hour is at least `factor` times its usual
//! hourly rate (the mean over the baseline window before that hour) and at least `min_count`
//! (so one message on a quiet topic is not a crisis). A **negative burst** is at least
//! `min_negative` negative messages on one topic in the last hour, at `factor` times its usual
//! negative rate.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::decision::SentimentLabel;
use crate::store::StoredMessage;

/// The thresholds.
#[derive(Debug, Clone)]
pub struct SpikeRules {
    /// The current window (an hour).
    pub window: Duration,
    /// The baseline before the window the usual rate is measured over.
    pub baseline: Duration,
    pub factor: f64,
    pub min_count: u64,
    pub min_negative: u64,
}

impl Default for SpikeRules {
    fn default() -> Self {
        SpikeRules {
            window: Duration::hours(1),
            baseline: Duration::days(7),
            factor: 5.0,
            min_count: 10,
            min_negative: 5,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SpikeKind {
    Volume,
    NegativeBurst,
}

/// One alert.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Spike {
    pub topic: String,
    pub kind: SpikeKind,
    /// Messages (or negative messages) in the window.
    pub count: u64,
    /// The usual count per window over the baseline.
    pub usual: f64,
}

impl Spike {
    /// Plain words for the alert escalation and the notification.
    pub fn describe(&self) -> String {
        match self.kind {
            SpikeKind::Volume => format!(
                "early warning: {} messages about `{}` in the last hour, usually {:.1}",
                self.count, self.topic, self.usual
            ),
            SpikeKind::NegativeBurst => format!(
                "early warning: {} negative messages about `{}` in the last hour, usually {:.1}",
                self.count, self.topic, self.usual
            ),
        }
    }
}

/// The spikes at `now`, from the messages received in `[now - window - baseline, now)` (others
/// are ignored). Sorted by topic, volume before negative burst.
pub fn detect(
    rules: &SpikeRules,
    now: DateTime<Utc>,
    messages: impl IntoIterator<Item = StoredMessage>,
) -> Vec<Spike> {
    let window_start = now - rules.window;
    let baseline_start = window_start - rules.baseline;
    // (current, current negative, baseline, baseline negative) per topic.
    let mut counts: HashMap<String, [u64; 4]> = HashMap::new();
    for stored in messages {
        let t = stored.message.received_at;
        if t < baseline_start || t >= now {
            continue;
        }
        let current = t >= window_start;
        let negative = stored.decision.diagnostics.sentiment.label == SentimentLabel::Negative;
        for topic in stored.decision.topic_ids() {
            let c = counts.entry(topic.to_owned()).or_default();
            let base = if current { 0 } else { 2 };
            c[base] += 1;
            if negative {
                c[base + 1] += 1;
            }
        }
    }
    let windows =
        (rules.baseline.num_seconds() as f64 / rules.window.num_seconds().max(1) as f64).max(1.0);
    let mut spikes = Vec::new();
    for (topic, [now_all, now_negative, base_all, base_negative]) in counts {
        let usual = base_all as f64 / windows;
        if now_all >= rules.min_count && now_all as f64 >= rules.factor * usual {
            spikes.push(Spike {
                topic: topic.clone(),
                kind: SpikeKind::Volume,
                count: now_all,
                usual,
            });
        }
        let usual_negative = base_negative as f64 / windows;
        if now_negative >= rules.min_negative
            && now_negative as f64 >= rules.factor * usual_negative
        {
            spikes.push(Spike {
                topic,
                kind: SpikeKind::NegativeBurst,
                count: now_negative,
                usual: usual_negative,
            });
        }
    }
    spikes.sort_by(|a, b| {
        a.topic
            .cmp(&b.topic)
            .then((a.kind as u8).cmp(&(b.kind as u8)))
    });
    spikes
}

/// The author of alert messages; reports leave them out, they are not customer traffic.
pub const ALERT_AUTHOR: &str = "webcare:early-warning";

/// Raises each spike at `now` as an urgent escalation to `team` (the hub), in the conversation
/// `early-warning` on the terminal channel, so it lands in the inbox with the other work and
/// follows its escalation chain. The message id names the topic, the kind and the hour, and the
/// store stores a message id once: running this every few minutes alerts once per topic per
/// hour. Returns the spikes that were new.
pub fn raise_alerts(
    store: &dyn crate::store::Store,
    rules: &SpikeRules,
    team: &str,
    rulebook_version: &str,
    now: DateTime<Utc>,
) -> Result<Vec<Spike>, crate::store::StoreError> {
    use crate::decision::{Action, Category, Decision, Diagnostics, Language, Priority, Sentiment};
    use crate::message::{ChannelKind, Inbound};
    use crate::store::IntakeRecord;

    let mut messages = Vec::new();
    for stored in crate::store::history(store, Some(now - rules.window - rules.baseline)) {
        let stored = stored?;
        if stored.message.author != ALERT_AUTHOR {
            messages.push(stored);
        }
    }
    let mut raised = Vec::new();
    for spike in detect(rules, now, messages) {
        let kind = match spike.kind {
            SpikeKind::Volume => "volume",
            SpikeKind::NegativeBurst => "negative",
        };
        let id = format!("alert:{}:{kind}:{}", spike.topic, now.format("%Y-%m-%dT%H"));
        let text = spike.describe();
        let message = Inbound {
            author: ALERT_AUTHOR.to_owned(),
            conversation: "early-warning".to_owned(),
            ..Inbound::from_text(id.clone(), ChannelKind::Terminal, text.clone(), now)
        };
        let decision = Decision {
            message_id: id,
            action: Action::Escalate {
                team: team.to_owned(),
                priority: Priority::Urgent,
                template: None,
                reply: None,
            },
            diagnostics: Diagnostics {
                category: Category::Crisis,
                topics: Vec::new(),
                rules: vec!["early warning".to_owned()],
                script_errors: Vec::new(),
                sentiment: Sentiment {
                    label: SentimentLabel::Neutral,
                    score: 0,
                },
                language: Language::En,
                rulebook: rulebook_version.to_owned(),
                reasons: vec![text],
            },
        };
        let receipt = store.record_intake(IntakeRecord {
            message,
            decision,
            facts: Default::default(),
            today: now.date_naive(),
            sla_deadline: None,
            now,
            mode: Default::default(),
            shadow: None,
            reply_inline: false,
            case: Default::default(),
        })?;
        if !receipt.duplicate {
            raised.push(spike);
        }
    }
    Ok(raised)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::{
        Action, Category, Decision, Diagnostics, Language, Sentiment, TopicMatch,
    };
    use crate::message::{ChannelKind, Inbound};
    use chrono::TimeZone;

    fn msg(i: usize, topic: &str, at: DateTime<Utc>, label: SentimentLabel) -> StoredMessage {
        StoredMessage {
            seq: i as u64,
            message: Inbound::from_text(format!("m{i}"), ChannelKind::Webchat, "…", at),
            decision: Decision {
                message_id: format!("m{i}"),
                action: Action::Log,
                diagnostics: Diagnostics {
                    category: Category::Complaint,
                    topics: vec![TopicMatch {
                        topic: topic.into(),
                        category: Category::Complaint,
                        matched: Vec::new(),
                    }],
                    rules: Vec::new(),
                    script_errors: Vec::new(),
                    sentiment: Sentiment { label, score: 0 },
                    language: Language::Nl,
                    rulebook: "v".into(),
                    reasons: Vec::new(),
                },
            },
            facts: Default::default(),
            stored_at: at,
            mode: Default::default(),
            shadow: None,
        }
    }

    #[test]
    fn five_times_the_usual_rate_is_a_spike_and_less_is_not() {
        let now = Utc.with_ymd_and_hms(2026, 11, 9, 12, 0, 0).unwrap();
        let mut messages = Vec::new();
        // Usual: 2 an hour on `afval` for a week (336 in 168 hours).
        for i in 0..336 {
            let at = now - Duration::hours(1) - Duration::minutes(30 * (i as i64 + 1));
            messages.push(msg(i, "afval", at, SentimentLabel::Neutral));
        }
        // Now: 10 `afval` (exactly 5×) of which 6 negative; 9 on a new topic `gas` (too few);
        // 4 negative on `brug` (too few for a burst).
        for i in 0..10 {
            let label = if i < 6 {
                SentimentLabel::Negative
            } else {
                SentimentLabel::Neutral
            };
            messages.push(msg(1000 + i, "afval", now - Duration::minutes(5), label));
        }
        for i in 0..9 {
            messages.push(msg(
                2000 + i,
                "gas",
                now - Duration::minutes(5),
                SentimentLabel::Neutral,
            ));
        }
        for i in 0..4 {
            messages.push(msg(
                3000 + i,
                "brug",
                now - Duration::minutes(5),
                SentimentLabel::Negative,
            ));
        }
        let spikes = detect(&SpikeRules::default(), now, messages.clone());
        assert_eq!(
            spikes
                .iter()
                .map(|s| (s.topic.as_str(), s.kind, s.count))
                .collect::<Vec<_>>(),
            vec![
                ("afval", SpikeKind::Volume, 10),
                ("afval", SpikeKind::NegativeBurst, 6),
            ]
        );
        assert_eq!(spikes[0].usual, 2.0);
        assert!(
            spikes[1]
                .describe()
                .contains("6 negative messages about `afval`")
        );

        // One message less than 5× the usual rate is no spike.
        messages.retain(|m| m.message.id != "m1009");
        let spikes = detect(&SpikeRules::default(), now, messages);
        assert!(
            spikes.iter().all(|s| s.kind != SpikeKind::Volume),
            "{spikes:?}"
        );
    }

    #[test]
    fn a_spike_becomes_one_urgent_escalation_to_the_hub_per_hour() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::open(&crate::store::StoreOptions {
            data_dir: dir.path().to_owned(),
            ..Default::default()
        })
        .unwrap();
        let now = Utc.with_ymd_and_hms(2026, 11, 9, 12, 0, 0).unwrap();
        for i in 0..12 {
            let m = msg(
                i,
                "gas",
                now - Duration::minutes(30),
                SentimentLabel::Negative,
            );
            store
                .record_intake(crate::store::IntakeRecord {
                    message: m.message,
                    decision: m.decision,
                    facts: Default::default(),
                    today: now.date_naive(),
                    sla_deadline: None,
                    now: now - Duration::minutes(30),
                    mode: Default::default(),
                    shadow: None,
                    reply_inline: false,
                    case: Default::default(),
                })
                .unwrap();
        }
        let rules = SpikeRules::default();
        let raised = raise_alerts(&*store, &rules, "webcare", "v", now).unwrap();
        assert_eq!(raised.len(), 2, "{raised:?}");
        let open = store.open_escalations().unwrap();
        assert_eq!(open.len(), 1, "both alerts join one alert conversation");
        assert_eq!(open[0].team, "webcare");
        assert_eq!(open[0].priority, crate::Priority::Urgent);
        assert!(
            open[0].reason.contains("12 messages about `gas`"),
            "{}",
            open[0].reason
        );
        // Five minutes later: the same hour, nothing new.
        let again =
            raise_alerts(&*store, &rules, "webcare", "v", now + Duration::minutes(5)).unwrap();
        assert!(again.is_empty(), "{again:?}");
    }
}
