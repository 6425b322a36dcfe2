//! `sdm-watch jobs list|show|data`: the API, by hand.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context as _;
use tokio::io::AsyncWriteExt as _;

use super::progress::{Progress, bytes};
use crate::output::OutputError;
use crate::sdm::last_copies;

use crate::config::Config;
use crate::domain::Status;
use crate::domain::time::{self, parse_api_time};
use crate::rows;
use crate::sdm::{Job, JobDetail, JobFilter, SdmClient};

/// What `sdm-watch jobs` was asked.
pub enum Request {
    List {
        status: Option<Status>,
        project: Option<i64>,
        created_after: Option<time::OffsetDateTime>,
        created_before: Option<time::OffsetDateTime>,
        json: bool,
    },
    Show {
        id: String,
        json: bool,
    },
    Data {
        id: String,
        format_id: u32,
        /// CSV in this style; `None`: JSON.
        csv: Option<rows::Cells>,
    },
}

/// Answers `request` against the API `config` names.
pub async fn run(
    config: &Config,
    org: Option<&str>,
    request: Request,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let org = super::one_org(config, org)?;
    let client = SdmClient::new(&org.api, &config.retry)?;
    match request {
        Request::List {
            status,
            project,
            created_after,
            created_before,
            json,
        } => {
            let filter = JobFilter {
                status,
                project,
                created_after,
                created_before,
            };
            list(&client, &filter, json, out).await
        }
        Request::Show { id, json } => show(&client, &id, json, out).await,
        Request::Data { id, format_id, csv } => data(&client, &id, format_id, csv, out).await,
    }
}

/// An ISO 8601 time, or a plain date meaning midnight UTC (for `--created-after`).
pub fn parse_time(text: &str) -> anyhow::Result<time::OffsetDateTime> {
    parse_api_time(text)
        .or_else(|| parse_api_time(&format!("{text}T00:00:00Z")))
        .ok_or_else(|| {
            anyhow::anyhow!("{text:?} is not a time like 2026-11-28T10:00:00Z or 2026-11-28")
        })
}

/// Prints every job matching `filter`, as a table or JSON.
pub async fn list(
    client: &SdmClient,
    filter: &JobFilter,
    json: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let mut progress = Progress::on_stderr();
    let mut pages = client.pages(filter);
    let mut jobs: Vec<Job> = Vec::new();
    while let Some(page) = pages.next_page().await.context("listing jobs failed")? {
        jobs.extend(page);
        let (read, count) = (pages.read(), jobs.len());
        progress.update(|| format!("listing jobs: {read} pages read, {count} jobs"));
    }
    let read = pages.read();
    let jobs = last_copies(jobs);
    progress.finish(|| format!("listed {} jobs in {read} pages", jobs.len()));
    if json {
        serde_json::to_writer_pretty(&mut *out, &jobs)?;
        writeln!(out)?;
    } else {
        write_table(out, &jobs)?;
    }
    Ok(())
}

/// Prints one job's detail.
pub async fn show(
    client: &SdmClient,
    id: &str,
    json: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let detail = client
        .job(id)
        .await
        .with_context(|| format!("reading job {id} failed"))?;
    if json {
        serde_json::to_writer_pretty(&mut *out, &detail)?;
        writeln!(out)?;
    } else {
        write_detail(out, id, &detail)?;
    }
    Ok(())
}

