//! `webcare report` over a real store: messages go through the real intake (the embedded
//! rulebook decides them) at injected times, agents claim, reply and resolve through the store,
//! and the report printed by the binary must reproduce the figures known in advance. The HTML
//! report is then opened in a headless Chromium, which must show every chart with a size.
//!
//! The exact figures of a 1,000-message history are tested on the pure computation
//! (`engine/src/report/tests.rs`); this file proves the store, the CLI and the page around it.

// Helpers outside `#[test]` functions panic on purpose too: a failed setup is a failed test.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use fantoccini::Locator;
use webcare_engine::store::{self, StoreOptions};
use webcare_engine::{ChannelKind, Inbound, Intake, Rulebook};

mod support;
use support::{Driver, browser};

const QUESTION: &str = "Wat zijn de openingstijden van het stadskantoor?";
const COMPLAINT: &str = "Ik heb een klacht over de afvalinzameling";
/// Short thanks in German: the templates do not speak it, so the default rules log it (thanks
/// in Dutch or English get a "graag gedaan"; longer thanks in German go to a person).
const COMPLIMENT: &str = "Vielen herzlichen Dank, sehr freundlich!";

fn webcare(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_webcare"))
        .args(args)
        .output()
        .expect("webcare runs")
}

fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
    // Wednesday 4 November 2026; 09:00 UTC is 10:00 in Amsterdam, inside office hours.
    Utc.with_ymd_and_hms(2026, 11, 4, h, m, s).unwrap()
}

/// The known history: 21 questions (20 answered within 30 s, one whose reply was given up), 10
/// complaints (holding reply after 10 s; five replied to by an agent after an hour and resolved
/// after two, five left open), 5 compliments (log only).
fn fill(data: &Path) -> Vec<DateTime<Utc>> {
    let store = store::open(&StoreOptions {
        data_dir: data.to_owned(),
        ..StoreOptions::default()
    })
    .unwrap();
    let rulebook = Rulebook::embedded().unwrap();
    let intake = Intake::new(&rulebook, &*store);
    let message = |id: String, text: &str, when: DateTime<Utc>| Inbound {
        conversation: format!("conv-{id}"),
        author: format!("author-{id}"),
        ..Inbound::from_text(id, ChannelKind::Webchat, text, when)
    };
    let mut deadlines = Vec::new();
    for i in 0..10 {
        let when = at(9, i, 0);
        let receipt = intake
            .accept(message(format!("c{i}"), COMPLAINT, when), when)
            .unwrap();
        assert_eq!(receipt.decision.action.name(), "escalate");
        store
            .outbox_sent(
                receipt.outbox.unwrap(),
                when + chrono::Duration::seconds(10),
            )
            .unwrap();
        let id = receipt.escalation.unwrap();
        deadlines.push(store.escalation(id).unwrap().unwrap().sla_deadline.unwrap());
        if i < 5 {
            let replied = when + chrono::Duration::hours(1);
            store.claim_escalation(id, "anna", replied).unwrap();
            // The reply on the escalation: its own first response, as the inbox sends it.
            let (_, reply) = store
                .reply_to_escalation(id, "anna", "Het is geregeld.", replied)
                .unwrap();
            store.outbox_sent(reply.id, replied).unwrap();
            store
                .resolve_escalation(id, "anna", when + chrono::Duration::hours(2))
                .unwrap();
        }
    }
    for i in 0..21 {
        let when = at(9, 30 + i, 0);
        let receipt = intake
            .accept(message(format!("q{i}"), QUESTION, when), when)
            .unwrap();
        assert_eq!(receipt.decision.action.name(), "answer");
        let outbox = receipt.outbox.unwrap();
        if i == 20 {
            store
                .outbox_failed(outbox, "platform said no", None, when)
                .unwrap();
        } else {
            store
                .outbox_sent(outbox, when + chrono::Duration::seconds(30))
                .unwrap();
        }
    }
    for i in 0..5 {
        let when = at(9, 55 + i, 0);
        let receipt = intake
            .accept(message(format!("p{i}"), COMPLIMENT, when), when)
            .unwrap();
        assert_eq!(receipt.decision.action.name(), "log");
    }
    deadlines
}

const PERIOD: [&str; 6] = [
    "--since",
    "2026-11-04",
    "--until",
    "2026-11-05",
    "--now",
    "2026-12-05T00:00:00Z",
];

