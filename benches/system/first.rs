//! Target 2: the first cycle against the floor (each job read once).

use super::*;

/// Fetches every page of the first cycle's listings, each job once (the running and
/// pending jobs created before `since`, then every job created since), with one
/// keep-alive connection, at most `rate` requests a second (or as fast as it can); the
/// time it took and the pages.
pub(super) async fn bare_fetch(
    sim: &Simulator,
    since: OffsetDateTime,
    page_size: u32,
    rate: Option<f64>,
) -> (Duration, usize) {
    let http = testkit::http_with(|builder| builder.pool_max_idle_per_host(1));
    let before = api_time(since + time::Duration::microseconds(1));
    let listings = [
        format!("status=running&created_before={before}&page_size={page_size}"),
        format!("status=pending&created_before={before}&page_size={page_size}"),
        format!("created_after={}&page_size={page_size}", api_time(since)),
    ];
    let started = tokio::time::Instant::now();
    let mut pages = 0;
    for query in listings {
        let mut url = Some(format!("{}jobs/?{query}", sim.base_url()));
        while let Some(next) = url.take() {
            if let Some(rate) = rate {
                tokio::time::sleep_until(started + Duration::from_secs_f64(pages as f64 / rate))
                    .await;
            }
            let page = sim_get(&http, sim, next).await;
            pages += 1;
            url = page["next"].as_str().map(str::to_owned);
        }
    }
    (started.elapsed(), pages)
}

/// Target 2: the first cycle over 20,000 jobs against the floor (each job read once), with
/// 10 of them active, and with half of them active.
pub(super) async fn first(figures: &mut Vec<Figure>) {
    first_with(figures, 10, "").await;
    first_with(figures, scaled(20_000, 500) / 2, ", half active").await;
}

pub(super) async fn first_with(figures: &mut Vec<Figure>, active: usize, label: &str) {
    let total = scaled(20_000, 500);
    let page_size = 1000;
    let sim = Simulator::start().await.unwrap();
    history(&sim, total, 6.9, active, false, RECENT);
    let since = OffsetDateTime::now_utc() - time::Duration::days(7);
    let (floor, pages) = bare_fetch(&sim, since, page_size, Some(10.0)).await;
    let (unpaced, _) = bare_fetch(&sim, since, page_size, None).await;
    let dir = workdir();
    let config = write_config(
        dir.path(),
        "config.toml",
        &sim,
        &format!("page_size = {page_size}"),
        "",
    );
    let run = once(&config).await;
    let ratio = run.wall.as_secs_f64() / floor.as_secs_f64();
    figures.push(
        Figure::new(
            format!("first cycle, 20,000 jobs{label}: time"),
            format!(
                "{:.2} s = {ratio:.2} x floor ({pages} pages of {page_size}: running, pending, the lookback; process start to exit)",
                run.wall.as_secs_f64()
            ),
        )
        .target("<= 1.05 x floor", ratio <= 1.05)
        .baseline(format!(
            "floor {:.2} s at 10 req/s; {:.2} s unpaced",
            floor.as_secs_f64(),
            unpaced.as_secs_f64()
        )),
    );
    figures.push(
        Figure::new(
            format!("first cycle, 20,000 jobs{label}: peak RSS"),
            format!("{:.1} MiB (sdm-watch once)", mib(run.peak_kib)),
        )
        .target("<= 32 MiB", run.peak_kib <= 32 * 1024),
    );
}
