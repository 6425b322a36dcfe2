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
        testkit::delivered::change_for(
            &w.sim,
            &mut rng,
            &mut waiting,
            &mut expected,
            lifetime,
            "killed in the middle",
        )
        .await;
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
    let delivered = testkit::delivered::wait_for(&w.hook, &expected, Duration::from_secs(60)).await;
    last.stop().await;
    let duplicates = testkit::delivered::assert_each_once(&delivered, &expected);
    println!(
        "crash run: {kills} SIGKILLs, {} transitions, {} alerted, 0 lost, {duplicates} duplicate deliveries (same webhook-id), {} delivered in all",
        expected.len(),
        expected.len(),
        delivered.len()
    );
    assert!(
        expected.len() >= 20,
        "enough transitions: {}",
        expected.len()
    );
}
