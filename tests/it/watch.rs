//! The watch loop end to end: simulator for the API, a real webhook receiver, a real SMTP
//! server. Most tests drive cycles and deliveries one step at a time; a few run the daemon.

use std::time::Duration;

use sdm_watch::config::SigningKey;
use sdm_watch::daemon::{self, Parts};
use sdm_watch::domain::Status;
use sdm_watch::notify::webhook::sign;
use sdm_watch::ops::signals::Control;
use sdm_watch::sim::{Fault, NewJob, ReceivedWebhook, Reply, Simulator};

use testkit::Daemon;
use testkit::cli::{sdm_watch, stderr, stdout};
use testkit::config::config;
use testkit::{SECRET, World, step};

fn key() -> SigningKey {
    SigningKey::parse(SECRET).unwrap()
}

fn assert_signed(webhook: &ReceivedWebhook) {
    let id = webhook.header("webhook-id").expect("webhook-id");
    let timestamp: i64 = webhook
        .header("webhook-timestamp")
        .unwrap()
        .parse()
        .unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    assert!(
        (now - timestamp).abs() < 60,
        "timestamp is the attempt's time"
    );
    assert_eq!(
        webhook.header("webhook-signature"),
        Some(sign(&key(), id, timestamp, &webhook.body).as_str()),
        "signature over id.timestamp.body"
    );
}

#[tokio::test]
async fn first_start_is_silent_then_each_transition_alerts_once_on_both_channels() {
    let w = World::start().await;
    w.sim.add_job(NewJob::new(Status::Done));
    w.sim
        .add_job(NewJob::new(Status::Error).message("old failure"));
    w.sim.add_job(NewJob::new(Status::Pending));
    let running = w.sim.add_job(
        NewJob::new(Status::Running)
            .name("Supplier feed")
            .project(17),
    );
    let parts = w.parts(&w.standard()).await;

    step(&parts).await;
    assert!(
        w.hook.received().is_empty(),
        "no alerts for jobs found at first start"
    );
    assert!(w.smtp.mails().is_empty());

    w.sim
        .set_status(&running, Status::Error, Some("Column 'sku' missing"));
    step(&parts).await;
    step(&parts).await; // a quiet cycle adds nothing
    let hooks = w.hook.received();
    assert_eq!(hooks.len(), 1, "one webhook for one transition");
    let mails = w.smtp.wait_for(1, Duration::from_secs(5)).await;
    assert_eq!(mails.len(), 1, "one e-mail for one transition");

    let hook = &hooks[0];
    assert_eq!(hook.path, "/ops");
    assert_eq!(hook.header("content-type"), Some("application/json"));
    let agent = hook.header("user-agent").unwrap_or_default();
    assert!(
        agent.starts_with(concat!(
            "sdm-watch/",
            env!("CARGO_PKG_VERSION"),
            " (replica "
        )),
        "{agent}"
    );
    assert_eq!(hook.header("x-team"), Some("data"));
    assert!(hook.header("webhook-id").unwrap().starts_with("msg_"));
    assert_signed(hook);
    let body = hook.json();
    assert_eq!(body["type"], "job.error");
    assert_eq!(body["data"]["previous_status"], "running");
    assert_eq!(body["data"]["job"]["id"], running.as_str());
    assert_eq!(body["data"]["job"]["name"], "Supplier feed");
    assert_eq!(body["data"]["job"]["status"], "error");
    assert_eq!(body["data"]["job"]["project"], 17);
    assert_eq!(body["data"]["job"]["message"], "Column 'sku' missing");
    assert_eq!(body["data"]["job"]["step"]["id"], 2);
    assert!(body["data"]["job"]["completion_date"].is_string());
    assert_eq!(
        body["data"]["url"],
        format!("{}jobs/{running}/", w.sim.base_url())
    );
    assert!(
        body["data"].get("output").is_none(),
        "no output without [output]"
    );

    let mail = &mails[0];
    assert_eq!(
        mail.header("subject").as_deref(),
        Some("[sdm-watch] error: Supplier feed")
    );
    assert_eq!(mail.to, ["oncall@example.com", "lead@example.com"]);
    assert_eq!(mail.from, "sdm-watch@example.com");
    let message_id = mail.header("message-id").unwrap();
    assert!(
        message_id.starts_with("<msg_") && message_id.ends_with("@sdm-watch>"),
        "{message_id}"
    );
    let text = mail.body();
    for expected in [
        running.as_str(),
        "Supplier feed",
        "17",
        "running",
        "Column 'sku' missing",
        &format!("jobs/{running}/"),
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} missing from the e-mail:\n{text}"
        );
    }
}

