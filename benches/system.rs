//! Whole-system benchmarks: the real `sdm-watch` binary against the project's simulator, a
//! webhook receiver and an SMTP server, all on loopback, measured from outside (wall time,
//! requests the simulator saw, CPU time and peak RSS from the kernel's own accounting).
//!
//! `cargo bench --bench system` runs every scenario at full size and prints a table;
//! `cargo bench --bench system -- quiet burst` runs the named ones. With
//! `SDM_WATCH_BENCH_SCALE=0.01` every size and duration shrinks: that only checks the
//! benchmark still works (CI runs it so), its figures mean nothing. `SDM_WATCH_BIN` runs
//! the scenarios against another build (say, the one before a change). The harness (the
//! daemon under test, the SMTP server, process accounting) is the tests' kit,
//! `tests/it/helpers`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sdm_watch::domain::Status;
use sdm_watch::sim::{NewJob, ReceivedWebhook, Simulator, WebhookReceiver};
use testkit::smtp::SmtpSink;
use testkit::{Daemon, process};
use time::OffsetDateTime;

#[path = "system/auth_flood.rs"]
mod auth_flood;
#[path = "system/burst.rs"]
mod burst;
#[path = "system/cadence.rs"]
mod cadence;
#[path = "system/first.rs"]
mod first;
#[path = "system/memory.rs"]
mod memory;
#[path = "system/organisations.rs"]
mod organisations;
#[path = "system/output.rs"]
mod output;
#[path = "system/quiet.rs"]
mod quiet;
#[path = "system/replicas.rs"]
mod replicas;
#[path = "system/report.rs"]
mod report;
#[path = "system/sharing.rs"]
mod sharing;

// Each scenario in a file of its own; their items are used by name here and by each other.
use burst::*;
use cadence::*;
use first::*;
use memory::*;
use organisations::*;
use output::*;
use quiet::*;
use replicas::*;

const DAY_S: f64 = 86_400.0;

struct Figure {
    name: String,
    value: String,
    target: String,
    baseline: String,
    /// `None` for a figure printed for context, with no target of its own.
    pass: Option<bool>,
}

impl Figure {
    fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            value: value.into(),
            target: "-".into(),
            baseline: "-".into(),
            pass: None,
        }
    }

    fn target(mut self, target: impl Into<String>, pass: bool) -> Self {
        self.target = target.into();
        self.pass = Some(pass);
        self
    }

    fn baseline(mut self, baseline: impl Into<String>) -> Self {
        self.baseline = baseline.into();
        self
    }
}

fn scale() -> f64 {
    std::env::var("SDM_WATCH_BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0)
}

/// `n` at the current scale, never below `min`.
fn scaled(n: usize, min: usize) -> usize {
    ((n as f64 * scale()) as usize).max(min)
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// A fresh directory on the target's disk (not a tmpfs), so that commits pay for real
/// fsyncs.
fn workdir() -> tempfile::TempDir {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("a work directory")
}

/// A config file for `sim`: `api` lines go in `[api]`, `rest` after it. The health and
/// metrics endpoints are on, on a port of the kernel's choosing.
fn write_config(dir: &Path, name: &str, sim: &Simulator, api: &str, rest: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!(
            "[api]\nbase_url = \"{}\"\ntoken = \"{}\"\nmax_requests_per_second = 10\n{api}\n\
             [state]\npath = \"{}\"\n[http]\nlisten = \"127.0.0.1:0\"\n{rest}\n",
            sim.base_url(),
            sim.token(),
            dir.join("state.db").display(),
        ),
    )
    .expect("config written");
    path
}

fn webhook(receiver: &WebhookReceiver) -> String {
    format!(
        "[[webhook]]\nname = \"ops\"\nurl = \"{}\"\n",
        receiver.url("/ops")
    )
}

/// What `sdm-watch once` did: exit status, wall time, peak RSS (KiB) and its stdout.
struct Once {
    code: i32,
    wall: Duration,
    peak_kib: u64,
    stdout: String,
}

impl Once {
    /// The request count from "poll cycle: ... (N requests, M ms)".
    fn requests(&self) -> u64 {
        self.stdout
            .split(" requests")
            .next()
            .and_then(|head| head.rsplit('(').next())
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("no request count in {:?}", self.stdout))
    }

    /// The cycle's own duration from "poll cycle: ... (N requests, M ms)".
    fn cycle_ms(&self) -> u64 {
        self.stdout
            .split(" ms)")
            .next()
            .and_then(|head| head.rsplit(", ").next())
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("no cycle time in {:?}", self.stdout))
    }
}

