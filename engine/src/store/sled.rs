//! The sled backend (`=0.34.7`, the last stable release), kept because the design card names
//! it. Its traps shape this file (DESIGN.md §3): sled only fsyncs every 500 ms on its own, so
//! every commit here is followed by `flush()` before anybody is told it is stored; and a damaged
//! sled directory can make sled panic instead of returning an error, so opening is guarded.
//!
//! sled also "recovers" a log it cannot read by starting empty and overwriting it, which
//! would be a silent re-initialisation; so before sled touches an existing store, this file
//! checks that sled will find at least one intact segment (see [`check_segments`]).
//!
//! Atomicity comes from `apply_batch` on a single tree: the writer buffers a transaction's
//! writes in an overlay (which its own reads see) and applies them as one batch. Isolation comes
//! from the single writer in `embedded`, so sled's own transactions (which cannot scan) are not
//! needed.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use super::StoreError;
use super::embedded::{Kv, KvPairs, KvTxn};

pub struct SledKv {
    db: sled::Db,
    path: PathBuf,
}

fn error(path: &Path, e: sled::Error) -> StoreError {
    match e {
        sled::Error::Corruption { .. } => StoreError::Corrupt {
            path: path.to_owned(),
            reason: e.to_string(),
        },
        sled::Error::Io(source) if source.kind() == std::io::ErrorKind::WouldBlock => {
            StoreError::Locked {
                path: path.to_owned(),
            }
        }
        sled::Error::Io(source) => StoreError::Io {
            path: path.to_owned(),
            action: "use the store",
            source,
        },
        other => StoreError::Backend {
            path: path.to_owned(),
            reason: other.to_string(),
        },
    }
}

/// sled's segment size; set explicitly because [`check_segments`] depends on it.
const SEGMENT_SIZE: usize = 512 * 1024;
/// A segment header: crc32 (little-endian, inverted) of the 16 bytes after it, two LSNs.
const SEGMENT_HEADER_LEN: usize = 20;

/// Refuses a non-empty log in which no segment has an intact header: sled would treat it as
/// an empty store and overwrite it. This reads what sled's own recovery reads first, and
/// nothing is written.
fn check_segments(path: &Path) -> Result<(), StoreError> {
    use std::io::{Read, Seek, SeekFrom};
    let log = path.join("db");
    let io = |source| StoreError::Io {
        path: log.clone(),
        action: "read",
        source,
    };
    let mut file = match std::fs::File::open(&log) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io(e)),
    };
    let len = file.metadata().map_err(io)?.len();
    if len == 0 {
        return Ok(());
    }
    let mut offset = 0;
    while offset + SEGMENT_HEADER_LEN as u64 <= len {
        let mut header = [0u8; SEGMENT_HEADER_LEN];
        file.seek(SeekFrom::Start(offset)).map_err(io)?;
        file.read_exact(&mut header).map_err(io)?;
        let stored = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) ^ u32::MAX;
        if crc32fast::hash(&header[4..]) == stored {
            return Ok(());
        }
        offset += SEGMENT_SIZE as u64;
    }
    Err(StoreError::Corrupt {
        path: path.to_owned(),
        reason: format!("no intact segment in `{}`", log.display()),
    })
}

impl SledKv {
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        check_segments(path)?;
        let config = sled::Config::new()
            .path(path)
            .segment_size(SEGMENT_SIZE)
            // We flush on every commit; the background flusher would only add I/O.
            .flush_every_ms(None)
            .mode(sled::Mode::HighThroughput);
        let opened = catch_unwind(AssertUnwindSafe(|| config.open()));
        let db = match opened {
            Ok(Ok(db)) => db,
            Ok(Err(e)) => return Err(error(path, e)),
            Err(panic) => {
                let reason = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_else(|| "sled panicked while reading it".to_owned());
                return Err(StoreError::Corrupt {
                    path: path.to_owned(),
                    reason,
                });
            }
        };
        Ok(SledKv {
            db,
            path: path.to_owned(),
        })
    }
}

