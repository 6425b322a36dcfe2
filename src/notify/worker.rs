//! The delivery worker: claims due alerts from the outbox, attempts them with bounded
//! concurrency, and records each outcome. No store transaction is open while a request is.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::{error, info, warn};

use super::{Attempt, Channels};
use crate::backoff::Backoff;
use crate::domain::time::now_ms;
use crate::store::gauges::set_outbox_pending;
use crate::store::outbox::{self, Alert};
use crate::store::{Store, StoreError};
use crate::telemetry::ALERTS;

/// Shutdown waits this long for deliveries in flight; what is still sending then stays
/// queued and goes out after the restart. Shorter than systemd's default stop timeout.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// A backstop on one attempt, beyond the senders' own timeouts.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(90);

/// What a round of deliveries came to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Settled {
    pub delivered: usize,
    pub retrying: usize,
    pub dead: usize,
}

/// What delivery needs that a reload may replace.
pub struct DeliverySetup {
    pub channels: Channels,
    pub backoff: Backoff,
    pub max_age: Duration,
    /// Attempts in flight at once (`delivery.concurrency`).
    pub concurrency: usize,
}

pub struct Worker {
    store: Store,
    /// Poked by the watcher when it queues alerts, so delivery does not wait for a timer.
    wake: Arc<Notify>,
    /// The current channels and retry rules; each attempt takes what is current.
    setup: watch::Receiver<Arc<DeliverySetup>>,
}

impl Worker {
    pub fn new(
        store: Store,
        wake: Arc<Notify>,
        setup: watch::Receiver<Arc<DeliverySetup>>,
    ) -> Self {
        Self { store, wake, setup }
    }

    fn current(&self) -> Arc<DeliverySetup> {
        self.setup.borrow().clone()
    }

    fn concurrency(&self) -> usize {
        self.setup.borrow().concurrency.max(1)
    }

    /// Delivers until `stop` turns true (or its sender goes), then lets deliveries in
    /// flight finish for at most [`DRAIN_TIMEOUT`].
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut in_flight: JoinSet<(Alert, Attempt)> = JoinSet::new();
        let mut tasks: HashMap<tokio::task::Id, String> = HashMap::new();
        let mut drain_until: Option<Instant> = None;
        loop {
            // Subscribe before looking, so that a wake-up between the look and the wait
            // is not lost.
            let notified = self.wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();

            let mut next_look: Option<Instant> = None;
            let concurrency = self.concurrency();
            if drain_until.is_none() {
                let room = concurrency.saturating_sub(in_flight.len());
                if room > 0 {
                    let busy: HashSet<String> = tasks.values().cloned().collect();
                    match self.claim(room + busy.len()).await {
                        Ok(alerts) => {
                            for alert in alerts
                                .into_iter()
                                .filter(|alert| !busy.contains(&alert.id))
                                .take(room)
                            {
                                let id = alert.id.clone();
                                let handle = self.spawn_attempt(&mut in_flight, alert);
                                tasks.insert(handle.id(), id);
                            }
                            if in_flight.len() < concurrency {
                                next_look = self.next_due().await;
                            }
                        }
                        Err(error) => {
                            error!(error = %error, "cannot read the alert outbox; trying again in 5s");
                            next_look = Some(Instant::now() + Duration::from_secs(5));
                        }
                    }
                }
            } else if in_flight.is_empty() {
                break;
            }

            tokio::select! {
                Some(joined) = in_flight.join_next_with_id(), if !in_flight.is_empty() => {
                    // Every attempt that has finished by now is recorded in one transaction:
                    // under a burst that is one fsync for many alerts, not one each.
                    let mut finished = Vec::new();
                    let mut joined = Some(joined);
                    while let Some(result) = joined.take().or_else(|| in_flight.try_join_next_with_id()) {
                        match result {
                            Ok((task, outcome)) => {
                                tasks.remove(&task);
                                finished.push(outcome);
                            }
                            Err(join_error) => {
                                let id = tasks.remove(&join_error.id());
                                error!(alert_id = ?id, error = %join_error, "a delivery task failed; the alert stays queued");
                            }
                        }
                    }
                    if let Err(error) = self.settle(finished).await {
                        error!(error = %error, "cannot record delivery outcomes; those alerts stay queued and are sent again");
                    }
                }
                _ = &mut notified => {}
                _ = sleep_until(next_look), if next_look.is_some() => {}
                _ = stop.changed(), if drain_until.is_none() => {
                    drain_until = Some(Instant::now() + DRAIN_TIMEOUT);
                    if !in_flight.is_empty() {
                        info!(in_flight = in_flight.len(), "stopping: letting deliveries in flight finish");
                    }
                }
                _ = sleep_until(drain_until), if drain_until.is_some() => {
                    warn!(in_flight = in_flight.len(), "deliveries still in flight after 10s stay queued for the next start");
                    in_flight.abort_all();
                    break;
                }
            }
        }
    }

    /// Attempts every alert due now once, `concurrency` at a time, and records the
    /// outcomes. For `sdm-watch once` and for tests.
    pub async fn deliver_due(&self) -> Result<Settled, StoreError> {
        let mut settled = Settled::default();
        let mut tried = HashSet::new();
        loop {
            let concurrency = self.concurrency();
            let alerts: Vec<Alert> = self
                .claim(concurrency + tried.len())
                .await?
                .into_iter()
                .filter(|alert| !tried.contains(&alert.id))
                .take(concurrency)
                .collect();
            if alerts.is_empty() {
                return Ok(settled);
            }
            let mut round = JoinSet::new();
            for alert in alerts {
                tried.insert(alert.id.clone());
                self.spawn_attempt(&mut round, alert);
            }
            let mut finished = Vec::new();
            while let Some(joined) = round.join_next().await {
                // A task that failed leaves its alert queued for the next round.
                if let Ok(outcome) = joined {
                    finished.push(outcome);
                }
            }
            for outcome in self.settle(finished).await? {
                match outcome {
                    Outcome::Delivered => settled.delivered += 1,
                    Outcome::Retrying => settled.retrying += 1,
                    Outcome::Dead => settled.dead += 1,
                }
            }
        }
    }

    async fn claim(&self, limit: usize) -> Result<Vec<Alert>, StoreError> {
        self.store
            .run(move |conn| outbox::due(conn, now_ms(), limit))
            .await
    }

    async fn next_due(&self) -> Option<Instant> {
        let now = now_ms();
        let next = self
            .store
            .run(move |conn| outbox::next_due_after(conn, now))
            .await
            .ok()
            .flatten()?;
        Some(Instant::now() + Duration::from_millis((next - now).max(0) as u64))
    }

    /// Records how attempts ended (delivered, rescheduled with backoff, or dead) and
    /// refreshes the backlog gauge, in one transaction.
    async fn settle(&self, finished: Vec<(Alert, Attempt)>) -> Result<Vec<Outcome>, StoreError> {
        if finished.is_empty() {
            return Ok(Vec::new());
        }
        let setup = self.current();
        let now = now_ms();
        let settled: Vec<Settlement> = finished
            .into_iter()
            .map(|(alert, attempt)| judge(alert, attempt, &setup, now))
            .collect();
        let settled = self
            .store
            .run(move |conn| {
                let tx = conn.transaction()?;
                for s in &settled {
                    let (id, attempts) = (&s.alert.id, s.alert.attempts + 1);
                    let error = s.error.as_deref().unwrap_or_default();
                    match s.outcome {
                        Outcome::Delivered => outbox::mark_delivered(&tx, id, attempts, now)?,
                        Outcome::Dead => outbox::mark_dead(&tx, id, attempts, error, now)?,
                        Outcome::Retrying => outbox::mark_retry(&tx, id, attempts, s.next, error)?,
                    }
                }
                set_outbox_pending(&tx)?;
                tx.commit()?;
                Ok(settled)
            })
            .await?;
        Ok(settled
            .into_iter()
            .map(|s| {
                let label = match s.outcome {
                    Outcome::Delivered => "delivered",
                    Outcome::Retrying => "retry",
                    Outcome::Dead => "dead",
                };
                metrics::counter!(ALERTS, "channel" => s.alert.channel, "outcome" => label)
                    .increment(1);
                s.outcome
            })
            .collect())
    }

    /// Starts one delivery attempt with the channels current now.
    fn spawn_attempt(
        &self,
        set: &mut JoinSet<(Alert, Attempt)>,
        alert: Alert,
    ) -> tokio::task::AbortHandle {
        let setup = self.current();
        set.spawn(async move {
            let attempt = attempt(&setup.channels, &alert).await;
            (alert, attempt)
        })
    }
}

