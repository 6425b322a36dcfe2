//! `sdm-watch report` (issue 25) against a plain model over random histories: the real
//! binary reads a store filled with random jobs (two organisations, projects known and
//! not, every status, creation dates inside and outside the period, error messages from
//! templates whose signature is known by construction), and its JSON must equal what the
//! model computes directly: counts, error rates, nearest-rank durations, signatures with
//! their counts, time spent pending, the slowest jobs and the jobs waiting now.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use sdm_watch::domain::Status;
use sdm_watch::domain::time::{OffsetDateTime, format_api_time, micros, millis};
use sdm_watch::store::Store;
use sdm_watch::store::jobs::{self, TrackedJob};
use testkit::cli::{sdm_watch, stderr, stdout};

/// (message template, its signature): `{w}` a word, `{n}` a number, `{u}` a UUID.
const TEMPLATES: [(&str, &str); 6] = [
    (
        "Column '{w}' missing in row {n}",
        "Column '*' missing in row <n>",
    ),
    (
        "Unable to parse /data/in/{w}_{n}.csv: line {n}",
        "Unable to parse <path>: line <n>",
    ),
    (
        "Job {u} timed out after {n}s",
        "Job <id> timed out after <n>s",
    ),
    (
        "Price \"{w}\" is not a number (product {n})",
        "Price \"*\" is not a number (product <n>)",
    ),
    (
        "Mapping doesn't match: {n} attributes missing",
        "Mapping doesn't match: <n> attributes missing",
    ),
    ("Supplier file is empty", "Supplier file is empty"),
];

struct Job {
    org: &'static str,
    tracked: TrackedJob,
    /// Inside the report's period (7 days).
    recent: bool,
    duration_ms: Option<i64>,
    /// The template its message came from.
    template: Option<usize>,
}

fn fill(rng: &mut fastrand::Rng, template: &str) -> String {
    let mut text = template.to_owned();
    while let Some(at) = text.find("{w}") {
        let word: String = (0..rng.usize(3..9)).map(|_| rng.lowercase()).collect();
        text.replace_range(at..at + 3, &word);
    }
    while let Some(at) = text.find("{n}") {
        text.replace_range(at..at + 3, &rng.u32(0..100_000).to_string());
    }
    while let Some(at) = text.find("{u}") {
        let uuid = format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            rng.u32(..),
            rng.u16(..),
            rng.u16(..0x1000),
            rng.u16(..0x1000),
            rng.u64(..1 << 48)
        );
        text.replace_range(at..at + 3, &uuid);
    }
    text
}

fn history(seed: u64, now: OffsetDateTime) -> Vec<Job> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let count = rng.usize(0..120);
    (0..count)
        .map(|n| {
            let org = if rng.bool() { "acme" } else { "globex" };
            let status = [
                Status::Done,
                Status::Error,
                Status::Running,
                Status::Pending,
            ][rng.usize(0..4)]
            .clone();
            // Inside the period (an hour to 6 days 22 hours ago) or outside (8 to 30 days).
            let recent = rng.u8(0..4) > 0;
            let age = if recent {
                time::Duration::minutes(rng.i64(60..(7 * 24 - 2) * 60))
            } else {
                time::Duration::days(rng.i64(8..30))
            };
            let created = now - age;
            let finished = matches!(status, Status::Done | Status::Error);
            let duration_ms = (finished && rng.u8(0..10) > 0).then(|| rng.i64(1_000..40_000_000));
            let template = (status == Status::Error && rng.u8(0..8) > 0)
                .then(|| rng.usize(0..TEMPLATES.len()));
            let message = template.map(|t| fill(&mut rng, TEMPLATES[t].0));
            let project = [None, Some(17), Some(18), Some(19)][rng.usize(0..4)];
            // Some jobs waited for action on their way (the tracker's own sums are its
            // unit tests' business).
            let pending_ms = if rng.bool() { rng.i64(1..5_000_000) } else { 0 };
            let tracked = TrackedJob {
                id: format!("job-{seed}-{n:03}"),
                status: status.clone(),
                name: Some(format!("Feed {n}")),
                project,
                project_checked: project.is_some(),
                creation_date: Some(format_api_time(created)),
                completion_date: duration_ms
                    .map(|ms| format_api_time(created + time::Duration::milliseconds(ms))),
                created_us: Some(micros(created)),
                message,
                step: None,
                since_ms: Some(millis(created)),
                reminders: 0,
                completed_us: None,
                pending_ms,
            };
            Job {
                org,
                tracked,
                recent,
                duration_ms,
                template,
            }
        })
        .collect()
}

