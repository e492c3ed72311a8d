//! `webcare run` as a user meets it: the real binary in a fresh directory with no
//! configuration, on 127.0.0.1 port 0. It prints what runs where, answers over the HTTP channel,
//! stops on SIGTERM after finishing the messages in flight (every acknowledged message is in the
//! store afterwards), and its web chat works in a real headless Chromium: a question gets its
//! answer, a complaint the holding reply, markup in a message stays text, an agent's reply from
//! the inbox API appears labelled as a person's, and a reload keeps the conversation.
//!
//! The browser test needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them;
//! locally `sudo apt-get install chromium chromium-driver`). `WEBCARE_CHROMIUM` and
//! `WEBCARE_CHROMEDRIVER` point at other binaries. Nothing is downloaded at run time.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fantoccini::{Client, Locator};
use webcare_engine::ChannelKind;
use webcare_engine::store::{self, StoreOptions};

mod support;
use support::{Driver, add_user, browser, webcare};

const QUESTION: &str = "Wat zijn de openingstijden van het stadskantoor?";
const COMPLAINT: &str = "Ik heb een klacht over de afvalinzameling, al drie weken niet opgehaald!";
const AGENT_REPLY: &str = "Hallo, ik ben Anna van het webcareteam. Ik zoek het voor u uit.";

/// A running `webcare run` child in its own fresh directory.
struct Service {
    dir: tempfile::TempDir,
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    /// `http://127.0.0.1:<port>`
    base: String,
}

