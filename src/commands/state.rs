//! `sdm-watch state [--org NAME]`: tracked jobs by status, alerts pending delivery, dead
//! alerts, each organisation's outage in progress.

use std::io::Write;

use serde::Serialize;

use crate::config::Config;
use crate::domain::time::{now_ms, short_ms as timestamp};
use crate::store::bookkeeping::Outage;
use crate::store::outbox::{Alert, AlertState};
use crate::store::{held, inspect, jobs, silences};

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
        .run(move |conn| {
            let only = only.as_deref();
            let counts = jobs::count_by_status(conn)?;
            let count_of = |orgs: &[String]| {
                let mut totals: Vec<StatusCount> = Vec::new();
                for (of, status, count) in &counts {
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
            };
            let mut organisations = Vec::new();
            let mut waiting = Vec::new();
            for name in &chosen {
                waiting.extend(held::all(conn, name)?);
                organisations.push(OrgLine {
                    name: name.clone(),
                    jobs: count_of(std::slice::from_ref(name)),
                    watcher_outage: Outage::read(conn, name)?.map(OutageLine::from),
                });
            }
            let watcher_outage = organisations
                .iter()
                .find_map(|org| org.watcher_outage.clone());
            let count = |conn: &mut dyn crate::store::Db, state| match only {
                None => inspect::count(conn, state),
                Some(org) => inspect::count_of(conn, state, org),
            };
            Ok(Report {
                state_path: path,
                jobs: count_of(&chosen),
                alerts_pending: count(conn, AlertState::Pending)?,
                alerts_dead: count(conn, AlertState::Dead)?,
                alerts_delivered: count(conn, AlertState::Delivered)?,
                alerts_silenced: count(conn, AlertState::Silenced)?,
                silences: silences::active(conn, now_ms())?.len(),
                pending: inspect::list(conn, &listed(AlertState::Pending, only))?
                    .into_iter()
                    .map(AlertLine::from)
                    .collect(),
                dead: inspect::list(conn, &listed(AlertState::Dead, only))?
                    .into_iter()
                    .map(AlertLine::from)
                    .collect(),
                waiting: waiting
                    .into_iter()
                    .map(|held| WaitingLine {
                        event: serde_json::from_str::<serde_json::Value>(&held.change)
                            .ok()
                            .and_then(|change| change["job"]["status"].as_str().map(str::to_owned))
                            .unwrap_or_default(),
                        job_id: held.job_id,
                        held_since: timestamp(held.held_ms),
                        attempts: held.attempts,
                        next_attempt_at: timestamp(held.next_attempt_ms),
                        last_error: held.last_error,
                    })
                    .collect(),
                lookups_failing: jobs::failed_lookups(conn, LISTED)?
                    .into_iter()
                    .filter(|failed| chosen.contains(&failed.organisation))
                    .map(|failed| LookupLine {
                        job_id: failed.id,
                        status: failed.status.to_string(),
                        attempts: failed.attempts,
                        next_attempt_at: timestamp(failed.next_ms),
                        last_error: failed.error,
                    })
                    .collect(),
                watcher_outage,
                organisations: if named { organisations } else { Vec::new() },
            })
        })
        .await?;
    if json {
        serde_json::to_writer_pretty(&mut *out, &report)?;
        writeln!(out)?;
        return Ok(());
    }
    writeln!(out, "state: {}", report.state_path)?;
    if report.organisations.is_empty() {
        if let Some(outage) = &report.watcher_outage {
            write_outage(out, "", outage)?;
        }
        write_counts(out, "tracked jobs", &report.jobs)?;
    } else {
        for org in &report.organisations {
            if let Some(outage) = &org.watcher_outage {
                write_outage(out, &format!(" (organisation {})", org.name), outage)?;
            }
        }
        for org in &report.organisations {
            write_counts(
                out,
                &format!("organisation {}: tracked jobs", org.name),
                &org.jobs,
            )?;
        }
    }
    writeln!(out, "alerts delivered: {}", report.alerts_delivered)?;
    writeln!(out, "alerts pending delivery: {}", report.alerts_pending)?;
    for alert in &report.pending {
        write_alert(out, alert, true)?;
    }
    writeln!(out, "dead alerts: {}", report.alerts_dead)?;
    for alert in &report.dead {
        write_alert(out, alert, false)?;
    }
    writeln!(
        out,
        "alerts silenced: {} ({} silences in force; see sdm-watch silence list)",
        report.alerts_silenced, report.silences
    )?;
    writeln!(out, "alerts waiting for details: {}", report.waiting.len())?;
    for waiting in &report.waiting {
        writeln!(
            out,
            "  job {}  {}  since {}  attempts {}  next try {}",
            waiting.job_id,
            waiting.event,
            waiting.held_since,
            waiting.attempts,
            waiting.next_attempt_at
        )?;
        if let Some(error) = &waiting.last_error {
            writeln!(
                out,
                "      last error: {}",
                crate::domain::text::escaped(error)
            )?;
        }
    }
    if !report.lookups_failing.is_empty() {
        writeln!(
            out,
            "jobs that could not be looked up: {}",
            report.lookups_failing.len()
        )?;
        for failed in &report.lookups_failing {
            writeln!(
                out,
                "  job {}  last seen {}  attempts {}  next try {}\n      last error: {}",
                failed.job_id,
                failed.status,
                failed.attempts,
                failed.next_attempt_at,
                failed.last_error
            )?;
        }
    }
    Ok(())
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

fn write_outage(out: &mut impl Write, of: &str, outage: &OutageLine) -> std::io::Result<()> {
    writeln!(
        out,
        "WATCHER FAILING{of}: no poll cycle has succeeded since {} ({}; watcher.failing {})\n      last error: {}",
        outage.since,
        outage.reason,
        if outage.alerted {
            "sent"
        } else {
            "not sent yet"
        },
        outage.last_error
    )
}

fn write_counts(out: &mut impl Write, title: &str, counts: &[StatusCount]) -> std::io::Result<()> {
    let tracked: u64 = counts.iter().map(|c| c.count).sum();
    writeln!(out, "{title}: {tracked}")?;
    for count in counts {
        writeln!(out, "  {:<10} {}", count.status, count.count)?;
    }
    Ok(())
}

fn write_alert(out: &mut impl Write, alert: &AlertLine, pending: bool) -> std::io::Result<()> {
    write!(
        out,
        "  {}  {}  job {}  {}  queued {}  attempts {}",
        alert.id, alert.channel, alert.job_id, alert.event, alert.queued_at, alert.attempts
    )?;
    if pending {
        write!(out, "  next try {}", alert.next_attempt_at)?;
    }
    match &alert.last_error {
        Some(error) => writeln!(
            out,
            "\n      last error: {}",
            crate::domain::text::escaped(error)
        ),
        None => writeln!(out),
    }
}