/// The value at rank ceil(p/100 x n) of the sorted values.
fn percentile(values: &[i64], p: usize) -> Value {
    if values.is_empty() {
        return Value::Null;
    }
    let mut sorted = values.to_vec();
    sorted.sort();
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted[rank - 1].into()
}

/// A project's done, error, durations, waiting and times pending, as the model counts them.
type Tally = (u64, u64, Vec<i64>, u64, Vec<i64>);

/// What the report must say, computed directly from the jobs.
fn model(
    jobs: &[Job],
) -> (
    Vec<Value>,
    BTreeMap<String, u64>,
    Vec<String>,
    BTreeSet<String>,
) {
    let mut projects: BTreeMap<(String, Option<i64>), Tally> = BTreeMap::new();
    let mut signatures = BTreeMap::new();
    let mut slow: Vec<(i64, String)> = Vec::new();
    let mut waiting = BTreeSet::new();
    for job in jobs {
        let key = (job.org.to_owned(), job.tracked.project);
        if job.tracked.status == Status::Pending {
            projects.entry(key.clone()).or_default().3 += 1;
            waiting.insert(job.tracked.id.clone());
        }
        let failed = job.tracked.status == Status::Error;
        if !job.recent || !(failed || job.tracked.status == Status::Done) {
            continue;
        }
        let entry = projects.entry(key).or_default();
        if failed {
            entry.1 += 1;
        } else {
            entry.0 += 1;
        }
        if job.tracked.pending_ms > 0 {
            entry.4.push(job.tracked.pending_ms);
        }
        if let Some(ms) = job.duration_ms {
            entry.2.push(ms);
            slow.push((ms, job.tracked.id.clone()));
        }
        if let Some(template) = job.template {
            *signatures
                .entry(TEMPLATES[template].1.to_owned())
                .or_default() += 1;
        }
    }
    let lines = projects
        .into_iter()
        .map(
            |((org, project), (done, error, durations, waiting, pending))| {
                let finished = done + error;
                serde_json::json!({
                    "organisation": org,
                    "project": project,
                    "done": done,
                    "error": error,
                    "error_rate": if finished == 0 { 0.0 } else { error as f64 / finished as f64 },
                    "duration_median_ms": percentile(&durations, 50),
                    "duration_p95_ms": percentile(&durations, 95),
                    "duration_max_ms": durations.iter().max().map_or(Value::Null, |m| (*m).into()),
                    "pending_jobs": pending.len(),
                    "pending_median_ms": percentile(&pending, 50),
                    "pending_max_ms": pending.iter().max().map_or(Value::Null, |m| (*m).into()),
                    "pending_total_ms": pending.iter().sum::<i64>(),
                    "waiting": waiting,
                })
            },
        )
        .collect();
    slow.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let slowest = slow.into_iter().take(10).map(|(_, id)| id).collect();
    (lines, signatures, slowest, waiting)
}

