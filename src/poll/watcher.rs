//! The watcher: one poll cycle after another against one SDM organisation and one store
//! (several organisations: one watcher each, over one store).
//! A cycle reads what the store knows, places its listing window, reads the listings of
//! [`super::plan`] (each job once), looks up the jobs no listing showed, sends reminders,
//! completes held alerts, and writes its bookkeeping last, so that a cycle cut short is
//! simply done again.

use std::collections::HashSet;
use std::sync::Arc;

use time::OffsetDateTime;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;
use tracing::{info, warn};

use super::cycle::{Active, Cycle, CycleError, CycleSummary, Tally, WatchSetup};
use super::plan;
use super::tracker::Rules;
use crate::config::{Config, Organisation};
use crate::domain::time::{from_micros, micros, now_ms};
use crate::domain::{Clock, ProjectId, SystemClock};
use crate::output;
use crate::store::jobs::{self, ActiveJob};
use crate::store::silences::{self, Silence};
use crate::store::{Bookkeeping, Store, StoreError};

/// Runs poll cycles against one SDM organisation and one store.
pub struct Watcher {
    store: Store,
    /// The name of the organisation watched: it keys every record of it in the store.
    org: String,
    /// Poked after alerts are committed, so the delivery worker starts at once.
    wake: Arc<Notify>,
    /// The current config and client; each cycle takes whatever is current when it starts.
    setup: watch::Receiver<Arc<WatchSetup>>,
    /// The clock of reminders (a test's may stand still).
    clock: Arc<dyn Clock>,
    /// When the last complete cycle of this process began (µs). The store has it too,
    /// written only every [`ANCHOR_SAVED_EVERY`] so that a quiet cycle writes nothing; after
    /// a restart the older stored one only starts the window earlier.
    anchor_us: std::sync::Mutex<Option<i64>>,
    /// Where the next cycle's window starts (µs), for tests that place jobs on its edge.
    next_window_us: std::sync::Mutex<Option<i64>>,
}

/// How far the stored anchor of the listing window may lag the real one.
const ANCHOR_SAVED_EVERY: time::Duration = time::Duration::minutes(5);

/// What the store tells a cycle as it begins.
struct Known {
    book: Bookkeeping,
    active: Vec<ActiveJob>,
    silences: Vec<Silence>,
}

impl Watcher {
    pub fn new(store: Store, wake: Arc<Notify>, setup: watch::Receiver<Arc<WatchSetup>>) -> Self {
        let org = setup.borrow().org.name.clone();
        Self {
            store,
            org,
            wake,
            setup,
            clock: Arc::new(SystemClock),
            anchor_us: std::sync::Mutex::new(None),
            next_window_us: std::sync::Mutex::new(None),
        }
    }

