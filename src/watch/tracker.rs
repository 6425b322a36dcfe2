//! Transitions: compares what the API lists with what the store recorded, decides which
//! changes alert, and commits the new states with their alerts in one transaction.

use std::collections::HashMap;

use rusqlite::Connection;
use time::OffsetDateTime;

use crate::config::Config;
use crate::notify::{self, AlertEvent, JobSnapshot};
use crate::output::Saved;
use crate::sdm::{Job, Status};
use crate::store::StoreError;
use crate::store::jobs::{self, TrackedJob};
use crate::store::outbox::{self, Alert};

/// A job whose record must change, and whether the change alerts.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    pub job: Job,
    /// The recorded status; `None` for a job seen for the first time.
    pub previous: Option<String>,
    pub alert: bool,
    /// For a job now done, with `[output]`: its saved rows, or why they could not be had.
    pub output: Option<Result<Saved, String>>,
}

impl Change {
    /// A new status (a first sighting counts), as opposed to new details only.
    pub fn is_transition(&self) -> bool {
        self.previous.as_deref() != Some(self.job.status.as_str())
    }
}

/// What decides whether a change alerts.
pub struct Rules<'a> {
    /// The very first cycle: jobs already in a notify_on status are recorded silently
    /// unless `alert_existing`.
    pub first_cycle: bool,
    pub alert_existing: bool,
    pub notify_on: &'a [Status],
}

/// Every listed job whose record must change: new jobs, new statuses, new details.
pub fn plan(
    listed: Vec<Job>,
    recorded: &HashMap<String, TrackedJob>,
    rules: &Rules<'_>,
) -> Vec<Change> {
    let mut changes = Vec::new();
    for job in listed {
        let notify = rules.notify_on.contains(&job.status);
        match recorded.get(&job.id) {
            None => {
                let alert = notify && (!rules.first_cycle || rules.alert_existing);
                changes.push(Change {
                    job,
                    previous: None,
                    alert,
                    output: None,
                });
            }
            Some(old) if old.status != job.status.as_str() => changes.push(Change {
                previous: Some(old.status.clone()),
                job,
                alert: notify,
                output: None,
            }),
            Some(old) if details_differ(old, &job) => changes.push(Change {
                previous: Some(old.status.clone()),
                job,
                alert: false,
                output: None,
            }),
            Some(_) => {}
        }
    }
    changes
}

fn details_differ(old: &TrackedJob, job: &Job) -> bool {
    old.name != job.name
        || old.completion_date != job.completion_date
        || old.creation_date != job.creation_date
        || (job.project.is_some() && old.project != job.project)
}

/// The record of `job`, keeping what the store knew and the API did not repeat.
pub fn record(job: &Job, old: Option<&TrackedJob>) -> TrackedJob {
    TrackedJob {
        id: job.id.clone(),
        status: job.status.to_string(),
        name: job.name.clone(),
        project: job.project.or(old.and_then(|old| old.project)),
        creation_date: job.creation_date.clone(),
        completion_date: job.completion_date.clone(),
        created_us: job.created_at().map(micros),
        message: job.message.clone().or_else(|| {
            // A message belongs to the error it came with.
            old.filter(|old| old.status == job.status.as_str())
                .and_then(|old| old.message.clone())
        }),
        step: job.step.as_ref().map(|step| step.to_string()),
    }
}

