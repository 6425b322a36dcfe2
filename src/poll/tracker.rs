//! Transitions: compares what a listing showed with what the store recorded and decides
//! which changes alert. Pure: no I/O, no clock.

use std::collections::HashMap;

use crate::domain::Status;
use crate::sdm::Job;
use crate::store::jobs::TrackedJob;

/// A job whose record must change, and whether the change alerts.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    /// The job as the API showed it, with what the store knew and the API did not repeat.
    pub job: Job,
    /// The recorded status; `None` for a job seen for the first time.
    pub previous: Option<Status>,
    /// Whether the change is into a `notify_on` status and may alert (routing, silences
    /// and the watched projects decide the rest).
    pub alert: bool,
}

impl Change {
    /// A new status (a first sighting counts), as opposed to new details only.
    pub fn is_transition(&self) -> bool {
        self.previous.as_ref() != Some(&self.job.status)
    }
}

/// What decides whether a change alerts.
pub struct Rules<'a> {
    /// No cycle has completed yet: what is found is recorded silently unless
    /// `alert_existing`, whichever attempt of the first cycle finds it.
    pub first_cycle: bool,
    pub alert_existing: bool,
    pub notify_on: &'a [Status],
    /// `poll.lookback` before the very first cycle, or the horizon `[state] keep` forgot
    /// below, whichever is later (µs): a job created before it is watched only while
    /// active, so one first seen settled there (a listing of a tracked job's creation date
    /// may show it, forgotten or never recorded) is recorded silently.
    pub silent_below_us: i64,
}

impl Rules<'_> {
    fn alerts_into(&self, status: &Status) -> bool {
        self.notify_on.contains(status) && (!self.first_cycle || self.alert_existing)
    }

    /// Whether a job first seen now alerts: into a `notify_on` status, and watched.
    fn first_sighting_alerts(&self, job: &Job) -> bool {
        let before_floor = job
            .created_at()
            .is_some_and(|at| crate::domain::time::micros(at) <= self.silent_below_us);
        self.alerts_into(&job.status) && (job.status.is_active() || !before_floor)
    }
}

/// Every listed job whose record must change: new jobs, new statuses, new details.
pub fn plan(
    listed: Vec<Job>,
    recorded: &HashMap<String, TrackedJob>,
    rules: &Rules<'_>,
) -> Vec<Change> {
    let mut changes = Vec::new();
    for mut job in listed {
        let Some(old) = recorded.get(&job.id) else {
            let alert = rules.first_sighting_alerts(&job);
            changes.push(Change {
                job,
                previous: None,
                alert,
            });
            continue;
        };
        let transition = old.status != job.status;
        if !transition && !details_differ(old, &job) {
            continue;
        }
        job.project = job.project.or(old.project);
        if !transition && job.message.is_none() {
            job.message = old.message.clone();
        }
        changes.push(Change {
            alert: transition && rules.alerts_into(&job.status),
            previous: Some(old.status.clone()),
            job,
        });
    }
    changes
}

fn details_differ(old: &TrackedJob, job: &Job) -> bool {
    old.name != job.name
        || old.completion_date != job.completion_date
        || old.creation_date != job.creation_date
        || (job.project.is_some() && old.project != job.project)
}

/// The record of `job`, keeping what the store knew and the API did not repeat. A project
/// shown by the API (or by a listing filtered by it) is known from then on. A new status
/// starts a new stretch at `now_ms` (the watcher's clock), with no reminder sent; a
/// pending stretch that ends adds its length to the job's time pending.
pub fn record(job: &Job, old: Option<&TrackedJob>, now_ms: i64) -> TrackedJob {
    let same_stretch = old.filter(|old| old.status == job.status);
    TrackedJob {
        id: job.id.clone(),
        status: job.status.clone(),
        name: job.name.clone(),
        project: job.project.or(old.and_then(|old| old.project)),
        project_checked: job.project.is_some() || old.is_some_and(|old| old.project_checked),
        creation_date: job.creation_date.clone(),
        completion_date: job.completion_date.clone(),
        created_us: job.created_at().map(crate::domain::time::micros),
        message: job.message.clone().or_else(|| {
            // A message belongs to the error it came with.
            old.filter(|old| old.status == job.status)
                .and_then(|old| old.message.clone())
        }),
        step: job.step.as_ref().map(|step| step.to_string()),
        since_ms: same_stretch.map_or(Some(now_ms), |old| old.since_ms.or(Some(now_ms))),
        reminders: same_stretch.map_or(0, |old| old.reminders),
        completed_us: job.completed_at().map(crate::domain::time::micros),
        pending_ms: old.map_or(0, |old| {
            let ended = old.status == Status::Pending && job.status != Status::Pending;
            let stretch = match (ended, old.since_ms) {
                (true, Some(since)) => now_ms.saturating_sub(since).max(0),
                _ => 0,
            };
            old.pending_ms.saturating_add(stretch)
        }),
    }
}

