//! Poll cycles: the listings of [`super::plan`], read a page at a time, each page's changes
//! committed with their alerts (or held, when an alert waits for details); then the jobs
//! no listing showed are looked up, held changes completed, and the bookkeeping written
//! last, so that a cycle cut short is simply done again.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::plan;
use super::tracker::{self, Rules};
use crate::config::Config;
use crate::domain::time::now_ms;
use crate::domain::time::{from_micros, micros};
use crate::domain::{Clock, ProjectId, SystemClock};
use crate::output;
use crate::sdm::{ApiError, Job, JobFilter, SdmClient};
use crate::store::Db;
use crate::store::jobs::{self, ActiveJob};
use crate::store::silences::{self, Silence};
use crate::store::{Bookkeeping, Store, StoreError, gauges};

#[derive(Debug, thiserror::Error)]
pub enum CycleError {
    #[error("the SDM API: {0}")]
    Api(#[from] ApiError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What one cycle did, for the log line and `once`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CycleSummary {
    /// Jobs the listings showed (a job shown by two listings counts once).
    pub jobs_seen: usize,
    pub transitions: usize,
    pub alerts_queued: usize,
    /// Changes that alert but wait for a detail, the project or the rows, at the end.
    pub alerts_held: usize,
    pub requests: u64,
    pub duration: Duration,
    /// Time spent waiting on the state store, reads and commits together.
    pub store_time: Duration,
    pub first_cycle: bool,
    /// A tracked job is `running` after the cycle: the next comes at the fast cadence.
    pub running: bool,
}

/// What a cycle needs that a reload may replace.
pub struct WatchSetup {
    pub config: Arc<Config>,
    pub client: SdmClient,
}

/// Runs poll cycles against one SDM organisation and one store.
pub struct Watcher {
    store: Store,
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
}

/// How far the stored anchor of the listing window may lag the real one.
const ANCHOR_SAVED_EVERY: time::Duration = time::Duration::minutes(5);

/// One cycle's running totals.
#[derive(Default)]
pub(super) struct Tally {
    /// The jobs listings showed, each once however many listings showed it (by a hash
    /// of the id: the first cycle may list a hundred thousand).
    pub jobs_listed: HashSet<u64>,
    pub transitions: usize,
    pub alerts_queued: usize,
    pub store_time: Duration,
}

/// One cycle in progress: the setup it started with, what it has seen, its totals.
pub(super) struct Cycle<'a> {
    pub store: &'a Store,
    wake: &'a Notify,
    pub client: &'a SdmClient,
    /// The client for calls about one job: a short retry budget, so that one failing job
    /// cannot hold up the cycle (it is retried on its own backoff at later cycles).
    pub quick: SdmClient,
    pub config: &'a Arc<Config>,
    pub rules: Rules<'a>,
    /// Every project the configuration names (`poll.projects`, channels, `[output]`),
    /// sorted: the projects a job must be told apart by.
    pub interest: Vec<ProjectId>,
    /// When the changes this cycle finds were detected.
    pub now: OffsetDateTime,
    /// `poll.lookback` before the very first cycle (µs).
    pub floor_us: i64,
    /// The clock of reminders and of when jobs entered their status.
    pub clock: &'a dyn Clock,
    /// The silences in force when the cycle began.
    pub silences: Vec<Silence>,
    /// The tracked running and pending jobs, as the cycle began.
    active_ids: HashSet<String>,
    /// Those of them with failed lookups, forgotten once a listing shows them.
    failed_lookups: HashSet<String>,
    /// The tracked active jobs some listing of this cycle showed.
    pub seen: HashSet<String>,
    pub tally: Tally,
}

impl Watcher {
    pub fn new(store: Store, wake: Arc<Notify>, setup: watch::Receiver<Arc<WatchSetup>>) -> Self {
        Self {
            store,
            wake,
            setup,
            clock: Arc::new(SystemClock),
            anchor_us: std::sync::Mutex::new(None),
        }
    }

