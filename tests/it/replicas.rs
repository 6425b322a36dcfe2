//! Several replicas on PostgreSQL (issue 16, in progress): migrations once under a lock,
//! leadership as a lease with a fencing token, and outbox claims that no two replicas
//! share, against a real throwaway PostgreSQL.

use std::time::{Duration, Instant};

use sdm_watch::store::StoreError;
use sdm_watch::store::postgres::lease::{self, FenceError, Leadership};
use sdm_watch::store::postgres::{self, LATEST, PgSettings};
use testkit::postgres::Postgres;

fn settings(url: &str) -> PgSettings {
    PgSettings::parse(url, None).unwrap()
}

async fn migrated(pg: &Postgres) -> tokio_postgres::Client {
    let mut client = postgres::connect(&settings(&pg.url())).await.unwrap();
    postgres::migrate(&mut client).await.unwrap();
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_starting_together_migrate_once_and_a_newer_schema_is_left_alone() {
    let pg = Postgres::start();
    let url = pg.url();
    let starts: Vec<_> = (0..8)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move {
                let mut client = postgres::connect(&settings(&url)).await.unwrap();
                postgres::migrate(&mut client).await.unwrap()
            })
        })
        .collect();
    let mut found = Vec::new();
    for start in starts {
        found.push(start.await.unwrap());
    }
    found.sort_unstable();
    assert_eq!(found[0], 0, "one replica migrated from scratch");
    assert!(
        found[1..].iter().all(|v| *v == LATEST),
        "the others found it done: {found:?}"
    );

    let client = postgres::connect(&settings(&url)).await.unwrap();
    client
        .execute("UPDATE schema_version SET version = $1", &[&(LATEST + 1)])
        .await
        .unwrap();
    let mut again = postgres::connect(&settings(&url)).await.unwrap();
    match postgres::migrate(&mut again).await {
        Err(StoreError::NewerDatabase { found, supported }) => {
            assert_eq!((found, supported), (LATEST + 1, LATEST));
        }
        other => panic!("a newer schema was not refused: {other:?}"),
    }
    let version: i64 = client
        .query_one("SELECT version FROM schema_version", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(version, LATEST + 1, "left untouched");

    // A version no sdm-watch writes (negative) is refused as well, without a panic.
    client
        .execute("UPDATE schema_version SET version = -3", &[])
        .await
        .unwrap();
    match postgres::migrate(&mut again).await {
        Err(StoreError::Corrupt(reason)) => assert!(reason.contains("-3"), "{reason}"),
        other => panic!("a negative schema version was not refused: {other:?}"),
    }
}

