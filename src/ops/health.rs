//! Liveness and readiness: when each organisation's last poll cycle succeeded, and why the
//! last one failed. Ready only when every organisation this process leads polls (alone:
//! all of them; among replicas, those whose lease it holds, each given three intervals
//! after it was taken over to complete its first cycle).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use crate::domain::time::now_ms;

/// Shared between the scheduler, which reports cycles, and the HTTP endpoints.
#[derive(Debug)]
pub struct Health {
    /// The poll interval in milliseconds; a reload may change it.
    interval_ms: AtomicU64,
    /// Each organisation watched by this process, by name.
    orgs: Mutex<BTreeMap<String, OrgHealth>>,
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

/// One organisation's cycles.
#[derive(Clone, Debug)]
struct OrgHealth {
    /// Unix milliseconds of the last successful cycle; 0 before the first.
    last_success_ms: i64,
    last_error: Option<String>,
    last_cycle: Option<LastCycle>,
    /// While this process polls it: since when, Unix milliseconds (0 alone: from the
    /// start, no grace).
    led_since_ms: Option<i64>,
}

impl Default for OrgHealth {
    fn default() -> Self {
        Self {
            last_success_ms: 0,
            last_error: None,
            last_cycle: None,
            led_since_ms: Some(0),
        }
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
    /// Health for a process watching `orgs`.
    pub fn new<'a>(interval: Duration, orgs: impl IntoIterator<Item = &'a str>) -> Self {
        let orgs = orgs
            .into_iter()
            .map(|org| (org.to_owned(), OrgHealth::default()))
            .collect();
        Self {
            interval_ms: AtomicU64::new(interval.as_millis() as u64),
            orgs: Mutex::new(orgs),
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

    /// Among replicas: this one polls `org` since `since_ms` (it took its lease), or not.
    pub fn set_led(&self, org: &str, since_ms: Option<i64>) {
        self.with_org(org, |health| health.led_since_ms = since_ms);
    }

    /// Whether this process polls `org` now.
    pub fn leads(&self, org: &str) -> bool {
        let orgs = self.orgs.lock().unwrap_or_else(|p| p.into_inner());
        orgs.get(org)
            .is_some_and(|health| health.led_since_ms.is_some())
    }

    pub fn set_interval(&self, interval: Duration) {
        self.interval_ms
            .store(interval.as_millis() as u64, Ordering::Relaxed);
    }

    fn with_org<T>(&self, org: &str, f: impl FnOnce(&mut OrgHealth) -> T) -> T {
        let mut orgs = self.orgs.lock().unwrap_or_else(|p| p.into_inner());
        f(orgs.entry(org.to_owned()).or_default())
    }

    /// `org`'s cycle succeeded: keeps what the status page shows of it.
    pub fn cycle_succeeded(&self, org: &str, cycle: LastCycle) {
        self.with_org(org, |health| {
            health.last_success_ms = now_ms();
            health.last_error = None;
            health.last_cycle = Some(cycle);
        });
    }

    /// `org`'s cycle failed with `cycle.error`.
    pub fn cycle_failed(&self, org: &str, cycle: LastCycle) {
        self.with_org(org, |health| {
            health.last_error = cycle.error.clone();
            health.last_cycle = Some(cycle);
        });
    }

    /// The cycle that ended last, of any organisation.
    pub fn last_cycle(&self) -> Option<LastCycle> {
        let orgs = self.orgs.lock().unwrap_or_else(|p| p.into_inner());
        orgs.values()
            .filter_map(|health| health.last_cycle.clone())
            .max_by_key(|cycle| cycle.finished_ms)
    }

    /// Each organisation's last cycle, by name.
    pub fn last_cycles(&self) -> BTreeMap<String, Option<LastCycle>> {
        let orgs = self.orgs.lock().unwrap_or_else(|p| p.into_inner());
        orgs.iter()
            .map(|(name, health)| (name.clone(), health.last_cycle.clone()))
            .collect()
    }

    /// Unix milliseconds of the last successful cycle, if every organisation led here had
    /// one: the oldest of them (the watcher is as current as its most lagging organisation).
    pub fn last_success_ms(&self) -> Option<i64> {
        let orgs = self.orgs.lock().unwrap_or_else(|p| p.into_inner());
        orgs.values()
            .filter(|health| health.led_since_ms.is_some())
            .map(|health| Some(health.last_success_ms).filter(|ms| *ms > 0))
            .min()
            .flatten()
    }

    /// Ready when the last cycle of every organisation led here succeeded within three
    /// intervals, or, standing by, when the database was reached within two leases;
    /// otherwise why not.
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
        let interval = self.interval_ms.load(Ordering::Relaxed) as i64;
        let orgs = self.orgs.lock().unwrap_or_else(|p| p.into_inner());
        let named = orgs.len() > 1;
        let now = now_ms();
        for (name, health) in orgs.iter() {
            let Some(since) = health.led_since_ms else {
                continue; // another replica polls it
            };
            // Taken over from another replica: its first cycle is on its way.
            let taken = since > 0 && health.last_success_ms < since;
            if taken && now.saturating_sub(since) <= 3 * interval {
                continue;
            }
            let of = if named {
                format!(" of organisation {name}")
            } else {
                String::new()
            };
            let because = health
                .last_error
                .as_ref()
                .map(|error| format!("; last error: {error}"))
                .unwrap_or_default();
            if health.last_success_ms == 0 || taken {
                let yet = if taken {
                    " since this replica took it over"
                } else {
                    " yet"
                };
                return Err(NotReady(format!(
                    "no poll cycle{of} has succeeded{yet}{because}"
                )));
            }
            let age = now.saturating_sub(health.last_success_ms);
            if age > 3 * interval {
                return Err(NotReady(format!(
                    "the last successful poll cycle{of} was {}s ago, more than three intervals{because}",
                    age / 1000
                )));
            }
        }
        Ok(())
    }
}

/// Why the daemon is not ready, as `/readyz` says it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NotReady(String);

#[cfg(test)]
mod tests {
    use super::*;

