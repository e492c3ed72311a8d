//! `webcare run` with the e-mail channel as an operator starts it: the real binary with
//! `[email]` in its config file and the password in `EMAIL_PASSWORD`, against a real Dovecot
//! (IMAP IDLE) and a real SMTP server (aiosmtpd) started here on 127.0.0.1. A mail is answered in
//! its thread, the start line says where it reads, the mailbox position is kept in the data
//! directory, and the password appears in nothing it printed or logged.

#![cfg(feature = "email")]
#![allow(clippy::unwrap_used)]

#[path = "../adapters/tests/fakes/mailservers.rs"]
mod servers;

mod support;

use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn eventually<T>(within: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "condition not met within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `webcare run` with `[email]` pointed at the two servers, in `dir`.
fn start_run(
    dir: &std::path::Path,
    imap: &servers::Dovecot,
    smtp: &servers::SmtpSink,
) -> (
    std::process::Child,
    Arc<Mutex<Vec<String>>>,
    std::thread::JoinHandle<String>,
) {
    let config = dir.join("webcare.toml");
    std::fs::write(
        &config,
        format!(
            "[email]\naddress = \"gemeente@example.org\"\nusername = \"{}\"\n\
             imap_host = \"127.0.0.1\"\nimap_port = {}\nimap_security = \"none\"\n\
             smtp_host = \"127.0.0.1\"\nsmtp_port = {}\nsmtp_security = \"none\"\n",
            servers::USER,
            imap.port,
            smtp.port
        ),
    )
    .unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_webcare"));
    command
        .args(["run", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .current_dir(dir)
        .env("RUST_LOG", "debug")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, _) in std::env::vars() {
        if name.starts_with("WEBCARE_") || name.starts_with("EMAIL_") || name.starts_with("META_") {
            command.env_remove(name);
        }
    }
    command.env("EMAIL_PASSWORD", servers::PASSWORD);
    let (child, lines, logged) = support::spawn_printing(&mut command);
    let logged = logged.expect("stderr is piped");
    (child, lines, logged)
}

#[test]
fn run_answers_a_mail_in_its_thread_and_never_prints_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let imap = servers::Dovecot::start(&dir.path().join("imap"));
    let smtp = servers::SmtpSink::start(dir.path());
    let (mut child, lines, logged) = start_run(dir.path(), &imap, &smtp);
    let line = eventually(Duration::from_secs(60), || {
        lines
            .lock()
            .unwrap()
            .iter()
            .find(|l| l.starts_with("email: "))
            .cloned()
    });
    assert!(
        line.contains(&format!("IMAP 127.0.0.1:{}", imap.port)),
        "{line}"
    );

    imap.deliver(
        "From: Ann de Vries <ann@example.net>\nTo: gemeente@example.org\nSubject: Paspoort\n\
         Date: Mon, 2 Mar 2026 10:00:00 +0100\nMessage-ID: <run1@example.net>\n\n\
         Hoe vraag ik een nieuw paspoort aan?\n",
    );
    let reply = eventually(Duration::from_secs(30), || {
        smtp.received().into_iter().next()
    });
    assert!(reply.contains("In-Reply-To: <run1@example.net>"), "{reply}");
    assert!(reply.contains("Subject: Re: Paspoort"), "{reply}");

    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = eventually(Duration::from_secs(60), || child.try_wait().unwrap());
    assert!(status.success(), "{status}");
    let position = std::fs::read_to_string(dir.path().join("data/email-position.json")).unwrap();
    assert!(position.contains("\"last_uid\":1"), "{position}");
    let logged = logged.join().unwrap();
    let printed = lines.lock().unwrap().join("\n");
    assert!(!printed.contains(servers::PASSWORD));
    assert!(
        !logged.contains(servers::PASSWORD),
        "the password in the log"
    );
}

/// SIGKILL while mails are being taken in: after a restart every mail is stored exactly once
/// and answered, and the position reaches the last mail.
#[test]
fn a_sigkill_in_the_middle_neither_loses_nor_repeats_a_mail() {
    const MAILS: usize = 40;
    let dir = tempfile::tempdir().unwrap();
    let imap = servers::Dovecot::start(&dir.path().join("imap"));
    let smtp = servers::SmtpSink::start(dir.path());
    for i in 0..MAILS {
        imap.deliver(&format!(
            "From: Inwoner {i} <inwoner{i}@example.net>\nTo: gemeente@example.org\nSubject: Vraag {i}\n\
             Date: Mon, 2 Mar 2026 10:00:00 +0100\nMessage-ID: <k{i}@example.net>\n\n\
             Hoe vraag ik een nieuw paspoort aan?\n"
        ));
    }
    let position = dir.path().join("data/email-position.json");
    let last_uid = || {
        std::fs::read_to_string(&position)
            .ok()
            .and_then(|p| serde_json::from_str::<serde_json::Value>(&p).ok())
            .and_then(|p| p["last_uid"].as_u64())
            .unwrap_or(0)
    };
    let (mut child, _, _) = start_run(dir.path(), &imap, &smtp);
    eventually(Duration::from_secs(60), || (last_uid() >= 2).then_some(()));
    child.kill().unwrap(); // SIGKILL, in the middle of the mailbox
    child.wait().unwrap();
    // Printed, not asserted: how far it got depends on the machine's speed.
    println!("killed after UID {} of {MAILS}", last_uid());
    let (mut child, _, _) = start_run(dir.path(), &imap, &smtp);
    eventually(Duration::from_secs(60), || {
        (last_uid() == MAILS as u64).then_some(())
    });
    eventually(Duration::from_secs(60), || {
        (smtp.received().len() >= MAILS).then_some(())
    });
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
    let mut ids: Vec<String> = webcare_engine::store::history(store.as_ref(), None)
        .map(|m| m.unwrap().message.id)
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), MAILS, "every mail stored, once: {ids:?}");
    let answered: std::collections::BTreeSet<String> = smtp
        .received()
        .iter()
        .filter_map(|m| {
            m.lines()
                .find(|l| l.starts_with("In-Reply-To:"))
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(answered.len(), MAILS, "every mail answered");
}
