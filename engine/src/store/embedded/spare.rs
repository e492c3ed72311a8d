//! Vectors kept between intake batches, so each batch does not fault in fresh pages.

use super::intake::{Placed, Prepared};

/// The emptied vectors of batches written before, for the next batches. A batch's vectors are
/// megabytes (a [`Prepared`] is about a kilobyte, a batch thousands of them); made new for
/// each batch, the allocator gave their pages back to the kernel, and the next batch had every
/// page faulted in and zeroed again: pushing into them was 3% of an ingest's samples, nearly
/// all page faults, and keeping them took 100,000 messages from about 140,000 page faults to
/// 115,000 (BENCHMARKS.md, session 20). At most [`Kept::KEEP`] of each are kept (about one
/// per worker in flight), so some tens of megabytes stay allocated.
#[derive(Default)]
pub(super) struct Spare {
    pub(super) prepared: Kept<Prepared>,
    pub(super) placed: Kept<Placed>,
}

/// Emptied vectors of one kind.
pub(super) struct Kept<T>(std::sync::Mutex<Vec<Vec<T>>>);

impl<T> Default for Kept<T> {
    fn default() -> Self {
        Kept(Default::default())
    }
}

impl<T> Kept<T> {
    /// The most vectors kept.
    const KEEP: usize = 8;

    /// An empty vector with room for `n`, one a batch before used if there is one.
    pub(super) fn take(&self, n: usize) -> Vec<T> {
        let mut v = self
            .0
            .lock()
            .ok()
            .and_then(|mut kept| kept.pop())
            .unwrap_or_default();
        v.reserve(n);
        v
    }

    pub(super) fn give(&self, mut v: Vec<T>) {
        v.clear();
        if let Ok(mut kept) = self.0.lock()
            && kept.len() < Self::KEEP
        {
            kept.push(v);
        }
    }
}
