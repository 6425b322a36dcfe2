//! What happened over a period, from the jobs the watcher recorded: per project, jobs by
//! final status, the error rate and durations (creation to completion: median, p95, max,
//! by the nearest-rank method); the error messages grouped by signature; the slowest jobs;
//! the jobs waiting for action now. Fed one job at a time (the store streams them), it
//! keeps one duration per finished job and one entry per signature, not the jobs.

mod read;
mod signature;
pub mod text;

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

pub use read::{period_start, read};
pub use signature::signature;

use crate::domain::Status;
use crate::domain::stats::nearest_rank;
use crate::domain::time::parse_api_time;
use crate::store::history::Recorded;

/// How many signatures, slowest jobs and waiting jobs a report lists.
pub const TOP: usize = 10;

/// A job that finished (`done` or `error`), as the report reads it.
#[derive(Clone, Debug)]
pub struct Finished {
    pub organisation: String,
    pub id: String,
    pub name: Option<String>,
    pub project: Option<i64>,
    pub failed: bool,
    /// Creation to completion, when both dates are known and in order.
    pub duration_ms: Option<i64>,
    pub message: Option<String>,
    /// Time the watcher saw it pending (ms; 0 if never).
    pub pending_ms: i64,
}

impl Finished {
    /// The recorded job if it finished (`done` or `error`), with its duration when both
    /// its API dates are known and in order.
    pub fn of(job: Recorded) -> Option<Finished> {
        let failed = match job.status {
            Status::Done => false,
            Status::Error => true,
            _ => return None,
        };
        let at = |date: &Option<String>| date.as_deref().and_then(parse_api_time);
        let duration_ms = match (at(&job.creation_date), at(&job.completion_date)) {
            (Some(created), Some(completed)) if completed >= created => {
                i64::try_from((completed - created).whole_milliseconds()).ok()
            }
            _ => None,
        };
        Some(Finished {
            organisation: job.organisation,
            id: job.id,
            name: job.name,
            project: job.project,
            failed,
            duration_ms,
            message: job.message,
            pending_ms: job.pending_ms.max(0),
        })
    }
}

