//! Issue 16: replicas on PostgreSQL.

use super::*;

/// `config` with its SQLite `[state]` replaced by PostgreSQL at `url`, leasing for `lease`.
pub(super) fn on_postgres(config: &Path, url: &str, lease: &str) -> PathBuf {
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
pub(super) async fn quiet_store_time(config: &Path, cycles: usize) -> (u64, u64) {
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
pub(super) async fn replicas(figures: &mut Vec<Figure>) {
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
