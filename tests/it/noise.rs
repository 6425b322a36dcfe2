//! Timely and quiet alerts (issue 13): the fast cadence while jobs run, reminders for jobs
//! left pending or running long, digests, silences, and the `alerts` commands, against the
//! simulator and real receivers.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use sdm_watch::daemon::Parts;
use sdm_watch::domain::{ManualClock, Status};
use sdm_watch::sim::{NewJob, ReceivedWebhook, Reply};
use testkit::cli::{sdm_watch, stderr, stdout};
use testkit::config::config;
use testkit::{Daemon, World, step};

/// A webhook `ops` on `/ops`, and an e-mail `oncall`, both gathering digests.
fn digest_channels(w: &World, wait: &str, max: usize) -> String {
    format!(
        r#"
[[webhook]]
name = "ops"
url = "{}"
group_wait = "{wait}"
group_max = {max}
[[email]]
name = "oncall"
to = ["oncall@example.com"]
group_wait = "{wait}"
group_max = {max}
"#,
        w.hook.url("/ops")
    )
}

fn job_ids(digest: &ReceivedWebhook) -> Vec<String> {
    digest.json()["data"]["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|alert| alert["job"]["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn five_hundred_jobs_finishing_together_go_out_as_five_digests_per_channel() {
    let w = World::start().await;
    let jobs: Vec<String> = (0..500)
        .map(|i| {
            w.sim.add_job(
                NewJob::new(Status::Running)
                    .project(17)
                    .name(format!("Feed {i}")),
            )
        })
        .collect();
    let parts = w
        .parts(&w.config("", "1h", &digest_channels(&w, "3s", 100)))
        .await;
    step(&parts).await;
    for job in &jobs {
        w.sim.set_status(job, Status::Done, None);
    }
    let changed = std::time::Instant::now();
    parts.watcher().cycle().await.unwrap();
    parts.worker.deliver_due().await.unwrap();
    assert!(
        w.hook.received().is_empty() || changed.elapsed() >= Duration::from_secs(3),
        "the window is still open"
    );
    // The window closes 3 s after the alerts were queued; a loaded machine may take longer
    // over the cycle, so the worker looks again until the digests are out.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while w.hook.received().len() < 5 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        parts.worker.deliver_due().await.unwrap();
    }

    let digests = w.hook.received();
    assert_eq!(digests.len(), 5, "500 alerts, at most 100 a digest");
    let mut seen: Vec<String> = digests.iter().flat_map(job_ids).collect();
    assert_eq!(seen.len(), 500, "every alert in a digest");
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 500, "no alert in two digests");
    let ids: HashSet<&str> = digests
        .iter()
        .map(|d| d.header("webhook-id").unwrap())
        .collect();
    assert_eq!(ids.len(), 5, "each digest has its own webhook-id");
    for digest in &digests {
        let body = digest.json();
        assert_eq!(body["type"], "digest");
        assert_eq!(body["data"]["counts"]["done"], 100);
        assert_eq!(body["data"]["alerts"][0]["type"], "job.done");
        assert!(digest.header("webhook-id").unwrap().starts_with("dgst_"));
    }
    let mails = w.smtp.wait_for(5, Duration::from_secs(10)).await;
    assert_eq!(mails.len(), 5);
    assert_eq!(
        mails[0].header("subject").as_deref(),
        Some("[sdm-watch] 100 jobs: 100 done")
    );
    assert!(mails[0].body().contains("Feed"), "{}", mails[0].body());
}

#[tokio::test]
async fn an_alert_alone_in_its_window_goes_out_as_itself() {
    let w = World::start().await;
    let job = w.sim.add_job(NewJob::new(Status::Running).name("Lonely"));
    let parts = w
        .parts(&w.config("", "1h", &digest_channels(&w, "300ms", 100)))
        .await;
    step(&parts).await;
    w.sim.set_status(&job, Status::Done, None);
    parts.watcher().cycle().await.unwrap();
    parts.worker.deliver_due().await.unwrap();
    assert!(w.hook.received().is_empty(), "the window is still open");
    tokio::time::sleep(Duration::from_millis(400)).await;
    parts.worker.deliver_due().await.unwrap();
    let received = w.hook.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].json()["type"], "job.done");
    assert!(
        received[0]
            .header("webhook-id")
            .unwrap()
            .starts_with("msg_")
    );
    let mails = w.smtp.wait_for(1, Duration::from_secs(10)).await;
    let subject = mails[0].header("subject").unwrap_or_default();
    assert_eq!(subject, "[sdm-watch] done: Lonely");
}

