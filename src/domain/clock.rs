//! A clock that can be held still: the watcher reads "now" for its reminders from one, so
//! that tests move time instead of waiting for it.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use time::OffsetDateTime;

pub trait Clock: Send + Sync {
    fn now(&self) -> OffsetDateTime;

    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64 {
        super::time::millis(self.now())
    }
}

/// The system's clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock that stands still until moved; clones share it.
#[derive(Clone, Debug)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    /// Starts at the system's time.
    pub fn new() -> Self {
        ManualClock(Arc::new(AtomicI64::new(SystemClock.now_ms())))
    }

    /// Sets it to `at` (a test following another clock, the simulator's).
    pub fn set(&self, at: OffsetDateTime) {
        self.0.store(super::time::millis(at), Ordering::SeqCst);
    }

    pub fn advance(&self, by: std::time::Duration) {
        self.0.fetch_add(by.as_millis() as i64, Ordering::SeqCst);
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        super::time::from_millis(self.0.load(Ordering::SeqCst))
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }
}