#[tokio::test]
async fn reports_equal_a_plain_model_over_random_histories() {
    let mut compared = 0;
    for seed in 0..12u64 {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state.db");
        let now = OffsetDateTime::now_utc();
        let jobs = history(seed, now);
        let store = Store::open(&state).unwrap();
        let rows: Vec<(&'static str, TrackedJob)> =
            jobs.iter().map(|j| (j.org, j.tracked.clone())).collect();
        store
            .run(move |conn| {
                for (org, job) in &rows {
                    jobs::upsert(conn, org, job, 0)?;
                }
                Ok(())
            })
            .await
            .unwrap();
        drop(store);
        let config = format!(
            "[[organisation]]\nname = \"acme\"\ntoken = \"a\"\n[[organisation]]\nname = \"globex\"\ntoken = \"g\"\n[state]\npath = \"{}\"\n",
            state.display()
        );
        let output = sdm_watch(&config, &["report", "--json"], &[]).await;
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        let report: Value = serde_json::from_str(&stdout(&output)).unwrap();
        let (lines, signatures, slowest, waiting) = model(&jobs);

        assert_eq!(report["projects"], Value::Array(lines), "seed {seed}");
        let got: BTreeMap<String, u64> = report["signatures"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["signature"].as_str().unwrap().to_owned(),
                    s["count"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(got, signatures, "seed {seed}");
        let counts: Vec<u64> = report["signatures"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["count"].as_u64().unwrap())
            .collect();
        assert!(
            counts.windows(2).all(|w| w[0] >= w[1]),
            "most frequent first"
        );
        let got: Vec<String> = report["slowest"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j["id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(got, slowest, "seed {seed}");
        let got: BTreeSet<String> = report["waiting"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j["id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(got, waiting, "seed {seed}");
        compared += jobs.len();
    }
    assert!(compared > 300, "{compared} jobs compared");
}

/// The table and CSV say the same as the JSON, for one organisation and one project.
#[tokio::test]
async fn report_prints_a_table_and_csv_and_narrows_to_a_project() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.db");
    let now = OffsetDateTime::now_utc();
    let jobs = history(99, now);
    let store = Store::open(&state).unwrap();
    let rows: Vec<TrackedJob> = jobs.iter().map(|j| j.tracked.clone()).collect();
    store
        .run(move |conn| {
            for job in &rows {
                jobs::upsert(conn, "default", job, 0)?;
            }
            Ok(())
        })
        .await
        .unwrap();
    drop(store);
    let config = format!(
        "[api]\ntoken = \"t\"\n[state]\npath = \"{}\"\n",
        state.display()
    );
    let table = stdout(&sdm_watch(&config, &["report", "--project", "17"], &[]).await);
    assert!(table.contains("PROJECT"), "{table}");
    assert!(table.lines().any(|l| l.starts_with("17 ")), "{table}");
    assert!(!table.lines().any(|l| l.starts_with("18 ")), "{table}");
    let csv = stdout(&sdm_watch(&config, &["report", "--csv", "--since", "30d"], &[]).await);
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some(
            "organisation,project,done,error,error_rate,duration_median_s,duration_p95_s,duration_max_s,pending_jobs,pending_median_s,pending_max_s,pending_total_s,waiting"
        )
    );
    assert!(lines.all(|l| l.starts_with("default,")), "{csv}");
    let bad = sdm_watch(&config, &["report", "--since", "soon"], &[]).await;
    assert_eq!(bad.status.code(), Some(2));
}

/// `[state] keep` forgets settled jobs created longer ago, and loses no alert by it: a
/// forgotten job that is re-run and fails is found again by the active listings and its
/// failure alerts as the naive poller's would (from running to error).
#[tokio::test]
async fn keep_forgets_old_settled_jobs_and_a_forgotten_job_re_run_still_alerts() {
    use sdm_watch::sim::NewJob;
    use testkit::{World, step};
    let w = World::start().await;
    let old = w.sim.add_job(
        NewJob::new(Status::Done)
            .project(17)
            .created(OffsetDateTime::now_utc() - time::Duration::days(3)),
    );
    let new = w.sim.add_job(NewJob::new(Status::Running).project(17));
    let text = w
        .config("", "1h", &w.ops_hook())
        .replace("[state]\n", "[state]\nkeep = \"1d\"\n");
    let parts = w.parts(&text).await;
    step(&parts).await;
    let known = |id: String| {
        let store = parts.store.clone();
        async move {
            store
                .run(move |conn| jobs::get(conn, "default", &id))
                .await
                .unwrap()
        }
    };
    assert!(
        known(old.clone()).await.is_some(),
        "recorded by the first cycle"
    );
    w.sim.set_status(&new, Status::Done, None);
    step(&parts).await;
    assert!(
        known(old.clone()).await.is_none(),
        "created 3 days ago, kept 1 day"
    );
    assert!(known(new.clone()).await.is_some());

    w.sim.set_status(&old, Status::Running, None);
    step(&parts).await;
    w.sim
        .set_status(&old, Status::Error, Some("Column 'sku' missing"));
    step(&parts).await;
    let told: Vec<serde_json::Value> = w
        .hook
        .received()
        .iter()
        .map(|h| h.json())
        .filter(|body| body["data"]["job"]["id"] == old.as_str())
        .collect();
    assert_eq!(told.len(), 1, "{told:?}");
    assert_eq!(told[0]["type"], "job.error");
    assert_eq!(told[0]["data"]["previous_status"], "running");
}
