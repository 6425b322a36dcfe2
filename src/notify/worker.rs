//! The delivery worker: gathers digests when their windows close, claims what is due
//! (alerts alone and digests) from the store, attempts it with bounded concurrency, and
//! records each outcome. No store transaction is open while a request is.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::{Instrument as _, error, info, warn};

mod record;

use super::Attempt;
use super::delivery::{self, Delivery, Outcome, Settlement};
use super::gather::{gather, next_closing};
use super::setup::DeliverySetup;
use crate::domain::{Clock, SystemClock};
use crate::store::outbox::{Claim, Target};
use crate::store::{Store, StoreError, digests, outbox};

/// Shutdown waits this long for deliveries in flight; what is still sending then stays
/// queued and goes out after the restart. Shorter than systemd's default stop timeout.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// The worker looks at the store at least this often, so that alerts another process
/// queued again (`sdm-watch alerts retry`) go out while the daemon runs.
const LOOK_AT_LEAST_EVERY: Duration = Duration::from_secs(5);

/// What a round of deliveries came to (a digest counts once).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Settled {
    pub delivered: usize,
    pub retrying: usize,
    pub dead: usize,
}

pub struct Worker {
    store: Store,
    /// Poked by the watcher when it queues alerts, so delivery does not wait for a timer.
    wake: Arc<Notify>,
    /// The current channels and retry rules; each attempt takes what is current.
    setup: watch::Receiver<Arc<DeliverySetup>>,
    /// What "now" is for windows, retries and expiry; the system's but in tests.
    clock: Arc<dyn Clock>,
    /// Who claims alerts: unique to this process, so that replicas sharing an outbox
    /// never send what another is sending.
    replica: String,
}

impl Worker {
    pub fn new(
        store: Store,
        wake: Arc<Notify>,
        setup: watch::Receiver<Arc<DeliverySetup>>,
    ) -> Self {
        Self {
            store,
            wake,
            setup,
            clock: Arc::new(SystemClock),
            replica: crate::domain::replica_id().to_owned(),
        }
    }

    /// The same worker, claiming as `replica` (two in one process, in tests).
    pub fn with_replica(mut self, replica: &str) -> Self {
        self.replica = replica.to_owned();
        self
    }

    /// Who this worker claims alerts as; also its name for the lease among replicas.
    pub fn replica(&self) -> &str {
        &self.replica
    }

    /// What tells Alertmanagers again of open incidents, with this worker's store, clock
    /// and channels.
    pub fn resender(&self) -> crate::notify::incident::resend::Resender {
        crate::notify::incident::resend::Resender::new(
            self.store.clone(),
            self.setup.clone(),
            self.clock.clone(),
        )
    }

    /// What sends the scheduled reports, with this worker's store, clock and channels; it
    /// wakes this worker when it queues one.
    pub fn reporter(&self) -> crate::notify::scheduled::Reporter {
        crate::notify::scheduled::Reporter::new(
            self.store.clone(),
            self.setup.clone(),
            self.clock.clone(),
            self.wake.clone(),
        )
    }

