//! Poll cycles: which window to list, listing it (per project if configured), asking the
//! detail endpoint where the listing cannot tell, and committing the outcome.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::tracker::{self, Bookkeeping, Change, Rules};
use crate::config::{Config, OutputConfig};
use crate::ops::metrics as ops_metrics;
use crate::output;
use crate::sdm::{ApiError, Job, JobFilter, SdmClient, Status};
use crate::store::jobs::{self, TrackedJob};
use crate::store::{Store, StoreError, now_ms};

/// How far before the oldest job it must cover a listing starts: the API's "after" is
/// strict, a job may become visible a little after its `creation_date`, and clocks drift.
pub const WINDOW_MARGIN: Duration = Duration::from_secs(10 * 60);

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
    pub jobs_seen: usize,
    pub transitions: usize,
    pub alerts_queued: usize,
    pub requests: u64,
    pub duration: Duration,
    pub first_cycle: bool,
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
    /// Whether the jobs_tracked gauges were ever set by this process.
    gauges_set: AtomicBool,
}

/// What the store knows before a cycle.
struct Known {
    first_cycle: bool,
    newest_created_us: Option<i64>,
    floor_us: Option<i64>,
    active: Vec<TrackedJob>,
}

impl Watcher {
    pub fn new(store: Store, wake: Arc<Notify>, setup: watch::Receiver<Arc<WatchSetup>>) -> Self {
        Self {
            store,
            wake,
            setup,
            gauges_set: AtomicBool::new(false),
        }
    }

    /// One poll cycle: list, compare, commit, wake the worker.
    pub async fn cycle(&self) -> Result<CycleSummary, CycleError> {
        let started = Instant::now();
        let setup = self.setup.borrow().clone();
        let client = &setup.client;
        let config = &setup.config;
        let requests_before = client.requests_sent();
        let known = self.store.run(read_known).await?;
        let now = OffsetDateTime::now_utc();
        let created_after = window_start(&known, now, config.poll.lookback);
        debug!(created_after = %created_after, first_cycle = known.first_cycle, "listing jobs");

        let listed = list(client, config, created_after).await?;
        let listed_ids: HashSet<String> = listed.iter().map(|job| job.id.clone()).collect();
        let ids: Vec<String> = listed_ids.iter().cloned().collect();
        let mut recorded = self
            .store
            .run(move |conn| jobs::get_many(conn, ids.iter().map(String::as_str)))
            .await?;
        let newest_listed = listed
            .iter()
            .filter_map(Job::created_at)
            .map(tracker::micros)
            .max();
        let rules = Rules {
            first_cycle: known.first_cycle,
            alert_existing: config.poll.alert_existing,
            notify_on: &config.poll.notify_on,
        };
        let mut changes = tracker::plan(listed, &recorded, &rules);

        // An active job the listing should have shown but did not: ask for it directly.
        let mut removed = Vec::new();
        let window_us = tracker::micros(created_after);
        for old in known.active.iter().filter(|old| {
            !listed_ids.contains(&old.id)
                && old.created_us.is_some_and(|created| created > window_us)
                && (config.poll.projects.is_empty()
                    || old
                        .project
                        .is_some_and(|p| config.poll.projects.contains(&p)))
        }) {
            match client.job(&old.id).await {
                Ok(detail) if detail.status.as_str() != old.status => {
                    let mut job = tracker::job_from_record(old);
                    job.status = detail.status;
                    job.message = detail.message;
                    job.step = detail.step;
                    let alert = config.poll.notify_on.contains(&job.status);
                    changes.push(Change {
                        job,
                        previous: Some(old.status.clone()),
                        alert,
                        output: None,
                    });
                    recorded.insert(old.id.clone(), old.clone());
                }
                Ok(_) => {}
                Err(ApiError::NotFound { .. }) => {
                    info!(job_id = %old.id, "a tracked job no longer exists; forgetting it");
                    removed.push(old.id.clone());
                }
                Err(error) => {
                    warn!(job_id = %old.id, error = %error, "cannot read a job missing from the listing; will try next cycle");
                }
            }
        }

        // Error alerts carry the message from the detail endpoint.
        for change in changes.iter_mut().filter(|change| {
            change.alert && change.job.status == Status::Error && change.job.message.is_none()
        }) {
            match client.job(&change.job.id).await {
                Ok(detail) => {
                    change.job.message = detail.message;
                    if detail.step.is_some() {
                        change.job.step = detail.step;
                    }
                }
                Err(error) => {
                    warn!(job_id = %change.job.id, error = %error, "cannot read the error message; alerting without it");
                }
            }
        }

        if let Some(output) = &config.output {
            // The first cycle records history silently; its done jobs are not fetched either.
            if !known.first_cycle || config.poll.alert_existing {
                fetch_outputs(client, output, &mut changes).await;
            }
            expire_outputs(output).await;
        }

        let now_ms = now_ms();
        let alerts: Vec<_> = changes
            .iter()
            .flat_map(|change| tracker::alerts_for(change, config, now, now_ms))
            .collect();
        let records: Vec<TrackedJob> = changes
            .iter()
            .map(|change| tracker::record(&change.job, recorded.get(&change.job.id)))
            .collect();
        let bookkeeping = Bookkeeping {
            first_cycle_done: known.first_cycle,
            newest_created_us: newest_listed
                .into_iter()
                .chain(known.newest_created_us)
                .max(),
            floor_us: known.first_cycle.then_some(window_us),
        };
        let summary = CycleSummary {
            jobs_seen: listed_ids.len(),
            transitions: changes.iter().filter(|c| c.is_transition()).count(),
            alerts_queued: alerts.len(),
            requests: 0,
            duration: Duration::ZERO,
            first_cycle: known.first_cycle,
        };
        for change in changes.iter().filter(|c| c.is_transition()) {
            let from = change.previous.as_deref().unwrap_or("(new)");
            if known.first_cycle && !change.alert {
                // The first cycle records the whole lookback; one line per job is noise.
                debug!(job_id = %change.job.id, from, to = %change.job.status, "job recorded");
            } else {
                info!(job_id = %change.job.id, from, to = %change.job.status, alert = change.alert, "job changed status");
            }
            metrics::counter!(ops_metrics::TRANSITIONS, "status" => change.job.status.to_string())
                .increment(1);
        }
        let queued = !alerts.is_empty();
        let refresh_gauges = !records.is_empty()
            || !removed.is_empty()
            || !self.gauges_set.swap(true, Ordering::Relaxed);
        self.store
            .run(move |conn| {
                tracker::commit(conn, &records, &alerts, &removed, &bookkeeping, now_ms)?;
                if refresh_gauges {
                    ops_metrics::set_store_gauges(conn)?;
                }
                Ok(())
            })
            .await?;
        if queued {
            self.wake.notify_one();
        }
        Ok(CycleSummary {
            requests: client.requests_sent() - requests_before,
            duration: started.elapsed(),
            ..summary
        })
    }
}