/// A job as the API last showed it, rebuilt from its record.
pub fn job_from_record(record: &TrackedJob) -> Job {
    Job {
        id: record.id.clone(),
        name: record.name.clone(),
        status: Status::parse(&record.status),
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

/// One alert per channel that wants this change, all sharing one payload.
pub fn alerts_for(change: &Change, config: &Config, at: OffsetDateTime, now_ms: i64) -> Vec<Alert> {
    if !change.alert {
        return Vec::new();
    }
    let job = &change.job;
    let channels = notify::route(config, job.status.as_str(), job.project);
    if channels.is_empty() {
        return Vec::new();
    }
    let mut url = config.api.base_url.clone();
    if let Ok(mut segments) = url.path_segments_mut() {
        segments.pop_if_empty().push("jobs").push(&job.id).push("");
    }
    let mut event = AlertEvent::new(
        JobSnapshot {
            id: job.id.clone(),
            name: job.name.clone(),
            status: job.status.to_string(),
            creation_date: job.creation_date.clone(),
            completion_date: job.completion_date.clone(),
            project: job.project,
            step: job.step.clone(),
            message: job.message.clone(),
        },
        change.previous.clone(),
        url.to_string(),
        at,
    );
    match &change.output {
        Some(Ok(saved)) => event.data.output = serde_json::to_value(saved).ok(),
        Some(Err(error)) => {
            event.data.output = Some(serde_json::Value::Null);
            event.data.output_error = Some(error.clone());
        }
        None => {}
    }
    let payload = event.to_json();
    channels
        .iter()
        .map(|channel| {
            Alert::new(
                new_alert_id(),
                channel,
                &job.id,
                job.status.as_str(),
                payload.clone(),
                now_ms,
            )
        })
        .collect()
}

/// `msg_` and a time-ordered UUID, in the style of Standard Webhooks message ids.
pub fn new_alert_id() -> String {
    format!("msg_{}", uuid::Uuid::now_v7().simple())
}

/// The watcher's bookkeeping, written with the cycle's changes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Bookkeeping {
    pub first_cycle_done: bool,
    /// The newest `creation_date` ever listed, in microseconds.
    pub newest_created_us: Option<i64>,
    /// The first cycle's lower bound, used while no job is known.
    pub floor_us: Option<i64>,
}

pub const META_FIRST_CYCLE_DONE: &str = "first_cycle_done";
pub const META_NEWEST_CREATED_US: &str = "newest_created_us";
pub const META_FLOOR_US: &str = "window_floor_us";

/// Writes the new states, their alerts, the removals and the bookkeeping in one
/// transaction: a crash leaves either all of it or none.
pub fn commit(
    conn: &mut Connection,
    records: &[TrackedJob],
    alerts: &[Alert],
    removed: &[String],
    bookkeeping: &Bookkeeping,
    now_ms: i64,
) -> Result<(), StoreError> {
    let tx = conn.transaction()?;
    for record in records {
        jobs::upsert(&tx, record, now_ms)?;
    }
    for alert in alerts {
        outbox::insert(&tx, alert)?;
    }
    for id in removed {
        jobs::delete(&tx, id)?;
    }
    if bookkeeping.first_cycle_done {
        jobs::set_meta(&tx, META_FIRST_CYCLE_DONE, "1")?;
    }
    if let Some(newest) = bookkeeping.newest_created_us {
        jobs::set_meta(&tx, META_NEWEST_CREATED_US, &newest.to_string())?;
    }
    if let Some(floor) = bookkeeping.floor_us {
        jobs::set_meta(&tx, META_FLOOR_US, &floor.to_string())?;
    }
    tx.commit()?;
    Ok(())
}

pub fn micros(at: OffsetDateTime) -> i64 {
    (at.unix_timestamp_nanos() / 1_000) as i64
}

pub fn from_micros(us: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(us as i128 * 1_000).ok()
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

    #[test]
    fn first_cycle_records_silently_unless_alert_existing() {
        let listed = vec![job("a", Status::Done), job("b", Status::Running)];
        for (alert_existing, expected) in [(false, [false, false]), (true, [true, false])] {
            let rules = Rules {
                first_cycle: true,
                alert_existing,
                notify_on: &NOTIFY,
            };
            let changes = plan(listed.clone(), &HashMap::new(), &rules);
            let alerts: Vec<bool> = changes.iter().map(|c| c.alert).collect();
            assert_eq!(alerts, expected);
        }
    }

    #[test]
    fn transitions_alert_only_into_notify_on_and_details_alone_never_do() {
        let recorded: HashMap<String, TrackedJob> = [
            record(&job("a", Status::Running), None),
            record(&job("b", Status::Pending), None),
            record(&job("c", Status::Done), None),
        ]
        .into_iter()
        .map(|r| (r.id.clone(), r))
        .collect();
        let mut renamed = job("c", Status::Done);
        renamed.name = Some("Renamed".into());
        let listed = vec![
            job("a", Status::Error),
            job("b", Status::Running),
            renamed,
            job("d", Status::Pending),
        ];
        let rules = Rules {
            first_cycle: false,
            alert_existing: false,
            notify_on: &NOTIFY,
        };
        let changes = plan(listed, &recorded, &rules);
        let summary: Vec<(&str, Option<&str>, bool, bool)> = changes
            .iter()
            .map(|c| {
                (
                    c.job.id.as_str(),
                    c.previous.as_deref(),
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
}