    /// Reminders read the time from `clock` (tests move it instead of waiting).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Sets the `jobs_tracked` and `outbox_pending` gauges from the store; cycles then move
    /// them by their own changes.
    pub async fn prime_gauges(&self) -> Result<(), StoreError> {
        self.store.run(|conn| gauges::set_all(conn)).await
    }

    /// One poll cycle (see [`super::plan`] for what it lists).
    pub async fn cycle(&self) -> Result<CycleSummary, CycleError> {
        let started = Instant::now();
        let local_start = OffsetDateTime::now_utc();
        let setup = self.setup.borrow().clone();
        let config = &setup.config;
        let client = &setup.client;
        let requests_before = client.requests_sent();
        let interest = projects_of_interest(config);
        let checked_for = interest
            .iter()
            .map(ProjectId::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let read = Instant::now();
        let silence_at = now_ms();
        let (mut book, active, silences) = self
            .store
            .run(move |conn| {
                let mut book = Bookkeeping::read(conn)?;
                if book.projects_checked.as_deref() != Some(checked_for.as_str()) {
                    // "In none of the projects" was found for other projects: look again.
                    conn.transaction(|tx| {
                        jobs::uncheck_missing_projects(tx)?;
                        Bookkeeping {
                            projects_checked: Some(checked_for.clone()),
                            ..Bookkeeping::default()
                        }
                        .write(tx)?;
                        Ok(())
                    })?;
                    book.projects_checked = Some(checked_for);
                }
                let silences = silences::active(conn, silence_at)?;
                Ok((book, jobs::active(conn)?, silences))
            })
            .await?;
        let stored_anchor = book.anchor_us;
        let remembered = *self.anchor_us.lock().unwrap_or_else(|p| p.into_inner());
        book.anchor_us = book.anchor_us.max(remembered);
        let quick_budget = (config.retry.initial_interval * 3).min(config.retry.max_elapsed);
        let mut cycle = Cycle {
            store: &self.store,
            wake: &self.wake,
            client,
            quick: client.with_max_elapsed(quick_budget),
            config,
            rules: Rules {
                first_cycle: !book.first_cycle_done,
                alert_existing: config.poll.alert_existing,
                notify_on: &config.poll.notify_on,
            },
            interest,
            now: local_start,
            clock: &*self.clock,
            silences,
            floor_us: book.floor_us.unwrap_or(i64::MIN),
            active_ids: active.iter().map(|a| a.job.id.clone()).collect(),
            failed_lookups: active
                .iter()
                .filter(|a| a.lookup_attempts > 0)
                .map(|a| a.job.id.clone())
                .collect(),
            seen: HashSet::new(),
            tally: Tally {
                store_time: read.elapsed(),
                ..Tally::default()
            },
        };

        // Held changes whose wait is over go out even while the API is down.
        cycle.complete_held(false).await?;
        for filter in plan::active_listings() {
            cycle.read_listing(&filter).await?;
        }
        let start = plan::cycle_start(local_start, started, client.server_clock());
        let floor = match book.floor_us.and_then(from_micros) {
            Some(floor) => floor,
            None => {
                // The very first attempt: the floor stays where it is, even if this
                // attempt fails and the next comes much later.
                let floor = start.saturating_sub(
                    time::Duration::try_from(config.poll.lookback).unwrap_or(time::Duration::MAX),
                );
                let floor_us = micros(floor);
                cycle
                    .timed(move |conn| {
                        Bookkeeping {
                            floor_us: Some(floor_us),
                            ..Bookkeeping::default()
                        }
                        .write(conn)
                    })
                    .await?;
                floor
            }
        };
        cycle.floor_us = micros(floor);
        let new_jobs = JobFilter {
            created_after: Some(plan::new_jobs_after(&book, floor)),
            ..JobFilter::default()
        };
        cycle.read_listing(&new_jobs).await?;
        cycle.look_up(&active).await?;
        cycle.remind().await?;
        let held = cycle.complete_held(true).await?;
        let running = cycle.timed(|conn| jobs::any_running(conn)).await?;
        let anchor_us = micros(start);
        let save_anchor = stored_anchor.is_none_or(|stored| {
            anchor_us - stored >= ANCHOR_SAVED_EVERY.whole_microseconds() as i64
        });
        if save_anchor || !book.first_cycle_done {
            cycle
                .timed(move |conn| {
                    Bookkeeping {
                        first_cycle_done: true,
                        anchor_us: Some(anchor_us),
                        ..Bookkeeping::default()
                    }
                    .write(conn)
                })
                .await?;
        }
        *self.anchor_us.lock().unwrap_or_else(|p| p.into_inner()) = Some(anchor_us);
        if let Some(output) = &config.output {
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
            first_cycle: !book.first_cycle_done,
            running,
        })
    }
}