    /// Reminders read the time from `clock` (tests move it instead of waiting).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Where the next cycle's listing window starts (µs): the active listings end there
    /// and the listing of new jobs begins. `None` before a cycle of this process completed.
    pub fn next_window_us(&self) -> Option<i64> {
        *self
            .next_window_us
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// One poll cycle (see [`super::plan`] for what it lists).
    pub async fn cycle(&self) -> Result<CycleSummary, CycleError> {
        let started = Instant::now();
        let local_start = OffsetDateTime::now_utc();
        let setup = self.setup.borrow().clone();
        let client = &setup.client;
        let requests_before = client.requests_sent();
        let interest = projects_of_interest(&setup.config, &setup.org);
        let read = Instant::now();
        let mut known = self.read_known(&interest).await?;
        let stored_anchor = known.book.anchor_us;
        let remembered = *self.anchor_us.lock().unwrap_or_else(|p| p.into_inner());
        known.book.anchor_us = known.book.anchor_us.max(remembered);
        let mut cycle = self.begin(&setup, &known, interest, local_start);
        cycle.tally.store_time = read.elapsed();

        // Held changes whose wait is over go out even while the API is down.
        cycle.complete_held(false).await?;
        for filter in plan::active_listings(active_until(&known.book, &setup.config, local_start)) {
            cycle.read_listing(&filter).await?;
        }
        let floor = cycle.floor(&known.book, local_start, started).await?;
        let window = plan::new_jobs_after(&known.book, floor);
        cycle.read_listing(&plan::new_jobs_listing(window)).await?;
        cycle.look_up(&known.active).await?;
        cycle.remind().await?;
        let held = cycle.complete_held(true).await?;
        let org = self.org.clone();
        let running = cycle
            .timed(move |conn| jobs::any_running(conn, &org))
            .await?;

        let start = plan::cycle_start(local_start, started, client.server_clock());
        let anchor_us = micros(start);
        let first_cycle = !known.book.first_cycle_done;
        let save_anchor = first_cycle
            || stored_anchor.is_none_or(|stored| {
                anchor_us.saturating_sub(stored) >= ANCHOR_SAVED_EVERY.whole_microseconds() as i64
            });
        if save_anchor {
            let org = self.org.clone();
            cycle
                .timed(move |conn| {
                    Bookkeeping {
                        first_cycle_done: true,
                        anchor_us: Some(anchor_us),
                        ..Bookkeeping::default()
                    }
                    .write(conn, &org)
                })
                .await?;
        }
        *self.anchor_us.lock().unwrap_or_else(|p| p.into_inner()) = Some(anchor_us);
        let next = Bookkeeping {
            first_cycle_done: true,
            anchor_us: Some(anchor_us),
            ..known.book.clone()
        };
        *self
            .next_window_us
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(micros(plan::new_jobs_after(&next, floor)));
        if let Some(output) = &setup.config.output {
            expire_outputs(output).await;
        }
        Ok(CycleSummary {
            jobs_seen: cycle.tally.jobs_listed.len(),
            transitions: cycle.tally.transitions,
            alerts_queued: cycle.tally.alerts_queued,
            alerts_held: held,
            requests: client.requests_sent() - requests_before,
            duration: started.elapsed(),
            store_time: cycle.tally.store_time,
            first_cycle,
            running,
        })
    }

    /// The bookkeeping, the tracked active jobs and the silences in force. When the
    /// projects of interest changed, jobs found in none of the old ones are checked again.
    async fn read_known(&self, interest: &[ProjectId]) -> Result<Known, StoreError> {
        let checked_for = interest
            .iter()
            .map(ProjectId::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let silence_at = now_ms();
        let org = self.org.clone();
        self.store
            .run(move |conn| {
                let mut book = Bookkeeping::read(conn, &org)?;
                if book.projects_checked.as_deref() != Some(checked_for.as_str()) {
                    // "In none of the projects" was found for other projects: look again.
                    conn.transaction(|tx| {
                        jobs::uncheck_missing_projects(tx, &org)?;
                        Bookkeeping {
                            projects_checked: Some(checked_for.clone()),
                            ..Bookkeeping::default()
                        }
                        .write(tx, &org)?;
                        Ok(())
                    })?;
                    book.projects_checked = Some(checked_for);
                }
                Ok(Known {
                    silences: silences::active(conn, silence_at)?,
                    active: jobs::active(conn, &org)?,
                    book,
                })
            })
            .await
    }

    fn begin<'a>(
        &'a self,
        setup: &'a WatchSetup,
        known: &Known,
        interest: Vec<ProjectId>,
        now: OffsetDateTime,
    ) -> Cycle<'a> {
        let config = &setup.config;
        let client = &setup.client;
        let quick_budget = (config.retry.initial_interval * 3).min(config.retry.max_elapsed);
        Cycle {
            store: &self.store,
            wake: &self.wake,
            client,
            quick: client.with_max_elapsed(quick_budget),
            config,
            org: &setup.org,
            rules: Rules {
                first_cycle: !known.book.first_cycle_done,
                alert_existing: config.poll.alert_existing,
                notify_on: &config.poll.notify_on,
                silent_below_us: known.book.silent_below_us(),
            },
            interest,
            now,
            clock: &*self.clock,
            silences: known.silences.clone(),
            floor_us: known.book.floor_us.unwrap_or(i64::MIN),
            active_ids: known.active.iter().map(|a| a.job.id.clone()).collect(),
            failed_lookups: failed_lookups(&known.active),
            seen: HashSet::new(),
            tally: Tally::default(),
        }
    }
}

