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
#[path = "system/report.rs"]
mod report;
#[path = "system/sharing.rs"]
mod sharing;

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

/// Target 1: requests and time per quiet cycle, whatever the history: 100,000 jobs, and
/// again with 1,000 more in a status sdm-watch does not know and one whose detail always
/// fails. Quiet means nothing changed, and no job was created within the re-check window
/// (16 minutes) whose jobs every cycle lists again.
async fn quiet(figures: &mut Vec<Figure>) {
    let total = scaled(100_000, 2_000);
    let strange = scaled(1_000, 20);
    let active = 10;
    let page_size = 100;
    let mut runs: Vec<(Vec<u64>, Vec<u64>)> = Vec::new();
    let mut baseline = 0;
    for with_strange in [false, true] {
        let sim = Simulator::start().await.unwrap();
        let (_, oldest) = history(
            &sim,
            total,
            7.0,
            active - 1,
            true,
            time::Duration::minutes(20),
        );
        if with_strange {
            let now = OffsetDateTime::now_utc() - time::Duration::minutes(20);
            for i in 0..strange {
                let created =
                    now - time::Duration::seconds_f64(7.0 * DAY_S * i as f64 / strange as f64);
                sim.add_job(NewJob::new(Status::Other("cancelled".into())).created(created));
            }
            let broken = sim.add_job(
                NewJob::new(Status::Other("archived".into()))
                    .created(now - time::Duration::days(2)),
            );
            sim.fail_always(
                &format!("/jobs/{broken}/"),
                sdm_watch::sim::Fault::Status(500),
            );
        }
        let dir = workdir();
        // The history is recorded with big pages, to save time; the quiet cycles are
        // measured with the default page size, which the baseline uses too.
        let fill = write_config(dir.path(), "fill.toml", &sim, "page_size = 1000", "");
        once(&fill).await;
        let config = write_config(
            dir.path(),
            "quiet.toml",
            &sim,
            &format!("page_size = {page_size}"),
            "",
        );
        let mut requests = Vec::new();
        let mut millis = Vec::new();
        for _ in 0..5 {
            let run = once(&config).await;
            requests.push(run.requests());
            millis.push(run.cycle_ms());
        }
        // The baseline: one plain listing reaching back to the oldest active job.
        let since = oldest - time::Duration::minutes(10);
        baseline = sim_count(&sim, &format!("created_after={}", api_time(since))).await;
        runs.push((requests, millis));
    }
    let allowed = 2 + active.div_ceil(page_size) as u64;
    let median = |values: &[u64]| {
        let mut sorted = values.to_vec();
        sorted.sort_unstable();
        sorted[sorted.len() / 2]
    };
    let (plain, with_strange) = (&runs[0], &runs[1]);
    let worst = *plain.0.iter().chain(&with_strange.0).max().unwrap();
    figures.push(
        Figure::new(
            "requests per quiet cycle",
            format!(
                "{worst} ({total} jobs over 7 days, {active} active, oldest pending 6 days: {:?}; \
                 with {strange} more in unknown statuses and one whose detail always fails: {:?})",
                plain.0, with_strange.0
            ),
        )
        .target(
            format!("<= {allowed} (2 + ceil(10/{page_size}) + 0)"),
            worst <= allowed,
        )
        .baseline(format!(
            "{} pages (plain created_after window)",
            baseline.div_ceil(page_size)
        )),
    );
    let (plain_ms, strange_ms) = (median(&plain.1), median(&with_strange.1));
    figures.push(
        Figure::new(
            "quiet cycle time, with unknown statuses and a failing detail",
            format!(
                "median {strange_ms} ms against {plain_ms} ms without them (5 cycles each: {:?}, {:?})",
                with_strange.1, plain.1
            ),
        )
        // Within 10% or 30 ms (the rate cap's spacing is 100 ms a request).
        .target(
            "no longer than without them",
            strange_ms <= plain_ms + (plain_ms / 10).max(30),
        ),
    );
}

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
    let body = sim_get(&reqwest::Client::new(), sim, url).await;
    body["count"].as_u64().unwrap() as usize
}

/// Fetches every page of the first cycle's listings, each job once (the running and
/// pending jobs created before `since`, then every job created since), with one
/// keep-alive connection, at most `rate` requests a second (or as fast as it can); the
/// time it took and the pages.
async fn bare_fetch(
    sim: &Simulator,
    since: OffsetDateTime,
    page_size: u32,
    rate: Option<f64>,
) -> (Duration, usize) {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .build()
        .unwrap();
    let before = api_time(since + time::Duration::microseconds(1));
    let listings = [
        format!("status=running&created_before={before}&page_size={page_size}"),
        format!("status=pending&created_before={before}&page_size={page_size}"),
        format!("created_after={}&page_size={page_size}", api_time(since)),
    ];
    let started = tokio::time::Instant::now();
    let mut pages = 0;
    for query in listings {
        let mut url = Some(format!("{}jobs/?{query}", sim.base_url()));
        while let Some(next) = url.take() {
            if let Some(rate) = rate {
                tokio::time::sleep_until(started + Duration::from_secs_f64(pages as f64 / rate))
                    .await;
            }
            let page = sim_get(&http, sim, next).await;
            pages += 1;
            url = page["next"].as_str().map(str::to_owned);
        }
    }
    (started.elapsed(), pages)
}

/// Target 2: the first cycle over 20,000 jobs against the floor (each job read once), with
/// 10 of them active, and with half of them active.
async fn first(figures: &mut Vec<Figure>) {
    first_with(figures, 10, "").await;
    first_with(figures, scaled(20_000, 500) / 2, ", half active").await;
}

