//! The redb backend, the default: one file (`webcare.redb`), copy-on-write B-trees with a
//! stable file format, and commits that are fsynced before they return
//! (`Durability::Immediate`, set explicitly so a future default cannot weaken it). After a
//! crash redb repairs the file on open from the last durable commit.
//!
//! Each key space is its own table, and the index spaces have fixed-width keys and no values:
//! redb then stores an index entry as its 16 key bytes alone, where a variable-width entry
//! would carry two 4-byte lengths as well.
//!
//! After an I/O error (a full disk) redb refuses every later call ("previous I/O error") until
//! the database is opened again, so a store that filled the disk would refuse intake until a
//! restart. [`RedbKv`] closes a database in that state and opens it again on the next call:
//! redb repairs it from the last durable commit, and intake works again as soon as the disk
//! has room, without a restart.

use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::{PoisonError, RwLock, RwLockReadGuard};

use redb::{
    Database, Durability, ReadOnlyTable, ReadTransaction, ReadableDatabase, ReadableTable, Table,
    TableDefinition,
};

use super::StoreError;
use super::embedded::{EachEntry, Kv, KvPairs, KvRead, KvTxn, Space};

const RECORDS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("records");
const MESSAGES: TableDefinition<[u8; 8], &[u8]> = TableDefinition::new("messages");
const DEDUPE: TableDefinition<[u8; 8], [u8; 8]> = TableDefinition::new("dedupe");
const TIME: TableDefinition<[u8; 16], ()> = TableDefinition::new("time");
const PENDING: TableDefinition<[u8; 8], [u8; 1]> = TableDefinition::new("outbox_pending");
const OUTBOX: TableDefinition<[u8; 8], &[u8]> = TableDefinition::new("outbox");
const WAITING: TableDefinition<[u8; 8], &[u8]> = TableDefinition::new("outbox_waiting");

