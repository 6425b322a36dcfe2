//! PostgreSQL failing over under the replicas (issue 34): a primary with a synchronous
//! streaming standby, `state.url` naming both, the primary killed with SIGKILL in the
//! middle of a burst of changes and the standby promoted (`pg_ctl promote`), as Patroni or
//! a managed service's Multi-AZ would. Nothing is lost or alerted twice, polling resumes,
//! the fencing tokens only go up, and a former primary that comes back writable is not
//! written to.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sdm_watch::domain::Status;
use sdm_watch::sim::{NewJob, ReceivedWebhook, Reply};
use sdm_watch::store::postgres::{self, PgSettings, lease};
use sdm_watch::store::{Store, StoreError};
use testkit::postgres::Postgres;
use testkit::{Daemon, World};

/// Both servers, the first in the list first.
fn url(first: &Postgres, second: &Postgres) -> String {
    format!(
        "postgres://postgres@127.0.0.1:{},127.0.0.1:{}/postgres",
        first.port, second.port
    )
}

/// Deliveries about jobs (the watcher's own alerts aside).
fn about_jobs(delivered: &[ReceivedWebhook]) -> Vec<ReceivedWebhook> {
    delivered
        .iter()
        .filter(|hook| {
            hook.json()["type"]
                .as_str()
                .is_some_and(|t| t.starts_with("job."))
        })
        .cloned()
        .collect()
}

fn of_type(delivered: &[ReceivedWebhook], kind: &str) -> Vec<serde_json::Value> {
    delivered
        .iter()
        .map(ReceivedWebhook::json)
        .filter(|body| body["type"] == kind)
        .collect()
}

fn replica_config(w: &World, url: &str, alert_after: &str) -> PathBuf {
    w.replica_config(url, &format!("[watchdog]\nalert_after = \"{alert_after}\""))
}