async fn first_with(figures: &mut Vec<Figure>, active: usize, label: &str) {
    let total = scaled(20_000, 500);
    let page_size = 1000;
    let sim = Simulator::start().await.unwrap();
    history(&sim, total, 6.9, active, false, RECENT);
    let since = OffsetDateTime::now_utc() - time::Duration::days(7);
    let (floor, pages) = bare_fetch(&sim, since, page_size, Some(10.0)).await;
    let (unpaced, _) = bare_fetch(&sim, since, page_size, None).await;
    let dir = workdir();
    let config = write_config(
        dir.path(),
        "config.toml",
        &sim,
        &format!("page_size = {page_size}"),
        "",
    );
    let run = once(&config).await;
    let ratio = run.wall.as_secs_f64() / floor.as_secs_f64();
    figures.push(
        Figure::new(
            format!("first cycle, 20,000 jobs{label}: time"),
            format!(
                "{:.2} s = {ratio:.2} x floor ({pages} pages of {page_size}: running, pending, the lookback; process start to exit)",
                run.wall.as_secs_f64()
            ),
        )
        .target("<= 1.05 x floor", ratio <= 1.05)
        .baseline(format!(
            "floor {:.2} s at 10 req/s; {:.2} s unpaced",
            floor.as_secs_f64(),
            unpaced.as_secs_f64()
        )),
    );
    figures.push(
        Figure::new(
            format!("first cycle, 20,000 jobs{label}: peak RSS"),
            format!("{:.1} MiB (sdm-watch once)", mib(run.peak_kib)),
        )
        .target("<= 32 MiB", run.peak_kib <= 32 * 1024),
    );
}

/// Targets 3 and 4: the daemon's peak RSS over a first cycle and quiet ones, their store
/// time, and what they wrote.
async fn memory(figures: &mut Vec<Figure>) {
    for (full, limit_mib) in [(20_000, 32), (200_000, 64)] {
        let total = scaled(full, 500);
        let sim = Simulator::start().await.unwrap();
        history(&sim, total, 6.9, 9, true, RECENT);
        let dir = workdir();
        let config = write_config(
            dir.path(),
            "config.toml",
            &sim,
            "page_size = 1000",
            "[poll]\ninterval = \"1s\"\n",
        );
        let daemon = Daemon::start(&config, &[("SDM_WATCH_LOG", "info")]);
        let quiet_cycles = 10;
        daemon
            .wait_for_log_within("poll cycle done", 1, Duration::from_secs(600))
            .await;
        let first_done_ms = sdm_watch::domain::time::now_ms();
        let cycles = daemon
            .wait_for_log_within(
                "poll cycle done",
                1 + quiet_cycles,
                Duration::from_secs(120),
            )
            .await;
        if full == 200_000 {
            figures.push(status_page(&daemon, total).await);
        }
        let stopped = daemon.finish().await;
        let (code, peak_kib) = (stopped.code, stopped.peak_kib);
        assert_eq!(code, 0, "the daemon stopped cleanly");
        let mut store_us: Vec<u64> = cycles[1..]
            .iter()
            .map(|line| field(line, "store_us").expect("store_us in the cycle line"))
            .collect();
        let requests: Vec<u64> = cycles[1..]
            .iter()
            .filter_map(|line| field(line, "requests"))
            .collect();
        store_us.sort_unstable();
        let written = rows_written_since(&dir.path().join("state.db"), first_done_ms);
        figures.push(
            Figure::new(
                format!("daemon peak RSS, {full} tracked"),
                format!(
                    "{:.1} MiB ({total} jobs: first cycle and {quiet_cycles} quiet ones)",
                    mib(peak_kib)
                ),
            )
            .target(format!("<= {limit_mib} MiB"), peak_kib <= limit_mib * 1024),
        );
        let median = store_us[store_us.len() / 2];
        let worst = *store_us.last().unwrap();
        let store = Figure::new(
            format!("quiet cycle store time, {full} tracked"),
            format!(
                "median {:.2} ms, max {:.2} ms; {written} rows written; {:?} requests",
                median as f64 / 1000.0,
                worst as f64 / 1000.0,
                requests
            ),
        );
        figures.push(if full == 200_000 {
            store.target("<= 5 ms, 0 rows written", worst <= 5_000 && written == 0)
        } else {
            store
        });
    }
}

