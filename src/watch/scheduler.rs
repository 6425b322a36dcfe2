//! Poll cycles: which listings to read, reading them a page at a time (per project if
//! configured), asking the detail endpoint where the listings cannot tell, and committing
//! each page's outcome as it comes.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::tracker::{self, Bookkeeping, Change, Rules};
use crate::config::{Config, OutputConfig};
use crate::ops::metrics as ops_metrics;
use crate::output;
use crate::sdm::{ApiError, Job, JobFilter, ProjectId, SdmClient, Status};
use crate::store::jobs::{self, TrackedJob};
use crate::store::{Store, StoreError, now_ms};

/// How far before the oldest active job the active listings start: the API's "after" is
/// strict, and a job may become visible a little after its `creation_date`.
pub const WINDOW_MARGIN: Duration = Duration::from_secs(10 * 60);

/// How far before the newest job ever listed the listing of new jobs starts. A job that
/// becomes visible in a final status later than this after its `creation_date` would be
/// missed; every job re-listed inside the margin costs a row of a page each cycle.
pub const NEW_JOBS_MARGIN: Duration = Duration::from_secs(2 * 60);

/// How far beyond the first and last creation date a range listing reaches, so that a
/// job is not lost to rounding of its date.
const RANGE_MARGIN: Duration = Duration::from_secs(1);

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
    /// Rows read from the listings (a job listed twice counts twice).
    pub jobs_seen: usize,
    pub transitions: usize,
    pub alerts_queued: usize,
    pub requests: u64,
    pub duration: Duration,
    /// Time spent waiting on the state store, reads and commits together.
    pub store_time: Duration,
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
}

/// What the store knows before a cycle.
struct Known {
    first_cycle: bool,
    newest_created_us: Option<i64>,
    floor_us: Option<i64>,
    /// Jobs in a status that can still change.
    active: Vec<TrackedJob>,
}

/// One cycle's running totals.
#[derive(Default)]
struct Tally {
    jobs_listed: usize,
    transitions: usize,
    alerts_queued: usize,
    store_time: Duration,
    newest_listed: Option<i64>,
    /// The known active jobs that some listing showed.
    seen_active: HashSet<String>,
}

/// What one step of a cycle commits together: changes with the records they replace,
/// jobs to forget, and the bookkeeping (only the last step has any).
struct Batch<'a> {
    changes: Vec<Change>,
    recorded: &'a HashMap<String, TrackedJob>,
    removed: Vec<&'a TrackedJob>,
    bookkeeping: Bookkeeping,
}

impl<'a> Batch<'a> {
    /// Just changes.
    fn of(changes: Vec<Change>, recorded: &'a HashMap<String, TrackedJob>) -> Self {
        Batch {
            changes,
            recorded,
            removed: Vec::new(),
            bookkeeping: Bookkeeping::default(),
        }
    }
}

/// What a cycle works with: the setup it started with and what the store knew.
struct Context<'a> {
    client: &'a SdmClient,
    config: &'a Config,
    rules: Rules<'a>,
    now: OffsetDateTime,
}

impl Watcher {
    pub fn new(store: Store, wake: Arc<Notify>, setup: watch::Receiver<Arc<WatchSetup>>) -> Self {
        Self { store, wake, setup }
    }

    /// Sets the `jobs_tracked` and `outbox_pending` gauges from the store; cycles then move
    /// them by their own changes.
    pub async fn prime_gauges(&self) -> Result<(), StoreError> {
        self.store
            .run(|conn| ops_metrics::set_store_gauges(conn))
            .await
    }

