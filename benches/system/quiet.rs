//! Target 1: requests and time per quiet cycle over a long history.

use super::*;

/// Target 1: requests and time per quiet cycle, whatever the history: 100,000 jobs, and
/// again with 1,000 more in a status sdm-watch does not know and one whose detail always
/// fails. Quiet means nothing changed, and no job was created within the re-check window
/// (16 minutes) whose jobs every cycle lists again.
pub(super) async fn quiet(figures: &mut Vec<Figure>) {
    let total = scaled(100_000, 2_000);
    let strange = scaled(1_000, 20);
    let active = 10;
    let page_size = 100;
    let mut runs: Vec<(Vec<u64>, Vec<u64>)> = Vec::new();
    let mut baseline = 0;
    for with_strange in [false, true] {
        let sim = Simulator::start().await.unwrap();
        let (_, oldest) = history(
            &sim,
            total,
            7.0,
            active - 1,
            true,
            time::Duration::minutes(20),
        );
        if with_strange {
            let now = OffsetDateTime::now_utc() - time::Duration::minutes(20);
            for i in 0..strange {
                let created =
                    now - time::Duration::seconds_f64(7.0 * DAY_S * i as f64 / strange as f64);
                sim.add_job(NewJob::new(Status::Other("cancelled".into())).created(created));
            }
            let broken = sim.add_job(
                NewJob::new(Status::Other("archived".into()))
                    .created(now - time::Duration::days(2)),
            );
            sim.fail_always(
                &format!("/jobs/{broken}/"),
                sdm_watch::sim::Fault::Status(500),
            );
        }
        let dir = workdir();
        // The history is recorded with big pages, to save time; the quiet cycles are
        // measured with the default page size, which the baseline uses too.
        let fill = write_config(dir.path(), "fill.toml", &sim, "page_size = 1000", "");
        once(&fill).await;
        let config = write_config(
            dir.path(),
            "quiet.toml",
            &sim,
            &format!("page_size = {page_size}"),
            "",
        );
        let mut requests = Vec::new();
        let mut millis = Vec::new();
        for _ in 0..5 {
            let run = once(&config).await;
            requests.push(run.requests());
            millis.push(run.cycle_ms());
        }
        // The baseline: one plain listing reaching back to the oldest active job.
        let since = oldest - time::Duration::minutes(10);
        baseline = sim_count(&sim, &format!("created_after={}", api_time(since))).await;
        runs.push((requests, millis));
    }
    let allowed = 2 + active.div_ceil(page_size) as u64;
    let median = |values: &[u64]| {
        let mut sorted = values.to_vec();
        sorted.sort_unstable();
        sorted[sorted.len() / 2]
    };
    let (plain, with_strange) = (&runs[0], &runs[1]);
    let worst = *plain.0.iter().chain(&with_strange.0).max().unwrap();
    figures.push(
        Figure::new(
            "requests per quiet cycle",
            format!(
                "{worst} ({total} jobs over 7 days, {active} active, oldest pending 6 days: {:?}; \
                 with {strange} more in unknown statuses and one whose detail always fails: {:?})",
                plain.0, with_strange.0
            ),
        )
        .target(
            format!("<= {allowed} (2 + ceil(10/{page_size}) + 0)"),
            worst <= allowed,
        )
        .baseline(format!(
            "{} pages (plain created_after window)",
            baseline.div_ceil(page_size)
        )),
    );
    let (plain_ms, strange_ms) = (median(&plain.1), median(&with_strange.1));
    figures.push(
        Figure::new(
            "quiet cycle time, with unknown statuses and a failing detail",
            format!(
                "median {strange_ms} ms against {plain_ms} ms without them (5 cycles each: {:?}, {:?})",
                with_strange.1, plain.1
            ),
        )
        // Within 10% or 30 ms (the rate cap's spacing is 100 ms a request).
        .target(
            "no longer than without them",
            strange_ms <= plain_ms + (plain_ms / 10).max(30),
        ),
    );
}