#[tokio::test]
async fn alert_existing_and_jobs_first_seen_later_alert_with_no_previous_status() {
    let w = World::start().await;
    w.sim.add_job(NewJob::new(Status::Done));
    w.sim.add_job(NewJob::new(Status::Running));
    let parts = w
        .parts(&w.config("alert_existing = true", "1h", &w.standard_channels()))
        .await;
    step(&parts).await;
    let hooks = w.hook.received();
    assert_eq!(
        hooks.len(),
        1,
        "the done job alerts, the running one does not"
    );
    assert_eq!(
        hooks[0].json()["data"]["previous_status"],
        serde_json::Value::Null
    );

    // Created and finished between two cycles: first seen already done.
    let quick = w
        .sim
        .add_job(NewJob::new(Status::Pending).name("Quick one"));
    step(&parts).await;
    let hooks = w.hook.received();
    assert_eq!(hooks.len(), 2);
    let body = hooks[1].json();
    assert_eq!(body["type"], "job.pending");
    assert_eq!(body["data"]["job"]["id"], quick.as_str());
    assert_eq!(body["data"]["previous_status"], serde_json::Value::Null);
}

/// A list request's status filter and page number.
type Listing = (Option<String>, Option<String>);

/// The listings of the last cycle, and how many detail requests there were.
fn last_cycle_requests(sim: &Simulator) -> (Vec<Listing>, usize) {
    let requests = sim.requests();
    sim.clear_requests();
    let listings = requests
        .iter()
        .filter(|r| r.path.ends_with("/jobs/"))
        .map(|r| {
            (
                r.param("status").map(str::to_owned),
                r.param("page").map(str::to_owned),
            )
        })
        .collect();
    let details = requests
        .iter()
        .filter(|r| !r.path.ends_with("/jobs/"))
        .count();
    (listings, details)
}

