//! Reminders, scheduled from the store: a job still `pending` is reminded of every
//! `poll.remind_pending_every` of its stretch, a job still `running` after
//! `poll.running_longer_than` is told of once, and so is one running longer than
//! `poll.running_longer_than_usual` times its project's usual (the p95 of its last 50
//! completed runs, creation to completion, judged from 10). A stretch starts when the watcher first
//! sees the job in that status (found so by the very first cycle included), so a restart
//! neither repeats a reminder nor skips one that fell due while it was down; after a long
//! outage one reminder goes out, numbered by the periods that passed.

use std::collections::HashMap;

use tracing::info;

use super::change::Watched;
use super::change::snapshot;
use super::cycle::{Cycle, CycleError};
use super::tracker;
use crate::config::{USUAL_RUNS, USUAL_RUNS_NEEDED};
use crate::domain::Event;
use crate::domain::stats::nearest_rank;
use crate::domain::time::from_millis;
use crate::notify::alerts::{self, Detected, Reminder};
use crate::notify::payload::Usual;
use crate::store::jobs::{self, TrackedJob};
use crate::store::{gauges, outbox};
use crate::telemetry::REMINDERS;

/// When reminders fall due, in ms: `poll.remind_pending_every`, `poll.running_longer_than`,
/// and the factor of `poll.running_longer_than_usual`.
#[derive(Clone, Copy)]
struct Thresholds {
    every: Option<i64>,
    longer: Option<i64>,
    usual: Option<f64>,
}

/// The jobs a reminder is due for: pending ones, and running ones (with their project's
/// usual when that is why).
struct Due {
    pending: Vec<TrackedJob>,
    running: Vec<(TrackedJob, Option<Usual>)>,
}

impl Due {
    /// Every job of `org` a reminder is due for at `now`.
    fn read(
        conn: &mut dyn crate::store::Db,
        org: &str,
        now: i64,
        thresholds: Thresholds,
    ) -> Result<Due, crate::store::StoreError> {
        let pending = match thresholds.every {
            Some(every) => jobs::due_pending_reminders(conn, org, now, every)?,
            None => Vec::new(),
        };
        let mut running: Vec<(TrackedJob, Option<Usual>)> = match thresholds.longer {
            Some(longer) => jobs::due_running_long(conn, org, now, longer)?
                .into_iter()
                .map(|job| (job, None))
                .collect(),
            None => Vec::new(),
        };
        if let Some(factor) = thresholds.usual {
            for (job, usual) in slower_than_usual(conn, org, now, factor)? {
                if !running.iter().any(|(told, _)| told.id == job.id) {
                    running.push((job, Some(usual)));
                }
            }
        }
        Ok(Due { pending, running })
    }

    /// Each job with its reminder's kind and, for a slow one, its project's usual.
    fn each(&self) -> impl Iterator<Item = (&TrackedJob, Event, Option<Usual>)> {
        let pending = self
            .pending
            .iter()
            .map(|job| (job, Event::PendingReminder, None));
        let running = self
            .running
            .iter()
            .map(|(job, usual)| (job, Event::RunningLong, usual.clone()));
        pending.chain(running)
    }
}

