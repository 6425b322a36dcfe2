//! Committing what a cycle found: each change's record, and its alerts or held change, in
//! one transaction; which changes alert at all (`poll.projects`), and what an alert still
//! waits for before it can be queued.

use std::collections::HashMap;

use tracing::{debug, info};

use super::CycleError;
use super::change::{HeldChange, Needs, Watched};
use super::cycle::Cycle;
use super::tracker::{self, Change};
use crate::domain::{Event, Status};
use crate::notify::alerts::{self, Detected};
use crate::notify::payload::AlertEvent;
use crate::notify::resolved::Resolutions;
use crate::sdm::Job;
use crate::store::jobs::{self, TrackedJob};
use crate::store::outbox::Alert;
use crate::store::{gauges, held, incidents, outbox, transitions};
use crate::telemetry::{JOBS_TRACKED, TRANSITIONS};

/// What committing one change writes besides the job's record.
enum Outcome {
    Nothing,
    /// Its alerts, unless an earlier change of the job is still held: then it is held too.
    Alert {
        alerts: Vec<Alert>,
        held: String,
    },
    /// It waits for details.
    Hold(String),
}

impl Cycle<'_> {
    /// Commits `changes` (with the records they replace), their alerts or held changes, the
    /// jobs to forget and the lookups that recovered, in one transaction; then moves the
    /// gauges and wakes the delivery worker.
    pub async fn commit(
        &mut self,
        changes: Vec<Change>,
        recorded: &HashMap<String, TrackedJob>,
        removed: Vec<TrackedJob>,
        recovered: Vec<String>,
    ) -> Result<(), CycleError> {
        if changes.is_empty() && removed.is_empty() && recovered.is_empty() {
            return Ok(());
        }
        let now_ms = self.clock.now_ms();
        // The status page's transitions: what the watcher saw change, not the history
        // a first cycle records silently.
        let first_cycle = self.rules.first_cycle;
        let writes: Vec<Write> = changes
            .iter()
            .map(|change| {
                let record = tracker::record(&change.job, recorded.get(&change.job.id), now_ms);
                let outcome = self.outcome(change, &record, now_ms);
                let seen = (change.is_transition() && (!first_cycle || change.alert))
                    .then(|| change.previous.clone());
                let resolution = change
                    .is_transition()
                    .then(|| self.resolution(&change.job, &record, change.previous.clone()));
                Write {
                    record,
                    outcome,
                    seen,
                    resolution,
                }
            })
            .collect();
        let removed_ids: Vec<String> = removed.iter().map(|old| old.id.clone()).collect();
        let org = self.org_name();
        let resolutions = Resolutions::from_config(self.config);
        // Nothing is forgotten before the first cycle completes: until then a job below the
        // horizon may be one not yet read (a later page), which must not fall silent.
        let keep_ms = (!first_cycle)
            .then(|| i64::try_from(self.config.state.keep.as_millis()).unwrap_or(i64::MAX));
        let (inserted, held, forgot_below) = self
            .timed(move |conn| {
                conn.transaction(|tx| {
                    let writing = Writing {
                        org: &org,
                        resolutions: &resolutions,
                        now_ms,
                        keep_ms,
                    };
                    writing.write(tx, &writes, &removed_ids, &recovered)
                })
            })
            .await?;
        if let Some(below_us) = forgot_below {
            // A later listing of this very cycle may show what was just forgotten.
            self.rules.silent_below_us = self.rules.silent_below_us.max(below_us);
        }
        let queued = alerts::note_committed(&inserted);
        self.tell(&changes, &removed, held, queued);
        Ok(())
    }

    /// Logs and counts what a commit changed, and wakes the worker for what it queued.
    fn tell(&mut self, changes: &[Change], removed: &[TrackedJob], held: usize, queued: usize) {
        for change in changes.iter().filter(|c| c.is_transition()) {
            let from = change.previous.as_ref().map_or("(new)", Status::as_str);
            if self.rules.first_cycle && !change.alert {
                // The first cycle records the whole lookback; one line per job is noise.
                debug!(organisation = %self.org.name, job_id = %change.job.id, from, to = %change.job.status, "job recorded");
            } else {
                info!(organisation = %self.org.name, job_id = %change.job.id, from, to = %change.job.status, alert = change.alert, "job changed status");
            }
            let org = self.org_name();
            metrics::counter!(TRANSITIONS, "status" => change.job.status.to_string(), "organisation" => org.clone())
                .increment(1);
            if let Some(from) = &change.previous {
                metrics::gauge!(JOBS_TRACKED, "status" => from.to_string(), "organisation" => org.clone())
                    .decrement(1.0);
            }
            metrics::gauge!(JOBS_TRACKED, "status" => change.job.status.to_string(), "organisation" => org)
                .increment(1.0);
            self.tally.transitions += 1;
        }
        for old in removed {
            info!(job_id = %old.id, "a tracked job no longer exists; forgetting it");
            metrics::gauge!(JOBS_TRACKED, "status" => old.status.to_string(), "organisation" => self.org_name())
                .decrement(1.0);
        }
        if held > 0 {
            debug!(held, "alerts wait for details");
        }
        if queued > 0 {
            self.tally.alerts_queued += queued;
            self.wake_worker();
        }
    }

    /// What committing `change` (recorded as `record`) writes besides the record.
    fn outcome(&self, change: &Change, record: &TrackedJob, now_ms: i64) -> Outcome {
        if !change.alert {
            return Outcome::Nothing;
        }
        let watched = self.watched(record);
        if watched == Watched::No {
            return Outcome::Nothing;
        }
        let held = HeldChange::new(change, self.now);
        let json = held.to_json();
        if self.needs(&change.job, record, watched).any() {
            return Outcome::Hold(json);
        }
        let detected = held.detected(Some(record), self.job_url(&record.id), None);
        Outcome::Alert {
            alerts: alerts::build(
                &detected,
                &self.org.name,
                self.config,
                &self.silences,
                now_ms,
            ),
            held: json,
        }
    }

    /// The body of a `job.resolved` for `job` (recorded as `record`), should its change end
    /// an incident.
    pub fn resolution(
        &self,
        job: &Job,
        record: &TrackedJob,
        previous: Option<Status>,
    ) -> AlertEvent {
        let detected = Detected {
            job: super::change::snapshot(job, record.project),
            event: Event::Resolved,
            previous,
            url: self.job_url(&record.id),
            output: None,
            reminder: None,
            at: self.now,
        };
        Resolutions::template(&detected, &self.org.name, self.config)
    }

    /// Whether `record`'s job is one the organisation's `projects` (or `poll.projects`) watch.
    pub fn watched(&self, record: &TrackedJob) -> Watched {
        let projects = &self.org.projects;
        if projects.is_empty() {
            Watched::Yes
        } else if let Some(project) = record.project {
            if projects.contains(&project) {
                Watched::Yes
            } else {
                Watched::No
            }
        } else if record.project_checked {
            Watched::No
        } else {
            Watched::Unknown
        }
    }

    /// What an alert for `job` (recorded as `record`) waits for before it can be queued.
    pub fn needs(&self, job: &Job, record: &TrackedJob, watched: Watched) -> Needs {
        let project =
            watched == Watched::Unknown || (!self.interest.is_empty() && !record.project_checked);
        let output = job.status == Status::Done
            && self.config.output.as_ref().is_some_and(|output| {
                output.format_for(record.project).is_some()
                    || (project && !output.projects.is_empty())
            });
        Needs {
            project,
            message: job.status == Status::Error && job.message.is_none(),
            output,
        }
    }
}