#[tokio::test]
async fn a_digest_whose_receiver_fails_twice_is_retried_with_the_same_id_and_members() {
    let w = World::start().await;
    let jobs: Vec<String> = (0..3)
        .map(|_| w.sim.add_job(NewJob::new(Status::Running)))
        .collect();
    let channels = format!(
        "[[webhook]]\nname = \"ops\"\nurl = \"{}\"\ngroup_wait = \"200ms\"\n",
        w.hook.url("/ops")
    );
    let parts = w.parts(&w.config("", "1h", &channels)).await;
    step(&parts).await;
    for job in &jobs {
        w.sim.set_status(job, Status::Error, Some("broken"));
    }
    parts.watcher().cycle().await.unwrap();
    w.hook
        .reply_next([Reply::Status(503), Reply::StatusRetryAfter(429, 0)]);
    for _ in 0..40 {
        if !w.hook.delivered().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        parts.worker.deliver_due().await.unwrap();
    }
    let attempts = w.hook.received();
    assert_eq!(attempts.len(), 3, "two failures, then delivered");
    let id = attempts[0].header("webhook-id").unwrap();
    for attempt in &attempts {
        assert_eq!(attempt.header("webhook-id"), Some(id), "the same digest id");
        assert_eq!(
            attempt.body, attempts[0].body,
            "the same members, the same body"
        );
    }
    let mut members = job_ids(&attempts[0]);
    members.sort();
    let mut want = jobs.clone();
    want.sort();
    assert_eq!(members, want);
    // `alerts show` tells each member's attempts: the digest's.
    let alert = sdm_watch(
        &w.config("", "1h", &channels),
        &["alerts", "list", "--json"],
        &[],
    )
    .await;
    let list: serde_json::Value = serde_json::from_str(&stdout(&alert)).unwrap();
    let first = list[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(list[0]["state"], "delivered");
    assert_eq!(list[0]["digest"], id);
    let shown = sdm_watch(
        &w.config("", "1h", &channels),
        &["alerts", "show", &first],
        &[],
    )
    .await;
    let text = stdout(&shown);
    assert!(text.contains("attempts: 3"), "{text}");
    assert!(text.contains("delivered") && text.contains("503"), "{text}");
}

#[tokio::test]
async fn a_digest_formed_before_a_kill_is_sent_the_same_after_the_restart() {
    let w = World::start().await;
    let jobs: Vec<String> = (0..4)
        .map(|_| w.sim.add_job(NewJob::new(Status::Running)))
        .collect();
    let channels = format!(
        "[[webhook]]\nname = \"ops\"\nurl = \"{}\"\ngroup_wait = \"300ms\"\ntimeout = \"20s\"\n",
        w.hook.url("/ops")
    );
    let text = w.config("", "1h", &channels);
    let path = w.dir.path().join("config.toml");
    std::fs::write(&path, &text).unwrap();
    let state = w.dir.path().join("state.db");
    // The receiver takes the first digest and never answers.
    w.hook.reply_next([Reply::Hang]);
    let daemon = Daemon::start(&path, &[]);
    daemon.wait_for_log("poll cycle done", 1).await;
    for job in &jobs {
        w.sim.set_status(job, Status::Done, None);
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while w.hook.received().is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no digest was attempted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    daemon.kill().await;
    let formed: Vec<String> = rusqlite::Connection::open(&state)
        .unwrap()
        .prepare("SELECT id FROM digests WHERE state = 'pending'")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(formed.len(), 1, "the digest was formed and not delivered");
    let hung = w.hook.received()[0].clone();
    assert_eq!(hung.header("webhook-id"), Some(formed[0].as_str()));

    let restarted = Daemon::start(&path, &[]);
    let delivered = w.hook.wait_for_delivered(1, Duration::from_secs(20)).await;
    restarted.stop().await;
    assert_eq!(delivered.len(), 1, "one digest");
    assert_eq!(delivered[0].header("webhook-id"), hung.header("webhook-id"));
    assert_eq!(
        delivered[0].body, hung.body,
        "the same members, the same body"
    );
    assert_eq!(job_ids(&delivered[0]).len(), 4);
}

#[tokio::test]
async fn reminders_come_when_due_by_the_store_s_schedule_across_a_restart() {
    let w = World::start().await;
    // Pending since before sdm-watch started: recorded silently, still reminded of.
    let waiting = w
        .sim
        .add_job(NewJob::new(Status::Pending).name("Waiting for approval"));
    let running = w
        .sim
        .add_job(NewJob::new(Status::Running).name("Big import"));
    let text = w.config(
        "remind_pending_every = \"10m\"\nrunning_longer_than = \"30m\"",
        "1h",
        &w.ops_hook(),
    );
    let clock = ManualClock::new();
    let build = async || {
        Parts::build_with_clock(config(&text), Arc::new(clock.clone()))
            .await
            .unwrap()
    };
    let minutes = |m: u64| Duration::from_secs(60 * m);
    let told = || -> Vec<(String, String, Option<u64>)> {
        w.hook
            .received()
            .iter()
            .map(|h| {
                let body = h.json();
                (
                    body["type"].as_str().unwrap().to_owned(),
                    body["data"]["job"]["id"].as_str().unwrap().to_owned(),
                    body["data"]["reminder"].as_u64(),
                )
            })
            .collect()
    };

    let parts = build().await;
    step(&parts).await;
    clock.advance(minutes(9));
    step(&parts).await;
    assert!(told().is_empty(), "not yet: 9 of 10 minutes");
    clock.advance(minutes(2));
    step(&parts).await;
    step(&parts).await;
    assert_eq!(
        told(),
        [("job.pending_reminder".into(), waiting.clone(), Some(1))]
    );
    let first = w.hook.received()[0].json();
    assert!(first["data"]["pending_since"].is_string());
    assert_eq!(
        first["data"]["previous_status"], "pending",
        "a reminder changes nothing"
    );
    drop(parts);

    // A restart repeats nothing; the schedule lives in the store.
    let parts = build().await;
    step(&parts).await;
    assert_eq!(told().len(), 1);
    clock.advance(minutes(10)); // 21 minutes: the second reminder
    step(&parts).await;
    clock.advance(minutes(10)); // 31: the third, and the job running for over 30
    step(&parts).await;
    assert_eq!(
        told(),
        [
            ("job.pending_reminder".into(), waiting.clone(), Some(1)),
            ("job.pending_reminder".into(), waiting.clone(), Some(2)),
            ("job.pending_reminder".into(), waiting.clone(), Some(3)),
            ("job.running_long".into(), running.clone(), None),
        ]
    );
    let long = w.hook.received()[3].json();
    assert_eq!(long["data"]["running_for_seconds"], 31 * 60);
    assert!(long["data"]["running_since"].is_string());
    assert_eq!(long["data"]["previous_status"], "running");
    let pending_since = |n: usize| w.hook.received()[n].json()["data"]["pending_since"].clone();
    assert_eq!(pending_since(0), pending_since(2), "one stretch, one start");

    // Much later (cycles stopped): one reminder, numbered by the periods that passed;
    // running_long only once a stretch.
    clock.advance(minutes(30)); // 61
    step(&parts).await;
    assert_eq!(told().len(), 5);
    assert_eq!(told()[4].2, Some(6));

    // Leaving pending ends the stretch; the next one counts from 1 again.
    w.sim.set_status(&waiting, Status::Running, None);
    step(&parts).await;
    w.sim.set_status(&waiting, Status::Pending, None);
    step(&parts).await; // a pending alert, not a reminder
    clock.advance(minutes(10));
    step(&parts).await;
    let last = told();
    assert_eq!(last[5].0, "job.pending");
    assert_eq!(
        last[6],
        ("job.pending_reminder".into(), waiting.clone(), Some(1))
    );
}

#[tokio::test]
async fn a_silence_added_while_the_daemon_runs_mutes_the_next_matching_alert_only() {
    let w = World::start().await;
    let muted = w.sim.add_job(NewJob::new(Status::Running).project(17));
    let told = w.sim.add_job(NewJob::new(Status::Running).project(18));
    let text = w.config("", "1h", &w.ops_hook());
    let path = w.dir.path().join("config.toml");
    std::fs::write(&path, &text).unwrap();
    let daemon = Daemon::start(&path, &[]);
    daemon.wait_for_log("poll cycle done", 1).await;

    let added = sdm_watch(
        &text,
        &[
            "silence",
            "add",
            "--project",
            "17",
            "--event",
            "error",
            "--for",
            "1h",
            "--reason",
            "planned re-import",
        ],
        &[],
    )
    .await;
    assert_eq!(added.status.code(), Some(0), "{}", stderr(&added));
    let id = stdout(&added).trim().to_owned();
    assert!(id.starts_with("sil_"), "{id}");
    let listed = stdout(&sdm_watch(&text, &["silence", "list"], &[]).await);
    assert!(
        listed.contains(&id)
            && listed.contains("project 17, event error")
            && listed.contains("planned re-import"),
        "{listed}"
    );

    let cycles = daemon.lines_with("poll cycle done").len();
    daemon.wait_for_log("poll cycle done", cycles + 1).await;
    w.sim.set_status(&muted, Status::Error, Some("muted"));
    w.sim.set_status(&told, Status::Error, Some("told"));
    let delivered = w.hook.wait_for_delivered(1, Duration::from_secs(15)).await;
    daemon.wait_for_log("alert silenced", 1).await;
    let cycles = daemon.lines_with("poll cycle done").len();
    daemon.wait_for_log("poll cycle done", cycles + 2).await;
    daemon.stop().await;

    let alerted: Vec<String> = w
        .hook
        .delivered()
        .iter()
        .map(|h| h.json()["data"]["job"]["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        alerted,
        std::slice::from_ref(&told),
        "only project 18's error: {delivered:?}"
    );
    let silenced = sdm_watch(
        &text,
        &["alerts", "list", "--state", "silenced", "--json"],
        &[],
    )
    .await;
    let silenced: serde_json::Value = serde_json::from_str(&stdout(&silenced)).unwrap();
    assert_eq!(silenced.as_array().unwrap().len(), 1);
    assert_eq!(silenced[0]["job_id"], muted.as_str());
    assert_eq!(silenced[0]["silence"], id.as_str());
    let state = stdout(&sdm_watch(&text, &["state"], &[]).await);
    assert!(
        state.contains("alerts silenced: 1 (1 silences in force"),
        "{state}"
    );

    let ended = sdm_watch(&text, &["silence", "end", &id], &[]).await;
    assert_eq!(ended.status.code(), Some(0), "{}", stderr(&ended));
    let listed = stdout(&sdm_watch(&text, &["silence", "list"], &[]).await);
    assert!(listed.contains("no silences in force"), "{listed}");
    let all = stdout(&sdm_watch(&text, &["silence", "list", "--all"], &[]).await);
    assert!(all.contains(&id) && all.contains("ended"), "{all}");
}

#[tokio::test]
async fn silence_and_alerts_refuse_what_makes_no_sense_with_exit_2() {
    let w = World::start().await;
    let text = w.config("", "1h", &w.ops_hook());
    for (args, says) in [
        (
            vec!["silence", "add", "--for", "1h", "--reason", "x"],
            "--all",
        ),
        (
            vec![
                "silence",
                "add",
                "--project",
                "17",
                "--until",
                "2020-01-01",
                "--reason",
                "x",
            ],
            "in the past",
        ),
        (
            vec![
                "silence", "add", "--event", "nope", "--for", "1h", "--reason", "x",
            ],
            "nope",
        ),
        (
            vec!["silence", "add", "--all", "--for", "soon", "--reason", "x"],
            "soon",
        ),
        (vec!["silence", "add", "--all", "--reason", "x"], "--for"),
        (vec!["alerts", "retry"], "--dead"),
        (vec!["alerts", "list", "--state", "lost"], "lost"),
    ] {
        let output = sdm_watch(&text, &args, &[]).await;
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(
            stderr(&output).contains(says),
            "{args:?}: {}",
            stderr(&output)
        );
    }
}

#[tokio::test]
async fn alerts_retry_dead_after_an_outage_delivers_each_dead_alert_once() {
    let w = World::start().await;
    let jobs: Vec<String> = (0..3)
        .map(|_| w.sim.add_job(NewJob::new(Status::Running)))
        .collect();
    let text = w.config("", "1s", &w.ops_hook());
    let path = w.dir.path().join("config.toml");
    std::fs::write(&path, &text).unwrap();
    w.hook.set_default(Reply::Status(503));
    let daemon = Daemon::start(&path, &[]);
    daemon.wait_for_log("poll cycle done", 1).await;
    for job in &jobs {
        w.sim.set_status(job, Status::Done, None);
    }
    daemon.wait_for_log("alert expired; it is dead", 3).await;
    let dead = sdm_watch(&text, &["alerts", "list", "--state", "dead", "--json"], &[]).await;
    let dead: serde_json::Value = serde_json::from_str(&stdout(&dead)).unwrap();
    assert_eq!(dead.as_array().unwrap().len(), 3);

    w.hook.set_default(Reply::Status(200));
    let retried = sdm_watch(&text, &["alerts", "retry", "--dead"], &[]).await;
    assert_eq!(retried.status.code(), Some(0), "{}", stderr(&retried));
    assert!(
        stdout(&retried).contains("3 alerts queued again"),
        "{}",
        stdout(&retried)
    );
    let delivered = w.hook.wait_for_delivered(3, Duration::from_secs(15)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    daemon.stop().await;
    let ids: Vec<&str> = delivered
        .iter()
        .map(|h| h.header("webhook-id").unwrap())
        .collect();
    let mut distinct = ids.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(
        w.hook.delivered().len(),
        3,
        "each dead alert delivered once"
    );
    assert_eq!(distinct.len(), 3, "with its own, first id");
    let again = sdm_watch(&text, &["alerts", "list", "--state", "dead"], &[]).await;
    assert!(
        stdout(&again).contains("no alerts match"),
        "{}",
        stdout(&again)
    );
}

#[tokio::test]
async fn cycles_run_at_the_active_interval_while_a_job_runs() {
    let w = World::start().await;
    let job = w.sim.add_job(NewJob::new(Status::Running));
    let text = w
        .config("active_interval = \"1s\"", "1h", &w.ops_hook())
        .replace(
            "interval = \"1s\"\nactive_interval",
            "interval = \"10s\"\nactive_interval",
        );
    assert!(text.contains("interval = \"10s\""), "{text}");
    let path = w.dir.path().join("config.toml");
    std::fs::write(&path, &text).unwrap();
    let daemon = Daemon::start(&path, &[]);
    daemon.wait_for_log("poll cycle done", 1).await;
    let count = || daemon.lines_with("poll cycle done").len();
    // Cadences of 1 s and 10 s, each watched for 6 s: 6 cycles expected, then at most one;
    // the bounds leave a busy host room and still tell the cadences apart.
    let before = count();
    tokio::time::sleep(Duration::from_millis(6_000)).await;
    let while_running = count() - before;
    assert!(
        while_running >= 3,
        "{while_running} cycles in 6 s while a job runs"
    );

    w.sim.set_status(&job, Status::Done, None);
    daemon
        .wait_for_log_within("job changed status", 1, Duration::from_secs(5))
        .await;
    let before = count();
    tokio::time::sleep(Duration::from_millis(6_000)).await;
    let idle = count() - before;
    daemon.stop().await;
    assert!(
        idle <= 1,
        "{idle} cycles in 6 s with nothing running (interval 10 s)"
    );
}