#[derive(Clone, Copy)]
enum Outcome {
    Delivered,
    Retrying,
    Dead,
}

/// How one attempt ended, ready to record.
struct Settlement {
    alert: Alert,
    outcome: Outcome,
    /// When to try again, for `Retrying`.
    next: i64,
    error: Option<String>,
}

/// Decides what an attempt's result means for its alert (logging it), given the retry
/// rules and the time now.
fn judge(alert: Alert, attempt: Attempt, setup: &DeliverySetup, now: i64) -> Settlement {
    let attempts = alert.attempts + 1;
    let (outcome, next, error) = match attempt {
        Attempt::Delivered => {
            info!(alert_id = %alert.id, channel = %alert.channel, job_id = %alert.job_id, event = %alert.event, attempts, "alert delivered");
            (Outcome::Delivered, now, None)
        }
        Attempt::Permanent { error } => {
            error!(alert_id = %alert.id, channel = %alert.channel, job_id = %alert.job_id, attempts, error = %error, "alert failed for good; it is dead");
            (Outcome::Dead, now, Some(error))
        }
        Attempt::Retry { error, retry_after } => {
            let expires = alert.created_ms + setup.max_age.as_millis() as i64;
            if now >= expires {
                let error = format!(
                    "still undelivered after delivery.max_age ({}): {error}",
                    humantime::format_duration(setup.max_age)
                );
                error!(alert_id = %alert.id, channel = %alert.channel, job_id = %alert.job_id, attempts, error = %error, "alert expired; it is dead");
                (Outcome::Dead, now, Some(error))
            } else {
                let wait = setup
                    .backoff
                    .after_attempt(attempts)
                    .max(retry_after.unwrap_or_default());
                // The last try falls at max_age, not after it.
                let next = (now + wait.as_millis() as i64).min(expires);
                warn!(alert_id = %alert.id, channel = %alert.channel, job_id = %alert.job_id, attempts, retry_in_ms = next - now, error = %error, "alert delivery failed; will retry");
                (Outcome::Retrying, next, Some(error))
            }
        }
    };
    Settlement {
        alert,
        outcome,
        next,
        error,
    }
}

async fn attempt(channels: &Channels, alert: &Alert) -> Attempt {
    let Some(channel) = channels.get(&alert.channel) else {
        return Attempt::Permanent {
            error: format!("channel {:?} is no longer configured", alert.channel),
        };
    };
    match tokio::time::timeout(ATTEMPT_TIMEOUT, channel.send(&alert.id, &alert.payload)).await {
        Ok(attempt) => attempt,
        Err(_) => Attempt::Retry {
            error: format!("no answer within {}s", ATTEMPT_TIMEOUT.as_secs()),
            retry_after: None,
        },
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
