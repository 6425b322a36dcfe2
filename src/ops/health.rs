//! Liveness and readiness: when the last poll cycle succeeded, and why the last one failed.

use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use crate::domain::time::now_ms;

/// Shared between the scheduler, which reports cycles, and the HTTP endpoints.
#[derive(Debug)]
pub struct Health {
    /// Unix milliseconds of the last successful cycle; 0 before the first.
    last_success_ms: AtomicI64,
    /// The poll interval in milliseconds; a reload may change it.
    interval_ms: AtomicU64,
    last_error: Mutex<Option<String>>,
    last_cycle: Mutex<Option<LastCycle>>,
    role: Mutex<Role>,
    /// Unix milliseconds of the last time a standby reached the database to look at the
    /// lease; it is healthy while that is recent.
    lease_checked_ms: AtomicI64,
    lease_ms: AtomicU64,
}

/// This replica's part: alone (SQLite), or leading or standing by among replicas.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum Role {
    Alone,
    Leader {
        replica: String,
    },
    Standby {
        replica: String,
        /// Who leads, if anyone does.
        leader: Option<String>,
    },
}

impl Role {
    pub fn name(&self) -> &'static str {
        match self {
            Role::Alone => "alone",
            Role::Leader { .. } => "leader",
            Role::Standby { .. } => "standby",
        }
    }

    pub fn leads(&self) -> bool {
        !matches!(self, Role::Standby { .. })
    }
}

/// The last poll cycle, for the status page.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct LastCycle {
    /// When it ended, Unix milliseconds.
    pub finished_ms: i64,
    pub duration_ms: u64,
    /// API requests it made; `None` for a cycle that failed.
    pub requests: Option<u64>,
    pub jobs_seen: Option<usize>,
    pub transitions: Option<usize>,
    /// Why it failed; `None` when it succeeded.
    pub error: Option<String>,
}

impl Health {
    pub fn new(interval: Duration) -> Self {
        Self {
            last_success_ms: AtomicI64::new(0),
            interval_ms: AtomicU64::new(interval.as_millis() as u64),
            last_error: Mutex::new(None),
            last_cycle: Mutex::new(None),
            role: Mutex::new(Role::Alone),
            lease_checked_ms: AtomicI64::new(0),
            lease_ms: AtomicU64::new(0),
        }
    }

    pub fn set_role(&self, role: Role) {
        *self.role.lock().unwrap_or_else(|p| p.into_inner()) = role;
    }

    pub fn role(&self) -> Role {
        self.role.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// A standby reached the database and read the lease (which lasts `lease`).
    pub fn lease_checked(&self, lease: Duration) {
        self.lease_checked_ms.store(now_ms(), Ordering::Relaxed);
        self.lease_ms
            .store(lease.as_millis() as u64, Ordering::Relaxed);
    }

    pub fn set_interval(&self, interval: Duration) {
        self.interval_ms
            .store(interval.as_millis() as u64, Ordering::Relaxed);
    }

    pub fn cycle_succeeded(&self) {
        self.last_success_ms.store(now_ms(), Ordering::Relaxed);
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    pub fn cycle_failed(&self, error: String) {
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(error);
    }

    /// Keeps what the status page shows of the cycle that just ended.
    pub fn record_cycle(&self, cycle: LastCycle) {
        *self.last_cycle.lock().unwrap_or_else(|p| p.into_inner()) = Some(cycle);
    }

    pub fn last_cycle(&self) -> Option<LastCycle> {
        self.last_cycle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Unix milliseconds of the last successful cycle, if any.
    pub fn last_success_ms(&self) -> Option<i64> {
        Some(self.last_success_ms.load(Ordering::Relaxed)).filter(|ms| *ms > 0)
    }

    /// Ready when the last cycle succeeded within three intervals, or, standing by, when
    /// the database was reached within two leases; otherwise why not.
    pub fn readiness(&self) -> Result<(), NotReady> {
        if let Role::Standby { .. } = self.role() {
            let checked = self.lease_checked_ms.load(Ordering::Relaxed);
            let lease = self.lease_ms.load(Ordering::Relaxed) as i64;
            let age = now_ms() - checked;
            if checked == 0 || age > 2 * lease.max(1000) {
                return Err(NotReady(format!(
                    "standing by, and the database was not reached for {}s",
                    age / 1000
                )));
            }
            return Ok(());
        }
        let last = self.last_success_ms.load(Ordering::Relaxed);
        let interval = self.interval_ms.load(Ordering::Relaxed) as i64;
        let error = self
            .last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let because = error
            .map(|error| format!("; last error: {error}"))
            .unwrap_or_default();
        if last == 0 {
            return Err(NotReady(format!(
                "no poll cycle has succeeded yet{because}"
            )));
        }
        let age = now_ms() - last;
        if age > 3 * interval {
            return Err(NotReady(format!(
                "the last successful poll cycle was {}s ago, more than three intervals{because}",
                age / 1000
            )));
        }
        Ok(())
    }
}

/// Why the daemon is not ready, as `/readyz` says it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NotReady(String);
