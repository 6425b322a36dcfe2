//! One organisation's poll loop: `poll.interval`, or `poll.active_interval` while one of
//! its jobs runs; a cycle only while this replica leads; until `stopped`. The watchdog
//! judges the cycle while it still retries, and after it.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Semaphore, watch};
use tokio::time::Instant;
use tracing::warn;

use super::OrgWatch;
use super::heartbeat::Heartbeat;
use super::outcome::report;
use super::standing::{LeaderHandle, OrgHandle, Standing};
use super::watchdog::Watchdog;
use crate::config::Config;
use crate::notify::DeliverySetup;
use crate::ops::health::Health;
use crate::poll::{CycleError, CycleSummary, WatchSetup, Watcher};

/// What every organisation's loop shares.
#[derive(Clone)]
pub(super) struct Shared {
    pub health: Arc<Health>,
    pub leadership: Option<LeaderHandle>,
    pub permits: Arc<Semaphore>,
    pub channels: watch::Receiver<Arc<DeliverySetup>>,
    /// The dead man's switch, and the organisations whose last cycle failed: it pings
    /// success only while none does.
    pub heartbeat: Arc<Mutex<(Heartbeat, HashSet<String>)>>,
}

/// Whether a loop goes on or returns (`stopped`).
#[derive(PartialEq)]
enum Flow {
    Go,
    Stop,
}

/// One organisation's loop and what it remembers between cycles.
struct OrgLoop {
    name: String,
    watcher: Watcher,
    watchdog: Watchdog,
    setup: watch::Receiver<Arc<WatchSetup>>,
    shared: Shared,
    stopped: watch::Receiver<bool>,
    /// Among replicas: this organisation's lease and its turns.
    lead: Option<OrgHandle>,
    standing: Option<watch::Receiver<Standing>>,
    /// The lease token this replica last led with.
    led_with: Option<i64>,
    next_cycle: Instant,
    /// Whether one of its jobs ran at the last cycle (`poll.active_interval`).
    running: bool,
    cadence: Duration,
}

/// Runs organisation `org`'s loop until `stopped`.
pub(super) async fn watch_org(
    org: OrgWatch,
    setup: watch::Receiver<Arc<WatchSetup>>,
    shared: Shared,
    stopped: watch::Receiver<bool>,
) {
    let OrgWatch {
        name,
        watcher,
        watchdog,
    } = org;
    let cadence = setup.borrow().config.poll.cadence(false);
    // A standby wakes when the lead changes hands, not only at its next interval.
    let lead = shared.leadership.as_ref().and_then(|l| l.org(&name));
    let mut this = OrgLoop {
        standing: lead.as_ref().map(|l| l.standing.clone()),
        lead,
        name,
        watcher,
        watchdog,
        setup,
        shared,
        stopped,
        led_with: None,
        next_cycle: Instant::now(),
        running: false,
        cadence,
    };
    while this.wait_for_next_cycle().await == Flow::Go {
        // Taken before the standing is read, so that a wait for a turn never eats into the
        // lease the cycle relies on.
        let Ok(_permit) = this.shared.permits.clone().acquire_owned().await else {
            return;
        };
        if *this.stopped.borrow() {
            return;
        }
        let current = this.config();
        // Held for the cycle: the lease is not given up under it.
        let _turn = match &this.lead {
            Some(lead) => Some(lead.turn().await),
            None => None,
        };
        // A standby does not poll.
        let Some(until) = this.lease_for_a_cycle(&current).await else {
            continue;
        };
        if this.cycle(&current, until).await == Flow::Stop {
            return;
        }
    }
}

impl OrgLoop {
    fn config(&self) -> Arc<Config> {
        self.setup.borrow().config.clone()
    }

    fn channels(&self) -> Arc<DeliverySetup> {
        self.shared.channels.borrow().clone()
    }

