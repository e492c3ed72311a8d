//! Where "now" comes from. The engine itself never reads the system clock (intake, the store and
//! the team calendars take `now` as an argument); the running service asks one injected
//! [`Clock`] instead, so a test can put the whole service (intake, the outbox worker, the SLA
//! timer, the inbox) on a [`ManualClock`] and turn "Friday 17:55, breach on Monday" into a fast,
//! deterministic test rather than a wait over a weekend.
//!
//! Closures `Fn() -> DateTime<Utc>` are clocks too, so a test can also pass `move || fixed`.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};

/// A source of the current time.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The clock every part of one service shares.
pub type SharedClock = Arc<dyn Clock>;

/// The real time.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

impl<F> Clock for F
where
    F: Fn() -> DateTime<Utc> + Send + Sync,
{
    fn now(&self) -> DateTime<Utc> {
        self()
    }
}

/// A clock that stands still until a test moves it. Moving it never goes backwards: timers that
/// compare deadlines with `now` may rely on time being monotonic.
#[derive(Debug)]
pub struct ManualClock {
    // A mutex, not an atomic: a `DateTime` is wider than any atomic, and the clock is read a
    // few times per message, never in a hot loop.
    now: Mutex<DateTime<Utc>>,
}

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        ManualClock {
            now: Mutex::new(start),
        }
    }

    /// A shared handle, ready to be handed to the service and kept by the test.
    pub fn shared(start: DateTime<Utc>) -> Arc<ManualClock> {
        Arc::new(ManualClock::new(start))
    }

    /// Moves the clock forward by `by` (a negative duration is ignored).
    pub fn advance(&self, by: Duration) -> DateTime<Utc> {
        let mut now = self.now.lock().unwrap_or_else(|p| p.into_inner());
        if by > Duration::zero() {
            *now += by;
        }
        *now
    }

    /// Moves the clock to `to`, if that is later than now.
    pub fn set(&self, to: DateTime<Utc>) -> DateTime<Utc> {
        let mut now = self.now.lock().unwrap_or_else(|p| p.into_inner());
        if to > *now {
            *now = to;
        }
        *now
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_forward_and_closures_are_clocks() {
        let start = DateTime::<Utc>::UNIX_EPOCH;
        let clock = ManualClock::shared(start);
        assert_eq!(clock.now(), start);
        clock.advance(Duration::minutes(5));
        clock.advance(Duration::minutes(-60));
        assert_eq!(clock.now(), start + Duration::minutes(5));
        clock.set(start);
        assert_eq!(clock.now(), start + Duration::minutes(5));
        let shared: SharedClock = clock.clone();
        clock.advance(Duration::minutes(1));
        assert_eq!(shared.now(), start + Duration::minutes(6));
        let fixed: SharedClock = Arc::new(move || start);
        assert_eq!(fixed.now(), start);
        assert!(SystemClock.now() > start);
    }
}
