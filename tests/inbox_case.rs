//! What a customer's message does to its case, as a support team sees it in a real headless
//! Chromium on `webcare run` (issue 14): a follow-up after an agent's reply marks the
//! escalation waiting and moves it up the queue; a journalist's question inside a complaint
//! conversation lands in Communications' own queue and stays unanswered when the complaint is
//! answered; a customer's satisfaction score after a resolution is counted in the report.
//!
//! Needs Debian's `chromium` and `chromium-driver`, like `tests/inbox.rs`.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, Locator};

mod support;
use support::{
    Driver, PrintedLines, add_user, browser, click, copy_rulebook, spawn_printing, text_of, webcare,
};

const COMPLAINT: &str =
    "Ik heb een klacht: de afvalinzameling is al drie weken niet geweest, schandalig!";
const PRESS: &str = "Ik ben journalist van het Dagblad. Kan de woordvoerder reageren op de klachten over het afval?";

struct Running {
    child: Child,
    base: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

/// SIGTERM, and wait (bounded) until the store is released.
fn stop(child: &mut Child) {
    if let Ok(None) = child.try_wait() {
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while let Ok(None) = child.try_wait() {
            if Instant::now() > deadline {
                let _ = child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// `webcare run` in `dir`, with `rules` when given.
fn start(dir: &Path, rules: Option<&Path>) -> Running {
    let mut command = webcare(dir);
    if let Some(rules) = rules {
        command.arg("--rules").arg(rules);
    }
    command
        .args(["run", "--listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let (child, lines, _) = spawn_printing(&mut command);
    let base = wait_for_base(&lines);
    Running { child, base }
}

fn wait_for_base(lines: &PrintedLines) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let found = lines.lock().unwrap().iter().find_map(|l| {
            l.strip_prefix("inbox: ")
                .and_then(|rest| rest.split(' ').next())
                .and_then(|url| url.strip_suffix("/inbox"))
                .map(str::to_owned)
        });
        if let Some(base) = found {
            return base;
        }
        assert!(
            Instant::now() < deadline,
            "no `inbox:` line: {:?}",
            lines.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A customer's message on the HTTP channel; its decision.
async fn say(base: &str, id: &str, conversation: &str, text: &str) -> serde_json::Value {
    reqwest::Client::new()
        .post(format!("{base}/api/v1/messages"))
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
        .unwrap()
}

async fn log_in(client: &Client, base: &str, login: &str, password: &str) {
    client.goto(&format!("{base}/inbox")).await.unwrap();
    client
        .find(Locator::Id("login"))
        .await
        .unwrap()
        .send_keys(login)
        .await
        .unwrap();
    client
        .find(Locator::Id("password"))
        .await
        .unwrap()
        .send_keys(password)
        .await
        .unwrap();
    click(client, "#login-submit").await;
    text_of(client, "#queues").await;
}

/// Replies on escalation `id` from its page, and waits until the page shows the reply.
async fn reply(client: &Client, base: &str, id: u64, text: &str) {
    client
        .goto(&format!("{base}/inbox/escalations/{id}"))
        .await
        .unwrap();
    client
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Id("reply-text"))
        .await
        .unwrap()
        .send_keys(text)
        .await
        .unwrap();
    click(client, "#send-reply").await;
    // The page after the reply shows it among the agent's lines.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut lines = Vec::new();
        for line in client
            .find_all(Locator::Css(".line.agent .text"))
            .await
            .unwrap_or_default()
        {
            lines.push(line.text().await.unwrap_or_default());
        }
        if lines.iter().any(|l| l == text) {
            return;
        }
        assert!(Instant::now() < deadline, "`{text}` not in {lines:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The ids of a team's queue rows, top first.
async fn queue_ids(client: &Client, base: &str, team: &str) -> Vec<u64> {
    client
        .goto(&format!("{base}/inbox?team={team}"))
        .await
        .unwrap();
    text_of(client, "#queues").await;
    // Read in one script: the live queue may replace its rows between a lookup and a read,
    // which leaves a row found by WebDriver stale.
    let ids = client
        .execute(
            "return Array.from(document.querySelectorAll(arguments[0])).map(r => r.id);",
            vec![serde_json::json!(format!(
                "table.queue[data-team=\"{team}\"] tr.escalation"
            ))],
        )
        .await
        .unwrap();
    ids.as_array()
        .unwrap()
        .iter()
        .map(|id| {
            let id = id.as_str().unwrap_or_default();
            id.trim_start_matches("esc-").parse().unwrap()
        })
        .collect()
}

#[test]
fn a_follow_up_marks_the_escalation_waiting_and_moves_it_up_the_queue() {
    let dir = tempfile::tempdir().unwrap();
    add_user(
        dir.path(),
        "anna",
        "agent",
        Some("webcare"),
        "anna-passphrase",
    );
    let service = start(dir.path(), None);
    let base = service.base.clone();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        for (id, conversation) in [("m1", "c1"), ("m2", "c2")] {
            let decision = say(&base, id, conversation, COMPLAINT).await;
            assert_eq!(decision["team"], "webcare", "{decision}");
        }
        let driver = Driver::start();
        let profile = tempfile::tempdir().unwrap();
        let client = browser(&driver, profile.path(), &["--window-size=1200,2000"]).await;
        log_in(&client, &base, "anna", "anna-passphrase").await;
        // Both new: the first one's deadline comes first.
        let ids = queue_ids(&client, &base, "webcare").await;
        let [first, second] = ids[..] else {
            panic!("two escalations: {ids:?}")
        };
        reply(&client, &base, first, "We sturen vandaag iemand langs.").await;
        reply(&client, &base, second, "We kijken het na.").await;
        // Both answered: the older first, nobody waiting.
        assert_eq!(
            queue_ids(&client, &base, "webcare").await,
            vec![first, second]
        );
        assert!(
            client
                .find_all(Locator::Css("tr.escalation .waiting"))
                .await
                .unwrap()
                .is_empty()
        );

        // The second customer writes again: the bot stays silent, the team sees it.
        let follow = say(
            &base,
            "m3",
            "c2",
            "Hallo? Er is nog steeds niemand geweest.",
        )
        .await;
        assert!(follow["reply"].is_null(), "{follow}");
        assert_eq!(
            queue_ids(&client, &base, "webcare").await,
            vec![second, first]
        );
        let flag = text_of(&client, &format!("#esc-{second} .waiting")).await;
        assert_eq!(flag, "waiting");
        let sla = text_of(&client, &format!("#esc-{second} td.sla small.countdown")).await;
        assert!(
            sla.starts_with("in "),
            "a next-response deadline runs: {sla}"
        );
        client
            .goto(&format!("{base}/inbox/escalations/{second}"))
            .await
            .unwrap();
        let waiting = text_of(&client, "#waiting").await;
        assert!(waiting.starts_with("the customer waits since"), "{waiting}");

        // An answer ends the wait, and it drops back.
        reply(&client, &base, second, "Morgenochtend komen ze.").await;
        assert_eq!(
            queue_ids(&client, &base, "webcare").await,
            vec![first, second]
        );
        client.close().await.unwrap();
    });
}

#[test]
fn a_press_question_in_a_complaint_conversation_reaches_communications_own_queue() {
    let dir = tempfile::tempdir().unwrap();
    add_user(dir.path(), "lea", "lead", None, "lea-passphrase");
    let service = start(dir.path(), None);
    let base = service.base.clone();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let complaint = say(&base, "m1", "c1", COMPLAINT).await;
        assert_eq!(complaint["team"], "webcare", "{complaint}");
        let press = say(&base, "m2", "c1", PRESS).await;
        assert_eq!(press["team"], "communications", "{press}");
        let holding = press["reply"].as_str().unwrap_or_default();
        assert!(
            holding.contains("Communicatie"),
            "the holding reply names the team that sees it: {holding}"
        );
        let driver = Driver::start();
        let profile = tempfile::tempdir().unwrap();
        let client = browser(&driver, profile.path(), &["--window-size=1200,2000"]).await;
        log_in(&client, &base, "lea", "lea-passphrase").await;
        // Each in its own team's queue.
        let press_queue = queue_ids(&client, &base, "communications").await;
        let complaint_queue = queue_ids(&client, &base, "webcare").await;
        let ([p], [c]) = (&press_queue[..], &complaint_queue[..]) else {
            panic!("one each: {press_queue:?} {complaint_queue:?}")
        };
        let (p, c) = (*p, *c);
        assert_ne!(c, p);

        // Answering the complaint does not answer the press question.
        reply(&client, &base, c, "Excuses, we lossen het vandaag op.").await;
        assert_eq!(queue_ids(&client, &base, "communications").await, vec![p]);
        let sla = text_of(&client, &format!("#esc-{p} td.sla small.countdown")).await;
        assert!(sla.starts_with("in "), "still unanswered: {sla}");
        client
            .goto(&format!("{base}/inbox/escalations/{p}"))
            .await
            .unwrap();
        let line = text_of(&client, ".line.customer .text").await;
        assert!(!line.is_empty());
        let linked = text_of(&client, "a.linked").await;
        assert_eq!(linked, format!("#{c}"));
        client.close().await.unwrap();
    });
}

#[test]
fn a_satisfaction_answer_is_counted_in_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let rules = copy_rulebook(dir.path());
    let config = rules.join("rulebook.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    let on = text.replace(
        "[cases.satisfaction]\nenabled = false",
        "[cases.satisfaction]\nenabled = true",
    );
    assert_ne!(on, text, "rulebook.toml has [cases.satisfaction]");
    std::fs::write(&config, on).unwrap();
    add_user(
        dir.path(),
        "anna",
        "agent",
        Some("webcare"),
        "anna-passphrase",
    );
    let mut service = start(dir.path(), Some(&rules));
    let base = service.base.clone();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let driver = Driver::start();
    let profile = tempfile::tempdir().unwrap();
    runtime.block_on(async {
        say(&base, "m1", "c1", COMPLAINT).await;
        let client = browser(&driver, profile.path(), &["--window-size=1200,2000"]).await;
        log_in(&client, &base, "anna", "anna-passphrase").await;
        let id = queue_ids(&client, &base, "webcare").await[0];
        reply(&client, &base, id, "Opgelost: de container is geleegd.").await;
        click(&client, "#resolve").await;
        text_of(&client, "#queues").await;

        // The customer's score is the answer: logged, not decided, no reply.
        let answer = say(&base, "m2", "c1", "5").await;
        assert_eq!(answer["action"], "log", "{answer}");
        assert!(answer["reply"].is_null(), "{answer}");
        client.close().await.unwrap();
    });
    stop(&mut service.child);

    // Replayed, the answer stays what intake took it for: a stored score, not a message the
    // rulebook decides again (its "5" is no news a rulebook change could alter).
    let replay = |report: &str| {
        webcare(dir.path())
            .arg("--rules")
            .arg(&rules)
            .args(["replay", "--from-store", "--report", report])
            .output()
            .unwrap()
    };
    let out = replay("decisions");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let decisions = String::from_utf8_lossy(&out.stdout).into_owned();
    let answer: serde_json::Value = decisions
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|d| d["id"] == "m2")
        .unwrap_or_else(|| panic!("m2 replayed: {decisions}"));
    assert_eq!(answer["action"], "log", "{answer}");
    assert_eq!(
        answer["rules"],
        serde_json::json!(["engine:satisfaction"]),
        "{answer}"
    );
    assert_eq!(
        answer["reasons"],
        serde_json::json!(["answers the satisfaction question: 5 of 5"]),
        "{answer}"
    );
    let table = String::from_utf8_lossy(&replay("table").stdout).into_owned();
    assert!(table.contains(", 0 would change"), "{table}");

    // The report counts it, per team, agent and channel.
    let page = dir.path().join("report.html");
    let out = webcare(dir.path())
        .arg("--rules")
        .arg(&rules)
        .args(["report", "--since", "1d", "--format", "html", "--output"])
        .arg(&page)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    runtime.block_on(async {
        let client = browser(&driver, profile.path(), &["--window-size=1200,4000"]).await;
        client
            .goto(&format!("file://{}", page.display()))
            .await
            .unwrap();
        let total = text_of(&client, "#satisfaction").await;
        assert_eq!(total, "1 of 1 answered, mean 5.0, 100.0% satisfied");
        let table = text_of(&client, "#satisfaction-table").await;
        for row in [
            "team webcare 1 1 5.0 100.0%",
            "agent anna 1 1 5.0 100.0%",
            "channel http 1 1 5.0 100.0%",
        ] {
            assert!(table.contains(row), "{row} in {table}");
        }
        let agents = text_of(&client, "#agents").await;
        assert!(agents.contains("anna 1"), "{agents}");
        client.close().await.unwrap();
    });
}