/// A job waiting for action (`pending`) now.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Waiting {
    pub organisation: String,
    pub id: String,
    pub name: Option<String>,
    pub project: Option<i64>,
    /// Since when the watcher has seen it pending (RFC 3339), if known.
    pub since: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProjectLine {
    pub organisation: String,
    /// `None`: jobs whose project is unknown.
    pub project: Option<i64>,
    pub done: u64,
    pub error: u64,
    /// `error / (done + error)`.
    pub error_rate: f64,
    pub duration_median_ms: Option<i64>,
    pub duration_p95_ms: Option<i64>,
    pub duration_max_ms: Option<i64>,
    /// Finished jobs the watcher saw pending (waiting for action) on their way.
    pub pending_jobs: u64,
    /// Their time spent pending: median (nearest rank), max and total.
    pub pending_median_ms: Option<i64>,
    pub pending_max_ms: Option<i64>,
    pub pending_total_ms: i64,
    /// Jobs of the project pending now.
    pub waiting: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SignatureLine {
    pub signature: String,
    pub count: u64,
    /// The first message seen with it, as written.
    pub example: String,
    /// The projects it came from (unknown ones as `null`).
    pub projects: Vec<Option<i64>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SlowJob {
    pub organisation: String,
    pub id: String,
    pub name: Option<String>,
    pub project: Option<i64>,
    pub duration_ms: i64,
    pub failed: bool,
}

/// The report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The period, RFC 3339: jobs created from `since` on.
    pub since: String,
    pub until: String,
    pub projects: Vec<ProjectLine>,
    pub signatures: Vec<SignatureLine>,
    pub slowest: Vec<SlowJob>,
    pub waiting: Vec<Waiting>,
}

type ProjectKey = (String, Option<i64>);

/// One signature so far: how often, in which order first seen, an example, the projects.
struct SignatureAcc {
    count: u64,
    order: usize,
    example: String,
    projects: Vec<Option<i64>>,
}

#[derive(Default)]
struct ProjectAcc {
    done: u64,
    error: u64,
    durations: Vec<i64>,
    pending: Vec<i64>,
    waiting: u64,
}

/// Builds a report one job at a time.
#[derive(Default)]
pub struct Accumulator {
    projects: BTreeMap<ProjectKey, ProjectAcc>,
    signatures: HashMap<String, SignatureAcc>,
    slowest: Vec<SlowJob>,
    waiting: Vec<Waiting>,
}

impl Accumulator {
    pub fn finished(&mut self, job: Finished) {
        let acc = self
            .projects
            .entry((job.organisation.clone(), job.project))
            .or_default();
        if job.failed {
            acc.error += 1;
        } else {
            acc.done += 1;
        }
        if job.pending_ms > 0 {
            acc.pending.push(job.pending_ms);
        }
        if let Some(duration) = job.duration_ms {
            acc.durations.push(duration);
            self.note_slow(SlowJob {
                organisation: job.organisation.clone(),
                id: job.id.clone(),
                name: job.name.clone(),
                project: job.project,
                duration_ms: duration,
                failed: job.failed,
            });
        }
        if job.failed
            && let Some(message) = job.message.as_deref().filter(|m| !m.trim().is_empty())
        {
            let order = self.signatures.len();
            let entry = self
                .signatures
                .entry(signature(message))
                .or_insert_with(|| SignatureAcc {
                    count: 0,
                    order,
                    example: message.to_owned(),
                    projects: Vec::new(),
                });
            entry.count += 1;
            if !entry.projects.contains(&job.project) {
                entry.projects.push(job.project);
            }
        }
    }

    pub fn waiting(&mut self, job: Waiting) {
        self.projects
            .entry((job.organisation.clone(), job.project))
            .or_default()
            .waiting += 1;
        self.waiting.push(job);
    }

    /// Keeps the TOP slowest, slowest first (ties: by id).
    fn note_slow(&mut self, job: SlowJob) {
        self.slowest.push(job);
        if self.slowest.len() > TOP * 4 {
            self.trim_slowest();
        }
    }

    fn trim_slowest(&mut self) {
        self.slowest.sort_by(|a, b| {
            b.duration_ms
                .cmp(&a.duration_ms)
                .then_with(|| a.id.cmp(&b.id))
                .then_with(|| a.organisation.cmp(&b.organisation))
        });
        self.slowest.truncate(TOP);
    }

    pub fn report(mut self, since: String, until: String) -> Report {
        self.trim_slowest();
        let projects = self
            .projects
            .into_iter()
            .map(|((organisation, project), mut acc)| {
                acc.durations.sort_unstable();
                acc.pending.sort_unstable();
                let finished = acc.done + acc.error;
                ProjectLine {
                    organisation,
                    project,
                    done: acc.done,
                    error: acc.error,
                    error_rate: if finished == 0 {
                        0.0
                    } else {
                        acc.error as f64 / finished as f64
                    },
                    duration_median_ms: nearest_rank(&acc.durations, 50),
                    duration_p95_ms: nearest_rank(&acc.durations, 95),
                    duration_max_ms: acc.durations.last().copied(),
                    pending_jobs: acc.pending.len() as u64,
                    pending_median_ms: nearest_rank(&acc.pending, 50),
                    pending_max_ms: acc.pending.last().copied(),
                    pending_total_ms: acc
                        .pending
                        .iter()
                        .fold(0i64, |sum, ms| sum.saturating_add(*ms)),
                    waiting: acc.waiting,
                }
            })
            .collect();
        let mut signatures: Vec<(String, SignatureAcc)> = self.signatures.into_iter().collect();
        // Most frequent first; among equals, the one seen first.
        signatures.sort_by(|a, b| b.1.count.cmp(&a.1.count).then(a.1.order.cmp(&b.1.order)));
        let signatures = signatures
            .into_iter()
            .take(TOP)
            .map(|(signature, mut acc)| {
                acc.projects.sort();
                SignatureLine {
                    signature,
                    count: acc.count,
                    example: acc.example,
                    projects: acc.projects,
                }
            })
            .collect();
        let mut waiting = self.waiting;
        waiting.sort_by(|a, b| a.since.cmp(&b.since).then_with(|| a.id.cmp(&b.id)));
        waiting.truncate(TOP * 10);
        Report {
            since,
            until,
            projects,
            signatures,
            slowest: self.slowest,
            waiting,
        }
    }
}
