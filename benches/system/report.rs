//! Issue 25: `sdm-watch report --since 365d` over a year of recorded jobs (200,000 at full
//! size): how long it takes and its peak RSS, measured from outside.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sdm_watch::domain::Status;
use sdm_watch::domain::time::{format_api_time, micros, millis};
use sdm_watch::store::Store;
use sdm_watch::store::jobs::{self, TrackedJob};
use testkit::process;
use time::OffsetDateTime;

use super::{Figure, mib, scaled, workdir};

// The child is reaped with wait4 (see `testkit::process::reap`), which clippy cannot see.
#[allow(clippy::zombie_processes)]
pub async fn report(figures: &mut Vec<Figure>) {
    let count = scaled(200_000, 2_000);
    let dir = workdir();
    let state = dir.path().join("state.db");
    let store = Store::open(&state).unwrap();
    let now = OffsetDateTime::now_utc();
    store
        .run(move |conn| {
            conn.transaction(|tx| {
                for n in 0..count {
                    // Spread over a year; one in five failed, with messages of a few shapes.
                    let created =
                        now - time::Duration::minutes((n as i64 * 525_600) / count as i64);
                    let status = match n % 10 {
                        0 | 1 => Status::Error,
                        2 => Status::Pending,
                        3 => Status::Running,
                        _ => Status::Done,
                    };
                    let finished = matches!(status, Status::Done | Status::Error);
                    let took = time::Duration::seconds(60 + (n as i64 * 7919) % 7200);
                    let job = TrackedJob {
                        id: format!("{n:08}-bench-job"),
                        status: status.clone(),
                        name: Some(format!("Supplier feed {}", n % 500)),
                        project: Some((n % 40) as i64),
                        project_checked: true,
                        creation_date: Some(format_api_time(created)),
                        completion_date: finished.then(|| format_api_time(created + took)),
                        created_us: Some(micros(created)),
                        message: (status == Status::Error).then(|| {
                            format!(
                                "Column 'c{}' missing in row {} of /in/f{n}.csv",
                                n % 30,
                                n % 977
                            )
                        }),
                        step: None,
                        since_ms: Some(millis(created)),
                        reminders: 0,
                        completed_us: None,
                        pending_ms: 0,
                    };
                    jobs::upsert(tx, "default", &job, 0)?;
                }
                Ok(())
            })
        })
        .await
        .unwrap();
    drop(store);
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[api]\ntoken = \"t\"\n[state]\npath = \"{}\"\n",
            state.display()
        ),
    )
    .unwrap();
    let (peak_kib, wall) = tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let child = Command::new(testkit::cli::binary())
            .arg("--config")
            .arg(&config)
            .args(["report", "--since", "365d", "--json"])
            .stdout(Stdio::null())
            .spawn()
            .expect("sdm-watch starts");
        let peak = process::follow_peak(child.id());
        let code = process::reap(child.id(), Duration::from_secs(3600)).expect("it exits");
        assert_eq!(code, 0, "report failed");
        (peak.join().unwrap(), started.elapsed())
    })
    .await
    .unwrap();
    figures.push(
        Figure::new(
            format!("report --since 365d over {count} jobs"),
            format!(
                "{:.2} s, peak RSS {:.1} MiB",
                wall.as_secs_f64(),
                mib(peak_kib)
            ),
        )
        .target("peak RSS <= 32 MiB", peak_kib <= 32 * 1024),
    );
}
