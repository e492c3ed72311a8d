//! The sled backend (`=0.34.7`, the last stable release), kept because the design card names
//! it. Its traps shape this file (DESIGN.md §3): sled only fsyncs every 500 ms on its own, so
//! every commit here is followed by `flush()` before anybody is told it is stored; and a damaged
//! sled directory can make sled panic instead of returning an error, so opening is guarded.
//!
//! sled also "recovers" a log it cannot read by starting empty and overwriting it, which
//! would be a silent re-initialisation; so before sled touches an existing store, this file
//! checks that sled will find at least one intact segment (see [`check_segments`]).
//!
//! Atomicity comes from `apply_batch` on a single tree (every key space behind a one-byte
//! prefix): the writer in `embedded` keeps a transaction's writes in its overlay (which its own
//! reads see) and hands them over sorted at the end, applied as one batch. Isolation comes from
//! that single writer, so sled's own transactions (which cannot scan) are not needed.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use super::StoreError;
use super::embedded::{Kv, KvPairs, KvRead, KvTxn, Space};

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
        // sled reports another process's lock as an error of its own kind ("could not acquire
        // lock on …", kind `Other`), with the `WouldBlock` only inside its message.
        sled::Error::Io(source)
            if source.kind() == std::io::ErrorKind::WouldBlock
                || source.to_string().starts_with("could not acquire lock") =>
        {
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
    pub fn open(path: &Path, cache_bytes: Option<usize>) -> Result<Self, StoreError> {
        check_segments(path)?;
        let mut config = sled::Config::new();
        if let Some(bytes) = cache_bytes {
            config = config.cache_capacity(bytes as u64);
        }
        let config = config
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

/// The tree key of `key` in `space`.
fn tree_key(space: Space, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + key.len());
    k.push(space.code());
    k.extend_from_slice(key);
    k
}

fn get(
    tree: &sled::Tree,
    path: &Path,
    space: Space,
    key: &[u8],
) -> Result<Option<Vec<u8>>, StoreError> {
    tree.get(tree_key(space, key))
        .map(|v| v.map(|v| v.to_vec()))
        .map_err(|e| error(path, e))
}

fn scan(
    tree: &sled::Tree,
    path: &Path,
    space: Space,
    start: &[u8],
    end: Option<&[u8]>,
    limit: usize,
) -> Result<KvPairs, StoreError> {
    let start = tree_key(space, start);
    let end = match end {
        Some(end) => tree_key(space, end),
        None => vec![space.code() + 1],
    };
    let mut out = Vec::new();
    for entry in tree.range(start..end) {
        if out.len() >= limit {
            break;
        }
        let (k, v) = entry.map_err(|e| error(path, e))?;
        out.push((k[1..].to_vec(), v.to_vec()));
    }
    Ok(out)
}

/// Reads go straight to the tree: sled has no snapshots, and each key it returns is committed.
struct SledRead<'a> {
    tree: &'a sled::Tree,
    path: &'a Path,
}

impl KvRead for SledRead<'_> {
    fn get(&mut self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        get(self.tree, self.path, space, key)
    }

    fn scan(
        &mut self,
        space: Space,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<KvPairs, StoreError> {
        scan(self.tree, self.path, space, start, end, limit)
    }
}

impl Kv for SledKv {
    fn snapshot(&self) -> Result<Box<dyn KvRead + '_>, StoreError> {
        Ok(Box::new(SledRead {
            tree: &self.db,
            path: &self.path,
        }))
    }

    fn transact(
        &self,
        f: &mut dyn FnMut(&mut dyn KvTxn) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut txn = SledTxn {
            tree: &self.db,
            path: &self.path,
            batch: sled::Batch::default(),
            writes: 0,
        };
        f(&mut txn)?;
        if txn.writes == 0 {
            return Ok(());
        }
        self.db
            .apply_batch(txn.batch)
            .map_err(|e| error(&self.path, e))?;
        // The acknowledgement waits for this: without it sled would lose up to 500 ms.
        self.db.flush().map_err(|e| error(&self.path, e))?;
        Ok(())
    }

    fn size_on_disk(&self) -> Result<u64, StoreError> {
        self.db.size_on_disk().map_err(|e| error(&self.path, e))
    }

    /// sled has no fixed pages to fill, and it writes a changed value out whole on every
    /// commit that touches it (the last chunk, in every commit): smaller chunks write less.
    /// 1 KiB measured 13% smaller than 4 KiB in the store benchmark.
    fn chunk_bytes(&self) -> usize {
        1024
    }
}

/// One transaction's writes, applied as one batch. Reads see only committed data: the writer
/// in `embedded` keeps its own overlay and hands the writes over at the end.
struct SledTxn<'t> {
    tree: &'t sled::Tree,
    path: &'t Path,
    batch: sled::Batch,
    writes: usize,
}

impl KvRead for SledTxn<'_> {
    fn get(&mut self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        get(self.tree, self.path, space, key)
    }

    fn scan(
        &mut self,
        space: Space,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<KvPairs, StoreError> {
        scan(self.tree, self.path, space, start, end, limit)
    }
}

impl KvTxn for SledTxn<'_> {
    fn put(&mut self, space: Space, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.writes += 1;
        self.batch.insert(tree_key(space, key), value);
        Ok(())
    }

    fn delete(&mut self, space: Space, key: &[u8]) -> Result<(), StoreError> {
        self.writes += 1;
        self.batch.remove(tree_key(space, key));
        Ok(())
    }
}
