//! The store's files as other users on the machine see them (issue 15): the data directory
//! and the store file are the owner's alone, on first creation and after an existing, too open
//! directory is opened again.

#![allow(clippy::unwrap_used)]

#[cfg(unix)]
#[test]
fn the_data_directory_and_the_store_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    use webcare_engine::store::{self, Backend, StoreOptions};

    let mode =
        |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    for backend in [Backend::Redb, Backend::Sled] {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let options = StoreOptions {
            backend,
            data_dir: data.clone(),
            ..StoreOptions::default()
        };
        drop(store::open(&options).unwrap());
        assert_eq!(mode(&data), 0o700, "{backend:?} data directory");
        let file = backend.path_in(&data);
        let expected = if file.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(mode(&file), expected, "{backend:?} store");

        // A directory made readable by others (an old install) is tightened at the next open.
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
        let loose = if file.is_dir() { 0o755 } else { 0o644 };
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(loose)).unwrap();
        drop(store::open(&options).unwrap());
        assert_eq!(mode(&data), 0o700);
        assert_eq!(mode(&file), expected);
    }
}

/// Opens the redb store in `data`, catching a panic: `Ok(Err(_))` is the clear error a user
/// should get, `Err(_)` a panic.
fn open_redb(
    data: &std::path::Path,
) -> std::thread::Result<Result<(), webcare_engine::store::StoreError>> {
    use webcare_engine::store::{self, Backend, StoreOptions};
    let options = StoreOptions {
        backend: Backend::Redb,
        data_dir: data.to_owned(),
        ..StoreOptions::default()
    };
    std::panic::catch_unwind(|| store::open(&options).map(drop))
}

/// A store with some history in `dir/data`; returns the store file.
fn store_with_history(dir: &std::path::Path) -> std::path::PathBuf {
    use webcare_engine::store::{self, Backend, StoreOptions};
    use webcare_engine::{ChannelKind, Inbound, Rulebook, Runtime};
    let data = dir.join("data");
    let store = store::open(&StoreOptions {
        backend: Backend::Redb,
        data_dir: data.clone(),
        ..StoreOptions::default()
    })
    .unwrap();
    let runtime = Runtime::new(Rulebook::embedded().unwrap(), store);
    let now = chrono::Utc::now();
    for i in 0..200 {
        let message = Inbound::from_text(
            format!("m{i}"),
            ChannelKind::Http,
            format!("Wat zijn de openingstijden van het stadskantoor? {i}"),
            now,
        );
        runtime.accept(message, now).unwrap();
    }
    drop(runtime);
    Backend::Redb.path_in(&data)
}

#[test]
fn an_empty_or_cut_short_store_is_refused_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let file = store_with_history(dir.path());
    let data = file.parent().unwrap().to_owned();
    let full = std::fs::read(&file).unwrap();

    let cases: [(&str, Vec<u8>); 3] = [
        ("empty", Vec::new()),
        ("cut short", full[..full.len() / 2].to_vec()),
        ("header damaged", {
            let mut bytes = full.clone();
            for b in &mut bytes[0..64] {
                *b ^= 0x5a;
            }
            bytes
        }),
    ];
    for (what, bytes) in cases {
        std::fs::write(&file, &bytes).unwrap();
        let opened = open_redb(&data).unwrap_or_else(|_| panic!("{what}: opening panicked"));
        let error = opened
            .err()
            .unwrap_or_else(|| panic!("{what}: opened as if nothing was wrong"))
            .to_string();
        assert!(
            error.contains("Restore it from a backup"),
            "{what}: {error}"
        );
        // Nothing was written over the damaged file.
        assert_eq!(std::fs::read(&file).unwrap(), bytes, "{what}");
    }
}

/// Writes `file`'s tables again as redb 2.6 wrote them (file format v2), the way every store
/// made before webcare moved to redb 5 is on disk: the same tables, keys and values, in the old
/// file format. The list is the table definitions of `engine/src/store/redb.rs`.
fn rewrite_in_file_format_v2(file: &std::path::Path) {
    use redb::{ReadableDatabase, ReadableTable};
    macro_rules! copy {
        ($read:expr, $write:expr, $name:literal, $k:ty, $v:ty) => {{
            let table = $read
                .open_table(redb::TableDefinition::<$k, $v>::new($name))
                .unwrap();
            let mut out = $write
                .open_table(redb2::TableDefinition::<$k, $v>::new($name))
                .unwrap();
            for entry in table.range(..).unwrap() {
                let (k, v) = entry.unwrap();
                out.insert(k.value(), v.value()).unwrap();
            }
        }};
    }
    let old = file.with_extension("v2");
    {
        let new = redb::Database::open(file).unwrap();
        let read = new.begin_read().unwrap();
        let v2 = redb2::Database::create(&old).unwrap();
        let write = v2.begin_write().unwrap();
        copy!(read, write, "records", &[u8], &[u8]);
        copy!(read, write, "messages", [u8; 8], &[u8]);
        copy!(read, write, "dedupe", [u8; 8], [u8; 8]);
        copy!(read, write, "time", [u8; 16], ());
        copy!(read, write, "outbox_pending", [u8; 8], [u8; 1]);
        copy!(read, write, "outbox", [u8; 8], &[u8]);
        copy!(read, write, "outbox_waiting", [u8; 8], &[u8]);
        write.commit().unwrap();
    }
    std::fs::rename(&old, file).unwrap();
}

/// A store written before the move to redb 5 is upgraded when it is first opened, and reads
/// back whole: every message with its decision, in the same order, and the store goes on
/// taking messages.
#[test]
fn a_store_in_the_old_file_format_is_upgraded_on_open_with_its_history() {
    use webcare_engine::store::{self, Backend, StoreOptions};
    use webcare_engine::{ChannelKind, Inbound, Rulebook, Runtime};
    let dir = tempfile::tempdir().unwrap();
    let file = store_with_history(dir.path());
    let options = StoreOptions {
        backend: Backend::Redb,
        data_dir: file.parent().unwrap().to_owned(),
        ..StoreOptions::default()
    };
    let history = |store: &dyn store::Store| {
        let page = store.history_page(None, None, 1000).unwrap();
        page.into_iter()
            .map(|m| (m.message.id, m.message.text, m.decision.action))
            .collect::<Vec<_>>()
    };
    let before = history(store::open(&options).unwrap().as_ref());
    assert_eq!(before.len(), 200);

    rewrite_in_file_format_v2(&file);
    let head = |file: &std::path::Path| std::fs::read(file).unwrap()[..64].to_vec();
    let v2_header = head(&file);

    let store = store::open(&options).unwrap();
    assert_eq!(history(store.as_ref()), before);
    assert_ne!(head(&file), v2_header, "the file was not upgraded");
    // The upgraded store takes the next message.
    let runtime = Runtime::new(Rulebook::embedded().unwrap(), store);
    let now = chrono::Utc::now();
    let next = Inbound::from_text(
        "m200",
        ChannelKind::Http,
        "Hoe vraag ik een paspoort aan?",
        now,
    );
    runtime.accept(next, now).unwrap();
    drop(runtime);
    // Opened again, it is already upgraded, and holds all 201.
    let after = history(store::open(&options).unwrap().as_ref());
    assert_eq!(after[..200], before[..]);
    assert_eq!(after.len(), 201);
}