#[tokio::test]
async fn a_long_history_costs_nothing_per_cycle_and_old_active_jobs_are_still_watched() {
    let w = World::start().await;
    w.sim.set_max_page_size(10);
    let now = time::OffsetDateTime::now_utc();
    let minutes = |m: i64| now - time::Duration::minutes(m);
    // Six days of finished jobs: a listing reaching back to the oldest active job would
    // be 30 pages of 10 every cycle.
    for i in 0..300 {
        w.sim
            .add_job(NewJob::new(Status::Done).created(minutes(10 + i * 28)));
    }
    let old_pending = w
        .sim
        .add_job(NewJob::new(Status::Pending).created(minutes(6 * 1440)));
    let old_running = w
        .sim
        .add_job(NewJob::new(Status::Running).created(minutes(5 * 1440)));
    let recent = w
        .sim
        .add_job(NewJob::new(Status::Running).created(minutes(1)));
    let parts = w.parts(&w.config("", "1h", &w.ops_hook())).await;
    step(&parts).await;
    assert!(w.hook.received().is_empty(), "the first cycle is silent");
    w.sim.clear_requests();

    // Quiet: the active jobs by status, then the jobs created since a margin before the
    // last cycle; no record is rewritten.
    let meta = || async {
        parts
            .store
            .run(|conn| {
                conn.query_map("SELECT key, value FROM meta ORDER BY key", &[], |row| {
                    Ok((row.get::<String>(0)?, row.get::<String>(1)?))
                })
            })
            .await
            .unwrap()
    };
    let bookkeeping = meta().await;
    let before = sdm_watch::domain::time::now_ms();
    step(&parts).await;
    let rewritten: i64 = parts
        .store
        .run(move |conn| {
            conn.query_one(
                "SELECT COUNT(*) FROM jobs WHERE changed_ms >= ?1",
                &[&before],
            )?
            .get(0)
        })
        .await
        .unwrap();
    assert_eq!(rewritten, 0, "a quiet cycle writes no job");
    assert_eq!(meta().await, bookkeeping, "nor its bookkeeping");
    let none = || None::<String>;
    let status = |s: &str| Some(s.to_owned());
    let quiet = (
        vec![
            (status("running"), none()),
            (status("pending"), none()),
            (none(), none()),
        ],
        0,
    );
    assert_eq!(last_cycle_requests(&w.sim), quiet);

    // Old jobs move: one shows up in another active listing, one leaves them (found by
    // listing its creation date); a recent one fails; a new one waits.
    w.sim.set_status(&old_pending, Status::Running, None);
    w.sim.set_status(&old_running, Status::Done, None);
    w.sim
        .set_status(&recent, Status::Error, Some("Column 'sku' missing"));
    let new = w.sim.add_job(NewJob::new(Status::Pending));
    step(&parts).await;
    let mut alerts: Vec<(String, String, String)> = w
        .hook
        .received()
        .iter()
        .map(|h| {
            let data = &h.json()["data"];
            (
                data["job"]["id"].as_str().unwrap().to_owned(),
                data["previous_status"]
                    .as_str()
                    .unwrap_or("(new)")
                    .to_owned(),
                data["job"]["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    alerts.sort();
    let mut want = vec![
        (old_running.clone(), "running".into(), "done".into()),
        (recent.clone(), "running".into(), "error".into()),
        (new.clone(), "(new)".into(), "pending".into()),
    ];
    want.sort();
    assert_eq!(alerts, want);
    let alert_of = |id: &str| {
        w.hook
            .received()
            .into_iter()
            .find(|h| h.json()["data"]["job"]["id"] == id)
            .unwrap()
            .json()
    };
    assert_eq!(
        alert_of(&recent)["data"]["job"]["message"],
        "Column 'sku' missing"
    );
    assert!(
        alert_of(&old_running)["data"]["job"]["completion_date"].is_string(),
        "a job found by listing its date has every list field"
    );
    let (listings, details) = last_cycle_requests(&w.sim);
    assert_eq!(listings.len(), 4, "{listings:?}");
    assert_eq!(details, 1, "only the error message");

    // Whatever their age, the active jobs cost the same listings.
    w.sim.set_status(&old_pending, Status::Done, None);
    w.sim.set_status(&new, Status::Running, None);
    step(&parts).await;
    assert_eq!(w.hook.received().len(), 4, "old_pending's done alerted");
    last_cycle_requests(&w.sim);
    step(&parts).await;
    assert_eq!(last_cycle_requests(&w.sim), quiet);
}

#[tokio::test]
async fn an_old_batch_finishing_together_is_found_by_listing_not_job_by_job() {
    let w = World::start().await;
    let now = time::OffsetDateTime::now_utc();
    for i in 0..300 {
        let created = now - time::Duration::minutes(10 + i * 28);
        w.sim.add_job(NewJob::new(Status::Done).created(created));
    }
    let batch: Vec<String> = (0..150)
        .map(|i| {
            let created = now - time::Duration::days(3) + time::Duration::seconds(i);
            w.sim.add_job(NewJob::new(Status::Running).created(created))
        })
        .collect();
    let parts = w.parts(&w.config("", "1h", &w.ops_hook())).await;
    step(&parts).await;
    last_cycle_requests(&w.sim);
    for job in &batch {
        w.sim.set_status(job, Status::Done, None);
    }
    step(&parts).await;
    assert_eq!(
        w.hook.received().len(),
        150,
        "every job of the batch alerted"
    );
    let (listings, details) = last_cycle_requests(&w.sim);
    assert_eq!(details, 0, "no job asked for one by one");
    // New jobs, running, pending, then the batch's dates: two pages of 100.
    assert_eq!(listings.len(), 5, "{listings:?}");
}

async fn pending_alerts(parts: &Parts) -> u64 {
    parts
        .store
        .run(|conn| {
            sdm_watch::store::inspect::count(conn, sdm_watch::store::outbox::AlertState::Pending)
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn alerts_needing_no_more_requests_do_not_wait_for_an_error_message() {
    let w = World::start().await;
    let failed = w.sim.add_job(NewJob::new(Status::Running));
    let done = w.sim.add_job(NewJob::new(Status::Running));
    let parts = w.parts(&w.config("", "1h", &w.ops_hook())).await;
    step(&parts).await;
    w.sim
        .set_status(&failed, Status::Error, Some("Column 'sku' missing"));
    w.sim.set_status(&done, Status::Done, None);
    // The error message is slow to come.
    w.sim.set_fault_target(Some(&format!("/jobs/{failed}/")));
    w.sim.inject([Fault::Slow(Duration::from_millis(1_500))]);
    let cycle = parts.watcher().cycle();
    tokio::pin!(cycle);
    let early = tokio::select! {
        result = &mut cycle => panic!("the cycle ended first: {result:?}"),
        queued = async {
            loop {
                let queued = pending_alerts(&parts).await;
                if queued > 0 {
                    return queued;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        } => queued,
    };
    assert_eq!(
        early, 1,
        "the done alert, queued while the detail was pending"
    );
    cycle.await.unwrap();
    assert_eq!(pending_alerts(&parts).await, 2);
    parts.worker.deliver_due().await.unwrap();
    let error = w
        .hook
        .received()
        .into_iter()
        .find(|h| h.json()["type"] == "job.error");
    assert_eq!(
        error.unwrap().json()["data"]["job"]["message"],
        "Column 'sku' missing"
    );
}

#[tokio::test]
async fn a_burst_of_emails_goes_over_a_few_pooled_smtp_connections() {
    let w = World::start().await;
    let jobs: Vec<String> = (0..40)
        .map(|_| w.sim.add_job(NewJob::new(Status::Running)))
        .collect();
    let email = "[[email]]\nname = \"oncall\"\nto = [\"oncall@example.com\"]\n";
    let parts = w.parts(&w.config("", "1h", email)).await;
    step(&parts).await;
    for job in &jobs {
        w.sim.set_status(job, Status::Done, None);
    }
    step(&parts).await;
    assert_eq!(w.smtp.count(), 40, "every alert mailed");
    // 16 at a time share lettre's pool (at most 10 connections), reused across rounds.
    assert!(
        w.smtp.sessions() <= 16,
        "{} SMTP sessions for 40 messages",
        w.smtp.sessions()
    );
}

#[tokio::test]
async fn pending_running_pending_alerts_twice() {
    let w = World::start().await;
    let job = w.sim.add_job(NewJob::new(Status::Running));
    let parts = w.parts(&w.config("", "1h", &w.ops_hook())).await;
    step(&parts).await;
    for status in [Status::Pending, Status::Running, Status::Pending] {
        w.sim.set_status(&job, status, None);
        step(&parts).await;
    }
    let types: Vec<String> = w
        .hook
        .received()
        .iter()
        .map(|h| h.json()["type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(types, ["job.pending", "job.pending"]);
}

#[tokio::test]
async fn events_and_projects_route_alerts_to_the_right_channels() {
    let w = World::start().await;
    let a = w.sim.add_job(NewJob::new(Status::Running).project(17));
    let b = w.sim.add_job(NewJob::new(Status::Running).project(18));
    let c = w.sim.add_job(NewJob::new(Status::Running).project(17));
    let channels = format!(
        r#"
[[webhook]]
name = "everything"
url = "{all}"
[[webhook]]
name = "errors-of-17"
url = "{errors}"
events = ["error"]
projects = [17]
[[email]]
name = "oncall"
to = ["oncall@example.com"]
events = ["error"]
"#,
        all = w.hook.url("/all"),
        errors = w.hook.url("/errors-17"),
    );
    let parts = w.parts(&w.config("", "1h", &channels)).await;
    step(&parts).await;
    w.sim.set_status(&a, Status::Error, Some("a failed"));
    w.sim.set_status(&b, Status::Error, Some("b failed"));
    w.sim.set_status(&c, Status::Done, None);
    step(&parts).await;

    let to = |path: &str| -> Vec<String> {
        let mut ids: Vec<String> = w
            .hook
            .received()
            .iter()
            .filter(|h| h.path == path)
            .map(|h| h.json()["data"]["job"]["id"].as_str().unwrap().to_owned())
            .collect();
        ids.sort();
        ids
    };
    let mut all = vec![a.clone(), b.clone(), c.clone()];
    all.sort();
    assert_eq!(to("/all"), all);
    assert_eq!(to("/errors-17"), [a.as_str()]);
    let mails = w.smtp.wait_for(2, Duration::from_secs(5)).await;
    let mut subjects: Vec<String> = mails
        .iter()
        .map(|m| m.body())
        .filter(|b| b.contains("failed"))
        .collect();
    subjects.sort();
    assert_eq!(mails.len(), 2, "e-mail only for the two errors");
    assert!(subjects[0].contains("a failed") && subjects[1].contains("b failed"));
}

#[tokio::test]
async fn with_poll_projects_only_their_jobs_alert_and_alerts_name_the_project() {
    let w = World::start().await;
    // The article's list rows carry no project: it is learnt by listing per project.
    w.sim.set_list_project(false);
    let job = w.sim.add_job(NewJob::new(Status::Running).project(17));
    let other = w.sim.add_job(NewJob::new(Status::Running).project(99));
    let parts = w
        .parts(&w.config("projects = [17, 18]", "1h", &w.ops_hook()))
        .await;
    step(&parts).await;
    w.sim.set_status(&job, Status::Done, None);
    w.sim.set_status(&other, Status::Done, None);
    step(&parts).await;
    let projects: Vec<String> = w
        .sim
        .requests()
        .iter()
        .filter_map(|r| r.param("project").map(str::to_owned))
        .collect();
    assert!(projects.contains(&"17".to_owned()), "{projects:?}");
    let hooks = w.hook.received();
    assert_eq!(hooks.len(), 1, "only project 17's job alerts");
    assert_eq!(hooks[0].json()["data"]["job"]["id"], job.as_str());
    assert_eq!(hooks[0].json()["data"]["job"]["project"], 17);
}

#[tokio::test]
async fn a_failing_receiver_gets_the_alert_with_the_same_id_on_every_try() {
    let w = World::start().await;
    let job = w.sim.add_job(NewJob::new(Status::Running));
    w.hook.reply_next([
        Reply::Status(503),
        Reply::Status(500),
        Reply::StatusRetryAfter(429, 1),
        Reply::Status(408),
    ]);
    let text = w.config(
        "",
        "1h",
        &format!(
            "[[webhook]]\nname = \"ops\"\nurl = \"{}\"\nsecret = \"{SECRET}\"",
            w.hook.url("/ops")
        ),
    );
    let (controls, control_stream) = tokio::sync::mpsc::channel(1);
    let daemon = tokio::spawn(daemon::run(config(&text), None, control_stream));
    // The first cycle has read its three listings: a change now is the second cycle's.
    testkit::wait_for_requests(&w.sim, 3).await;
    w.sim.set_status(&job, Status::Done, None);
    let delivered = w.hook.wait_for_delivered(1, Duration::from_secs(20)).await;
    controls.send(Control::Shutdown).await.unwrap();
    daemon.await.unwrap().unwrap();

    assert_eq!(delivered.len(), 1);
    let attempts = w.hook.received();
    assert_eq!(attempts.len(), 5, "four failures, then success");
    let id = attempts[0].header("webhook-id").unwrap().to_owned();
    assert!(
        attempts
            .iter()
            .all(|a| a.header("webhook-id") == Some(id.as_str())),
        "same webhook-id on every try"
    );
    assert!(
        attempts.iter().all(|a| a.body == attempts[0].body),
        "same body on every try"
    );
    attempts.iter().for_each(assert_signed);
    // Retry-After is honoured up to retry.max_interval (200 ms here), so no less than that.
    let after_429 = attempts[3].at - attempts[2].at;
    assert!(
        after_429 >= Duration::from_millis(190),
        "Retry-After honoured up to max_interval: {after_429:?}"
    );
}

#[tokio::test]
async fn changes_while_stopped_alert_once_after_restart_and_never_again() {
    let w = World::start().await;
    let ids: Vec<String> = (0..3)
        .map(|_| w.sim.add_job(NewJob::new(Status::Running)))
        .collect();
    let text = w.config("", "1h", &w.ops_hook());
    {
        let parts = w.parts(&text).await;
        step(&parts).await;
    } // stopped
    w.sim.set_status(&ids[0], Status::Done, None);
    w.sim.set_status(&ids[1], Status::Error, Some("broken"));
    w.sim.set_status(&ids[2], Status::Pending, None);
    let created_while_stopped = w
        .sim
        .add_job(NewJob::new(Status::Error).message("failed fast"));
    {
        let parts = w.parts(&text).await;
        step(&parts).await;
    }
    {
        let parts = w.parts(&text).await;
        step(&parts).await;
        step(&parts).await;
    }
    let mut alerted: Vec<String> = w
        .hook
        .received()
        .iter()
        .map(|h| h.json()["data"]["job"]["id"].as_str().unwrap().to_owned())
        .collect();
    alerted.sort();
    let mut expected = ids.clone();
    expected.push(created_while_stopped);
    expected.sort();
    assert_eq!(alerted, expected, "every change alerted exactly once");
}

#[tokio::test]
async fn an_alert_not_delivered_before_the_end_is_delivered_after_restart() {
    let w = World::start().await;
    let job = w.sim.add_job(NewJob::new(Status::Running));
    let text = w.config("", "1h", &w.ops_hook());
    w.hook.set_default(Reply::Status(503));
    {
        let parts = w.parts(&text).await;
        step(&parts).await;
        w.sim.set_status(&job, Status::Done, None);
        step(&parts).await;
    } // the process ends with the alert queued
    assert_eq!(w.hook.delivered().len(), 0);
    let failed_id = w.hook.received()[0]
        .header("webhook-id")
        .unwrap()
        .to_owned();

    w.hook.set_default(Reply::Status(200));
    tokio::time::sleep(Duration::from_millis(400)).await; // past the retry backoff
    let parts = w.parts(&text).await;
    parts.worker.deliver_due().await.unwrap();
    let delivered = w.hook.delivered();
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0].header("webhook-id"), Some(failed_id.as_str()));
}

#[tokio::test]
async fn permanent_refusals_and_expired_alerts_are_dead_and_reported() {
    let metrics = sdm_watch::telemetry::install().expect("the test binary's recorder");
    let w = World::start().await;
    let refused = w.sim.add_job(NewJob::new(Status::Running));
    let text = w.config(
        "",
        "1s",
        &format!(
            "[[webhook]]\nname = \"gone\"\nurl = \"{}\"\n[[webhook]]\nname = \"flaky\"\nurl = \"{}\"",
            w.hook.url("/gone"),
            w.hook.url("/flaky")
        ),
    );
    let parts = w.parts(&text).await;
    step(&parts).await;
    w.hook.set_default(Reply::Status(503));
    w.hook.reply_next([Reply::Status(410)]);
    w.sim.set_status(&refused, Status::Error, Some("x"));
    parts.watcher().cycle().await.unwrap();
    // Retry until the 1 s max_age has passed.
    for _ in 0..30 {
        parts.worker.deliver_due().await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let output = sdm_watch(&text, &["state"], &[]).await;
    let report = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(report.contains("alerts pending delivery: 0"), "{report}");
    assert!(report.contains("dead alerts: 2"), "{report}");
    assert!(report.contains("answered 410 Gone"), "{report}");
    assert!(
        report.contains("still undelivered after delivery.max_age"),
        "{report}"
    );
    assert!(
        report.contains("tracked jobs: 1") && report.contains("error"),
        "{report}"
    );

    let rendered = metrics.render();
    for channel in ["gone", "flaky"] {
        let series = format!("sdm_watch_alerts_total{{channel=\"{channel}\",outcome=\"dead\"}} 1");
        assert!(
            rendered.contains(&series),
            "{series} not counted in\n{rendered}"
        );
    }
    let output = sdm_watch(&text, &["state", "--json"], &[]).await;
    let json: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(json["alerts_dead"], 2);
    assert_eq!(json["dead"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn once_runs_one_cycle_and_delivers_then_exits() {
    let w = World::start().await;
    let job = w.sim.add_job(NewJob::new(Status::Running));
    let text = w.standard();
    let output = sdm_watch(&text, &["once"], &[]).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("poll cycle: 1 jobs seen"),
        "{}",
        stdout(&output)
    );
    w.sim.set_status(&job, Status::Done, None);
    let output = sdm_watch(&text, &["once"], &[]).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("2 delivered"),
        "{}",
        stdout(&output)
    );
    assert_eq!(w.hook.delivered().len(), 1);
    assert_eq!(w.smtp.wait_for(1, Duration::from_secs(5)).await.len(), 1);

    let down = text
        .replace(&w.sim.base_url().to_string(), "http://127.0.0.1:9/api/v1/")
        .replace("max_elapsed = \"5s\"", "max_elapsed = \"200ms\"");
    let output = sdm_watch(&down, &["once"], &[]).await;
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("the poll cycle failed"),
        "{}",
        stderr(&output)
    );
}

#[tokio::test]
async fn test_alert_reports_each_channel() {
    let w = World::start().await;
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let channels = format!(
        "{}\n[[webhook]]\nname = \"broken\"\nurl = \"http://{closed}/nothing\"",
        w.standard_channels()
    );
    let text = w.config("", "1h", &channels);
    let output = sdm_watch(&text, &["test-alert"], &[]).await;
    let report = stdout(&output);
    assert_eq!(
        output.status.code(),
        Some(1),
        "one channel failed: {report}"
    );
    assert!(report.contains("ok      webhook ops"), "{report}");
    assert!(report.contains("ok      email oncall"), "{report}");
    assert!(report.contains("FAILED  webhook broken"), "{report}");
    assert!(
        !report.contains("/nothing"),
        "webhook URLs may hold tokens: {report}"
    );
    let hook = &w.hook.received()[0];
    assert_eq!(hook.json()["type"], "test");
    assert_eq!(hook.json()["data"]["test"], true);
    assert_signed(hook);
    let mail = &w.smtp.wait_for(1, Duration::from_secs(5)).await[0];
    assert!(
        mail.header("subject")
            .unwrap()
            .starts_with("[sdm-watch] TEST:")
    );
    assert!(mail.body().contains("THIS IS A TEST ALERT"));

    let output = sdm_watch(&text, &["test-alert", "--channel", "ops"], &[]).await;
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    assert_eq!(w.hook.received().len(), 2);
    let output = sdm_watch(&text, &["test-alert", "--channel", "nope"], &[]).await;
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("no channel is named \"nope\""),
        "{}",
        stderr(&output)
    );
}

#[tokio::test]
async fn sigterm_stops_the_daemon_with_status_0() {
    let w = World::start().await;
    w.sim.add_job(NewJob::new(Status::Running));
    let path = w.dir.path().join("config.toml");
    std::fs::write(&path, w.standard()).unwrap();
    let daemon = Daemon::start(&path, &[]);
    daemon.wait_for_log("poll cycle done", 1).await;
    let log = daemon.stop().await; // asserts exit status 0
    assert!(log.last().unwrap().contains("stopped"), "{log:?}");
}

#[tokio::test]
async fn a_state_file_from_a_newer_version_is_refused_untouched() {
    let w = World::start().await;
    let state = w.dir.path().join("state.db");
    {
        let conn = rusqlite::Connection::open(&state).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
    }
    let before = std::fs::read(&state).unwrap();
    let output = sdm_watch(&w.standard(), &["once"], &[]).await;
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("newer than this sdm-watch understands"),
        "{}",
        stderr(&output)
    );
    assert_eq!(
        std::fs::read(&state).unwrap(),
        before,
        "the file is untouched"
    );
}

#[tokio::test]
async fn a_corrupt_state_file_is_a_clear_error_and_is_left_untouched() {
    let w = World::start().await;
    let state = w.dir.path().join("state.db");
    let garbage: Vec<u8> = (0..8192u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&state, &garbage).unwrap();
    for command in ["once", "state"] {
        let output = sdm_watch(&w.standard(), &[command], &[]).await;
        let message = stderr(&output);
        assert_eq!(output.status.code(), Some(1), "{command}: {message}");
        assert!(
            message.contains(&state.display().to_string()),
            "{command}: names the file: {message}"
        );
        assert!(message.contains("not a database"), "{command}: {message}");
        assert!(!message.contains("panicked"), "{message}");
        assert_eq!(
            std::fs::read(&state).unwrap(),
            garbage,
            "{command}: the file is untouched"
        );
    }

    // A state path whose directory cannot be made (a file is in the way).
    let blocked = w.standard().replace(
        &state.display().to_string(),
        &w.dir
            .path()
            .join("state.db")
            .join("state.db")
            .display()
            .to_string(),
    );
    let output = sdm_watch(&blocked, &["once"], &[]).await;
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("cannot create the state directory"),
        "{}",
        stderr(&output)
    );
}

#[tokio::test]
async fn demo_prints_signed_alerts_and_serves_the_status_page_without_config_or_network() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_sdm-watch"))
        .arg("demo")
        .env("SDM_WATCH_CONFIG", "/nonexistent/config.toml")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        // A failed assertion must not leave the demo running and loading the machine.
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // Read until the first done alert of each of the two organisations has been printed
    // and verified, within a deadline.
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut text = String::new();
    let read = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            text.push_str(&line);
            text.push('\n');
            if text.contains(">>> [acme] job.done \"Supplier feed #1\"")
                && text.contains(">>> [globex] job.done \"Globex import #1\"")
                && text.contains("signature verified")
            {
                return;
            }
        }
    };
    let seen = tokio::time::timeout(Duration::from_secs(60), read).await;
    assert!(
        seen.is_ok(),
        "no verified done alert of each organisation within 60 s:\n{text}"
    );
    // The status page, at the address the demo printed, shows both organisations' jobs.
    let page = text
        .lines()
        .find_map(|line| line.trim().strip_prefix("status page:"))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no status page address printed:\n{text}"))
        .to_owned();
    let http = testkit::http();
    let html = http.get(&page).send().await.unwrap();
    assert_eq!(html.status(), 200);
    let html = html.text().await.unwrap();
    let status = testkit::get_json(format!("{page}status.json")).await;
    for name in ["acme", "globex"] {
        assert!(html.contains(name), "the page does not name {name}");
    }
    assert!(
        status["transitions"]
            .as_array()
            .is_some_and(|t| !t.is_empty()),
        "{status}"
    );
    let pid = child.id().unwrap().to_string();
    std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap();
    let rest = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            text.push_str(&line);
            text.push('\n');
        }
        child.wait().await.unwrap()
    };
    let status = tokio::time::timeout(Duration::from_secs(15), rest)
        .await
        .expect("demo stops on Ctrl-C");
    assert_eq!(status.code(), Some(0), "{text}");
    assert!(text.contains("demo stopped."), "{text}");
}
