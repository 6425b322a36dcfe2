//! Nothing from outside crashes the daemon: the reproductions of issue 21 through the
//! release binary's code path (the real `sdm-watch` against the simulator), and a property
//! test driving the planner, the API client and the delivery schedule with extreme values.

use std::time::Duration;

use proptest::prelude::*;
use sdm_watch::domain::Status;
use sdm_watch::domain::time::{MAX_DURATION, after_ms, from_micros, micros, parse_api_time};
use sdm_watch::poll::plan;
use sdm_watch::sim::{Fault, NewJob, Simulator};
use time::macros::datetime;

use sdm_watch::sim::Reply;
use testkit::cli::{sdm_watch, stderr, stdout};
use testkit::config::config_text;
use testkit::{World, step};

/// A config for `sim` with its state in `dir`, after `extra` (sections of its own).
fn with_state(sim: &Simulator, dir: &tempfile::TempDir, extra: &str) -> String {
    let state = dir.path().join("state.db");
    config_text(
        sim,
        "",
        &format!("{extra}[state]\npath = \"{}\"\n", state.display()),
    )
}

/// A panic exits 101; every outcome here must be 0 (or a clear 1/2), never that.
fn assert_no_panic(output: &std::process::Output, what: &str) {
    let err = stderr(output);
    assert_ne!(output.status.code(), Some(101), "{what} panicked: {err}");
    assert!(!err.contains("panicked"), "{what} panicked: {err}");
}

#[tokio::test]
async fn a_retry_after_of_u64_max_waits_max_interval_in_jobs_list_and_once() {
    let sim = Simulator::start().await.unwrap();
    let id = sim.add_job(NewJob::new(Status::Running).name("Feed"));
    let dir = tempfile::tempdir().unwrap();
    let config = with_state(&sim, &dir, "");
    let huge = Fault::RateLimited {
        retry_after_secs: u64::MAX,
    };
    for args in [&["jobs", "list"][..], &["once"][..]] {
        sim.inject([huge.clone()]);
        let started = std::time::Instant::now();
        let output = sdm_watch(&config, args, &[]).await;
        assert_no_panic(&output, &args.join(" "));
        assert_eq!(
            output.status.code(),
            Some(0),
            "{args:?}: {}",
            stderr(&output)
        );
        // retry.max_interval is 200ms in this config: the wait was that, not forever.
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{args:?} waited {:?}",
            started.elapsed()
        );
    }
    let output = sdm_watch(&config, &["jobs", "list"], &[]).await;
    assert!(stdout(&output).contains(&id), "{}", stdout(&output));
}

#[tokio::test]
async fn a_job_dated_at_the_end_of_year_9999_that_leaves_the_listings_is_no_crash_loop() {
    let sim = Simulator::start().await.unwrap();
    let last = datetime!(9999-12-31 23:59:59.999999 UTC);
    let first = datetime!(0001-01-01 00:00:00 UTC);
    let late = sim.add_job(NewJob::new(Status::Running).name("Late").created(last));
    let early = sim.add_job(NewJob::new(Status::Pending).name("Early").created(first));
    let dir = tempfile::tempdir().unwrap();
    let config = with_state(&sim, &dir, "[poll]\nlookback = \"36500d\"\n");
    let output = sdm_watch(&config, &["once"], &[]).await;
    assert_no_panic(&output, "the first once");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    // Both leave every listing: the next cycles look them up by their creation dates.
    sim.remove_job(&late);
    sim.remove_job(&early);
    for round in 0..3 {
        let output = sdm_watch(&config, &["once"], &[]).await;
        assert_no_panic(
            &output,
            &format!("once after the jobs left (round {round})"),
        );
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    }
    let output = sdm_watch(&config, &["state", "--json"], &[]).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}

