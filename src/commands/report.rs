//! `sdm-watch report`: how the period went, from the jobs the watcher recorded (jobs
//! created in the period; those waiting for action now, whenever created), as a table, as
//! JSON (the whole report) or as CSV (the per-project lines). The store streams the jobs,
//! so a year of them is read in flat memory.

use std::io::Write;
use std::time::Duration;

use crate::config::Config;
use crate::domain::time::{OffsetDateTime, from_millis, micros, rfc3339_seconds};
use crate::report::{Accumulator, Finished, Report, Waiting};
use crate::store::history::{self, Scope};

/// How to print the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
    Csv,
}

/// What `report` was asked.
pub struct Request {
    pub since: Duration,
    pub project: Option<i64>,
    pub org: Option<String>,
    pub format: Format,
}

pub async fn run(config: &Config, request: Request, out: &mut impl Write) -> anyhow::Result<()> {
    let store = super::existing_store(config).await?;
    let now = OffsetDateTime::now_utc();
    let since = time::Duration::try_from(request.since)
        .ok()
        .and_then(|span| now.checked_sub(span))
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
        .max(OffsetDateTime::UNIX_EPOCH);
    let scope = Scope {
        organisation: request.org,
        project: request.project,
    };
    let report = store
        .run(move |conn| {
            let mut acc = Accumulator::default();
            history::created_since(conn, &scope, micros(since), &mut |job| {
                if let Some(finished) = Finished::of(job) {
                    acc.finished(finished);
                }
                Ok(())
            })?;
            for job in history::pending(conn, &scope)? {
                acc.waiting(Waiting {
                    since: job.since_ms.and_then(from_millis).map(rfc3339_seconds),
                    organisation: job.organisation,
                    id: job.id,
                    name: job.name,
                    project: job.project,
                });
            }
            Ok(acc.report(rfc3339_seconds(since), rfc3339_seconds(now)))
        })
        .await?;
    match request.format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut *out, &report)?;
            writeln!(out)?;
        }
        Format::Csv => csv(&report, out)?,
        Format::Table => table(&report, config.organisations.len() > 1, out)?,
    }
    Ok(())
}

/// `3h 12m`, `4m 2s`, `850ms`.
fn human(ms: Option<i64>) -> String {
    let Some(ms) = ms else {
        return "-".to_owned();
    };
    let ms = u64::try_from(ms).unwrap_or(0);
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let s = ms / 1000;
    match (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60) {
        (0, 0, 0, s) => format!("{s}s"),
        (0, 0, m, s) => format!("{m}m {s}s"),
        (0, h, m, _) => format!("{h}h {m}m"),
        (d, h, _, _) => format!("{d}d {h}h"),
    }
}

fn project_name(project: Option<i64>) -> String {
    project.map_or_else(|| "?".to_owned(), |p| p.to_string())
}

fn table(report: &Report, organisations: bool, out: &mut impl Write) -> anyhow::Result<()> {
    writeln!(out, "Jobs created {} to {}\n", report.since, report.until)?;
    if report.projects.is_empty() {
        writeln!(out, "No job finished or waiting in this period.")?;
        return Ok(());
    }
    let org = |name: &str| {
        if organisations {
            format!("{name:<14}")
        } else {
            String::new()
        }
    };
    writeln!(
        out,
        "{}{:<9} {:>6} {:>6} {:>7} {:>9} {:>9} {:>9} {:>7} {:>9} {:>8}",
        org("ORGANISATION"),
        "PROJECT",
        "DONE",
        "ERROR",
        "ERRORS",
        "MEDIAN",
        "P95",
        "MAX",
        "PENDED",
        "PENDING",
        "WAITING"
    )?;
    for line in &report.projects {
        writeln!(
            out,
            "{}{:<9} {:>6} {:>6} {:>6.1}% {:>9} {:>9} {:>9} {:>7} {:>9} {:>8}",
            org(&line.organisation),
            project_name(line.project),
            line.done,
            line.error,
            line.error_rate * 100.0,
            human(line.duration_median_ms),
            human(line.duration_p95_ms),
            human(line.duration_max_ms),
            line.pending_jobs,
            human(line.pending_median_ms),
            line.waiting
        )?;
    }
    writeln!(
        out,
        "(PENDED: finished jobs seen waiting for action on their way; PENDING: their median time waiting)"
    )?;
    if !report.signatures.is_empty() {
        writeln!(out, "\nMost frequent errors")?;
        for line in &report.signatures {
            let projects: Vec<String> = line.projects.iter().map(|p| project_name(*p)).collect();
            writeln!(
                out,
                "{:>6}  {}  (projects {})\n        e.g. {}",
                line.count,
                line.signature,
                projects.join(", "),
                line.example.lines().next().unwrap_or_default()
            )?;
        }
    }
    if !report.slowest.is_empty() {
        writeln!(out, "\nSlowest jobs")?;
        for job in &report.slowest {
            writeln!(
                out,
                "{:>9}  {} (project {}, job {}){}",
                human(Some(job.duration_ms)),
                job.name.as_deref().unwrap_or(&job.id),
                project_name(job.project),
                job.id,
                if job.failed { ", failed" } else { "" }
            )?;
        }
    }
    if !report.waiting.is_empty() {
        writeln!(out, "\nWaiting for action now")?;
        for job in &report.waiting {
            writeln!(
                out,
                "  since {}  {} (project {}, job {})",
                job.since.as_deref().unwrap_or("?"),
                job.name.as_deref().unwrap_or(&job.id),
                project_name(job.project),
                job.id
            )?;
        }
    }
    Ok(())
}

/// The per-project lines; durations in seconds, an unknown project or duration empty.
fn csv(report: &Report, out: &mut impl Write) -> anyhow::Result<()> {
    let header = [
        "organisation",
        "project",
        "done",
        "error",
        "error_rate",
        "duration_median_s",
        "duration_p95_s",
        "duration_max_s",
        "pending_jobs",
        "pending_median_s",
        "pending_max_s",
        "pending_total_s",
        "waiting",
    ];
    crate::rows::write_record(out, header.into_iter())?;
    let seconds = |ms: Option<i64>| {
        ms.map(|ms| format!("{:.3}", ms as f64 / 1000.0))
            .unwrap_or_default()
    };
    for line in &report.projects {
        let cells = [
            line.organisation.clone(),
            line.project.map(|p| p.to_string()).unwrap_or_default(),
            line.done.to_string(),
            line.error.to_string(),
            format!("{:.4}", line.error_rate),
            seconds(line.duration_median_ms),
            seconds(line.duration_p95_ms),
            seconds(line.duration_max_ms),
            line.pending_jobs.to_string(),
            seconds(line.pending_median_ms),
            seconds(line.pending_max_ms),
            seconds(Some(line.pending_total_ms)),
            line.waiting.to_string(),
        ];
        crate::rows::write_record(out, cells.iter().map(String::as_str))?;
    }
    Ok(())
}
