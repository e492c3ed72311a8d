//! The store's files as an operator handles them (issue 15): a damaged or emptied store gives a
//! clear error instead of a crash, `forget` leaves nothing of the person readable on disk, and
//! `backup` / `restore` bring a store back.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn webcare(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_webcare"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("webcare starts");
    let mut input = child.stdin.take().expect("stdin is piped");
    input
        .write_all(stdin.unwrap_or_default())
        .expect("stdin accepts input");
    drop(input);
    child.wait_with_output().expect("webcare finishes")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn a_store_cut_short_or_emptied_gives_a_clear_error_not_a_crash() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let data_arg = data.to_str().expect("utf-8 path");
    let ingest = webcare(
        &["ingest", "--data", data_arg, "--input", "-"],
        Some(b"{\"id\":\"a\",\"text\":\"Hoe vraag ik een paspoort aan?\"}\n"),
    );
    assert!(ingest.status.success(), "{}", text(&ingest.stderr));
    let file = data.join("webcare.redb");
    let full = std::fs::read(&file).expect("store");
    for (what, bytes) in [("cut short", &full[..full.len() / 2]), ("empty", &[][..])] {
        std::fs::write(&file, bytes).expect("damage");
        let out = webcare(&["versions", "--data", data_arg], None);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{what}: {stderr}");
        assert!(
            stderr.contains("Restore it from a backup"),
            "{what}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{what}: {stderr}");
    }
}

/// Whether `needle` occurs anywhere in the bytes of the files under `dir`.
fn on_disk(dir: &std::path::Path, needle: &str) -> bool {
    let mut found = false;
    for entry in std::fs::read_dir(dir).expect("dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            found |= on_disk(&path, needle);
        } else {
            let bytes = std::fs::read(&path).expect("file");
            found |= bytes
                .windows(needle.len())
                .any(|window| window == needle.as_bytes());
        }
    }
    found
}

#[test]
fn forget_leaves_nothing_readable_on_disk() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let data_arg = data.to_str().expect("utf-8 path");
    let secret = "Mijn BSN is 999999990 en ik woon op de Kwakkelsteeg 42";
    let mut input = String::new();
    for i in 0..30 {
        input.push_str(&format!(
            "{{\"id\":\"p{i}\",\"author\":\"piet-de-vries\",\"conversation\":\"piet-gesprek\",\"text\":\"{secret} ({i})\"}}\n"
        ));
        input.push_str(&format!(
            "{{\"id\":\"o{i}\",\"author\":\"other\",\"text\":\"Wat zijn de openingstijden? ({i})\"}}\n"
        ));
    }
    let ingest = webcare(
        &["ingest", "--data", data_arg, "--input", "-"],
        Some(input.as_bytes()),
    );
    assert!(ingest.status.success(), "{}", text(&ingest.stderr));
    assert!(
        on_disk(&data, "Kwakkelsteeg"),
        "the test needs the text on disk first"
    );

    let out = webcare(
        &["forget", "--author", "piet-de-vries", "--data", data_arg],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("erased 30 messages"),
        "{}",
        text(&out.stdout)
    );
    for erased in ["Kwakkelsteeg", "piet-de-vries", "piet-gesprek"] {
        assert!(
            !on_disk(&data, erased),
            "`{erased}` is still readable in {}",
            data.display()
        );
    }
    // The rest of the store is intact.
    let explain = webcare(&["explain", "o7", "--data", data_arg], None);
    assert!(explain.status.success(), "{}", text(&explain.stderr));
    assert!(text(&explain.stdout).contains("openingstijden"));
}

#[test]
fn forget_leaves_no_author_id_in_a_shared_conversations_case() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let data_arg = data.to_str().expect("utf-8 path");
    // Kees's complaint opens an escalation in a conversation a neighbour writes in too, so
    // forgetting Kees keeps the conversation and the escalation for the neighbour.
    let input = "{\"id\":\"k1\",\"author\":\"kees-jansen-77\",\"conversation\":\"buurtgroep\",\"text\":\"Ik heb een klacht over de afvalinzameling, al drie weken niet opgehaald!\"}\n\
                 {\"id\":\"n1\",\"author\":\"buurvrouw\",\"conversation\":\"buurtgroep\",\"text\":\"Wat zijn de openingstijden van het stadskantoor?\"}\n";
    let ingest = webcare(
        &["ingest", "--data", data_arg, "--input", "-"],
        Some(input.as_bytes()),
    );
    assert!(ingest.status.success(), "{}", text(&ingest.stderr));
    assert!(
        on_disk(&data, "kees-jansen-77"),
        "the test needs the id on disk first"
    );
    let out = webcare(
        &["forget", "--author", "kees-jansen-77", "--data", data_arg],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("erased 1 messages, 0 conversations, 0 escalations"),
        "{}",
        text(&out.stdout)
    );
    assert!(
        !on_disk(&data, "kees-jansen-77"),
        "the author id is still readable in {}",
        data.display()
    );
    // The neighbour's message is still there.
    let explain = webcare(&["explain", "n1", "--data", data_arg], None);
    assert!(explain.status.success(), "{}", text(&explain.stderr));
}

#[test]
fn backup_and_restore_bring_the_store_back() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let data_arg = data.to_str().expect("utf-8 path");
    let backups = dir.path().join("backups/monday");
    let ingest = webcare(
        &["ingest", "--data", data_arg, "--input", "-"],
        Some(b"{\"id\":\"q1\",\"text\":\"Hoe vraag ik een paspoort aan?\"}\n"),
    );
    assert!(ingest.status.success(), "{}", text(&ingest.stderr));
    let out = webcare(
        &[
            "backup",
            backups.to_str().expect("utf-8"),
            "--data",
            data_arg,
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(backups.join("webcare.redb").exists());
    // A second backup into the same place is refused rather than overwriting the first.
    let again = webcare(
        &[
            "backup",
            backups.to_str().expect("utf-8"),
            "--data",
            data_arg,
        ],
        None,
    );
    assert!(!again.status.success());
    assert!(
        text(&again.stderr).contains("exists already"),
        "{}",
        text(&again.stderr)
    );

    // Later the store is lost (emptied); the restore brings back what the backup holds.
    std::fs::write(data.join("webcare.redb"), b"").expect("damage");
    let out = webcare(
        &[
            "restore",
            backups.to_str().expect("utf-8"),
            "--data",
            data_arg,
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("kept as"),
        "{}",
        text(&out.stdout)
    );
    let explain = webcare(&["explain", "q1", "--data", data_arg], None);
    assert!(explain.status.success(), "{}", text(&explain.stderr));
    assert!(text(&explain.stdout).contains("paspoort"));
}
