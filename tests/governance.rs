//! Safe rule changes in the running service, as a governance lead makes them: the real
//! `webcare run` binary on 127.0.0.1 port 0 with `--rules DIR`, the admin API, and a load of
//! messages through the HTTP channel while the rulebook is swapped and broken underneath it.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use webcare_engine::RulebookSource;
use webcare_engine::store::{self, StoreOptions};

const TOKEN: &str = "lead-secret-token";

/// A copy of the default rulebook (rules/ and scripts/ side by side) in `dir`.
fn copy_rulebook(dir: &Path) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for sub in ["rules", "scripts"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
        for entry in std::fs::read_dir(root.join(sub)).unwrap() {
            let path = entry.unwrap().path();
            std::fs::copy(&path, dir.join(sub).join(path.file_name().unwrap())).unwrap();
        }
    }
    dir.join("rules")
}

struct Service {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    base: String,
}

impl Service {
    fn start(rules: &Path, data: &Path) -> Service {
        let mut command = Command::new(env!("CARGO_BIN_EXE_webcare"));
        command
            .args(["run", "--listen", "127.0.0.1:0", "--rules"])
            .arg(rules)
            .arg("--data")
            .arg(data)
            .current_dir(data.parent().unwrap())
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (name, _) in std::env::vars() {
            if name.starts_with("WEBCARE_") || name.ends_with("_BOT_TOKEN") {
                command.env_remove(name);
            }
        }
        command.env("WEBCARE_ADMIN_TOKEN", TOKEN);
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
                    .and_then(|url| url.strip_suffix("/api/v1/messages"))
                    .map(str::to_owned)
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

/// `webcare reload` / `webcare crisis` as a governance lead runs them in a terminal next to the
/// service: the output, the exit status, the audit log.
fn cli(dir: &Path, token: Option<&str>, args: &[&str]) -> (i32, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_webcare"));
    command.args(args).current_dir(dir).env("USER", "lead-anna");
    for (name, _) in std::env::vars() {
        if name.starts_with("WEBCARE_") {
            command.env_remove(name);
        }
    }
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
    let mut command = Command::new(env!("CARGO_BIN_EXE_webcare"));
    command.args(["reload"]).current_dir(here);
    for (name, _) in std::env::vars() {
        if name.starts_with("WEBCARE_") {
            command.env_remove(name);
        }
    }
    let out = command
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
    let during: Value = client
        .post(format!("{base}/api/v1/messages"))
        .json(&json!({"id": "cli-crisis-1", "text": "Wat zijn de openingstijden van het stadskantoor?"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(during["action"], "escalate", "{during}");
    let (_, out, _) = cli(here, Some(TOKEN), &["crisis", "status", "--url", &base]);
    assert!(out.starts_with("crisis mode is ON (switched on)"), "{out}");
    let (code, out, _) = cli(here, Some(TOKEN), &["crisis", "off", "--url", &base]);
    assert_eq!(code, 0);
    assert!(
        out.starts_with("crisis mode is off (switched off)"),
        "{out}"
    );
    let after: Value = client
        .post(format!("{base}/api/v1/messages"))
        .json(&json!({"id": "cli-crisis-2", "text": "Wat zijn de openingstijden van het stadskantoor?"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
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