    /// One poll cycle: read the listings page by page, committing each page's changes with
    /// their alerts; ask for active jobs no listing showed; record the bookkeeping.
    pub async fn cycle(&self) -> Result<CycleSummary, CycleError> {
        let started = Instant::now();
        let setup = self.setup.borrow().clone();
        let client = &setup.client;
        let config = &*setup.config;
        let requests_before = client.requests_sent();
        let mut tally = Tally::default();
        let known = self.timed(&mut tally, read_known).await?;
        let cx = Context {
            client,
            config,
            rules: Rules {
                first_cycle: known.first_cycle,
                alert_existing: config.poll.alert_existing,
                notify_on: &config.poll.notify_on,
            },
            now: OffsetDateTime::now_utc(),
        };
        let active_ids: HashSet<&str> = known.active.iter().map(|job| job.id.as_str()).collect();
        let projects: Vec<Option<ProjectId>> = if config.poll.projects.is_empty() {
            vec![None]
        } else {
            config.poll.projects.iter().copied().map(Some).collect()
        };

        let listings = listings(&known, cx.now, config.poll.lookback);
        for listing in &listings {
            for &project in &projects {
                let filter = JobFilter {
                    project,
                    ..listing.clone()
                };
                self.read_listing(&cx, &filter, &active_ids, &mut tally)
                    .await?;
            }
        }

        // An active job no listing showed has finished, or is gone.
        let vanished = |tally: &Tally| -> Vec<&TrackedJob> {
            known
                .active
                .iter()
                .filter(|old| {
                    !tally.seen_active.contains(&old.id)
                        && (config.poll.projects.is_empty()
                            || old
                                .project
                                .is_some_and(|p| config.poll.projects.contains(&p)))
                })
                .collect()
        };
        self.list_vanished_batches(&cx, &vanished(&tally), &active_ids, &mut tally)
            .await?;
        let (changes, recorded, removed) = ask_for_each(&cx, vanished(&tally)).await;
        let newest = tally.newest_listed.max(known.newest_created_us);
        let bookkeeping = Bookkeeping {
            first_cycle_done: known.first_cycle,
            newest_created_us: newest.filter(|_| newest != known.newest_created_us),
            floor_us: listings
                .first()
                .and_then(|first| first.created_after)
                .map(tracker::micros)
                .filter(|_| known.first_cycle),
        };
        let last = Batch {
            changes,
            recorded: &recorded,
            removed,
            bookkeeping,
        };
        self.apply(&cx, last, &mut tally).await?;
        if let Some(output) = &config.output {
            expire_outputs(output).await;
        }
        Ok(CycleSummary {
            jobs_seen: tally.jobs_listed,
            transitions: tally.transitions,
            alerts_queued: tally.alerts_queued,
            requests: client.requests_sent() - requests_before,
            duration: started.elapsed(),
            store_time: tally.store_time,
            first_cycle: known.first_cycle,
        })
    }

    /// Where many vanished jobs were created close together (a batch that finished), lists
    /// their range of creation dates, when that takes fewer requests than asking for each.
    async fn list_vanished_batches(
        &self,
        cx: &Context<'_>,
        vanished: &[&TrackedJob],
        active_ids: &HashSet<&str>,
        tally: &mut Tally,
    ) -> Result<(), CycleError> {
        let per_project = !cx.config.poll.projects.is_empty();
        let mut by_project: HashMap<Option<ProjectId>, Vec<i64>> = HashMap::new();
        for old in vanished {
            if let Some(created) = old.created_us {
                let project = old.project.filter(|_| per_project);
                by_project.entry(project).or_default().push(created);
            }
        }
        for (project, mut created) in by_project.into_iter().filter(|(_, c)| c.len() > 1) {
            created.sort_unstable();
            let page_size = u64::from(cx.client.page_size());
            let ranges = self
                .timed(tally, move |conn| {
                    recovery_ranges(&created, page_size, |after, before| {
                        jobs::count_created_between(conn, after, before)
                    })
                })
                .await?;
            for (first, last) in ranges {
                let (Some(first), Some(last)) =
                    (tracker::from_micros(first), tracker::from_micros(last))
                else {
                    continue;
                };
                let filter = JobFilter {
                    project,
                    created_after: Some(first - RANGE_MARGIN),
                    created_before: Some(last + RANGE_MARGIN),
                    ..JobFilter::default()
                };
                self.read_listing(cx, &filter, active_ids, tally).await?;
            }
        }
        Ok(())
    }