/// The tables behind the fixed-width spaces, grouped by shape.
enum Shape {
    Records,
    Id(TableDefinition<'static, [u8; 8], &'static [u8]>),
    Dedupe,
    Pending,
    Pair(TableDefinition<'static, [u8; 16], ()>),
}

fn shape(space: Space) -> Shape {
    match space {
        Space::Records => Shape::Records,
        Space::Messages => Shape::Id(MESSAGES),
        Space::Pending => Shape::Pending,
        Space::Outbox => Shape::Id(OUTBOX),
        Space::Waiting => Shape::Id(WAITING),
        Space::Dedupe => Shape::Dedupe,
        Space::Time => Shape::Pair(TIME),
    }
}

pub struct RedbKv {
    /// `None` once an I/O error closed it; the next call opens it again (see the module docs).
    db: RwLock<Option<Database>>,
    path: PathBuf,
    cache_bytes: Option<usize>,
}

/// Moves a store written with redb 2.6 (file format v2) to the v3 format redb 5 reads, with
/// 2.6's own `Database::upgrade`: it commits what is pending and then rewrites the header in
/// place, so every message, decision and case stays where it was. A store is upgraded once, on
/// its first open by this version.
fn upgrade_file_format(path: &Path) -> Result<(), StoreError> {
    let failed = |reason: String| StoreError::Backend {
        path: path.to_owned(),
        reason: format!(
            "the store was written by an older webcare (redb file format v2) and could not be \
             upgraded to the current format: {reason}"
        ),
    };
    let mut old = redb2::Database::open(path).map_err(|e| failed(e.to_string()))?;
    old.upgrade().map_err(|e| failed(e.to_string()))?;
    drop(old);
    tracing::info!(path = %path.display(), "the store was upgraded to redb's file format v3");
    Ok(())
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

/// A key or value of a fixed-width table; a wrong length is a bug in the layout, reported not
/// panicked.
fn fixed<const N: usize>(path: &Path, key: &[u8]) -> Result<[u8; N], StoreError> {
    key.try_into().map_err(|_| StoreError::Backend {
        path: path.to_owned(),
        reason: format!("{} bytes where {N} were expected", key.len()),
    })
}

/// A range over fixed-width keys.
type Bounds<const N: usize> = (Bound<[u8; N]>, Bound<[u8; N]>);

fn bounds<const N: usize>(
    path: &Path,
    start: &[u8],
    end: Option<&[u8]>,
) -> Result<Bounds<N>, StoreError> {
    // A short start (the beginning of a space) is padded: every key is at least that.
    let lower = if start.len() < N {
        let mut k = [0u8; N];
        k[..start.len()].copy_from_slice(start);
        k
    } else {
        fixed(path, start)?
    };
    let upper = match end {
        Some(end) => Bound::Excluded(fixed(path, end)?),
        None => Bound::Unbounded,
    };
    Ok((Bound::Included(lower), upper))
}

impl RedbKv {
    /// Opens `path`, creating it when it does not exist. redb refuses a file that is not a redb
    /// database, so existing data is never overwritten.
    pub fn open(path: &Path, cache_bytes: Option<usize>) -> Result<Self, StoreError> {
        // redb would start an empty file as a new, empty store: all history gone without a
        // word. An empty file where a store was is damage (a failed copy, a full disk).
        if std::fs::metadata(path).is_ok_and(|meta| meta.is_file() && meta.len() == 0) {
            return Err(StoreError::Corrupt {
                path: path.to_owned(),
                reason: "the file is empty (0 bytes)".into(),
            });
        }
        // redb asserts on some damage (a file cut short, a broken header) instead of returning
        // an error; that must be the same clear error, not a crash of every command.
        let opened = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            Self::open_checked(path, cache_bytes)
        }));
        opened.unwrap_or_else(|panic| {
            let reason = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("the storage engine stopped on it");
            Err(StoreError::Corrupt {
                path: path.to_owned(),
                reason: format!("damaged: {reason}"),
            })
        })
    }

    fn open_checked(path: &Path, cache_bytes: Option<usize>) -> Result<Self, StoreError> {
        let db = Self::create(path, cache_bytes)?;
        let kv = RedbKv {
            db: RwLock::new(Some(db)),
            path: path.to_owned(),
            cache_bytes,
        };
        // Create the tables up front, so readers never meet a missing table.
        kv.transact(&mut |_| Ok(()))?;
        Ok(kv)
    }

    fn create(path: &Path, cache_bytes: Option<usize>) -> Result<Database, StoreError> {
        let mut builder = Database::builder();
        if let Some(bytes) = cache_bytes {
            builder.set_cache_size(bytes);
        }
        let db = match builder.create(path) {
            Ok(db) => db,
            // A store written before webcare moved to redb 5: upgraded once, then opened.
            Err(redb::DatabaseError::UpgradeRequired(2)) => {
                upgrade_file_format(path)?;
                builder.create(path).map_err(|e| error(path, e))?
            }
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
        Ok(db)
    }

    /// The open database, opening it again when an I/O error closed it. Reopening fails
    /// while a snapshot of the old one is still read (its file lock is held); the next call
    /// tries again.
    fn database(&self) -> Result<RwLockReadGuard<'_, Option<Database>>, StoreError> {
        let guard = self.db.read().unwrap_or_else(PoisonError::into_inner);
        if guard.is_some() {
            return Ok(guard);
        }
        drop(guard);
        {
            let mut slot = self.db.write().unwrap_or_else(PoisonError::into_inner);
            if slot.is_none() {
                *slot = Some(Self::create(&self.path, self.cache_bytes)?);
                tracing::warn!(path = %self.path.display(), "the store was opened again after an I/O error");
            }
        }
        Ok(self.db.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// After a failed call: when redb now refuses every call (an I/O error failed it), closes
    /// the database so the next call opens it again.
    fn close_if_failed(&self, db: &Database) -> bool {
        let failed = matches!(
            db.begin_write(),
            Err(redb::TransactionError::Storage(
                redb::StorageError::PreviousIo | redb::StorageError::Io(_)
            ))
        );
        if failed {
            tracing::warn!(path = %self.path.display(), "the store failed with an I/O error (a full disk?); it is opened again on the next call");
        }
        failed
    }

    fn close(&self) {
        // Dropping the old database outside the lock's read side: it may flush on drop.
        let old = self
            .db
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        drop(old);
    }
}

fn get_var(
    path: &Path,
    table: &impl ReadableTable<&'static [u8], &'static [u8]>,
    key: &[u8],
) -> Result<Option<Vec<u8>>, StoreError> {
    let value = table.get(key).map_err(|e| error(path, e))?;
    Ok(value.map(|v| v.value().to_vec()))
}

fn get_id(
    path: &Path,
    table: &impl ReadableTable<[u8; 8], &'static [u8]>,
    key: &[u8],
) -> Result<Option<Vec<u8>>, StoreError> {
    let value = table
        .get(fixed::<8>(path, key)?)
        .map_err(|e| error(path, e))?;
    Ok(value.map(|v| v.value().to_vec()))
}

fn get_fixed<const N: usize>(
    path: &Path,
    table: &impl ReadableTable<[u8; 8], [u8; N]>,
    key: &[u8],
) -> Result<Option<Vec<u8>>, StoreError> {
    let value = table
        .get(fixed::<8>(path, key)?)
        .map_err(|e| error(path, e))?;
    Ok(value.map(|v| v.value().to_vec()))
}

/// [`KvRead::scan`] over a fixed-width table, whatever its values.
fn scan_fixed<const N: usize, V: redb::Value + 'static>(
    path: &Path,
    table: &impl ReadableTable<[u8; N], V>,
    start: &[u8],
    end: Option<&[u8]>,
    limit: usize,
) -> Result<KvPairs, StoreError> {
    collect(path, table.range(bounds::<N>(path, start, end)?), limit)
}

