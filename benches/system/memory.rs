//! Targets 3 and 4: the daemon's memory and store cost over a first cycle and quiet ones; the status page's time.

use super::*;

/// Targets 3 and 4: the daemon's peak RSS over a first cycle and quiet ones, their store
/// time, and what they wrote.
pub(super) async fn memory(figures: &mut Vec<Figure>) {
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
pub(super) async fn status_page(daemon: &Daemon, total: usize) -> Figure {
    let line = daemon
        .lines_with("serving /")
        .pop()
        .expect("the ops listener is on");
    let address = line
        .split("address=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the listener's address in the log");
    let client = testkit::http();
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
pub(super) fn rows_written_since(state: &Path, since_ms: i64) -> i64 {
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
