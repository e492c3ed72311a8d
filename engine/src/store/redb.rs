//! The redb backend, the default: one file (`webcare.redb`), copy-on-write B-trees with a
//! stable file format, and commits that are fsynced before they return
//! (`Durability::Immediate`, set explicitly so a future default cannot weaken it). After a
//! crash redb repairs the file on open from the last durable commit.

use std::path::{Path, PathBuf};

use redb::{Database, Durability, ReadableTable, TableDefinition};

use super::StoreError;
use super::embedded::{Kv, KvPairs, KvTxn};

/// One table holds every record; the key's first byte says which kind (see `embedded`).
const DATA: TableDefinition<&[u8], &[u8]> = TableDefinition::new("webcare");

pub struct RedbKv {
    db: Database,
    path: PathBuf,
}

/// Turns redb's errors into ours; a damaged file becomes [`StoreError::Corrupt`].
fn error(path: &Path, e: impl Into<redb::Error>) -> StoreError {
    match e.into() {
        redb::Error::Corrupted(reason) => StoreError::Corrupt {
            path: path.to_owned(),
            reason,
        },
        redb::Error::DatabaseAlreadyOpen => StoreError::Locked {
            path: path.to_owned(),
        },
        redb::Error::UpgradeRequired(version) => StoreError::Corrupt {
            path: path.to_owned(),
            reason: format!("written in the old redb file format {version}"),
        },
        other => StoreError::Backend {
            path: path.to_owned(),
            reason: other.to_string(),
        },
    }
}

impl RedbKv {
    /// Opens `path`, creating it when it does not exist. redb refuses a file that is not a redb
    /// database, so existing data is never overwritten.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = match Database::create(path) {
            Ok(db) => db,
            Err(redb::DatabaseError::Storage(redb::StorageError::Io(source)))
                if source.kind() == std::io::ErrorKind::PermissionDenied =>
            {
                return Err(StoreError::Io {
                    path: path.to_owned(),
                    action: "open the store",
                    source,
                });
            }
            // A file that is not a redb database at all fails with an I/O error
            // (unexpected end of file, bad header) rather than `Corrupted`.
            Err(redb::DatabaseError::Storage(redb::StorageError::Io(source))) => {
                return Err(StoreError::Corrupt {
                    path: path.to_owned(),
                    reason: source.to_string(),
                });
            }
            Err(e) => return Err(error(path, e)),
        };
        let kv = RedbKv {
            db,
            path: path.to_owned(),
        };
        // Create the table up front, so readers never meet a missing table.
        kv.transact(&mut |_| Ok(()))?;
        Ok(kv)
    }
}

impl Kv for RedbKv {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.db.begin_read().map_err(|e| error(&self.path, e))?;
        let table = txn.open_table(DATA).map_err(|e| error(&self.path, e))?;
        let value = table.get(key).map_err(|e| error(&self.path, e))?;
        Ok(value.map(|v| v.value().to_vec()))
    }

    fn scan(&self, start: &[u8], end: &[u8], limit: usize) -> Result<KvPairs, StoreError> {
        let txn = self.db.begin_read().map_err(|e| error(&self.path, e))?;
        let table = txn.open_table(DATA).map_err(|e| error(&self.path, e))?;
        let mut out = Vec::new();
        for entry in table.range(start..end).map_err(|e| error(&self.path, e))? {
            if out.len() >= limit {
                break;
            }
            let (k, v) = entry.map_err(|e| error(&self.path, e))?;
            out.push((k.value().to_vec(), v.value().to_vec()));
        }
        Ok(out)
    }

    fn transact(
        &self,
        f: &mut dyn FnMut(&mut dyn KvTxn) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut txn = self.db.begin_write().map_err(|e| error(&self.path, e))?;
        txn.set_durability(Durability::Immediate);
        {
            let table = txn.open_table(DATA).map_err(|e| error(&self.path, e))?;
            let mut view = RedbTxn {
                table,
                path: &self.path,
            };
            // Dropping `txn` without commit on error aborts it: nothing of `f` is written.
            f(&mut view)?;
        }
        txn.commit().map_err(|e| error(&self.path, e))
    }

    fn size_on_disk(&self) -> Result<u64, StoreError> {
        std::fs::metadata(&self.path)
            .map(|m| m.len())
            .map_err(|source| StoreError::Io {
                path: self.path.clone(),
                action: "read the size of",
                source,
            })
    }
}

struct RedbTxn<'t> {
    table: redb::Table<'t, &'static [u8], &'static [u8]>,
    path: &'t Path,
}

impl KvTxn for RedbTxn<'_> {
    fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let value = self.table.get(key).map_err(|e| error(self.path, e))?;
        Ok(value.map(|v| v.value().to_vec()))
    }

    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.table
            .insert(key, value)
            .map(drop)
            .map_err(|e| error(self.path, e))
    }

    fn delete(&mut self, key: &[u8]) -> Result<(), StoreError> {
        self.table
            .remove(key)
            .map(drop)
            .map_err(|e| error(self.path, e))
    }

    fn scan(&mut self, start: &[u8], end: &[u8], limit: usize) -> Result<KvPairs, StoreError> {
        let mut out = Vec::new();
        for entry in self
            .table
            .range(start..end)
            .map_err(|e| error(self.path, e))?
        {
            if out.len() >= limit {
                break;
            }
            let (k, v) = entry.map_err(|e| error(self.path, e))?;
            out.push((k.value().to_vec(), v.value().to_vec()));
        }
        Ok(out)
    }
}