fn get_pair(
    path: &Path,
    table: &impl ReadableTable<[u8; 16], ()>,
    key: &[u8],
) -> Result<Option<Vec<u8>>, StoreError> {
    let value = table
        .get(fixed::<16>(path, key)?)
        .map_err(|e| error(path, e))?;
    Ok(value.map(|_| Vec::new()))
}

/// [`KvRead::scan`] over the table of variable keys.
fn scan_var(
    path: &Path,
    table: &impl ReadableTable<&'static [u8], &'static [u8]>,
    start: &[u8],
    end: Option<&[u8]>,
    limit: usize,
) -> Result<KvPairs, StoreError> {
    let upper = match end {
        Some(end) => Bound::Excluded(end),
        None => Bound::Unbounded,
    };
    collect(path, table.range((Bound::Included(start), upper)), limit)
}

/// Copies at most `limit` entries of a range out of the transaction.
fn collect<K: redb::Key + 'static, V: redb::Value + 'static>(
    path: &Path,
    range: Result<redb::Range<'_, K, V>, redb::StorageError>,
    limit: usize,
) -> Result<KvPairs, StoreError> {
    let mut out = Vec::new();
    for entry in range.map_err(|e| error(path, e))?.take(limit) {
        let (k, v) = entry.map_err(|e| error(path, e))?;
        out.push((
            K::as_bytes(&k.value()).as_ref().to_vec(),
            V::as_bytes(&v.value()).as_ref().to_vec(),
        ));
    }
    Ok(out)
}

/// [`KvRead::scan_each`] over a fixed-width table: one range, no copies.
fn each_fixed<const N: usize, V: redb::Value + 'static>(
    path: &Path,
    table: &impl ReadableTable<[u8; N], V>,
    start: &[u8],
    end: Option<&[u8]>,
    each: &mut EachEntry<'_>,
) -> Result<(), StoreError> {
    for entry in table
        .range(bounds::<N>(path, start, end)?)
        .map_err(|e| error(path, e))?
    {
        let (k, v) = entry.map_err(|e| error(path, e))?;
        let value = v.value();
        each(&k.value(), V::as_bytes(&value).as_ref())?;
    }
    Ok(())
}