/// An agent of the webcare team, `webcare user add` and `webcare user token` as an operator
/// runs them before the service starts; returns the agent's API token.
fn add_agent(dir: &Path) -> String {
    add_user(dir, "anna", "agent", Some("webcare"), "s3cret-passphrase");
    let out = webcare(dir)
        .args(["user", "token", "anna"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

impl Service {
    fn start() -> Service {
        Service::start_in(tempfile::tempdir().unwrap())
    }

    fn start_in(dir: tempfile::TempDir) -> Service {
        let mut command = webcare(dir.path());
        command
            .args(["run", "--listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
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
                l.strip_prefix("web chat: ")
                    .map(|url| url.trim_end_matches('/').to_owned())
            });
            if let Some(base) = found {
                break base;
            }
            assert!(
                Instant::now() < deadline,
                "no `web chat:` line: {:?}",
                lines.lock().unwrap()
            );
            if let Ok(Some(status)) = child.try_wait() {
                panic!("webcare run exited early: {status}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        Service {
            dir,
            child,
            lines,
            base,
        }
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// SIGTERM, then waits (bounded) for the exit.
    fn terminate(&mut self) -> ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "webcare did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[test]
fn run_needs_no_configuration_and_says_what_runs_where() {
    let mut service = Service::start();
    let base = service.base.clone();
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");
    let lines = service.lines();
    let has = |needle: &str| lines.iter().any(|l| l.contains(needle));
    assert!(has("rulebook: Gemeente Voorbeeld"), "{lines:?}");
    assert!(has("store: redb in data"), "{lines:?}");
    assert!(
        has(&format!("http channel: POST {base}/api/v1/messages")),
        "{lines:?}"
    );
    assert!(has(&format!("web chat: {base}/")), "{lines:?}");
    for platform in ["telegram: ", "discord: ", "meta: ", "email: "] {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(platform) && l.contains("skipped")),
            "one line per skipped adapter: {lines:?}"
        );
    }
    assert!(service.data_dir().join("webcare.redb").exists());

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = reqwest::Client::new();
        let health = client.get(format!("{base}/healthz")).send().await.unwrap();
        assert_eq!(health.status(), 200);
        let decision: serde_json::Value = client
            .post(format!("{base}/api/v1/messages"))
            .header("content-type", "application/json")
            .body(serde_json::json!({"id": "first", "text": QUESTION}).to_string())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(decision["action"], "answer", "{decision}");
    });

    let status = service.terminate();
    assert!(status.success(), "{status}");
    assert!(service.lines().iter().any(|l| l == "webcare: stopped"));
}

#[test]
fn sigterm_finishes_the_messages_in_flight_and_loses_none() {
    let mut service = Service::start();
    let base = service.base.clone();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let acked = Arc::clone(&acknowledged);
    let sender = runtime.spawn(async move {
        let client = reqwest::Client::new();
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..400 {
            let client = client.clone();
            let url = format!("{base}/api/v1/messages");
            let acked = Arc::clone(&acked);
            tasks.spawn(async move {
                let id = format!("m{i}");
                let body = serde_json::json!({"id": id, "conversation": format!("c{}", i % 20), "text": QUESTION});
                let sent = client
                    .post(url)
                    .header("content-type", "application/json")
                    .body(body.to_string())
                    .send()
                    .await;
                // An error is a refused connection: the server had already closed.
                if let Ok(response) = sent {
                    let status = response.status();
                    // During shutdown a request is either fully answered or refused.
                    assert!(status == 200 || status == 503, "{status}");
                    if status == 200 && response.json::<serde_json::Value>().await.is_ok() {
                        acked.lock().unwrap().push(id);
                    }
                }
            });
            if i % 40 == 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        while let Some(result) = tasks.join_next().await {
            result.unwrap();
        }
    });
    // Stop while requests are still arriving.
    let deadline = Instant::now() + Duration::from_secs(30);
    while acknowledged.lock().unwrap().len() < 20 {
        assert!(Instant::now() < deadline, "no message was acknowledged");
        std::thread::sleep(Duration::from_millis(2));
    }
    let status = service.terminate();
    assert!(status.success(), "{status}");
    runtime.block_on(sender).unwrap();

    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(acknowledged.len() >= 20);
    let store = store::open(&StoreOptions {
        data_dir: service.data_dir(),
        ..StoreOptions::default()
    })
    .unwrap();
    for id in &acknowledged {
        assert!(
            store.message(ChannelKind::Http, id).unwrap().is_some(),
            "`{id}` was acknowledged but is not in the store"
        );
    }
}

// --- the web chat in a real browser ------------------------------------------------------------

/// The texts of the chat lines of one kind (`visitor`, `reply` or `agent`), in order.
async fn lines(client: &Client, kind: &str) -> Vec<String> {
    let mut out = Vec::new();
    for element in client
        .find_all(Locator::Css(&format!("#webcare-log li.webcare-{kind}")))
        .await
        .unwrap()
    {
        out.push(element.text().await.unwrap());
    }
    out
}

/// Waits (bounded) until there are at least `n` lines of `kind`.
async fn wait_for_lines(client: &Client, kind: &str, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let found = lines(client, kind).await;
        if found.len() >= n {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "waited for {n} `{kind}` lines, have {found:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn say(client: &Client, text: &str) {
    let input = client
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css("#webcare-input"))
        .await
        .unwrap();
    input.send_keys(text).await.unwrap();
    client
        .find(Locator::Css("#webcare-send"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

#[test]
fn the_web_chat_works_in_a_real_browser() {
    let dir = tempfile::tempdir().unwrap();
    let token = add_agent(dir.path());
    let mut service = Service::start_in(dir);
    let driver = Driver::start();
    let profile = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = browser(&driver, profile.path(), &[]).await;
        client.goto(&format!("{}/", service.base)).await.unwrap();
        assert!(client.title().await.unwrap().contains("Gemeente Voorbeeld"));

        // A question gets the answer.
        say(&client, QUESTION).await;
        let replies = wait_for_lines(&client, "reply", 1).await;
        assert!(replies[0].contains("stadskantoor"), "{replies:?}");

        // A complaint gets the holding reply.
        say(&client, COMPLAINT).await;
        let replies = wait_for_lines(&client, "reply", 2).await;
        assert!(
            replies[1].starts_with("Bedankt voor uw bericht."),
            "{replies:?}"
        );

        // Markup is shown as the characters it is, and never runs.
        let script = "<script>window.__pwned = 1</script>";
        let image = "<img src=x onerror=\"window.__pwned = 2\">";
        say(&client, script).await;
        say(&client, image).await;
        let visitor = wait_for_lines(&client, "visitor", 4).await;
        assert_eq!(visitor[2], script);
        assert_eq!(visitor[3], image);
        let pwned = client
            .execute("return window.__pwned === undefined", vec![])
            .await
            .unwrap();
        assert_eq!(pwned, serde_json::Value::Bool(true));
        for tag in ["#webcare-log img", "#webcare-log script"] {
            assert!(
                client.find_all(Locator::Css(tag)).await.unwrap().is_empty(),
                "{tag} in the chat"
            );
        }
        // Wait until the markup messages are answered too, so the transcript is complete.
        tokio::time::sleep(Duration::from_millis(500)).await;

        // An agent answers the complaint from the inbox API: the open chat shows it as a
        // person's reply, labelled and set apart from the bot's.
        let api = reqwest::Client::new();
        let queue: serde_json::Value = api
            .get(format!("{}/api/v1/escalations", service.base))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let escalation = queue["escalations"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["channel"] == "webchat")
            .filter_map(|e| e["id"].as_u64())
            .min()
            .unwrap_or_else(|| panic!("the complaint is in the queue: {queue}"));
        let bot_replies = lines(&client, "reply").await;
        let answered = api
            .post(format!(
                "{}/api/v1/escalations/{escalation}/reply",
                service.base
            ))
            .bearer_auth(&token)
            .json(&serde_json::json!({ "text": AGENT_REPLY }))
            .send()
            .await
            .unwrap();
        assert!(answered.status().is_success(), "{}", answered.status());
        wait_for_lines(&client, "agent", 1).await;
        let text = |css: &'static str| {
            let client = client.clone();
            async move {
                client
                    .find(Locator::Css(css))
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap()
            }
        };
        assert_eq!(text("#webcare-log li.webcare-agent .webcare-from").await, "Medewerker");
        assert_eq!(text("#webcare-log li.webcare-agent .webcare-text").await, AGENT_REPLY);
        assert_eq!(
            lines(&client, "reply").await,
            bot_replies,
            "the agent's reply is not shown as the bot's"
        );
        let looks = client
            .execute(
                "var bg = function (s) { return getComputedStyle(document.querySelector(s)).backgroundColor; };\
                 return [bg('#webcare-log li.webcare-agent'), bg('#webcare-log li.webcare-reply')];",
                vec![],
            )
            .await
            .unwrap();
        assert_ne!(looks[0], looks[1], "the agent's reply looks different: {looks}");

        let before_visitor = lines(&client, "visitor").await;
        let before_replies = lines(&client, "reply").await;
        let before_agent = lines(&client, "agent").await;

        // A reload keeps the conversation: the transcript comes back from the server.
        client.refresh().await.unwrap();
        let after_visitor = wait_for_lines(&client, "visitor", before_visitor.len()).await;
        let after_replies = wait_for_lines(&client, "reply", before_replies.len()).await;
        assert_eq!(after_visitor, before_visitor);
        assert_eq!(after_replies, before_replies);
        let after_agent = wait_for_lines(&client, "agent", 1).await;
        assert_eq!(after_agent, before_agent, "the transcript keeps who wrote what");

        client.close().await.unwrap();
    });
    let status = service.terminate();
    assert!(status.success(), "{status}");
}

/// A tmpfs of its own as the data directory, so the disk can be filled and given room again;
/// unmounted (and removed) when dropped.
struct SmallDisk(PathBuf);

impl SmallDisk {
    /// `None` where mounting is not allowed (not root, or no capability in a container).
    fn mount(path: &Path, size: &str) -> Option<SmallDisk> {
        std::fs::create_dir_all(path).unwrap();
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(path)
            .output()
            .ok()?;
        if !out.status.success() {
            eprintln!(
                "skipped: cannot mount a tmpfs to fill ({})",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            return None;
        }
        Some(SmallDisk(path.to_owned()))
    }

    fn resize(&self, size: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Issue 15: a full disk makes intake refuse messages (503, nothing lost) and `/healthz` say
/// so with the reason; once the disk has room again, `/healthz` is healthy and intake works
/// again by itself, without a restart. Needs root to mount a small tmpfs; skipped otherwise.
#[test]
fn a_full_disk_is_reported_unhealthy_and_intake_recovers_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    // Room for what the store holds from the start, the active rulebook with its examples
    // (9.9 MB of them, the blind sets included; about 20 MB on disk with the rest), and a
    // little more: the messages below fill the rest.
    let Some(disk) = SmallDisk::mount(&dir.path().join("data"), "40m") else {
        return;
    };
    let service = Service::start_in(dir);
    let base = service.base.clone();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = reqwest::Client::new();
        let health = async || {
            let response = client.get(format!("{base}/healthz")).send().await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        };
        let post = async |id: String, text: String| {
            client
                .post(format!("{base}/api/v1/messages"))
                .header("content-type", "application/json")
                .body(serde_json::json!({"id": id, "text": text}).to_string())
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        };
        assert_eq!(health().await.0, 200);
        let filler = "Hoe vraag ik een paspoort aan? ".repeat(250);
        let mut acknowledged = 0;
        let refused = loop {
            let status = post(format!("fill-{acknowledged}"), filler.clone()).await;
            if status != 200 {
                break status;
            }
            acknowledged += 1;
            assert!(acknowledged < 6000, "the disk never filled");
        };
        assert_eq!(
            refused, 503,
            "a full disk is a 503, so the platform retries"
        );
        let (status, body) = health().await;
        assert_eq!(status, 503, "{body}");
        assert!(
            body.starts_with("unhealthy: intake cannot write to the store since ")
                && body.contains("No space left"),
            "{body}"
        );

        disk.resize("64m");
        let deadline = Instant::now() + Duration::from_secs(15);
        while health().await.0 != 200 {
            assert!(
                Instant::now() < deadline,
                "still unhealthy: {}",
                health().await.1
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(post("after".into(), QUESTION.into()).await, 200);
        // What was acknowledged before the disk filled is still there: a repeat is a
        // duplicate of it. The last one's dedupe entry was still waiting in memory when the
        // commits began to fail.
        for id in [0, acknowledged - 1] {
            let repeat: serde_json::Value = client
                .post(format!("{base}/api/v1/messages"))
                .header("content-type", "application/json")
                .body(serde_json::json!({"id": format!("fill-{id}"), "text": filler}).to_string())
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert_eq!(repeat["duplicate"], true, "fill-{id}: {repeat}");
        }
    });
    drop(service);
    drop(disk);
}
