//! Output data of done jobs: saved whole and atomically, summarised in the alert, attached
//! to the e-mail as CSV, failures alerted without it, old files expired.

use std::time::{Duration, SystemTime};

use sdm_watch::domain::{Row, Status};
use sdm_watch::sim::{Fault, NewJob, generated_row};

use testkit::{World, step};

fn rows(value: serde_json::Value) -> Vec<Row> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row.as_object().cloned().unwrap())
        .collect()
}

fn output_section(w: &World, extra: &str) -> String {
    format!(
        "[output]\nformat_id = 3\ndir = \"{}\"\n{extra}\n",
        w.dir.path().join("out").display()
    )
}

#[tokio::test]
async fn a_done_job_s_rows_are_saved_summarised_and_attached_as_csv() {
    let w = World::start().await;
    let served = rows(serde_json::json!([
        {"sku": "A1", "price": "3.10"},
        {"sku": "B2", "color": "red, dark"},
        {"price": "9", "size": "L"}
    ]));
    let job = w.sim.add_job(
        NewJob::new(Status::Running)
            .name("Feed")
            .rows(served.clone()),
    );
    let text = w.config(
        "",
        "1h",
        &format!("{}{}", w.standard_channels(), output_section(&w, "")),
    );
    let parts = w.parts(&text).await;
    step(&parts).await;
    w.sim.set_status(&job, Status::Done, None);
    step(&parts).await;

    let file = w.dir.path().join("out").join(format!("{job}.json"));
    let saved: Vec<Row> = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(
        saved, served,
        "the rows on disk are the rows the API served"
    );
    assert!(
        w.sim
            .requests()
            .iter()
            .any(|r| r.path == format!("/api/v1/jobs/{job}/data/3/"))
    );

    let body = w.hook.received()[0].json();
    assert_eq!(body["type"], "job.done");
    assert_eq!(
        body["data"]["output"],
        serde_json::json!({
            "format_id": 3,
            "rows": 3,
            "columns": ["sku", "price", "color", "size"],
            "file": file.display().to_string(),
        })
    );
    assert!(body["data"].get("output_error").is_none());

    let mail = &w.smtp.wait_for(1, Duration::from_secs(5)).await[0];
    let csv = mail
        .attachment(&format!("{job}.csv"))
        .unwrap_or_else(|| panic!("a CSV attachment in\n{}", mail.data));
    assert_eq!(
        csv,
        "sku,price,color,size\r\nA1,3.10,,\r\nB2,,\"red, dark\",\r\n,9,,L\r\n"
    );
    let text = mail.body();
    assert!(
        text.contains("3 rows; columns: sku, price, color, size"),
        "{text}"
    );
    assert!(text.contains(&file.display().to_string()), "{text}");
}

#[tokio::test]
async fn a_file_over_the_limit_is_named_not_attached() {
    let w = World::start().await;
    let job = w
        .sim
        .add_job(NewJob::new(Status::Running).generated_rows(100));
    let text = w.config(
        "",
        "1h",
        &format!(
            "{}{}",
            w.standard_channels(),
            output_section(&w, "email_attach_max_bytes = 1000")
        ),
    );
    let parts = w.parts(&text).await;
    step(&parts).await;
    w.sim.set_status(&job, Status::Done, None);
    step(&parts).await;
    let mail = &w.smtp.wait_for(1, Duration::from_secs(5)).await[0];
    assert!(mail.attachment(&format!("{job}.csv")).is_none());
    let text = mail.body();
    assert!(
        text.contains("not attached") && text.contains("email_attach_max_bytes"),
        "{text}"
    );
    assert!(
        text.contains(&format!("{job}.json")),
        "the body names the file: {text}"
    );
}