fn scan_tree(
    tree: &sled::Tree,
    path: &Path,
    start: &[u8],
    end: &[u8],
    limit: usize,
) -> Result<KvPairs, StoreError> {
    let mut out = Vec::new();
    for entry in tree.range(start..end) {
        if out.len() >= limit {
            break;
        }
        let (k, v) = entry.map_err(|e| error(path, e))?;
        out.push((k.to_vec(), v.to_vec()));
    }
    Ok(out)
}

impl Kv for SledKv {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.db
            .get(key)
            .map(|v| v.map(|v| v.to_vec()))
            .map_err(|e| error(&self.path, e))
    }

    fn scan(&self, start: &[u8], end: &[u8], limit: usize) -> Result<KvPairs, StoreError> {
        scan_tree(&self.db, &self.path, start, end, limit)
    }

    fn transact(
        &self,
        f: &mut dyn FnMut(&mut dyn KvTxn) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut txn = SledTxn {
            tree: &self.db,
            path: &self.path,
            overlay: BTreeMap::new(),
        };
        f(&mut txn)?;
        if txn.overlay.is_empty() {
            return Ok(());
        }
        let mut batch = sled::Batch::default();
        for (k, v) in txn.overlay {
            match v {
                Some(v) => batch.insert(k, v),
                None => batch.remove(k),
            }
        }
        self.db
            .apply_batch(batch)
            .map_err(|e| error(&self.path, e))?;
        // The acknowledgement waits for this: without it sled would lose up to 500 ms.
        self.db.flush().map_err(|e| error(&self.path, e))?;
        Ok(())
    }

    fn size_on_disk(&self) -> Result<u64, StoreError> {
        self.db.size_on_disk().map_err(|e| error(&self.path, e))
    }
}

/// The uncommitted writes of one transaction, over the committed tree.
struct SledTxn<'t> {
    tree: &'t sled::Tree,
    path: &'t Path,
    /// `None` is a delete.
    overlay: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

impl KvTxn for SledTxn<'_> {
    fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        if let Some(v) = self.overlay.get(key) {
            return Ok(v.clone());
        }
        self.tree
            .get(key)
            .map(|v| v.map(|v| v.to_vec()))
            .map_err(|e| error(self.path, e))
    }

    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.overlay.insert(key.to_vec(), Some(value.to_vec()));
        Ok(())
    }

    fn delete(&mut self, key: &[u8]) -> Result<(), StoreError> {
        self.overlay.insert(key.to_vec(), None);
        Ok(())
    }

    /// Merges the tree's entries with the overlay's; the overlay wins on equal keys.
    fn scan(&mut self, start: &[u8], end: &[u8], limit: usize) -> Result<KvPairs, StoreError> {
        let mut overlay = self
            .overlay
            .range::<[u8], _>((
                std::ops::Bound::Included(start),
                std::ops::Bound::Excluded(end),
            ))
            .peekable();
        let mut tree = self.tree.range(start..end).peekable();
        let mut out = Vec::new();
        while out.len() < limit {
            let tree_key = match tree.peek() {
                Some(Ok((k, _))) => Some(k.to_vec()),
                Some(Err(_)) => {
                    if let Some(Err(e)) = tree.next() {
                        return Err(error(self.path, e));
                    }
                    continue;
                }
                None => None,
            };
            let take_overlay = match (overlay.peek(), &tree_key) {
                (None, None) => break,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (Some((ok, _)), Some(tk)) => ok.as_slice() <= tk.as_slice(),
            };
            if take_overlay {
                if let Some((k, v)) = overlay.next() {
                    if tree_key.as_deref() == Some(k.as_slice()) {
                        tree.next();
                    }
                    if let Some(v) = v {
                        out.push((k.clone(), v.clone()));
                    }
                }
            } else if let Some(Ok((k, v))) = tree.next() {
                out.push((k.to_vec(), v.to_vec()));
            }
        }
        Ok(out)
    }
}