    /// Reads the listing for `filter` a page at a time, committing each page's changes.
    async fn read_listing(
        &self,
        cx: &Context<'_>,
        filter: &JobFilter,
        active_ids: &HashSet<&str>,
        tally: &mut Tally,
    ) -> Result<(), CycleError> {
        debug!(?filter, first_cycle = cx.rules.first_cycle, "listing jobs");
        let mut pages = cx.client.pages(filter);
        while let Some(mut jobs) = pages.next_page().await? {
            for job in &mut jobs {
                if let Some(project) = filter.project {
                    job.project.get_or_insert(project);
                }
                if active_ids.contains(job.id.as_str()) {
                    tally.seen_active.insert(job.id.clone());
                }
                if let Some(created) = job.created_at().map(tracker::micros) {
                    tally.newest_listed = tally.newest_listed.max(Some(created));
                }
            }
            tally.jobs_listed += jobs.len();
            self.take_page(cx, jobs, tally).await?;
        }
        Ok(())
    }

    /// Compares one page of a listing with the records and commits what changed.
    async fn take_page(
        &self,
        cx: &Context<'_>,
        jobs: Vec<Job>,
        tally: &mut Tally,
    ) -> Result<(), CycleError> {
        // A job twice on one page (the listing shifted under the server): the last wins.
        let mut last: HashMap<String, Job> = HashMap::with_capacity(jobs.len());
        let mut order = Vec::with_capacity(jobs.len());
        for job in jobs {
            if !last.contains_key(&job.id) {
                order.push(job.id.clone());
            }
            last.insert(job.id.clone(), job);
        }
        let jobs: Vec<Job> = order.iter().filter_map(|id| last.remove(id)).collect();
        let recorded = self
            .timed(tally, move |conn| {
                jobs::get_many(conn, order.iter().map(String::as_str))
            })
            .await?;
        let changes = tracker::plan(jobs, &recorded, &cx.rules);
        self.apply(cx, Batch::of(changes, &recorded), tally).await
    }