/// Reads the `poller` lease on whichever server is the primary, every 50 ms, until
/// dropped: the tokens it saw, in order.
struct TokenWatch {
    seen: Arc<std::sync::Mutex<Vec<(i64, String)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl TokenWatch {
    fn start(url: &str) -> TokenWatch {
        let settings = PgSettings::parse(url, None).unwrap();
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let into = seen.clone();
        let task = tokio::spawn(async move {
            let mut client = None;
            loop {
                if client.is_none() {
                    client = postgres::connect(&settings).await.ok();
                }
                if let Some(c) = &client {
                    match lease::holder(c, "poller").await {
                        Ok(Some(holder)) => {
                            into.lock().unwrap().push((holder.token, holder.holder))
                        }
                        Ok(None) => {}
                        Err(_) => client = None,
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        TokenWatch { seen, task }
    }

    /// Every token read is at least the one before, and each token has one holder.
    fn assert_monotonic(&self) -> Vec<i64> {
        let seen = self.seen.lock().unwrap().clone();
        let mut holders: HashMap<i64, String> = HashMap::new();
        for pair in seen.windows(2) {
            assert!(
                pair[1].0 >= pair[0].0,
                "the fencing token went back: {pair:?}"
            );
        }
        for (token, holder) in &seen {
            let first = holders.entry(*token).or_insert_with(|| holder.clone());
            assert_eq!(first, holder, "token {token} was held by two replicas");
        }
        let mut tokens: Vec<i64> = holders.into_keys().collect();
        tokens.sort_unstable();
        tokens
    }
}

impl Drop for TokenWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Waits until a delivery tells `job` is `status`; when it arrived.
async fn delivered_at(w: &World, job: &str, status: &str, within: Duration) -> Instant {
    let deadline = Instant::now() + within;
    loop {
        let told = w
            .hook
            .delivered()
            .iter()
            .any(|hook| testkit::delivered::told(hook) == (job.to_owned(), status.to_owned()));
        if told {
            return Instant::now();
        }
        assert!(
            Instant::now() < deadline,
            "{job} was not alerted {status} within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A change made right after the promotion, and how long after it its alert arrived.
async fn resumed_after(w: &World, waiting: &mut Vec<String>, promoted: Instant) -> Duration {
    let marker = waiting.pop().expect("a running job left");
    w.sim.set_status(&marker, Status::Done, None);
    delivered_at(w, &marker, "done", Duration::from_secs(30)).await - promoted
}

/// Kills `primary` after `after`, waits `gap`, promotes `standby`; returns when the
/// promotion was done.
async fn fail_over(
    primary: Arc<Postgres>,
    standby: Arc<Postgres>,
    after: Duration,
    gap: Duration,
) -> Instant {
    tokio::task::spawn_blocking(move || {
        std::thread::sleep(after);
        primary.kill();
        std::thread::sleep(gap);
        standby.promote();
        Instant::now()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promoted_standby_takes_over_with_nothing_lost_or_sent_twice() {
    let w = World::start().await;
    let mut rng = fastrand::Rng::with_seed(34);
    let mut waiting: Vec<String> = (0..400)
        .map(|n| {
            w.sim
                .add_job(NewJob::new(Status::Running).name(format!("job {n}")))
        })
        .collect();
    w.hook
        .set_default(Reply::After(Duration::from_millis(100), 200));
    let mut primary = Arc::new(Postgres::start());
    let mut standby = Arc::new(Postgres::standby_of(&primary, None));
    let url = url(&primary, &standby);
    let config = replica_config(&w, &url, "20s");
    let tokens = TokenWatch::start(&url);
    let replicas = [Daemon::start(&config, &[]), Daemon::start(&config, &[])];
    let start = Instant::now();
    while replicas
        .iter()
        .all(|d| d.lines_with("poll cycle done").is_empty())
    {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no replica polled"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let mut expected: HashMap<String, String> = HashMap::new();
    let mut resumed = Vec::new();
    // Five switches within `alert_after`, then one that takes longer.
    for (switch, gap) in [0, 0, 0, 0, 0, 24].into_iter().enumerate() {
        let kill_after = Duration::from_millis(rng.u64(300..1_200));
        let switching = tokio::spawn(fail_over(
            primary.clone(),
            standby.clone(),
            kill_after,
            Duration::from_secs(gap),
        ));
        testkit::delivered::change_for(
            &w.sim,
            &mut rng,
            &mut waiting,
            &mut expected,
            Duration::from_millis(2_000),
            "while PostgreSQL fails over",
        )
        .await;
        let promoted = switching.await.unwrap();
        let took = resumed_after(&w, &mut waiting, promoted).await;
        println!("switch {switch}: alerts flow again {took:?} after the promotion");
        resumed.push(took);
        if switch == 4 {
            // The quick switches: every change alerted, none twice, and no watcher.failing.
            for (job, status) in &expected {
                delivered_at(&w, job, status, Duration::from_secs(60)).await;
            }
            let delivered = w.hook.delivered();
            let jobs = about_jobs(&delivered);
            let repeats =
                testkit::delivered::assert_each_once(&jobs, &markers_and(&expected, &jobs));
            assert_eq!(
                repeats, 0,
                "no alert was sent twice across the quick switches"
            );
            assert!(
                of_type(&delivered, "watcher.failing").is_empty(),
                "switches shorter than alert_after raise no watcher.failing"
            );
        }
        // The promoted standby is the primary now; a new standby takes the old one's port.
        let old_port = primary.port;
        let new_primary = standby.clone();
        drop(std::mem::replace(&mut primary, new_primary));
        standby = Arc::new(Postgres::standby_of(&primary, Some(old_port)));
    }
    for (job, status) in expected.iter() {
        delivered_at(&w, job, status, Duration::from_secs(60)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let delivered = w.hook.delivered();
    let jobs = about_jobs(&delivered);
    // The long switch outlasts the claims (the longest attempt plus 15 s): an alert sent
    // just before it may go out again, with the same webhook-id.
    let repeats = testkit::delivered::assert_each_once(&jobs, &markers_and(&expected, &jobs));
    let failing = of_type(&delivered, "watcher.failing");
    assert_eq!(
        failing.len(),
        1,
        "the long switch raised one watcher.failing"
    );
    assert_eq!(failing[0]["data"]["reason"], "store", "{}", failing[0]);
    assert_eq!(of_type(&delivered, "watcher.recovered").len(), 1);
    let seen = tokens.assert_monotonic();
    let mut quick = resumed[..5].to_vec();
    quick.sort();
    println!(
        "failover: {} changes, {} job alerts ({repeats} repeated after the long switch), tokens {seen:?}; alerts flow again after promotion: median {:?}, max {:?} (5 switches)",
        expected.len(),
        jobs.len(),
        quick[2],
        quick[4]
    );
    assert!(quick[4] < Duration::from_secs(30), "{quick:?}");
    for replica in replicas {
        let log = replica.stop().await;
        assert!(!log.iter().any(|l| l.contains("panicked")), "{log:?}");
    }
}

/// `expected` with the marker changes (each `done`) that the deliveries show.
fn markers_and(
    expected: &HashMap<String, String>,
    delivered: &[ReceivedWebhook],
) -> HashMap<String, String> {
    let mut all = expected.clone();
    for hook in delivered {
        let (job, status) = testkit::delivered::told(hook);
        if status == "done" {
            all.entry(job).or_insert(status);
        }
    }
    all
}

/// A write that meets a server turned read-only (SQLSTATE 25006) fails once; the
/// connection is dropped and the next write lands on the writable server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_refused_as_read_only_is_made_again_on_the_writable_server() {
    let x = Postgres::start();
    let y = Postgres::start();
    for server in [&x, &y] {
        let alone = PgSettings::parse(&server.url(), None).unwrap();
        Store::connect(&alone).await.unwrap();
        server.psql("CREATE TABLE sdm_watch.probe (n int, port int DEFAULT inet_server_port())");
    }
    let settings = PgSettings::parse(&url(&x, &y), None).unwrap();
    let store = Store::connect(&settings).await.unwrap();
    let insert =
        |n: i64| store.run(move |conn| conn.execute("INSERT INTO probe (n) VALUES (?1)", &[&n]));
    insert(1).await.unwrap();
    x.psql("ALTER SYSTEM SET default_transaction_read_only = on");
    x.psql("SELECT pg_reload_conf()");
    // The backend reads the reload before its next statement; give it a few tries.
    let deadline = Instant::now() + Duration::from_secs(10);
    let refused = loop {
        match insert(2).await {
            Ok(_) => {
                assert!(Instant::now() < deadline, "x never turned read-only");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(error) => break error,
        }
    };
    match &refused {
        StoreError::Postgres { code, .. } => assert_eq!(code.as_deref(), Some("25006")),
        other => panic!("a read-only refusal, not {other}"),
    }
    insert(3).await.expect("the next write goes to y");
    let on_y = store
        .run(|conn| {
            let mut ports = Vec::new();
            conn.query_each("SELECT port FROM probe WHERE n = 3", &[], &mut |row| {
                ports.push(row.get::<i64>(0)?);
                Ok(())
            })?;
            Ok(ports)
        })
        .await
        .unwrap();
    assert_eq!(on_y, vec![i64::from(y.port)]);
}

/// The old primary restarted writable beside the promoted one (split brain): replicas
/// that reconnect, and one that starts afresh, pick the newer timeline and write nothing
/// to the old server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_former_primary_that_comes_back_writable_is_not_written_to() {
    let w = World::start().await;
    let jobs: Vec<String> = (0..40)
        .map(|n| {
            w.sim
                .add_job(NewJob::new(Status::Running).name(format!("job {n}")))
        })
        .collect();
    let primary = Arc::new(Postgres::start());
    let standby = Arc::new(Postgres::standby_of(&primary, None));
    let url = url(&primary, &standby);
    let config = replica_config(&w, &url, "60s");
    let a = Daemon::start(&config, &[]);
    a.wait_for_log("poll cycle done", 1).await;
    let mut expected = HashMap::new();
    for id in &jobs[..10] {
        w.sim
            .set_status(id, Status::Error, Some("before the switch"));
        expected.insert(id.clone(), "error".to_owned());
    }
    let promoted = fail_over(
        primary.clone(),
        standby.clone(),
        Duration::ZERO,
        Duration::ZERO,
    )
    .await;
    let mut waiting = jobs[30..].to_vec();
    resumed_after(&w, &mut waiting, promoted).await;

    // The old primary comes back as it was: a primary, writable, on the old timeline.
    let mut old = Arc::into_inner(primary).expect("the switch is done with it");
    old.restart_with("-c synchronous_standby_names=");
    let before =
        old.query("SELECT string_agg(name || token || expires_at, ',') FROM sdm_watch.leases");
    // Every connection breaks (as a network blip would): the replica connects again, and
    // a second replica starts with nothing seen.
    standby.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'sdm-watch'");
    let b = Daemon::start(&config, &[]);
    b.wait_for_log("a second writable PostgreSQL server", 1)
        .await;
    for id in &jobs[10..20] {
        w.sim.set_status(id, Status::Done, None);
        expected.insert(id.clone(), "done".to_owned());
    }
    for (job, status) in &expected {
        delivered_at(&w, job, status, Duration::from_secs(30)).await;
    }
    let jobs_told = about_jobs(&w.hook.delivered());
    let repeats =
        testkit::delivered::assert_each_once(&jobs_told, &markers_and(&expected, &jobs_told));
    assert_eq!(repeats, 0);
    let after =
        old.query("SELECT string_agg(name || token || expires_at, ',') FROM sdm_watch.leases");
    assert_eq!(
        before, after,
        "no replica renewed or took a lease on the old primary"
    );
    let changed = old.query("SELECT count(*) FROM sdm_watch.jobs WHERE status = 'done'");
    assert_eq!(
        changed.trim(),
        "0",
        "no job's change was recorded on the old primary"
    );
    assert!(
        !a.lines_with("a second writable PostgreSQL server")
            .is_empty()
            || !b.lines_with("a second writable").is_empty()
    );
    a.stop().await;
    b.stop().await;
}

/// Alerts sent while the primary dies: their outcomes wait in the worker's memory and are
/// recorded on the promoted standby, so they do not go out again when their claims lapse.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_in_flight_when_the_primary_dies_are_not_sent_again() {
    let w = World::start().await;
    let jobs: Vec<String> = (0..5)
        .map(|n| {
            w.sim
                .add_job(NewJob::new(Status::Running).name(format!("job {n}")))
        })
        .collect();
    let primary = Arc::new(Postgres::start());
    let standby = Arc::new(Postgres::standby_of(&primary, None));
    let config = replica_config(&w, &url(&primary, &standby), "60s");
    let daemon = Daemon::start(&config, &[]);
    daemon.wait_for_log("poll cycle done", 1).await;
    // Answered 1.5 s after they arrive (the webhook's timeout is 2 s).
    w.hook
        .set_default(Reply::After(Duration::from_millis(1_500), 200));
    let mut expected = HashMap::new();
    for id in &jobs {
        w.sim.set_status(id, Status::Error, Some("in flight"));
        expected.insert(id.clone(), "error".to_owned());
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while w.hook.received().is_empty() {
        assert!(Instant::now() < deadline, "no alert was sent");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Promoted 3 s after the kill: the answers come back while there is no primary.
    fail_over(
        primary.clone(),
        standby.clone(),
        Duration::ZERO,
        Duration::from_secs(3),
    )
    .await;
    daemon
        .wait_for_log(
            "recorded the delivery outcomes that waited for the store",
            1,
        )
        .await;
    for (job, status) in &expected {
        delivered_at(&w, job, status, Duration::from_secs(30)).await;
    }
    // An observation window past the claims (the 2 s timeout and 15 s): an outcome that
    // was forgotten would have its alert sent again in it.
    tokio::time::sleep(Duration::from_secs(19)).await;
    let delivered = about_jobs(&w.hook.delivered());
    let repeats = testkit::delivered::assert_each_once(&delivered, &expected);
    assert_eq!(
        repeats, 0,
        "an alert in flight at the switch was sent again"
    );
    daemon.stop().await;
}