/// A job as the API last showed it, rebuilt from its record.
pub fn job_from_record(record: &TrackedJob) -> Job {
    Job {
        id: record.id.clone(),
        name: record.name.clone(),
        status: record.status.clone(),
        creation_date: record.creation_date.clone(),
        completion_date: record.completion_date.clone(),
        project: record.project,
        step: record
            .step
            .as_deref()
            .and_then(|step| serde_json::from_str(step).ok()),
        message: record.message.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: &str, status: Status) -> Job {
        Job {
            id: id.into(),
            name: Some("Feed".into()),
            status,
            creation_date: Some("2026-11-28T10:00:00Z".into()),
            completion_date: None,
            project: None,
            step: None,
            message: None,
        }
    }

    const NOTIFY: [Status; 3] = [Status::Done, Status::Error, Status::Pending];

    fn recorded(jobs: &[Job]) -> HashMap<String, TrackedJob> {
        jobs.iter()
            .map(|job| (job.id.clone(), record(job, None, 0)))
            .collect()
    }

    #[test]
    fn the_first_cycle_records_silently_unless_alert_existing_even_a_change() {
        let listed = vec![job("a", Status::Done), job("b", Status::Running)];
        // "c" was recorded by an earlier, failed attempt of the first cycle.
        let known = recorded(&[job("c", Status::Running)]);
        let mut listed_c = listed.clone();
        listed_c.push(job("c", Status::Error));
        for (alert_existing, expected) in
            [(false, [false, false, false]), (true, [true, false, true])]
        {
            let rules = Rules {
                first_cycle: true,
                alert_existing,
                notify_on: &NOTIFY,
                silent_below_us: i64::MIN,
            };
            let changes = plan(listed_c.clone(), &known, &rules);
            let alerts: Vec<bool> = changes.iter().map(|c| c.alert).collect();
            assert_eq!(alerts, expected, "alert_existing = {alert_existing}");
        }
    }

    #[test]
    fn transitions_alert_only_into_notify_on_and_details_alone_never_do() {
        let known = recorded(&[
            job("a", Status::Running),
            job("b", Status::Pending),
            job("c", Status::Done),
            job("e", Status::Running),
        ]);
        let mut renamed = job("c", Status::Done);
        renamed.name = Some("Renamed".into());
        let listed = vec![
            job("a", Status::Error),
            job("b", Status::Running),
            renamed,
            job("d", Status::Pending),
            job("e", Status::Running),
        ];
        let rules = Rules {
            first_cycle: false,
            alert_existing: false,
            notify_on: &NOTIFY,
            silent_below_us: i64::MIN,
        };
        let changes = plan(listed, &known, &rules);
        let summary: Vec<(&str, Option<&str>, bool, bool)> = changes
            .iter()
            .map(|c| {
                (
                    c.job.id.as_str(),
                    c.previous.as_ref().map(Status::as_str),
                    c.alert,
                    c.is_transition(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("a", Some("running"), true, true),
                ("b", Some("pending"), false, true),
                ("c", Some("done"), false, false),
                ("d", None, true, true),
            ]
        );
    }

    #[test]
    fn a_project_once_known_is_kept_when_rows_lack_it() {
        let mut shown = job("a", Status::Running);
        shown.project = Some(17);
        let known = record(&shown, None, 0);
        assert!(known.project_checked);
        let later = record(&job("a", Status::Done), Some(&known), 0);
        assert_eq!((later.project, later.project_checked), (Some(17), true));
        let unknown = record(&job("b", Status::Done), None, 0);
        assert_eq!((unknown.project, unknown.project_checked), (None, false));
    }

    #[test]
    fn a_job_first_seen_settled_before_the_floor_is_recorded_silently() {
        let dated = |id: &str, status: Status, date: &str| {
            let mut job = job(id, status);
            job.creation_date = Some(date.into());
            job
        };
        let floor = crate::domain::time::parse_api_time("2026-11-20T00:00:00Z").unwrap();
        let rules = Rules {
            first_cycle: false,
            alert_existing: false,
            notify_on: &NOTIFY,
            silent_below_us: crate::domain::time::micros(floor),
        };
        let listed = vec![
            dated("old-done", Status::Done, "2026-11-19T23:59:59Z"),
            dated("at-floor", Status::Error, "2026-11-20T00:00:00Z"),
            dated("old-pending", Status::Pending, "2026-11-01T00:00:00Z"),
            dated("new-done", Status::Done, "2026-11-20T00:00:01Z"),
            job("undated", Status::Done),
        ];
        let changes = plan(listed, &HashMap::new(), &rules);
        let alerts: Vec<(&str, bool)> = changes
            .iter()
            .map(|c| (c.job.id.as_str(), c.alert))
            .collect();
        assert_eq!(
            alerts,
            [
                ("old-done", false),
                ("at-floor", false),
                ("old-pending", true),
                ("new-done", true),
                ("undated", true)
            ]
        );
    }

    #[test]
    fn time_pending_adds_up_the_pending_stretches_that_ended() {
        // pending 0..100, running 100..150, pending again 150..400, then done at 400.
        let steps = [
            (Status::Pending, 0, 0),
            (Status::Pending, 60, 0),
            (Status::Running, 100, 100),
            (Status::Pending, 150, 100),
            (Status::Pending, 300, 100),
            (Status::Done, 400, 350),
            (Status::Done, 900, 350),
        ];
        let mut old: Option<TrackedJob> = None;
        for (status, now_ms, pending_ms) in steps {
            let mut seen = job("a", status.clone());
            if status == Status::Done {
                seen.completion_date = Some("2026-11-28T10:05:00Z".into());
            }
            let new = record(&seen, old.as_ref(), now_ms);
            assert_eq!(new.pending_ms, pending_ms, "{status} at {now_ms}");
            old = Some(new);
        }
        let done = old.unwrap();
        let run_us = done.completed_us.unwrap() - done.created_us.unwrap();
        assert_eq!(
            run_us, 300_000_000,
            "five minutes from creation to completion"
        );
    }
}