    /// Completes `changes` (error messages, output rows), then commits them with their
    /// alerts, the removals and the bookkeeping. Changes that need no further request are
    /// committed first, so that their alerts do not wait for other jobs' requests.
    async fn apply(
        &self,
        cx: &Context<'_>,
        mut batch: Batch<'_>,
        tally: &mut Tally,
    ) -> Result<(), CycleError> {
        let (mut waiting, ready): (Vec<Change>, Vec<Change>) = std::mem::take(&mut batch.changes)
            .into_iter()
            .partition(|change| needs_message(change) || needs_output(cx, change));
        if waiting.is_empty() {
            return self
                .commit(
                    cx,
                    Batch {
                        changes: ready,
                        ..batch
                    },
                    tally,
                )
                .await;
        }
        self.commit(cx, Batch::of(ready, batch.recorded), tally)
            .await?;
        let client = cx.client;
        // Error alerts carry the message from the detail endpoint.
        for change in waiting.iter_mut().filter(|change| needs_message(change)) {
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
        if let Some(output) = &cx.config.output {
            fetch_outputs(client, output, &mut waiting).await;
        }
        let rest = Batch {
            changes: waiting,
            ..batch
        };
        self.commit(cx, rest, tally).await
    }

    /// Commits a batch in one transaction, then moves the gauges and wakes the delivery
    /// worker.
    async fn commit(
        &self,
        cx: &Context<'_>,
        batch: Batch<'_>,
        tally: &mut Tally,
    ) -> Result<(), CycleError> {
        let Batch {
            changes,
            recorded,
            removed,
            bookkeeping,
        } = batch;
        if changes.is_empty() && removed.is_empty() && bookkeeping == Bookkeeping::default() {
            return Ok(());
        }
        let config = cx.config;
        let now_ms = now_ms();
        let alerts: Vec<_> = changes
            .iter()
            .flat_map(|change| tracker::alerts_for(change, config, cx.now, now_ms))
            .collect();
        let records: Vec<TrackedJob> = changes
            .iter()
            .map(|change| tracker::record(&change.job, recorded.get(&change.job.id)))
            .collect();
        // How the jobs_tracked gauges move once this is committed.
        let mut moves: Vec<(Option<String>, Option<String>)> = changes
            .iter()
            .filter(|change| change.is_transition())
            .map(|change| (change.previous.clone(), Some(change.job.status.to_string())))
            .collect();
        moves.extend(removed.iter().map(|old| (Some(old.status.clone()), None)));
        let removed: Vec<String> = removed.into_iter().map(|old| old.id.clone()).collect();
        let queued = alerts.len();
        self.timed(tally, move |conn| {
            tracker::commit(conn, &records, &alerts, &removed, &bookkeeping, now_ms)?;
            if queued > 0 {
                ops_metrics::set_outbox_pending(conn)?;
            }
            Ok(())
        })
        .await?;

        for change in changes.iter().filter(|c| c.is_transition()) {
            let from = change.previous.as_deref().unwrap_or("(new)");
            if cx.rules.first_cycle && !change.alert {
                // The first cycle records the whole lookback; one line per job is noise.
                debug!(job_id = %change.job.id, from, to = %change.job.status, "job recorded");
            } else {
                info!(job_id = %change.job.id, from, to = %change.job.status, alert = change.alert, "job changed status");
            }
            metrics::counter!(ops_metrics::TRANSITIONS, "status" => change.job.status.to_string())
                .increment(1);
            tally.transitions += 1;
        }
        for (from, to) in moves {
            if let Some(from) = from {
                metrics::gauge!(ops_metrics::JOBS_TRACKED, "status" => from).decrement(1.0);
            }
            if let Some(to) = to {
                metrics::gauge!(ops_metrics::JOBS_TRACKED, "status" => to).increment(1.0);
            }
        }
        if queued > 0 {
            tally.alerts_queued += queued;
            self.wake.notify_one();
        }
        Ok(())
    }

    /// Runs `work` on the store, adding the wait to the cycle's store time.
    async fn timed<T, F>(&self, tally: &mut Tally, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut rusqlite::Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let started = Instant::now();
        let result = self.store.run(work).await;
        tally.store_time += started.elapsed();
        result
    }
}

/// Reads each of `vanished` from the detail endpoint: the changes, the records they
/// replace, and the jobs the API no longer has (404). A job that cannot be read now is
/// tried again next cycle.
async fn ask_for_each<'a>(
    cx: &Context<'_>,
    vanished: Vec<&'a TrackedJob>,
) -> (
    Vec<Change>,
    HashMap<String, TrackedJob>,
    Vec<&'a TrackedJob>,
) {
    let mut changes = Vec::new();
    let mut recorded = HashMap::new();
    let mut removed = Vec::new();
    for old in vanished {
        match cx.client.job(&old.id).await {
            Ok(detail) if detail.status.as_str() != old.status => {
                let mut job = tracker::job_from_record(old);
                job.status = detail.status;
                job.message = detail.message;
                job.step = detail.step;
                let alert = cx.config.poll.notify_on.contains(&job.status);
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
                removed.push(old);
            }
            Err(error) => {
                warn!(job_id = %old.id, error = %error, "cannot read a job missing from the listings; will try next cycle");
            }
        }
    }
    (changes, recorded, removed)
}

/// An error alert still without its message, which only the detail endpoint has.
fn needs_message(change: &Change) -> bool {
    change.alert && change.job.status == Status::Error && change.job.message.is_none()
}

