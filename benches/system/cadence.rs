//! Target 6 and issue 13: requests per hour with the adaptive cadence, latency from a change to its webhook, CPU while idle.

use super::*;

/// Issue 13: API requests per hour with the adaptive cadence (`interval = "60s"`,
/// `active_interval = "5s"`), idle and with a job running throughout, against a fixed 5 s
/// interval. Each is the requests of whole cycles over the time they spanned, from the
/// daemon's own log, three daemons at once.
pub(super) async fn cadence(figures: &mut Vec<Figure>) {
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
pub(super) async fn requests_per_hour(poll: &str, running: bool, cycles: usize) -> f64 {
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
pub(super) async fn latency(figures: &mut Vec<Figure>) {
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
pub(super) async fn idle(figures: &mut Vec<Figure>) {
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
