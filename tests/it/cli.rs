//! `sdm-watch jobs ...` through the real binary against the simulator.

use sdm_watch::domain::Status;
use sdm_watch::sim::{NewJob, Simulator};
use time::macros::datetime;

use testkit::cli::{sdm_watch, stderr, stdout};
use testkit::config::config_text;

#[tokio::test]
async fn jobs_list_prints_a_table_and_json_with_filters() {
    let sim = Simulator::start().await.unwrap();
    let failed = sim.add_job(
        NewJob::new(Status::Error)
            .name("Supplier feed")
            .project(17)
            .created(datetime!(2026-11-28 10:01:00.123456 UTC)),
    );
    let waiting = sim.add_job(NewJob::new(Status::Pending).name("Price list"));
    let config = config_text(&sim, "page_size = 1", "");

    let output = sdm_watch(&config, &["jobs", "list"], &[]).await;
    let table = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("ID") && lines[0].contains("STATUS"),
        "{table}"
    );
    let row = lines
        .iter()
        .find(|line| line.starts_with(&failed))
        .expect("failed job listed");
    for cell in ["error", "17", "2026-11-28 10:01:00", "Supplier feed"] {
        assert!(row.contains(cell), "{cell} missing from {row}");
    }
    assert!(table.contains(&waiting), "{table}");
    assert!(table.ends_with("2 jobs\n"), "{table}");

    let output = sdm_watch(
        &config,
        &[
            "jobs",
            "list",
            "--status",
            "error",
            "--project",
            "17",
            "--json",
        ],
        &[],
    )
    .await;
    let jobs: serde_json::Value = serde_json::from_str(&stdout(&output)).expect("JSON");
    assert_eq!(jobs.as_array().unwrap().len(), 1);
    assert_eq!(jobs[0]["id"], failed.as_str());
    assert_eq!(jobs[0]["creation_date"], "2026-11-28T10:01:00.123456Z");

    let output = sdm_watch(&config, &["jobs", "list", "--status", "finished"], &[]).await;
    assert_eq!(output.status.code(), Some(2), "a bad status is bad usage");
}

#[tokio::test]
async fn jobs_show_gives_the_error_message() {
    let sim = Simulator::start().await.unwrap();
    let id = sim.add_job(NewJob::new(Status::Error).message("Column 'sku' missing"));
    let output = sdm_watch(&config_text(&sim, "", ""), &["jobs", "show", &id], &[]).await;
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(text.contains("status:  error"), "{text}");
    assert!(text.contains("message: Column 'sku' missing"), "{text}");

    let output = sdm_watch(
        &config_text(&sim, "", ""),
        &["jobs", "show", "no-such-job"],
        &[],
    )
    .await;
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("not found"), "{}", stderr(&output));
}

#[tokio::test]
async fn jobs_data_as_csv_has_the_union_of_columns() {
    let sim = Simulator::start().await.unwrap();
    let rows = serde_json::json!([
        {"sku": "A1", "price": "3.10"},
        {"sku": "B2", "color": "red"},
        {"price": "9", "size": "L"},
        {"sku": "=cmd|' /C calc'!A0", "price": "-2"}
    ]);
    let rows = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row.as_object().cloned().unwrap())
        .collect();
    let id = sim.add_job(NewJob::new(Status::Done).rows(rows));
    let config = config_text(&sim, "", "");

    let output = sdm_watch(&config, &["jobs", "data", &id, "3", "--csv"], &[]).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(
        stdout(&output),
        "sku,price,color,size\r\nA1,3.10,,\r\nB2,,red,\r\n,9,,L\r\n'=cmd|' /C calc'!A0,-2,,\r\n",
        "a formula is neutralised for a spreadsheet, a negative number is not"
    );
    let raw = sdm_watch(&config, &["jobs", "data", &id, "3", "--csv-raw"], &[]).await;
    assert!(
        stdout(&raw).ends_with("\r\n=cmd|' /C calc'!A0,-2,,\r\n"),
        "{}",
        stdout(&raw)
    );

    let output = sdm_watch(&config, &["jobs", "data", &id, "3"], &[]).await;
    let json: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(json[1]["color"], "red");
}

#[tokio::test]
async fn jobs_data_streams_through_a_spill_file_it_removes_and_prints_no_progress_to_a_pipe() {
    let sim = Simulator::start().await.unwrap();
    let id = sim.add_job(NewJob::new(Status::Done).generated_rows(2_000));
    let empty = sim.add_job(NewJob::new(Status::Done).rows(Vec::new()));
    let config = config_text(&sim, "", "");
    let tmp = tempfile::tempdir().unwrap();
    let env = [("TMPDIR", tmp.path().to_str().unwrap())];

    let output = sdm_watch(&config, &["jobs", "data", &id, "3"], &env).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(
        stderr(&output),
        "",
        "no progress when stderr is not a terminal"
    );
    let rows: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 2_000);
    assert_eq!(
        stdout(&output),
        format!("{}\n", serde_json::to_string_pretty(&rows).unwrap()),
        "the same bytes as pretty-printing the whole array"
    );
    let csv = sdm_watch(&config, &["jobs", "data", &id, "3", "--csv"], &env).await;
    assert_eq!(
        stdout(&csv).lines().count(),
        2_001,
        "a header and a line a row"
    );
    let none = sdm_watch(&config, &["jobs", "data", &empty, "3"], &env).await;
    assert_eq!(stdout(&none), "[]\n");
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert!(leftovers.is_empty(), "spill files left: {leftovers:?}");
}

/// Runs the binary with a pseudo-terminal for stdin, stdout and stderr (util-linux
/// `script`), returning what the terminal showed.
fn on_a_terminal(config: &str, args: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, config).unwrap();
    let command = format!(
        "{} --config {} {args}",
        testkit::cli::binary().display(),
        path.display()
    );
    let output = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .output()
        .expect("util-linux `script` runs (a pseudo-terminal for the progress test)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test]
async fn jobs_list_and_data_show_progress_on_a_terminal() {
    let sim = Simulator::start().await.unwrap();
    for _ in 0..25 {
        sim.add_job(NewJob::new(Status::Running));
    }
    let id = sim.add_job(NewJob::new(Status::Done).generated_rows(500));
    let config = config_text(&sim, "page_size = 10", "");
    let listed = tokio::task::spawn_blocking({
        let config = config.clone();
        move || on_a_terminal(&config, "jobs list")
    })
    .await
    .unwrap();
    assert!(listed.contains("listed 26 jobs in 3 pages"), "{listed}");
    let data = tokio::task::spawn_blocking(move || {
        on_a_terminal(&config, &format!("jobs data {id} 3 --csv"))
    })
    .await
    .unwrap();
    assert!(data.contains("500 rows written"), "{data}");
}

#[tokio::test]
async fn an_unreachable_api_is_a_runtime_failure_with_the_reason() {
    let sim = Simulator::start().await.unwrap();
    let config =
        config_text(&sim, "", "").replace("max_elapsed = \"5s\"", "max_elapsed = \"300ms\"");
    sim.stop().await;
    let output = sdm_watch(&config, &["jobs", "list"], &[]).await;
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{message}");
    assert!(
        message.contains("listing jobs failed") && message.contains("gave up"),
        "{message}"
    );
}
