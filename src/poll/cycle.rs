//! One cycle in progress (`Cycle`, driven by [`super::watcher`]): a listing read a page at
//! a time, each page's changes committed with their alerts (or held, when an alert waits
//! for details); what a cycle did (`CycleSummary`) and how it failed (`CycleError`).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::Notify;
use tokio::time::Instant;
use tracing::{debug, info};

use super::plan;
use super::tracker::{self, Rules};
use crate::config::{Config, Organisation};
use crate::domain::{Clock, ProjectId};
use crate::sdm::{ApiError, Job, JobFilter, SdmClient};
use crate::store::Db;
use crate::store::jobs::{self, ActiveJob};
use crate::store::silences::Silence;
use crate::store::{Store, StoreError};

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
    /// The organisation watched, as the config has it now (its name never changes).
    pub org: Organisation,
    pub client: SdmClient,
}

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
    pub wake: &'a Notify,
    pub client: &'a SdmClient,
    /// The client for calls about one job: a short retry budget, so that one failing job
    /// cannot hold up the cycle (it is retried on its own backoff at later cycles).
    pub quick: SdmClient,
    pub config: &'a Arc<Config>,
    /// The organisation watched: its name keys every record the cycle reads and writes.
    pub org: &'a Organisation,
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
    pub active_ids: HashSet<String>,
    /// Those of them with failed lookups, forgotten once a listing shows them.
    pub failed_lookups: HashSet<String>,
    /// The tracked active jobs some listing of this cycle showed.
    pub seen: HashSet<String>,
    pub tally: Tally,
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
        let org = self.org_name();
        let recorded = self
            .timed(move |conn| jobs::get_many(conn, &org, ids.iter().map(String::as_str)))
            .await?;
        let changes = tracker::plan(jobs, &recorded, &self.rules);
        self.commit(changes, &recorded, Vec::new(), recovered).await
    }

    /// The job's page in the API, for alerts.
    pub fn job_url(&self, id: &str) -> String {
        crate::sdm::job_url(&self.org.api.base_url, id, &[]).to_string()
    }

    /// The organisation's name, owned, for work on the store's thread.
    pub fn org_name(&self) -> String {
        self.org.name.clone()
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

/// The tracked active jobs, for [`Cycle::look_up`].
pub(super) type Active = [ActiveJob];
