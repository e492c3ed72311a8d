//! The inbox and the report agree on an escalation's SLA (issue 14): what the inbox says (the
//! history line of the first reply, the API's `sla`, the queue's SLA cell) is what the report
//! counts for the same escalation. Before the case state, the reply cleared the deadline the
//! report judged by, so the inbox said "first response, SLA met" while the report listed the
//! escalation under "no SLA"; and a reply after a breach still read "SLA met" in the inbox.
//!
//! In process, on a manual clock: the HTTP channel (replies inline), the inbox's API and the
//! SLA timer, one store.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use webcare_adapters::gateway::Gateway;
use webcare_adapters::http::{self, HttpChannelConfig};
use webcare_engine::report::{ReportOptions, gather};
use webcare_engine::store::{self, Backend, Role, StoreOptions, User};
use webcare_engine::{ManualClock, Rulebook, Runtime};
use webcare_inbox::auth::{hash_password, new_api_token, token_digest};
use webcare_inbox::sla::SlaTimer;
use webcare_inbox::{Inbox, InboxConfig};

mod support;
use support::serve;

const COMPLAINT: &str = "Ik heb een klacht over de afvalinzameling, al drie weken niet opgehaald!";

/// A time in November 2026 in Amsterdam, as UTC.
fn local(d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    support::local(2026, 11, d, h, mi)
}

struct Service {
    _dir: tempfile::TempDir,
    clock: Arc<ManualClock>,
    gateway: Gateway,
    inbox: Inbox,
    base: String,
    client: reqwest::Client,
    token: String,
}

impl Service {
    async fn start(start: DateTime<Utc>) -> Service {
        let dir = tempfile::tempdir().unwrap();
        let store = store::open(&StoreOptions {
            backend: Backend::Redb,
            data_dir: dir.path().join("data"),
            ..StoreOptions::default()
        })
        .unwrap();
        let runtime = Arc::new(Runtime::new(Rulebook::embedded().unwrap(), store));
        let clock = ManualClock::shared(start);
        let gateway = Gateway::new(runtime).with_clock(clock.clone());
        let inbox = Inbox::new(gateway.clone(), InboxConfig::default(), None);
        let app = http::routes(gateway.clone(), HttpChannelConfig::default())
            .unwrap()
            .merge(inbox.routes());
        let base = serve(app).await;
        let token = new_api_token();
        let digest = token_digest(&token);
        let user = User {
            login: "anna".into(),
            name: "Anna".into(),
            role: Role::Lead,
            teams: Vec::new(),
            password_hash: hash_password("anna-pw").unwrap(),
            created_at: start,
        };
        gateway
            .store(move |s| {
                s.put_user(user, "test", start)?;
                s.add_api_token("anna", digest, start)
            })
            .await
            .unwrap();
        Service {
            _dir: dir,
            clock,
            gateway,
            inbox,
            base,
            client: reqwest::Client::new(),
            token,
        }
    }

    /// A customer's complaint on the HTTP channel; the escalation it opened.
    async fn complaint(&self, id: &str, conversation: &str) -> u64 {
        self.say(id, conversation, COMPLAINT, "webcare").await
    }

    /// A customer's message that escalates to `team`; the escalation of that team it reached.
    async fn say(&self, id: &str, conversation: &str, text: &str, team: &str) -> u64 {
        let decision: serde_json::Value = self
            .client
            .post(format!("{}/api/v1/messages", self.base))
            .header("content-type", "application/json")
            .body(
                serde_json::json!({"id": id, "conversation": conversation, "author": conversation, "text": text})
                    .to_string(),
            )
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(decision["team"], team, "{decision}");
        let (channel, conv, team) = (
            webcare_engine::ChannelKind::Http,
            conversation.to_owned(),
            team.to_owned(),
        );
        self.gateway
            .store(move |s| s.conversation_escalations(channel, &conv))
            .await
            .unwrap()
            .into_iter()
            .rfind(|e| e.team == team)
            .unwrap()
            .id
    }

