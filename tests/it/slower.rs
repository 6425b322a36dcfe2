//! `poll.running_longer_than_usual` (issue 25): a running job is told of once it has run
//! longer than the factor times its project's usual, the p95 of the project's last 50
//! completed runs, and only once the project has 10 of them; the alert carries its basis.

use std::time::Duration;

use sdm_watch::domain::{ManualClock, Status};
use sdm_watch::sim::NewJob;
use testkit::{World, parts_on, step};

fn minutes(m: i64) -> time::Duration {
    time::Duration::minutes(m)
}

#[tokio::test]
async fn a_job_slower_than_its_project_usually_is_told_once_with_the_basis() {
    let w = World::start().await;
    // Project 17: 12 runs of 10 to 21 minutes (p95 by nearest rank: 21 minutes).
    for m in 10..22 {
        let created = w.sim.now() - minutes(m);
        w.sim
            .add_job(NewJob::new(Status::Done).project(17).created(created));
    }
    // Project 18: 9 runs, one short of the 10 the rule needs.
    for _ in 0..9 {
        let created = w.sim.now() - minutes(1);
        w.sim
            .add_job(NewJob::new(Status::Done).project(18).created(created));
    }
    // Project 19: 10 runs of 100 minutes that completed two hours ago, then 50 runs of 10
    // minutes: only the last 50 count, so its usual is 10 minutes, not 100.
    w.sim.advance(-minutes(120));
    for _ in 0..10 {
        let created = w.sim.now() - minutes(100);
        w.sim
            .add_job(NewJob::new(Status::Error).project(19).created(created));
    }
    w.sim.advance(minutes(120));
    for _ in 0..50 {
        let created = w.sim.now() - minutes(10);
        w.sim
            .add_job(NewJob::new(Status::Done).project(19).created(created));
    }
    let slow17 = w.sim.add_job(NewJob::new(Status::Running).project(17));
    let _young18 = w.sim.add_job(NewJob::new(Status::Running).project(18));
    let slow19 = w.sim.add_job(NewJob::new(Status::Running).project(19));

    let text = w.config("running_longer_than_usual = 3.0", "1h", &w.ops_hook());
    let clock = ManualClock::new();
    let parts = parts_on(&text, &clock).await;
    let told = || -> Vec<serde_json::Value> {
        w.hook
            .received()
            .iter()
            .map(|h| h.json())
            .filter(|body| body["type"] == "job.running_long")
            .collect()
    };
    step(&parts).await;
    clock.advance(Duration::from_secs(29 * 60));
    step(&parts).await;
    assert!(told().is_empty(), "29 minutes is under 3 x 10 minutes");

    clock.advance(Duration::from_secs(2 * 60)); // 31 minutes: over project 19's 30
    step(&parts).await;
    let alerts = told();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0]["data"]["job"]["id"], slow19.as_str());
    let usual = &alerts[0]["data"]["usual"];
    assert_eq!(usual["p95_seconds"], 600, "the last 50 runs: {usual}");
    assert_eq!(usual["runs"], 50);
    assert_eq!(usual["factor"], 3.0);
    let running = usual["running_seconds"].as_u64().unwrap();
    assert!((31 * 60..33 * 60).contains(&running), "{running}");

    clock.advance(Duration::from_secs(33 * 60)); // 64 minutes: over project 17's 63
    step(&parts).await;
    step(&parts).await;
    let alerts = told();
    assert_eq!(alerts.len(), 2, "job 19 is told once: {alerts:?}");
    assert_eq!(alerts[1]["data"]["job"]["id"], slow17.as_str());
    assert_eq!(alerts[1]["data"]["usual"]["p95_seconds"], 21 * 60);
    assert_eq!(alerts[1]["data"]["usual"]["runs"], 12);

    clock.advance(Duration::from_secs(10 * 3600));
    step(&parts).await;
    assert_eq!(told().len(), 2, "project 18 has too few runs to judge");
}