    fn ok_cycle() -> LastCycle {
        LastCycle {
            finished_ms: now_ms(),
            duration_ms: 1,
            requests: Some(3),
            jobs_seen: Some(0),
            transitions: Some(0),
            error: None,
        }
    }

    fn replica(orgs: &[&str]) -> Health {
        let health = Health::new(Duration::from_secs(60), orgs.iter().copied());
        for org in orgs {
            health.set_led(org, None);
        }
        health.set_role(Role::Leader {
            replica: "r".into(),
        });
        health
    }

    #[test]
    fn alone_every_organisation_counts_from_the_start() {
        let health = Health::new(Duration::from_secs(60), ["acme", "globex"]);
        health.cycle_succeeded("acme", ok_cycle());
        let why = health.readiness().unwrap_err().to_string();
        assert!(
            why.contains("organisation globex has succeeded yet"),
            "{why}"
        );
        health.cycle_succeeded("globex", ok_cycle());
        assert_eq!(health.readiness(), Ok(()));
    }

    #[test]
    fn a_replica_answers_for_the_organisations_it_leads_only() {
        let health = replica(&["acme", "globex"]);
        health.set_led("acme", Some(0)); // led since long ago, never polled
        let why = health.readiness().unwrap_err().to_string();
        assert!(why.contains("acme"), "{why}");
        health.cycle_succeeded("acme", ok_cycle());
        assert_eq!(health.readiness(), Ok(()), "globex is another's");
        assert!(
            health.last_success_ms().is_some(),
            "globex, polled elsewhere, does not hold the last success back"
        );
        assert!(health.leads("acme") && !health.leads("globex"));
    }

    #[test]
    fn an_organisation_just_taken_over_has_three_intervals_for_its_first_cycle() {
        let health = replica(&["acme"]);
        health.set_led("acme", Some(now_ms()));
        assert_eq!(health.readiness(), Ok(()), "within the grace");
        // Taken over four intervals ago and no cycle since: not ready, and says why.
        health.set_led("acme", Some(now_ms() - 4 * 60_000));
        let why = health.readiness().unwrap_err().to_string();
        assert!(why.contains("since this replica took it over"), "{why}");
        health.cycle_succeeded("acme", ok_cycle());
        assert_eq!(health.readiness(), Ok(()));
    }
}
