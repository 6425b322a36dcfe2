//! The simulator's jobs: what a test adds ([`NewJob`]) and the handle that changes them
//! ([`Jobs`]), from the [`super::Simulator`] and from request hooks alike.

use time::OffsetDateTime;

use super::state::{SimJob, SimState};
use crate::domain::{ProjectId, Row, Status};

/// A job to add: everything but the status has a default.
#[derive(Clone, Debug)]
pub struct NewJob {
    pub name: String,
    pub status: Status,
    pub project: Option<ProjectId>,
    /// The `creation_date` the API reports; the simulator's clock when not given.
    pub created: Option<OffsetDateTime>,
    pub message: Option<String>,
    pub rows: Vec<Row>,
    pub generated_rows: Option<usize>,
    /// Listings show the job only this long after it is added.
    pub visible_after: Option<std::time::Duration>,
}

impl NewJob {
    pub fn new(status: Status) -> Self {
        Self {
            name: "Supplier feed".into(),
            status,
            project: None,
            created: None,
            message: None,
            rows: Vec::new(),
            generated_rows: None,
            visible_after: None,
        }
    }

    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    pub fn project(mut self, project: ProjectId) -> Self {
        self.project = Some(project);
        self
    }

    pub fn created(mut self, at: OffsetDateTime) -> Self {
        self.created = Some(at);
        self
    }

    /// Listings show the job only `delay` after it is added (on the simulator's clock).
    pub fn visible_after(mut self, delay: std::time::Duration) -> Self {
        self.visible_after = Some(delay);
        self
    }

    pub fn message(mut self, message: impl Into<String>) -> Self {
        self.message = Some(message.into());
        self
    }

    pub fn rows(mut self, rows: Vec<Row>) -> Self {
        self.rows = rows;
        self
    }

    /// Output of `count` generated rows (see [`generated_row`]), made as they are sent.
    pub fn generated_rows(mut self, count: usize) -> Self {
        self.generated_rows = Some(count);
        self
    }
}

/// The simulator's jobs, changed in place: by the [`Simulator`] handle and by request hooks.
pub struct Jobs<'a> {
    pub(super) state: &'a mut SimState,
}

impl Jobs<'_> {
    /// The simulator's clock.
    pub fn now(&self) -> OffsetDateTime {
        self.state.now()
    }

    pub fn add(&mut self, id: &str, job: NewJob) {
        let now = self.state.now();
        let created = truncate_to_micros(job.created.unwrap_or(now));
        let finished = matches!(job.status, Status::Done | Status::Error);
        self.state.insert(SimJob {
            id: id.to_owned(),
            name: job.name,
            completion_date: finished.then(|| created.max(truncate_to_micros(now))),
            status: job.status,
            project: job.project,
            creation_date: created,
            step: 1,
            message: job.message,
            rows: job.rows,
            generated_rows: job.generated_rows,
            visible_from: job
                .visible_after
                .map(|delay| now + time::Duration::try_from(delay).unwrap_or_default()),
        });
    }

    /// Moves a job to `status`; `message` is what the detail shows on error. False for an
    /// unknown id.
    pub fn set_status(&mut self, id: &str, status: Status, message: Option<&str>) -> bool {
        let now = truncate_to_micros(self.state.now());
        let Some(job) = self.state.job_mut(id) else {
            return false;
        };
        job.completion_date = matches!(status, Status::Done | Status::Error).then_some(now);
        job.status = status;
        job.step += 1;
        if let Some(message) = message {
            job.message = Some(message.to_owned());
        }
        true
    }

    /// Deletes a job; false for an unknown id.
    pub fn remove(&mut self, id: &str) -> bool {
        self.state.remove(id)
    }

    pub fn get(&self, id: &str) -> Option<&SimJob> {
        self.state.job(id)
    }

    /// Every job that listings show now.
    pub fn visible(&self) -> Vec<SimJob> {
        let state = &*self.state;
        state
            .jobs
            .iter()
            .filter(|job| state.visible(job))
            .cloned()
            .collect()
    }
}

fn truncate_to_micros(at: OffsetDateTime) -> OffsetDateTime {
    let micros = at.microsecond();
    at.replace_microsecond(micros).unwrap_or(at)
}
