//! Reminders, scheduled from the store: a job still `pending` is reminded of every
//! `poll.remind_pending_every` of its stretch, a job still `running` after
//! `poll.running_longer_than` is told of once. A stretch starts when the watcher first
//! sees the job in that status (found so by the very first cycle included), so a restart
//! neither repeats a reminder nor skips one that fell due while it was down; after a long
//! outage one reminder goes out, numbered by the periods that passed.

use std::collections::HashMap;

use tracing::info;

use super::change::Watched;
use super::change::snapshot;
use super::cycle::{Cycle, CycleError};
use super::tracker;
use crate::domain::Event;
use crate::domain::time::from_millis;
use crate::notify::alerts::{self, Detected, Reminder};
use crate::store::jobs::{self, TrackedJob};
use crate::store::{gauges, outbox};
use crate::telemetry::REMINDERS;

impl Cycle<'_> {
    /// Queues the reminders that are due by the watcher's clock.
    pub async fn remind(&mut self) -> Result<(), CycleError> {
        let poll = &self.config.poll;
        let every = poll.remind_pending_every.map(|d| d.as_millis() as i64);
        let longer = poll.running_longer_than.map(|d| d.as_millis() as i64);
        if every.is_none() && longer.is_none() {
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
                let running = match longer {
                    Some(longer) => jobs::due_running_long(conn, org, now, longer)?,
                    None => Vec::new(),
                };
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
            .chain(&running)
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
        for (job, kind) in pending
            .iter()
            .map(|job| (job, Event::PendingReminder))
            .chain(running.iter().map(|job| (job, Event::RunningLong)))
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
                    (1, Reminder::RunningLong { since, for_seconds })
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

fn kind_label(event: &Event) -> &'static str {
    match event {
        Event::RunningLong => "running_long",
        _ => "pending_reminder",
    }
}
