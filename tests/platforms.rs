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

mod support;

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
    assert_eq!(
        telegram.state.lock().unwrap().delete_webhook_calls,
        1,
        "polling first removes a webhook left by webhook mode"
    );
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

/// `webcare run` as the notification and webhook tests start it: the fakes' URLs and the
/// tokens in the environment, an optional config file, stdout lines collected, stderr kept.
struct Running {
    child: std::process::Child,
    lines: Arc<Mutex<Vec<String>>>,
    logged: Option<std::thread::JoinHandle<String>>,
}

impl Running {
    fn start(dir: &std::path::Path, config: &str, env: &[(&str, &str)]) -> Running {
        let path = dir.join("webcare.toml");
        std::fs::write(&path, config).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_webcare"));
        command
            .args(["run", "--listen", "127.0.0.1:0", "--config"])
            .arg(&path)
            .current_dir(dir)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (name, _) in std::env::vars() {
            if name.starts_with("WEBCARE_") || name.contains("BOT_TOKEN") {
                command.env_remove(name);
            }
        }
        for (name, value) in env {
            command.env(name, value);
        }
        let (child, lines, logged) = support::spawn_printing(&mut command);
        Running {
            child,
            lines,
            logged,
        }
    }

    /// The printed line starting with `prefix`, once `outbox: ` (the last one) was printed.
    async fn line(&self, prefix: &str) -> String {
        let lines = Arc::clone(&self.lines);
        let printed = eventually(Duration::from_secs(60), || {
            let lines = lines.lock().unwrap();
            lines
                .iter()
                .any(|l| l.starts_with("outbox: "))
                .then(|| lines.clone())
        })
        .await;
        printed
            .iter()
            .find(|l| l.starts_with(prefix))
            .cloned()
            .unwrap_or_else(|| panic!("no `{prefix}` line in {printed:?}"))
    }

    /// The base URL of the web server, from the `http channel:` line.
    async fn base(&self) -> String {
        let line = self.line("http channel: POST ").await;
        let url = line.split(' ').nth(3).unwrap();
        url.strip_suffix("/api/v1/messages").unwrap().to_owned()
    }

    /// SIGTERM, then what it logged.
    async fn stop(mut self) -> String {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "webcare did not stop on SIGTERM");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert!(status.success(), "{status}");
        self.logged.take().unwrap().join().unwrap()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

const COMPLAINT: &str = "Ik heb een klacht over de afvalinzameling, al drie weken niet opgehaald!";

/// Issue 5 item 7: the webcare team's Telegram group and Discord channel hear of a new
/// escalation through the real Bot API and Discord REST calls, with the same line the webhook
/// kind sends (team, priority, category, inbox link) and nothing the customer wrote. Both
/// platforms first fail (a 5xx, a 429): the notification is retried and logged, and intake
/// answers customers meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_escalation_is_announced_in_the_teams_telegram_group_and_discord_channel() {
    let telegram = fake_telegram::serve(None).await;
    let (discord, _discord_events) = fake_discord::serve().await;
    telegram.script(
        &[
            fake_telegram::Answer::ServerError,
            fake_telegram::Answer::TooManyRequests { retry_after: 1 },
        ],
        None,
    );
    discord.script(
        &[
            fake_discord::Answer::TooManyRequests { retry_after: 0.5 },
            fake_discord::Answer::ServerError,
        ],
        None,
    );
    const GROUP: i64 = -1_001_234_567_890;
    let config = format!(
        "[inbox]\npublic_url = \"https://webcare.example.org/\"\n\
         [notifications.webcare]\ntelegram_chat = \"{GROUP}\"\ndiscord_channel = \"4004\"\n"
    );
    let dir = tempfile::tempdir().unwrap();
    let webcare = Running::start(
        dir.path(),
        &config,
        &[
            ("TELEGRAM_BOT_TOKEN", fake_telegram::TOKEN),
            ("WEBCARE_TELEGRAM_API_URL", &telegram.url),
            ("WEBCARE_TELEGRAM_POLL_TIMEOUT_SECS", "1"),
            ("DISCORD_BOT_TOKEN", fake_discord::TOKEN),
            ("WEBCARE_DISCORD_API_URL", &discord.url),
        ],
    );
    assert!(
        webcare
            .line("notifications: ")
            .await
            .contains("notifications: webcare"),
    );
    let base = webcare.base().await;
    let client = reqwest::Client::new();
    let post = |id: &str, text: &str| {
        client
            .post(format!("{base}/api/v1/messages"))
            .json(&serde_json::json!({ "id": id, "text": text, "conversation": id }))
            .send()
    };
    let decision: serde_json::Value = post("c1", COMPLAINT).await.unwrap().json().await.unwrap();
    assert_eq!(decision["action"], "escalate", "{decision}");
    assert_eq!(decision["team"], "webcare", "{decision}");

