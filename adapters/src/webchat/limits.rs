//! The web chat's limits that outlive one socket, and the transcript's pages: per client
//! address and per conversation, so reconnecting neither refills a visitor's message allowance
//! nor gives them another share of the sockets (see "Abuse" and "Transcript paging" in the
//! parent module).

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

use super::Item;

/// What outlives a socket: see "Abuse" in the module docs.
#[derive(Default)]
pub(super) struct Limits {
    pub(super) per_address: HashMap<IpAddr, usize>,
    pub(super) buckets: HashMap<Bucket, RateLimit>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum Bucket {
    Address(IpAddr),
    Conversation(String),
}

/// Buckets kept before full (idle) ones are dropped; a full bucket is the same as none.
pub(super) const MAX_BUCKETS: usize = 10_000;

/// A token bucket: `burst` at once, then `per_second`.
pub(super) struct RateLimit {
    tokens: f64,
    burst: f64,
    per_second: f64,
    last: Instant,
}

impl RateLimit {
    pub(super) fn new(burst: u32, per_second: f64) -> Self {
        RateLimit {
            tokens: f64::from(burst),
            burst: f64::from(burst),
            per_second,
            last: Instant::now(),
        }
    }

    fn refill(&mut self) {
        let now = Instant::now();
        let refill = now.duration_since(self.last).as_secs_f64() * self.per_second;
        self.tokens = (self.tokens + refill).min(self.burst);
        self.last = now;
    }

    pub(super) fn is_full(&mut self) -> bool {
        self.refill();
        self.tokens >= self.burst
    }

    pub(super) fn take(&mut self) -> bool {
        self.refill();
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The `page` lines before the last `skip` of `items` (in time order), and whether older ones
/// remain.
pub(super) fn page_of(mut items: Vec<Item>, skip: usize, page: usize) -> (Vec<Item>, bool) {
    let end = items.len().saturating_sub(skip);
    let start = end.saturating_sub(page);
    items.truncate(end);
    let rest = items.split_off(start);
    (rest, start > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};
    use std::time::Duration;

    #[test]
    fn pages_count_back_from_the_end() {
        let items: Vec<Item> = (0..5)
            .map(|n| Item {
                from: "visitor",
                id: n.to_string(),
                text: String::new(),
                at: DateTime::<Utc>::UNIX_EPOCH,
            })
            .collect();
        let ids = |items: &[Item]| items.iter().map(|i| i.id.clone()).collect::<Vec<_>>();
        let (last, more) = page_of(items.clone(), 0, 2);
        assert_eq!((ids(&last), more), (vec!["3".into(), "4".into()], true));
        let (first, more) = page_of(items.clone(), 4, 2);
        assert_eq!((ids(&first), more), (vec!["0".to_owned()], false));
        assert!(page_of(items, 9, 2).0.is_empty());
    }

    #[test]
    fn the_rate_limit_allows_a_burst_then_refills() {
        let mut limit = RateLimit::new(3, 1000.0);
        assert!(limit.take() && limit.take() && limit.take());
        limit.tokens = 0.0;
        limit.last = Instant::now();
        assert!(!limit.take());
        std::thread::sleep(Duration::from_millis(5));
        assert!(limit.take());
    }
}
