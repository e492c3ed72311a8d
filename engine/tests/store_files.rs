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
