//! The daemon as a service, through the real binary: SIGHUP reload, health, readiness,
//! metrics, systemd notifications, JSON logs and secrets kept out of them.

use std::path::PathBuf;
use std::time::Duration;

use sdm_watch::domain::Status;
use sdm_watch::sim::{NewJob, Simulator, WebhookReceiver};

use testkit::cli::{sdm_watch, stderr};
use testkit::config::config_text;
use testkit::{Daemon, ports};

fn write(dir: &tempfile::TempDir, text: &str) -> PathBuf {
    let path = dir.path().join("config.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn daemon_config(sim: &Simulator, dir: &tempfile::TempDir, listen: &str, extra: &str) -> String {
    config_text(
        sim,
        "",
        &format!(
            "[poll]\ninterval = \"1s\"\n[state]\npath = \"{}\"\n{extra}",
            dir.path().join("state.db").display()
        ),
    )
    .replace("listen = \"\"", &format!("listen = \"{listen}\""))
}

async fn get(url: &str) -> (u16, String) {
    let response = testkit::http().get(url).send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

fn ids(hook: &WebhookReceiver, path: &str) -> Vec<String> {
    hook.delivered()
        .iter()
        .filter(|h| h.path == path)
        .map(|h| h.json()["data"]["job"]["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn sighup_adds_a_channel_for_what_comes_next_and_keeps_the_old_config_when_broken() {
    let sim = Simulator::start().await.unwrap();
    let hook = WebhookReceiver::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let jobs: Vec<String> = (0..3)
        .map(|_| sim.add_job(NewJob::new(Status::Running)))
        .collect();
    let channel = |name: &str| {
        format!(
            "[[webhook]]\nname = \"{name}\"\nurl = \"{}\"\n",
            hook.url(&format!("/{name}"))
        )
    };
    let one = daemon_config(&sim, &dir, "", &channel("a"));
    let two = daemon_config(&sim, &dir, "", &format!("{}{}", channel("a"), channel("b")));
    let path = write(&dir, &one);
    let daemon = Daemon::start(&path, &[]);
    daemon.wait_for_log("poll cycle done", 1).await;

    sim.set_status(&jobs[0], Status::Done, None);
    hook.wait_for_delivered(1, Duration::from_secs(10)).await;

    write(&dir, &two);
    daemon.signal("HUP");
    daemon.wait_for_log("configuration reloaded", 1).await;
    sim.set_status(&jobs[1], Status::Error, Some("broken"));
    hook.wait_for_delivered(3, Duration::from_secs(10)).await;
    assert_eq!(ids(&hook, "/a"), [jobs[0].as_str(), jobs[1].as_str()]);
    assert_eq!(
        ids(&hook, "/b"),
        [jobs[1].as_str()],
        "the new channel gets the next alert and none of the old"
    );

    let broken = format!("{two}\n[log]\nformat = \"xml\"\n");
    write(&dir, &broken);
    let check = sdm_watch(&broken, &["check"], &[]).await;
    let problem = stderr(&check)
        .trim()
        .trim_start_matches("sdm-watch: ")
        .to_owned();
    assert!(problem.contains("log.format"), "{problem}");
    daemon.signal("HUP");
    daemon.wait_for_log("reload refused", 1).await;
    let refusal = daemon
        .log()
        .into_iter()
        .find(|l| l.contains("reload refused"))
        .unwrap();
    assert!(
        refusal.contains(&problem),
        "the log says what check says:\n{refusal}\n{problem}"
    );

    sim.set_status(&jobs[2], Status::Pending, None);
    hook.wait_for_delivered(5, Duration::from_secs(10)).await;
    assert_eq!(
        ids(&hook, "/b").len(),
        2,
        "the old config, with both channels, is still in force"
    );
    daemon.stop().await;
}

#[tokio::test]
async fn readiness_follows_the_api_and_metrics_move() {
    let sim = Simulator::start().await.unwrap();
    let sim_addr = sim.addr();
    let hook = WebhookReceiver::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let job = sim.add_job(NewJob::new(Status::Running));
    let listen = format!("127.0.0.1:{}", ports::free());
    let text = daemon_config(
        &sim,
        &dir,
        &listen,
        &format!(
            "[[webhook]]\nname = \"ops\"\nurl = \"{}\"\n",
            hook.url("/ops")
        ),
    )
    .replace("max_elapsed = \"5s\"", "max_elapsed = \"300ms\"");
    let path = write(&dir, &text);
    let daemon = Daemon::start(&path, &[]);
    let base = format!("http://{listen}");
    daemon.wait_for_log("poll cycle done", 1).await;

    assert_eq!(get(&format!("{base}/healthz")).await.0, 200);
    assert_eq!(get(&format!("{base}/readyz")).await.0, 200);
    let output = sdm_watch(&text, &["healthcheck"], &[]).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));

    sim.set_status(&job, Status::Done, None);
    hook.wait_for_delivered(1, Duration::from_secs(10)).await;
    // The delivery is counted once its outcome is recorded, just after the receiver saw it.
    let first = metrics_showing(
        &base,
        &[
            "sdm_watch_poll_cycles_total{outcome=\"ok\",organisation=\"default\"}",
            "sdm_watch_poll_cycles_total{outcome=\"error\",organisation=\"default\"} 0",
            "sdm_watch_api_requests_total{endpoint=\"list\",code=\"200\",organisation=\"default\"}",
            "sdm_watch_jobs_tracked{status=\"done\",organisation=\"default\"} 1",
            "sdm_watch_jobs_tracked{status=\"running\",organisation=\"default\"} 0",
            "sdm_watch_transitions_total{status=\"done\",organisation=\"default\"} 1",
            "sdm_watch_alerts_total{channel=\"ops\",outcome=\"delivered\"} 1",
            "sdm_watch_outbox_pending 0",
            "sdm_watch_last_successful_poll_timestamp_seconds{organisation=\"default\"} ",
            "sdm_watch_poll_interval_seconds 1",
            "sdm_watch_api_rows_skipped_total{reason=\"no_id\"} 0",
            "sdm_watch_poll_cycle_duration_seconds_bucket{outcome=\"ok\",organisation=\"default\",le=\"0.5\"}",
            "sdm_watch_poll_cycle_duration_seconds_count{outcome=\"ok\",organisation=\"default\"}",
        ],
    )
    .await;
    let build = format!(
        "sdm_watch_build_info{{version=\"{}\",revision=\"",
        env!("CARGO_PKG_VERSION")
    );
    let line = first
        .lines()
        .find(|line| line.starts_with(&build))
        .unwrap_or_else(|| panic!("no {build} in:\n{first}"));
    assert!(
        line.ends_with("\"} 1") && !line.contains("revision=\"\""),
        "{line}"
    );
    let cycles = |text: &str| -> u64 {
        text.lines()
            .find(|l| {
                l.starts_with(
                    "sdm_watch_poll_cycles_total{outcome=\"ok\",organisation=\"default\"}",
                )
            })
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap()
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (_, second) = get(&format!("{base}/metrics")).await;
        if cycles(&second) > cycles(&first) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "poll cycles stopped counting at {}",
            cycles(&first)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    sim.stop().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let reason = loop {
        let (status, body) = get(&format!("{base}/readyz")).await;
        if status == 503 {
            break body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never became unready"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        reason.contains("more than three intervals") && reason.contains("last error"),
        "{reason}"
    );
    let output = sdm_watch(&text, &["healthcheck", "--ready"], &[]).await;
    assert_eq!(
        output.status.code(),
        Some(1),
        "healthcheck --ready fails while unready"
    );
    assert_eq!(
        get(&format!("{base}/healthz")).await.0,
        200,
        "alive all the same"
    );
    let (_, metrics) = get(&format!("{base}/metrics")).await;
    assert!(
        !metrics
            .contains("sdm_watch_poll_cycles_total{outcome=\"error\",organisation=\"default\"} 0"),
        "errors counted:\n{metrics}"
    );
    let (_, status) = get(&format!("{base}/status.json")).await;
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["ready"], false);
    assert!(
        status["last_cycle"]["error"]
            .as_str()
            .is_some_and(|e| !e.is_empty())
            && status["last_cycle"]["requests"].is_null(),
        "the status page says the last cycle failed and why: {status}"
    );

    let _sim = Simulator::start_at(sim_addr, sdm_watch::sim::DEFAULT_TOKEN)
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while get(&format!("{base}/readyz")).await.0 != 200 {
        assert!(tokio::time::Instant::now() < deadline, "never ready again");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    daemon.stop().await;
}

#[tokio::test]
async fn tells_systemd_ready_status_and_stopping() {
    let sim = Simulator::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("notify.sock");
    let socket = tokio::net::UnixDatagram::bind(&socket_path).unwrap();
    let path = write(&dir, &daemon_config(&sim, &dir, "", ""));
    let daemon = Daemon::start(&path, &[("NOTIFY_SOCKET", socket_path.to_str().unwrap())]);
    let mut messages = Vec::new();
    let mut buffer = vec![0u8; 4096];
    while !messages
        .iter()
        .any(|m: &String| m.contains("STATUS=last cycle ok"))
    {
        let n = tokio::time::timeout(Duration::from_secs(10), socket.recv(&mut buffer))
            .await
            .expect("a notification")
            .unwrap();
        messages.push(String::from_utf8_lossy(&buffer[..n]).into_owned());
    }
    daemon.stop().await;
    while let Ok(Ok(n)) =
        tokio::time::timeout(Duration::from_secs(2), socket.recv(&mut buffer)).await
    {
        messages.push(String::from_utf8_lossy(&buffer[..n]).into_owned());
    }
    assert!(
        messages.iter().any(|m| m.trim() == "READY=1"),
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.contains("STATUS=last cycle ok") && m.contains("jobs seen")),
        "{messages:?}"
    );
    assert!(
        messages.iter().any(|m| m.trim() == "STOPPING=1"),
        "{messages:?}"
    );
}

#[tokio::test]
async fn json_logs_parse_and_no_secret_appears_even_at_trace_level() {
    let token = "tok-very-secret-4242";
    let sim = Simulator::start_with_token(token).await.unwrap();
    let hook = WebhookReceiver::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let job = sim.add_job(NewJob::new(Status::Running));
    let password_file = dir.path().join("smtp-password");
    std::fs::write(&password_file, "smtp-pass-31337\n").unwrap();
    let text = daemon_config(
        &sim,
        &dir,
        "",
        &format!(
            "[log]\nformat = \"json\"\n[[webhook]]\nname = \"ops\"\nurl = \"{}\"\nsecret = \"whsec_c2VjcmV0LWtleS1ieXRlcy0xMjM0NQ==\"\n\
             [smtp]\nhost = \"127.0.0.1\"\nport = 9\ntls = \"none\"\nusername = \"u\"\npassword_file = \"{}\"\nfrom = \"a@b.example\"\n\
             [[email]]\nname = \"mail\"\nto = [\"c@d.example\"]\n",
            hook.url("/ops"),
            password_file.display()
        ),
    );
    let path = write(&dir, &text);
    // trace: the most a log can say, every crate's included (hyper, rustls, lettre).
    let daemon = Daemon::start(&path, &[("SDM_WATCH_LOG", "trace")]);
    daemon.wait_for_log("poll cycle done", 1).await;
    sim.set_status(&job, Status::Error, Some("boom"));
    hook.wait_for_delivered(1, Duration::from_secs(10)).await;
    daemon.wait_for_log("alert delivery failed", 1).await; // the e-mail to a closed port
    let log = daemon.stop().await;

    assert!(log.len() > 10, "trace logging is on: {} lines", log.len());
    let mut summary = None;
    for line in &log {
        let entry: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(
            entry["timestamp"].is_string() && entry["level"].is_string(),
            "{line}"
        );
        if entry["message"] == "poll cycle done" {
            summary = Some(entry);
        }
        for secret in [token, "smtp-pass-31337", "c2VjcmV0LWtleS1ieXRlcy0xMjM0NQ"] {
            assert!(!line.contains(secret), "a secret in the log: {line}");
        }
    }
    let summary = summary.expect("a cycle summary line");
    for field in [
        "jobs_seen",
        "transitions",
        "alerts_queued",
        "requests",
        "duration_ms",
        "store_us",
    ] {
        assert!(summary[field].is_number(), "{field} missing from {summary}");
    }
}

#[tokio::test]
async fn silences_digests_and_reminders_are_counted() {
    let sim = Simulator::start().await.unwrap();
    let hook = WebhookReceiver::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let muted = sim.add_job(NewJob::new(Status::Running).project(17));
    let told: Vec<String> = (0..2)
        .map(|_| sim.add_job(NewJob::new(Status::Running).project(18)))
        .collect();
    sim.add_job(NewJob::new(Status::Pending).project(18));
    let listen = format!("127.0.0.1:{}", ports::free());
    let text = daemon_config(
        &sim,
        &dir,
        &listen,
        &format!(
            "[[webhook]]\nname = \"ops\"\nurl = \"{}\"\nevents = [\"done\"]\ngroup_wait = \"1500ms\"\n\
             [[webhook]]\nname = \"nag\"\nurl = \"{}\"\nevents = [\"pending_reminder\"]\n",
            hook.url("/ops"),
            hook.url("/nag")
        ),
    )
    .replace(
        "[poll]\n",
        "[poll]\nremind_pending_every = \"1s\"\nrunning_longer_than = \"1h\"\n",
    );
    let path = write(&dir, &text);
    let added = sdm_watch(
        &text,
        &[
            "silence",
            "add",
            "--project",
            "17",
            "--for",
            "1h",
            "--reason",
            "re-import",
        ],
        &[],
    )
    .await;
    assert_eq!(added.status.code(), Some(0), "{}", stderr(&added));
    let daemon = Daemon::start(&path, &[]);
    let base = format!("http://{listen}");
    daemon.wait_for_log("poll cycle done", 1).await;
    let (_, before) = get(&format!("{base}/metrics")).await;
    for series in [
        "sdm_watch_alerts_total{channel=\"ops\",outcome=\"silenced\"} 0",
        "sdm_watch_digests_total{channel=\"ops\"} 0",
        "sdm_watch_reminders_total{kind=\"running_long\"} 0",
    ] {
        assert!(before.contains(series), "{series} missing from\n{before}");
    }

    sim.set_status(&muted, Status::Done, None);
    for job in &told {
        sim.set_status(job, Status::Done, None);
    }
    daemon.wait_for_log("reminder", 1).await;
    hook.wait_for_delivered(2, Duration::from_secs(15)).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !hook.delivered().iter().any(|h| h.path == "/ops") {
        assert!(tokio::time::Instant::now() < deadline, "no digest");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let after = metrics_showing(
        &base,
        &[
            "sdm_watch_alerts_total{channel=\"ops\",outcome=\"silenced\"} 1",
            "sdm_watch_digests_total{channel=\"ops\"} 1",
            "sdm_watch_alerts_total{channel=\"ops\",outcome=\"delivered\"} 2",
        ],
    )
    .await;
    daemon.stop().await;
    let reminders = after
        .lines()
        .find(|l| l.starts_with("sdm_watch_reminders_total{kind=\"pending_reminder\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(0);
    assert!(reminders >= 1, "{after}");
}

/// `/metrics` once it shows every one of `series`, within 15 s (a count moves just after
/// what it counts is seen from outside).
async fn metrics_showing(base: &str, series: &[&str]) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (_, text) = get(&format!("{base}/metrics")).await;
        let missing: Vec<&&str> = series.iter().filter(|s| !text.contains(**s)).collect();
        if missing.is_empty() {
            return text;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{missing:?} missing from\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
