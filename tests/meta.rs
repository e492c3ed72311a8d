//! `webcare run` with the Meta channel as an operator starts it: the real binary with the three
//! secrets in the environment and `[meta] graph_url` pointed at the fake Graph API the adapter
//! tests use, on 127.0.0.1. A WhatsApp question posted to the running webhook, signed as Meta
//! signs, is answered through the outbox; an unsigned one is refused; the start line says where
//! the webhook is; SIGTERM stops it; and no secret appears in anything it printed or logged.

#![cfg(feature = "meta")]
#![allow(clippy::unwrap_used)]

#[path = "../adapters/tests/fakes/graph.rs"]
mod fake;

mod support;

use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

async fn eventually<T>(within: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "condition not met within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_answers_a_signed_whatsapp_message_and_never_prints_the_secrets() {
    let graph = fake::serve().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("webcare.toml");
    std::fs::write(&config, format!("[meta]\ngraph_url = \"{}\"\n", graph.url)).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_webcare"));
    command
        .args(["run", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .current_dir(dir.path())
        .env("RUST_LOG", "debug")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, _) in std::env::vars() {
        if name.starts_with("WEBCARE_") || name.contains("TOKEN") || name.starts_with("META_") {
            command.env_remove(name);
        }
    }
    command
        .env("META_APP_SECRET", fake::APP_SECRET)
        .env("META_VERIFY_TOKEN", fake::VERIFY_TOKEN)
        .env("META_ACCESS_TOKEN", fake::ACCESS_TOKEN);
    let (mut child, lines, logged) = support::spawn_printing(&mut command);
    let logged = logged.expect("stderr is piped");
    let printed = eventually(Duration::from_secs(60), || {
        let lines = lines.lock().unwrap();
        lines
            .iter()
            .any(|l| l.starts_with("outbox: "))
            .then(|| lines.clone())
    })
    .await;
    let meta = printed
        .iter()
        .find(|l| l.starts_with("meta: "))
        .cloned()
        .unwrap_or_default();
    let webhook = meta
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:") && w.ends_with("/meta/webhook"))
        .unwrap_or_else(|| panic!("the start line names the webhook: {printed:?}"))
        .to_owned();
    assert!(meta.contains("whatsapp"), "{meta}");

    let message = fake::whatsapp_text(
        "wamid.RUN1",
        chrono::Utc::now(),
        "Hoe vraag ik een nieuw paspoort aan?",
    );
    let body = serde_json::to_vec(&message).unwrap();
    assert_eq!(graph.post_raw(&webhook, body, None).await, 401);
    assert_eq!(
        graph
            .post_signed(&webhook, &message, fake::APP_SECRET)
            .await,
        200
    );
    let reply = eventually(Duration::from_secs(30), || graph.sends().first().cloned()).await;
    assert_eq!(reply.to(), fake::CUSTOMER);
    assert!(
        reply.text().to_lowercase().contains("paspoort"),
        "{}",
        reply.text()
    );
    assert_eq!(
        graph.sends().len(),
        1,
        "the unsigned copy was never decided"
    );

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "webcare did not stop on SIGTERM");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "{status}");
    let logged = logged.join().unwrap();
    let printed = lines.lock().unwrap().join("\n");
    for secret in [fake::APP_SECRET, fake::VERIFY_TOKEN, fake::ACCESS_TOKEN] {
        assert!(!printed.contains(secret), "secret on stdout:\n{printed}");
        assert!(!logged.contains(secret), "secret in the log");
    }
}

