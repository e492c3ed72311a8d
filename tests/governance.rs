//! Safe rule changes in the running service, as a governance lead makes them: the real
//! `webcare run` binary on 127.0.0.1 port 0 with `--rules DIR`, the admin API, and a load of
//! messages through the HTTP channel while the rulebook is swapped and broken underneath it.
//! Also the way a new rulebook is brought in before it goes live: channel modes (`listen`,
//! `shadow`, `live`) and a shadow rulebook whose decisions the shadow diff report compares.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use webcare_engine::RulebookSource;
use webcare_engine::report::spike;
use webcare_engine::store::{self, StoreOptions};

mod support;
use support::{copy_rulebook, webcare};

const TOKEN: &str = "lead-secret-token";

struct Service {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    base: String,
}

impl Service {
    fn start(rules: &Path, data: &Path) -> Service {
        Service::start_with(rules, data, &[])
    }

    /// Like [`Service::start`], with extra environment variables.
    fn start_with(rules: &Path, data: &Path, env: &[(&str, &str)]) -> Service {
        let mut command = webcare(data.parent().unwrap());
        command
            .args(["run", "--listen", "127.0.0.1:0", "--rules"])
            .arg(rules)
            .arg("--data")
            .arg(data)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        command.env("WEBCARE_ADMIN_TOKEN", TOKEN);
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap().push(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        let base = loop {
            let found = lines.lock().unwrap().iter().find_map(|l| {
                l.strip_prefix("http channel: POST ")
                    .and_then(|url| url.split_once("/api/v1/messages"))
                    .map(|(base, _)| base.to_owned())
            });
            if let Some(base) = found {
                break base;
            }
            assert!(
                Instant::now() < deadline,
                "no http channel line: {:?}",
                lines.lock().unwrap()
            );
            if let Ok(Some(status)) = child.try_wait() {
                panic!("webcare run exited early: {status}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        Service { child, lines, base }
    }

    /// Everything it printed at start, once the last line (the outbox's) is out.
    fn said(&self) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let lines = self.lines.lock().unwrap().clone();
            if lines.iter().any(|l| l.starts_with("outbox: ")) {
                return lines.join("\n");
            }
            assert!(Instant::now() < deadline, "no `outbox:` line: {lines:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop(mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "webcare did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

async fn admin(
    client: &reqwest::Client,
    base: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let request = match body {
        Some(body) => client.post(format!("{base}{path}")).json(&body),
        None => client.post(format!("{base}{path}")),
    };
    let response = request.bearer_auth(TOKEN).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// A valid variant of the topics file: the passport topic gains a harmless extra keyword, so
/// the content hash (the version) differs while every golden case still passes.
fn variant(original: &str, n: usize) -> String {
    original.replacen(
        "\"paspoort*\", ",
        &format!("\"paspoort*\", \"reisdocumentvariant{n}\", "),
        1,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_reloads_under_load_lose_nothing_and_reject_every_broken_rulebook() {
    let dir = tempfile::tempdir().unwrap();
    let rules = copy_rulebook(dir.path());
    let data = dir.path().join("data");
    let topics_path = rules.join("topics.toml");
    let original = std::fs::read_to_string(&topics_path).unwrap();
    let version_of = |topics: &str| {
        std::fs::write(&topics_path, topics).unwrap();
        RulebookSource::from_dir(&rules).unwrap().version()
    };
    let valid = [variant(&original, 1), variant(&original, 2)];
    let valid_versions: Vec<String> = valid.iter().map(|t| version_of(t)).collect();
    let first_version = version_of(&original);
    assert!(valid_versions.iter().all(|v| *v != first_version));

    let service = Service::start(&rules, &data);
    let base = service.base.clone();
    let client = reqwest::Client::new();

    // The load: four clients posting unique messages until the reloads are done.
    let running = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let mut load = tokio::task::JoinSet::new();
    for worker in 0..4 {
        let (client, base, running) = (client.clone(), base.clone(), Arc::clone(&running));
        load.spawn(async move {
            let mut results = Vec::new();
            let texts = ["Hoe vraag ik een paspoort aan?", "Wanneer wordt het grofvuil opgehaald?", "Ik heb een klacht!"];
            let mut n = 0usize;
            while running.load(std::sync::atomic::Ordering::Relaxed) || n < 20 {
                let id = format!("w{worker}-{n}");
                let body = json!({"id": id, "conversation": format!("c{worker}-{}", n % 7), "text": texts[n % texts.len()]});
                let response = client.post(format!("{base}/api/v1/messages")).json(&body).send().await.unwrap();
                let status = response.status().as_u16();
                let value: Value = response.json().await.unwrap();
                results.push((id, status, value));
                n += 1;
            }
            results
        });
    }

    let mut expected = first_version.clone();
    for i in 0..20 {
        if i % 2 == 0 {
            let which = (i / 2) % 2;
            std::fs::write(&topics_path, &valid[which]).unwrap();
            let (status, outcome) = admin(&client, &base, "/api/v1/rulebook/reload", None).await;
            assert_eq!(status, 200, "valid rulebook {i}: {outcome}");
            let version = outcome["version"].as_str().unwrap();
            assert_eq!(version, valid_versions[which], "reload {i}: {outcome}");
            assert!(["activated", "unchanged"].contains(&outcome["status"].as_str().unwrap()));
            expected = version.to_owned();
        } else {
            let broken = format!(
                "{}\n[[topic]]\nid = \"broken_{i}\"\ncategory = \"questoin\"\nkeywords = [\"x\"]\n",
                valid[0]
            );
            std::fs::write(&topics_path, &broken).unwrap();
            let line = broken.lines().count() - 1;
            let (status, outcome) = admin(&client, &base, "/api/v1/rulebook/reload", None).await;
            assert_eq!(
                status, 422,
                "broken rulebook {i} must be rejected: {outcome}"
            );
            assert_eq!(outcome["status"], "rejected");
            assert_eq!(
                outcome["running"],
                expected.as_str(),
                "the old version keeps running"
            );
            let errors = outcome["errors"].to_string();
            assert!(
                errors.contains(&format!("topics.toml:{line}:")),
                "error position in {errors}"
            );
            assert!(errors.contains("unknown category `questoin`"), "{errors}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    running.store(false, std::sync::atomic::Ordering::Relaxed);
    let mut results = Vec::new();
    while let Some(part) = load.join_next().await {
        results.extend(part.unwrap());
    }

    // The crisis switch needs the token, and is audited.
    let unauthorised = client
        .post(format!("{base}/api/v1/crisis"))
        .json(&json!({"on": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthorised.status().as_u16(), 401);
    let (status, crisis) = admin(&client, &base, "/api/v1/crisis", Some(json!({"on": true}))).await;
    assert_eq!((status, crisis["crisis_mode"].as_bool()), (200, Some(true)));
    let during = client
        .post(format!("{base}/api/v1/messages"))
        .json(&json!({"id": "crisis-1", "text": "Hoe vraag ik een paspoort aan?"}))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(
        during["action"], "escalate",
        "crisis mode sends everything to a person: {during}"
    );
    admin(&client, &base, "/api/v1/crisis", Some(json!({"on": null}))).await;
    service.stop();

    // Every message was accepted once and decided by a version that was in force.
    let allowed: BTreeSet<&str> = std::iter::once(first_version.as_str())
        .chain(valid_versions.iter().map(String::as_str))
        .collect();
    let mut ids = BTreeSet::new();
    for (id, status, value) in &results {
        assert_eq!(*status, 200, "{id}: {value}");
        assert_eq!(value["duplicate"], false, "{id} decided twice");
        assert!(
            allowed.contains(value["rulebook"].as_str().unwrap()),
            "{id}: {value}"
        );
        assert!(ids.insert(id.clone()));
    }
    assert!(results.len() >= 80, "the load ran: {}", results.len());

    let store = store::open(&StoreOptions {
        data_dir: data.clone(),
        ..StoreOptions::default()
    })
    .unwrap();
    let mut stored = BTreeSet::new();
    for message in store::history(&*store, None) {
        let message = message.unwrap();
        // The service's own early-warning alerts (its detector looks every five minutes, and on
        // a slow machine this test runs longer) are not messages anyone sent.
        if message.message.author == spike::ALERT_AUTHOR {
            continue;
        }
        assert!(allowed.contains(message.decision.diagnostics.rulebook.as_str()));
        assert!(stored.insert(message.message.id.clone()), "stored twice");
    }
    ids.insert("crisis-1".to_owned());
    assert_eq!(
        stored, ids,
        "every acknowledged message is stored, nothing else"
    );
    let audit = store.audit_log(None, 1000).unwrap();
    let rejected = audit
        .iter()
        .filter(|a| a.action == "rulebook.reject")
        .count();
    assert!(rejected >= 10, "every rejection is audited: {rejected}");
    assert!(audit.iter().any(|a| a.action == "rulebook.activate"));
    assert!(
        audit
            .iter()
            .any(|a| a.action == "crisis.switch" && a.subject == "on")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watcher_activates_a_changed_rulebook_without_being_asked() {
    let dir = tempfile::tempdir().unwrap();
    let rules = copy_rulebook(dir.path());
    let data = dir.path().join("data");
    let service = Service::start(&rules, &data);
    assert!(
        service
            .lines
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.starts_with("rulebook: reloads when"))
    );
    let client = reqwest::Client::new();
    let status = |client: reqwest::Client, base: String| async move {
        client
            .get(format!("{base}/api/v1/rulebook"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
    };
    let before = status(client.clone(), service.base.clone()).await["version"]
        .as_str()
        .unwrap()
        .to_owned();

    let topics = rules.join("topics.toml");
    let changed = variant(&std::fs::read_to_string(&topics).unwrap(), 9);
    std::fs::write(&topics, changed).unwrap();
    let expected = RulebookSource::from_dir(&rules).unwrap().version();
    assert_ne!(before, expected);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = status(client.clone(), service.base.clone()).await;
        if now["version"] == expected.as_str() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the watcher did not reload: {now}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let unauthenticated = client
        .get(format!("{}/api/v1/rulebook", service.base))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status().as_u16(), 401);
    service.stop();
}

/// A local callback receiver for the HTTP channel: every body posted to it, in order.
async fn callback_sink() -> (String, Arc<Mutex<Vec<Value>>>) {
    let received = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&received);
    let app = axum::Router::new().route(
        "/cb",
        axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
            let sink = Arc::clone(&sink);
            async move {
                sink.lock().unwrap().push(body);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/cb", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, received)
}

async fn post_message(client: &reqwest::Client, base: &str, id: &str, text: &str) -> Value {
    let response = client
        .post(format!("{base}/api/v1/messages"))
        .json(&json!({ "id": id, "conversation": format!("conv-{id}"), "text": text }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200, "{id}");
    response.json().await.unwrap()
}

const QUESTION: &str = "Wat zijn de openingstijden van het stadskantoor?";
const FIRE: &str = "Er is brand in de flat aan de Dorpsstraat!";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_and_shadow_channels_decide_and_store_but_send_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let rules = copy_rulebook(dir.path());
    let data = dir.path().join("data");
    let (callback, received) = callback_sink().await;
    // The callback in the file, the mode from the environment, as a deployment would.
    std::fs::write(
        dir.path().join("webcare.toml"),
        format!("[http_channel]\ncallback_url = \"{callback}\"\n"),
    )
    .unwrap();
    let client = reqwest::Client::new();

    // listen: decided and stored, nothing sent, nothing escalated.
    let service = Service::start_with(&rules, &data, &[("WEBCARE_HTTP_CHANNEL_MODE", "listen")]);
    let said = service.said();
    assert!(
        said.contains("(listen mode: decisions recorded only"),
        "{said}"
    );
    let answer = post_message(&client, &service.base, "l-question", QUESTION).await;
    let fire = post_message(&client, &service.base, "l-fire", FIRE).await;
    assert_eq!(
        (answer["action"].as_str(), answer["mode"].as_str()),
        (Some("answer"), Some("listen"))
    );
    assert_eq!(fire["action"].as_str(), Some("escalate"));
    // A bridge that forwards `reply` must find nothing to forward.
    assert_eq!(
        (&answer["reply"], &fire["reply"]),
        (&Value::Null, &Value::Null)
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    service.stop();

    // shadow: the fire reaches the inbox, no reply (not even the holding reply) goes out.
    let service = Service::start_with(&rules, &data, &[("WEBCARE_HTTP_CHANNEL_MODE", "shadow")]);
    let answer = post_message(&client, &service.base, "s-question", QUESTION).await;
    let fire = post_message(&client, &service.base, "s-fire", FIRE).await;
    assert_eq!(answer["mode"].as_str(), Some("shadow"));
    assert_eq!(
        (&answer["reply"], &fire["reply"]),
        (&Value::Null, &Value::Null)
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    service.stop();
    assert_eq!(*received.lock().unwrap(), Vec::<Value>::new());

    let store = store::open(&StoreOptions {
        data_dir: data.clone(),
        ..StoreOptions::default()
    })
    .unwrap();
    let stored: Vec<_> = store::history(&*store, None)
        .map(|m| {
            let m = m.unwrap();
            (m.message.id, m.mode.as_str(), m.decision.action.name())
        })
        .collect();
    assert_eq!(
        stored,
        [
            ("l-question".to_owned(), "listen", "answer"),
            ("l-fire".to_owned(), "listen", "escalate"),
            ("s-question".to_owned(), "shadow", "answer"),
            ("s-fire".to_owned(), "shadow", "escalate"),
        ]
    );
    let open: Vec<_> = store
        .open_escalations()
        .unwrap()
        .into_iter()
        .map(|e| e.messages)
        .collect();
    assert_eq!(
        open,
        [["s-fire"]],
        "only the shadow channel's escalation is in the inbox"
    );
    assert_eq!(store.stats().unwrap().pending_outbox, 0);
    drop(store);

    // live again, same callback: the reply does arrive, so the silence above was the mode.
    let service = Service::start(&rules, &data);
    let answer = post_message(&client, &service.base, "v-question", QUESTION).await;
    assert_eq!(answer["mode"].as_str(), Some("live"));
    assert!(answer["reply"].is_string());
    let deadline = Instant::now() + Duration::from_secs(30);
    while received.lock().unwrap().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the live reply never reached the callback"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    service.stop();
    let got: Vec<_> = received
        .lock()
        .unwrap()
        .iter()
        .map(|b| b["in_reply_to"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(got, ["v-question"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shadow_rulebook_is_reported_by_exactly_the_messages_it_would_change() {
    let dir = tempfile::tempdir().unwrap();
    let rules = copy_rulebook(dir.path());
    let data = dir.path().join("data");
    // The candidate: one keyword changed, `paspoort*` becomes `=paspoort`, so plurals no longer
    // match the passport topic (not even as a stem).
    let candidate = copy_rulebook(&dir.path().join("candidate"));
    let topics = std::fs::read_to_string(candidate.join("topics.toml")).unwrap();
    let changed = topics.replacen("\"paspoort*\", ", "\"=paspoort\", ", 1);
    assert_ne!(changed, topics);
    std::fs::write(candidate.join("topics.toml"), &changed).unwrap();
    let config = dir.path().join("webcare.toml");
    std::fs::write(&config, "[shadow]\nrules = \"candidate/rules\"\n").unwrap();

    // A broken candidate stops the start, pointing at the line, like `webcare check`.
    let broken =
        format!("{changed}\n[[topic]]\nid = \"x\"\ncategory = \"questoin\"\nkeywords = [\"x\"]\n");
    std::fs::write(candidate.join("topics.toml"), &broken).unwrap();
    let refused = Command::new(env!("CARGO_BIN_EXE_webcare"))
        .args(["run", "--listen", "127.0.0.1:0", "--rules"])
        .arg(&rules)
        .arg("--data")
        .arg(&data)
        .current_dir(dir.path())
        .env_remove("WEBCARE_SHADOW_RULES")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{stderr}");
    let line = broken.lines().count() - 1;
    assert!(stderr.contains(&format!("topics.toml:{line}:")), "{stderr}");
    assert!(stderr.contains("shadow rulebook"), "{stderr}");
    std::fs::write(candidate.join("topics.toml"), &changed).unwrap();

    let service = Service::start(&rules, &data);
    let said = service.said();
    assert!(said.contains("shadow rulebook: "), "{said}");
    let client = reqwest::Client::new();
    let texts = [
        ("p1", "Ik wil een paspoort aanvragen"),
        ("p2", "Mijn paspoorten zijn verlopen"),
        ("q1", QUESTION),
        ("f1", FIRE),
        ("p3", "Kunnen de paspoorten van mijn kinderen mee?"),
        ("w1", "Wanneer wordt het afval opgehaald?"),
    ];
    for (id, text) in texts {
        let decision = post_message(&client, &service.base, id, text).await;
        // The live decision is acted on as ever; the shadow one is only stored.
        assert_eq!(decision["mode"].as_str(), Some("live"), "{id}");
    }
    service.stop();

    let replay = |format: &str| {
        let output = Command::new(env!("CARGO_BIN_EXE_webcare"))
            .args([
                "replay",
                "--from-store",
                "--shadow",
                "--report",
                format,
                "--data",
            ])
            .arg(&data)
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };
    let changes: BTreeSet<String> = replay("changes")
        .lines()
        .map(|l| {
            let change: Value = serde_json::from_str(l).unwrap();
            assert_eq!(
                change["before"]["topics"][0].as_str(),
                Some("passport"),
                "{l}"
            );
            change["id"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(changes, BTreeSet::from(["p2".to_owned(), "p3".to_owned()]));
    let report: Value = serde_json::from_str(&replay("json")).unwrap();
    assert_eq!(report["kind"], "shadow");
    assert_eq!(
        (report["compared"].as_u64(), report["skipped"].as_u64()),
        (Some(6), Some(0))
    );
    let candidate_version = RulebookSource::from_dir(&candidate)
        .and_then(webcare_engine::Rulebook::compile)
        .unwrap()
        .version;
    assert_eq!(
        report["candidate"].as_str(),
        Some(candidate_version.as_str())
    );
    let table = replay("table");
    assert!(table.contains("6 live decisions"), "{table}");
    assert!(table.contains("4 unchanged, 2 would change"), "{table}");

    let explained = Command::new(env!("CARGO_BIN_EXE_webcare"))
        .args(["explain", "p2", "--rules"])
        .arg(&rules)
        .arg("--data")
        .arg(&data)
        .current_dir(dir.path())
        .output()
        .unwrap();
    let explained = String::from_utf8_lossy(&explained.stdout);
    assert!(
        explained.contains(&format!("shadow rulebook {candidate_version} decided")),
        "{explained}"
    );
}

/// `webcare reload` / `webcare crisis` as a governance lead runs them in a terminal next to the
/// service: the output, the exit status, the audit log.
fn cli(dir: &Path, token: Option<&str>, args: &[&str]) -> (i32, String, String) {
    let mut command = webcare(dir);
    command.args(args).env("USER", "lead-anna");
    if let Some(token) = token {
        command.env("WEBCARE_ADMIN_TOKEN", token);
    }
    let out = command.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webcare_reload_and_crisis_drive_the_running_service_and_say_what_went_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let rules = copy_rulebook(dir.path());
    let data = dir.path().join("data");
    let service = Service::start(&rules, &data);
    let base = service.base.clone();
    let here = dir.path();
    let client = reqwest::Client::new();
    let running_version = || async {
        client
            .get(format!("{base}/api/v1/rulebook"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()["version"]
            .as_str()
            .unwrap()
            .to_owned()
    };

    // A valid change: the new version is active. (The watcher may have seen the file first;
    // then `reload` finds it active already. Either way the output names the version.)
    let topics = rules.join("topics.toml");
    let original = std::fs::read_to_string(&topics).unwrap();
    std::fs::write(&topics, variant(&original, 7)).unwrap();
    let expected = RulebookSource::from_dir(&rules).unwrap().version();
    let (code, out, err) = cli(here, Some(TOKEN), &["reload", "--url", &base]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(&format!("rulebook {expected} is")), "{out}");
    assert!(
        out.contains("is active") || out.contains("already active"),
        "{out}"
    );
    assert_eq!(running_version().await, expected);

    // The default URL is the `[server] listen` address (here from the environment).
    let listen = base.trim_start_matches("http://");
    let out = webcare(here)
        .args(["reload"])
        .env("WEBCARE_ADMIN_TOKEN", TOKEN)
        .env("WEBCARE_SERVER_LISTEN", listen)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains(&expected), "{stdout}");

    // A broken rulebook: exit status 1, every error with its position, the old one runs on.
    let broken = format!(
        "{}\n[[topic]]\nid = \"broken\"\ncategory = \"questoin\"\nkeywords = [\"x\"]\n",
        variant(&original, 7)
    );
    let line = broken.lines().count() - 1;
    std::fs::write(&topics, &broken).unwrap();
    let (code, out, err) = cli(here, Some(TOKEN), &["reload", "--url", &base]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains(&format!("topics.toml:{line}:")), "{err}");
    assert!(err.contains("unknown category `questoin`"), "{err}");
    assert!(
        err.contains(&format!("rulebook {expected} keeps running")),
        "{err}"
    );
    assert_eq!(running_version().await, expected);

    // A wrong token, no token, nobody listening: each says what to do, none shows a token.
    let (code, _, err) = cli(here, Some("not-the-token"), &["reload", "--url", &base]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("refused the admin token (wrong admin token)"),
        "{err}"
    );
    assert!(err.contains("WEBCARE_ADMIN_TOKEN"), "{err}");
    assert!(
        !err.contains("not-the-token"),
        "the token is never printed: {err}"
    );
    let (code, _, err) = cli(here, None, &["crisis", "status", "--url", &base]);
    assert_eq!(code, 2);
    assert!(
        err.contains("no admin token: set WEBCARE_ADMIN_TOKEN"),
        "{err}"
    );
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let (code, _, err) = cli(here, Some(TOKEN), &["reload", "--url", &closed]);
    assert_eq!(code, 2);
    assert!(
        err.contains(&format!("is `webcare run` running at {closed}?")),
        "{err}"
    );

    // The crisis switch: on changes what the service does, status shows it, off and auto undo.
    let (code, out, err) = cli(here, Some(TOKEN), &["crisis", "on", "--url", &base]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("crisis mode is ON (switched on)"), "{out}");
    let during = post_message(&client, &base, "cli-crisis-1", QUESTION).await;
    assert_eq!(during["action"], "escalate", "{during}");
    let (_, out, _) = cli(here, Some(TOKEN), &["crisis", "status", "--url", &base]);
    assert!(out.starts_with("crisis mode is ON (switched on)"), "{out}");
    let (code, out, _) = cli(here, Some(TOKEN), &["crisis", "off", "--url", &base]);
    assert_eq!(code, 0);
    assert!(
        out.starts_with("crisis mode is off (switched off)"),
        "{out}"
    );
    let after = post_message(&client, &base, "cli-crisis-2", QUESTION).await;
    assert_eq!(after["action"], "answer", "{after}");
    let (_, out, _) = cli(here, Some(TOKEN), &["crisis", "auto", "--url", &base]);
    assert!(
        out.starts_with("crisis mode is off (as the rulebook says)"),
        "{out}"
    );
    service.stop();

    let store = store::open(&StoreOptions {
        data_dir: data.clone(),
        ..StoreOptions::default()
    })
    .unwrap();
    let audit = store.audit_log(None, 1000).unwrap();
    let switches: Vec<(&str, &str)> = audit
        .iter()
        .filter(|a| a.action == "crisis.switch")
        .map(|a| (a.actor.as_str(), a.subject.as_str()))
        .collect();
    assert_eq!(
        switches,
        [
            ("admin (lead-anna)", "on"),
            ("admin (lead-anna)", "off"),
            ("admin (lead-anna)", "rulebook")
        ]
    );
    assert!(
        audit
            .iter()
            .any(|a| a.action == "rulebook.reject" && a.actor == "admin (lead-anna)"),
        "the rejected reload is audited with who asked"
    );
}

/// Management asks for a report while the service runs (and holds the store): `webcare
/// report` has the running service make it, with the admin token, and says what to do
/// without one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webcare_report_works_while_the_service_holds_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let rules = copy_rulebook(dir.path());
    let data = dir.path().join("data");
    let service = Service::start(&rules, &data);
    let client = reqwest::Client::new();
    for (id, text) in [("r1", QUESTION), ("r2", FIRE), ("r3", QUESTION)] {
        post_message(&client, &service.base, id, text).await;
    }
    let here = dir.path();
    let data_arg = data.to_str().unwrap();
    let args = [
        "--data",
        data_arg,
        "report",
        "--url",
        &service.base,
        "--format",
        "json",
    ];
    let (code, out, err) = cli(here, Some(TOKEN), &args);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("is in use by `webcare run`"), "{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["messages"], 3, "{out}");
    assert_eq!(report["rates"]["automated"], 2, "{out}");
    assert_eq!(report["rates"]["escalated"], 1, "{out}");

    // The table, and a team the rulebook does not have: the service's refusal, passed on.
    let (code, out, _) = cli(
        here,
        Some(TOKEN),
        &["--data", data_arg, "report", "--url", &service.base],
    );
    assert_eq!(code, 0);
    assert!(out.contains("messages"), "{out}");
    let (code, _, err) = cli(
        here,
        Some(TOKEN),
        &[
            "--data",
            data_arg,
            "report",
            "--url",
            &service.base,
            "--team",
            "nobody",
        ],
    );
    assert_ne!(code, 0);
    assert!(err.contains("the rulebook has no team `nobody`"), "{err}");

    // Without the admin token: what to do, not a bare "locked".
    let (code, _, err) = cli(here, None, &args);
    assert_ne!(code, 0);
    assert!(err.contains("in use by `webcare run`"), "{err}");
    assert!(err.contains("WEBCARE_ADMIN_TOKEN"), "{err}");
    service.stop();
}

/// A GET on the admin API with the token.
async fn admin_get(client: &reqwest::Client, base: &str, path: &str) -> Value {
    client
        .get(format!("{base}{path}"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_crisis_switch_stays_where_a_lead_put_it_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let rules = copy_rulebook(dir.path());
    let data = dir.path().join("data");
    let client = reqwest::Client::new();

    // Switched on, then the service restarts (a deploy, a crash) in the middle of the crisis.
    let service = Service::start(&rules, &data);
    assert!(
        !service.said().contains("crisis switch:"),
        "{}",
        service.said()
    );
    let (status, crisis) = admin(
        &client,
        &service.base,
        "/api/v1/crisis",
        Some(json!({"on": true})),
    )
    .await;
    assert_eq!((status, crisis["crisis_mode"].as_bool()), (200, Some(true)));
    service.stop();

    let service = Service::start(&rules, &data);
    let base = service.base.clone();
    assert!(
        service.said().contains("crisis switch: ON"),
        "the start says so: {}",
        service.said()
    );
    let status = admin_get(&client, &base, "/api/v1/crisis").await;
    assert_eq!(status["crisis_mode"], true, "{status}");
    assert_eq!(status["switch"], true, "{status}");
    let during = post_message(&client, &base, "restart-crisis-1", QUESTION).await;
    assert_eq!(
        during["action"], "escalate",
        "still crisis mode after the restart: {during}"
    );

    // Back to the rulebook (which says no crisis): that survives a restart too.
    admin(&client, &base, "/api/v1/crisis", Some(json!({"on": null}))).await;
    service.stop();
    let service = Service::start(&rules, &data);
    let base = service.base.clone();
    assert!(
        !service.said().contains("crisis switch:"),
        "{}",
        service.said()
    );
    let status = admin_get(&client, &base, "/api/v1/crisis").await;
    assert_eq!(status["crisis_mode"], false, "{status}");
    assert_eq!(status["switch"], Value::Null, "{status}");
    let after = post_message(&client, &base, "restart-crisis-2", QUESTION).await;
    assert_ne!(after["action"], "escalate", "the rulebook again: {after}");
    service.stop();

    let store = store::open(&StoreOptions {
        data_dir: data.clone(),
        ..StoreOptions::default()
    })
    .unwrap();
    let switches: Vec<(String, String)> = store
        .audit_log(None, 1000)
        .unwrap()
        .into_iter()
        .filter(|a| a.action == "crisis.switch")
        .map(|a| (a.actor, a.subject))
        .collect();
    let expected = [("admin", "on"), ("admin", "rulebook")]
        .map(|(actor, subject)| (actor.to_owned(), subject.to_owned()));
    assert_eq!(switches, expected, "every change is audited once");
}

/// People are added and removed while the service runs: `webcare user` hands the change to
/// the service that holds the store (the password hashed and the token made at the terminal),
/// and it takes effect at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webcare_user_works_while_the_service_holds_the_store() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let rules = copy_rulebook(dir.path());
    let data = dir.path().join("data");
    let service = Service::start(&rules, &data);
    let (here, data_arg, base) = (dir.path(), data.to_str().unwrap(), service.base.clone());

    let mut add = webcare(here)
        .args([
            "--data", data_arg, "user", "add", "bob", "--team", "webcare", "--url", &base,
        ])
        .env("WEBCARE_ADMIN_TOKEN", TOKEN)
        .env("USER", "lead-anna")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    add.stdin
        .take()
        .unwrap()
        .write_all(b"bob-passphrase\n")
        .unwrap();
    let out = add.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("is in use by `webcare run`"), "{stderr}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "user bob saved (agent)"
    );

    let user = |args: &[&str]| {
        let mut all = vec!["--data", data_arg, "user"];
        all.extend_from_slice(args);
        all.extend(["--url", &base]);
        cli(here, Some(TOKEN), &all)
    };
    let (code, token, err) = user(&["token", "bob"]);
    assert_eq!(code, 0, "{err}");
    let token = token.trim().to_owned();
    let client = reqwest::Client::new();
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
    assert_eq!(
        queue(token.clone()).await,
        200,
        "the new token works at once"
    );
    let (_, list, _) = user(&["list"]);
    assert!(list.starts_with("bob\tagent\twebcare"), "{list}");
    let (code, out, err) = user(&["remove", "bob"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("user bob removed"), "{out}");
    assert_eq!(queue(token).await, 401, "and stops working at once");
    let (code, _, err) = user(&["remove", "bob"]);
    assert_ne!(code, 0);
    assert!(err.contains("user `bob` does not exist"), "{err}");
    let (code, _, err) = cli(
        here,
        None,
        &["--data", data_arg, "user", "list", "--url", &base],
    );
    assert_ne!(code, 0);
    assert!(err.contains("WEBCARE_ADMIN_TOKEN"), "{err}");
    service.stop();

    let store = store::open(&StoreOptions {
        data_dir: data,
        ..StoreOptions::default()
    })
    .unwrap();
    let changes: Vec<(String, String)> = store
        .audit_log(None, 1000)
        .unwrap()
        .into_iter()
        .filter(|a| a.action.starts_with("user."))
        .map(|a| (a.actor, a.action))
        .collect();
    let expected = [
        ("admin (lead-anna)", "user.add"),
        ("bob", "user.token"),
        ("admin (lead-anna)", "user.remove"),
    ]
    .map(|(actor, action)| (actor.to_owned(), action.to_owned()));
    assert_eq!(changes, expected);
}