#[tokio::test]
async fn durations_past_a_century_are_refused_naming_the_key() {
    let sim = Simulator::start().await.unwrap();
    let config = config_text(&sim, "", "[poll]\nlookback = \"20000y\"\n");
    let output = sdm_watch(&config, &["check"], &[]).await;
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("poll.lookback"),
        "{}",
        stderr(&output)
    );
    assert!(stderr(&output).contains("100 years"), "{}", stderr(&output));

    let dir = tempfile::tempdir().unwrap();
    let config = with_state(&sim, &dir, "");
    let output = sdm_watch(
        &config,
        &[
            "silence",
            "add",
            "--all",
            "--for",
            "600000000y",
            "--reason",
            "test",
        ],
        &[],
    )
    .await;
    assert_no_panic(&output, "silence add");
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains("100 years"), "{}", stderr(&output));
}

#[tokio::test]
async fn a_receivers_retry_after_of_u64_max_waits_max_interval_not_the_past() {
    let w = World::start().await;
    let job = w.sim.add_job(NewJob::new(Status::Running));
    let parts = w.parts(&w.config("", "1h", &w.ops_hook())).await;
    step(&parts).await;
    w.hook.reply_next([Reply::StatusRetryAfter(429, u64::MAX)]);
    w.sim.set_status(&job, Status::Done, None);
    step(&parts).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while w.hook.delivered().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the alert was never retried"
        );
        parts
            .worker
            .deliver_due()
            .await
            .expect("deliveries recorded");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let attempts = w.hook.received();
    assert_eq!(attempts.len(), 2, "one refusal, then the delivery");
    // retry.max_interval is 200ms: the retry waited that (not a wrapped time in the past,
    // which retried at once, nor u64::MAX seconds).
    let gap = attempts[1].at - attempts[0].at;
    assert!(gap >= Duration::from_millis(190), "retried after {gap:?}");
}

fn any_date() -> impl Strategy<Value = time::OffsetDateTime> {
    let first = datetime!(0001-01-01 00:00:00 UTC).unix_timestamp_nanos();
    let last = datetime!(9999-12-31 23:59:59.999999999 UTC).unix_timestamp_nanos();
    prop_oneof![Just(first), Just(last), first..=last,]
        .prop_map(|nanos| time::OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Dates from year 1 to 9999 with any offset: the planner's listings, the store's
    /// microseconds and the API's date text never panic, and stay ordered.
    #[test]
    fn the_planner_takes_any_date(at in any_date(), other in any_date(), offset_min in -1439i32..=1439) {
        let offset = time::UtcOffset::from_whole_seconds(offset_min * 60).unwrap();
        // Any offset, including one that puts the UTC date out of range: never a panic.
        if let Some(local) = at.checked_to_offset(offset) {
            let text = local.format(&time::format_description::well_known::Rfc3339).unwrap();
            prop_assert_eq!(parse_api_time(&text), Some(at));
        }
        let shifted = format!("{}{}", sdm_watch::domain::time::format_api_time(at).trim_end_matches('Z'), if offset_min < 0 { "-05:00" } else { "+05:00" });
        let _ = parse_api_time(&shifted).map(sdm_watch::domain::time::format_api_time);
        let (first, last) = (micros(at.min(other)), micros(at.max(other)));
        let filter = plan::range_listing(first, last, None);
        if let (Some(after), Some(before)) = (filter.created_after, filter.created_before) {
            prop_assert!(after < before);
        }
        prop_assert_eq!(from_micros(micros(at)).map(micros), Some(micros(at)));
        let _ = plan::cycle_start(at, tokio::time::Instant::now(), None);
    }

    /// Waits up to u64::MAX seconds after any store time: never wraps into the past.
    #[test]
    fn waits_after_store_times_never_wrap(ms in any::<i64>(), secs in any::<u64>(), nanos in 0u32..1_000_000_000) {
        let wait = Duration::new(secs, nanos);
        prop_assert!(after_ms(ms, wait) >= ms);
    }

    /// Every duration a config may hold, added to any date the API can send, does not panic.
    #[test]
    fn config_durations_up_to_their_maximum_fit(at in any_date(), secs in 0u64..=MAX_DURATION.as_secs()) {
        let wait = time::Duration::seconds(secs as i64);
        let _ = at.checked_sub(wait);
        let _ = at.checked_add(wait);
        prop_assert!(std::time::Instant::now().checked_add(Duration::from_secs(secs)).is_some());
        prop_assert!(after_ms(sdm_watch::domain::time::now_ms(), Duration::from_secs(secs)) > 0);
    }
}
