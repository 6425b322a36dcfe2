//! `sdm-watch state [--org NAME]`: tracked jobs by status, alerts pending delivery, dead
//! alerts, each organisation's outage in progress.

use std::io::Write;

mod text;

use serde::Serialize;

use crate::config::Config;
use crate::domain::time::{now_ms, short_ms as timestamp};
use crate::store::bookkeeping::Outage;
use crate::store::held::Held;
use crate::store::jobs::FailedLookup;
use crate::store::outbox::{Alert, AlertState};
use crate::store::{Db, StoreError, held, inspect, jobs, silences};

/// How many pending and dead alerts are listed one by one.
const LISTED: usize = 50;

fn listed(state: AlertState, org: Option<&str>) -> inspect::Query {
    inspect::Query {
        state: Some(state),
        organisation: org.map(str::to_owned),
        limit: LISTED,
        ..inspect::Query::default()
    }
}

#[derive(Serialize)]
struct Report {
    state_path: String,
    jobs: Vec<StatusCount>,
    alerts_pending: u64,
    alerts_dead: u64,
    alerts_delivered: u64,
    alerts_silenced: u64,
    /// Silences in force now.
    silences: usize,
    pending: Vec<AlertLine>,
    dead: Vec<AlertLine>,
    /// Changes whose alerts wait for a detail, the project or output rows.
    waiting: Vec<WaitingLine>,
    /// Active jobs no listing showed that could not be looked up.
    lookups_failing: Vec<LookupLine>,
    /// No cycle has succeeded since: the watcher's outage, if one is in progress (the first
    /// organisation's with one, when there are several).
    watcher_outage: Option<OutageLine>,
    /// With `[[organisation]]` tables: each organisation's jobs and outage.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    organisations: Vec<OrgLine>,
}

#[derive(Serialize)]
struct OrgLine {
    name: String,
    jobs: Vec<StatusCount>,
    watcher_outage: Option<OutageLine>,
}

#[derive(Clone, Serialize)]
struct OutageLine {
    since: String,
    reason: String,
    last_error: String,
    /// `watcher.failing` was sent.
    alerted: bool,
}

#[derive(Serialize)]
struct WaitingLine {
    job_id: String,
    event: String,
    held_since: String,
    attempts: u32,
    next_attempt_at: String,
    last_error: Option<String>,
}

#[derive(Serialize)]
struct LookupLine {
    job_id: String,
    status: String,
    attempts: u32,
    next_attempt_at: String,
    last_error: String,
}

#[derive(Serialize)]
struct StatusCount {
    status: String,
    count: u64,
}

#[derive(Serialize)]
struct AlertLine {
    id: String,
    channel: String,
    job_id: String,
    event: String,
    attempts: u32,
    queued_at: String,
    next_attempt_at: String,
    last_error: Option<String>,
}

impl From<Alert> for AlertLine {
    fn from(alert: Alert) -> Self {
        Self {
            id: alert.id,
            channel: alert.channel,
            job_id: alert.job_id,
            event: alert.event.to_string(),
            attempts: alert.attempts,
            queued_at: timestamp(alert.created_ms),
            next_attempt_at: timestamp(alert.next_attempt_ms),
            last_error: alert.last_error,
        }
    }
}

pub async fn run(
    config: &Config,
    org: Option<&str>,
    json: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let chosen: Vec<String> = super::chosen_orgs(config, org)?
        .into_iter()
        .map(|org| org.name.clone())
        .collect();
    let only = org.map(str::to_owned);
    let named = config.names_organisations();
    let store = super::existing_store(config).await?;
    let path = store.location().to_string();
    let report = store
        .run(move |conn| Report::read(conn, path, &chosen, only.as_deref(), named))
        .await?;
    if json {
        serde_json::to_writer_pretty(&mut *out, &report)?;
        writeln!(out)?;
    } else {
        text::write(out, &report)?;
    }
    Ok(())
}

impl Report {
    /// What the store holds of the organisations `chosen` (`only`: one asked for by name;
    /// `named`: the config has `[[organisation]]` tables).
    fn read(
        conn: &mut dyn Db,
        state_path: String,
        chosen: &[String],
        only: Option<&str>,
        named: bool,
    ) -> Result<Report, StoreError> {
        let counts = jobs::count_by_status(conn)?;
        let mut organisations = Vec::new();
        let mut waiting = Vec::new();
        for name in chosen {
            waiting.extend(held::all(conn, name)?.into_iter().map(WaitingLine::from));
            organisations.push(OrgLine {
                name: name.clone(),
                jobs: totals(&counts, std::slice::from_ref(name)),
                watcher_outage: Outage::read(conn, name)?.map(OutageLine::from),
            });
        }
        let count = |conn: &mut dyn Db, state| match only {
            None => inspect::count(conn, state),
            Some(org) => inspect::count_of(conn, state, org),
        };
        let alerts = |conn: &mut dyn Db, state| -> Result<Vec<AlertLine>, StoreError> {
            let listed = inspect::list(conn, &listed(state, only))?;
            Ok(listed.into_iter().map(AlertLine::from).collect())
        };
        Ok(Report {
            state_path,
            jobs: totals(&counts, chosen),
            alerts_pending: count(conn, AlertState::Pending)?,
            alerts_dead: count(conn, AlertState::Dead)?,
            alerts_delivered: count(conn, AlertState::Delivered)?,
            alerts_silenced: count(conn, AlertState::Silenced)?,
            silences: silences::active(conn, now_ms())?.len(),
            pending: alerts(conn, AlertState::Pending)?,
            dead: alerts(conn, AlertState::Dead)?,
            waiting,
            lookups_failing: jobs::failed_lookups(conn, LISTED)?
                .into_iter()
                .filter(|failed| chosen.contains(&failed.organisation))
                .map(LookupLine::from)
                .collect(),
            watcher_outage: organisations
                .iter()
                .find_map(|org| org.watcher_outage.clone()),
            organisations: if named { organisations } else { Vec::new() },
        })
    }
}

/// The jobs of `orgs` by status, from `counts` (organisation, status, count).
fn totals(counts: &[(String, crate::domain::Status, u64)], orgs: &[String]) -> Vec<StatusCount> {
    let mut totals: Vec<StatusCount> = Vec::new();
    for (of, status, count) in counts {
        if !orgs.contains(of) {
            continue;
        }
        match totals.iter_mut().find(|t| t.status == status.as_str()) {
            Some(total) => total.count += count,
            None => totals.push(StatusCount {
                status: status.to_string(),
                count: *count,
            }),
        }
    }
    totals
}

impl From<Held> for WaitingLine {
    fn from(held: Held) -> Self {
        WaitingLine {
            event: serde_json::from_str::<serde_json::Value>(&held.change)
                .ok()
                .and_then(|change| change["job"]["status"].as_str().map(str::to_owned))
                .unwrap_or_default(),
            job_id: held.job_id,
            held_since: timestamp(held.held_ms),
            attempts: held.attempts,
            next_attempt_at: timestamp(held.next_attempt_ms),
            last_error: held.last_error,
        }
    }
}

impl From<FailedLookup> for LookupLine {
    fn from(failed: FailedLookup) -> Self {
        LookupLine {
            job_id: failed.id,
            status: failed.status.to_string(),
            attempts: failed.attempts,
            next_attempt_at: timestamp(failed.next_ms),
            last_error: failed.error,
        }
    }
}

impl From<Outage> for OutageLine {
    fn from(outage: Outage) -> Self {
        OutageLine {
            since: timestamp(outage.since_ms),
            reason: outage.reason,
            last_error: outage.last_error,
            alerted: outage.alerted,
        }
    }
}