#[tokio::test]
async fn readers_never_see_a_half_written_file_during_a_slow_download() {
    let w = World::start().await;
    let job = w
        .sim
        .add_job(NewJob::new(Status::Running).generated_rows(30_000));
    let out = w.dir.path().join("out");
    let text = w.config("", "1h", &output_section(&w, ""));
    let parts = w.parts(&text).await;
    step(&parts).await;
    let file = out.join(format!("{job}.json"));
    std::fs::write(&file, r#"[{"old": "content"}]"#).unwrap();
    // About 32 chunks 100 ms apart: longer than the 2 s api.timeout, which must bound each
    // wait for bytes, not the whole download.
    w.sim.set_data_chunk_delay(Some(Duration::from_millis(100)));
    let started = std::time::Instant::now();
    w.sim.set_status(&job, Status::Done, None);

    let cycle = tokio::spawn(async move {
        parts.watcher().cycle().await.unwrap();
        parts
    });
    let mut reads = 0;
    let mut saw_partial_file = false;
    while !cycle.is_finished() {
        let content = std::fs::read(&file).unwrap();
        let rows: Vec<Row> = serde_json::from_slice(&content).unwrap_or_else(|e| {
            panic!("a reader saw a broken file ({e}), {} bytes", content.len())
        });
        assert!(
            rows.len() == 1 || rows.len() == 30_000,
            "{} rows",
            rows.len()
        );
        saw_partial_file |= std::fs::read_dir(&out)
            .unwrap()
            .any(|e| e.unwrap().file_name().to_string_lossy().ends_with(".part"));
        reads += 1;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    cycle.await.unwrap();
    assert!(
        started.elapsed() > Duration::from_secs(2),
        "longer than api.timeout"
    );
    assert!(
        reads > 20,
        "the download was slow enough to watch ({reads} reads)"
    );
    assert!(
        saw_partial_file,
        "the rows were written beside the file first"
    );
    let rows: Vec<Row> = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(rows.len(), 30_000);
    assert_eq!(rows[29_999], generated_row(29_999));
    let leftovers: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "no partial file left: {leftovers:?}");
}

#[tokio::test]
async fn when_the_rows_cannot_be_fetched_the_alert_goes_out_without_them() {
    let w = World::start().await;
    let job = w.sim.add_job(NewJob::new(Status::Running));
    let text = w
        .config(
            "",
            "1h",
            &format!("{}{}", w.standard_channels(), output_section(&w, "")),
        )
        .replace("max_elapsed = \"5s\"", "max_elapsed = \"1s\"");
    let parts = w.parts(&text).await;
    step(&parts).await;
    w.sim.set_fault_target(Some("/data/"));
    w.sim.set_fault_rate(
        1.0,
        vec![Fault::Status(502), Fault::Truncated, Fault::NotJson],
        3,
    );
    w.sim.set_status(&job, Status::Done, None);
    step(&parts).await;
    assert!(
        w.hook.received().is_empty(),
        "the alert waits while the rows may still come"
    );
    // Each cycle tries again; retry.max_elapsed (1 s) after the change, the alert goes
    // out without them.
    for _ in 0..10 {
        if !w.hook.received().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        step(&parts).await;
    }

    let hooks = w.hook.received();
    assert_eq!(hooks.len(), 1, "the alert went out");
    let body = hooks[0].json();
    assert!(
        body["data"]["output"].is_null() && body["data"].get("output").is_some(),
        "{body}"
    );
    let error = body["data"]["output_error"].as_str().unwrap();
    assert!(error.contains("gave up"), "{error}");
    let data_requests = w
        .sim
        .requests()
        .iter()
        .filter(|r| r.path.contains("/data/"))
        .count();
    assert!(data_requests >= 3, "retried first: {data_requests}");
    let mail = &w.smtp.wait_for(1, Duration::from_secs(5)).await[0];
    assert!(
        mail.body().contains("could not be fetched"),
        "{}",
        mail.body()
    );
    let out: Vec<_> = std::fs::read_dir(w.dir.path().join("out"))
        .unwrap()
        .collect();
    assert!(out.is_empty(), "no partial file left behind");
}

#[tokio::test]
async fn per_project_formats_and_retention() {
    let w = World::start().await;
    let in_17 = w
        .sim
        .add_job(NewJob::new(Status::Running).project(17).generated_rows(5));
    let in_18 = w
        .sim
        .add_job(NewJob::new(Status::Running).project(18).generated_rows(5));
    let out = w.dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let aged = |name: &str, age: Duration| {
        let path = out.join(name);
        std::fs::write(&path, "[]").unwrap();
        let file = std::fs::File::options().write(true).open(&path).unwrap();
        file.set_modified(SystemTime::now() - age).unwrap();
        path
    };
    let old = aged("old-job.json", Duration::from_secs(3 * 86_400));
    let recent = aged("recent-job.json", Duration::from_secs(3_600));
    let crashed = aged(".crashed.json.0123.part", Duration::from_secs(7_200));
    let unrelated = aged("README.txt", Duration::from_secs(30 * 86_400));
    let text = w.config(
        "",
        "1h",
        &format!(
            "[[webhook]]\nname = \"ops\"\nurl = \"{}\"\n[output]\nprojects = {{ \"17\" = 5 }}\ndir = \"{}\"\nretention = \"2d\"\n",
            w.hook.url("/ops"),
            out.display()
        ),
    );
    let parts = w.parts(&text).await;
    step(&parts).await;
    assert!(
        !old.exists() && !crashed.exists(),
        "expired files removed once per cycle"
    );
    assert!(
        recent.exists() && unrelated.exists(),
        "only old outputs and partial files go"
    );

    w.sim.set_status(&in_17, Status::Done, None);
    w.sim.set_status(&in_18, Status::Done, None);
    step(&parts).await;
    assert!(
        w.sim
            .requests()
            .iter()
            .any(|r| r.path == format!("/api/v1/jobs/{in_17}/data/5/"))
    );
    assert!(
        !w.sim
            .requests()
            .iter()
            .any(|r| r.path.contains(&format!("{in_18}/data/"))),
        "no format for project 18"
    );
    for hook in w.hook.received() {
        let body = hook.json();
        let has_output = body["data"].get("output").is_some();
        assert_eq!(
            has_output,
            body["data"]["job"]["id"] == in_17.as_str(),
            "{body}"
        );
    }
}
