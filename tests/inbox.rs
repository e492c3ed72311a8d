//! The inbox as a support team meets it: `webcare user add` creates an agent (password on
//! stdin), `webcare run` serves `/inbox`, and a real headless Chromium logs in, sees the queue,
//! opens an escalation whose message holds `<script>` (shown as text, never run), replies and
//! resolves it; the reply reaches the store's outbox and the customer's conversation goes back
//! to the bot.
//!
//! Needs Debian's `chromium` and `chromium-driver`, like `tests/service.rs` (whose chromedriver
//! setup this repeats); nothing is downloaded at run time.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fantoccini::Locator;
use webcare_engine::store::{self, EscalationStatus, OutboxStatus, StoreOptions};
use webcare_engine::{ChannelKind, ConversationState};

mod support;
use support::{Driver, add_user, browser, click, text_of, webcare};

const SCRIPT: &str = "<script>window.__pwned = 1</script> Ik heb een klacht: de afvalinzameling is al drie weken niet geweest!";

struct Running {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(30);
            while let Ok(None) = self.child.try_wait() {
                if Instant::now() > deadline {
                    let _ = self.child.kill();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

fn start(dir: &Path) -> (Running, String) {
    let mut child = webcare(dir)
        .args(["run", "--listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&lines);
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            sink.lock().unwrap().push(line);
        }
    });
    let running = Running { child, lines };
    let deadline = Instant::now() + Duration::from_secs(60);
    let base = loop {
        let found = running.lines.lock().unwrap().iter().find_map(|l| {
            l.strip_prefix("inbox: ")
                .and_then(|rest| rest.split(' ').next())
                .and_then(|url| url.strip_suffix("/inbox"))
                .map(str::to_owned)
        });
        if let Some(base) = found {
            break base;
        }
        assert!(
            Instant::now() < deadline,
            "no `inbox:` line: {:?}",
            running.lines.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    (running, base)
}

#[test]
fn an_agent_logs_in_and_works_an_escalation_in_a_real_browser() {
    let dir = tempfile::tempdir().unwrap();
    add_user(
        dir.path(),
        "anna",
        "agent",
        Some("webcare"),
        "s3cret-passphrase",
    );

    let (mut running, base) = start(dir.path());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let decision: serde_json::Value = reqwest::Client::new()
            .post(format!("{base}/api/v1/messages"))
            .header("content-type", "application/json")
            .body(serde_json::json!({"id": "x1", "conversation": "c1", "text": SCRIPT}).to_string())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(decision["action"], "escalate", "{decision}");
        assert_eq!(decision["team"], "webcare");

        let driver = Driver::start();
        let profile = tempfile::tempdir().unwrap();
        let client = browser(&driver, profile.path(), &[]).await;

        // Not logged in: the inbox sends the browser to the login page.
        client.goto(&format!("{base}/inbox")).await.unwrap();
        let url = client.current_url().await.unwrap();
        assert!(url.path().ends_with("/inbox/login"), "{url}");
        client
            .find(Locator::Id("login"))
            .await
            .unwrap()
            .send_keys("anna")
            .await
            .unwrap();
        client
            .find(Locator::Id("password"))
            .await
            .unwrap()
            .send_keys("s3cret-passphrase")
            .await
            .unwrap();
        click(&client, "#login-submit").await;

        // The queue: the webcare team with one open escalation.
        let summary = text_of(&client, "#team-webcare").await;
        assert!(summary.contains("the webcare team"), "{summary}");
        assert_eq!(text_of(&client, "#team-webcare .count-open").await, "1");
        click(&client, "tr.escalation a").await;

        // The escalation: the customer's markup is text, and never ran.
        let line = text_of(&client, ".line.customer .text").await;
        assert_eq!(line, SCRIPT);
        let pwned = client
            .execute("return window.__pwned === undefined", vec![])
            .await
            .unwrap();
        assert_eq!(pwned, serde_json::Value::Bool(true));
        assert!(
            client
                .find_all(Locator::Css("main script"))
                .await
                .unwrap()
                .is_empty()
        );
        // The why is one click away (collapsed below the work): open it, then read it.
        click(&client, "#why summary").await;
        let rules = text_of(&client, "#rules").await;
        assert!(rules.contains("escalation.rhai:"), "{rules}");
        // The explain panel shows the same text as text, and why it was escalated.
        assert_eq!(text_of(&client, "#explain .explain-text").await, SCRIPT);
        let proposal = text_of(&client, "#explain .explain-proposal").await;
        assert!(proposal.starts_with("escalate to `webcare`"), "{proposal}");

        // Reply, then resolve.
        client
            .find(Locator::Id("reply-text"))
            .await
            .unwrap()
            .send_keys("Sorry! We send the collection team today.")
            .await
            .unwrap();
        click(&client, "#send-reply").await;
        // The agent's line exists only on the page after the reply, so wait for it first.
        let agent = text_of(&client, ".line.agent .text").await;
        assert_eq!(agent, "Sorry! We send the collection team today.");
        let status = text_of(&client, "#status").await;
        assert_eq!(status, "claimed by anna");
        click(&client, "#resolve").await;
        let queues = text_of(&client, "#queues").await;
        assert!(!queues.contains("#"), "the queue is empty again: {queues}");
        assert_eq!(text_of(&client, "#team-webcare .count-open").await, "0");
        client.close().await.unwrap();
    });
    let stopped = running_stop(&mut running);
    assert!(stopped.is_some_and(|s| s.success()), "{stopped:?}");

    // What the browser did is in the store.
    let store = store::open(&StoreOptions {
        data_dir: dir.path().join("data"),
        ..StoreOptions::default()
    })
    .unwrap();
    let conversation = store
        .conversation(ChannelKind::Http, "c1")
        .unwrap()
        .unwrap();
    assert_eq!(
        conversation.state,
        ConversationState::Bot,
        "back to the bot"
    );
    let replies = store.conversation_outbox(ChannelKind::Http, "c1").unwrap();
    let agent = replies
        .iter()
        .find(|r| r.text.starts_with("Sorry!"))
        .unwrap();
    assert_eq!(
        agent.status,
        OutboxStatus::Pending,
        "waits for a callback URL"
    );
    assert!(store.open_escalations().unwrap().is_empty());
    let audit = store.audit_log(None, 1000).unwrap();
    for action in [
        "user.add",
        "inbox.login",
        "escalation.reply",
        "escalation.resolve",
    ] {
        assert!(audit.iter().any(|a| a.action == action), "{action}");
    }
    let resolved = audit
        .iter()
        .find(|a| a.action == "escalation.resolve")
        .unwrap();
    let id: u64 = resolved
        .subject
        .trim_start_matches("escalation ")
        .parse()
        .unwrap();
    let esc = store.escalation(id).unwrap().unwrap();
    assert_eq!(esc.status, EscalationStatus::Resolved { by: "anna".into() });
}

/// Stops the service (SIGTERM) and waits, bounded.
fn running_stop(running: &mut Running) -> Option<std::process::ExitStatus> {
    let _ = Command::new("kill")
        .args(["-TERM", &running.child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(Some(status)) = running.child.try_wait() {
            return Some(status);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Stops the service cleanly (it holds the store) and reads the audit log it left.
fn stop_and_read_audit(running: &mut Running, dir: &Path) -> Vec<store::AuditEntry> {
    let stopped = running_stop(running);
    assert!(stopped.is_some_and(|s| s.success()), "{stopped:?}");
    let store = store::open(&StoreOptions {
        data_dir: dir.join("data"),
        ..StoreOptions::default()
    })
    .unwrap();
    store.audit_log(None, 1000).unwrap()
}

/// The login form posted like a browser without JavaScript; the answer to the post.
async fn try_log_in(
    client: &reqwest::Client,
    base: &str,
    login: &str,
    password: &str,
) -> reqwest::Response {
    let form = client
        .get(format!("{base}/inbox/login"))
        .send()
        .await
        .unwrap();
    let login_cookie = cookie_of(&form, "webcare_login").unwrap();
    let csrf = hidden_csrf(&form.text().await.unwrap());
    client
        .post(format!("{base}/inbox/login"))
        .header("cookie", format!("webcare_login={login_cookie}"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("login", login),
            ("password", password),
        ])
        .send()
        .await
        .unwrap()
}

fn cookie_of(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            let (key, value) = v.split(';').next()?.split_once('=')?;
            (key == name).then(|| value.to_owned())
        })
}

fn hidden_csrf(page: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = page.find(marker).unwrap() + marker.len();
    page[start..].split('"').next().unwrap().to_owned()
}

/// Logs in through the form; returns the session cookie and the CSRF token of the queue page.
async fn log_in(
    client: &reqwest::Client,
    base: &str,
    login: &str,
    password: &str,
) -> (String, String) {
    let done = try_log_in(client, base, login, password).await;
    assert_eq!(done.status().as_u16(), 303, "{login} logs in");
    let session = cookie_of(&done, "webcare_session").unwrap();
    let queue = client
        .get(format!("{base}/inbox"))
        .header("cookie", format!("webcare_session={session}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    (session, hidden_csrf(&queue))
}

#[test]
fn a_lead_switches_crisis_mode_in_the_inbox_of_webcare_run_and_the_audit_log_names_them() {
    let dir = tempfile::tempdir().unwrap();
    add_user(dir.path(), "lena", "lead", None, "lena-passphrase");
    add_user(
        dir.path(),
        "anna",
        "agent",
        Some("webcare"),
        "anna-passphrase",
    );
    let (mut running, base) = start(dir.path());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let ask = |id: &'static str| {
            let (client, base) = (client.clone(), base.clone());
            async move {
                client
                    .post(format!("{base}/api/v1/messages"))
                    .json(&serde_json::json!({"id": id, "text": "Wat zijn de openingstijden van het stadskantoor?"}))
                    .send()
                    .await
                    .unwrap()
                    .json::<serde_json::Value>()
                    .await
                    .unwrap()
            }
        };
        let switch = |session: String, csrf: String, to: &'static str| {
            let (client, base) = (client.clone(), base.clone());
            async move {
                client
                    .post(format!("{base}/inbox/crisis"))
                    .header("cookie", format!("webcare_session={session}"))
                    .form(&[("csrf", csrf.as_str()), ("switch", to)])
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            }
        };
        assert_eq!(ask("before").await["action"], "answer");
        let (anna, anna_csrf) = log_in(&client, &base, "anna", "anna-passphrase").await;
        assert_eq!(switch(anna, anna_csrf, "on").await, 403, "agents may not");
        assert_eq!(ask("still").await["action"], "answer");
        let (lena, lena_csrf) = log_in(&client, &base, "lena", "lena-passphrase").await;
        assert_eq!(switch(lena.clone(), lena_csrf.clone(), "on").await, 303);
        let during = ask("during").await;
        assert_eq!(during["action"], "escalate", "{during}");
        let page = client
            .get(format!("{base}/inbox/crisis"))
            .header("cookie", format!("webcare_session={lena}"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(page.contains("Crisis mode is <strong>on</strong> (switched on)"), "{page}");
        assert_eq!(switch(lena, lena_csrf, "auto").await, 303);
        assert_eq!(ask("after").await["action"], "answer");

        // This service has no admin token: `webcare crisis` says so instead of failing vaguely.
        let out = webcare(dir.path())
            .args(["crisis", "status", "--url", &base])
            .env("WEBCARE_ADMIN_TOKEN", "some-token")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(
            err.contains(&format!("the admin API of the service at {base} is off")),
            "{err}"
        );
    });
    let switches: Vec<(String, String)> = stop_and_read_audit(&mut running, dir.path())
        .into_iter()
        .filter(|a| a.action == "crisis.switch")
        .map(|a| (a.actor, a.subject))
        .collect();
    assert_eq!(
        switches,
        [
            ("lena".to_owned(), "on".to_owned()),
            ("lena".to_owned(), "rulebook".to_owned())
        ]
    );
}

/// A person who leaves: `webcare user revoke` ends their API tokens, `webcare user remove`
/// ends their password and tokens; both say so, and the audit log says who did it.
#[test]
fn a_removed_user_can_no_longer_log_in_or_use_a_token() {
    let dir = tempfile::tempdir().unwrap();
    add_user(
        dir.path(),
        "bob",
        "agent",
        Some("webcare"),
        "bob-passphrase",
    );
    add_user(
        dir.path(),
        "anna",
        "agent",
        Some("webcare"),
        "anna-passphrase",
    );
    let cli = |args: &[&str]| {
        let out = webcare(dir.path())
            .args(args)
            .env("USER", "lead-lena")
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).trim().to_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (_, revoked_token, _) = cli(&["user", "token", "bob"]);
    assert_eq!(
        cli(&["user", "revoke", "bob"]).1,
        "revoked 1 API tokens of bob"
    );
    let (_, bob_token, _) = cli(&["user", "token", "bob"]);
    let (_, anna_token, _) = cli(&["user", "token", "anna"]);
    let (ok, out, err) = cli(&["user", "remove", "bob"]);
    assert!(ok, "{err}");
    assert!(out.contains("user bob removed"), "{out}");
    let (ok, _, err) = cli(&["user", "remove", "bob"]);
    assert!(!ok);
    assert!(err.contains("user `bob` does not exist"), "{err}");
    let (_, list, _) = cli(&["user", "list"]);
    assert!(!list.contains("bob") && list.contains("anna"), "{list}");

    let (mut running, base) = start(dir.path());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let queue = |token: String| {
            let (client, base) = (client.clone(), base.clone());
            async move {
                client
                    .get(format!("{base}/api/v1/escalations"))
                    .bearer_auth(token)
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            }
        };
        assert_eq!(queue(revoked_token).await, 401, "a revoked token");
        assert_eq!(queue(bob_token).await, 401, "the token of a removed user");
        assert_eq!(queue(anna_token).await, 200, "a colleague is untouched");
        // The login form: bob's password no longer opens a session.
        let refused = try_log_in(&client, &base, "bob", "bob-passphrase").await;
        assert_ne!(refused.status().as_u16(), 303, "bob is not logged in");
        assert_eq!(
            cookie_of(&refused, "webcare_session"),
            None,
            "no session for bob"
        );
    });
    let audit: Vec<(String, String)> = stop_and_read_audit(&mut running, dir.path())
        .into_iter()
        .filter(|a| a.action == "user.revoke" || a.action == "user.remove")
        .map(|a| (a.actor, a.action))
        .collect();
    assert_eq!(
        audit,
        [
            ("lead-lena".to_owned(), "user.revoke".to_owned()),
            ("lead-lena".to_owned(), "user.remove".to_owned())
        ]
    );
}
