//! Issue 22: many organisations in one process.

use super::*;

/// 1,000 organisations in one process, each with its own token, on one simulator: the
/// quiet cycle's cost per organisation, CPU and peak RSS at a 60 s interval.
/// A config in `dir` for `count` organisations served by `sim` (its first, then new
/// ones), named `org0`, `org1`, ..., each with three old finished jobs, polled every
/// `interval` seconds: their names and the config's path.
pub(super) fn organisations_config(
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

pub(super) async fn organisations(figures: &mut Vec<Figure>) {
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