/// A job that just became done whose rows `[output]` wants saved before it alerts. The
/// first cycle records history silently; its done jobs are not fetched either.
fn needs_output(cx: &Context<'_>, change: &Change) -> bool {
    let Some(output) = &cx.config.output else {
        return false;
    };
    (!cx.rules.first_cycle || cx.rules.alert_existing)
        && change.is_transition()
        && change.job.status == Status::Done
        && output.format_for(change.job.project).is_some()
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

/// The listings of a cycle. The very first lists everything created in the lookback.
/// Later ones list what was created since a little before the newest job seen (new jobs,
/// whatever their status) and, when an active job is older than that, the `running` and
/// `pending` jobs since a little before the oldest such job. What they cost depends on how
/// many jobs are new or active, not on how many the organisation keeps.
fn listings(known: &Known, now: OffsetDateTime, lookback: Duration) -> Vec<JobFilter> {
    let since = |at: OffsetDateTime| JobFilter {
        created_after: Some(at),
        ..JobFilter::default()
    };
    if known.first_cycle {
        return vec![since(now - lookback)];
    }
    let new_after = match known
        .newest_created_us
        .or(known.floor_us)
        .and_then(tracker::from_micros)
    {
        Some(newest) => newest - NEW_JOBS_MARGIN,
        None => now - lookback,
    };
    let new_after_us = tracker::micros(new_after);
    let oldest_uncovered = known
        .active
        .iter()
        .filter_map(|job| job.created_us)
        .filter(|&created| created <= new_after_us)
        .min()
        .and_then(tracker::from_micros);
    let mut listings = vec![since(new_after)];
    if let Some(oldest) = oldest_uncovered {
        for status in [Status::Running, Status::Pending] {
            listings.push(JobFilter {
                status: Some(status),
                ..since(oldest - WINDOW_MARGIN)
            });
        }
    }
    listings
}

/// Which vanished active jobs to find by listing a range of creation dates rather than
/// by asking for each: `created` are their creation dates (µs, sorted), `between` counts the
/// tracked jobs created strictly between two dates. Consecutive vanished jobs share a
/// range unless more than a page of other jobs lies between them; a range is kept only
/// where its pages are fewer than its vanished jobs. Returns (first, last) of each range.
fn recovery_ranges<E>(
    created: &[i64],
    page_size: u64,
    mut between: impl FnMut(i64, i64) -> Result<u64, E>,
) -> Result<Vec<(i64, i64)>, E> {
    let mut ranges = Vec::new();
    let mut start = 0;
    // Jobs a listing of created[start..=k] would return.
    let mut jobs = 1;
    for k in 0..created.len() {
        let gap = match created.get(k + 1) {
            Some(&next) => Some(between(created[k], next)?),
            None => None,
        };
        match gap {
            Some(gap) if gap < page_size => jobs += gap + 1,
            _ => {
                let members = (k + 1 - start) as u64;
                if jobs.div_ceil(page_size) < members {
                    ranges.push((created[start], created[k]));
                }
                start = k + 1;
                jobs = 1;
            }
        }
    }
    Ok(ranges)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tracked jobs created at 0, 1, 2, ... µs: `between` counts the integers in between.
    fn ranges(created: &[i64], page_size: u64) -> Vec<(i64, i64)> {
        recovery_ranges::<()>(created, page_size, |after, before| {
            Ok((before - after - 1).max(0) as u64)
        })
        .unwrap()
    }

    #[test]
    fn a_finished_batch_is_listed_and_stragglers_are_asked_for() {
        // 500 jobs in a row, then one far older and one far newer: the batch is one range
        // (5 pages of 100 instead of 500 requests), the others are asked for.
        let mut created: Vec<i64> = (10_000..10_500).collect();
        created.insert(0, 0);
        created.push(90_000);
        assert_eq!(ranges(&created, 100), [(10_000, 10_499)]);
        // Sparse: a job every 150 among the history costs more to list than to ask for.
        let sparse: Vec<i64> = (0..20).map(|i| i * 150).collect();
        assert_eq!(ranges(&sparse, 100), []);
        // Every 50th job: two pages per hundred jobs, so one range of them all.
        let dense: Vec<i64> = (0..20).map(|i| i * 50).collect();
        assert_eq!(ranges(&dense, 100), [(0, 950)]);
        assert_eq!(ranges(&[42], 100), []);
    }
}