/// Prints a done job's output rows as JSON, or CSV with the union of columns as header,
/// in memory that does not grow with the rows: the download is spilled to a temporary
/// file (CSV needs every row's columns before the first line), then read back a row at a
/// time.
pub async fn data(
    client: &SdmClient,
    id: &str,
    format_id: u32,
    csv: Option<rows::Cells>,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let spill = Spill::new()?;
    let progress = std::sync::Mutex::new(Progress::on_stderr());
    let failed = || format!("reading the output of job {id} (format {format_id}) failed");
    client
        .job_data_with(id, format_id, |mut body| {
            let (path, progress) = (spill.path.clone(), &progress);
            async move {
                let mut file =
                    tokio::fs::File::create(&path)
                        .await
                        .map_err(|e| OutputError::Save {
                            path: path.clone(),
                            source: e,
                        })?;
                let mut received = 0u64;
                while let Some(chunk) = body.chunk().await? {
                    file.write_all(&chunk)
                        .await
                        .map_err(|e| OutputError::Save {
                            path: path.clone(),
                            source: e,
                        })?;
                    received += chunk.len() as u64;
                    lock(progress).update(|| format!("downloading: {}", bytes(received)));
                }
                file.flush().await.map_err(|e| OutputError::Save {
                    path: path.clone(),
                    source: e,
                })?;
                Ok::<_, OutputError>(())
            }
        })
        .await
        .with_context(failed)?;
    let mut progress = progress.into_inner().unwrap_or_else(|p| p.into_inner());
    let file = std::fs::File::open(&spill.path).with_context(failed)?;
    let mut written = 0u64;
    let mut tick = || {
        written += 1;
        progress.update(|| format!("rows written: {written}"));
    };
    let rows = if let Some(style) = csv {
        let (_, columns) = crate::output::summarise(&spill.path).with_context(failed)?;
        rows::stream_csv(file, out, &columns, style, &mut tick)
    } else {
        rows::stream_json(file, out, &mut tick)
    }
    .with_context(failed)?;
    out.flush()?;
    progress.finish(|| format!("{rows} rows written"));
    Ok(())
}

fn lock(progress: &std::sync::Mutex<Progress>) -> std::sync::MutexGuard<'_, Progress> {
    progress.lock().unwrap_or_else(|p| p.into_inner())
}

/// A temporary file for a download, removed when dropped (after success or failure).
struct Spill {
    path: PathBuf,
}

impl Spill {
    fn new() -> anyhow::Result<Spill> {
        let path = std::env::temp_dir().join(format!(
            "sdm-watch-data-{}-{:016x}.json",
            std::process::id(),
            fastrand::u64(..)
        ));
        Ok(Spill { path })
    }
}

impl Drop for Spill {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn write_table(out: &mut impl Write, jobs: &[Job]) -> std::io::Result<()> {
    if jobs.is_empty() {
        return writeln!(out, "no jobs match");
    }
    let header = ["ID", "STATUS", "PROJECT", "CREATED", "COMPLETED", "NAME"];
    let lines: Vec<[String; 6]> = jobs
        .iter()
        .map(|job| {
            [
                job.id.clone(),
                job.status.to_string(),
                job.project
                    .map(|p| p.to_string())
                    .unwrap_or_else(|| "-".into()),
                short_date(job.creation_date.as_deref()),
                short_date(job.completion_date.as_deref()),
                job.name.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for line in &lines {
        for (width, cell) in widths.iter_mut().zip(line) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut write_line = |cells: &[&str]| {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<width$}  ", width = widths[i]));
            }
        }
        writeln!(out, "{}", text.trim_end())
    };
    write_line(&header)?;
    for line in &lines {
        let cells: Vec<&str> = line.iter().map(String::as_str).collect();
        write_line(&cells)?;
    }
    writeln!(
        out,
        "{} job{}",
        jobs.len(),
        if jobs.len() == 1 { "" } else { "s" }
    )
}

/// `2026-11-28T10:01:00.123456Z` as `2026-11-28 10:01:00`; anything unexpected verbatim.
fn short_date(text: Option<&str>) -> String {
    match text.and_then(parse_api_time) {
        Some(at) => time::table(at),
        None => text.unwrap_or("-").to_owned(),
    }
}

fn write_detail(out: &mut impl Write, id: &str, detail: &JobDetail) -> std::io::Result<()> {
    writeln!(out, "id:      {id}")?;
    writeln!(out, "status:  {}", detail.status)?;
    if let Some(step) = &detail.step {
        let step = step
            .get("id")
            .map(|id| id.to_string())
            .unwrap_or_else(|| step.to_string());
        writeln!(out, "step:    {step}")?;
    }
    if let Some(message) = &detail.message {
        writeln!(out, "message: {message}")?;
    }
    for (key, value) in &detail.extra {
        writeln!(out, "{key}: {value}")?;
    }
    Ok(())
}