/// `webcare run` with `[meta]` and its data in `data`, its stdout lines collected.
fn start_run(dir: &std::path::Path, graph: &str) -> (std::process::Child, Arc<Mutex<Vec<String>>>) {
    let config = dir.join("webcare.toml");
    std::fs::write(&config, format!("[meta]\ngraph_url = \"{graph}\"\n")).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_webcare"));
    command
        .args(["run", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (name, _) in std::env::vars() {
        if name.starts_with("WEBCARE_") || name.contains("TOKEN") || name.starts_with("META_") {
            command.env_remove(name);
        }
    }
    command
        .env("META_APP_SECRET", fake::APP_SECRET)
        .env("META_VERIFY_TOKEN", fake::VERIFY_TOKEN)
        .env("META_ACCESS_TOKEN", fake::ACCESS_TOKEN);
    let (child, lines, _) = support::spawn_printing(&mut command);
    (child, lines)
}

async fn webhook_of(lines: &Arc<Mutex<Vec<String>>>) -> String {
    eventually(Duration::from_secs(60), || {
        let lines = lines.lock().unwrap();
        let meta = lines.iter().find(|l| l.starts_with("meta: "))?;
        meta.split_whitespace()
            .find(|w| w.starts_with("http://127.0.0.1:") && w.ends_with("/meta/webhook"))
            .map(str::to_owned)
    })
    .await
}

/// Meta posts until it gets a 200; webcare is killed with SIGKILL in the middle. Everything it
/// answered 200 must be stored with its decision, and after a restart Meta's redeliveries of
/// everything (acknowledged or not) leave each message decided exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkill_loses_no_acknowledged_webhook_and_redeliveries_are_decided_once() {
    const MESSAGES: usize = 60;
    let graph = fake::serve().await;
    let dir = tempfile::tempdir().unwrap();
    let (mut child, lines) = start_run(dir.path(), &graph.url);
    let webhook = webhook_of(&lines).await;
    let texts = [
        "Hoe vraag ik een nieuw paspoort aan?",
        "Er ligt een boom over het fietspad",
        "Wanneer wordt het afval opgehaald?",
    ];
    let payload = move |i: usize| {
        fake::whatsapp_text(
            &format!("wamid.K{i}"),
            chrono::Utc::now(),
            texts[i % texts.len()],
        )
    };
    // Meta posts one delivery after another; the kill lands while one is in flight.
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let poster = {
        let (acknowledged, webhook) = (Arc::clone(&acknowledged), webhook.clone());
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            for i in 0..MESSAGES {
                let body = serde_json::to_vec(&payload(i)).unwrap();
                let signature = webcare_adapters::meta::sign(fake::APP_SECRET, &body);
                let sent = client
                    .post(&webhook)
                    .header("x-hub-signature-256", signature)
                    .body(body)
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status() == 200 => {
                        acknowledged.lock().unwrap().push(format!("wamid.K{i}"))
                    }
                    Ok(_) => {}
                    Err(_) => break, // webcare is gone
                }
            }
        })
    };
    let kill_after = MESSAGES / 3;
    eventually(Duration::from_secs(60), || {
        (acknowledged.lock().unwrap().len() >= kill_after).then_some(())
    })
    .await;
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    poster.await.unwrap();
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() >= kill_after && acknowledged.len() < MESSAGES,
        "{}",
        acknowledged.len()
    );
    {
        let store = webcare_engine::store::open(&webcare_engine::store::StoreOptions {
            data_dir: dir.path().join("data"),
            ..Default::default()
        })
        .unwrap();
        for id in &acknowledged {
            let stored = store
                .message(webcare_engine::ChannelKind::Whatsapp, id)
                .unwrap();
            assert!(
                stored.is_some(),
                "{id} was acknowledged, so it must be stored"
            );
        }
    }
    // Restart: Meta redelivers everything it has not seen acknowledged, and some it has.
    let (mut child, lines) = start_run(dir.path(), &graph.url);
    let webhook = webhook_of(&lines).await;
    for i in 0..MESSAGES {
        let status = graph
            .post_signed(&webhook, &payload(i), fake::APP_SECRET)
            .await;
        assert_eq!(status, 200);
    }
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    child.wait().unwrap();
    let store = webcare_engine::store::open(&webcare_engine::store::StoreOptions {
        data_dir: dir.path().join("data"),
        ..Default::default()
    })
    .unwrap();
    // Only the deliveries: with ten or more passport questions in the last hour, the spike
    // detector's timer may store a volume alert (`alert:passport:volume:…`) beside them,
    // depending on whether it fires while they arrive.
    let messages: Vec<_> = webcare_engine::store::history(store.as_ref(), None)
        .map(|m| m.unwrap().message)
        .filter(|m| m.channel == webcare_engine::ChannelKind::Whatsapp)
        .map(|m| m.id)
        .collect();
    assert_eq!(messages.len(), MESSAGES, "every message stored once");
    let unique: std::collections::BTreeSet<_> = messages.iter().collect();
    assert_eq!(unique.len(), MESSAGES);
}
