//! One suite of store tests, run against SQLite and against a real PostgreSQL: whatever
//! the engine, the daemon reads back what it wrote, claims what is due once, and a
//! transaction that fails leaves nothing behind.

use std::sync::{Arc, Mutex};

use crate::engines::{Engine, both, postgres};
use sdm_watch::domain::{Event, Status};
use sdm_watch::store::bookkeeping::Bookkeeping;
use sdm_watch::store::inspect::{self, Query};
use sdm_watch::store::jobs::{self, TrackedJob};
use sdm_watch::store::outbox::{self, Alert, AlertState, Claim, Recorded, Target};
use sdm_watch::store::postgres::PgSettings;
use sdm_watch::store::silences::{self, Silence};
use sdm_watch::store::{Fence, Store, StoreError, digests, held, transitions};
use testkit::postgres::Postgres;

both!(jobs_round_trip, super::jobs_round_trip_check);
both!(outbox_and_digests, super::outbox_and_digests_check);
both!(
    silences_held_transitions_bookkeeping,
    super::silences_held_transitions_bookkeeping_check
);
both!(
    failed_transactions_leave_nothing,
    super::failed_transactions_check
);
both!(report_slots_decided_once, super::report_slots_check);
both!(audit_newest_first, super::audit_check);

fn job(id: &str, status: Status, created_us: i64) -> TrackedJob {
    TrackedJob {
        id: id.into(),
        status,
        name: Some(format!("name of {id} «ü» 'quoted'")),
        project: Some(17),
        project_checked: true,
        creation_date: Some("2026-11-28T10:00:00Z".into()),
        completion_date: None,
        created_us: Some(created_us),
        message: None,
        step: Some(r#"{"step":"x"}"#.into()),
        since_ms: Some(1_000),
        reminders: 0,
        completed_us: None,
        pending_ms: 0,
    }
}

async fn jobs_round_trip_check(engine: &Engine) {
    let store = engine.open().await;
    store
        .run(|conn| {
            let a = job("a", Status::Running, 10);
            let mut b = job("b", Status::Pending, 20);
            b.project = None;
            b.project_checked = false;
            let c = job("c", Status::Done, 30);
            let d = job("d", Status::parse("archived"), 40);
            for j in [&a, &b, &c, &d] {
                jobs::upsert(conn, "o", j, 5_000)?;
            }
            assert_eq!(jobs::get(conn, "o", "a")?.as_ref(), Some(&a));
            assert_eq!(
                jobs::get(conn, "o", "d")?.unwrap().status,
                Status::parse("archived")
            );
            assert_eq!(jobs::get_many(conn, "o", ["a", "b", "zz"])?.len(), 2);
            let mut active: Vec<String> = jobs::active(conn, "o")?
                .into_iter()
                .map(|a| a.job.id)
                .collect();
            active.sort();
            assert_eq!(active, ["a", "b"]);
            assert!(jobs::any_running(conn, "o")?);
            assert_eq!(jobs::count_created_in(conn, "o", 15, 40)?, 3);
            let o = || "o".to_string();
            assert_eq!(
                jobs::count_by_status(conn)?,
                [
                    (o(), Status::parse("archived"), 1),
                    (o(), Status::Done, 1),
                    (o(), Status::Pending, 1),
                    (o(), Status::Running, 1)
                ]
            );
            // The same id in another organisation is another job.
            let mut other = job("a", Status::Error, 10);
            other.name = Some("the other organisation's".into());
            jobs::upsert(conn, "p", &other, 5_000)?;
            assert_eq!(jobs::get(conn, "o", "a")?.as_ref(), Some(&a));
            assert_eq!(jobs::get(conn, "p", "a")?.as_ref(), Some(&other));
            assert!(jobs::active(conn, "p")?.is_empty(), "p's job a is settled");
            jobs::delete(conn, "p", "a")?;
            assert_eq!(jobs::get(conn, "o", "a")?.as_ref(), Some(&a));
            // Reminders: pending since 1 000 ms, every 500 ms.
            assert_eq!(jobs::due_pending_reminders(conn, "o", 1_400, 500)?.len(), 0);
            assert_eq!(jobs::due_pending_reminders(conn, "o", 1_500, 500)?.len(), 1);
            jobs::set_reminders(conn, "o", "b", 1)?;
            assert_eq!(jobs::due_pending_reminders(conn, "o", 1_999, 500)?.len(), 0);
            assert_eq!(jobs::due_running_long(conn, "o", 2_000, 1_000)?.len(), 1);
            // Failed lookups, then a listing shows the job again.
            jobs::lookup_failed(conn, "o", "a", 3, 9_000, "timed out")?;
            let failed = jobs::failed_lookups(conn, 10)?;
            assert_eq!(
                (failed[0].id.as_str(), failed[0].attempts, failed[0].next_ms),
                ("a", 3, 9_000)
            );
            let active = jobs::active(conn, "o")?;
            let a_active = active.iter().find(|j| j.job.id == "a").unwrap();
            assert_eq!(
                (a_active.lookup_attempts, a_active.lookup_next_ms),
                (3, Some(9_000))
            );
            jobs::lookup_recovered(conn, "o", "a")?;
            assert!(jobs::failed_lookups(conn, 10)?.is_empty());
            // Projects learnt, then forgotten when the projects asked change.
            jobs::set_project(conn, "o", "b", None)?;
            assert!(jobs::get(conn, "o", "b")?.unwrap().project_checked);
            assert_eq!(jobs::uncheck_missing_projects(conn, "o")?, 1);
            jobs::set_project(conn, "o", "b", Some(18))?;
            assert_eq!(jobs::get(conn, "o", "b")?.unwrap().project, Some(18));
            let oldest = jobs::active_oldest_first(conn, "o", 1)?;
            assert_eq!(oldest.len(), 1);
            jobs::delete(conn, "o", "a")?;
            assert!(jobs::get(conn, "o", "a")?.is_none());
            assert!(!jobs::any_running(conn, "o")?);
            // Completed runs of a project, latest completion first, and time pending.
            for (id, created, completed, pending) in [
                ("r1", 100, 400, 0),
                ("r2", 200, 250, 7_000),
                ("r3", 300, 900, 0),
            ] {
                let mut run = job(id, Status::Done, created);
                run.project = Some(40);
                run.completed_us = Some(completed);
                run.pending_ms = pending;
                jobs::upsert(conn, "o", &run, 5_000)?;
            }
            assert_eq!(jobs::recent_runs(conn, "o", 40, 2)?, [600, 300]);
            assert_eq!(jobs::get(conn, "o", "r2")?.unwrap().pending_ms, 7_000);
            // [state] keep: settled jobs created before the cut are forgotten, active and
            // undated ones stay.
            let mut undated = job("u", Status::Done, 0);
            undated.created_us = None;
            jobs::upsert(conn, "o", &undated, 5_000)?;
            assert_eq!(
                jobs::forget_created_before(conn, "o", 150)?,
                3,
                "c, d and r1"
            );
            for gone in ["c", "d", "r1"] {
                assert!(jobs::get(conn, "o", gone)?.is_none(), "{gone} is forgotten");
            }
            for kept in ["b", "r2", "r3", "u"] {
                assert!(jobs::get(conn, "o", kept)?.is_some(), "{kept} is kept");
            }
            Ok(())
        })
        .await
        .unwrap();
}

fn alert(id: &str, channel: &str, at: i64, grouped: bool) -> Alert {
    let mut alert = Alert::new(
        id.into(),
        channel,
        "o",
        &format!("job-{id}"),
        Event::from(Status::Error),
        format!(r#"{{"id":"{id}"}}"#),
        at,
    );
    alert.grouped = grouped;
    alert
}

fn claim(replica: &str, now_ms: i64) -> Claim {
    Claim {
        replica: replica.into(),
        now_ms,
        ttl_ms: 1_000,
    }
}

async fn outbox_and_digests_check(engine: &Engine) {
    let store = engine.open().await;
    let shared = engine.shares_claims();
    store
        .run(move |conn| {
            for i in 0..3 {
                outbox::insert(conn, &alert(&format!("alone-{i}"), "hook", 100 + i, false))?;
            }
            for i in 0..4 {
                outbox::insert(conn, &alert(&format!("grouped-{i}"), "chat", 100 + i, true))?;
            }
            let mut silenced = alert("quiet", "hook", 100, false);
            silenced.state = AlertState::Silenced;
            silenced.silence_id = Some("sil_1".into());
            outbox::insert(conn, &silenced)?;
            assert_eq!(inspect::count(conn, AlertState::Pending)?, 7);
            assert_eq!(inspect::count(conn, AlertState::Silenced)?, 1);
            assert_eq!(inspect::count_of(conn, AlertState::Pending, "o")?, 7);
            assert_eq!(inspect::count_of(conn, AlertState::Pending, "p")?, 0);

            // Alone: claimed in order of due time, once.
            let due = outbox::due(conn, &claim("r1", 200), 2)?;
            let ids: Vec<&str> = due.iter().map(|a| a.id.as_str()).collect();
            assert_eq!(ids, ["alone-0", "alone-1"]);
            let more = outbox::due(conn, &claim("r2", 200), 10)?;
            if shared {
                assert_eq!(more.len(), 1, "claimed ones are not claimed again");
                assert_eq!(
                    outbox::next_due_after(conn, 200)?,
                    Some(1_200),
                    "when claims lapse"
                );
            } else {
                assert_eq!(more.len(), 3, "SQLite writes no claim");
                assert_eq!(outbox::next_due_after(conn, 200)?, None);
            }
            outbox::record_outcome(
                conn,
                Target::Alert,
                "alone-0",
                1,
                Recorded::Delivered,
                210,
                "r1",
            )?;
            outbox::log_attempt(conn, "alone-0", 210, "delivered", None)?;
            outbox::record_outcome(
                conn,
                Target::Alert,
                "alone-1",
                1,
                Recorded::Retry {
                    next_attempt_ms: 5_000,
                    error: "HTTP 503",
                },
                210,
                "r1",
            )?;
            outbox::record_outcome(
                conn,
                Target::Alert,
                "alone-2",
                9,
                Recorded::Dead { error: "HTTP 410" },
                210,
                "r2",
            )?;
            assert_eq!(inspect::attempts(conn, "alone-0")?.len(), 1);
            let retrying = outbox::get(conn, "alone-1")?.unwrap();
            assert_eq!(
                (
                    retrying.attempts,
                    retrying.next_attempt_ms,
                    retrying.last_error.as_deref()
                ),
                (1, 5_000, Some("HTTP 503"))
            );
            assert!(outbox::due(conn, &claim("r1", 4_999), 10)?.is_empty());
            assert_eq!(outbox::due(conn, &claim("r1", 5_000), 10)?.len(), 1);
            // A replica whose claim lapsed records its late outcome: the claim r1 holds
            // now stays, so nobody else sends it while r1 does.
            outbox::record_outcome(
                conn,
                Target::Alert,
                "alone-1",
                2,
                Recorded::Retry {
                    next_attempt_ms: 5_000,
                    error: "late",
                },
                5_000,
                "r9",
            )?;
            assert_eq!(
                outbox::due(conn, &claim("r2", 5_000), 10)?.is_empty(),
                shared
            );
            outbox::unclaim(conn, Target::Alert, "alone-1", "r1")?;
            assert_eq!(outbox::due(conn, &claim("r2", 5_000), 10)?.len(), 1);

            // Listing, filters, dead ones queued again.
            let dead = inspect::list(
                conn,
                &Query {
                    state: Some(AlertState::Dead),
                    channel: None,
                    organisation: None,
                    since_ms: None,
                    limit: 10,
                },
            )?;
            assert_eq!(dead.len(), 1);
            let hook_since = inspect::list(
                conn,
                &Query {
                    state: None,
                    channel: Some("hook".into()),
                    organisation: None,
                    since_ms: Some(101),
                    limit: 10,
                },
            )?;
            assert_eq!(hook_since.len(), 2, "{hook_since:?}");
            assert_eq!(
                inspect::oldest(conn, AlertState::Pending, 1)?[0].id,
                "grouped-0"
            );
            assert!(inspect::requeue(conn, "alone-2", 6_000)?);
            assert!(!inspect::requeue(conn, "alone-2", 6_000)?, "only dead ones");
            assert_eq!(outbox::get(conn, "alone-2")?.unwrap().age_from_ms, 6_000);

            // Digests: the window of the oldest, formed once, claimed once.
            assert_eq!(digests::waiting(conn)?, [("chat".to_owned(), 100)]);
            let mut n = 0;
            let formed = digests::form(conn, "chat", 2, 2, 150, 60_000, || {
                n += 1;
                format!("dgst_{n}")
            })?;
            assert_eq!(formed, ["dgst_1", "dgst_2"], "3 in the window, 2 a digest");
            let members: Vec<String> = digests::members(conn, "dgst_1")?
                .into_iter()
                .map(|a| a.id)
                .collect();
            assert_eq!(members, ["grouped-0", "grouped-1"]);
            assert_eq!(digests::waiting(conn)?, [("chat".to_owned(), 103)]);
            let due = digests::due(conn, &claim("r1", 150), 10)?;
            assert_eq!(due.len(), 2);
            assert_eq!(
                digests::due(conn, &claim("r2", 150), 10)?.is_empty(),
                shared
            );
            digests::record_outcome(conn, "dgst_1", 1, Recorded::Delivered, 160, "r1")?;
            assert_eq!(
                outbox::get(conn, "grouped-0")?.unwrap().state,
                AlertState::Delivered,
                "members settle with their digest"
            );
            assert_eq!(digests::get(conn, "dgst_1")?.unwrap().attempts, 1);
            assert_eq!(digests::next_due_after(conn, 150)?, shared.then_some(1_150));
            assert_eq!(digests::ungroup(conn, "chat")?, 1);
            Ok(())
        })
        .await
        .unwrap();
}

/// Replicas claiming at once from one outbox: each alert goes to exactly one of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_claiming_at_once_never_share_an_alert() {
    let engine = &postgres();
    let first = engine.open().await;
    first
        .run(|conn| {
            conn.transaction(|tx| {
                for i in 0..400 {
                    outbox::insert(tx, &alert(&format!("a{i:03}"), "hook", i, false))?;
                }
                Ok(())
            })
        })
        .await
        .unwrap();
    let claimed = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for replica in 0..4 {
        let store = engine.open().await;
        let claimed = claimed.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let name = format!("r{replica}");
                let got = store
                    .run(move |conn| outbox::due(conn, &claim(&name, 1_000), 7))
                    .await
                    .unwrap();
                if got.is_empty() {
                    break;
                }
                claimed
                    .lock()
                    .unwrap()
                    .extend(got.into_iter().map(|a| (a.id, replica)));
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let mut claimed = claimed.lock().unwrap().clone();
    claimed.sort();
    let ids: Vec<&String> = claimed.iter().map(|(id, _)| id).collect();
    let mut unique = ids.clone();
    unique.dedup();
    assert_eq!(ids.len(), 400, "every alert claimed");
    assert_eq!(unique.len(), 400, "none claimed twice");
    // After the claims lapse, they can be claimed again (a replica died holding them).
    let again = first
        .run(|conn| outbox::due(conn, &claim("late", 2_000), 1_000))
        .await
        .unwrap();
    assert_eq!(again.len(), 400);
}

async fn silences_held_transitions_bookkeeping_check(engine: &Engine) {
    let store = engine.open().await;
    store
        .run(|conn| {
            let silence = Silence {
                id: "sil_1".into(),
                created_ms: 0,
                starts_ms: 100,
                ends_ms: 200,
                reason: "maintenance «ü»".into(),
                projects: vec![17, 18],
                jobs: vec!["x".into()],
                events: vec![Event::from(Status::Error), Event::PendingReminder],
                organisations: vec!["acme".into()],
            };
            silences::insert(conn, &silence)?;
            assert!(silences::active(conn, 99)?.is_empty());
            assert_eq!(silences::active(conn, 150)?, std::slice::from_ref(&silence));
            assert_eq!(silences::ending_after(conn, 0)?.len(), 1);
            assert!(silences::end(conn, "sil_1", 160)?);
            assert!(!silences::end(conn, "sil_1", 170)?, "ended already");
            assert!(silences::active(conn, 165)?.is_empty());
            assert_eq!(silences::prune(conn, 1_000)?, 1);

            held::insert(conn, "o", "job-1", r#"{"job":{"status":"error"}}"#, 10)?;
            held::insert(conn, "o", "job-2", "{}", 11)?;
            assert!(held::has_job(conn, "o", "job-1")? && !held::has_job(conn, "o", "job-3")?);
            let all = held::all(conn, "o")?;
            assert_eq!(all.len(), 2);
            held::attempt_failed(conn, all[0].seq, "{}", 2, 500, "detail failed")?;
            let after = held::all(conn, "o")?;
            assert_eq!(
                (
                    after[0].attempts,
                    after[0].next_attempt_ms,
                    after[0].last_error.as_deref()
                ),
                (2, 500, Some("detail failed"))
            );
            held::delete(conn, all[0].seq)?;
            assert_eq!(held::count(conn)?, 1);

            let hour = 3_600_000;
            let now = 1_000 * hour;
            transitions::record(conn, "o", "a", None, &Status::Running, now - 30 * hour)?;
            transitions::record(
                conn,
                "o",
                "a",
                Some(&Status::Running),
                &Status::Done,
                now - hour,
            )?;
            transitions::record(conn, "o", "b", None, &Status::Error, now)?;
            let per_hour = transitions::per_hour(conn, now, 24)?;
            assert_eq!(
                (per_hour[22], per_hour[23], per_hour.iter().sum::<u64>()),
                (1, 1, 2)
            );
            let recent = transitions::recent(conn, 5)?;
            assert_eq!(recent[0].job_id, "b");
            assert_eq!(recent[1].previous, Some(Status::Running));
            assert_eq!(
                transitions::prune(conn, now + 7 * 24 * hour - 29 * hour)?,
                1
            );

            assert_eq!(Bookkeeping::read(conn, "o")?, Bookkeeping::default());
            let book = Bookkeeping {
                first_cycle_done: true,
                floor_us: Some(-5),
                anchor_us: Some(1_764_000_000_000_000),
                projects_checked: Some("17,18".into()),
                forgotten_below_us: Some(1_700_000_000_000_000),
            };
            book.write(conn, "o")?;
            assert_eq!(Bookkeeping::read(conn, "o")?, book);
            // The horizon `keep` forgot below never moves back (a longer `keep` after a
            // shorter one must not let forgotten jobs alert as new).
            Bookkeeping::forgot_below(conn, "o", 1_600_000_000_000_000)?;
            assert_eq!(
                Bookkeeping::read(conn, "o")?.silent_below_us(),
                1_700_000_000_000_000
            );
            Bookkeeping::forgot_below(conn, "o", 1_800_000_000_000_000)?;
            assert_eq!(
                Bookkeeping::read(conn, "o")?.silent_below_us(),
                1_800_000_000_000_000
            );
            Ok(())
        })
        .await
        .unwrap();
}

async fn failed_transactions_check(engine: &Engine) {
    let store = engine.open().await;
    let failed = store
        .run(|conn| {
            conn.transaction(|tx| {
                jobs::upsert(tx, "o", &job("kept-out", Status::Running, 1), 1)?;
                tx.execute("INSERT INTO no_such_table VALUES (1)", &[])?;
                Ok(())
            })
        })
        .await;
    assert!(failed.is_err());
    // A statement failing inside a transaction its caller left open is rolled back too.
    let left_open = store
        .run(|conn| {
            conn.begin()?;
            jobs::upsert(conn, "o", &job("also-out", Status::Running, 1), 1)?;
            Err::<(), _>(StoreError::Corrupt("given up".into()))
        })
        .await;
    assert!(left_open.is_err());
    let (kept, also) = store
        .run(|conn| {
            Ok((
                jobs::get(conn, "o", "kept-out")?,
                jobs::get(conn, "o", "also-out")?,
            ))
        })
        .await
        .unwrap();
    assert_eq!((kept, also), (None, None), "nothing of either landed");
}

/// A fenced store (the leader's) commits only while its token leads; PostgreSQL only
/// (SQLite has one process and no lease).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fenced_store_commits_nothing_once_its_token_no_longer_leads() {
    use sdm_watch::store::postgres::{self, lease::Leadership};
    let pg = Postgres::start();
    let settings = PgSettings::parse(&pg.url(), None).unwrap();
    let store = Store::connect(&settings).await.unwrap();
    let client = postgres::connect(&settings).await.unwrap();
    let ttl = std::time::Duration::from_millis(600);
    let a = Leadership::new("poller", "a", ttl);
    let b = Leadership::new("poller", "b", ttl);
    let held = a.acquire(&client).await.unwrap().unwrap();
    let fence = Arc::new(Mutex::new(Fence {
        lease: "poller".into(),
        token: held.token,
    }));
    let leader = store.fenced(fence.clone());
    leader
        .run(|conn| jobs::upsert(conn, "o", &job("while-leading", Status::Running, 1), 1))
        .await
        .expect("the leader commits while its lease holds");

    tokio::time::sleep(ttl + std::time::Duration::from_millis(200)).await;
    let taken = b.acquire(&client).await.unwrap().unwrap();
    assert!(taken.token > held.token);
    // Outside a transaction and inside one: both refused, nothing written.
    let alone = leader
        .run(|conn| jobs::upsert(conn, "o", &job("after-alone", Status::Running, 1), 1))
        .await;
    assert!(matches!(alone, Err(StoreError::Fenced { .. })), "{alone:?}");
    let in_tx = leader
        .run(|conn| {
            conn.transaction(|tx| jobs::upsert(tx, "o", &job("after-tx", Status::Running, 1), 1))
        })
        .await;
    assert!(matches!(in_tx, Err(StoreError::Fenced { .. })), "{in_tx:?}");
    let found = store
        .run(|conn| {
            Ok((
                jobs::get(conn, "o", "while-leading")?.is_some(),
                jobs::get(conn, "o", "after-alone")?.is_some(),
                jobs::get(conn, "o", "after-tx")?.is_some(),
            ))
        })
        .await
        .unwrap();
    assert_eq!(found, (true, false, false));
    // Reads are not fenced: a standby's status page still works.
    let reads = leader.run(|conn| jobs::count_by_status(conn)).await;
    assert!(reads.is_ok());
    // The unfenced handle (the delivery worker's) writes on.
    store
        .run(|conn| jobs::upsert(conn, "o", &job("worker", Status::Running, 1), 1))
        .await
        .unwrap();
}

/// Alerts queued by one replica wake the others' workers at the commit (LISTEN/NOTIFY),
/// not at their next look at the outbox.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_alerts_wake_the_other_replicas_when_committed() {
    use sdm_watch::store::postgres;
    let pg = Postgres::start();
    let settings = PgSettings::parse(&pg.url(), None).unwrap();
    let store = Store::connect(&settings).await.unwrap();
    let (woken, mut wakes) = tokio::sync::mpsc::unbounded_channel();
    let listener = tokio::spawn(postgres::listen(settings, move || {
        let _ = woken.send(());
    }));
    // Once when listening starts (a notification may have been missed before).
    tokio::time::timeout(std::time::Duration::from_secs(10), wakes.recv())
        .await
        .expect("listening");
    let started = std::time::Instant::now();
    let queued = tokio::spawn({
        let store = store.clone();
        async move {
            store
                .run(move |conn| {
                    conn.transaction(|tx| {
                        outbox::insert(tx, &alert("woken", "hook", 1, false))?;
                        outbox::announce(tx)?;
                        std::thread::sleep(std::time::Duration::from_millis(500));
                        Ok(())
                    })
                })
                .await
                .unwrap();
        }
    });
    tokio::time::timeout(std::time::Duration::from_secs(10), wakes.recv())
        .await
        .expect("woken by the commit");
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(450),
        "not before the transaction committed ({:?})",
        started.elapsed()
    );
    queued.await.unwrap();
    listener.abort();
}

