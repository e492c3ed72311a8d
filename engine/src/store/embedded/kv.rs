//! The few operations a backend must provide: ordered key spaces of bytes, a consistent
//! snapshot to read, and one durable write transaction. Everything above them is shared, so
//! redb and sled differ only here.

use super::*;
use crate::store::StoreError;
use crate::store::codec::{self};

/// The key spaces. redb keeps each in its own table, with fixed-width keys where the layout
/// allows (no length per entry); sled keeps them in one tree behind a one-byte prefix, because
/// only a single tree's batch is atomic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Space {
    /// Variable keys, the first byte naming the record kind.
    Records,
    /// 8-byte chunk number → chunk.
    Messages,
    /// 8-byte hash → 8-byte sequence number.
    Dedupe,
    /// 16 bytes → nothing.
    Time,
    /// Format 3's replies waiting to be sent, 8-byte id → 1-byte channel code: only `upgrade`
    /// reads it, and moves it into [`Space::Waiting`].
    Pending,
    /// 8-byte id → outbox record.
    Outbox,
    /// 8-byte chunk number → the replies to the chunk's messages that wait to be sent
    /// ([`super::waiting`]). One record a chunk rather than a key a reply: every key inserted
    /// costs the writer a walk of its B-tree leaf, whatever its order.
    Waiting,
}

impl Space {
    /// In the order of their codes (sled's key prefixes), which is the order a transaction's
    /// writes go to the backend in.
    pub const ALL: [Space; 7] = [
        Space::Records,
        Space::Messages,
        Space::Dedupe,
        Space::Time,
        Space::Pending,
        Space::Outbox,
        Space::Waiting,
    ];

    /// The key length of a fixed-width space.
    pub fn key_len(self) -> Option<usize> {
        match self {
            Space::Records => None,
            Space::Messages | Space::Dedupe | Space::Pending | Space::Outbox | Space::Waiting => {
                Some(8)
            }
            Space::Time => Some(16),
        }
    }

    pub fn code(self) -> u8 {
        self as u8
    }
}

/// Reading committed data (or, in a [`KvTxn`], the data as it was when the transaction began:
/// the writer keeps its own writes in an overlay until the end).
pub trait KvRead {
    fn get(&mut self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;

    /// Entries with `start <= key < end` (no `end`: to the end of the space), in key order, at
    /// most `limit`.
    fn scan(
        &mut self,
        space: Space,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<KvPairs, StoreError>;

    /// The entries with `start <= key < end` (no `end`: to the end of the space), in key
    /// order, each handed to `each` without a copy; stops at the first error. For long scans,
    /// where a page of copies would cost an allocation per key and value.
    fn scan_each(
        &mut self,
        space: Space,
        start: &[u8],
        end: Option<&[u8]>,
        each: &mut EachEntry<'_>,
    ) -> Result<(), StoreError> {
        const PAGE: usize = 1024;
        let mut start = start.to_vec();
        loop {
            let page = self.scan(space, &start, end, PAGE)?;
            for (k, v) in &page {
                each(k, v)?;
            }
            match page.last() {
                Some((k, _)) if page.len() == PAGE => match space.key_len() {
                    Some(_) => match key::successor(k) {
                        Some(next) => start = next,
                        None => return Ok(()),
                    },
                    None => start = key::after(k),
                },
                _ => return Ok(()),
            }
        }
    }
}

/// The few operations a backend must provide. Keys and values are bytes; the layout above is
/// this module's business.
pub trait Kv: Send + Sync + 'static {
    /// A consistent view of committed data, for one method call.
    fn snapshot(&self) -> Result<Box<dyn KvRead + '_>, StoreError>;

    /// Runs `f` exactly once in a write transaction and commits it; returns only when the
    /// commit is durable. If `f` fails, nothing of it is written.
    fn transact(
        &self,
        f: &mut dyn FnMut(&mut dyn KvTxn) -> Result<(), StoreError>,
    ) -> Result<(), StoreError>;

    fn size_on_disk(&self) -> Result<u64, StoreError>;

    /// How large a message chunk may grow: what fills one leaf page.
    fn chunk_bytes(&self) -> usize {
        codec::CHUNK_BYTES
    }
}

pub type KvPairs = Vec<(Vec<u8>, Vec<u8>)>;

/// What [`KvRead::scan_each`] hands each key and value to.
pub type EachEntry<'a> = dyn FnMut(&[u8], &[u8]) -> Result<(), StoreError> + 'a;

/// The write transaction. Writes arrive sorted by space and key, after all reads.
pub trait KvTxn: KvRead {
    fn put(&mut self, space: Space, key: &[u8], value: &[u8]) -> Result<(), StoreError>;
    fn delete(&mut self, space: Space, key: &[u8]) -> Result<(), StoreError>;
}
