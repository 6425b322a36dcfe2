//! Several replicas on PostgreSQL (issue 16, in progress): migrations once under a lock,
//! leadership as a lease with a fencing token, and outbox claims that no two replicas
//! share, against a real throwaway PostgreSQL.

use std::time::{Duration, Instant};

use sdm_watch::domain::{Event, Status};
use sdm_watch::store::outbox::{Alert, AlertState};
use sdm_watch::store::postgres::lease::{self, FenceError, Leadership};
use sdm_watch::store::postgres::outbox::{self, Settle};
use sdm_watch::store::postgres::{self, LATEST, PgError};
use testkit::postgres::Postgres;

async fn migrated(pg: &Postgres) -> tokio_postgres::Client {
    let mut client = postgres::connect(&pg.url()).await.unwrap();
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
                let mut client = postgres::connect(&url).await.unwrap();
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

    let client = postgres::connect(&url).await.unwrap();
    client
        .execute("UPDATE sdm_watch_schema SET version = $1", &[&(LATEST + 1)])
        .await
        .unwrap();
    let mut again = postgres::connect(&url).await.unwrap();
    match postgres::migrate(&mut again).await {
        Err(PgError::NewerSchema { found, supported }) => {
            assert_eq!((found, supported), (LATEST + 1, LATEST));
        }
        other => panic!("a newer schema was not refused: {other:?}"),
    }
    let version: i64 = client
        .query_one("SELECT version FROM sdm_watch_schema", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(version, LATEST + 1, "left untouched");
}

#[tokio::test]
async fn one_leader_at_a_time_and_a_higher_token_after_expiry() {
    let pg = Postgres::start();
    let a_client = migrated(&pg).await;
    let b_client = postgres::connect(&pg.url()).await.unwrap();
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
    let b_client = postgres::connect(&pg.url()).await.unwrap();
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
                let client = postgres::connect(&url).await.unwrap();
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

fn pending(i: usize, due_ms: i64) -> Alert {
    let mut alert = Alert::new(
        format!("msg_{i:05}"),
        "ops",
        &format!("job-{i}"),
        Event::from(Status::Done),
        "{}".into(),
        0,
    );
    alert.next_attempt_ms = due_ms;
    alert
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_delivering_together_never_claim_the_same_alert() {
    let pg = Postgres::start();
    let client = migrated(&pg).await;
    let total = 2_000;
    for i in 0..total {
        outbox::insert(&client, &pending(i, 0)).await.unwrap();
    }
    let mut grouped = pending(total, 0);
    grouped.grouped = true;
    outbox::insert(&client, &grouped).await.unwrap();
    outbox::insert(&client, &pending(total + 1, i64::MAX))
        .await
        .unwrap();

    let url = pg.url();
    let replicas: Vec<_> = ["replica-a", "replica-b", "replica-c"]
        .into_iter()
        .map(|replica| {
            let url = url.clone();
            tokio::spawn(async move {
                let client = postgres::connect(&url).await.unwrap();
                let mut sent = Vec::new();
                loop {
                    let claimed =
                        outbox::claim(&client, replica, 1_000, 25, Duration::from_secs(30))
                            .await
                            .unwrap();
                    if claimed.is_empty() {
                        break;
                    }
                    for alert in claimed {
                        let settled = outbox::settle(
                            &client,
                            replica,
                            &alert.id,
                            1,
                            &Settle::Delivered,
                            1_000,
                        )
                        .await
                        .unwrap();
                        assert!(settled, "{replica} lost a claim nobody else could take");
                        sent.push(alert.id);
                    }
                }
                sent
            })
        })
        .collect();
    let mut all = Vec::new();
    for replica in replicas {
        let sent = replica.await.unwrap();
        assert!(!sent.is_empty(), "every replica delivered some");
        all.extend(sent);
    }
    let sent = all.len();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), sent, "no alert was sent by two replicas");
    assert_eq!(
        sent, total,
        "every due alert was sent; the grouped and the future one were not"
    );
    assert_eq!(
        outbox::count(&client, AlertState::Delivered).await.unwrap(),
        total as u64
    );
}

#[tokio::test]
async fn a_claim_that_outlives_its_replica_is_taken_over_with_the_same_id() {
    let pg = Postgres::start();
    let client = migrated(&pg).await;
    outbox::insert(&client, &pending(1, 0)).await.unwrap();
    let ttl = Duration::from_millis(400);
    let first = outbox::claim(&client, "replica-a", 1_000, 10, ttl)
        .await
        .unwrap();
    assert_eq!(first.len(), 1);
    // replica-a dies mid-attempt; while its claim lasts nobody else sends the alert.
    assert!(
        outbox::claim(&client, "replica-b", 1_000, 10, ttl)
            .await
            .unwrap()
            .is_empty()
    );
    tokio::time::sleep(ttl + Duration::from_millis(200)).await;
    let again = outbox::claim(&client, "replica-b", 1_000, 10, ttl)
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(
        again[0].id, first[0].id,
        "the same alert id: the same webhook-id"
    );
    let late = Settle::Retry {
        next_attempt_ms: 5_000,
        error: "the receiver answered 503".into(),
    };
    assert!(
        !outbox::settle(&client, "replica-a", &first[0].id, 1, &late, 1_000)
            .await
            .unwrap(),
        "the replica that lost the claim records nothing"
    );
    assert!(
        outbox::settle(
            &client,
            "replica-b",
            &again[0].id,
            1,
            &Settle::Delivered,
            1_000
        )
        .await
        .unwrap()
    );
    assert_eq!(
        outbox::count(&client, AlertState::Delivered).await.unwrap(),
        1
    );
    assert_eq!(
        outbox::count(&client, AlertState::Pending).await.unwrap(),
        0
    );
}