/// The status page and `/status.json` of a daemon tracking `total` jobs: the time from
/// request to the last byte, 20 times each, on loopback.
async fn status_page(daemon: &Daemon, total: usize) -> Figure {
    let line = daemon
        .lines_with("serving /")
        .pop()
        .expect("the ops listener is on");
    let address = line
        .split("address=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the listener's address in the log");
    let client = reqwest::Client::new();
    let mut timings = Vec::new();
    for path in ["/", "/status.json"] {
        let mut times: Vec<f64> = Vec::new();
        let mut size = 0;
        for _ in 0..20 {
            let started = Instant::now();
            let response = client
                .get(format!("http://{address}{path}"))
                .send()
                .await
                .expect("the page answers");
            if response.status() == 404 {
                // An older binary (SDM_WATCH_BIN, for before-and-after runs) has no page.
                return Figure::new(
                    format!("status page over {total} tracked jobs"),
                    "not served by this sdm-watch (404)",
                );
            }
            assert_eq!(response.status(), 200, "{path}");
            size = response.bytes().await.unwrap().len();
            times.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        times.sort_by(f64::total_cmp);
        timings.push((path, times[times.len() / 2], times[times.len() - 1], size));
    }
    let worst = timings.iter().map(|t| t.2).fold(0.0, f64::max);
    Figure::new(
        format!("status page over {total} tracked jobs"),
        timings
            .iter()
            .map(|(path, median, max, size)| {
                format!("{path}: median {median:.1} ms, max {max:.1} ms ({size} bytes)")
            })
            .collect::<Vec<_>>()
            .join("; "),
    )
    .target("< 100 ms", worst < 100.0)
}

/// Jobs whose record changed after `since_ms`.
fn rows_written_since(state: &Path, since_ms: i64) -> i64 {
    let conn =
        rusqlite::Connection::open_with_flags(state, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    conn.query_row(
        "SELECT COUNT(*) FROM jobs WHERE changed_ms > ?1",
        [since_ms],
        |row| row.get(0),
    )
    .unwrap()
}

/// Records when each webhook arrives, counting them.
struct Arrivals {
    count: Arc<AtomicUsize>,
    /// (arrival, job id, status) of each.
    seen: Arc<Mutex<Vec<(Instant, String, String)>>>,
}

impl Arrivals {
    async fn receiver() -> (WebhookReceiver, Arrivals) {
        let count = Arc::new(AtomicUsize::new(0));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (c, s) = (count.clone(), seen.clone());
        let receiver =
            WebhookReceiver::start_with(Some(Box::new(move |hook: &ReceivedWebhook| {
                let body = hook.json();
                let job = &body["data"]["job"];
                s.lock().unwrap().push((
                    hook.at,
                    job["id"].as_str().unwrap_or_default().to_owned(),
                    job["status"].as_str().unwrap_or_default().to_owned(),
                ));
                c.fetch_add(1, Ordering::SeqCst);
            })))
            .await
            .unwrap();
        (receiver, Arrivals { count, seen })
    }

    /// What arrived, per second from the first arrival to the last, and those two times.
    fn rate(&self) -> (Vec<(Instant, String, String)>, f64, Instant, Instant) {
        let seen = self.seen.lock().unwrap().clone();
        let first = seen.iter().map(|(at, ..)| *at).min().unwrap();
        let last = seen.iter().map(|(at, ..)| *at).max().unwrap();
        let rate = seen.len() as f64 / (last - first).as_secs_f64().max(1e-3);
        (seen, rate, first, last)
    }

    async fn wait_for(&self, count: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.count.load(Ordering::SeqCst) < count {
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        true
    }
}

/// `total` running jobs created lately, a receiver counting arrivals, and a config that
/// polls every second with one webhook to that receiver: a burst waiting to happen.
struct BurstWorld {
    sim: Simulator,
    ids: Vec<String>,
    _receiver: WebhookReceiver,
    arrivals: Arrivals,
    _dir: tempfile::TempDir,
    config: PathBuf,
}

impl BurstWorld {
    async fn start(total: usize) -> BurstWorld {
        let sim = Simulator::start().await.unwrap();
        let (ids, _) = history(&sim, total, 0.5, total, false, RECENT);
        let (receiver, arrivals) = Arrivals::receiver().await;
        let dir = workdir();
        let config = write_config(
            dir.path(),
            "config.toml",
            &sim,
            "page_size = 1000",
            &format!("[poll]\ninterval = \"1s\"\n{}", webhook(&receiver)),
        );
        BurstWorld {
            sim,
            ids,
            _receiver: receiver,
            arrivals,
            _dir: dir,
            config,
        }
    }
}

/// Starts the daemon on `config`, lets its first cycle record `ids` running, then turns
/// them all `done` at once: the daemon, its RSS before the burst, and when it began.
async fn start_then_finish(
    config: &Path,
    sim: &Simulator,
    ids: &[String],
) -> (Daemon, u64, Instant) {
    let daemon = Daemon::start(config, &[("SDM_WATCH_LOG", "info")]);
    daemon
        .wait_for_log_within("poll cycle done", 1, Duration::from_secs(60))
        .await;
    let rss_before = daemon.rss_kib();
    let changed = Instant::now();
    for id in ids {
        sim.set_status(id, Status::Done, None);
    }
    (daemon, rss_before, changed)
}

/// Target 5: a burst of transitions in one cycle, delivered by webhook and by e-mail.
async fn burst(figures: &mut Vec<Figure>) {
    let total = scaled(5_000, 50);
    let world = BurstWorld::start(total).await;
    let (daemon, rss_before, changed) =
        start_then_finish(&world.config, &world.sim, &world.ids).await;
    let all = world
        .arrivals
        .wait_for(total, Duration::from_secs(600))
        .await;
    let stopped = daemon.finish().await;
    let (code, peak_kib) = (stopped.code, stopped.peak_kib);
    assert_eq!(code, 0);
    let (seen, rate, first, last) = world.arrivals.rate();
    figures.push(
        Figure::new(
            "burst: webhook alerts delivered per second",
            format!(
                "{rate:.0}/s ({} alerts in {:.2} s; {:.2} s from the change to the last; concurrency 16)",
                seen.len(),
                (last - first).as_secs_f64(),
                (last - changed).as_secs_f64()
            ),
        )
        .target(">= 500/s, all delivered", rate >= 500.0 && all),
    );
    figures.push(Figure::new(
        "burst: daemon RSS",
        format!(
            "{:.1} MiB before the burst, peak {:.1} MiB over the run",
            mib(rss_before),
            mib(peak_kib)
        ),
    ));

    // E-mail: the same through a real SMTP server, counting its sessions.
    let mails = scaled(1_000, 20);
    let sim = Simulator::start().await.unwrap();
    let (ids, _) = history(&sim, mails, 0.5, mails, false, RECENT);
    let sink = SmtpSink::start();
    let dir = workdir();
    let config = write_config(
        dir.path(),
        "config.toml",
        &sim,
        "page_size = 1000",
        &format!(
            "[poll]\ninterval = \"1s\"\n[smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\n\
             from = \"sdm-watch@example.com\"\n[[email]]\nname = \"oncall\"\nto = [\"oncall@example.com\"]\n",
            sink.addr.port()
        ),
    );
    let daemon = Daemon::start(&config, &[("SDM_WATCH_LOG", "info")]);
    daemon
        .wait_for_log_within("poll cycle done", 1, Duration::from_secs(60))
        .await;
    for id in &ids {
        sim.set_status(id, Status::Done, None);
    }
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut first = None;
    while sink.count() < mails && Instant::now() < deadline {
        if first.is_none() && sink.count() > 0 {
            first = Some(Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let took = first.map_or(Duration::ZERO, |first| first.elapsed());
    daemon.finish().await;
    let sessions = sink.sessions();
    figures.push(
        Figure::new(
            "burst: e-mail alerts over pooled SMTP",
            format!(
                "{} messages over {sessions} SMTP connections, {:.0}/s",
                sink.count(),
                sink.count() as f64 / took.as_secs_f64().max(1e-3)
            ),
        )
        .target(
            "all sent, <= 16 connections",
            sink.count() == mails && sessions <= 16,
        ),
    );
}

/// Issue 13: a burst of transitions with `group_wait = "10s"` on a webhook and an e-mail
/// channel: at most 50 digests each, and the daemon's peak RSS.
async fn burst_digests(figures: &mut Vec<Figure>) {
    let total = scaled(5_000, 200);
    let sim = Simulator::start().await.unwrap();
    let (ids, _) = history(&sim, total, 0.5, total, false, RECENT);
    let receiver = WebhookReceiver::start().await.unwrap();
    let sink = SmtpSink::start();
    let dir = workdir();
    let config = write_config(
        dir.path(),
        "config.toml",
        &sim,
        "page_size = 1000",
        &format!(
            "[poll]\ninterval = \"1s\"\n{}group_wait = \"10s\"\ngroup_max = 100\n\
             [smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\n\
             from = \"sdm-watch@example.com\"\n[[email]]\nname = \"oncall\"\n\
             to = [\"oncall@example.com\"]\ngroup_wait = \"10s\"\ngroup_max = 100\n",
            webhook(&receiver),
            sink.addr.port()
        ),
    );
    let (daemon, rss_before, changed) = start_then_finish(&config, &sim, &ids).await;
    let members = |hooks: &[ReceivedWebhook]| -> usize {
        hooks
            .iter()
            .map(|h| h.json()["data"]["alerts"].as_array().map_or(1, Vec::len))
            .sum()
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while (members(&receiver.delivered()) < total || sink.count() < total.div_ceil(100))
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = changed.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let stopped = daemon.finish().await;
    assert_eq!(stopped.code, 0);
    let hooks = receiver.delivered();
    let told = members(&hooks);
    let mails = sink.count();
    let limit = total.div_ceil(100);
    figures.push(
        Figure::new(
            "digests: messages per channel for a burst, group_wait 10s",
            format!(
                "{} webhook digests telling {told} alerts, {mails} e-mails, for {total} changes; the last {:.1} s after the change",
                hooks.len(),
                took.as_secs_f64()
            ),
        )
        .target(
            format!("<= {limit} per channel, every alert told"),
            hooks.len() <= limit && mails <= limit && told == total,
        ),
    );
    figures.push(
        Figure::new(
            "digests: daemon peak RSS",
            format!(
                "{:.1} MiB before the burst, peak {:.1} MiB over the run",
                mib(rss_before),
                mib(stopped.peak_kib)
            ),
        )
        .target("< 32 MiB", stopped.peak_kib < 32 * 1024),
    );
}

/// Issue 21: an error message of 2 MB goes out on every channel (standard, Slack, Teams,
/// Google Chat, Discord, e-mail with its HTML part), each cut where its format says; the
/// daemon's peak RSS over the run.
async fn huge_message(figures: &mut Vec<Figure>) {
    let size = scaled(2 * 1024 * 1024, 64 * 1024);
    let sim = Simulator::start().await.unwrap();
    let job = sim.add_job(NewJob::new(Status::Running).name("Huge"));
    let receiver = WebhookReceiver::start().await.unwrap();
    let sink = SmtpSink::start();
    let dir = workdir();
    let formats = ["standard", "slack", "teams", "google_chat", "discord"];
    let hooks: String = formats
        .iter()
        .map(|format| {
            format!(
                "[[webhook]]\nname = \"{format}\"\nurl = \"{}\"\nformat = \"{format}\"\n",
                receiver.url(&format!("/{format}"))
            )
        })
        .collect();
    let config = write_config(
        dir.path(),
        "config.toml",
        &sim,
        "",
        &format!(
            "[poll]\ninterval = \"1s\"\n{hooks}\
             [smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\n\
             from = \"sdm-watch@example.com\"\n[[email]]\nname = \"oncall\"\n\
             to = [\"oncall@example.com\"]\nhtml = true\n",
            sink.addr.port()
        ),
    );
    let daemon = Daemon::start(&config, &[]);
    daemon.wait_for_log("poll cycle done", 1).await;
    let message = "Row 17 has no sku. ".repeat(size / 19 + 1);
    sim.set_status(&job, Status::Error, Some(&message[..size]));
    let deadline = Instant::now() + Duration::from_secs(120);
    while (receiver.delivered().len() < formats.len() || sink.count() < 1)
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stopped = daemon.finish().await;
    assert_eq!(stopped.code, 0);
    let delivered = receiver.delivered();
    let bytes: Vec<String> = formats
        .iter()
        .map(|format| {
            let body = delivered
                .iter()
                .find(|h| h.path == format!("/{format}"))
                .map_or(0, |h| h.body.len());
            format!("{format} {} KiB", body / 1024)
        })
        .collect();
    figures.push(
        Figure::new(
            "a 2 MB error message on every channel: daemon peak RSS",
            format!(
                "{:.1} MiB; {} webhooks ({}), {} e-mail",
                mib(stopped.peak_kib),
                delivered.len(),
                bytes.join(", "),
                sink.count()
            ),
        )
        .target(
            "< 40 MiB, every channel delivered",
            stopped.peak_kib < 40 * 1024 && delivered.len() == formats.len() && sink.count() == 1,
        ),
    );
}

/// Issue 13: API requests per hour with the adaptive cadence (`interval = "60s"`,
/// `active_interval = "5s"`), idle and with a job running throughout, against a fixed 5 s
/// interval. Each is the requests of whole cycles over the time they spanned, from the
/// daemon's own log, three daemons at once.
async fn cadence(figures: &mut Vec<Figure>) {
    let full = scale() >= 1.0;
    let (slow, fast) = if full { (60, 5) } else { (2, 1) };
    let cycles = 3;
    let adaptive = format!("interval = \"{slow}s\"\nactive_interval = \"{fast}s\"");
    let fixed = format!("interval = \"{fast}s\"");
    let (idle, busy, every_5s) = tokio::join!(
        requests_per_hour(&adaptive, false, cycles),
        requests_per_hour(&adaptive, true, cycles),
        requests_per_hour(&fixed, false, cycles),
    );
    let day = 18.0 * idle + 6.0 * busy;
    figures.push(
        Figure::new(
            "cadence: API requests per hour, nothing running",
            format!("{idle:.0}/h (interval {slow}s, active_interval {fast}s)"),
        )
        .baseline(format!("fixed {fast}s: {every_5s:.0}/h"))
        .target(
            format!("<= 1/10 of a fixed {fast}s interval"),
            idle * 10.0 <= every_5s,
        ),
    );
    figures.push(
        Figure::new(
            "cadence: API requests per hour, a job running at all times",
            format!("{busy:.0}/h; a day with jobs running 6 h of 24: {day:.0}/day"),
        )
        .baseline(format!("fixed {fast}s: {:.0}/day", every_5s * 24.0))
        .target(
            format!("no more than a fixed {fast}s interval"),
            busy <= every_5s * 1.05,
        ),
    );
}

/// The requests per hour of a daemon with `poll` over 2,000 settled jobs (and one running
/// if `running`): those of `cycles` whole cycles after the first, over the time they took.
async fn requests_per_hour(poll: &str, running: bool, cycles: usize) -> f64 {
    let sim = Simulator::start().await.unwrap();
    history(&sim, 2_000, 7.0, usize::from(running), false, RECENT);
    let dir = workdir();
    let config = write_config(
        dir.path(),
        "config.toml",
        &sim,
        "",
        &format!("[poll]\n{poll}\n"),
    );
    let daemon = Daemon::start(&config, &[("SDM_WATCH_LOG", "info")]);
    let lines = daemon
        .wait_for_log_within("poll cycle done", cycles + 1, Duration::from_secs(600))
        .await;
    daemon.finish().await;
    let at = |line: &str| {
        let stamp = line.split_whitespace().next().unwrap_or_default();
        OffsetDateTime::parse(stamp, &time::format_description::well_known::Rfc3339)
            .expect("log lines start with their time")
    };
    let requests: u64 = lines[1..=cycles]
        .iter()
        .filter_map(|line| field(line, "requests"))
        .sum();
    let span = at(&lines[cycles]) - at(&lines[0]);
    requests as f64 * 3600.0 / span.as_seconds_f64()
}

/// Target 6 (issue 13): from a status change in the simulator to the webhook at the
/// receiver, with `interval = "60s"` and `active_interval = "5s"`: jobs run throughout, so
/// the fast cadence applies.
async fn latency(figures: &mut Vec<Figure>) {
    let interval = Duration::from_secs(5);
    let duration = Duration::from_secs_f64((180.0 * scale()).max(6.0));
    let sim = Simulator::start().await.unwrap();
    // History, an old pending job (so the active listings are read every cycle) and a
    // pool of running jobs to change.
    let mut running = history(&sim, 2_000, 7.0, 10, true, RECENT).0.split_off(1);
    let (receiver, arrivals) = Arrivals::receiver().await;
    let dir = workdir();
    let config = write_config(
        dir.path(),
        "config.toml",
        &sim,
        "",
        &format!(
            "[poll]\ninterval = \"60s\"\nactive_interval = \"{}s\"\n{}",
            interval.as_secs(),
            webhook(&receiver)
        ),
    );
    let daemon = Daemon::start(&config, &[("SDM_WATCH_LOG", "info")]);
    daemon
        .wait_for_log_within("poll cycle done", 1, Duration::from_secs(60))
        .await;
    // Every second one running job ends (done, error or pending) and a new one starts:
    // six times the rate of 100,000 jobs a week.
    let mut changed: Vec<(String, String, Instant)> = Vec::new();
    let started = Instant::now();
    let mut rng = fastrand::Rng::with_seed(7);
    while started.elapsed() < duration {
        let job = running.swap_remove(rng.usize(..running.len()));
        let (status, message) = match rng.u8(..3) {
            0 => (Status::Done, None),
            1 => (Status::Error, Some("Column 'sku' missing")),
            _ => (Status::Pending, None),
        };
        sim.set_status(&job, status.clone(), message);
        changed.push((job, status.to_string(), Instant::now()));
        running.push(sim.add_job(NewJob::new(Status::Running)));
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let all = arrivals.wait_for(changed.len(), interval * 3).await;
    daemon.finish().await;
    let seen = arrivals.seen.lock().unwrap().clone();
    let mut latencies: Vec<f64> = changed
        .iter()
        .filter_map(|(job, status, at)| {
            let (arrived, ..) = seen.iter().find(|(_, j, s)| j == job && s == status)?;
            Some((*arrived - *at).as_secs_f64())
        })
        .collect();
    latencies.sort_by(f64::total_cmp);
    let rank = |p: f64| {
        latencies[((p * latencies.len() as f64).ceil() as usize).clamp(1, latencies.len()) - 1]
    };
    let (p50, p99) = (rank(0.5), rank(0.99));
    let limit = interval.as_secs_f64() + 0.5;
    figures.push(
        Figure::new(
            "latency: status change to webhook",
            format!(
                "p50 {p50:.2} s, p99 {p99:.2} s, max {:.2} s ({} alerts of {} changes, interval 60s, active_interval {}s)",
                latencies.last().copied().unwrap_or(0.0),
                latencies.len(),
                changed.len(),
                interval.as_secs()
            ),
        )
        .target(
            format!("p99 <= {limit:.1} s, none lost"),
            p99 <= limit && all && latencies.len() == changed.len(),
        ),
    );
}

/// Target 6: CPU time while the daemon waits between cycles.
async fn idle(figures: &mut Vec<Figure>) {
    let window = Duration::from_secs_f64((60.0 * scale()).max(3.0));
    let sim = Simulator::start().await.unwrap();
    history(&sim, 2_000, 7.0, 10, true, RECENT);
    let dir = workdir();
    let config = write_config(
        dir.path(),
        "config.toml",
        &sim,
        "",
        // Jobs run in this history: without `active_interval` the adaptive cadence would
        // poll every 10 s, and this figure is about the cost between cycles.
        "[poll]\ninterval = \"1h\"\nactive_interval = \"1h\"\n",
    );
    let daemon = Daemon::start(&config, &[("SDM_WATCH_LOG", "info")]);
    daemon
        .wait_for_log_within("poll cycle done", 1, Duration::from_secs(60))
        .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = daemon.cpu();
    tokio::time::sleep(window).await;
    let used = daemon.cpu() - before;
    daemon.finish().await;
    let per_minute_ms = used.as_secs_f64() * 1000.0 * 60.0 / window.as_secs_f64();
    figures.push(
        Figure::new(
            "idle: CPU time between cycles",
            format!(
                "{per_minute_ms:.1} ms per minute (measured over {:.0} s, /proc/PID/stat ticks of 10 ms)",
                window.as_secs_f64()
            ),
        )
        .target("<= 50 ms per minute", per_minute_ms <= 50.0),
    );
}

/// 1,000 organisations in one process, each with its own token, on one simulator: the
/// quiet cycle's cost per organisation, CPU and peak RSS at a 60 s interval.
/// A config in `dir` for `count` organisations served by `sim` (its first, then new
/// ones), named `org0`, `org1`, ..., each with three old finished jobs, polled every
/// `interval` seconds: their names and the config's path.
fn organisations_config(
    dir: &Path,
    sim: &Simulator,
    count: usize,
    interval: u64,
) -> (Vec<String>, PathBuf) {
    let mut tables = String::new();
    let mut names = Vec::new();
    // Each organisation its own, named as in the config, so that requests the simulator
    // records name the organisation a test looks for (its first is "default").
    let parts: Vec<_> = (0..count)
        .map(|i| sim.add_organisation(&format!("org{i}"), &format!("sim-token-org-{i:04}-abcdef")))
        .collect();
    for (i, part) in parts.iter().enumerate() {
        for n in 0..3 {
            part.add_job(
                NewJob::new(Status::Done)
                    .name(format!("Import {n}"))
                    .project(17)
                    .created(part.now() - time::Duration::hours(3)),
            );
        }
        tables.push_str(&format!(
            "[[organisation]]\nname = \"org{i}\"\ntoken = \"{}\"\n",
            part.token()
        ));
        names.push(format!("org{i}"));
    }
    let config = write_config(
        dir,
        "config.toml",
        sim,
        "",
        &format!("[poll]\ninterval = \"{interval}s\"\n{tables}"),
    );
    // [api] gives defaults only: its token would be ambiguous with the tables.
    let text = std::fs::read_to_string(&config).unwrap().replacen(
        &format!("token = \"{}\"\n", sim.token()),
        "",
        1,
    );
    std::fs::write(&config, text).unwrap();
    (names, config)
}

async fn organisations(figures: &mut Vec<Figure>) {
    let count = scaled(1_000, 3);
    let interval = if scale() >= 1.0 { 60 } else { 2 };
    let sim = Simulator::start().await.unwrap();
    let dir = workdir();
    let (_, config) = organisations_config(dir.path(), &sim, count, interval);
    let daemon = Daemon::start(&config, &[("SDM_WATCH_LOG", "info")]);
    daemon
        .wait_for_log_within("poll cycle done", count, Duration::from_secs(600))
        .await;
    // Two whole cycles of every organisation, measured from outside.
    let cycles = 2;
    let before = (daemon.cpu(), sim.requests().len(), Instant::now());
    daemon
        .wait_for_log_within(
            "poll cycle done",
            count * (1 + cycles),
            Duration::from_secs(interval * (cycles as u64 + 2) + 600),
        )
        .await;
    let (cpu, requests, wall) = (
        daemon.cpu() - before.0,
        sim.requests().len() - before.1,
        before.2.elapsed(),
    );
    let stopped = daemon.finish().await;
    let per_org = requests as f64 / (count * cycles) as f64;
    let cpu_percent = cpu.as_secs_f64() * 100.0 / wall.as_secs_f64();
    figures.push(
        Figure::new(
            format!("{count} organisations: requests per organisation per quiet cycle"),
            format!("{per_org:.2}"),
        )
        .target("3", (per_org - 3.0).abs() < 0.05),
    );
    figures.push(
        Figure::new(
            format!("{count} organisations: CPU at a {interval} s interval"),
            format!(
                "{cpu_percent:.1} % of one core over {:.0} s",
                wall.as_secs_f64()
            ),
        )
        .target("<= 5 %", cpu_percent <= 5.0),
    );
    figures.push(
        Figure::new(
            format!("{count} organisations: peak RSS"),
            format!("{:.1} MiB", mib(stopped.peak_kib)),
        )
        .target("<= 64 MiB", mib(stopped.peak_kib) <= 64.0),
    );
}

/// `sdm-watch jobs data` of a million rows, as JSON and as CSV, to /dev/null: peak RSS.
// The child is reaped with wait4 (see `testkit::process::reap`), which clippy cannot see.
#[allow(clippy::zombie_processes)]
async fn cli_data(figures: &mut Vec<Figure>) {
    let rows = scaled(1_000_000, 1_000);
    let sim = Simulator::start().await.unwrap();
    let job = sim.add_job(NewJob::new(Status::Done).generated_rows(rows));
    let dir = workdir();
    let config = write_config(dir.path(), "config.toml", &sim, "", "");
    for csv in [false, true] {
        let (config, job, tmp) = (config.clone(), job.clone(), dir.path().to_owned());
        let (peak_kib, wall) = tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let mut command = Command::new(testkit::cli::binary());
            command
                .arg("--config")
                .arg(&config)
                .args(["jobs", "data", &job, "1"])
                .env("TMPDIR", &tmp)
                .stdout(Stdio::null());
            if csv {
                command.arg("--csv");
            }
            let child = command.spawn().expect("sdm-watch starts");
            let peak = process::follow_peak(child.id());
            let code = process::reap(child.id(), Duration::from_secs(3600)).expect("it exits");
            assert_eq!(code, 0, "jobs data failed");
            (peak.join().unwrap(), started.elapsed())
        })
        .await
        .unwrap();
        let format = if csv { "CSV" } else { "JSON" };
        figures.push(
            Figure::new(
                format!("jobs data: peak RSS, {format}"),
                format!(
                    "{:.1} MiB ({rows} rows to /dev/null in {:.2} s)",
                    mib(peak_kib),
                    wall.as_secs_f64()
                ),
            )
            .target("<= 32 MiB at 1,000,000 rows", peak_kib <= 32 * 1024),
        );
    }
}

/// A done job with a million rows: saved and summarised in flat memory.
async fn output_rows(figures: &mut Vec<Figure>) {
    let rows = scaled(1_000_000, 1_000);
    let sim = Simulator::start().await.unwrap();
    let job = sim.add_job(NewJob::new(Status::Running).generated_rows(rows));
    let dir = workdir();
    let config = write_config(
        dir.path(),
        "config.toml",
        &sim,
        "",
        &format!(
            "[output]\nformat_id = 1\ndir = \"{}\"\n",
            dir.path().join("out").display()
        ),
    );
    once(&config).await;
    sim.set_status(&job, Status::Done, None);
    let run = once(&config).await;
    let file = dir.path().join("out").join(format!("{job}.json"));
    let bytes = std::fs::metadata(&file).unwrap().len();
    let (saved_rows, columns) = sdm_watch::output::summarise(&file).unwrap();
    assert_eq!(saved_rows as usize, rows, "every row saved");
    assert_eq!(columns, ["sku", "name", "price", "color", "size"]);
    figures.push(
        Figure::new(
            "output: peak RSS saving a done job's rows",
            format!(
                "{:.1} MiB ({rows} rows, {:.0} MiB file, in {:.2} s)",
                mib(run.peak_kib),
                bytes as f64 / 1048576.0,
                run.wall.as_secs_f64()
            ),
        )
        .target("< 64 MiB at 1,000,000 rows", run.peak_kib < 64 * 1024),
    );
}

/// `config` with its SQLite `[state]` replaced by PostgreSQL at `url`, leasing for `lease`.
fn on_postgres(config: &Path, url: &str, lease: &str) -> PathBuf {
    let text = std::fs::read_to_string(config).unwrap();
    let dir = config.parent().unwrap();
    let state = format!("[state]\npath = \"{}\"", dir.join("state.db").display());
    assert!(text.contains(&state));
    let path = config.with_extension("pg.toml");
    std::fs::write(
        &path,
        text.replace(
            &state,
            &format!("[state]\nurl = \"{url}\"\nlease = \"{lease}\""),
        ),
    )
    .unwrap();
    path
}

/// The median and the largest store time of the quiet cycles after the first, from the
/// daemon's "poll cycle done" lines.
async fn quiet_store_time(config: &Path, cycles: usize) -> (u64, u64) {
    let daemon = Daemon::start(config, &[("SDM_WATCH_LOG", "info")]);
    let lines = daemon
        .wait_for_log_within("poll cycle done", cycles + 1, Duration::from_secs(600))
        .await;
    daemon.finish().await;
    let mut store_us: Vec<u64> = lines[1..]
        .iter()
        .map(|line| field(line, "store_us").expect("store_us in the cycle line"))
        .collect();
    store_us.sort_unstable();
    (store_us[store_us.len() / 2], *store_us.last().unwrap())
}

/// Issue 16: the store on PostgreSQL against SQLite (a quiet cycle's store time, a burst
/// delivered by two replicas), and failover from a SIGKILLed leader to the first poll of
/// the next.
async fn replicas(figures: &mut Vec<Figure>) {
    let pg = testkit::postgres::Postgres::start();

    // Quiet cycles over a recorded history, on each store.
    let total = scaled(20_000, 500);
    let sim = Simulator::start().await.unwrap();
    history(&sim, total, 7.0, 9, true, time::Duration::minutes(20));
    let dir = workdir();
    let fill = write_config(dir.path(), "fill.toml", &sim, "page_size = 1000", "");
    let quiet = write_config(
        dir.path(),
        "quiet.toml",
        &sim,
        "page_size = 100",
        "[poll]\ninterval = \"1s\"\n",
    );
    let cycles = scaled(20, 3);
    once(&fill).await;
    let (lite_median, lite_max) = quiet_store_time(&quiet, cycles).await;
    once(&on_postgres(&fill, &pg.url(), "15s")).await;
    let (pg_median, pg_max) =
        quiet_store_time(&on_postgres(&quiet, &pg.url(), "15s"), cycles).await;
    figures.push(Figure::new(
        format!("quiet cycle store time, {total} tracked, PostgreSQL against SQLite"),
        format!(
            "PostgreSQL median {:.2} ms (max {:.2}); SQLite median {:.2} ms (max {:.2}); {cycles} cycles each",
            pg_median as f64 / 1000.0,
            pg_max as f64 / 1000.0,
            lite_median as f64 / 1000.0,
            lite_max as f64 / 1000.0
        ),
    ));

    // A burst, delivered by two replicas sharing the outbox.
    let burst = scaled(5_000, 50);
    let world = BurstWorld::start(burst).await;
    pg.psql("DROP SCHEMA sdm_watch CASCADE");
    let config = on_postgres(&world.config, &pg.url(), "15s");
    let leader = Daemon::start(&config, &[("SDM_WATCH_LOG", "info")]);
    leader
        .wait_for_log_within("poll cycle done", 1, Duration::from_secs(120))
        .await;
    let standby = Daemon::start(&config, &[("SDM_WATCH_LOG", "info")]);
    standby
        .wait_for_log_within("sdm-watch started", 1, Duration::from_secs(60))
        .await;
    let changed = Instant::now();
    for id in &world.ids {
        world.sim.set_status(id, Status::Done, None);
    }
    let all = world
        .arrivals
        .wait_for(burst, Duration::from_secs(600))
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    leader.finish().await;
    standby.finish().await;
    let (seen, rate, first, last) = world.arrivals.rate();
    let mut told: Vec<&String> = seen.iter().map(|(_, id, _)| id).collect();
    told.sort();
    told.dedup();
    figures.push(
        Figure::new(
            "burst on PostgreSQL: webhook alerts per second, two replicas delivering",
            format!(
                "{rate:.0}/s ({} deliveries of {} alerts in {:.2} s; {:.2} s from the change to the last)",
                seen.len(),
                told.len(),
                (last - first).as_secs_f64(),
                (last - changed).as_secs_f64()
            ),
        )
        .target(
            ">= 1000/s, each alert once",
            rate >= 1000.0 && all && told.len() == burst && seen.len() == burst,
        ),
    );

    // Failover: the leader SIGKILLed, then the first request of the next one.
    let (interval, lease) = (2.0, 5.0);
    let sim = Simulator::start().await.unwrap();
    for n in 0..20 {
        sim.add_job(NewJob::new(Status::Running).name(format!("job {n}")));
    }
    let dir = workdir();
    let config = write_config(
        dir.path(),
        "config.toml",
        &sim,
        "",
        &format!("[poll]\ninterval = \"{interval}s\"\n"),
    );
    pg.psql("DROP SCHEMA sdm_watch CASCADE");
    let config = on_postgres(&config, &pg.url(), &format!("{lease}s"));
    let mut running: Vec<Daemon> = (0..2).map(|_| Daemon::start(&config, &[])).collect();
    let mut times = Vec::new();
    for _ in 0..scaled(10, 2) {
        let leader = loop {
            if let Some(at) = running
                .iter()
                .position(|d| !d.lines_with("this replica now leads").is_empty())
            {
                break at;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        running[leader]
            .wait_for_log_within("poll cycle done", 1, Duration::from_secs(60))
            .await;
        // Killed at a random moment of its cadence.
        tokio::time::sleep(Duration::from_millis(fastrand::u64(0..2_000))).await;
        let killed = Instant::now();
        let gone = format!("-{}-", running[leader].pid());
        running.swap_remove(leader).kill().await;
        running.push(Daemon::start(&config, &[]));
        let first_poll = loop {
            let polled = sim
                .requests()
                .into_iter()
                .find(|r| r.at > killed && !r.user_agent.contains(&gone));
            if let Some(request) = polled {
                break request.at;
            }
            assert!(
                killed.elapsed() < Duration::from_secs(60),
                "no failover within a minute; the replicas' logs:\n{}",
                running
                    .iter()
                    .map(|d| d.log().join("\n"))
                    .collect::<Vec<_>>()
                    .join("\n----\n")
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        times.push(first_poll - killed);
    }
    for daemon in running {
        daemon.finish().await;
    }
    times.sort();
    let median = times[times.len() / 2].as_secs_f64();
    let max = times.last().unwrap().as_secs_f64();
    let target = 2.0 * interval + lease;
    figures.push(
        Figure::new(
            "failover: SIGKILL of the leader to the first poll of the next",
            format!(
                "median {median:.2} s, max {max:.2} s over {} kills (interval {interval} s, lease {lease} s)",
                times.len()
            ),
        )
        .target(format!("<= {target} s (two intervals plus the lease)"), max <= target),
    );
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