#[tokio::test]
async fn one_leader_at_a_time_and_a_higher_token_after_expiry() {
    let pg = Postgres::start();
    let a_client = migrated(&pg).await;
    let b_client = postgres::connect(&settings(&pg.url())).await.unwrap();
    let ttl = Duration::from_millis(800);
    let a = Leadership::new("poller", "replica-a", ttl);
    let b = Leadership::new("poller", "replica-b", ttl);

    let first = a
        .acquire(&a_client)
        .await
        .unwrap()
        .expect("a free lease is taken");
    assert!(
        b.acquire(&b_client).await.unwrap().is_none(),
        "a live lease is not taken"
    );
    let extended = a.acquire(&a_client).await.unwrap().unwrap();
    assert_eq!(extended.token, first.token, "extending keeps the token");
    let holder = lease::holder(&b_client, "poller").await.unwrap().unwrap();
    assert_eq!((holder.holder.as_str(), holder.live), ("replica-a", true));

    tokio::time::sleep(ttl + Duration::from_millis(300)).await;
    let taken = b
        .acquire(&b_client)
        .await
        .unwrap()
        .expect("an expired lease is taken");
    assert!(taken.token > first.token, "a new leader has a higher token");
    assert!(
        a.acquire(&a_client).await.unwrap().is_none(),
        "the old leader cannot extend its lease"
    );

    // The old leader's commit is fenced off: nothing it writes lands.
    let mut a_client = a_client;
    a_client
        .batch_execute("CREATE TABLE work (done_by TEXT)")
        .await
        .unwrap();
    let tx = a_client.transaction().await.unwrap();
    tx.execute("INSERT INTO work VALUES ('replica-a')", &[])
        .await
        .unwrap();
    match lease::fence(&tx, "poller", first.token).await {
        Err(FenceError::Lost { token, .. }) => assert_eq!(token, first.token),
        other => panic!("a stale token was not fenced: {other:?}"),
    }
    drop(tx); // rolled back
    let rows: i64 = b_client
        .query_one("SELECT count(*) FROM work", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 0);

    assert!(b.release(&b_client, taken.token).await.unwrap());
    let next = a
        .acquire(&a_client)
        .await
        .unwrap()
        .expect("a released lease is free");
    assert!(next.token > taken.token);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_takeover_waits_for_the_commit_in_flight_of_the_leader_it_replaces() {
    let pg = Postgres::start();
    let mut a_client = migrated(&pg).await;
    let b_client = postgres::connect(&settings(&pg.url())).await.unwrap();
    a_client
        .batch_execute("CREATE TABLE work (done_by TEXT, at TIMESTAMPTZ DEFAULT clock_timestamp())")
        .await
        .unwrap();
    let ttl = Duration::from_millis(500);
    let a = Leadership::new("poller", "replica-a", ttl);
    let b = Leadership::new("poller", "replica-b", ttl);
    let lease = a.acquire(&a_client).await.unwrap().unwrap();

    // The leader's commit checks its token in time, then takes long: past its lease.
    let tx = a_client.transaction().await.unwrap();
    lease::fence(&tx, "poller", lease.token).await.unwrap();
    tx.execute("INSERT INTO work (done_by) VALUES ('replica-a')", &[])
        .await
        .unwrap();
    let takeover = tokio::spawn(async move {
        tokio::time::sleep(ttl + Duration::from_millis(200)).await;
        let asked = Instant::now();
        let taken = b.acquire(&b_client).await.unwrap();
        (taken, asked.elapsed(), b_client)
    });
    tokio::time::sleep(ttl + Duration::from_millis(900)).await;
    tx.commit().await.unwrap();
    let (taken, waited, b_client) = takeover.await.unwrap();
    let taken = taken.expect("the standby takes over once the commit is done");
    assert!(taken.token > lease.token);
    assert!(
        waited >= Duration::from_millis(500),
        "the takeover waited for the commit in flight ({waited:?})"
    );
    let done_by: String = b_client
        .query_one("SELECT done_by FROM work", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        done_by, "replica-a",
        "the commit that passed its fence landed, before the takeover"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_many_replicas_racing_for_a_free_lease_exactly_one_wins() {
    let pg = Postgres::start();
    drop(migrated(&pg).await);
    let url = pg.url();
    let racers: Vec<_> = (0..10)
        .map(|i| {
            let url = url.clone();
            tokio::spawn(async move {
                let client = postgres::connect(&settings(&url)).await.unwrap();
                let me =
                    Leadership::new("poller", &format!("replica-{i}"), Duration::from_secs(30));
                me.acquire(&client).await.unwrap()
            })
        })
        .collect();
    let mut winners = 0;
    for racer in racers {
        winners += usize::from(racer.await.unwrap().is_some());
    }
    assert_eq!(winners, 1);
}

// ---- Real replicas: `sdm-watch run` processes sharing one PostgreSQL ----

use std::collections::HashMap;
use std::path::PathBuf;

use sdm_watch::domain::Status;
use sdm_watch::sim::{NewJob, ReceivedWebhook, Reply};
use testkit::leases::pid_of;
use testkit::{Daemon, World};

/// The lease of these tests; the poll interval is 1 s.
const LEASE: &str = "2s";

fn replica_config(w: &World, pg: &Postgres) -> PathBuf {
    w.replica_config(&pg.url(), "")
}

/// The replica that holds a live lease now, if any.
async fn leader_pid(client: &tokio_postgres::Client) -> Option<u32> {
    let holder = lease::holder(client, "poller").await.ok()??;
    holder.live.then(|| pid_of(&holder.holder)).flatten()
}

async fn wait_for_leader(client: &tokio_postgres::Client, not: Option<u32>) -> u32 {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(pid) = leader_pid(client).await.filter(|pid| Some(*pid) != not) {
            return pid;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no replica took the lead within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Which replica (by the `User-Agent` it polls with) made each API request, in order.
fn pollers(w: &World) -> Vec<(std::time::Instant, String)> {
    let mut requests: Vec<_> = w
        .sim
        .requests()
        .into_iter()
        .map(|r| (r.at, r.user_agent))
        .collect();
    requests.sort();
    requests
}

/// One poller at a time: each replica's requests form one unbroken run in the log.
fn assert_one_poller_at_a_time(pollers: &[(std::time::Instant, String)]) -> usize {
    let mut runs: Vec<&str> = Vec::new();
    for (_, agent) in pollers {
        if runs.last() != Some(&agent.as_str()) {
            assert!(
                !runs.contains(&agent.as_str()),
                "two replicas polled in turns: {agent} came back after another polled ({runs:?})"
            );
            runs.push(agent);
        }
    }
    runs.len()
}

fn assert_delivered_once(
    delivered: &[ReceivedWebhook],
    expected: &HashMap<String, String>,
) -> usize {
    testkit::delivered::assert_each_once(delivered, expected)
}

async fn wait_delivered(w: &World, expected: &HashMap<String, String>) -> Vec<ReceivedWebhook> {
    testkit::delivered::wait_for(&w.hook, expected, Duration::from_secs(60)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_with_the_leader_killed_ten_times_lose_nothing() {
    let w = World::start().await;
    let pg = Postgres::start();
    let mut rng = fastrand::Rng::with_seed(16);
    let mut waiting: Vec<String> = (0..120)
        .map(|n| {
            w.sim
                .add_job(NewJob::new(Status::Running).name(format!("job {n}")))
        })
        .collect();
    // A slow receiver, so that kills also land while deliveries are in flight.
    w.hook
        .set_default(Reply::After(Duration::from_millis(150), 200));
    let config = replica_config(&w, &pg);
    let client = postgres::connect(&settings(&pg.url())).await.unwrap();

    let mut replicas: Vec<Daemon> = (0..3).map(|_| Daemon::start(&config, &[])).collect();
    let first = wait_for_leader(&client, None).await;
    let leader = replicas.iter().find(|d| d.pid() == first).unwrap();
    leader.wait_for_log("poll cycle done", 1).await;

    let mut expected: HashMap<String, String> = HashMap::new();
    let mut failovers = Vec::new();
    let mut leader_pid = first;
    for _ in 0..10 {
        let lifetime = Duration::from_millis(rng.u64(500..2_500));
        testkit::delivered::change_for(
            &w.sim,
            &mut rng,
            &mut waiting,
            &mut expected,
            lifetime,
            "while replicas die",
        )
        .await;
        let at = replicas.iter().position(|d| d.pid() == leader_pid).unwrap();
        let killed_at = std::time::Instant::now();
        replicas.swap_remove(at).kill().await;
        replicas.push(Daemon::start(&config, &[]));
        leader_pid = wait_for_leader(&client, Some(leader_pid)).await;
        // From the kill to the new leader's first request.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        let first_poll = loop {
            let polled = pollers(&w)
                .into_iter()
                .find(|(at, agent)| *at > killed_at && agent.contains(&format!("-{leader_pid}-")));
            if let Some((at, _)) = polled {
                break at;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the new leader {leader_pid} made no request within 60 s of the kill"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        failovers.push(first_poll - killed_at);
    }

    let delivered = wait_delivered(&w, &expected).await;
    let repeats = assert_delivered_once(&delivered, &expected);
    let runs = assert_one_poller_at_a_time(&pollers(&w));
    failovers.sort();
    println!(
        "replicas: 10 leader kills, {} changes, {} deliveries ({repeats} repeats with the first webhook-id), {runs} pollers in turn; failover median {:?}, max {:?}",
        expected.len(),
        delivered.len(),
        failovers[failovers.len() / 2],
        failovers.last().unwrap()
    );
    assert!(
        runs >= 11,
        "each kill handed polling to another replica ({runs})"
    );
    assert!(
        *failovers.last().unwrap() < Duration::from_secs(20),
        "a standby took over: {failovers:?}"
    );
    for replica in replicas {
        replica.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_paused_beyond_its_lease_commits_and_polls_nothing_once_resumed() {
    let w = World::start().await;
    let pg = Postgres::start();
    let jobs: Vec<String> = (0..30)
        .map(|n| {
            w.sim
                .add_job(NewJob::new(Status::Running).name(format!("job {n}")))
        })
        .collect();
    let config = replica_config(&w, &pg);
    let client = postgres::connect(&settings(&pg.url())).await.unwrap();
    let a = Daemon::start(&config, &[]);
    a.wait_for_log("this replica now leads", 1).await;
    a.wait_for_log("poll cycle done", 2).await;
    let b = Daemon::start(&config, &[]);
    b.wait_for_log("sdm-watch started", 1).await;

    a.signal("STOP");
    let stopped_at = std::time::Instant::now();
    let mut expected = HashMap::new();
    for id in &jobs[..10] {
        w.sim
            .set_status(id, Status::Error, Some("while the leader sleeps"));
        expected.insert(id.clone(), "error".to_owned());
    }
    let b_pid = wait_for_leader(&client, Some(a.pid())).await;
    assert_eq!(b_pid, b.pid());
    b.wait_for_log("poll cycle done", 2).await;
    // Resumed long after its lease: by then the standby leads.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let cycles_before = a.lines_with("poll cycle done").len();
    a.signal("CONT");
    let resumed_at = std::time::Instant::now();
    for id in &jobs[10..20] {
        w.sim.set_status(id, Status::Done, None);
        expected.insert(id.clone(), "done".to_owned());
    }
    let delivered = wait_delivered(&w, &expected).await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    let a_agent = format!("-{}-", a.pid());
    let late: Vec<_> = pollers(&w)
        .into_iter()
        .filter(|(at, agent)| *at > resumed_at && agent.contains(&a_agent))
        .collect();
    assert!(
        late.len() <= 1,
        "the resumed replica polled on ({} requests after it resumed)",
        late.len()
    );
    assert_eq!(
        a.lines_with("poll cycle done").len(),
        cycles_before,
        "the resumed replica completed no cycle: {:?}",
        a.log()
    );
    assert!(
        !a.lines_with("lost the lead").is_empty() || !a.lines_with("abandoning").is_empty(),
        "it saw it lost: {:?}",
        a.log()
    );
    let repeats = assert_delivered_once(&delivered, &expected);
    assert_eq!(repeats, 0, "nothing was sent twice");
    assert_one_poller_at_a_time(
        &pollers(&w)
            .into_iter()
            .filter(|(at, _)| *at > stopped_at)
            .collect::<Vec<_>>(),
    );
    // Still a healthy standby, ready to lead again.
    assert_eq!(leader_pid(&client).await, Some(b.pid()));
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_ride_out_a_postgresql_restart_and_lose_nothing() {
    let w = World::start().await;
    let pg = Postgres::start();
    let jobs: Vec<String> = (0..60)
        .map(|n| {
            w.sim
                .add_job(NewJob::new(Status::Running).name(format!("job {n}")))
        })
        .collect();
    w.hook
        .set_default(Reply::After(Duration::from_millis(50), 200));
    let config = replica_config(&w, &pg);
    let a = Daemon::start(&config, &[]);
    let b = Daemon::start(&config, &[]);
    {
        let client = postgres::connect(&settings(&pg.url())).await.unwrap();
        wait_for_leader(&client, None).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut expected = HashMap::new();
    for (n, id) in jobs.iter().enumerate() {
        let status = if n % 2 == 0 {
            Status::Done
        } else {
            Status::Error
        };
        w.sim.set_status(id, status.clone(), Some("under load"));
        expected.insert(id.clone(), status.to_string());
        if n == 20 {
            pg.stop("fast");
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        if n == 40 {
            pg.restart();
        }
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    let delivered = wait_delivered(&w, &expected).await;
    let repeats = assert_delivered_once(&delivered, &expected);
    let client = postgres::connect(&settings(&pg.url())).await.unwrap();
    let leader = wait_for_leader(&client, None).await;
    assert!(leader == a.pid() || leader == b.pid());
    println!(
        "restart: {} changes, {} deliveries ({repeats} repeats)",
        expected.len(),
        delivered.len()
    );
    assert!(
        a.lines_with("panicked").is_empty() && b.lines_with("panicked").is_empty(),
        "no replica panicked"
    );
    a.stop().await;
    b.stop().await;
}

/// TLS through rustls: `require` encrypts whatever the certificate, `verify-full` checks it
/// against `sslrootcert` (and refuses a server the system's roots do not vouch for).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_require_encrypts_and_verify_full_checks_the_certificate() {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let pg = Postgres::start_tls(
        &certified.cert.pem(),
        &certified.signing_key.serialize_pem(),
    );
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root.crt");
    std::fs::write(&root, certified.cert.pem()).unwrap();
    let base = format!("postgres://postgres@localhost:{}/postgres", pg.port);

    let encrypted = async |url: &str| -> Result<bool, String> {
        let settings = PgSettings::parse(url, None).map_err(|e| e.to_string())?;
        let client = postgres::connect(&settings)
            .await
            .map_err(|e| e.to_string())?;
        let row = client
            .query_one(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )
            .await
            .map_err(|e| postgres::describe(&e))?;
        Ok(row.get(0))
    };
    assert_eq!(encrypted(&base).await, Ok(false), "no sslmode: plain");
    assert_eq!(
        encrypted(&format!("{base}?sslmode=require")).await,
        Ok(true)
    );
    assert_eq!(
        encrypted(&format!(
            "{base}?sslmode=verify-full&sslrootcert={}",
            root.display()
        ))
        .await,
        Ok(true)
    );
    let unknown = encrypted(&format!("{base}?sslmode=verify-full")).await;
    assert!(
        unknown
            .as_ref()
            .is_err_and(|e| e.contains("certificate") || e.contains("Certificate")),
        "a self-signed server is refused without its root: {unknown:?}"
    );
    let bad = PgSettings::parse(&format!("{base}?sslmode=sometimes"), None);
    assert!(bad.is_err_and(|e| e.to_string().contains("sslmode")));
}

async fn get(port: u16, path: &str) -> (u16, String) {
    let response = testkit::http()
        .get(format!("http://127.0.0.1:{port}{path}"))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

/// The commands against PostgreSQL, a password checked by the server, and what each
/// replica's endpoints say of its part.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_and_endpoints_work_against_postgresql() {
    use testkit::cli::{sdm_watch, stderr, stdout};
    let w = World::start().await;
    let pg = Postgres::start();
    pg.psql("CREATE USER app PASSWORD 'pw-8f3kq9'");
    pg.psql("CREATE DATABASE appdb OWNER app");
    pg.require_password();
    let password = w.dir.path().join("db-password");
    std::fs::write(&password, "pw-8f3kq9\n").unwrap();
    w.sim.add_job(NewJob::new(Status::Running).name("a job"));
    let url = format!("postgres://app@127.0.0.1:{}/appdb", pg.port);
    let text = |password_line: &str| {
        testkit::config::config_text(
            &w.sim,
            "",
            &format!(
                "[poll]\ninterval = \"1s\"\n[state]\nurl = \"{url}\"\nlease = \"{LEASE}\"\n{password_line}\n[[webhook]]\nname = \"ops\"\nurl = \"{}\"\n",
                w.hook.url("/ops")
            ),
        )
    };
    let good = text(&format!("password_file = \"{}\"", password.display()));

    let wrong = sdm_watch(&text("password = \"not-it-5521\""), &["check"], &[]).await;
    assert_eq!(wrong.status.code(), Some(1), "{}", stderr(&wrong));
    assert!(
        stderr(&wrong).contains("password authentication failed"),
        "{}",
        stderr(&wrong)
    );
    let all = format!("{}{}", stdout(&wrong), stderr(&wrong));
    assert!(
        !all.contains("not-it-5521"),
        "the password is never printed: {all}"
    );

    let fresh = sdm_watch(&good, &["check"], &[]).await;
    assert_eq!(fresh.status.code(), Some(0), "{}", stderr(&fresh));
    assert!(
        stdout(&fresh).contains("no sdm-watch schema yet"),
        "{}",
        stdout(&fresh)
    );
    assert!(!stdout(&fresh).contains("pw-8f3kq9"));

    let config = w.dir.path().join("replica.toml");
    std::fs::write(&config, &good).unwrap();
    let (port_a, port_b) = (testkit::ports::free(), testkit::ports::free());
    let listen_a = format!("127.0.0.1:{port_a}");
    let a = Daemon::start(&config, &[("SDM_WATCH_HTTP__LISTEN", listen_a.as_str())]);
    a.wait_for_log("this replica now leads", 1).await;
    a.wait_for_log("poll cycle done", 1).await;
    let listen_b = format!("127.0.0.1:{port_b}");
    let b = Daemon::start(&config, &[("SDM_WATCH_HTTP__LISTEN", listen_b.as_str())]);
    b.wait_for_log("serving", 1).await;
    tokio::time::sleep(Duration::from_secs(1)).await;

    let checked = sdm_watch(&good, &["check"], &[]).await;
    assert_eq!(checked.status.code(), Some(0), "{}", stderr(&checked));
    let a_name = format!("-{}-", a.pid());
    assert!(
        stdout(&checked).contains(&format!("schema version {LATEST}; leader: "))
            && stdout(&checked).contains(&a_name),
        "{}",
        stdout(&checked)
    );
    let once = sdm_watch(&good, &["once"], &[]).await;
    assert_eq!(once.status.code(), Some(1), "{}", stderr(&once));
    assert!(
        stderr(&once).contains("another replica leads") && stderr(&once).contains(&a_name),
        "{}",
        stderr(&once)
    );

    let (status, body) = get(port_a, "/readyz").await;
    assert_eq!(
        (status, body.starts_with("ready: leader")),
        (200, true),
        "{body}"
    );
    let (status, body) = get(port_b, "/readyz").await;
    assert_eq!(status, 200, "a healthy standby is ready: {body}");
    assert!(
        body.starts_with("ready: standby") && body.contains(&a_name),
        "{body}"
    );
    let (_, json) = get(port_b, "/status.json").await;
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["role"]["role"], "standby");
    assert!(json["role"]["leader"].as_str().unwrap().contains(&a_name));
    let (_, json) = get(port_a, "/status.json").await;
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["role"]["role"], "leader");
    let (_, page) = get(port_b, "/").await;
    assert!(page.contains("standby; leader:"), "the status page says so");
    let metric = |text: &str| {
        text.lines()
            .find(|l| l.starts_with("sdm_watch_leader "))
            .map(str::to_owned)
    };
    assert_eq!(
        metric(&get(port_a, "/metrics").await.1).as_deref(),
        Some("sdm_watch_leader 1")
    );
    assert_eq!(
        metric(&get(port_b, "/metrics").await.1).as_deref(),
        Some("sdm_watch_leader 0")
    );

    let added = sdm_watch(
        &good,
        &[
            "silence", "add", "--event", "error", "--for", "1h", "--reason", "db test",
        ],
        &[],
    )
    .await;
    assert_eq!(added.status.code(), Some(0), "{}", stderr(&added));
    let listed = sdm_watch(&good, &["silence", "list"], &[]).await;
    assert!(stdout(&listed).contains("db test"), "{}", stdout(&listed));
    let state = sdm_watch(&good, &["state"], &[]).await;
    assert_eq!(state.status.code(), Some(0), "{}", stderr(&state));
    assert!(stdout(&state).contains("running"), "{}", stdout(&state));
    let alerts = sdm_watch(&good, &["alerts", "list"], &[]).await;
    assert_eq!(alerts.status.code(), Some(0), "{}", stderr(&alerts));

    // A clean stop gives the lease up: the standby leads at once, not a lease later.
    let stopped = std::time::Instant::now();
    a.stop().await;
    b.wait_for_log("this replica now leads", 1).await;
    let handover = stopped.elapsed();
    assert!(
        handover < Duration::from_secs(2),
        "handed over in {handover:?}"
    );
    let metrics = get(port_b, "/metrics").await.1;
    assert_eq!(metric(&metrics).as_deref(), Some("sdm_watch_leader 1"));
    assert!(
        metrics.contains("sdm_watch_leadership_changes_total{change=\"acquired\"} 1"),
        "{metrics}"
    );
    b.stop().await;
    let once = sdm_watch(&good, &["once"], &[]).await;
    assert_eq!(
        once.status.code(),
        Some(0),
        "with nobody leading, once polls: {}",
        stderr(&once)
    );
    assert!(stdout(&once).contains("poll cycle:"), "{}", stdout(&once));
}

/// The lease is renewed every third of it; the leader still polls at `poll.interval`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewing_the_lease_does_not_quicken_the_cadence() {
    let w = World::start().await;
    let pg = Postgres::start();
    w.sim.add_job(NewJob::new(Status::Done).name("a job"));
    let config = replica_config(&w, &pg);
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("interval = \"1s\"", "interval = \"3s\"");
    std::fs::write(&config, text).unwrap();
    let a = Daemon::start(&config, &[]);
    a.wait_for_log("poll cycle done", 1).await;
    tokio::time::sleep(Duration::from_millis(6_500)).await;
    let cycles = a.lines_with("poll cycle done").len();
    a.stop().await;
    // At 0, 3 and 6 s (and one more if the first came late): never every 0.67 s.
    assert!(
        (3..=4).contains(&cycles),
        "{cycles} cycles in 6.5 s at interval 3 s"
    );
}

/// Only the leader tells Alertmanager again (issue 31): two replicas, an `alertmanager`
/// channel resending every 10 s (its least), an incident open; over the resends that follow, every
/// post comes from the replica that leads (by the `User-Agent` each posts with).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_leader_resends_to_alertmanager() {
    let w = World::start().await;
    let pg = Postgres::start();
    let config = replica_config(&w, &pg);
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "[[webhook]]\nname = \"ops\"",
        &format!(
            "[[webhook]]\nname = \"am\"\nformat = \"alertmanager\"\nurl = \"{}\"\nresend = \"10s\"\n\n[[webhook]]\nname = \"ops\"",
            w.hook.url("/am")
        ),
    );
    std::fs::write(&config, text).unwrap();
    let client = postgres::connect(&settings(&pg.url())).await.unwrap();
    let a = Daemon::start(&config, &[]);
    let b = Daemon::start(&config, &[]);
    a.wait_for_log("sdm-watch started", 1).await;
    let leader = wait_for_leader(&client, None).await;
    let job = w.sim.add_job(NewJob::new(Status::Running).name("Feed"));
    let leading_daemon = if a.pid() == leader { &a } else { &b };
    leading_daemon.wait_for_log("poll cycle done", 1).await;
    w.sim
        .set_status(&job, Status::Error, Some("Column 'sku' missing"));
    let to_am = |w: &World| -> Vec<String> {
        w.hook
            .delivered()
            .into_iter()
            .filter(|hook| hook.path.starts_with("/am"))
            .map(|hook| hook.header("user-agent").unwrap_or_default().to_owned())
            .collect()
    };
    // The first post, then two resends (10 s apart).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(45);
    while to_am(&w).len() < 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no resends to Alertmanager: {:?}",
            to_am(&w)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        leader_pid(&client).await,
        Some(leader),
        "the lead did not move"
    );
    let posts = to_am(&w);
    let agents: std::collections::HashSet<&String> = posts.iter().skip(1).collect();
    assert_eq!(
        agents.len(),
        1,
        "resends came from more than one replica: {posts:?}"
    );
    let leading = format!("-{leader}-");
    assert!(
        agents.iter().all(|agent| agent.contains(&leading)),
        "the resends are the leader's ({leading}): {posts:?}"
    );
    a.stop().await;
    b.stop().await;
}
