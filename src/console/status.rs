//! What the console shows, read in one go from the store's read-only connection (the
//! shapes it is read into are `view`'s).

pub use super::view::*;
use super::{ACTIVE_SHOWN, ALERTS_SHOWN, TRANSITIONS_SHOWN};
use crate::ops::health::Role;
use crate::report::{Accumulator, Finished};
use crate::store::history::{self, Recorded, Scope};
use crate::store::inspect::{self, Query};
use crate::store::outbox::{self, AlertState};
use crate::store::{StoreError, incidents, jobs, silences, transitions};

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

/// What the store says of organisations `orgs`, read in one go on the read-only
/// connection; `named`: the config has `[[organisation]]` tables (a section each).
pub(super) fn read(
    conn: &mut dyn crate::store::Db,
    now: i64,
    orgs: &[String],
    named: bool,
) -> Result<Status, StoreError> {
    let per_org = PerOrg::read(conn, orgs, now)?;
    let (transitions, transitions_per_hour) = transitions_seen(conn, now)?;
    let in_force = silences::active(conn, now)?;
    Ok(Status {
        generated_at: at(now),
        version: env!("CARGO_PKG_VERSION"),
        ready: false,
        readiness: String::new(),
        role: Role::Alone,
        last_success_at: None,
        last_cycle: None,
        jobs: per_org.counts,
        active: per_org.active,
        transitions,
        transitions_per_hour,
        // The console's `Week` fills it: read at most once a minute.
        week: Vec::new(),
        alerts: alerts_view(conn, !in_force.is_empty())?,
        incidents: incidents_view(conn, now)?,
        silences: in_force
            .iter()
            .map(|silence| SilenceView {
                id: silence.id.clone(),
                until: at(silence.ends_ms),
                matches: silence.describe(),
                reason: silence.reason.clone(),
            })
            .collect(),
        organisations: if named {
            per_org.organisations
        } else {
            Vec::new()
        },
        outages: per_org.outages,
        audit: crate::store::audit::since(conn, i64::MIN, AUDIT_SHOWN)?
            .into_iter()
            .map(|entry| AuditView {
                at: at(entry.at_ms),
                entry,
            })
            .collect(),
    })
}

/// What is read organisation by organisation: their jobs, sections, outages and the
/// oldest active jobs of all.
struct PerOrg {
    counts: JobCounts,
    organisations: Vec<OrgView>,
    outages: Vec<OutageView>,
    active: Vec<ActiveView>,
}

impl PerOrg {
    fn read(
        conn: &mut dyn crate::store::Db,
        orgs: &[String],
        now: i64,
    ) -> Result<PerOrg, StoreError> {
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
        Ok(PerOrg {
            counts,
            organisations,
            outages,
            active: active_jobs
                .into_iter()
                .map(|(organisation, job)| active_view(organisation, job, now))
                .collect(),
        })
    }
}

fn active_view(organisation: String, job: jobs::TrackedJob, now: i64) -> ActiveView {
    let age_seconds = job
        .since_ms
        .map(|since| u64::try_from(now.saturating_sub(since)).unwrap_or(0) / 1000);
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
}

/// The latest changes, and the changes per hour over the last 24 hours.
fn transitions_seen(
    conn: &mut dyn crate::store::Db,
    now: i64,
) -> Result<(Vec<TransitionView>, Vec<HourCount>), StoreError> {
    let recent = transitions::recent(conn, TRANSITIONS_SHOWN)?
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
    let first_hour = now.div_euclid(HOUR).saturating_sub(23).saturating_mul(HOUR);
    let per_hour = transitions::per_hour(conn, now, 24)?
        .into_iter()
        .zip(0i64..)
        .map(|(count, i)| HourCount {
            hour: at(first_hour.saturating_add(i * HOUR)),
            count,
        })
        .collect();
    Ok((recent, per_hour))
}

/// The week's table: per project, the jobs created in the seven days before `now` that
/// finished.
pub(super) fn week(
    conn: &mut dyn crate::store::Db,
    now: i64,
) -> Result<Vec<crate::report::ProjectLine>, StoreError> {
    let week_start = now.saturating_sub(7 * 86_400_000);
    Ok(finished_since(conn, week_start)?
        .report(at(week_start), at(now))
        .projects)
}

/// The jobs created since `start` (Unix ms) that finished, for the week's table.
fn finished_since(conn: &mut dyn crate::store::Db, start: i64) -> Result<Accumulator, StoreError> {
    let mut week = Accumulator::default();
    history::created_since(
        conn,
        &Scope::default(),
        start.saturating_mul(1000),
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
    Ok(week)
}

/// The alerts' counts, the recent dead and silenced ones (silenced ones only while a
/// silence is in force or some were silenced), the oldest pending.
fn alerts_view(
    conn: &mut dyn crate::store::Db,
    silences_in_force: bool,
) -> Result<AlertsView, StoreError> {
    let list = |conn: &mut dyn crate::store::Db, state: AlertState| {
        let query = Query {
            state: Some(state),
            limit: ALERTS_SHOWN,
            ..Query::default()
        };
        let alerts = inspect::list(conn, &query)?;
        Ok::<_, StoreError>(alerts.into_iter().map(alert_view).collect())
    };
    let silenced = inspect::count(conn, AlertState::Silenced)?;
    Ok(AlertsView {
        pending: inspect::count(conn, AlertState::Pending)?,
        dead: inspect::count(conn, AlertState::Dead)?,
        silenced,
        dead_recent: list(conn, AlertState::Dead)?,
        silenced_recent: if silences_in_force || silenced > 0 {
            list(conn, AlertState::Silenced)?
        } else {
            Vec::new()
        },
        pending_oldest: inspect::oldest(conn, AlertState::Pending, ALERTS_SHOWN)?
            .into_iter()
            .map(alert_view)
            .collect(),
    })
}

/// The open and the recently resolved incidents.
fn incidents_view(conn: &mut dyn crate::store::Db, now: i64) -> Result<IncidentsView, StoreError> {
    let (open, resolved) = incidents::overview(conn, None, ALERTS_SHOWN)?;
    let mut view = |listed: Vec<incidents::Listed>| {
        listed
            .into_iter()
            .map(|l| incident_view(conn, l, now))
            .collect::<Result<Vec<_>, StoreError>>()
    };
    Ok(IncidentsView {
        open_recent: view(open)?,
        resolved_recent: view(resolved)?,
        open: incidents::count_open(conn)?,
    })
}

/// How many audit entries the page shows.
const AUDIT_SHOWN: usize = 50;