type IdTable = ReadOnlyTable<[u8; 8], &'static [u8]>;
type PairTable = ReadOnlyTable<[u8; 16], ()>;

/// A read transaction; tables are opened on first use and kept for the snapshot's life.
struct RedbRead<'a> {
    txn: ReadTransaction,
    path: &'a Path,
    records: Option<ReadOnlyTable<&'static [u8], &'static [u8]>>,
    dedupe: Option<ReadOnlyTable<[u8; 8], [u8; 8]>>,
    pending: Option<ReadOnlyTable<[u8; 8], [u8; 1]>>,
    ids: Vec<(Space, IdTable)>,
    pairs: Vec<(Space, PairTable)>,
}

/// The table in `slot`, opened from `def` on first use.
fn opened<'s, K: redb::Key + 'static, V: redb::Value + 'static>(
    txn: &ReadTransaction,
    path: &Path,
    slot: &'s mut Option<ReadOnlyTable<K, V>>,
    def: TableDefinition<'static, K, V>,
) -> Result<&'s ReadOnlyTable<K, V>, StoreError> {
    let table = match slot.take() {
        Some(table) => table,
        None => txn.open_table(def).map_err(|e| error(path, e))?,
    };
    Ok(slot.insert(table))
}

/// The table of `space` among `tables`, opened from `def` on first use.
fn opened_for<'s, K: redb::Key + 'static, V: redb::Value + 'static>(
    txn: &ReadTransaction,
    path: &Path,
    tables: &'s mut Vec<(Space, ReadOnlyTable<K, V>)>,
    space: Space,
    def: TableDefinition<'static, K, V>,
) -> Result<&'s ReadOnlyTable<K, V>, StoreError> {
    let at = match tables.iter().position(|(s, _)| *s == space) {
        Some(at) => at,
        None => {
            tables.push((space, txn.open_table(def).map_err(|e| error(path, e))?));
            tables.len() - 1
        }
    };
    Ok(&tables[at].1)
}

impl RedbRead<'_> {
    fn records(&mut self) -> Result<&ReadOnlyTable<&'static [u8], &'static [u8]>, StoreError> {
        opened(&self.txn, self.path, &mut self.records, RECORDS)
    }

    fn dedupe(&mut self) -> Result<&ReadOnlyTable<[u8; 8], [u8; 8]>, StoreError> {
        opened(&self.txn, self.path, &mut self.dedupe, DEDUPE)
    }

    fn pending(&mut self) -> Result<&ReadOnlyTable<[u8; 8], [u8; 1]>, StoreError> {
        opened(&self.txn, self.path, &mut self.pending, PENDING)
    }

    fn id_table(
        &mut self,
        space: Space,
        def: TableDefinition<'static, [u8; 8], &'static [u8]>,
    ) -> Result<&IdTable, StoreError> {
        opened_for(&self.txn, self.path, &mut self.ids, space, def)
    }

    fn pair_table(
        &mut self,
        space: Space,
        def: TableDefinition<'static, [u8; 16], ()>,
    ) -> Result<&PairTable, StoreError> {
        opened_for(&self.txn, self.path, &mut self.pairs, space, def)
    }
}

