//! What the console shows: the data of `/status.json`, which the page renders, as
//! `status` reads it from the store.

use serde::Serialize;

use crate::domain::time::{from_millis, rfc3339_seconds};
use crate::ops::health::Role;
use crate::report::ProjectLine;

/// Everything the page shows; `/status.json` is this, serialized.
#[derive(Clone, Debug, Serialize)]
pub struct Status {
    pub generated_at: String,
    pub version: &'static str,
    pub ready: bool,
    /// `ready`, or why not.
    pub readiness: String,
    /// This replica's part: `alone` (SQLite), `leader` or `standby` (PostgreSQL), with
    /// `replica` (its name) and, standing by, `leader` (who leads, if anyone).
    pub role: Role,
    pub last_success_at: Option<String>,
    pub last_cycle: Option<CycleView>,
    /// Tracked jobs by status, and their total.
    pub jobs: JobCounts,
    /// Jobs running or pending, oldest first (at most 100 of `jobs.active`).
    pub active: Vec<ActiveView>,
    /// The last 100 status changes the watcher saw, newest first.
    pub transitions: Vec<TransitionView>,
    /// Changes in each of the last 24 hours, oldest first.
    pub transitions_per_hour: Vec<HourCount>,
    /// The jobs created in the last 7 days, by project, as `sdm-watch report` counts them
    /// (`waiting` is 0 here: the page lists the active jobs itself).
    pub week: Vec<ProjectLine>,
    pub alerts: AlertsView,
    /// Open incidents and recent resolutions.
    pub incidents: IncidentsView,
    /// Silences in force now.
    pub silences: Vec<SilenceView>,
    /// The last 50 things operators did, newest first (`sdm-watch audit`).
    pub audit: Vec<AuditView>,
    /// With `[[organisation]]` tables: each organisation watched here, its jobs, last
    /// cycle and outage in progress (empty without tables).
    pub organisations: Vec<OrgView>,
    /// The watcher's outages in progress, one per organisation that has one.
    pub outages: Vec<OutageView>,
}

impl OutageView {
    pub(super) fn of(
        org: &str,
        outage: &crate::store::bookkeeping::Outage,
        now: i64,
    ) -> OutageView {
        OutageView {
            organisation: org.to_owned(),
            since: at(outage.since_ms),
            failing_for_seconds: u64::try_from(now.saturating_sub(outage.since_ms) / 1000)
                .unwrap_or(0),
            reason: outage.reason.clone(),
            last_error: outage.last_error.clone(),
            watcher_failing_sent: outage.alerted,
        }
    }
}

/// An outage in progress: no cycle of `organisation` has succeeded since `since`.
#[derive(Clone, Debug, Serialize)]
pub struct OutageView {
    pub organisation: String,
    /// The last successful cycle.
    pub since: String,
    pub failing_for_seconds: u64,
    /// `token_refused`, `api_unreachable`, `api_errors`, `rate_limited` or `store`.
    pub reason: String,
    pub last_error: String,
    /// `watcher.failing` went out (it does once the outage is `watchdog.alert_after` old).
    pub watcher_failing_sent: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct OrgView {
    pub name: String,
    pub jobs: JobCounts,
    pub last_cycle: Option<CycleView>,
    /// When no cycle has succeeded since (the watcher's outage in progress).
    pub failing_since: Option<String>,
    pub failing_reason: Option<String>,
    /// This process polls it (alone: always; among replicas: it holds its lease).
    pub polled_here: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct JobCounts {
    pub total: u64,
    pub active: u64,
    /// Always has `running`, `pending`, `done` and `error`, and any other status seen.
    pub by_status: std::collections::BTreeMap<String, u64>,
}

impl Default for JobCounts {
    fn default() -> Self {
        JobCounts {
            total: 0,
            active: 0,
            by_status: ["running", "pending", "done", "error"]
                .into_iter()
                .map(|status| (status.to_owned(), 0))
                .collect(),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct CycleView {
    pub finished_at: String,
    pub duration_ms: u64,
    pub requests: Option<u64>,
    pub jobs_seen: Option<usize>,
    pub transitions: Option<usize>,
    pub error: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ActiveView {
    pub organisation: String,
    pub id: String,
    pub name: Option<String>,
    pub project: Option<i64>,
    pub status: String,
    pub since: Option<String>,
    pub age_seconds: Option<u64>,
    /// `3h 12m`.
    pub age: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct TransitionView {
    pub organisation: String,
    pub at: String,
    pub job_id: String,
    pub name: Option<String>,
    pub project: Option<i64>,
    pub previous: Option<String>,
    pub status: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct HourCount {
    /// The hour's start.
    pub hour: String,
    pub count: u64,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct AlertsView {
    pub pending: u64,
    pub dead: u64,
    pub silenced: u64,
    /// The most recent dead alerts, with why and how many attempts.
    pub dead_recent: Vec<AlertView>,
    /// The most recent silenced alerts (listed when silences exist).
    pub silenced_recent: Vec<AlertView>,
    /// The oldest alerts still waiting.
    pub pending_oldest: Vec<AlertView>,
}

#[derive(Clone, Debug, Serialize)]
pub struct AlertView {
    pub organisation: String,
    pub id: String,
    pub channel: String,
    pub job_id: String,
    pub event: String,
    pub queued_at: String,
    pub attempts: u32,
    pub error: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct IncidentsView {
    /// How many are open in all.
    pub open: u64,
    /// The newest open ones (at most 20).
    pub open_recent: Vec<IncidentView>,
    /// The most recently resolved ones (at most 20).
    pub resolved_recent: Vec<IncidentView>,
}

#[derive(Clone, Debug, Serialize)]
pub struct IncidentView {
    pub organisation: String,
    /// Empty for the watcher's own.
    pub job_id: String,
    pub name: Option<String>,
    /// `error`, `pending`, `running_long` or `watcher`.
    pub condition: String,
    pub opened_at: String,
    pub resolved_at: Option<String>,
    /// The job's status that ended it (`recovered` for the watcher's).
    pub resolved_by: Option<String>,
    /// Open for, or lasted: `3h 12m`.
    pub duration: String,
    pub channels: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct SilenceView {
    pub id: String,
    pub until: String,
    pub matches: String,
    pub reason: String,
}

pub(super) fn at(ms: i64) -> String {
    from_millis(ms).map(rfc3339_seconds).unwrap_or_default()
}

/// `2d 3h`, `3h 12m`, `12m 5s`, `5s`.
pub fn age(seconds: u64) -> String {
    let (d, h, m, s) = (
        seconds / 86_400,
        seconds / 3600 % 24,
        seconds / 60 % 60,
        seconds % 60,
    );
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

impl JobCounts {
    pub(super) fn add(&mut self, status: &crate::domain::Status, count: u64) {
        self.total += count;
        if matches!(status.as_str(), "running" | "pending") {
            self.active += count;
        }
        *self.by_status.entry(status.to_string()).or_default() += count;
    }
}

/// One audit entry, with its time as people read it.
#[derive(Clone, Debug, Serialize)]
pub struct AuditView {
    pub at: String,
    #[serde(flatten)]
    pub entry: crate::store::audit::Entry,
}
