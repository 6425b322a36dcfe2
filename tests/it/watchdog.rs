//! The watcher watches itself, tested with real `sdm-watch run` processes: a revoked token
//! gives one `watcher.failing` on a webhook and an e-mail, a restart during the outage
//! repeats nothing, a token rotated in its file recovers without SIGHUP and says so; an API
//! answering 503 is `api_errors`.

use std::path::Path;
use std::time::Duration;

use sdm_watch::domain::Status;
use sdm_watch::sim::{Fault, NewJob, ReceivedWebhook};
use testkit::{Daemon, World};

/// The standard channels, polling every second, `alert_after` 3 s, the token in a file.
fn config(w: &World, token_file: &Path) -> String {
    let text = w.config("", "1h", &w.standard_channels()).replace(
        &format!("token = \"{}\"", w.sim.token()),
        &format!("token_file = \"{}\"", token_file.display()),
    );
    format!("{text}\n[watchdog]\nalert_after = \"3s\"\n")
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn of_type<'a>(hooks: &'a [ReceivedWebhook], kind: &str) -> Vec<&'a ReceivedWebhook> {
    hooks.iter().filter(|h| h.json()["type"] == kind).collect()
}

/// Waits until the receiver holds `count` deliveries of `kind`.
async fn wait_for_type(w: &World, kind: &str, count: usize) -> Vec<ReceivedWebhook> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let delivered = w.hook.delivered();
        if of_type(&delivered, kind).len() >= count {
            return delivered;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no {count} {kind} within 30 s; received: {:?}",
            delivered
                .iter()
                .map(|h| h.json()["type"].clone())
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A world with one running job, and the config of [`config`] written with its token file.
async fn watched_world() -> (World, std::path::PathBuf, std::path::PathBuf) {
    let w = World::start().await;
    w.sim.add_job(NewJob::new(Status::Running));
    let token_file = write(w.dir.path(), "token", &w.sim.token());
    let path = write(w.dir.path(), "config.toml", &config(&w, &token_file));
    (w, token_file, path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_token_alerts_once_across_a_restart_and_a_rotated_file_recovers() {
    let (w, token_file, path) = watched_world().await;

    let daemon = Daemon::start(&path, &[]);
    daemon.wait_for_log("poll cycle done", 1).await;
    w.sim.set_token("sdm-token-after-revocation");
    let delivered = wait_for_type(&w, "watcher.failing", 1).await;
    let failing = of_type(&delivered, "watcher.failing")[0].json();
    assert_eq!(failing["data"]["reason"], "token_refused", "{failing}");
    assert!(
        failing["data"]["failing_for_seconds"].as_u64().unwrap() >= 3,
        "{failing}"
    );
    assert!(
        failing["data"]["last_error"]
            .as_str()
            .unwrap()
            .contains("401"),
        "{failing}"
    );
    assert!(failing["data"].get("job").is_none(), "{failing}");
    let mails = w.smtp.wait_for(1, Duration::from_secs(20)).await;
    let subject = mails[0].header("subject").unwrap_or_default();
    assert!(subject.contains("failing"), "{subject}");
    assert!(
        mails[0].body().contains("token_refused"),
        "{}",
        mails[0].body()
    );

    // A restart during the outage: more failed cycles, no second watcher.failing.
    daemon.stop().await;
    let daemon = Daemon::start(&path, &[]);
    daemon.wait_for_log("poll cycle failed", 4).await;
    assert_eq!(of_type(&w.hook.delivered(), "watcher.failing").len(), 1);
    let text = std::fs::read_to_string(&path).unwrap();
    let state = testkit::cli::sdm_watch(&text, &["state"], &[]).await;
    let shown = testkit::cli::stdout(&state);
    assert!(
        shown.contains("WATCHER FAILING")
            && shown.contains("token_refused")
            && shown.contains("sent"),
        "{shown}"
    );
    assert_eq!(w.smtp.mails().len(), 1, "one e-mail for the outage");

    // The token rotated in its file: read again after the 401, no SIGHUP.
    std::fs::write(&token_file, "sdm-token-after-revocation\n").unwrap();
    let delivered = wait_for_type(&w, "watcher.recovered", 1).await;
    let recovered = of_type(&delivered, "watcher.recovered")[0].json();
    assert!(
        recovered["data"]["down_for_seconds"].as_u64().unwrap() >= 3,
        "{recovered}"
    );
    assert_eq!(recovered["data"]["since"], failing["data"]["since"]);
    let mails = w.smtp.wait_for(2, Duration::from_secs(20)).await;
    assert!(
        mails[1]
            .header("subject")
            .unwrap_or_default()
            .contains("recovered"),
        "{:?}",
        mails[1].header("subject")
    );
    let log = daemon.stop().await;
    let state =
        testkit::cli::sdm_watch(&std::fs::read_to_string(&path).unwrap(), &["state"], &[]).await;
    assert!(
        !testkit::cli::stdout(&state).contains("WATCHER FAILING"),
        "the outage ended"
    );
    assert!(
        log.iter()
            .any(|l| l.contains("using the new one api.token_file holds")),
        "the rotation is logged"
    );
    assert!(
        !log.iter().any(|l| l.contains("sdm-token-after-revocation")),
        "the token never reaches the log"
    );
    assert_eq!(of_type(&w.hook.delivered(), "watcher.failing").len(), 1);
    assert_eq!(of_type(&w.hook.delivered(), "watcher.recovered").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_answering_503_is_api_errors_told_while_the_cycle_still_retries() {
    let failing = failing_while_retrying(Fault::Status(503)).await;
    assert_eq!(failing["data"]["reason"], "api_errors", "{failing}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_api_is_told_within_alert_after_and_an_interval_of_the_last_success() {
    let failing = failing_while_retrying(Fault::Slow(Duration::from_secs(600))).await;
    assert_eq!(failing["data"]["reason"], "api_unreachable", "{failing}");
    assert!(
        failing["data"]["last_error"]
            .as_str()
            .is_some_and(|error| error.contains("/api/v1/")),
        "{failing}"
    );
}

async fn status_json(listen: &str) -> serde_json::Value {
    testkit::get_json(format!("http://{listen}/status.json")).await
}

/// The watchdog's contract (SPEC, version 4): with `alert_after` 3 s and `poll.interval`
/// 1 s, `watcher.failing` arrives within 4 s (and some slack) of the last
/// successful cycle, though each cycle retries for a minute; `since` is that success and
/// `failing_for_seconds` counts from it. Returns the alert's body, after the recovery.
async fn failing_while_retrying(fault: Fault) -> serde_json::Value {
    let (w, token_file, _) = watched_world().await;
    let listen = format!("127.0.0.1:{}", testkit::ports::free());
    let text = config(&w, &token_file)
        .replace("max_elapsed = \"5s\"", "max_elapsed = \"60s\"")
        .replace("listen = \"\"", &format!("listen = \"{listen}\""));
    let path = write(w.dir.path(), "config.toml", &text);
    let daemon = Daemon::start(&path, &[]);
    daemon.wait_for_log("poll cycle done", 1).await;
    w.sim.fail_always("/api/v1/", fault);
    // The last success was before this moment, at most a second (one interval) before.
    let broken = time::OffsetDateTime::now_utc();
    let clock = std::time::Instant::now();
    let delivered = wait_for_type(&w, "watcher.failing", 1).await;
    let took = clock.elapsed();
    let failing = of_type(&delivered, "watcher.failing")[0].json();
    // 3 s + 1 s, and slack for a loaded machine: far below the minute a cycle retries.
    assert!(
        took <= Duration::from_secs(8),
        "watcher.failing came {took:?} after the API broke: {failing}"
    );
    let since = time::OffsetDateTime::parse(
        failing["data"]["since"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert!(
        since <= broken && since >= broken - time::Duration::seconds(3),
        "since {since} is not the last success, just before {broken}: {failing}"
    );
    let failing_for = failing["data"]["failing_for_seconds"].as_u64().unwrap();
    assert!((3..=8).contains(&failing_for), "{failing}");
    // The status page's data shows the outage in progress, as `sdm-watch state` does.
    let status = status_json(&listen).await;
    let outage = &status["outages"][0];
    assert_eq!(outage["since"], failing["data"]["since"], "{status}");
    assert_eq!(outage["reason"], failing["data"]["reason"], "{status}");
    assert_eq!(outage["watcher_failing_sent"], true, "{status}");
    assert!(
        outage["last_error"].as_str().is_some_and(|e| !e.is_empty()),
        "{status}"
    );
    w.sim.clear_always();
    wait_for_type(&w, "watcher.recovered", 1).await;
    assert_eq!(of_type(&w.hook.delivered(), "watcher.failing").len(), 1);
    let status = status_json(&listen).await;
    assert_eq!(status["outages"], serde_json::json!([]), "the outage ended");
    daemon.stop().await;
    failing
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_heartbeat_pings_spaced_pings_on_failure_and_never_shows_its_url() {
    let w = World::start().await;
    w.sim.add_job(NewJob::new(Status::Running));
    let beats = sdm_watch::sim::WebhookReceiver::start().await.unwrap();
    // The first pings hang: a receiver that does not answer delays no cycle.
    beats.reply_next([sdm_watch::sim::Reply::Hang, sdm_watch::sim::Reply::Hang]);
    let url = beats.url("/ping/secret-check-uuid");
    let text = format!(
        "{}\n[heartbeat]\nurl = \"{url}\"\nfail_url = \"{url}/fail\"\nevery = \"2s\"\n",
        w.config("", "1h", &w.ops_hook())
    );
    let path = write(w.dir.path(), "config.toml", &text);

    let checked = testkit::cli::sdm_watch(&text, &["check"], &[]).await;
    assert_eq!(
        checked.status.code(),
        Some(0),
        "{}",
        testkit::cli::stderr(&checked)
    );
    let shown = testkit::cli::stdout(&checked);
    assert!(
        shown.contains("[heartbeat]") && !shown.contains("secret-check-uuid"),
        "{shown}"
    );

    let daemon = Daemon::start(&path, &[]);
    // Cycles every second go on while the first pings hang (10 s timeout).
    daemon.wait_for_log("poll cycle done", 5).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while beats
        .received()
        .iter()
        .filter(|r| !r.path.ends_with("/fail"))
        .count()
        < 4
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "fewer than 4 pings in 30 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let pings: Vec<_> = beats
        .received()
        .into_iter()
        .filter(|r| !r.path.ends_with("/fail"))
        .collect();
    for pair in pings.windows(2) {
        let gap = pair[1].at - pair[0].at;
        // At most one per `every` (2 s), cycles being every second.
        assert!(gap >= Duration::from_millis(1_900), "pings {gap:?} apart");
    }
    let cycles = daemon.lines_with("poll cycle done").len();
    assert!(
        cycles >= 2 * pings.len() - 2,
        "{cycles} cycles for {} pings",
        pings.len()
    );

    w.sim.fail_always("/api/v1/", Fault::Status(503));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !beats.received().iter().any(|r| r.path.ends_with("/fail")) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no fail ping in 30 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = daemon.stop().await;
    assert!(
        !log.iter().any(|l| l.contains("secret-check-uuid")),
        "the heartbeat URL never reaches the log:\n{}",
        log.join("\n")
    );
}

/// PostgreSQL stopped: the leader can neither poll nor keep its lease nor queue an alert,
/// so `watcher.failing` goes out directly, once for the process (not once for each of its
/// two organisations); `watcher.recovered` follows through the outbox when PostgreSQL is
/// back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_postgresql_gives_the_direct_alert_once() {
    let w = World::start().await;
    w.sim.add_job(NewJob::new(Status::Running));
    // Two organisations share the store: its outage is told once, not once for each.
    let globex = w
        .sim
        .add_organisation("globex", "sim-token-globex-0123456789");
    globex.add_job(NewJob::new(Status::Running));
    let pg = testkit::postgres::Postgres::start();
    let token_file = write(w.dir.path(), "token", &w.sim.token());
    let state = format!(
        "[state]\npath = \"{}\"",
        w.dir.path().join("state.db").display()
    );
    let text = config(&w, &token_file).replace(
        &state,
        &format!("[state]\nurl = \"{}\"\nlease = \"2s\"", pg.url()),
    );
    assert!(text.contains("lease = \"2s\""), "{text}");
    let text = format!(
        "{text}\n[[organisation]]\nname = \"acme\"\n\n[[organisation]]\nname = \"globex\"\ntoken = \"{}\"\n",
        globex.token()
    );
    let path = write(w.dir.path(), "config.toml", &text);
    let daemon = Daemon::start(&path, &[]);
    daemon.wait_for_log("poll cycle done", 2).await;

    pg.stop("fast");
    let delivered = wait_for_type(&w, "watcher.failing", 1).await;
    let failing = of_type(&delivered, "watcher.failing")[0].json();
    assert_eq!(failing["data"]["reason"], "store", "{failing}");
    daemon
        .wait_for_log("watcher.failing sent directly", 1)
        .await;
    // Five more seconds (five cycles' turns, more than alert_after) with PostgreSQL down:
    // an observation window, in which nothing more may be sent.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(of_type(&w.hook.delivered(), "watcher.failing").len(), 1);

    pg.restart();
    wait_for_type(&w, "watcher.recovered", 1).await;
    // Both organisations poll again, and nothing more was told.
    let cycles = daemon.lines_with("poll cycle done").len();
    daemon.wait_for_log("poll cycle done", cycles + 4).await;
    daemon.stop().await;
    let delivered = w.hook.delivered();
    assert_eq!(of_type(&delivered, "watcher.failing").len(), 1);
    assert_eq!(of_type(&delivered, "watcher.recovered").len(), 1);
}

/// Replicas: the leader SIGKILLed, and the standby that takes over cannot poll (its token
/// is refused): one `watcher.failing`, from the replica that now leads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_replica_that_takes_over_cannot_poll_one_watcher_failing_goes_out() {
    let w = World::start().await;
    w.sim.add_job(NewJob::new(Status::Running));
    let pg = testkit::postgres::Postgres::start();
    let state = format!(
        "[state]\npath = \"{}\"",
        w.dir.path().join("state.db").display()
    );
    let replica = |name: &str, token: &str| {
        let token_file = write(w.dir.path(), &format!("{name}.token"), token);
        let text = config(&w, &token_file).replace(
            &state,
            &format!("[state]\nurl = \"{}\"\nlease = \"2s\"", pg.url()),
        );
        write(w.dir.path(), &format!("{name}.toml"), &text)
    };
    let good = replica("good", &w.sim.token());
    let refused = replica("refused", "a-token-the-api-refuses");
    let leader = Daemon::start(&good, &[]);
    leader.wait_for_log("poll cycle done", 1).await;
    let standby = Daemon::start(&refused, &[]);
    standby.wait_for_log("sdm-watch started", 1).await;
    leader.kill().await;
    standby.wait_for_log("this replica now leads", 1).await;
    let delivered = wait_for_type(&w, "watcher.failing", 1).await;
    let failing = of_type(&delivered, "watcher.failing")[0].json();
    assert_eq!(failing["data"]["reason"], "token_refused", "{failing}");
    // An observation window of more than alert_after: still one.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(of_type(&w.hook.delivered(), "watcher.failing").len(), 1);
    standby.stop().await;
}
