//! What the console shows, read in one go from the store's read-only connection: the
//! data of `/status.json`, which the page renders.

use serde::Serialize;

use super::{ACTIVE_SHOWN, ALERTS_SHOWN, TRANSITIONS_SHOWN};
use crate::domain::time::{from_millis, rfc3339_seconds};
use crate::ops::health::Role;
use crate::report::{Accumulator, Finished, ProjectLine};
use crate::store::history::{self, Recorded, Scope};
use crate::store::inspect::{self, Query};
use crate::store::outbox::{self, AlertState};
use crate::store::{StoreError, incidents, jobs, silences, transitions};

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
    fn of(org: &str, outage: &crate::store::bookkeeping::Outage, now: i64) -> OutageView {
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

fn incident_view(
    conn: &mut dyn crate::store::Db,
    listed: incidents::Listed,
    now: i64,
) -> Result<IncidentView, StoreError> {
    let incident = listed.incident;
    let name = if incident.job_id.is_empty() {
        None
    } else {
        jobs::get(conn, &incident.organisation, &incident.job_id)?.and_then(|job| job.name)
    };
    let end = incident.resolved_ms.unwrap_or(now);
    Ok(IncidentView {
        name,
        condition: incident.condition.as_str().to_owned(),
        opened_at: at(incident.opened_ms),
        resolved_at: incident.resolved_ms.map(at),
        resolved_by: incident.resolved_status,
        duration: age(u64::try_from(end.saturating_sub(incident.opened_ms) / 1000).unwrap_or(0)),
        channels: listed.channels,
        organisation: incident.organisation,
        job_id: incident.job_id,
    })
}

fn alert_view(alert: outbox::Alert) -> AlertView {
    AlertView {
        organisation: alert.organisation,
        id: alert.id,
        channel: alert.channel,
        job_id: alert.job_id,
        event: alert.event.to_string(),
        queued_at: at(alert.created_ms),
        attempts: alert.attempts,
        error: alert.last_error,
    }
}

impl JobCounts {
    fn add(&mut self, status: &crate::domain::Status, count: u64) {
        self.total += count;
        if matches!(status.as_str(), "running" | "pending") {
            self.active += count;
        }
        *self.by_status.entry(status.to_string()).or_default() += count;
    }
}

/// What the store says of organisations `orgs`, read in one go on the read-only
/// connection; `named`: the config has `[[organisation]]` tables (a section each).
pub(super) fn read(
    conn: &mut dyn crate::store::Db,
    now: i64,
    orgs: &[String],
    named: bool,
) -> Result<Status, StoreError> {
    let mut counts = JobCounts::default();
    let mut organisations = Vec::new();
    let mut outages = Vec::new();
    let by_status = jobs::count_by_status(conn)?;
    let mut active_jobs = Vec::new();
    for org in orgs {
        let mut own = JobCounts::default();
        for (_, status, count) in by_status.iter().filter(|(of, _, _)| of == org) {
            counts.add(status, *count);
            own.add(status, *count);
        }
        active_jobs.extend(
            jobs::active_oldest_first(conn, org, ACTIVE_SHOWN)?
                .into_iter()
                .map(|job| (org.clone(), job)),
        );
        let outage = crate::store::bookkeeping::Outage::read(conn, org)?;
        outages.extend(outage.as_ref().map(|o| OutageView::of(org, o, now)));
        organisations.push(OrgView {
            name: org.clone(),
            jobs: own,
            last_cycle: None,
            failing_since: outage.as_ref().map(|o| at(o.since_ms)),
            failing_reason: outage.map(|o| o.reason),
            polled_here: true,
        });
    }
    active_jobs.sort_by_key(|(_, job)| job.since_ms.unwrap_or(i64::MAX));
    active_jobs.truncate(ACTIVE_SHOWN);
    let active = active_jobs
        .into_iter()
        .map(|(organisation, job)| {
            let age_seconds = job
                .since_ms
                .map(|since| u64::try_from(now - since).unwrap_or(0) / 1000);
            ActiveView {
                organisation,
                since: job.since_ms.map(at),
                age: age_seconds.map(age).unwrap_or_else(|| "?".into()),
                age_seconds,
                id: job.id,
                name: job.name,
                project: job.project,
                status: job.status.to_string(),
            }
        })
        .collect();
    let transitions_seen = transitions::recent(conn, TRANSITIONS_SHOWN)?
        .into_iter()
        .map(|t| TransitionView {
            organisation: t.organisation,
            at: at(t.at_ms),
            job_id: t.job_id,
            name: t.name,
            project: t.project,
            previous: t.previous.map(|p| p.to_string()),
            status: t.status.to_string(),
        })
        .collect();
    const HOUR: i64 = 3_600_000;
    let first_hour = (now.div_euclid(HOUR) - 23) * HOUR;
    let per_hour = transitions::per_hour(conn, now, 24)?
        .into_iter()
        .enumerate()
        .map(|(i, count)| HourCount {
            hour: at(first_hour + i as i64 * HOUR),
            count,
        })
        .collect();
    let list = |conn: &mut dyn crate::store::Db, state: AlertState, limit: usize| {
        inspect::list(
            conn,
            &Query {
                state: Some(state),
                channel: None,
                organisation: None,
                since_ms: None,
                limit,
            },
        )
    };
    let in_force = silences::active(conn, now)?;
    const WEEK_MS: i64 = 7 * 86_400_000;
    let mut week = Accumulator::default();
    let week_start = now.saturating_sub(WEEK_MS);
    history::created_since(
        conn,
        &Scope::default(),
        week_start.saturating_mul(1000),
        &mut |job| {
            // The page shows no signatures: the messages need not be grouped.
            if let Some(finished) = Finished::of(Recorded {
                message: None,
                ..job
            }) {
                week.finished(finished);
            }
            Ok(())
        },
    )?;
    let silenced = inspect::count(conn, AlertState::Silenced)?;
    let pending_oldest = inspect::oldest(conn, AlertState::Pending, ALERTS_SHOWN)?;
    let alerts = AlertsView {
        pending: inspect::count(conn, AlertState::Pending)?,
        dead: inspect::count(conn, AlertState::Dead)?,
        silenced,
        dead_recent: list(conn, AlertState::Dead, ALERTS_SHOWN)?
            .into_iter()
            .map(alert_view)
            .collect(),
        silenced_recent: if in_force.is_empty() && silenced == 0 {
            Vec::new()
        } else {
            list(conn, AlertState::Silenced, ALERTS_SHOWN)?
                .into_iter()
                .map(alert_view)
                .collect()
        },
        pending_oldest: pending_oldest.into_iter().map(alert_view).collect(),
    };
    let (open, resolved) = incidents::overview(conn, None, ALERTS_SHOWN)?;
    let mut view = |listed: Vec<incidents::Listed>| {
        listed
            .into_iter()
            .map(|l| incident_view(conn, l, now))
            .collect::<Result<Vec<_>, StoreError>>()
    };
    let incidents = IncidentsView {
        open_recent: view(open)?,
        resolved_recent: view(resolved)?,
        open: incidents::count_open(conn)?,
    };
    Ok(Status {
        generated_at: at(now),
        version: env!("CARGO_PKG_VERSION"),
        ready: false,
        readiness: String::new(),
        role: Role::Alone,
        last_success_at: None,
        last_cycle: None,
        jobs: counts,
        active,
        transitions: transitions_seen,
        transitions_per_hour: per_hour,
        week: week.report(at(week_start), at(now)).projects,
        alerts,
        incidents,
        silences: in_force
            .iter()
            .map(|silence| SilenceView {
                id: silence.id.clone(),
                until: at(silence.ends_ms),
                matches: silence.describe(),
                reason: silence.reason.clone(),
            })
            .collect(),
        organisations: if named { organisations } else { Vec::new() },
        outages,
        audit: crate::store::audit::since(conn, i64::MIN, AUDIT_SHOWN)?
            .into_iter()
            .map(|entry| AuditView {
                at: at(entry.at_ms),
                entry,
            })
            .collect(),
    })
}

/// How many audit entries the page shows.
const AUDIT_SHOWN: usize = 50;

/// One audit entry, with its time as people read it.
#[derive(Clone, Debug, Serialize)]
pub struct AuditView {
    pub at: String,
    #[serde(flatten)]
    pub entry: crate::store::audit::Entry,
}