impl KvRead for RedbRead<'_> {
    fn get(&mut self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let path = self.path;
        match shape(space) {
            Shape::Records => get_var(path, self.records()?, key),
            Shape::Dedupe => get_fixed(path, self.dedupe()?, key),
            Shape::Pending => get_fixed(path, self.pending()?, key),
            Shape::Id(def) => get_id(path, self.id_table(space, def)?, key),
            Shape::Pair(def) => get_pair(path, self.pair_table(space, def)?, key),
        }
    }

    fn scan(
        &mut self,
        space: Space,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<KvPairs, StoreError> {
        let path = self.path;
        match shape(space) {
            Shape::Records => scan_var(path, self.records()?, start, end, limit),
            Shape::Dedupe => scan_fixed(path, self.dedupe()?, start, end, limit),
            Shape::Pending => scan_fixed(path, self.pending()?, start, end, limit),
            Shape::Id(def) => scan_fixed(path, self.id_table(space, def)?, start, end, limit),
            Shape::Pair(def) => scan_fixed(path, self.pair_table(space, def)?, start, end, limit),
        }
    }

    fn scan_each(
        &mut self,
        space: Space,
        start: &[u8],
        end: Option<&[u8]>,
        each: &mut EachEntry<'_>,
    ) -> Result<(), StoreError> {
        let path = self.path;
        match shape(space) {
            Shape::Records => {
                let upper = match end {
                    Some(end) => Bound::Excluded(end),
                    None => Bound::Unbounded,
                };
                for entry in self
                    .records()?
                    .range((Bound::Included(start), upper))
                    .map_err(|e| error(path, e))?
                {
                    let (k, v) = entry.map_err(|e| error(path, e))?;
                    each(k.value(), v.value())?;
                }
                Ok(())
            }
            Shape::Dedupe => each_fixed(path, self.dedupe()?, start, end, each),
            Shape::Pending => each_fixed(path, self.pending()?, start, end, each),
            Shape::Id(def) => each_fixed(path, self.id_table(space, def)?, start, end, each),
            Shape::Pair(def) => each_fixed(path, self.pair_table(space, def)?, start, end, each),
        }
    }
}

impl Kv for RedbKv {
    fn snapshot(&self) -> Result<Box<dyn KvRead + '_>, StoreError> {
        let guard = self.database()?;
        let db = guard.as_ref().ok_or_else(|| closed(&self.path))?;
        let txn = match db.begin_read() {
            Ok(txn) => txn,
            Err(e) => {
                let failed = self.close_if_failed(db);
                drop(guard);
                if failed {
                    self.close();
                }
                return Err(error(&self.path, e));
            }
        };
        Ok(Box::new(RedbRead {
            txn,
            path: &self.path,
            records: None,
            dedupe: None,
            pending: None,
            ids: Vec::new(),
            pairs: Vec::new(),
        }))
    }

    fn transact(
        &self,
        f: &mut dyn FnMut(&mut dyn KvTxn) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let guard = self.database()?;
        let db = guard.as_ref().ok_or_else(|| closed(&self.path))?;
        let result = self.transact_on(db, f);
        // A write that failed may have failed the database: then it is opened again.
        if result.is_err() && self.close_if_failed(db) {
            drop(guard);
            self.close();
        }
        result
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

/// A call that met the database closed between reopening and reading (another thread's call
/// failed it meanwhile): retry.
fn closed(path: &Path) -> StoreError {
    StoreError::Backend {
        path: path.to_owned(),
        reason: "the store is being opened again after an I/O error; retry".into(),
    }
}

impl RedbKv {
    fn transact_on(
        &self,
        db: &Database,
        f: &mut dyn FnMut(&mut dyn KvTxn) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut txn = db.begin_write().map_err(|e| error(&self.path, e))?;
        txn.set_durability(Durability::Immediate)
            .map_err(|e| error(&self.path, e))?;
        {
            let open_err = |e| error(&self.path, e);
            let mut view = RedbTxn {
                path: &self.path,
                records: txn.open_table(RECORDS).map_err(open_err)?,
                messages: txn.open_table(MESSAGES).map_err(open_err)?,
                pending: txn.open_table(PENDING).map_err(open_err)?,
                outbox: txn.open_table(OUTBOX).map_err(open_err)?,
                waiting: txn.open_table(WAITING).map_err(open_err)?,
                dedupe: txn.open_table(DEDUPE).map_err(open_err)?,
                time: txn.open_table(TIME).map_err(open_err)?,
            };
            // Dropping `txn` without commit on error aborts it: nothing of `f` is written.
            f(&mut view)?;
        }
        txn.commit().map_err(|e| error(&self.path, e))
    }
}

struct RedbTxn<'t> {
    path: &'t Path,
    records: Table<'t, &'static [u8], &'static [u8]>,
    messages: Table<'t, [u8; 8], &'static [u8]>,
    pending: Table<'t, [u8; 8], [u8; 1]>,
    outbox: Table<'t, [u8; 8], &'static [u8]>,
    waiting: Table<'t, [u8; 8], &'static [u8]>,
    dedupe: Table<'t, [u8; 8], [u8; 8]>,
    time: Table<'t, [u8; 16], ()>,
}