/// One job's record, what it writes besides, the transition the status page shows
/// (`Some(previous)`), if any, and for a status change, the body of the resolution of an
/// incident it may end.
struct Write {
    record: TrackedJob,
    outcome: Outcome,
    seen: Option<Option<Status>>,
    resolution: Option<AlertEvent>,
}

/// What a commit's transaction needs besides the writes.
struct Writing<'a> {
    org: &'a str,
    resolutions: &'a Resolutions,
    now_ms: i64,
    /// `[state] keep`: settled jobs created longer ago are forgotten (not during the very
    /// first cycle).
    keep_ms: Option<i64>,
}

impl Writing<'_> {
    /// Writes a commit in the caller's transaction: each record, its transition, the
    /// incidents its new status ends (and their resolutions), its alerts (and the incidents
    /// they open) or its held change (held too when an earlier change of the job still
    /// is), the jobs forgotten and the lookups recovered. Returns the alerts queued, how
    /// many were held, and the horizon `[state] keep` forgot below, if it forgot any.
    fn write(
        &self,
        tx: &mut dyn crate::store::Db,
        writes: &[Write],
        removed: &[String],
        recovered: &[String],
    ) -> Result<(Vec<Alert>, usize, Option<i64>), crate::store::StoreError> {
        let (org, now_ms) = (self.org, self.now_ms);
        let (mut inserted, mut held, mut forgot_below) = (Vec::new(), 0, None);
        let mut seen_any = false;
        // A commit can only resolve incidents open before it (a job's own change resolves
        // before it opens), so one look spares a lookup per change when none is: a first
        // cycle records thousands of jobs.
        let resolving =
            writes.iter().any(|w| w.resolution.is_some()) && incidents::any_open(tx, org)?;
        for Write {
            record,
            outcome,
            seen,
            resolution,
        } in writes
        {
            jobs::upsert(tx, org, record, now_ms)?;
            if let Some(previous) = seen {
                let (id, status) = (&record.id, &record.status);
                transitions::record(tx, org, id, previous.as_ref(), status, now_ms)?;
                seen_any = true;
            }
            if let Some(template) = resolution.as_ref().filter(|_| resolving) {
                inserted.extend(self.resolve(tx, record, template)?);
            }
            let hold = match outcome {
                Outcome::Nothing => continue,
                Outcome::Hold(change) => change,
                Outcome::Alert { held: change, .. } if held::has_job(tx, org, &record.id)? => {
                    change
                }
                Outcome::Alert { alerts, .. } => {
                    for alert in alerts {
                        outbox::insert(tx, alert)?;
                    }
                    incidents::open(tx, alerts)?;
                    inserted.extend(alerts.iter().cloned());
                    continue;
                }
            };
            held::insert(tx, org, &record.id, hold, now_ms)?;
            held += 1;
        }
        for id in removed {
            jobs::delete(tx, org, id)?;
        }
        for id in recovered {
            jobs::lookup_recovered(tx, org, id)?;
        }
        if !inserted.is_empty() {
            gauges::set_outbox_pending(tx)?;
            outbox::announce(tx)?;
        }
        if seen_any {
            transitions::prune(tx, now_ms)?;
            incidents::prune(tx, now_ms)?;
        }
        if let Some(keep_ms) = self.keep_ms.filter(|_| seen_any) {
            let before_us = now_ms.saturating_sub(keep_ms).saturating_mul(1000);
            if jobs::forget_created_before(tx, org, before_us)? > 0 {
                // What was forgotten must not come back as new (a range listing shows it).
                crate::store::Bookkeeping::forgot_below(tx, org, before_us)?;
                forgot_below = Some(before_us);
            }
        }
        Ok((inserted, held, forgot_below))
    }

    /// Resolves the incidents of `record`'s job that its status ends; queues their
    /// resolutions (`template` filled in) and returns them.
    fn resolve(
        &self,
        tx: &mut dyn crate::store::Db,
        record: &TrackedJob,
        template: &AlertEvent,
    ) -> Result<Vec<Alert>, crate::store::StoreError> {
        resolve_job(
            tx,
            self.org,
            record,
            template,
            self.resolutions,
            self.now_ms,
        )
    }
}

/// Resolves the incidents of `org`'s job (recorded as `record`) that its status ends, and
/// queues the resolutions of those a channel with `send_resolved` was sent; returns them.
pub(super) fn resolve_job(
    tx: &mut dyn crate::store::Db,
    org: &str,
    record: &TrackedJob,
    template: &AlertEvent,
    resolutions: &Resolutions,
    now_ms: i64,
) -> Result<Vec<Alert>, crate::store::StoreError> {
    let status = &record.status;
    let ended = |condition: incidents::Condition| condition.ended_by(status);
    let resolved = incidents::resolve(tx, org, &record.id, &ended, status.as_str(), now_ms)?;
    let mut queued = Vec::new();
    for incident in &resolved {
        for alert in resolutions.alerts(template, incident, now_ms) {
            outbox::insert(tx, &alert)?;
            queued.push(alert);
        }
    }
    Ok(queued)
}