/// A report's slot is decided once, whoever asks again; another slot or report is apart.
async fn report_slots_check(engine: &Engine) {
    use sdm_watch::store::reports::{self, Outcome};
    let store = engine.open().await;
    store
        .run(|conn| {
            assert!(!reports::decided(conn, "weekly", "2026-12-07")?);
            assert!(reports::decide(
                conn,
                "weekly",
                "2026-12-07",
                1,
                2,
                Outcome::Sent
            )?);
            assert!(!reports::decide(
                conn,
                "weekly",
                "2026-12-07",
                1,
                3,
                Outcome::Skipped
            )?);
            assert!(reports::decided(conn, "weekly", "2026-12-07")?);
            assert!(reports::decide(
                conn,
                "weekly",
                "2026-12-14",
                1,
                2,
                Outcome::Skipped
            )?);
            assert!(reports::decide(
                conn,
                "daily",
                "2026-12-07",
                1,
                2,
                Outcome::Sent
            )?);
            Ok(())
        })
        .await
        .unwrap();
}

/// The audit trail reads back newest first, from a time, at most a number.
async fn audit_check(engine: &Engine) {
    use sdm_watch::store::audit::{self, Entry};
    let store = engine.open().await;
    store
        .run(|conn| {
            for (at_ms, action) in [
                (10, "silence.add"),
                (20, "alerts.retry"),
                (30, "silence.end"),
            ] {
                audit::record(
                    conn,
                    &Entry {
                        at_ms,
                        who: "alice «ü»".into(),
                        address: "192.0.2.1".into(),
                        action: action.into(),
                        detail: "project 17".into(),
                        outcome: "ok".into(),
                    },
                )?;
            }
            let all = audit::since(conn, i64::MIN, 10)?;
            let actions: Vec<&str> = all.iter().map(|e| e.action.as_str()).collect();
            assert_eq!(actions, ["silence.end", "alerts.retry", "silence.add"]);
            assert_eq!(all[0].who, "alice «ü»");
            assert_eq!(audit::since(conn, 20, 10)?.len(), 2);
            assert_eq!(audit::since(conn, i64::MIN, 1)?.len(), 1);
            Ok(())
        })
        .await
        .unwrap();
}
