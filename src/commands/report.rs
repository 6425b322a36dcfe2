//! `sdm-watch report`: how the period went, from the jobs the watcher recorded (jobs
//! created in the period; those waiting for action now, whenever created), as a table, as
//! JSON (the whole report) or as CSV (the per-project lines). The store streams the jobs,
//! so a year of them is read in flat memory.

use std::io::Write;
use std::time::Duration;

use crate::config::Config;
use crate::domain::time::OffsetDateTime;
use crate::report::Report;
use crate::store::history::Scope;

/// How to print the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
    Csv(crate::rows::Cells),
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
    let since = crate::report::period_start(now, request.since);
    let scope = Scope {
        organisation: request.org,
        project: request.project,
    };
    let report = store
        .run(move |conn| crate::report::read(conn, &scope, since, now))
        .await?;
    match request.format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut *out, &report)?;
            writeln!(out)?;
        }
        Format::Csv(style) => csv(&report, out, style)?,
        Format::Table => out.write_all(
            crate::report::text::table(&report, config.organisations.len() > 1).as_bytes(),
        )?,
    }
    Ok(())
}

/// The per-project lines; durations in seconds, an unknown project or duration empty.
fn csv(report: &Report, out: &mut impl Write, style: crate::rows::Cells) -> anyhow::Result<()> {
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
    crate::rows::write_record(out, header.into_iter(), style)?;
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
        crate::rows::write_record(out, cells.iter().map(String::as_str), style)?;
    }
    Ok(())
}