    /// Waits for the next cycle's time, following reloads (a new cadence) and the lease
    /// (taking the lead polls at once).
    async fn wait_for_next_cycle(&mut self) -> Flow {
        loop {
            tokio::select! {
                _ = self.stopped.changed() => return Flow::Stop,
                Ok(()) = self.setup.changed() => {
                    // A reload: the next cycle comes one new cadence from now if it changed.
                    let new = self.setup.borrow().config.poll.cadence(self.running);
                    if new != self.cadence {
                        self.cadence = new;
                        self.next_cycle = Instant::now() + new;
                    }
                }
                Ok(()) = async { self.standing.as_mut().expect("guarded").changed().await }, if self.standing.is_some() => {
                    // Taking the lead (a new token) polls at once; a renewal changes nothing.
                    let token = self.standing.as_ref().and_then(|s| s.borrow().token);
                    if token.is_some() && token != self.led_with {
                        self.next_cycle = Instant::now();
                    }
                    self.led_with = token;
                }
                _ = tokio::time::sleep_until(self.next_cycle) => return Flow::Go,
            }
        }
    }

    /// `Some(until)` if this replica may poll: until when its lease holds (`None`: no
    /// replicas, no end). A standby tells the watchdog who leads and waits a cadence.
    async fn lease_for_a_cycle(&mut self, current: &Config) -> Option<Option<Instant>> {
        let Some(standing) = &self.standing else {
            return Some(None);
        };
        let now = standing.borrow().clone();
        self.led_with = now.token;
        if now.leads() {
            return Some(now.valid_until);
        }
        let setup = self.channels();
        self.watchdog
            .standing_by(now.leader.as_deref(), current, &setup.channels)
            .await;
        self.next_cycle = Instant::now() + current.poll.cadence(self.running);
        None
    }

    /// One cycle, judged by the watchdog while it retries; abandoned when the lease may
    /// have lapsed or another replica took the lead.
    async fn cycle(&mut self, current: &Config, mut until: Option<Instant>) -> Flow {
        let started = Instant::now();
        // `watcher.failing` is judged while the cycle still retries, not only at its end.
        let mut check = self.watchdog.due_in(current).map(|wait| started + wait);
        let result = {
            let cycle = self.watcher.cycle();
            tokio::pin!(cycle);
            loop {
                tokio::select! {
                    biased;
                    _ = self.stopped.changed() => return Flow::Stop,
                    _ = sleep_until_opt(check), if check.is_some() => {
                        let failure = self.setup.borrow().client.last_failure();
                        let channels = self.shared.channels.borrow().clone();
                        check = self.watchdog.during_cycle(failure, current, &channels.channels).await;
                    }
                    // The lease may have lapsed (a pause, a lost database): drop the cycle, so
                    // that this replica sends no more requests; its commits are fenced off anyway.
                    _ = sleep_until_opt(until) => {
                        warn!(organisation = %self.name, "the lease may have lapsed during the cycle: abandoning it");
                        self.next_cycle = Instant::now();
                        return Flow::Go;
                    }
                    Ok(()) = async { self.standing.as_mut().expect("guarded").changed().await }, if self.standing.is_some() => {
                        let now = self.standing.as_ref().expect("guarded").borrow().clone();
                        if !now.leads() {
                            warn!(organisation = %self.name, "lost the lead during the cycle: abandoning it");
                            self.next_cycle = Instant::now() + current.poll.cadence(self.running);
                            return Flow::Go;
                        }
                        until = now.valid_until;
                        self.led_with = now.token;
                    }
                    result = &mut cycle => break result,
                }
            }
        };
        self.after_cycle(&result, started).await;
        Flow::Go
    }

    /// A cycle's end: its outcome reported, the heartbeat and the watchdog told, the next
    /// cycle's time set.
    async fn after_cycle(&mut self, result: &Result<CycleSummary, CycleError>, started: Instant) {
        let current = self.config();
        report(&self.name, result, &self.shared.health, started.elapsed());
        beat(&self.shared, &self.name, result.is_ok(), &current);
        let channels = self.channels();
        self.watchdog
            .after_cycle(result, &current, &channels.channels)
            .await;
        if let Ok(summary) = result {
            self.running = summary.running;
        }
        // A cycle longer than the cadence is followed at once, not by a burst of catching up.
        self.cadence = current.poll.cadence(self.running);
        self.next_cycle = (started + self.cadence).max(Instant::now());
    }
}

/// The heartbeat after `org`'s cycle: success only while no organisation's last cycle failed.
fn beat(shared: &Shared, org: &str, succeeded: bool, config: &Config) {
    let mut guard = shared
        .heartbeat
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let (heartbeat, failing) = &mut *guard;
    if succeeded {
        failing.remove(org);
    } else {
        failing.insert(org.to_owned());
    }
    heartbeat.after_cycle(failing.is_empty(), config.heartbeat.as_ref());
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
