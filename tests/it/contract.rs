//! `docs/contract.md` holds what users rely on (issue 33): its metric table is the series
//! the code exports, no more and no fewer, and what a real receiver gets passes the JSON
//! Schemas under `docs/schemas/` (checked by `check-jsonschema`, from
//! `tests/requirements.txt`).

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use sdm_watch::domain::{ManualClock, Status};
use sdm_watch::sim::NewJob;
use testkit::World;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn read(path: &str) -> String {
    std::fs::read_to_string(Path::new(ROOT).join(path)).unwrap()
}

/// The quoted names in `text` that start with `prefix` (`"sdm_watch_..."`).
fn quoted_names(text: &str, prefix: &str) -> BTreeSet<String> {
    text.split('"')
        .skip(1)
        .step_by(2)
        .filter(|name| {
            name.starts_with(prefix) && name.chars().all(|c| c.is_ascii_lowercase() || c == '_')
        })
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_metric_table_is_every_series_the_code_exports() {
    let mut exported = BTreeSet::new();
    for line in read("src/telemetry.rs").lines() {
        if line.starts_with("pub const ") && line.contains(": &str = \"sdm_watch_") {
            exported.extend(quoted_names(line, "sdm_watch_"));
        }
    }
    exported.extend(quoted_names(&read("src/ops/process.rs"), "process_"));
    assert!(exported.len() > 20, "{exported:?}");
    let documented: BTreeSet<String> = read("docs/contract.md")
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|rest| rest.split('`').next())
        .filter(|name| name.starts_with("sdm_watch_") || name.starts_with("process_"))
        .map(str::to_owned)
        .collect();
    let missing: Vec<_> = exported.difference(&documented).collect();
    let gone: Vec<_> = documented.difference(&exported).collect();
    assert!(
        missing.is_empty() && gone.is_empty(),
        "docs/contract.md's metric table lacks {missing:?} and names {gone:?}, which the code does not export"
    );
}

/// Validates each of `bodies` against `schema` (a path under `docs/schemas/`).
fn check(schema: &str, bodies: &[serde_json::Value]) {
    assert!(!bodies.is_empty(), "nothing to check against {schema}");
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<_> = bodies
        .iter()
        .enumerate()
        .map(|(n, body)| {
            let file = dir.path().join(format!("body-{n}.json"));
            std::fs::write(&file, body.to_string()).unwrap();
            file
        })
        .collect();
    let output = Command::new("python3")
        .args(["-m", "check_jsonschema", "--schemafile"])
        .arg(Path::new(ROOT).join("docs/schemas").join(schema))
        .args(&files)
        .output()
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "(python3 -m pip install -r tests/requirements.txt)\n{}{}\n{bodies:#?}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn what_a_receiver_gets_passes_the_documented_schemas() {
    let w = World::start().await;
    let failing = w
        .sim
        .add_job(NewJob::new(Status::Running).name("Feed").project(17));
    let rows = serde_json::json!([{"sku": "A1", "price": "3.10"}]);
    let done = w.sim.add_job(
        NewJob::new(Status::Running)
            .rows(serde_json::from_value(rows).unwrap())
            .project(17),
    );
    let waiting = w.sim.add_job(NewJob::new(Status::Running));
    let text = w.config(
        "",
        "1h",
        &format!(
            "{ops}[[webhook]]\nname = \"digest\"\nurl = \"{digest}\"\ngroup_wait = \"1m\"\n\
             [output]\nformat_id = 3\ndir = \"{out}\"\n",
            ops = w.ops_hook(),
            digest = w.hook.url("/digest"),
            out = w.dir.path().join("out").display(),
        ),
    );
    let clock = ManualClock::new();
    let parts = testkit::parts_on(&text, &clock).await;
    testkit::step(&parts).await;
    w.sim
        .set_status(&failing, Status::Error, Some("Column 'sku' missing"));
    w.sim.set_status(&done, Status::Done, None);
    w.sim.set_status(&waiting, Status::Pending, None);
    testkit::step(&parts).await;
    // The digest's window closes.
    clock.advance(Duration::from_secs(61));
    parts.worker.deliver_due().await.unwrap();

    let bodies = |path: &str| -> Vec<serde_json::Value> {
        w.hook
            .delivered()
            .iter()
            .filter(|hook| hook.path == path)
            .map(|hook| hook.json())
            .collect()
    };
    let alerts = bodies("/ops");
    let types: BTreeSet<&str> = alerts.iter().filter_map(|b| b["type"].as_str()).collect();
    assert_eq!(
        types,
        BTreeSet::from(["job.done", "job.error", "job.pending"]),
        "{alerts:#?}"
    );
    assert!(alerts.iter().any(|b| b["data"]["output"]["rows"] == 1));
    check("alert.schema.json", &alerts);
    let digests = bodies("/digest");
    assert_eq!(digests.len(), 1, "{digests:#?}");
    assert_eq!(
        digests[0]["data"]["alerts"].as_array().map(Vec::len),
        Some(3)
    );
    check("digest.schema.json", &digests);

    // A body that breaks the contract fails: the check is not a formality.
    let mut broken = alerts[0].clone();
    broken["data"]["job"]["status"] = serde_json::json!(3);
    let failed = std::panic::catch_unwind(|| check("alert.schema.json", &[broken]));
    assert!(
        failed.is_err(),
        "a status that is a number passed the schema"
    );
}
