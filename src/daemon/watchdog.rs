//! The watcher watches itself: when no cycle has succeeded for `watchdog.alert_after`, one
//! `watcher.failing` alert goes through the channels (event `watcher`), and when a cycle
//! succeeds after it, one `watcher.recovered`. The outage lives in the store (written in
//! the transaction that queues its alert), so a restart during it neither repeats nor
//! forgets it. When the store itself fails, the alert is sent directly, without the
//! outbox, best effort, once per process and outage: the store is every organisation's,
//! so the first organisation's watchdog to see it tells, and the others stay quiet about
//! it (no storm of one alert per organisation).
//!
//! A quiet, healthy cycle costs nothing here: the outage record is read once at start,
//! then only written while there is one.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use time::OffsetDateTime;
use tracing::{error, warn};

use crate::config::Config;
use crate::domain::Clock;
use crate::domain::time::millis as ms;
use crate::notify::alerts;
use crate::notify::{AlertEvent, Channels};
use crate::poll::{CycleError, CycleSummary};
use crate::sdm::Failure;
use crate::store::bookkeeping::Outage;
use crate::store::incidents::{self, Condition};
use crate::store::{Store, StoreError, outbox, silences};

mod events;

use events::{failing, recovered, seconds_between, send_directly, since_text};

/// Why the watcher is blind, the `reason` of `watcher.failing`.
pub fn reason(error: &CycleError) -> &'static str {
    match error {
        CycleError::Store(_) => "store",
        CycleError::Api(api) => api.outage_reason(),
    }
}

/// The watchdog of one watcher (one organisation's).
pub struct Watchdog {
    store: Store,
    /// The organisation watched: its outage is its own.
    org: String,
    /// The outage as the store last told it; `None` until read.
    known: Option<Option<Outage>>,
    /// When a cycle last succeeded (or, among replicas, a leader was last seen), else when
    /// this process started: an outage counts from it.
    last_success: OffsetDateTime,
    /// `watcher.failing` went out directly (the store failed) in this outage.
    sent_directly: bool,
    /// Shared by the watchdogs of one process: one of them sent `watcher.failing`
    /// directly, for the store outage in progress.
    told_directly: Arc<AtomicBool>,
    clock: Arc<dyn Clock>,
}

