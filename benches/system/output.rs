//! Output rows: `jobs data` of a million rows, and saving a done job's rows.

use super::*;

/// `sdm-watch jobs data` of a million rows, as JSON and as CSV, to /dev/null: peak RSS.
// The child is reaped with wait4 (see `testkit::process::reap`), which clippy cannot see.
#[allow(clippy::zombie_processes)]
pub(super) async fn cli_data(figures: &mut Vec<Figure>) {
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
pub(super) async fn output_rows(figures: &mut Vec<Figure>) {
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