    // While the notification fails and waits to be retried, customers are still answered.
    eventually(Duration::from_secs(30), || {
        (telegram.state.lock().unwrap().send_calls >= 1).then_some(())
    })
    .await;
    let answered: serde_json::Value = post("c2", QUESTION).await.unwrap().json().await.unwrap();
    assert_eq!(answered["action"], "answer", "{answered}");
    assert!(
        telegram.sends().is_empty(),
        "the question was answered while the notification waited for its retry"
    );

    let (chat, text) = eventually(Duration::from_secs(30), || {
        telegram
            .sends()
            .first()
            .map(|(chat, text, _)| (*chat, text.clone()))
    })
    .await;
    assert_eq!(chat, GROUP);
    let id: String = text
        .split('#')
        .nth(1)
        .unwrap()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    for part in [
        "new escalation".to_owned(),
        "the webcare team".to_owned(),
        "priority ".to_owned(),
        "category complaint".to_owned(),
        format!("https://webcare.example.org/inbox/escalations/{id}"),
    ] {
        assert!(text.contains(&part), "`{part}` missing from: {text}");
    }
    assert!(!text.contains("afvalinzameling"), "customer text: {text}");
    assert_eq!(
        telegram.state.lock().unwrap().send_calls,
        3,
        "500, 429, sent"
    );

    let (channel, content) = eventually(Duration::from_secs(30), || {
        discord
            .sends()
            .first()
            .map(|(channel, text, _, _)| (channel.clone(), text.clone()))
    })
    .await;
    assert_eq!(channel, "4004");
    assert_eq!(content, text, "the same line on both platforms");
    assert_eq!(
        discord.state.lock().unwrap().send_calls,
        3,
        "429, 500, sent"
    );

    // Exactly one notification per platform, and only to the team's channels.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(telegram.sends().len(), 1);
    assert_eq!(discord.sends().len(), 1);

    let logged = webcare.stop().await;
    let retries: Vec<&str> = logged
        .lines()
        .filter(|l| l.contains("notify: failed, will retry"))
        .collect();
    assert!(
        retries.iter().any(|l| l.contains("telegram"))
            && retries.iter().any(|l| l.contains("discord")),
        "retries are logged per platform:\n{logged}"
    );
    for token in [fake_telegram::TOKEN, fake_discord::TOKEN] {
        assert!(!logged.contains(token), "token in the log");
    }
}

