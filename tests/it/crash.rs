//! The crash run: the real binary is killed with SIGKILL at random moments (while it lists,
//! commits and delivers) as transitions keep happening, and restarted each time. Every
//! transition must be alerted at least once, a repeated delivery must carry the first one's
//! `webhook-id`, and the state file must be intact after every kill.

use std::collections::HashMap;
use std::time::Duration;

use sdm_watch::domain::Status;
use sdm_watch::sim::{NewJob, Reply};

use testkit::Daemon;
use testkit::World;

#[tokio::test]
async fn killed_twenty_times_nothing_is_lost() {
    let w = World::start().await;
    let mut rng = fastrand::Rng::with_seed(42);
    let mut waiting: Vec<String> = (0..120)
        .map(|n| {
            w.sim
                .add_job(NewJob::new(Status::Running).name(format!("job {n}")))
        })
        .collect();
    let text = w.config("", "1h", &w.ops_hook()).replace(
        "max_requests_per_second = 10",
        "max_requests_per_second = 10\npage_size = 10",
    );
    // A slow receiver, so that kills also land while deliveries are in flight.
    w.hook
        .set_default(Reply::After(Duration::from_millis(150), 200));
    let config = w.dir.path().join("config.toml");
    std::fs::write(&config, &text).unwrap();
    let state = w.dir.path().join("state.db");

    let first = Daemon::start(&config, &[]);
    first.wait_for_log("poll cycle done", 1).await;
    first.kill().await;

    // Each job changes once, so every change must be seen by some cycle.
    let mut expected: HashMap<String, String> = HashMap::new();
    let kills = 20;
    for _ in 0..kills {
        let daemon = Daemon::start(&config, &[]);
        let lifetime = Duration::from_millis(rng.u64(300..2_000));
        let deadline = tokio::time::Instant::now() + lifetime;
        while tokio::time::Instant::now() < deadline {
            if let Some(id) =
                (!waiting.is_empty()).then(|| waiting.swap_remove(rng.usize(..waiting.len())))
            {
                let status = [Status::Done, Status::Error, Status::Pending][rng.usize(..3)].clone();
                w.sim
                    .set_status(&id, status.clone(), Some("killed in the middle"));
                expected.insert(id, status.to_string());
            }
            tokio::time::sleep(Duration::from_millis(rng.u64(20..150))).await;
        }
        daemon.kill().await;
        let conn = rusqlite::Connection::open(&state).expect("the state file opens after a kill");
        let check: String = conn
            .query_row("PRAGMA integrity_check", [], |row| row.get(0))
            .unwrap();
        assert_eq!(check, "ok", "the state file is intact after a kill");
    }

    // A last, undisturbed run delivers whatever is still owed: every expected change at
    // least once (repeated deliveries count once).
    let last = Daemon::start(&config, &[]);
    let owed = |delivered: &[sdm_watch::sim::ReceivedWebhook]| {
        let told: std::collections::HashSet<(String, String)> = delivered
            .iter()
            .map(|hook| {
                let body = hook.json();
                (
                    body["data"]["job"]["id"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    body["data"]["job"]["status"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                )
            })
            .collect();
        expected
            .iter()
            .filter(|(job, status)| !told.contains(&((*job).clone(), (*status).clone())))
            .count()
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while owed(&w.hook.delivered()) > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let delivered = w.hook.delivered();
    tokio::time::sleep(Duration::from_millis(1_500)).await; // and nothing more arrives
    last.stop().await;
    let delivered_after = w.hook.delivered();

    let mut first_id: HashMap<(String, String), String> = HashMap::new();
    let mut duplicates = 0;
    for hook in &delivered_after {
        let body = hook.json();
        let key = (
            body["data"]["job"]["id"].as_str().unwrap().to_owned(),
            body["data"]["job"]["status"].as_str().unwrap().to_owned(),
        );
        let id = hook.header("webhook-id").unwrap().to_owned();
        match first_id.get(&key) {
            Some(first) => {
                duplicates += 1;
                assert_eq!(
                    first, &id,
                    "a repeated delivery carries the first one's webhook-id"
                );
            }
            None => {
                first_id.insert(key, id);
            }
        }
    }
    for (job, status) in &expected {
        assert!(
            first_id.contains_key(&(job.clone(), status.clone())),
            "{job} -> {status} was never alerted"
        );
    }
    assert_eq!(
        first_id.len(),
        expected.len(),
        "no alert for a change that did not happen"
    );
    println!(
        "crash run: {kills} SIGKILLs, {} transitions, {} alerted, 0 lost, {duplicates} duplicate deliveries (same webhook-id), {} delivered in all",
        expected.len(),
        first_id.len(),
        delivered.len().max(delivered_after.len())
    );
    assert!(
        expected.len() >= 20,
        "enough transitions: {}",
        expected.len()
    );
}