impl Cycle<'_> {
    /// Reads the listing for `filter` a page at a time, committing each page's changes. A
    /// listing that shrank while it was read is read again (see [`plan::READS`]).
    pub async fn read_listing(&mut self, filter: &JobFilter) -> Result<(), CycleError> {
        let client = self.client;
        let seen_before = self.seen.clone();
        for read in 1..=plan::READS {
            debug!(?filter, read, "listing jobs");
            let mut pages = client.pages(filter);
            while let Some(jobs) = pages.next_page().await? {
                self.take_page(jobs, filter.project).await?;
            }
            if !pages.shrank() {
                return Ok(());
            }
            // A job this read showed as active may have left since: only a read that did
            // not shrink tells which tracked jobs are still there.
            self.seen.clone_from(&seen_before);
            debug!(?filter, read, "the listing shrank while it was read");
        }
        info!(
            ?filter,
            "the listing kept changing while it was read; a job it skipped is seen at a later cycle"
        );
        Ok(())
    }

    /// Compares one page of a listing with the records and commits what changed. A
    /// listing filtered by `project` tells every job's project.
    async fn take_page(
        &mut self,
        jobs: Vec<Job>,
        project: Option<ProjectId>,
    ) -> Result<(), CycleError> {
        let mut jobs = crate::sdm::last_copies(jobs);
        let mut recovered = Vec::new();
        for job in &mut jobs {
            self.tally.jobs_listed.insert(id_hash(&job.id));
            if project.is_some() {
                job.project = project;
            }
            if self.active_ids.contains(&job.id) {
                self.seen.insert(job.id.clone());
            }
            if self.failed_lookups.remove(&job.id) {
                recovered.push(job.id.clone());
            }
        }
        let ids: Vec<String> = jobs.iter().map(|job| job.id.clone()).collect();
        let recorded = self
            .timed(move |conn| jobs::get_many(conn, ids.iter().map(String::as_str)))
            .await?;
        let changes = tracker::plan(jobs, &recorded, &self.rules);
        self.commit(changes, &recorded, Vec::new(), recovered).await
    }

    /// The job's page in the API, for alerts.
    pub fn job_url(&self, id: &str) -> String {
        crate::sdm::job_url(&self.config.api.base_url, id, &[]).to_string()
    }

    /// Wakes the delivery worker: alerts were queued.
    pub fn wake_worker(&self) {
        self.wake.notify_one();
    }

    /// Runs `work` on the store, adding the wait to the cycle's store time.
    pub async fn timed<T, F>(&mut self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Db) -> Result<T, StoreError> + Send + 'static,
    {
        let started = Instant::now();
        let result = self.store.run(work).await;
        self.tally.store_time += started.elapsed();
        result
    }
}

fn id_hash(id: &str) -> u64 {
    use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
    BuildHasherDefault::<DefaultHasher>::default().hash_one(id)
}

/// Every project the configuration names, sorted, without repeats.
fn projects_of_interest(config: &Config) -> Vec<ProjectId> {
    let mut projects: Vec<ProjectId> = config
        .poll
        .projects
        .iter()
        .chain(config.webhooks.iter().flat_map(|hook| &hook.projects))
        .chain(config.emails.iter().flat_map(|email| &email.projects))
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

/// The tracked active jobs, for [`Cycle::look_up`].
pub(super) type Active = [ActiveJob];

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
