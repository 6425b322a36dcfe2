//! What a change found by a cycle still needs before it alerts (`Needs`), whether its job
//! is watched at all (`Watched`), and a held change as the store keeps it (`HeldChange`):
//! the words `commit`, `held`, `lookup` and `remind` share, so that none of them imports
//! another.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::tracker::Change;
use crate::domain::time::{from_micros, micros};
use crate::domain::{Event, Status};
use crate::notify::alerts::{Detected, Output};
use crate::notify::payload::JobSnapshot;
use crate::output::Saved;
use crate::sdm::Job;
use crate::store::jobs::TrackedJob;

/// Whether a job is in `poll.projects` (always, when that list is empty).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Watched {
    Yes,
    No,
    /// Its project is not known yet.
    Unknown,
}

/// What a change alerting still waits for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Needs {
    /// The project, for `poll.projects`, a channel's `projects` or `output.projects`.
    pub project: bool,
    /// An error's message, which only the detail endpoint has.
    pub message: bool,
    /// A done job's rows, for `[output]`.
    pub output: bool,
}

impl Needs {
    pub fn any(self) -> bool {
        self.project || self.message || self.output
    }
}

/// A held change, as kept in the store.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct HeldChange {
    pub job: Job,
    pub previous: Option<Status>,
    /// When the change was detected (µs): the alert's `timestamp`.
    pub detected_us: i64,
    /// A done job's saved rows, once fetched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Saved>,
    /// The job changed again before its message or rows came: they are no longer to be had.
    #[serde(default)]
    pub moved_on: bool,
}

impl HeldChange {
    pub fn new(change: &Change, at: OffsetDateTime) -> Self {
        Self {
            job: change.job.clone(),
            previous: change.previous.clone(),
            detected_us: micros(at),
            output: None,
            moved_on: false,
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }

    /// The change as the alert tells it, for the job at `url`; the project is the
    /// record's, which a listing by project may have completed since. `output_error` says
    /// why wanted rows are missing.
    pub fn detected(
        &self,
        record: Option<&TrackedJob>,
        url: String,
        output_error: Option<String>,
    ) -> Detected {
        let job = &self.job;
        let output = match (&self.output, output_error) {
            (Some(saved), _) => Some(Output::Saved(
                serde_json::to_value(saved).unwrap_or_default(),
            )),
            (None, Some(error)) => Some(Output::Missing(error)),
            (None, None) => None,
        };
        Detected {
            job: snapshot(job, record.and_then(|r| r.project).or(job.project)),
            event: Event::from(job.status.clone()),
            previous: self.previous.clone(),
            url,
            output,
            reminder: None,
            at: from_micros(self.detected_us).unwrap_or(OffsetDateTime::UNIX_EPOCH),
        }
    }
}

/// The job as an alert tells it, in `project`.
pub(super) fn snapshot(job: &Job, project: Option<crate::domain::ProjectId>) -> JobSnapshot {
    JobSnapshot {
        id: job.id.clone(),
        name: job.name.clone(),
        status: job.status.to_string(),
        creation_date: job.creation_date.clone(),
        completion_date: job.completion_date.clone(),
        project,
        step: job.step.clone(),
        message: job.message.clone(),
    }
}