/// Issue 4 item 4: with `[telegram] webhook_url` the bot registers the webhook (URL and
/// secret token) instead of polling, and takes the updates Telegram posts on webcare's own
/// server: answered through `sendMessage`, a repeated POST answered once, a POST without the
/// right secret token refused with 401 and never decided, the secret never printed or logged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telegram_webhook_mode_registers_the_webhook_and_answers_posted_updates_once() {
    const SECRET: &str = "s3cret_Token-42";
    const HOOK: &str = "https://bot.example.org/telegram/updates";
    let telegram = fake_telegram::serve(None).await;
    let dir = tempfile::tempdir().unwrap();
    let webcare = Running::start(
        dir.path(),
        &format!("[telegram]\nwebhook_url = \"{HOOK}\"\n"),
        &[
            ("TELEGRAM_BOT_TOKEN", fake_telegram::TOKEN),
            ("WEBCARE_TELEGRAM_API_URL", &telegram.url),
            ("TELEGRAM_WEBHOOK_SECRET", SECRET),
        ],
    );
    let line = webcare.line("telegram: ").await;
    assert!(
        line.contains("webhook via https://bot.example.org (secret token set)"),
        "{line}"
    );
    let base = webcare.base().await;

    let registered = eventually(Duration::from_secs(30), || {
        telegram.state.lock().unwrap().set_webhook.first().cloned()
    })
    .await;
    assert_eq!(registered.get("url").map(String::as_str), Some(HOOK));
    assert_eq!(
        registered.get("secret_token").map(String::as_str),
        Some(SECRET)
    );
    assert!(
        registered
            .get("allowed_updates")
            .is_some_and(|u| u.contains("message")),
        "{registered:?}"
    );

    let client = reqwest::Client::new();
    let endpoint = format!("{base}/telegram/updates");
    let post = |secret: Option<&str>, update: &serde_json::Value| {
        let mut request = client.post(&endpoint).json(update);
        if let Some(secret) = secret {
            request = request.header("X-Telegram-Bot-Api-Secret-Token", secret);
        }
        request.send()
    };

    let forged = fake_telegram::text_update(2, 43, 8, fake_telegram::ann(), QUESTION);
    for secret in [Some("wrong"), Some(""), None] {
        let status = post(secret, &forged).await.unwrap().status();
        assert_eq!(status.as_u16(), 401, "secret {secret:?}");
    }

    let update = fake_telegram::text_update(1, 42, 7, fake_telegram::ann(), QUESTION);
    let status = post(Some(SECRET), &update).await.unwrap().status();
    assert_eq!(status.as_u16(), 200);
    let (chat, text) = eventually(Duration::from_secs(30), || {
        telegram
            .sends()
            .first()
            .map(|(chat, text, _)| (*chat, text.clone()))
    })
    .await;
    assert_eq!(chat, 42);
    assert!(text.to_lowercase().contains("afspraak"), "{text}");

    // Telegram posts an update again when it missed the answer: answered once.
    let status = post(Some(SECRET), &update).await.unwrap().status();
    assert_eq!(status.as_u16(), 200);
    // The loop guard holds on this path too: a bot's message is taken (200) and not answered.
    let from_bot = fake_telegram::text_update(
        3,
        42,
        9,
        serde_json::json!({ "id": 77, "is_bot": true, "first_name": "Other" }),
        QUESTION,
    );
    assert_eq!(
        post(Some(SECRET), &from_bot)
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(telegram.sends().len(), 1, "{:?}", telegram.sends());
    assert!(
        telegram.state.lock().unwrap().offsets.is_empty(),
        "no getUpdates in webhook mode"
    );

    let printed = webcare.lines.lock().unwrap().join("\n");
    let logged = webcare.stop().await;
    for secret in [SECRET, fake_telegram::TOKEN] {
        assert!(!printed.contains(secret), "secret on stdout:\n{printed}");
        assert!(!logged.contains(secret), "secret in the log");
    }
    assert!(logged.contains("secret token"), "the refusals are logged");

    let store = webcare_engine::store::open(&webcare_engine::store::StoreOptions {
        data_dir: dir.path().join("data"),
        ..webcare_engine::store::StoreOptions::default()
    })
    .unwrap();
    let kind = webcare_engine::ChannelKind::Telegram;
    assert!(store.message(kind, "42:7").unwrap().is_some());
    assert!(
        store.message(kind, "43:8").unwrap().is_none(),
        "a refused update is never taken in"
    );
}
