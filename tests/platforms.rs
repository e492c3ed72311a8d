//! `webcare run` with both chat platforms, as an operator starts it: the real binary with
//! `TELEGRAM_BOT_TOKEN`, `DISCORD_BOT_TOKEN` and the API URLs in the environment, pointed at
//! the fake Telegram Bot API and the fake Discord (REST and gateway) that the adapter tests use,
//! all on 127.0.0.1. A Telegram message and a Discord DM are each answered in place through the
//! outbox, the printed lines say what runs, SIGTERM stops it, and neither token appears in
//! anything it printed or logged.

#![cfg(all(feature = "telegram", feature = "discord"))]
#![allow(clippy::unwrap_used)]

#[path = "../adapters/tests/fakes/discord.rs"]
mod fake_discord;
#[path = "../adapters/tests/fakes/telegram.rs"]
mod fake_telegram;

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const QUESTION: &str = "Hoe vraag ik een nieuw paspoort aan?";

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
async fn run_answers_on_telegram_and_discord_and_never_prints_the_tokens() {
    let telegram = fake_telegram::serve(None).await;
    let (discord, discord_events) = fake_discord::serve().await;

    let dir = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_webcare"));
    command
        .args(["run", "--listen", "127.0.0.1:0"])
        .current_dir(dir.path())
        // Chatty on purpose: a token in any log line must fail this test.
        .env("RUST_LOG", "debug")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, _) in std::env::vars() {
        if name.starts_with("WEBCARE_") || name.contains("BOT_TOKEN") {
            command.env_remove(name);
        }
    }
    command
        .env("TELEGRAM_BOT_TOKEN", fake_telegram::TOKEN)
        .env("WEBCARE_TELEGRAM_API_URL", &telegram.url)
        .env("WEBCARE_TELEGRAM_POLL_TIMEOUT_SECS", "1")
        .env("DISCORD_BOT_TOKEN", fake_discord::TOKEN)
        .env("WEBCARE_DISCORD_API_URL", &discord.url)
        .env("WEBCARE_DISCORD_CHANNELS", "3003");
    let mut child = command.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = Arc::clone(&lines);
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            sink.lock().unwrap().push(line);
        }
    });
    let logged = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });

    let printed = eventually(Duration::from_secs(60), || {
        let lines = lines.lock().unwrap();
        lines
            .iter()
            .any(|l| l.starts_with("outbox: "))
            .then(|| lines.clone())
    })
    .await;
    let line = |prefix: &str| {
        printed
            .iter()
            .find(|l| l.starts_with(prefix))
            .cloned()
            .unwrap_or_default()
    };
    assert!(line("telegram: ").contains(&telegram.url), "{printed:?}");
    assert!(
        line("discord: ").contains("1 configured channel"),
        "{printed:?}"
    );
    assert!(
        line("outbox: ").contains("telegram") && line("outbox: ").contains("discord"),
        "{printed:?}"
    );

    telegram.push(fake_telegram::text_update(
        1,
        42,
        7,
        fake_telegram::ann(),
        QUESTION,
    ));
    // The gateway session has identified before events are dispatched.
    eventually(Duration::from_secs(30), || {
        discord.state.lock().unwrap().identify.clone()
    })
    .await;
    discord_events
        .send(fake_discord::message_json(
            "1001",
            "2002",
            fake_discord::ann(),
            QUESTION,
            None,
        ))
        .unwrap();

    let telegram_reply = eventually(Duration::from_secs(30), || {
        telegram
            .sends()
            .first()
            .map(|(chat, text, _)| (*chat, text.clone()))
    })
    .await;
    assert_eq!(telegram_reply.0, 42);
    assert!(
        telegram_reply.1.to_lowercase().contains("afspraak"),
        "{telegram_reply:?}"
    );
    let discord_reply = eventually(Duration::from_secs(30), || {
        discord
            .sends()
            .first()
            .map(|(channel, text, _, _)| (channel.clone(), text.clone()))
    })
    .await;
    assert_eq!(discord_reply, ("2002".to_owned(), telegram_reply.1.clone()));

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
    for token in [fake_telegram::TOKEN, fake_discord::TOKEN] {
        assert!(!printed.contains(token), "token on stdout:\n{printed}");
        assert!(!logged.contains(token), "token in the log");
    }
    assert!(
        logged.contains("telegram") && logged.contains("discord"),
        "the debug log ran"
    );
}
