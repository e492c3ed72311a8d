//! `webcare run` with the e-mail channel as an operator starts it: the real binary with
//! `[email]` in its config file and the password in `EMAIL_PASSWORD`, against a real Dovecot
//! (IMAP IDLE) and a real SMTP server (aiosmtpd) started here on 127.0.0.1. A mail is answered in
//! its thread, the start line says where it reads, the mailbox position is kept in the data
//! directory, and the password appears in nothing it printed or logged.

#![cfg(feature = "email")]
#![allow(clippy::unwrap_used)]

#[path = "../adapters/tests/fakes/mailservers.rs"]
mod servers;

use std::io::{BufRead, BufReader, Read};
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

#[test]
fn run_answers_a_mail_in_its_thread_and_never_prints_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let imap = servers::Dovecot::start(&dir.path().join("imap"));
    let smtp = servers::SmtpSink::start(dir.path());
    let config = dir.path().join("webcare.toml");
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
        .current_dir(dir.path())
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
