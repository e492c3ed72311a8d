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
