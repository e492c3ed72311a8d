//! A consistent copy of the whole store into a new file: `webcare backup` while the service
//! runs, and the rewrite after `webcare forget`. It reads one snapshot, so the copy is the
//! store as of one moment whatever is written meanwhile, and it writes only live entries into
//! a fresh file, so nothing deleted before (erased texts in free pages) is carried over.
//! Entries go over in batches of a few megabytes, in space and key order (what a write
//! transaction expects), so a large store never sits in memory whole.

use std::path::Path;

use super::*;
use crate::store::StoreError;

/// The bytes of keys and values collected before they are committed to the copy.
const BATCH_BYTES: usize = 8 * 1024 * 1024;

impl Embedded {
    pub(super) fn copy_to(&self, target: &Path) -> Result<(), StoreError> {
        if target.exists() {
            return Err(StoreError::Io {
                path: target.to_owned(),
                action: "write a copy to",
                source: std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "it exists already; choose a new name or an empty directory",
                ),
            });
        }
        let copy: Arc<dyn Kv> = match self.shared.backend {
            Backend::Redb => Arc::new(crate::store::redb::RedbKv::open(target, None)?),
            Backend::Sled => Arc::new(crate::store::sled::SledKv::open(target, None)?),
            Backend::Postgres => {
                return Err(StoreError::Config {
                    reason: "postgres is not an embedded store".into(),
                });
            }
        };
        let mut snap = self.shared.kv.snapshot()?;
        let mut batch: Vec<(Space, Vec<u8>, Vec<u8>)> = Vec::new();
        let mut bytes = 0usize;
        let flush = |batch: &mut Vec<(Space, Vec<u8>, Vec<u8>)>| {
            if batch.is_empty() {
                return Ok(());
            }
            copy.transact(&mut |txn| {
                for (space, key, value) in batch.iter() {
                    txn.put(*space, key, value)?;
                }
                Ok(())
            })?;
            batch.clear();
            Ok::<(), StoreError>(())
        };
        for space in Space::ALL {
            snap.scan_each(space, &[], None, &mut |key, value| {
                bytes += key.len() + value.len();
                batch.push((space, key.to_vec(), value.to_vec()));
                if bytes >= BATCH_BYTES {
                    flush(&mut batch)?;
                    bytes = 0;
                }
                Ok(())
            })?;
            // Each space's entries are committed before the next space's begin, so every
            // transaction writes in space and key order.
            flush(&mut batch)?;
            bytes = 0;
        }
        drop(snap);
        drop(copy);
        crate::store::make_private(target)?;
        Ok(())
    }
}