#[test]
fn the_report_reproduces_a_known_history_from_the_store() {
    let data = tempfile::tempdir().unwrap();
    let deadlines = fill(data.path());
    // Every complaint arrived at 10:xx local with a 240-minute office SLA: due the same day,
    // after the agent's reply an hour later.
    assert!(
        deadlines
            .iter()
            .enumerate()
            .all(|(i, d)| *d > at(10, i as u32, 0))
    );

    let dir = data.path().to_str().unwrap();
    let mut args = vec!["--data", dir, "report", "--format", "json"];
    args.extend(PERIOD);
    let out = webcare(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["messages"], 36);
    assert_eq!(r["rates"]["automated"], 21);
    assert_eq!(r["rates"]["escalated"], 10);
    assert_eq!(r["rates"]["logged"], 5);
    assert_eq!(r["rates"]["automation_pct"], 58.3);
    assert_eq!(r["rates"]["escalation_pct"], 27.8);
    assert_eq!(r["rates"]["log_pct"], 13.9);
    // The answer that was given up is the one unanswered message.
    let unanswered = r["unanswered"].as_array().unwrap();
    assert_eq!(unanswered.len(), 1);
    assert_eq!(unanswered[0]["id"], "q20");
    // Bot: 10 holding replies after 10 s, 20 answers after 30 s.
    assert_eq!(r["frt_bot"]["calendar"]["count"], 30);
    assert_eq!(r["frt_bot"]["calendar"]["median_secs"], 30);
    assert_eq!(r["frt_bot"]["calendar"]["p90_secs"], 30);
    assert_eq!(r["frt_bot"]["office"]["median_secs"], 30);
    // Humans: five replies after an hour, five resolutions after two, all in office hours.
    assert_eq!(r["frt_human"]["calendar"]["count"], 5);
    assert_eq!(r["frt_human"]["calendar"]["median_secs"], 3600);
    assert_eq!(r["frt_human"]["office"]["p90_secs"], 3600);
    assert_eq!(r["resolution"]["calendar"]["count"], 5);
    assert_eq!(r["resolution"]["office"]["median_secs"], 7200);
    // SLA: five met, five breached (still open a month later).
    let sla = r["sla"].as_array().unwrap();
    assert_eq!(sla.len(), 1);
    assert_eq!(sla[0]["team"], "webcare");
    assert_eq!(sla[0]["priority"], "normal");
    assert_eq!(
        (sla[0]["met"].as_u64(), sla[0]["breached"].as_u64()),
        (Some(5), Some(5))
    );
    // 20 delivered answers and 5 resolutions, nobody wrote again.
    assert_eq!(r["first_time_resolution"]["cases"], 25);
    assert_eq!(r["first_time_resolution"]["resolved_first_time"], 25);
    assert_eq!(r["by_category"]["complaint"], 10);
    assert_eq!(r["by_category"]["compliment"], 5);
    assert_eq!(r["by_team"]["webcare"], 10);
    assert_eq!(r["rulebook_versions"].as_array().unwrap().len(), 1);
    let warnings = r["warnings"].to_string();
    assert!(warnings.contains("only 36 messages"), "{warnings}");

    // The table says the same, with its period and base.
    let mut args = vec!["--data", dir, "report"];
    args.extend(PERIOD);
    let out = webcare(&args);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("based on 36 messages"), "{table}");
    assert!(
        table.contains("WARNING: based on only 36 messages"),
        "{table}"
    );
    assert!(
        table.contains("2026-11-04 09:") && table.contains("q20"),
        "{table}"
    );

    // Filters: a team and a channel.
    let mut args = vec![
        "--data", dir, "report", "--format", "csv", "--team", "webcare",
    ];
    args.extend(PERIOD);
    let csv = String::from_utf8_lossy(&webcare(&args).stdout).into_owned();
    assert!(csv.lines().any(|l| l == "period,messages,10"), "{csv}");
    let mut args = vec![
        "--data",
        dir,
        "report",
        "--channel",
        "telegram",
        "--format",
        "csv",
    ];
    args.extend(PERIOD);
    let csv = String::from_utf8_lossy(&webcare(&args).stdout).into_owned();
    assert!(csv.lines().any(|l| l == "period,messages,0"), "{csv}");

    // Mistakes are explained.
    let mut args = vec!["--data", dir, "report", "--team", "nobody"];
    args.extend(PERIOD);
    let out = webcare(&args);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no team `nobody`"));
}

