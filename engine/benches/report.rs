//! Report speed (issue 7): a 30-day report over a store of 1,000,000 messages must take under
//! two seconds. The store is filled once (kept in `WEBCARE_BENCH_REPORT_DIR`, default
//! `target/bench-report`, so a second run measures only the report), with 60 days of traffic:
//! realistic decisions (answers, escalations to three teams, logs), replies and escalations
//! recorded by the real intake transaction. Then the 30-day report (with its previous period for
//! trends) is read and computed three times; the best and the worst time are printed.
//!
//! Run: `cargo bench -p webcare-engine --bench report` (`WEBCARE_BENCH_MESSAGES=100000` for a
//! smaller store). On PostgreSQL: `WEBCARE_BENCH_BACKEND=postgres WEBCARE_STORE_URL=postgres://…`
//! (the database keeps the filled messages between runs, as the directory does); it is filled
//! in transactions of 1,000 intakes each ([`Store::record_intakes`], the same records), since
//! one commit per message would take the better part of an hour.
//!
//! [`Store::record_intakes`]: webcare_engine::Store::record_intakes

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use chrono::{Duration, TimeZone, Utc};
use webcare_engine::decision::{Language, Sentiment, SentimentLabel, TopicMatch};
use webcare_engine::report::{self, ReportOptions};
use webcare_engine::store::{self, IntakeRecord, StoreOptions};
use webcare_engine::{Action, Category, ChannelKind, Decision, Diagnostics, Inbound, Priority};

const TOPICS: [(&str, Category); 8] = [
    ("waste", Category::Question),
    ("passport", Category::Question),
    ("parking_permit", Category::Question),
    ("roadworks", Category::Question),
    ("opening_hours", Category::Question),
    ("complaint", Category::Complaint),
    ("public_space", Category::Report),
    ("compliment", Category::Compliment),
];

fn record(i: u64, total: u64) -> IntakeRecord {
    let start = Utc
        .with_ymd_and_hms(2026, 9, 1, 0, 0, 0)
        .single()
        .expect("a valid date");
    // 60 days, evenly spread.
    let at = start + Duration::milliseconds((i as i64) * (60 * 86_400_000 / total as i64));
    let (topic, category) = TOPICS[(i % 8) as usize];
    let action = match category {
        Category::Complaint => Action::Escalate {
            team: ["webcare", "social", "legal"][(i / 8 % 3) as usize].into(),
            priority: Priority::Normal,
            template: Some("holding".into()),
            reply: Some("We komen erop terug.".into()),
        },
        Category::Compliment => Action::Log,
        _ => Action::Answer {
            template: topic.into(),
            reply: format!("Over {topic}: zie de website."),
        },
    };
    let id = format!("m{i}");
    let message = Inbound {
        conversation: format!("c{}", i / 3),
        author: format!("a{}", i / 3),
        ..Inbound::from_text(id.clone(), ChannelKind::Webchat, "Een vraag over iets", at)
    };
    IntakeRecord {
        decision: Decision {
            message_id: id,
            action,
            diagnostics: Diagnostics {
                category,
                topics: vec![TopicMatch {
                    topic: topic.into(),
                    category,
                    matched: vec![topic.into()],
                }],
                rules: vec!["escalation.rhai:12".into()],
                script_errors: Vec::new(),
                sentiment: Sentiment {
                    label: if category == Category::Complaint {
                        SentimentLabel::Negative
                    } else {
                        SentimentLabel::Neutral
                    },
                    score: 0,
                },
                language: Language::Nl,
                rulebook: "bench".into(),
                reasons: vec!["bench".into()],
            },
        },
        facts: Default::default(),
        today: at.date_naive(),
        sla_deadline: Some(at + Duration::hours(4)),
        now: at,
        message,
        mode: Default::default(),
        shadow: None,
        reply_inline: false,
        case: Default::default(),
    }
}

fn main() {
    let total: u64 = std::env::var("WEBCARE_BENCH_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = std::env::var("WEBCARE_BENCH_REPORT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../target/bench-report")
                .join(total.to_string())
        });
    let backend: store::Backend = std::env::var("WEBCARE_BENCH_BACKEND")
        .map(|b| b.parse().expect("a backend"))
        .unwrap_or_default();
    let store = store::open(&StoreOptions {
        backend,
        data_dir: dir.clone(),
        url: std::env::var("WEBCARE_STORE_URL")
            .ok()
            .map(store::postgres::PgUrl::new),
        ..StoreOptions::default()
    })
    .expect("open the store");
    let batch: u64 = if backend == store::Backend::Postgres {
        1000
    } else {
        1
    };
    let have = store.stats().expect("stats").messages;
    if have < total {
        let started = Instant::now();
        // Many callers, so the single writer commits large groups.
        let threads = if batch == 1 { 64u64 } else { 8 };
        let next = Arc::new(std::sync::atomic::AtomicU64::new(have));
        std::thread::scope(|scope| {
            for _ in 0..threads {
                let store = Arc::clone(&store);
                let next = Arc::clone(&next);
                scope.spawn(move || {
                    loop {
                        let i = next.fetch_add(batch, std::sync::atomic::Ordering::Relaxed);
                        if i >= total {
                            break;
                        }
                        if batch == 1 {
                            store.record_intake(record(i, total)).expect("intake");
                        } else {
                            let records = (i..(i + batch).min(total))
                                .map(|i| record(i, total))
                                .collect();
                            store.record_intakes(records).expect("intakes");
                        }
                    }
                });
            }
        });
        eprintln!(
            "filled {} messages into {} in {:.1?}",
            total - have,
            dir.display(),
            started.elapsed()
        );
    }
    let teams_rulebook = webcare_engine::Rulebook::embedded().expect("the embedded rulebook");
    let since = Utc
        .with_ymd_and_hms(2026, 10, 1, 0, 0, 0)
        .single()
        .expect("a valid date");
    let options = ReportOptions::new(
        since,
        since + Duration::days(30),
        since + Duration::days(45),
    );
    let mut times = Vec::new();
    let mut messages = 0;
    let mut last = None;
    for _ in 0..3 {
        let started = Instant::now();
        let r = report::gather::report(
            &*store,
            &options,
            teams_rulebook.teams(),
            &teams_rulebook.default_team,
        )
        .expect("report");
        times.push(started.elapsed());
        messages = r.messages;
        last = Some(r);
    }
    times.sort();
    println!(
        "30-day report over a store of {total} messages ({messages} in the period): best {:.2?}, worst {:.2?}",
        times[0],
        times[times.len() - 1]
    );
    // The same report the slow way (every message in full, every conversation's outbox), to
    // show the one-pass read changes no figure.
    if std::env::var_os("WEBCARE_BENCH_REPORT_CHECK").is_some() {
        let started = Instant::now();
        let gathered = report::gather::gather(&*store, &options).expect("gather");
        let slow = report::build(
            &options,
            teams_rulebook.teams(),
            &teams_rulebook.default_team,
            gathered.messages,
            &gathered.escalations,
            &gathered.replies,
        );
        // Samples feed a histogram; their order follows the read order.
        let normal = |mut r: report::Report| {
            for t in [&mut r.frt_bot, &mut r.frt_human, &mut r.resolution] {
                t.samples.sort_unstable();
            }
            r
        };
        assert_eq!(
            last.map(normal),
            Some(normal(slow)),
            "the one-pass report differs"
        );
        println!("checked against gather + build ({:.2?})", started.elapsed());
    }
}