impl<'t> RedbTxn<'t> {
    fn id_table(&mut self, space: Space) -> Option<&mut Table<'t, [u8; 8], &'static [u8]>> {
        match space {
            Space::Messages => Some(&mut self.messages),
            Space::Outbox => Some(&mut self.outbox),
            Space::Waiting => Some(&mut self.waiting),
            _ => None,
        }
    }

    fn pair_table(&mut self, space: Space) -> Option<&mut Table<'t, [u8; 16], ()>> {
        match space {
            Space::Time => Some(&mut self.time),
            _ => None,
        }
    }
}

impl KvRead for RedbTxn<'_> {
    fn get(&mut self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let path = self.path;
        if space == Space::Dedupe {
            return get_fixed(path, &self.dedupe, key);
        }
        if space == Space::Pending {
            return get_fixed(path, &self.pending, key);
        }
        if let Some(t) = self.id_table(space) {
            return get_id(path, t, key);
        }
        if let Some(t) = self.pair_table(space) {
            return get_pair(path, t, key);
        }
        get_var(path, &self.records, key)
    }

    fn scan(
        &mut self,
        space: Space,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<KvPairs, StoreError> {
        let path = self.path;
        if space == Space::Dedupe {
            return scan_fixed(path, &self.dedupe, start, end, limit);
        }
        if space == Space::Pending {
            return scan_fixed(path, &self.pending, start, end, limit);
        }
        if let Some(t) = self.id_table(space) {
            return scan_fixed(path, t, start, end, limit);
        }
        if let Some(t) = self.pair_table(space) {
            return scan_fixed(path, t, start, end, limit);
        }
        scan_var(path, &self.records, start, end, limit)
    }
}

impl KvTxn for RedbTxn<'_> {
    fn put(&mut self, space: Space, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        let path = self.path;
        if space == Space::Dedupe {
            return self
                .dedupe
                .insert(fixed::<8>(path, key)?, fixed::<8>(path, value)?)
                .map(drop)
                .map_err(|e| error(path, e));
        }
        if space == Space::Pending {
            return self
                .pending
                .insert(fixed::<8>(path, key)?, fixed::<1>(path, value)?)
                .map(drop)
                .map_err(|e| error(path, e));
        }
        if let Some(t) = self.id_table(space) {
            return t
                .insert(fixed::<8>(path, key)?, value)
                .map(drop)
                .map_err(|e| error(path, e));
        }
        if let Some(t) = self.pair_table(space) {
            return t
                .insert(fixed::<16>(path, key)?, ())
                .map(drop)
                .map_err(|e| error(path, e));
        }
        self.records
            .insert(key, value)
            .map(drop)
            .map_err(|e| error(path, e))
    }

    fn delete(&mut self, space: Space, key: &[u8]) -> Result<(), StoreError> {
        let path = self.path;
        if space == Space::Dedupe {
            return self
                .dedupe
                .remove(fixed::<8>(path, key)?)
                .map(drop)
                .map_err(|e| error(path, e));
        }
        if space == Space::Pending {
            return self
                .pending
                .remove(fixed::<8>(path, key)?)
                .map(drop)
                .map_err(|e| error(path, e));
        }
        if let Some(t) = self.id_table(space) {
            return t
                .remove(fixed::<8>(path, key)?)
                .map(drop)
                .map_err(|e| error(path, e));
        }
        if let Some(t) = self.pair_table(space) {
            return t
                .remove(fixed::<16>(path, key)?)
                .map(drop)
                .map_err(|e| error(path, e));
        }
        self.records
            .remove(key)
            .map(drop)
            .map_err(|e| error(path, e))
    }
}