// The child is reaped with wait4 (see `testkit::process::reap`), which clippy cannot see.
#[allow(clippy::zombie_processes)]
async fn once(config: &Path) -> Once {
    let config = config.to_owned();
    tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let mut child = Command::new(testkit::cli::binary())
            .arg("--config")
            .arg(&config)
            .arg("once")
            .env("SDM_WATCH_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .expect("sdm-watch starts");
        let peak = process::follow_peak(child.id());
        let mut stdout = String::new();
        std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut stdout).unwrap();
        let code = process::reap(child.id(), Duration::from_secs(3600)).expect("once exits");
        let peak_kib = peak.join().unwrap();
        let once = Once {
            code,
            wall: started.elapsed(),
            peak_kib,
            stdout,
        };
        assert_eq!(once.code, 0, "sdm-watch once failed: {}", once.stdout);
        once
    })
    .await
    .unwrap()
}

/// The value of `key=` in a text log line.
fn field(line: &str, key: &str) -> Option<u64> {
    let at = line.find(&format!(" {key}="))? + key.len() + 2;
    line[at..]
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// Adds `total` jobs created evenly over `span_days` up to `quiet_for` ago, all done but
/// `active` running ones spread over the last day and, if `old_pending`, one job pending
/// since 6 days ago. Returns the ids of the active jobs (the old pending one first) and
/// when the oldest of them was created.
fn history(
    sim: &Simulator,
    total: usize,
    span_days: f64,
    active: usize,
    old_pending: bool,
    quiet_for: time::Duration,
) -> (Vec<String>, OffsetDateTime) {
    let now = OffsetDateTime::now_utc() - quiet_for;
    let span = time::Duration::seconds_f64(span_days * DAY_S);
    let step = span / total as f64;
    let mut ids = Vec::new();
    let mut oldest = now;
    if old_pending {
        oldest = now - time::Duration::days(6);
        ids.push(sim.add_job(NewJob::new(Status::Pending).created(oldest)));
    }
    for i in 0..total.saturating_sub(ids.len() + active) {
        let created = now - span + step * i as f64;
        sim.add_job(NewJob::new(Status::Done).created(created));
    }
    for i in 0..active {
        let created = now - time::Duration::seconds_f64(DAY_S * i as f64 / active as f64);
        oldest = oldest.min(created);
        ids.push(sim.add_job(NewJob::new(Status::Running).created(created)));
    }
    (ids, oldest)
}

/// A few minutes: how long before a benchmark the newest job of its history was created.
const RECENT: time::Duration = time::Duration::minutes(5);

fn api_time(at: OffsetDateTime) -> String {
    sdm_watch::domain::time::format_api_time(at)
}

/// One authenticated GET of the simulator's API, as JSON.
async fn sim_get(http: &reqwest::Client, sim: &Simulator, url: String) -> serde_json::Value {
    http.get(url)
        .header("Authorization", format!("Token {}", sim.token()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The simulator's `count` for a listing with `query`, read with one request.
async fn sim_count(sim: &Simulator, query: &str) -> usize {
    let url = format!("{}jobs/?{query}&page_size=1", sim.base_url());
    let body = sim_get(&testkit::http(), sim, url).await;
    body["count"].as_u64().unwrap() as usize
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes `--bench`; any other argument names scenarios to run.
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let wanted = |name: &str| only.is_empty() || only.iter().any(|o| name.contains(o.as_str()));
    let mut figures = Vec::new();
    let started = Instant::now();
    if wanted("quiet") {
        quiet(&mut figures).await;
    }
    if wanted("first") {
        first(&mut figures).await;
    }
    if wanted("memory") {
        memory(&mut figures).await;
    }
    if wanted("burst") {
        burst(&mut figures).await;
    }
    if wanted("digests") {
        burst_digests(&mut figures).await;
    }
    if wanted("latency") {
        latency(&mut figures).await;
    }
    if wanted("cadence") {
        cadence(&mut figures).await;
    }
    if wanted("idle") {
        idle(&mut figures).await;
    }
    if wanted("output") {
        output_rows(&mut figures).await;
    }
    if wanted("cli") {
        cli_data(&mut figures).await;
    }
    if wanted("replicas") {
        replicas(&mut figures).await;
    }
    if wanted("huge") {
        huge_message(&mut figures).await;
    }
    if wanted("organisations") {
        organisations(&mut figures).await;
    }
    if wanted("sharing") {
        sharing::sharing(&mut figures).await;
    }
    if wanted("report") {
        report::report(&mut figures).await;
    }
    if wanted("auth_flood") {
        auth_flood::auth_flood(&mut figures).await;
    }
    println!(
        "\nsdm-watch system benchmark (scale {}, {} cores, {:.0} s)",
        scale(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        started.elapsed().as_secs_f64()
    );
    println!("| figure | measured | target | baseline | result |");
    println!("|---|---|---|---|---|");
    for figure in &figures {
        let result = match figure.pass {
            Some(true) => "pass",
            Some(false) => "FAIL",
            None => "-",
        };
        println!(
            "| {} | {} | {} | {} | {result} |",
            figure.name, figure.value, figure.target, figure.baseline
        );
    }
    if figures.iter().any(|f| f.pass == Some(false)) && scale() >= 1.0 {
        std::process::exit(1);
    }
}
