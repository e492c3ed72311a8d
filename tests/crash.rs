//! The crash test: a `webcare ingest` child process is killed with SIGKILL at a random moment
//! under load, on both store backends. After the kill, everything it acknowledged must be in
//! the store with its decision, its escalation and its outbox entry; nothing half-written may
//! be visible; and a restart on the same input finishes the job, deciding every message once.
//!
//! The kill moment is the only random thing: it is printed, so a failure can be replayed by
//! setting `WEBCARE_CRASH_AFTER` to the same number of acknowledgements.

// A failed unwrap is a failed test, with its line; that is what these would say anyway.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{BuildHasher, Hasher};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use webcare_engine::ChannelKind;
use webcare_engine::store::{self, Backend, OutboxStatus, StoreOptions};

const MESSAGES: usize = 3000;

const TEXTS: [&str; 8] = [
    "Wat zijn de openingstijden van het stadskantoor?",
    "Er is brand in de flat aan de Dorpsstraat!",
    "Ik heb een klacht over de afvalinzameling",
    "Bedankt voor de snelle hulp!",
    "I lost my passport, how do I get a new one?",
    "Hoe vraag ik een parkeervergunning aan?",
    "De lantaarnpaal in onze straat is kapot",
    "qwerty asdf zxcv",
];

fn write_input(path: &Path) {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for i in 0..MESSAGES {
        let line = serde_json::json!({
            "id": format!("m{i}"),
            "channel": "telegram",
            "conversation": format!("c{}", i % 150),
            "author": format!("u{}", i % 150),
            "text": TEXTS[i % TEXTS.len()],
            "received_at": format!("2026-11-23T{:02}:{:02}:{:02}Z", 8 + i / 3600, (i / 60) % 60, i % 60),
        });
        writeln!(file, "{line}").unwrap();
    }
    file.flush().unwrap();
}

/// `ack <id> <action> [duplicate]` lines from the child's stdout.
fn parse_ack(line: &str) -> (String, String, bool) {
    let parts: Vec<&str> = line.split_whitespace().collect();
    assert!(
        parts.len() >= 3 && parts[0] == "ack",
        "unexpected output line `{line}`"
    );
    (
        parts[1].to_owned(),
        parts[2].to_owned(),
        parts.get(3) == Some(&"duplicate"),
    )
}

fn ingest(data: &Path, backend: Backend, input: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_webcare"));
    command
        .arg("--data")
        .arg(data)
        .arg("--store")
        .arg(backend.as_str())
        .arg("ingest")
        .arg("--input")
        .arg(input)
        .arg("--workers")
        .arg("4")
        .stdout(Stdio::piped());
    command
}

fn random_below(n: usize) -> usize {
    let seed = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    (seed % n as u64) as usize
}

fn crash_and_recover(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("messages.jsonl");
    let data = dir.path().join("data");
    write_input(&input);

    let kill_after = std::env::var("WEBCARE_CRASH_AFTER")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| 1 + random_below(MESSAGES * 3 / 4));
    eprintln!("{backend}: killing after {kill_after} acknowledgements (WEBCARE_CRASH_AFTER)");

    let mut child = ingest(&data, backend, &input)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut acked: BTreeMap<String, String> = BTreeMap::new();
    let mut lines = stdout.lines();
    for line in lines.by_ref() {
        let (id, action, _) = parse_ack(&line.unwrap());
        acked.insert(id, action);
        if acked.len() == kill_after {
            // Child::kill is SIGKILL on Unix: no destructors, no flush, no goodbye.
            child.kill().unwrap();
            break;
        }
    }
    child.wait().unwrap();
    // Lines the child wrote before it died are still in the pipe; each is a promise too.
    for line in lines {
        let Ok(line) = line else { break };
        let (id, action, _) = parse_ack(&line);
        acked.insert(id, action);
    }
    assert!(acked.len() >= kill_after.min(MESSAGES));

    // Restart: the store opens (recovering if needed) and holds every promise.
    {
        let store = store::open(&StoreOptions {
            backend,
            data_dir: data.clone(),
            redact: false,
            cache_bytes: None,
            url: None,
        })
        .unwrap();
        let open = store.open_escalations().unwrap();
        let escalated: BTreeSet<&str> = open
            .iter()
            .flat_map(|e| e.messages.iter().map(String::as_str))
            .collect();
        // Every conversation's replies: the outbox hands out only the oldest pending one of a
        // conversation at a time, so it is read per conversation.
        let conversations: BTreeSet<String> = store::history(&*store, None)
            .map(|stored| stored.unwrap().message.conversation)
            .collect();
        let mut outbox = Vec::new();
        for conversation in &conversations {
            outbox.extend(
                store
                    .conversation_outbox(ChannelKind::Telegram, conversation)
                    .unwrap(),
            );
        }
        assert!(outbox.iter().all(|e| e.status == OutboxStatus::Pending));
        let replied: BTreeSet<&str> = outbox.iter().map(|e| e.in_reply_to.as_str()).collect();

        for (id, action) in &acked {
            let stored = store
                .message(ChannelKind::Telegram, id)
                .unwrap()
                .unwrap_or_else(|| panic!("{backend}: acknowledged message `{id}` is lost"));
            assert_eq!(stored.decision.action.name(), action, "{backend}: `{id}`");
        }
        // Every stored message, acknowledged or not yet, is whole: its escalation and its
        // outbox entry were committed with it or not at all.
        let mut stored_count = 0;
        for stored in store::history(&*store, None) {
            let stored = stored.unwrap();
            let id = stored.message.id.as_str();
            if stored.decision.action.name() == "escalate" {
                assert!(
                    escalated.contains(id),
                    "{backend}: escalation of `{id}` is missing"
                );
            }
            if stored.decision.action.reply().is_some() {
                assert!(
                    replied.contains(id),
                    "{backend}: outbox entry of `{id}` is missing"
                );
            }
            stored_count += 1;
        }
        assert!(stored_count >= acked.len());
        assert_eq!(store.stats().unwrap().messages, stored_count as u64);
    }

    // Run again on the same input: it finishes, and everything already stored is a duplicate
    // with the decision it got the first time.
    let output = ingest(&data, backend, &input)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{backend}: the restart failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut second = BTreeMap::new();
    for line in String::from_utf8(output.stdout).unwrap().lines() {
        let (id, action, duplicate) = parse_ack(line);
        if let Some(first) = acked.get(&id) {
            assert!(duplicate, "{backend}: `{id}` was decided twice");
            assert_eq!(&action, first, "{backend}: `{id}` changed its decision");
        }
        second.insert(id, action);
    }
    assert_eq!(
        second.len(),
        MESSAGES,
        "{backend}: every message acknowledged"
    );
    let store = store::open(&StoreOptions {
        backend,
        data_dir: data,
        redact: false,
        cache_bytes: None,
        url: None,
    })
    .unwrap();
    assert_eq!(store.stats().unwrap().messages, MESSAGES as u64);
}

#[test]
fn a_killed_ingest_loses_nothing_it_acknowledged_redb() {
    crash_and_recover(Backend::Redb);
}

#[test]
fn a_killed_ingest_loses_nothing_it_acknowledged_sled() {
    crash_and_recover(Backend::Sled);
}