    async fn api(
        &self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> serde_json::Value {
        let url = format!("{}/api/v1/escalations{path}", self.base);
        let mut request = match method {
            "GET" => self.client.get(url),
            _ => self.client.post(url),
        };
        request = request.bearer_auth(&self.token);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    /// What the inbox says of escalation `id`'s SLA: the first reply's history line, the API's
    /// figure and the queue's cell.
    async fn inbox_says(&self, id: u64) -> (String, String, String) {
        let detail = self.api("GET", &format!("/{id}"), None).await;
        let line = detail["history"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|h| h["change"].as_str())
            .find(|c| c.contains("first response"))
            .unwrap_or("")
            .to_owned();
        let esc = self
            .gateway
            .store(move |s| s.escalation(id))
            .await
            .unwrap()
            .unwrap();
        let (cell, _) = webcare_inbox::sla::cell(&esc, self.gateway.now());
        (line, detail["sla"].as_str().unwrap_or("").to_owned(), cell)
    }

    /// The report's SLA totals (met, breached, pending) and its "no SLA" count.
    async fn report_says(&self) -> ((u64, u64, u64), u64) {
        let report = self.report().await;
        let none = report.sla.iter().map(|r| r.no_deadline).sum();
        (report.sla_totals(), none)
    }

    async fn report(&self) -> webcare_engine::report::Report {
        let now = self.gateway.now();
        let rulebook = self.gateway.runtime().rulebook();
        self.gateway
            .store(move |s| {
                let options = ReportOptions::new(local(1, 0, 0), local(30, 0, 0), now);
                gather::report(s, &options, rulebook.teams(), &rulebook.default_team)
            })
            .await
            .unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_and_the_inbox_give_the_same_sla_figure_for_the_same_escalation() {
    // Tuesday 10:00, inside office hours.
    let s = Service::start(local(24, 10, 0)).await;

    // Answered in time: the inbox says met, and so does the report.
    let met = s.complaint("m1", "c1").await;
    s.clock.set(local(24, 10, 20));
    s.api(
        "POST",
        &format!("/{met}/reply"),
        Some(serde_json::json!({"text": "We sturen vandaag iemand langs."})),
    )
    .await;
    let (line, api, cell) = s.inbox_says(met).await;
    assert!(line.ends_with("first response, SLA met"), "{line}");
    assert_eq!((api.as_str(), cell.as_str()), ("met", "SLA met"));
    assert_eq!(
        s.report_says().await,
        ((1, 0, 0), 0),
        "the report counts it met"
    );

    // Answered after its deadline passed (the timer moved it up the chain): breached in both.
    let late = s.complaint("m2", "c2").await;
    let due = s
        .gateway
        .store(move |st| st.escalation(late))
        .await
        .unwrap()
        .unwrap()
        .sla_deadline
        .unwrap();
    s.clock.set(due + chrono::Duration::minutes(5));
    let moved = SlaTimer::new(s.inbox.clone(), Duration::from_millis(20))
        .tick()
        .await
        .unwrap();
    assert_eq!(moved.len(), 1, "breached");
    s.api(
        "POST",
        &format!("/{late}/reply"),
        Some(serde_json::json!({"text": "Sorry voor het wachten."})),
    )
    .await;
    let (line, api, cell) = s.inbox_says(late).await;
    assert!(line.ends_with("first response, SLA breached"), "{line}");
    assert_eq!((api.as_str(), cell.as_str()), ("breached", "SLA breached"));
    assert_eq!(s.report_says().await, ((1, 1, 0), 0));

    // The first one is still met, as the inbox shows it.
    let (_, api, cell) = s.inbox_says(met).await;
    assert_eq!((api.as_str(), cell.as_str()), ("met", "SLA met"));

    // A journalist in a complaint conversation: answering the complaint does not answer the
    // press question, in the inbox or in the report.
    let complaint = s.complaint("m3", "c3").await;
    let press = s
        .say(
            "m4",
            "c3",
            "Ik ben journalist van het Dagblad: kan de woordvoerder reageren op de klachten?",
            "communications",
        )
        .await;
    assert_ne!(press, complaint);
    s.api(
        "POST",
        &format!("/{complaint}/reply"),
        Some(serde_json::json!({"text": "Excuses, het wordt vandaag opgehaald."})),
    )
    .await;
    let (line, api, cell) = s.inbox_says(press).await;
    assert_eq!((line.as_str(), api.as_str()), ("", "pending"));
    assert!(cell.starts_with("in "), "{cell}");
    let report = s.report().await;
    let row = |team: &str| report.sla.iter().find(|r| r.team == team).unwrap().clone();
    assert_eq!(
        (row("communications").met, row("communications").pending),
        (0, 1)
    );
    assert_eq!(row("webcare").met, 2);
}
