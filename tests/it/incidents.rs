//! Incidents in the store (issue 23), on SQLite and on a real PostgreSQL: an alert opens
//! one per job and condition, a repeat joins it, its end resolves it with the channels it
//! went to, and a resolution is not due before the alert it resolves has gone out. (The
//! differential test checks the whole story against a naive model over random histories.)

use sdm_watch::domain::{Event, Status};
use sdm_watch::store::incidents::{self, Condition};
use sdm_watch::store::outbox::{self, Alert, AlertState, Claim, Recorded, Target};

use std::time::Duration;

use sdm_watch::sim::NewJob;
use testkit::cli::{sdm_watch, stderr, stdout};
use testkit::{World, step};

use crate::engines::{Engine, both};

both!(incidents_open_join_and_resolve, super::incidents_check);

fn alert(id: &str, channel: &str, job: &str, event: Event, at: i64) -> Alert {
    let payload = format!(r#"{{"type":"job.{event}"}}"#);
    Alert::new(id.into(), channel, "acme", job, event, payload, at)
}

async fn incidents_check(engine: &Engine) {
    let store = engine.open().await;
    store
        .run(|conn| {
            // A failure on two channels, a silenced one on a third: one incident, told to two.
            let first = [
                alert("a1", "ops", "job-1", Status::Error.into(), 100),
                alert("a2", "mail", "job-1", Status::Error.into(), 100),
            ];
            let mut muted = alert("a3", "chat", "job-1", Status::Error.into(), 100);
            muted.state = AlertState::Silenced;
            for alert in first.iter().chain([&muted]) {
                outbox::insert(conn, alert)?;
            }
            incidents::open(conn, &first)?;
            incidents::open(conn, &[muted])?;
            // The job runs again and fails again: the same incident, its first alerts kept.
            let again = alert("a4", "ops", "job-1", Status::Error.into(), 200);
            incidents::open(conn, &[again])?;
            // Pending elsewhere; a reminder of it joins its incident; `done` opens nothing.
            incidents::open(
                conn,
                &[
                    alert("b1", "ops", "job-2", Status::Pending.into(), 150),
                    alert("b2", "ops", "job-2", Event::PendingReminder, 250),
                    alert("c1", "ops", "job-3", Status::Done.into(), 150),
                ],
            )?;
            let open = incidents::list(conn, Some("acme"), 10)?;
            let mut seen: Vec<(&str, &str, &str)> = open
                .iter()
                .map(|i| {
                    (
                        i.job_id.as_str(),
                        i.condition.as_str(),
                        i.first_alert.as_str(),
                    )
                })
                .collect();
            seen.sort();
            assert_eq!(seen, [("job-1", "error", "a1"), ("job-2", "pending", "b1")]);
            assert!(open.iter().all(|i| i.resolved_ms.is_none()));
            assert!(incidents::list(conn, Some("globex"), 10)?.is_empty());

            // Running again ends nothing of a failure; done does, with both channels.
            let ended = |status: Status| move |c: Condition| c.ended_by(&status);
            let none = incidents::resolve(
                conn,
                "acme",
                "job-1",
                &ended(Status::Running),
                "running",
                300,
            )?;
            assert!(none.is_empty(), "a re-run has not succeeded yet");
            let resolved =
                incidents::resolve(conn, "acme", "job-1", &ended(Status::Done), "done", 400)?;
            assert_eq!(resolved.len(), 1);
            assert_eq!(resolved[0].condition, Condition::Error);
            assert_eq!(
                resolved[0].channels,
                [
                    ("mail".to_owned(), "a2".to_owned()),
                    ("ops".to_owned(), "a1".to_owned())
                ]
            );
            assert!(
                incidents::resolve(conn, "acme", "job-1", &ended(Status::Done), "done", 500)?
                    .is_empty(),
                "resolved once"
            );
            // A new failure after the resolution is a new incident.
            incidents::open(
                conn,
                &[alert("a5", "ops", "job-1", Status::Error.into(), 600)],
            )?;
            let listed = incidents::list(conn, Some("acme"), 10)?;
            assert_eq!(listed.len(), 3);
            assert_eq!(
                (listed[0].resolved_ms, listed[2].resolved_ms),
                (None, Some(400)),
                "open ones first, then the resolved: {listed:?}"
            );
            assert_eq!(listed[2].resolved_status.as_deref(), Some("done"));
            // Resolved incidents are kept for a while, open ones until they end.
            incidents::prune(conn, 400 + incidents::KEEP_MS)?;
            assert_eq!(incidents::list(conn, Some("acme"), 10)?.len(), 3);
            incidents::prune(conn, 401 + incidents::KEEP_MS)?;
            let kept = incidents::list(conn, Some("acme"), 10)?;
            assert_eq!(kept.len(), 2, "the resolved one is gone: {kept:?}");
            assert!(kept.iter().all(|i| i.resolved_ms.is_none()));

            // A resolution waits for the alert it resolves to leave `pending`.
            let mut resolution = alert("r1", "ops", "job-1", Event::Resolved, 400);
            resolution.after_alert = Some("a1".into());
            outbox::insert(conn, &resolution)?;
            let claim = |now_ms| Claim {
                replica: "r".into(),
                now_ms,
                ttl_ms: 1,
            };
            let due: Vec<String> = outbox::due(conn, &claim(1_000), 10)?
                .into_iter()
                .map(|a| a.id)
                .collect();
            assert!(
                due.contains(&"a1".to_owned()) && !due.contains(&"r1".to_owned()),
                "{due:?}"
            );
            outbox::record_outcome(
                conn,
                Target::Alert,
                "a1",
                1,
                Recorded::Delivered,
                1_000,
                "r",
            )?;
            let due: Vec<String> = outbox::due(conn, &claim(2_000), 10)?
                .into_iter()
                .map(|a| a.id)
                .collect();
            assert!(due.contains(&"r1".to_owned()), "{due:?}");
            Ok(())
        })
        .await
        .unwrap();
}

/// The daemon's parts against the simulator: a failure re-run successfully, and a job
/// that stops waiting, are resolved on the channels with `send_resolved`, after their
/// first alert, naming it; a channel without it hears nothing of it.
#[tokio::test]
async fn a_failure_re_run_successfully_and_a_wait_that_ends_are_resolved_where_asked() {
    let w = World::start().await;
    let feed = w
        .sim
        .add_job(NewJob::new(Status::Running).name("Supplier feed"));
    let import = w.sim.add_job(NewJob::new(Status::Running).name("Import"));
    let channels = w
        .standard_channels()
        .replacen(
            "name = \"ops\"\n",
            "name = \"ops\"\nsend_resolved = true\n",
            1,
        )
        .replacen(
            "name = \"oncall\"\n",
            "name = \"oncall\"\nsend_resolved = true\n",
            1,
        )
        + &format!(
            "\n[[webhook]]\nname = \"plain\"\nurl = \"{}\"\n",
            w.hook.url("/plain")
        );
    let parts = w.parts(&w.config("", "1h", &channels)).await;
    step(&parts).await;

    w.sim
        .set_status(&feed, Status::Error, Some("Column 'sku' missing"));
    w.sim.set_status(&import, Status::Pending, None);
    step(&parts).await;
    let error_id = |path: &str| {
        w.hook
            .received()
            .iter()
            .find(|h| h.path == path && h.json()["type"] == "job.error")
            .and_then(|h| h.header("webhook-id").map(str::to_owned))
            .expect("the failure was told")
    };
    let (ops_error, plain_error) = (error_id("/ops"), error_id("/plain"));
    w.sim.set_status(&feed, Status::Running, None); // run again: not yet resolved
    w.sim.set_status(&import, Status::Running, None); // no longer waiting: resolved
    step(&parts).await;
    w.sim.set_status(&feed, Status::Done, None);
    step(&parts).await;

    let kinds = |path: &str| -> Vec<(String, String)> {
        w.hook
            .received()
            .iter()
            .filter(|h| h.path == path)
            .map(|h| {
                let body = h.json();
                (
                    body["type"].as_str().unwrap().to_owned(),
                    body["data"]["job"]["name"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let plain = kinds("/plain");
    assert!(
        plain.iter().all(|(kind, _)| kind != "job.resolved"),
        "{plain:?}"
    );
    assert_eq!(plain.len(), 3, "error, pending, done: {plain:?}");
    let resolved: Vec<_> = w
        .hook
        .received()
        .into_iter()
        .filter(|h| h.path == "/ops" && h.json()["type"] == "job.resolved")
        .collect();
    assert_eq!(resolved.len(), 2, "{:?}", kinds("/ops"));
    let body = |name: &str| {
        resolved
            .iter()
            .map(|h| h.json())
            .find(|b| b["data"]["job"]["name"] == name)
            .unwrap()
    };
    let feed_resolved = body("Supplier feed");
    assert_eq!(feed_resolved["data"]["condition"], "error");
    assert_eq!(feed_resolved["data"]["resolves"], ops_error.as_str());
    assert_ne!(ops_error, plain_error);
    assert_eq!(feed_resolved["data"]["job"]["status"], "done");
    assert_eq!(feed_resolved["data"]["previous_status"], "running");
    let import_resolved = body("Import");
    assert_eq!(import_resolved["data"]["condition"], "pending");
    assert_eq!(import_resolved["data"]["job"]["status"], "running");

    // The e-mail channel asked too: its subjects say so.
    // error and pending, then pending resolved, then done and error resolved.
    let mails = w.smtp.wait_for(5, Duration::from_secs(10)).await;
    assert_eq!(mails.len(), 5);
    let mut subjects: Vec<String> = mails
        .iter()
        .filter_map(|mail| mail.header("subject"))
        .filter(|subject| subject.contains("resolved"))
        .collect();
    subjects.sort();
    assert_eq!(
        subjects,
        [
            "[sdm-watch] resolved: Import",
            "[sdm-watch] resolved: Supplier feed"
        ]
    );

    // `alerts list --incidents` tells both stories: what ended each, and where it went.
    let text = w.config("", "1h", &channels);
    let listed = sdm_watch(&text, &["alerts", "list", "--incidents", "--json"], &[]).await;
    assert_eq!(listed.status.code(), Some(0), "{}", stderr(&listed));
    let listed: serde_json::Value = serde_json::from_str(&stdout(&listed)).unwrap();
    let story = |job: &str| {
        listed
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["job_id"] == job)
            .cloned()
            .unwrap_or_else(|| panic!("no incident of {job}: {listed:#}"))
    };
    let (failed, waited) = (story(&feed), story(&import));
    assert_eq!(failed["condition"], "error");
    assert_eq!(failed["state"], "resolved");
    assert_eq!(failed["resolved_by"], "done");
    assert_eq!(
        failed["channels"],
        serde_json::json!(["oncall", "ops", "plain"])
    );
    assert_eq!(waited["condition"], "pending");
    assert_eq!(waited["resolved_by"], "running");
    let table = stdout(&sdm_watch(&text, &["alerts", "list", "--incidents"], &[]).await);
    assert!(
        table.contains(&format!("resolved  error         job {feed}")),
        "{table}"
    );
}

/// `job.resolved` in each chat format: titled `resolved: <job name>`, in the good tone
/// (the check mark, green), whatever the job's status now.
#[test]
fn a_resolution_reads_resolved_and_good_in_every_chat_format() {
    use sdm_watch::notify::format;
    use sdm_watch::notify::{AlertEvent, JobSnapshot, Message};

    let job = JobSnapshot {
        id: "job-1".into(),
        name: Some("Supplier <b>feed</b>".into()),
        status: "running".into(),
        creation_date: None,
        completion_date: None,
        project: Some(17),
        step: None,
        message: None,
    };
    let mut event = AlertEvent::new(
        job,
        Some("pending".into()),
        "https://sdm.example/api/v1/jobs/job-1/".into(),
        time::OffsetDateTime::UNIX_EPOCH,
    );
    event.kind = "job.resolved".into();
    event.data.condition = Some("pending".into());
    event.data.resolves = Some("msg_first".into());
    assert_eq!(event.title(), "resolved: Supplier <b>feed</b>");
    assert!(
        event.headline().contains("no longer pending"),
        "{}",
        event.headline()
    );
    let message = Message::Alert {
        id: "msg_2".into(),
        payload: event.to_json(),
    };
    for (name, good) in [
        ("slack", "\u{2705} resolved: Supplier"),
        ("google_chat", "\u{2705} [sdm-watch] resolved: Supplier"),
        ("discord", "\u{2705} **[sdm-watch]** resolved: Supplier"),
        ("teams", "\"color\":\"Good\""),
    ] {
        let text = format!(
            "[api]\ntoken = \"t\"\n[[webhook]]\nname = \"chat\"\nurl = \"https://hooks.example/x\"\nformat = \"{name}\"\n"
        );
        let config =
            sdm_watch::config::Config::from_toml(&text, std::path::Path::new("x.toml")).unwrap();
        let body = format::webhook_body(&config.webhooks[0], &message)
            .unwrap()
            .body;
        assert!(body.contains(good), "{name}: {body}");
    }
}
