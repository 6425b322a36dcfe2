//! Incidents into the tools teams page with (issue 23): a real Alertmanager (two, as a
//! cluster) holding the daemon's open incidents, resolving ended ones and expiring them
//! on its own after a SIGKILL; and PagerDuty's Events API v2, simulated as PagerDuty
//! documents it, every event validated against a schema of the fields PagerDuty documents (tests/data).

use std::time::{Duration, Instant};

use serde_json::Value;

use sdm_watch::domain::Status;
use sdm_watch::sim::{NewJob, Reply, Service};
use sdm_watch::store::inspect::{self, Query};
use sdm_watch::store::outbox::AlertState;
use testkit::alertmanager::{Alertmanager, label};
use testkit::{Daemon, World, step};

const RESEND: u64 = 10;

fn named<'a>(alerts: &'a [Value], alertname: &str) -> Option<&'a Value> {
    alerts.iter().find(|a| label(a, "alertname") == alertname)
}

fn ends_at(alert: &Value) -> time::OffsetDateTime {
    let text = alert["endsAt"].as_str().expect("endsAt");
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .expect("endsAt is RFC 3339")
}

/// The daemon against two real Alertmanagers (`urls`, as for a cluster): a failed job and
/// a waiting one appear in both as active alerts with the labels SPEC names; they stay
/// active across more than 4 x resend while the daemon runs; the failure turns resolved
/// when a re-run succeeds; after a SIGKILL the waiting one expires on its own, at the
/// `endsAt` the last post gave it. `amtool alert query` lists them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_alertmanager_holds_open_incidents_resolves_ended_ones_and_expires_the_rest() {
    let w = World::start().await;
    let (first, second) = (Alertmanager::start().await, Alertmanager::start().await);
    let feed = w.sim.add_job(
        NewJob::new(Status::Running)
            .name("Supplier <feed> \"nightly\"")
            .project(17),
    );
    let import = w
        .sim
        .add_job(NewJob::new(Status::Running).name("Import").project(18));
    let channels = format!(
        "[links]\njob = \"https://app.example.com/jobs/{{id}}\"\n\n\
         [[webhook]]\nname = \"am\"\nformat = \"alertmanager\"\nurls = [\"{}\", \"{}/\"]\nresend = \"{RESEND}s\"\n",
        first.url(),
        second.url()
    );
    let path = w.dir.path().join("config.toml");
    std::fs::write(&path, w.config("", "1h", &channels)).unwrap();
    let daemon = Daemon::start(&path, &[]);
    daemon.wait_for_log("poll cycle done", 1).await;

    w.sim
        .set_status(&feed, Status::Error, Some("Column 'sku' missing"));
    w.sim.set_status(&import, Status::Pending, None);
    let both_open = |alerts: &[Value]| {
        named(alerts, "SdmJobFailed").is_some() && named(alerts, "SdmJobPending").is_some()
    };
    let minute = Duration::from_secs(60);
    for am in [&first, &second] {
        let alerts = am.wait_for("both incidents open", minute, both_open).await;
        let failed = named(&alerts, "SdmJobFailed").unwrap();
        assert_eq!(label(failed, "job_id"), feed);
        assert_eq!(label(failed, "project"), "17");
        assert_eq!(label(failed, "severity"), "error");
        assert_eq!(label(failed, "organisation"), "default");
        assert_eq!(failed["status"]["state"], "active");
        let summary = failed["annotations"]["summary"].as_str().unwrap();
        assert!(summary.contains("Supplier <feed> \"nightly\""), "{summary}");
        let description = failed["annotations"]["description"].as_str().unwrap();
        assert!(
            description.contains("Column 'sku' missing"),
            "{description}"
        );
        assert_eq!(
            failed["generatorURL"],
            format!("https://app.example.com/jobs/{feed}")
        );
        let pending = named(&alerts, "SdmJobPending").unwrap();
        assert_eq!(label(pending, "severity"), "warning");
        assert_eq!(label(pending, "job_id"), import);
    }
    let table = first.amtool_query();
    assert!(
        table.contains("SdmJobFailed") && table.contains("SdmJobPending"),
        "{table}"
    );

    // While the daemon runs, both stay active past 4 x resend: each resend moves endsAt on.
    let watched = Instant::now();
    let first_ends = ends_at(named(&first.alerts().await, "SdmJobFailed").unwrap());
    let span = Duration::from_secs(4 * RESEND + 5);
    while watched.elapsed() < span {
        let alerts = first.alerts().await;
        assert!(
            both_open(&alerts),
            "an open incident left Alertmanager after {:?} while the daemon runs: {alerts:#?}",
            watched.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let later_ends = ends_at(named(&first.alerts().await, "SdmJobFailed").unwrap());
    assert!(
        later_ends > first_ends,
        "resends move endsAt on: {first_ends} then {later_ends}"
    );

    // The re-run succeeds: the failure is resolved in both (long before it would expire),
    // the wait stays.
    w.sim.set_status(&feed, Status::Done, None);
    let resolved_at = Instant::now();
    for am in [&first, &second] {
        am.wait_for("the failure resolved", minute, |alerts| {
            named(alerts, "SdmJobFailed").is_none() && named(alerts, "SdmJobPending").is_some()
        })
        .await;
    }
    assert!(
        resolved_at.elapsed() < Duration::from_secs(3 * RESEND),
        "resolved by the resolution, not by expiry: {:?}",
        resolved_at.elapsed()
    );

    // SIGKILL: nobody posts any more; the wait expires on its own at its endsAt.
    let pending_ends = ends_at(named(&first.alerts().await, "SdmJobPending").unwrap());
    daemon.kill().await;
    let killed = time::OffsetDateTime::now_utc();
    assert!(
        pending_ends > killed + time::Duration::seconds(RESEND as i64 * 2),
        "endsAt is about 4 x resend ahead of the last post: {pending_ends} at {killed}"
    );
    first
        .wait_for(
            "the open incident expired",
            Duration::from_secs(4 * RESEND + 30),
            |alerts| named(alerts, "SdmJobPending").is_none(),
        )
        .await;
    let gone = time::OffsetDateTime::now_utc();
    assert!(
        gone >= pending_ends - time::Duration::seconds(1),
        "it expired at its endsAt ({pending_ends}), not before: gone at {gone}"
    );
}

const ROUTING_KEY: &str = "0123456789abcdef0123456789abcdef";

/// Validates `event` against PagerDuty's Events API v2 OpenAPI description.
fn valid_pagerduty_event(event: &Value) {
    crate::formats::python_check("pagerduty", event, "a valid Events API v2 event");
}

/// PagerDuty as its documentation says it answers: a failure triggers with the dedup key,
/// a repeat triggers again with the same key, a 429 is tried again, a resolve queued while
/// PagerDuty is down is delivered after, and a 400 makes the alert dead with PagerDuty's
/// own words. Every event sent is valid by the schema of PagerDuty's documented fields.
#[tokio::test]
async fn pagerduty_triggers_repeats_and_resolves_one_alert_per_incident() {
    let w = World::start().await;
    w.hook.set_default(Reply::Like(Service::PagerDuty));
    let long_name = "Ünïcode feed ".repeat(120);
    let feed = w
        .sim
        .add_job(NewJob::new(Status::Running).name(&long_name).project(17));
    let channels = format!(
        "[links]\njob = \"https://app.example.com/jobs/{{id}}\"\nstatus_page = \"https://status.example.com/sdm\"\n\n\
         [[webhook]]\nname = \"pd\"\nformat = \"pagerduty\"\nurl = \"{}\"\nrouting_key = \"{ROUTING_KEY}\"\n\n\
         [[webhook]]\nname = \"pd-wrong-key\"\nformat = \"pagerduty\"\nurl = \"{}\"\nrouting_key = \"not-32-characters\"\n",
        w.hook.url("/pd"),
        w.hook.url("/pd-wrong-key"),
    );
    let parts = w.parts(&w.config("", "1h", &channels)).await;
    step(&parts).await;

    w.sim
        .set_status(&feed, Status::Error, Some("Column 'sku' missing"));
    step(&parts).await;
    w.sim.set_status(&feed, Status::Running, None);
    step(&parts).await;
    w.hook.reply_next([Reply::Status(429)]);
    w.sim
        .set_status(&feed, Status::Error, Some("Column 'sku' missing again"));
    step(&parts).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let events = |path: &str| -> Vec<Value> {
        w.hook
            .delivered()
            .iter()
            .filter(|h| h.path == path)
            .map(|h| h.json())
            .collect()
    };
    while events("/pd").len() < 2 {
        assert!(
            Instant::now() < deadline,
            "the 429'd trigger is not retried"
        );
        parts.worker.deliver_due().await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // PagerDuty is down when the re-run succeeds: the resolve waits, then goes.
    w.hook.set_default(Reply::Status(503));
    w.sim.set_status(&feed, Status::Done, None);
    step(&parts).await;
    assert_eq!(
        events("/pd").len(),
        2,
        "nothing gets through while it is down"
    );
    w.hook.set_default(Reply::Like(Service::PagerDuty));
    while events("/pd").len() < 3 {
        assert!(
            Instant::now() < deadline,
            "the queued resolve is not delivered"
        );
        parts.worker.deliver_due().await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let sent = events("/pd");
    let key = format!("sdm-watch/{feed}/error");
    let actions: Vec<(&str, &str)> = sent
        .iter()
        .map(|e| {
            (
                e["event_action"].as_str().unwrap(),
                e["dedup_key"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            ("trigger", key.as_str()),
            ("trigger", key.as_str()),
            ("resolve", key.as_str())
        ]
    );
    let trigger = &sent[0];
    assert_eq!(trigger["routing_key"], ROUTING_KEY);
    assert_eq!(trigger["payload"]["severity"], "error");
    let summary = trigger["payload"]["summary"].as_str().unwrap();
    assert!(
        summary.chars().count() <= 1024 && summary.ends_with("..."),
        "{summary}"
    );
    assert_eq!(
        trigger["payload"]["custom_details"]["Message"],
        "Column 'sku' missing"
    );
    assert_eq!(trigger["payload"]["custom_details"]["Project"], "17");
    assert_eq!(trigger["payload"]["component"], "project 17");
    assert_eq!(
        trigger["links"][0]["href"],
        format!("https://app.example.com/jobs/{feed}")
    );
    assert_eq!(trigger["client"], "sdm-watch");
    assert_eq!(trigger["client_url"], "https://status.example.com/sdm");
    assert_eq!(
        sent[1]["payload"]["custom_details"]["Message"],
        "Column 'sku' missing again"
    );
    for event in &sent {
        valid_pagerduty_event(event);
    }

    // `sdm-watch test-alert` reaches PagerDuty too: an info trigger of its own key.
    let test = testkit::cli::sdm_watch(
        &w.config("", "1h", &channels),
        &["test-alert", "--channel", "pd"],
        &[],
    )
    .await;
    assert_eq!(
        test.status.code(),
        Some(0),
        "{}",
        testkit::cli::stderr(&test)
    );
    let tested = events("/pd").pop().unwrap();
    assert_eq!(tested["event_action"], "trigger");
    assert_eq!(tested["payload"]["severity"], "info");
    assert_eq!(
        tested["dedup_key"],
        "sdm-watch/00000000-0000-0000-0000-000000000000/test"
    );
    valid_pagerduty_event(&tested);

    // The channel with a key PagerDuty refuses: dead, with PagerDuty's reason.
    let dead = parts
        .store
        .run(|conn| {
            inspect::list(
                conn,
                &Query {
                    state: Some(AlertState::Dead),
                    channel: Some("pd-wrong-key".into()),
                    limit: 10,
                    ..Query::default()
                },
            )
        })
        .await
        .unwrap();
    assert!(!dead.is_empty());
    let error = dead[0].last_error.as_deref().unwrap_or_default();
    assert!(
        error.contains("400") && error.contains("Length of 'routing_key' is incorrect"),
        "{error}"
    );
}

/// A cluster with one member down still takes the incident (delivered once one member
/// took it, as Prometheus counts it); the base URL's path prefix is kept; basic auth and
/// a bearer token go as `Authorization`.
#[tokio::test]
async fn a_cluster_member_down_does_not_hold_an_incident_back_and_auth_is_sent() {
    let w = World::start().await;
    let feed = w.sim.add_job(NewJob::new(Status::Running).name("Feed"));
    let down = format!("http://127.0.0.1:{}", testkit::ports::free());
    let channels = format!(
        "[[webhook]]\nname = \"am\"\nformat = \"alertmanager\"\nurls = [\"{down}\", \"{}\"]\nusername = \"sdm\"\npassword = \"s3cret\"\n\n\
         [[webhook]]\nname = \"am-bearer\"\nformat = \"alertmanager\"\nurl = \"{}\"\nbearer_token = \"am-token\"\n",
        w.hook.url("/prefix"),
        w.hook.url("/bearer"),
    );
    let parts = w.parts(&w.config("", "1h", &channels)).await;
    step(&parts).await;
    w.sim.set_status(&feed, Status::Error, Some("boom"));
    step(&parts).await;

    let posted = |path: &str| {
        w.hook
            .received()
            .into_iter()
            .find(|h| h.path == path)
            .unwrap_or_else(|| panic!("nothing posted to {path}"))
    };
    let basic = posted("/prefix/api/v2/alerts");
    assert_eq!(
        basic.header("authorization"),
        Some("Basic c2RtOnMzY3JldA==")
    );
    let alerts = basic.json();
    assert_eq!(alerts[0]["labels"]["alertname"], "SdmJobFailed");
    assert_eq!(alerts[0]["labels"]["job_id"], feed.as_str());
    let bearer = posted("/bearer/api/v2/alerts");
    assert_eq!(bearer.header("authorization"), Some("Bearer am-token"));

    let delivered = parts
        .store
        .run(|conn| {
            inspect::list(
                conn,
                &Query {
                    state: Some(AlertState::Delivered),
                    channel: Some("am".into()),
                    limit: 10,
                    ..Query::default()
                },
            )
        })
        .await
        .unwrap();
    assert_eq!(delivered.len(), 1, "delivered though one member is down");
}
