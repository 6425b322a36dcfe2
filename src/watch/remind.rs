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

impl Cycle<'_> {
    /// Queues the reminders that are due by the watcher's clock.
    pub async fn remind(&mut self) -> Result<(), CycleError> {
        let poll = &self.config.poll;
        let every = poll.remind_pending_every.map(|d| d.as_millis() as i64);
        let longer = poll.running_longer_than.map(|d| d.as_millis() as i64);
        let usual = poll.running_longer_than_usual;
        if every.is_none() && longer.is_none() && usual.is_none() {
            return Ok(());
        }
        let now = self.clock.now_ms();
        let org = self.org_name();
        let due = |org: String| {
            move |conn: &mut dyn crate::store::Db| {
                let org = org.as_str();
                let pending = match every {
                    Some(every) => jobs::due_pending_reminders(conn, org, now, every)?,
                    None => Vec::new(),
                };
                let mut running: Vec<(TrackedJob, Option<Usual>)> = match longer {
                    Some(longer) => jobs::due_running_long(conn, org, now, longer)?
                        .into_iter()
                        .map(|job| (job, None))
                        .collect(),
                    None => Vec::new(),
                };
                if let Some(factor) = usual {
                    for (job, usual) in slower_than_usual(conn, org, now, factor)? {
                        if !running.iter().any(|(told, _)| told.id == job.id) {
                            running.push((job, Some(usual)));
                        }
                    }
                }
                Ok((pending, running))
            }
        };
        let (pending, running) = self.timed(due(org.clone())).await?;
        if pending.is_empty() && running.is_empty() {
            return Ok(());
        }
        // A reminder is routed like any alert: by project, when rows did not tell it.
        let unknown: Vec<(String, i64)> = pending
            .iter()
            .chain(running.iter().map(|(job, _)| job))
            .filter(|job| self.watched(job) != Watched::No)
            .filter(|job| {
                self.needs(&tracker::job_from_record(job), job, self.watched(job))
                    .project
            })
            .filter_map(|job| Some((job.id.clone(), job.created_us?)))
            .collect();
        let (pending, running) = if unknown.is_empty() {
            (pending, running)
        } else {
            self.resolve_projects(unknown).await?;
            self.timed(due(org.clone())).await?
        };

        let queued_at = now;
        let mut alerts = Vec::new();
        let mut counts: Vec<(String, u32)> = Vec::new();
        let mut told: HashMap<&'static str, u64> = HashMap::new();
        for (job, kind, usual) in pending
            .iter()
            .map(|job| (job, Event::PendingReminder, None))
            .chain(
                running
                    .iter()
                    .map(|(job, usual)| (job, Event::RunningLong, usual.clone())),
            )
        {
            let since_ms = job.since_ms.unwrap_or(now);
            let since = from_millis(since_ms).unwrap_or(self.now);
            let (number, reminder) = match kind {
                Event::PendingReminder => {
                    let number = ((now - since_ms) / every.unwrap_or(1)).max(1) as u32;
                    (number, Reminder::Pending { since, number })
                }
                _ => {
                    let for_seconds = ((now - since_ms) / 1000).max(0) as u64;
                    (
                        1,
                        Reminder::RunningLong {
                            since,
                            for_seconds,
                            usual,
                        },
                    )
                }
            };
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
                queued_at,
            ));
        }
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
        for (kind, count) in told {
            metrics::counter!(REMINDERS, "kind" => kind).increment(count);
        }
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