impl Watchdog {
    /// The watchdog of organisation `org`; `told_directly` is shared by every watchdog of
    /// the process (see the module's text).
    pub fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        org: &str,
        told_directly: Arc<AtomicBool>,
    ) -> Watchdog {
        Watchdog {
            store,
            org: org.to_owned(),
            known: None,
            last_success: clock.now(),
            sent_directly: false,
            told_directly,
            clock,
        }
    }

    /// Another organisation's watchdog told of the store outage in progress: this one's
    /// blindness has the same cause, and was told.
    fn told_by_another(&self) -> bool {
        !self.sent_directly && self.told_directly.load(Ordering::Relaxed)
    }

    /// After each cycle: records an outage and alerts once it is old enough, or ends it.
    pub async fn after_cycle(
        &mut self,
        result: &Result<CycleSummary, CycleError>,
        config: &Config,
        channels: &Channels,
    ) {
        let now = self.clock.now();
        let outcome = match result {
            Ok(_) => self.succeeded(config, now).await,
            Err(error) => {
                let failure = Failure {
                    reason: reason(error),
                    error: crate::domain::error_chain(error),
                };
                self.failed(&failure, config, channels, now).await
            }
        };
        if let Err(error) = outcome {
            // Known again at the next look; the cycle's own error is logged already.
            self.known = None;
            warn!(error = %error, "the watchdog cannot record the outage in the store");
        }
    }

    /// When `watcher.failing` falls due if no cycle succeeds before: `alert_after` after the
    /// last success (`None`: never, or it went out already).
    pub fn due_at(&self, config: &Config) -> Option<OffsetDateTime> {
        let alerted =
            self.sent_directly || matches!(&self.known, Some(Some(outage)) if outage.alerted);
        let alert_after = config.watchdog.alert_after?;
        (!alerted).then(|| {
            let after = time::Duration::try_from(alert_after).unwrap_or(time::Duration::MAX);
            self.last_success.saturating_add(after)
        })
    }

    /// How long from now until `watcher.failing` falls due (zero once it has).
    pub fn due_in(&self, config: &Config) -> Option<Duration> {
        let due = self.due_at(config)?;
        Some(Duration::try_from(due - self.clock.now()).unwrap_or(Duration::ZERO))
    }

    /// While a cycle is still running: when its requests are failing (`failure`, the
    /// client's last), the outage is recorded, and `watcher.failing` goes out once it is
    /// due, without waiting for the cycle's retries to run out. A slow cycle whose requests
    /// succeed is no outage. Returns when to look again: in a second, until it went out.
    pub async fn during_cycle(
        &mut self,
        failure: Option<Failure>,
        config: &Config,
        channels: &Channels,
    ) -> Option<tokio::time::Instant> {
        if let Some(failure) = failure {
            let now = self.clock.now();
            if let Err(error) = self.failed(&failure, config, channels, now).await {
                self.known = None;
                warn!(error = %error, "the watchdog cannot record the outage in the store");
            }
        }
        self.due_in(config)
            .map(|_| tokio::time::Instant::now() + Duration::from_secs(1))
    }

    /// Among replicas, at each cycle's turn while this replica does not lead: when no
    /// replica has led (the lease cannot be read or taken: PostgreSQL is unreachable) for
    /// `alert_after`, this replica sends `watcher.failing` itself (reason `store`), through
    /// the outbox if it can, else directly. While another leads, its watchdog speaks.
    pub async fn standing_by(
        &mut self,
        leader: Option<&str>,
        config: &Config,
        channels: &Channels,
    ) {
        // Another replica may record or end an outage meanwhile: read it again on leading.
        self.known = None;
        if leader.is_some() {
            if self.sent_directly {
                // The store is back (another replica leads through it), and this replica
                // told of the outage directly: it tells of the end the same way, since
                // the new leader's watchdog knows nothing of it.
                let event = recovered(ms(self.last_success), config, &self.org, self.clock.now());
                send_directly(&event, &self.org, config, channels).await;
                self.told_directly.store(false, Ordering::Relaxed);
                self.sent_directly = false;
            }
            self.last_success = self.clock.now();
            return;
        }
        let now = self.clock.now();
        let failure = Failure {
            reason: "store",
            error: "no replica leads: the lease cannot be read or taken (is PostgreSQL reachable?)"
                .to_owned(),
        };
        if let Err(error) = self.failed(&failure, config, channels, now).await {
            self.known = None;
            warn!(error = %error, "the watchdog cannot record the outage in the store");
        }
    }

    async fn known(&mut self) -> Result<Option<Outage>, StoreError> {
        if let Some(known) = &self.known {
            return Ok(known.clone());
        }
        let org = self.org.clone();
        let outage = self.store.run(move |conn| Outage::read(conn, &org)).await?;
        self.known = Some(outage.clone());
        Ok(outage)
    }

    async fn succeeded(&mut self, config: &Config, now: OffsetDateTime) -> Result<(), StoreError> {
        let stored = self.known().await?;
        let last_success = std::mem::replace(&mut self.last_success, now);
        if stored.is_none() && !self.sent_directly {
            return Ok(());
        }
        let since_ms = stored
            .as_ref()
            .map_or_else(|| ms(last_success), |outage| outage.since_ms);
        let alerted = stored.as_ref().is_some_and(|o| o.alerted) || self.sent_directly;
        let recovered = alerted.then(|| recovered(since_ms, config, &self.org, now));
        let config = config.clone();
        let now_ms = ms(now);
        let org = self.org.clone();
        let queued = self
            .store
            .run(move |conn| {
                conn.transaction(|tx| {
                    let queued = match &recovered {
                        Some(event) => queue(tx, event, &org, &config, now_ms)?,
                        None => Vec::new(),
                    };
                    Outage::clear(tx, &org)?;
                    Ok(queued)
                })
            })
            .await?;
        alerts::note_committed(&queued);
        self.known = Some(None);
        if self.sent_directly {
            self.told_directly.store(false, Ordering::Relaxed);
        }
        self.sent_directly = false;
        Ok(())
    }

    async fn failed(
        &mut self,
        failure: &Failure,
        config: &Config,
        channels: &Channels,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let since = self.last_success;
        let Some(alert_after) = config.watchdog.alert_after else {
            return Ok(());
        };
        let recorded = self.record(failure, config, alert_after, now).await;
        if let Err(store_error) = &recorded
            && !self.sent_directly
            && now - since >= alert_after
            && !self.told_directly.swap(true, Ordering::Relaxed)
        {
            error!(error = %store_error, "the store cannot be written either: sending watcher.failing directly, once, without the outbox");
            let event = failing(failure, ms(since), config, &self.org, now);
            send_directly(&event, &self.org, config, channels).await;
            self.sent_directly = true;
        }
        recorded
    }

    /// Writes the outage; queues `watcher.failing` with it once it is old enough.
    async fn record(
        &mut self,
        failure: &Failure,
        config: &Config,
        alert_after: Duration,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let stored = self.known().await?;
        let mut outage = stored.unwrap_or(Outage {
            since_ms: ms(self.last_success),
            reason: String::new(),
            last_error: String::new(),
            alerted: false,
        });
        outage.reason = failure.reason.to_owned();
        outage.last_error = failure.error.clone();
        let due = !outage.alerted
            && !self.sent_directly
            && !self.told_by_another()
            && seconds_between(outage.since_ms, now) >= alert_after.as_secs();
        let event = due.then(|| failing(failure, outage.since_ms, config, &self.org, now));
        if self.sent_directly {
            // The direct alert counts as sent: recovery follows it through the outbox.
            outage.alerted = true;
        }
        if event.is_some() {
            warn!(reason = failure.reason, since = %since_text(outage.since_ms), "no poll cycle succeeded for watchdog.alert_after; sending watcher.failing");
            outage.alerted = true;
        }
        let config = config.clone();
        let now_ms = ms(now);
        let written = outage.clone();
        let org = self.org.clone();
        let queued = self
            .store
            .run(move |conn| {
                conn.transaction(|tx| {
                    let queued = match &event {
                        Some(event) => queue(tx, event, &org, &config, now_ms)?,
                        None => Vec::new(),
                    };
                    written.write(tx, &org)?;
                    Ok(queued)
                })
            })
            .await?;
        alerts::note_committed(&queued);
        self.known = Some(Some(outage));
        Ok(())
    }
}

/// Queues a watcher alert for every channel that wants it, in the caller's transaction.
fn queue(
    tx: &mut dyn crate::store::Db,
    event: &AlertEvent,
    org: &str,
    config: &Config,
    now_ms: i64,
) -> Result<Vec<outbox::Alert>, StoreError> {
    let silenced_by = silences::active(tx, now_ms)?;
    let built = alerts::build_watcher(event, org, config, &silenced_by, now_ms);
    for alert in &built {
        outbox::insert(tx, alert)?;
    }
    // `watcher.failing` opens the watcher's incident; `watcher.recovered` ends it (and is
    // itself the resolution every channel that had the first gets).
    incidents::open(tx, &built)?;
    if event.kind == "watcher.recovered" {
        let watcher = |condition: Condition| condition == Condition::Watcher;
        incidents::resolve(tx, org, "", &watcher, "recovered", now_ms)?;
    }
    outbox::announce(tx)?;
    Ok(built)
}
