//! The symbol table of decision strings: each distinct rulebook string stored once, decisions
//! refer to it by number.

use std::sync::{Arc, RwLock, RwLockReadGuard};

use rustc_hash::FxHashMap;

use crate::store::StoreError;

// --- symbols ---------------------------------------------------------------------------------

/// The symbol table as this process knows it: every committed symbol, both ways. The writer
/// adds to it only after the commit that stored the new symbols is durable.
#[derive(Default)]
pub struct Symbols {
    inner: RwLock<SymbolMaps>,
}

/// Fx hashing: the keys are rulebook strings (message content is never interned), so nobody
/// outside can choose them to collide, and every string of every decision is looked up here.
#[derive(Default)]
pub(super) struct SymbolMaps {
    by_text: FxHashMap<Arc<str>, u32>,
    by_id: FxHashMap<u32, Arc<str>>,
}

impl Symbols {
    pub fn insert(&self, id: u32, text: Arc<str>) {
        if let Ok(mut maps) = self.inner.write() {
            maps.by_text.insert(Arc::clone(&text), id);
            maps.by_id.insert(id, text);
        }
    }

    pub fn id_of(&self, text: &str) -> Option<u32> {
        self.inner.read().ok()?.by_text.get(text).copied()
    }

    /// The committed symbols, for encoding one record in the caller's thread. The read lock is
    /// taken once for all of the record's strings: taken per string, its counter (shared with
    /// every other thread that encodes) was a quarter of what encoding cost.
    pub fn committed(&self) -> Committed<'_> {
        Committed {
            maps: self.inner.read().ok(),
            missing: false,
        }
    }

    pub fn text_of(&self, id: u32) -> Option<Arc<str>> {
        self.inner.read().ok()?.by_id.get(&id).cloned()
    }

    pub fn len(&self) -> usize {
        self.inner.read().map(|m| m.by_id.len()).unwrap_or_default()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Interning during encoding. The writer implements it with symbols that become part of the
/// same transaction as the record that uses them.
pub trait Intern {
    fn intern(&mut self, text: &str) -> Result<u32, StoreError>;
}

/// Interning with the committed symbols only, in the caller's thread, so the writer does not
/// have to encode: `missing` says a string had no symbol yet, and the record must be encoded
/// again by the writer (which can add symbols). It holds the table's read lock
/// ([`Symbols::committed`]): keep it for one record, so the writer can add symbols between.
pub struct Committed<'a> {
    /// `None` when the lock is poisoned: then no string has a symbol, as with [`Symbols::id_of`].
    maps: Option<RwLockReadGuard<'a, SymbolMaps>>,
    pub missing: bool,
}

impl Intern for Committed<'_> {
    fn intern(&mut self, text: &str) -> Result<u32, StoreError> {
        match self
            .maps
            .as_ref()
            .and_then(|m| m.by_text.get(text).copied())
        {
            Some(id) => Ok(id),
            None => {
                self.missing = true;
                Ok(0)
            }
        }
    }
}

/// Resolving during decoding.
pub trait Resolve {
    fn resolve(&mut self, id: u32) -> Result<Arc<str>, StoreError>;
}