fn millis(duration: Option<std::time::Duration>) -> Option<i64> {
    duration.map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl Cycle<'_> {
    /// Queues the reminders that are due by the watcher's clock.
    pub async fn remind(&mut self) -> Result<(), CycleError> {
        let poll = &self.config.poll;
        let thresholds = Thresholds {
            every: millis(poll.remind_pending_every),
            longer: millis(poll.running_longer_than),
            usual: poll.running_longer_than_usual,
        };
        if thresholds.every.is_none() && thresholds.longer.is_none() && thresholds.usual.is_none() {
            return Ok(());
        }
        let now = self.clock.now_ms();
        let due = self.due_with_projects(now, thresholds).await?;
        if due.pending.is_empty() && due.running.is_empty() {
            return Ok(());
        }
        let mut alerts = Vec::new();
        let mut counts: Vec<(String, u32)> = Vec::new();
        let mut told: HashMap<&'static str, u64> = HashMap::new();
        for (job, kind, usual) in due.each() {
            let (number, reminder) = self.reminder_of(job, &kind, usual, now, thresholds);
            counts.push((job.id.clone(), number));
            if self.watched(job) == Watched::No {
                continue;
            }
            *told.entry(kind_label(&kind)).or_default() += 1;
            info!(job_id = %job.id, event = %kind, number, "reminder");
            alerts.extend(alerts::build(
                &self.reminder(job, kind, reminder),
                &self.org.name,
                self.config,
                &self.silences,
                now,
            ));
        }
        self.queue(alerts, counts).await?;
        for (kind, count) in told {
            metrics::counter!(REMINDERS, "kind" => kind).increment(count);
        }
        Ok(())
    }

    /// The reminders due at `now`, read again once the projects that route them are known
    /// (a reminder is routed like any alert: by project, when rows did not tell it).
    async fn due_with_projects(
        &mut self,
        now: i64,
        thresholds: Thresholds,
    ) -> Result<Due, CycleError> {
        let org = self.org_name();
        let read = move |org: String| {
            move |conn: &mut dyn crate::store::Db| Due::read(conn, &org, now, thresholds)
        };
        let due = self.timed(read(org.clone())).await?;
        let unknown: Vec<(String, i64)> = due
            .pending
            .iter()
            .chain(due.running.iter().map(|(job, _)| job))
            .filter(|job| self.watched(job) != Watched::No)
            .filter(|job| {
                self.needs(&tracker::job_from_record(job), job, self.watched(job))
                    .project
            })
            .filter_map(|job| Some((job.id.clone(), job.created_us?)))
            .collect();
        if unknown.is_empty() {
            return Ok(due);
        }
        self.resolve_projects(unknown).await?;
        Ok(self.timed(read(org)).await?)
    }

    /// A reminder's number (the periods of its stretch that passed; 1 for running long)
    /// and what it says.
    fn reminder_of(
        &self,
        job: &TrackedJob,
        kind: &Event,
        usual: Option<Usual>,
        now: i64,
        thresholds: Thresholds,
    ) -> (u32, Reminder) {
        let since_ms = job.since_ms.unwrap_or(now);
        let since = from_millis(since_ms).unwrap_or(self.now);
        let stretch = now.saturating_sub(since_ms);
        if *kind == Event::PendingReminder {
            let periods = stretch / thresholds.every.unwrap_or(1).max(1);
            let number = u32::try_from(periods.max(1)).unwrap_or(u32::MAX);
            return (number, Reminder::Pending { since, number });
        }
        let for_seconds = u64::try_from(stretch / 1000).unwrap_or(0);
        let reminder = Reminder::RunningLong {
            since,
            for_seconds,
            usual,
        };
        (1, reminder)
    }

    /// Queues `alerts` and records each job's reminder `counts`, in one transaction.
    async fn queue(
        &mut self,
        alerts: Vec<outbox::Alert>,
        counts: Vec<(String, u32)>,
    ) -> Result<(), CycleError> {
        let org = self.org_name();
        let alerts = self
            .timed(move |conn| {
                conn.transaction(|tx| {
                    for alert in &alerts {
                        outbox::insert(tx, alert)?;
                    }
                    crate::store::incidents::open(tx, &alerts)?;
                    for (id, number) in &counts {
                        jobs::set_reminders(tx, &org, id, *number)?;
                    }
                    gauges::set_outbox_pending(tx)?;
                    crate::store::outbox::announce(tx)?;
                    Ok(alerts)
                })
            })
            .await?;
        let queued = alerts::note_committed(&alerts);
        if queued > 0 {
            self.tally.alerts_queued += queued;
            self.wake_worker();
        }
        Ok(())
    }

    fn reminder(&self, job: &TrackedJob, event: Event, reminder: Reminder) -> Detected {
        let current = tracker::job_from_record(job);
        Detected {
            job: snapshot(&current, job.project),
            event,
            // A reminder changes nothing: the status before is the status now.
            previous: Some(current.status.clone()),
            url: self.job_url(&job.id),
            output: None,
            reminder: Some(reminder),
            at: self.now,
        }
    }
}

/// Running jobs not told of yet that have run (since creation) longer than `factor` times
/// their project's usual: the p95 of its last [`USUAL_RUNS`] completed runs, once it has
/// [`USUAL_RUNS_NEEDED`]. Never less than a minute, so that a project whose jobs finish at
/// once does not alert on every job it starts.
fn slower_than_usual(
    conn: &mut dyn crate::store::Db,
    org: &str,
    now_ms: i64,
    factor: f64,
) -> Result<Vec<(TrackedJob, Usual)>, crate::store::StoreError> {
    const FLOOR_US: f64 = 60_000_000.0;
    let now_us = now_ms.saturating_mul(1000);
    let mut usual_of: HashMap<i64, Option<(i64, usize)>> = HashMap::new();
    let mut slow = Vec::new();
    for job in jobs::running_untold(conn, org)? {
        let (Some(project), Some(created_us)) = (job.project, job.created_us) else {
            continue;
        };
        let usual = match usual_of.get(&project) {
            Some(usual) => *usual,
            None => {
                let mut runs = jobs::recent_runs(conn, org, project, USUAL_RUNS)?;
                runs.sort_unstable();
                let usual = (runs.len() >= USUAL_RUNS_NEEDED)
                    .then(|| nearest_rank(&runs, 95).map(|p95| (p95, runs.len())))
                    .flatten();
                usual_of.insert(project, usual);
                usual
            }
        };
        let Some((p95_us, runs)) = usual else {
            continue;
        };
        let running_us = now_us.saturating_sub(created_us);
        if (running_us as f64) > (factor * p95_us as f64).max(FLOOR_US) {
            slow.push((
                job,
                Usual {
                    p95_seconds: seconds(p95_us),
                    runs: u32::try_from(runs).unwrap_or(u32::MAX),
                    factor,
                    running_seconds: seconds(running_us),
                },
            ));
        }
    }
    Ok(slow)
}

/// Microseconds as whole seconds, rounded.
fn seconds(us: i64) -> u64 {
    u64::try_from(us.saturating_add(500_000) / 1_000_000).unwrap_or(0)
}

fn kind_label(event: &Event) -> &'static str {
    match event {
        Event::RunningLong => "running_long",
        _ => "pending_reminder",
    }
}