#[test]
fn the_html_report_shows_its_charts_in_a_real_browser() {
    let data = tempfile::tempdir().unwrap();
    fill(data.path());
    let page = data.path().join("report.html");
    let dir = data.path().to_str().unwrap();
    let mut args = vec![
        "--data",
        dir,
        "report",
        "--preset",
        "quarterly",
        "--output",
        page.to_str().unwrap(),
    ];
    args.extend(PERIOD);
    let out = webcare(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html = std::fs::read_to_string(&page).unwrap();
    for outside in ["src=", "<link", "@import", "<script"] {
        assert!(
            !html.contains(outside),
            "the page must need nothing from outside: `{outside}`"
        );
    }

    let driver = Driver::start();
    let profile = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = browser(&driver, profile.path(), &["--window-size=1200,3000"]).await;
        client
            .goto(&format!("file://{}", page.display()))
            .await
            .unwrap();
        assert_eq!(client.title().await.unwrap(), "Webcare quarterly report");
        let based_on = client
            .find(Locator::Css("#based-on"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(based_on, "36");
        for id in [
            "chart-volume",
            "chart-frt",
            "chart-sla",
            "chart-topics",
            "chart-negative",
        ] {
            let chart = client
                .find(Locator::Css(&format!("svg#{id}")))
                .await
                .unwrap_or_else(|e| panic!("{id} missing: {e}"));
            let (_, _, w, h) = chart.rectangle().await.unwrap();
            assert!(w > 100.0 && h > 50.0, "{id} is {w}×{h}");
            // At least one bar of the chart is drawn with a size.
            let mut drawn = 0;
            for bar in client
                .find_all(Locator::Css(&format!("svg#{id} rect.bar")))
                .await
                .unwrap()
            {
                let (_, _, w, h) = bar.rectangle().await.unwrap();
                if w > 0.0 && h > 0.0 {
                    drawn += 1;
                }
            }
            assert!(drawn > 0, "{id} draws no bar");
        }
        let png = client.screenshot().await.unwrap();
        assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
        assert!(png.len() > 10_000, "the screenshot shows something");
        // Kept for a human to look at.
        let _ = std::fs::write(
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-quarterly.png"),
            &png,
        );
        client.close().await.unwrap();
    });
}

/// `webcare run` in a temp directory, stopped (killed) on drop; returns the dashboard's base URL.
struct Running {
    _dir: tempfile::TempDir,
    child: Child,
    base: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The admin token Prometheus would scrape `/metrics` with.
const SCRAPE_TOKEN: &str = "scrape-0123456789abcdef";

fn run_service() -> Running {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_webcare"));
    command
        .args(["run", "--listen", "127.0.0.1:0"])
        .current_dir(dir.path())
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (name, _) in std::env::vars() {
        if name.starts_with("WEBCARE_") || name.ends_with("_BOT_TOKEN") {
            command.env_remove(name);
        }
    }
    command.env("WEBCARE_ADMIN_TOKEN", SCRAPE_TOKEN);
    let mut child = command.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (send, receive) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(rest) = line.strip_prefix("dashboard: ") {
                let url = rest.split(',').next().unwrap_or("").trim();
                let _ = send.send(url.trim_end_matches("/dashboard").to_owned());
            }
        }
    });
    let base = receive
        .recv_timeout(Duration::from_secs(60))
        .expect("a `dashboard:` line");
    Running {
        _dir: dir,
        child,
        base,
    }
}

#[test]
fn the_dashboard_and_metrics_show_what_the_service_did() {
    let service = run_service();
    let base = service.base.clone();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = reqwest::Client::new();
        for (id, text) in [("q1", QUESTION), ("c1", COMPLAINT), ("q1", QUESTION)] {
            let response = client
                .post(format!("{base}/api/v1/messages"))
                .header("content-type", "application/json")
                .body(serde_json::json!({"id": id, "text": text}).to_string())
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
        }
        // Without a login or token neither page shows anything, and both send the security
        // headers the inbox pages send.
        let plain = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let refused = plain.get(format!("{base}/metrics")).send().await.unwrap();
        assert_eq!(refused.status(), 401);
        let refused = plain.get(format!("{base}/dashboard")).send().await.unwrap();
        assert_eq!(refused.status(), 303);
        assert_eq!(refused.headers()["location"], "/inbox/login");
        let allowed = plain
            .get(format!("{base}/dashboard"))
            .bearer_auth(SCRAPE_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(allowed.status(), 200);
        for name in [
            "content-security-policy",
            "x-content-type-options",
            "referrer-policy",
        ] {
            assert!(allowed.headers().contains_key(name), "{name} missing");
        }
        assert!(
            allowed.headers()["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("frame-ancestors 'none'")
        );

        let metrics = client
            .get(format!("{base}/metrics"))
            .bearer_auth(SCRAPE_TOKEN)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        for line in [
            "webcare_messages_total 3",
            "webcare_duplicates_total 1",
            "webcare_decisions_total{action=\"answer\"} 1",
            "webcare_decisions_total{action=\"escalate\"} 1",
            "webcare_decisions_by_category_total{category=\"complaint\"} 1",
            "webcare_decision_seconds_count 2",
            "webcare_escalations_open{team=\"webcare\"} 1",
            "webcare_crisis_mode 0",
        ] {
            assert!(
                metrics.lines().any(|l| l == line),
                "`{line}` missing in\n{metrics}"
            );
        }
        let page = client
            .get(format!("{base}/dashboard"))
            .bearer_auth(SCRAPE_TOKEN)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            page.contains("<b>2</b>messages today (answer 1, escalate 1)"),
            "{page}"
        );
        assert!(page.contains("<b>off</b>crisis mode"), "{page}");
        assert!(page.contains("<tr><td>webcare</td><td>1</td>"), "{page}");
        assert!(
            !page.contains("klacht"),
            "no customer text on the wall screen"
        );
    });
}