/// Where the active listings end: where the listing of new jobs will start, so that each
/// job is read once. Before the very first attempt has placed the floor (on the server's
/// clock, which its first answers tell), it is `poll.lookback` before now on the local
/// clock: never before the floor (which takes the earlier of the two clocks), so no job
/// falls between the listings; at most the active jobs of the clocks' difference are read
/// twice, once.
fn active_until(
    book: &Bookkeeping,
    config: &Config,
    local_start: OffsetDateTime,
) -> OffsetDateTime {
    match book.floor_us.and_then(from_micros) {
        Some(floor) => plan::new_jobs_after(book, floor),
        None => local_start.saturating_sub(
            time::Duration::try_from(config.poll.lookback).unwrap_or(time::Duration::MAX),
        ),
    }
}

impl Cycle<'_> {
    /// `poll.lookback` before the very first cycle, on the earlier of the local and the
    /// server's clock (the active listings' answers tell the server's). Placed once, by the
    /// very first attempt; later attempts and cycles read it back.
    async fn floor(
        &mut self,
        book: &Bookkeeping,
        local_start: OffsetDateTime,
        started: Instant,
    ) -> Result<OffsetDateTime, CycleError> {
        if let Some(floor) = book.floor_us.and_then(from_micros) {
            self.floor_us = micros(floor);
            return Ok(floor);
        }
        let start = plan::cycle_start(local_start, started, self.client.server_clock());
        let lookback =
            time::Duration::try_from(self.config.poll.lookback).unwrap_or(time::Duration::MAX);
        let floor = start.saturating_sub(lookback);
        let floor_us = micros(floor);
        // The floor stays where it is, even if this attempt fails and the next comes much
        // later.
        let org = self.org_name();
        self.timed(move |conn| {
            Bookkeeping {
                floor_us: Some(floor_us),
                ..Bookkeeping::default()
            }
            .write(conn, &org)
        })
        .await?;
        self.floor_us = floor_us;
        // A listing before this one may have raised it already (`[state] keep`).
        self.rules.silent_below_us = self.rules.silent_below_us.max(floor_us);
        Ok(floor)
    }
}

fn failed_lookups(active: &Active) -> HashSet<String> {
    active
        .iter()
        .filter(|a| a.lookup_attempts > 0)
        .map(|a| a.job.id.clone())
        .collect()
}

/// Every project the configuration names for `org`, sorted, without repeats.
fn projects_of_interest(config: &Config, org: &Organisation) -> Vec<ProjectId> {
    let mut projects: Vec<ProjectId> = org
        .projects
        .iter()
        .chain(
            config
                .webhooks
                .iter()
                .flat_map(|hook| &hook.routing.projects),
        )
        .chain(
            config
                .emails
                .iter()
                .flat_map(|email| &email.routing.projects),
        )
        .chain(
            config
                .output
                .iter()
                .flat_map(|output| output.projects.keys()),
        )
        .copied()
        .collect();
    projects.sort_unstable();
    projects.dedup();
    projects
}

async fn expire_outputs(config: &crate::config::OutputConfig) {
    let dir = config.dir.clone();
    let retention = config.retention;
    match tokio::task::spawn_blocking(move || output::remove_expired(&dir, retention)).await {
        Ok(Ok(0)) => {}
        Ok(Ok(removed)) => info!(removed, "expired output files removed"),
        Ok(Err(error)) => {
            warn!(dir = %config.dir.display(), error = %error, "cannot clean the output directory")
        }
        Err(error) => warn!(error = %error, "output clean-up failed"),
    }
}
