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
    assert!(a.renew(&a_client, first.token).await.unwrap().is_some());
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
        a.renew(&a_client, first.token).await.unwrap().is_none(),
        "the old leader cannot renew"
    );
    assert!(a.acquire(&a_client).await.unwrap().is_none());

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