/// Every job created after `created_after`, once per configured project (filling in
/// the project the listing rows may lack) or once for all.
async fn list(
    client: &SdmClient,
    config: &Config,
    created_after: OffsetDateTime,
) -> Result<Vec<Job>, ApiError> {
    let filter = JobFilter {
        created_after: Some(created_after),
        ..JobFilter::default()
    };
    let projects = &config.poll.projects;
    if projects.is_empty() {
        return client.list_jobs(&filter).await;
    }
    let mut jobs: HashMap<String, Job> = HashMap::new();
    for &project in projects {
        let filter = JobFilter {
            project: Some(project),
            ..filter.clone()
        };
        for mut job in client.list_jobs(&filter).await? {
            job.project.get_or_insert(project);
            jobs.insert(job.id.clone(), job);
        }
    }
    Ok(jobs.into_values().collect())
}

/// Saves the rows of every job that just became done; a failure is noted on the change and
/// the alert goes out without the rows.
async fn fetch_outputs(client: &SdmClient, config: &OutputConfig, changes: &mut [Change]) {
    for change in changes
        .iter_mut()
        .filter(|c| c.is_transition() && c.job.status == Status::Done)
    {
        let Some(format_id) = config.format_for(change.job.project) else {
            continue;
        };
        change.output = Some(
            match output::fetch(client, config, &change.job.id, format_id).await {
                Ok(saved) => {
                    info!(job_id = %change.job.id, rows = saved.rows, file = %saved.file.display(), "output saved");
                    Ok(saved)
                }
                Err(error) => {
                    let error = crate::error_chain(&error);
                    warn!(job_id = %change.job.id, format_id, error = %error, "cannot fetch the output; alerting without it");
                    metrics::counter!(ops_metrics::OUTPUT_FAILURES).increment(1);
                    Err(error)
                }
            },
        );
    }
}

async fn expire_outputs(config: &OutputConfig) {
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

fn read_known(conn: &mut rusqlite::Connection) -> Result<Known, StoreError> {
    let number = |value: Option<String>| value.and_then(|v| v.parse::<i64>().ok());
    Ok(Known {
        first_cycle: jobs::get_meta(conn, tracker::META_FIRST_CYCLE_DONE)?.is_none(),
        newest_created_us: number(jobs::get_meta(conn, tracker::META_NEWEST_CREATED_US)?),
        floor_us: number(jobs::get_meta(conn, tracker::META_FLOOR_US)?),
        active: jobs::active(conn)?,
    })
}

/// The `created_after` of a cycle: the lookback on the very first; afterwards, a margin
/// before whichever is older, the oldest job still active or the newest job seen, both as
/// the server dated them.
fn window_start(known: &Known, now: OffsetDateTime, lookback: Duration) -> OffsetDateTime {
    if known.first_cycle {
        return now - lookback;
    }
    let oldest_active = known.active.iter().filter_map(|job| job.created_us).min();
    let anchor = oldest_active
        .into_iter()
        .chain(known.newest_created_us)
        .min()
        .or(known.floor_us);
    match anchor.and_then(tracker::from_micros) {
        Some(anchor) => anchor - WINDOW_MARGIN,
        None => now - lookback,
    }
}
