//! The process-wide cache of trained classifiers: the test suite and a rulebook reload compile
//! the same examples many times, and training them again each time would dominate.

use super::*;

/// Enough for the default rulebook, a candidate and a few test rulebooks; each entry is a
/// few megabytes at most.
pub(super) const CAPACITY: usize = 8;

pub(super) type Slot = Arc<OnceLock<Arc<Classifier>>>;

#[derive(Default)]
pub(super) struct Cache {
    slots: HashMap<[u8; 32], Slot>,
    /// Oldest first, for eviction.
    order: VecDeque<[u8; 32]>,
}

impl Cache {
    /// The slot for `key`; a new, empty one (evicting the oldest when full) if it is not
    /// cached.
    pub(super) fn slot(&mut self, key: [u8; 32]) -> Slot {
        if let Some(slot) = self.slots.get(&key) {
            return Arc::clone(slot);
        }
        if self.order.len() >= CAPACITY
            && let Some(oldest) = self.order.pop_front()
        {
            self.slots.remove(&oldest);
        }
        let slot = Slot::default();
        self.slots.insert(key, Arc::clone(&slot));
        self.order.push_back(key);
        slot
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.slots.len()
    }
}

static CACHE: OnceLock<Mutex<Cache>> = OnceLock::new();

/// The process-wide slot for `key`. The lock is held only to find the slot; training
/// happens in the slot's `OnceLock`, so different example sets train in parallel and the
/// same set trains once.
pub(super) fn slot(key: [u8; 32]) -> Slot {
    // A panic while the lock was held cannot leave the cache in a state that matters: at
    // worst a slot is missing and its examples are trained again.
    CACHE
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .slot(key)
}