    /// The same worker, reading the time from `clock`.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
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
        let mut in_flight: JoinSet<(Delivery, Attempt)> = JoinSet::new();
        let mut tasks: HashMap<tokio::task::Id, String> = HashMap::new();
        let mut drain_until: Option<Instant> = None;
        let mut unrecorded: Vec<Settlement> = Vec::new();
        loop {
            if !unrecorded.is_empty() {
                self.record_or_keep(Vec::new(), &mut unrecorded).await;
            }
            // Subscribe before looking, so that a wake-up between the look and the wait
            // is not lost.
            let notified = self.wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();

            let look_in = match unrecorded.is_empty() {
                true => LOOK_AT_LEAST_EVERY,
                false => Duration::from_secs(1),
            };
            let mut next_look = Some(Instant::now() + look_in);
            let concurrency = self.concurrency();
            if drain_until.is_none() {
                let room = concurrency.saturating_sub(in_flight.len());
                if room > 0 {
                    let waiting = unrecorded.iter().map(|s| s.id().to_owned());
                    let busy: HashSet<String> = tasks.values().cloned().chain(waiting).collect();
                    if let Some(due) = self.start_due(room, busy, &mut in_flight, &mut tasks).await
                    {
                        next_look = next_look.min(Some(due));
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
                    let settled = self.judge(finished);
                    self.record_or_keep(settled, &mut unrecorded).await;
                }
                _ = &mut notified => {}
                _ = sleep_until(next_look), if drain_until.is_none() => {}
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
        if !unrecorded.is_empty() {
            error!(
                outcomes = unrecorded.len(),
                "stopping with delivery outcomes the store did not take; those alerts are sent again after the restart"
            );
        }
    }

    /// Claims up to `room` deliveries (leaving out `busy`) and starts them; returns when
    /// the next falls due, if there is room left for it.
    async fn start_due(
        &self,
        room: usize,
        busy: HashSet<String>,
        in_flight: &mut JoinSet<(Delivery, Attempt)>,
        tasks: &mut HashMap<tokio::task::Id, String>,
    ) -> Option<Instant> {
        match self.claim(room, busy).await {
            Ok(due) => {
                for delivery in due {
                    let id = delivery.id().to_owned();
                    let handle = self.spawn_attempt(in_flight, delivery);
                    tasks.insert(handle.id(), id);
                }
                if in_flight.len() < self.concurrency() {
                    return self.next_due().await;
                }
            }
            Err(error) => {
                // The store failing (PostgreSQL switching over) is looked at again soon.
                error!(error = %error, "cannot read the alert outbox; trying again in 1s");
                return Some(Instant::now() + Duration::from_secs(1));
            }
        }
        None
    }

    /// Attempts everything due now once, `concurrency` at a time, and records the
    /// outcomes. For `sdm-watch once` and for tests.
    pub async fn deliver_due(&self) -> Result<Settled, StoreError> {
        let mut settled = Settled::default();
        // Tried in this call and still queued (to retry later, or its task failed): not
        // tried twice. Delivered and dead ones are no longer due, so need no exclusion.
        let mut again: HashSet<String> = HashSet::new();
        loop {
            let concurrency = self.concurrency();
            let due = self.claim(concurrency, again.clone()).await?;
            if due.is_empty() {
                return Ok(settled);
            }
            let mut round = JoinSet::new();
            for delivery in due {
                again.insert(delivery.id().to_owned());
                self.spawn_attempt(&mut round, delivery);
            }
            let mut finished = Vec::new();
            while let Some(joined) = round.join_next().await {
                // A task that failed leaves its alert queued for a later call.
                if let Ok(outcome) = joined {
                    finished.push(outcome);
                }
            }
            let ids: Vec<String> = finished.iter().map(|(d, _)| d.id().to_owned()).collect();
            for (id, outcome) in ids.into_iter().zip(self.settle(finished).await?) {
                match outcome {
                    Outcome::Delivered => settled.delivered += 1,
                    Outcome::Retrying => settled.retrying += 1,
                    Outcome::Dead => settled.dead += 1,
                }
                if outcome != Outcome::Retrying {
                    again.remove(&id);
                }
            }
        }
    }

    /// Gathers the digests whose windows have closed, then takes what is due now, digests
    /// first, leaving out `busy` (in flight, or tried already): at most `room` deliveries.
    /// Only the digests taken have their members read.
    async fn claim(&self, room: usize, busy: HashSet<String>) -> Result<Vec<Delivery>, StoreError> {
        let setup = self.current();
        let groupings = setup.groupings.clone();
        let hours = setup.hours.clone();
        let max_age_ms = setup.max_age.as_millis() as i64;
        let now = self.clock.now_ms();
        let claim = Claim {
            replica: self.replica.clone(),
            now_ms: now,
            ttl_ms: setup.claim_ttl.as_millis() as i64,
        };
        self.store
            .run(move |conn| {
                gather(conn, &groupings, &hours, now, max_age_ms)?;
                let mut due: Vec<Delivery> = Vec::new();
                // Claimed beyond `room` or tried already in this round: claimed, then let
                // go at once, so that nothing waits for a claim nobody acts on.
                for digest in digests::due(conn, &claim, room + busy.len())? {
                    if busy.contains(&digest.id) || due.len() >= room {
                        outbox::unclaim(conn, Target::Digest, &digest.id, &claim.replica)?;
                        continue;
                    }
                    let members = digests::members(conn, &digest.id)?;
                    due.push(Delivery::Digest { digest, members });
                }
                for alert in outbox::due(conn, &claim, room + busy.len())? {
                    if busy.contains(&alert.id) || due.len() >= room {
                        outbox::unclaim(conn, Target::Alert, &alert.id, &claim.replica)?;
                        continue;
                    }
                    due.push(Delivery::Alert(alert));
                }
                Ok(due)
            })
            .await
    }

    /// When something next falls due: an attempt, or a digest's window closing.
    async fn next_due(&self) -> Option<Instant> {
        let now = self.clock.now_ms();
        let setup = self.current();
        let (groupings, hours) = (setup.groupings.clone(), setup.hours.clone());
        let next = self
            .store
            .run(move |conn| {
                let closing = next_closing(&digests::waiting(conn)?, &groupings, &hours, now);
                let next = [
                    outbox::next_due_after(conn, now)?,
                    digests::next_due_after(conn, now)?,
                    closing,
                ];
                Ok(next.into_iter().flatten().min())
            })
            .await
            .ok()
            .flatten()?;
        // A time far ahead (the store may hold anything) waits at most a day; the worker
        // looks again every LOOK_AT_LEAST_EVERY anyway.
        let wait = Duration::from_millis(next.saturating_sub(now).clamp(0, 86_400_000) as u64);
        Some(Instant::now() + wait)
    }

    /// Starts one delivery attempt with the channels current now.
    fn spawn_attempt(
        &self,
        set: &mut JoinSet<(Delivery, Attempt)>,
        delivery: Delivery,
    ) -> tokio::task::AbortHandle {
        let setup = self.current();
        let span = delivery.span();
        set.spawn(
            async move {
                let attempt = delivery::attempt(&setup.channels, &delivery).await;
                (delivery, attempt)
            }
            .instrument(span),
        )
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
