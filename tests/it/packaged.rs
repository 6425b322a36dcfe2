//! What the Debian package and a minimal system need of the binary (issue 32): the
//! packaged config works from a shell for every command that does not call the API, a
//! token file may fall back to a directory when systemd's credentials are not there, and a
//! system without CA certificates still runs a config that needs no TLS.
//! `deploy/debian/check.sh` lives the rest under a real systemd.

use sdm_watch::domain::Status;
use sdm_watch::sim::{NewJob, Simulator, WebhookReceiver};
use testkit::cli::{sdm_watch, stderr, stdout};

fn packaged_config() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/config.systemd.toml"
    ))
    .unwrap()
}

/// The operator's shell: no `$CREDENTIALS_DIRECTORY`, and the token (root's, or the
/// credential's) not readable. `check`, `state`, `alerts list` and `healthcheck` work;
/// `once` says which key it needs.
#[tokio::test]
async fn the_packaged_config_works_from_a_shell_for_commands_that_do_not_call_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.db");
    // What the service wrote before (an empty store will do).
    drop(sdm_watch::store::Store::open(&state).unwrap());
    let state = state.to_str().unwrap();
    // A port nothing listens on: the default one may be another test's daemon's.
    let listen = format!("127.0.0.1:{}", testkit::ports::free());
    let shell = [
        ("SDM_WATCH_STATE__PATH", state),
        ("SDM_WATCH_HTTP__LISTEN", listen.as_str()),
        ("CREDENTIALS_DIRECTORY", ""),
    ];
    let text = packaged_config();
    assert!(
        !std::path::Path::new("/etc/sdm-watch/sdm-token").exists(),
        "this test stands for a shell where the token cannot be read"
    );

    let check = sdm_watch(&text, &["check"], &shell).await;
    assert_eq!(check.status.code(), Some(0), "{}", stderr(&check));
    let said = stdout(&check);
    assert!(
        said.contains("# note: the API token of organisation default is not readable here")
            && said.contains("/etc/sdm-watch/sdm-token"),
        "{said}"
    );
    for args in [&["state"][..], &["alerts", "list"][..]] {
        let output = sdm_watch(&text, args, &shell).await;
        assert_eq!(
            output.status.code(),
            Some(0),
            "{args:?}: {}",
            stderr(&output)
        );
    }
    // No daemon listens: healthcheck says so (1), not that the config is invalid (2).
    let health = sdm_watch(&text, &["healthcheck"], &shell).await;
    assert_eq!(health.status.code(), Some(1), "{}", stderr(&health));
    assert!(!stderr(&health).contains("invalid configuration"));

    let once = sdm_watch(&text, &["once"], &shell).await;
    assert_eq!(once.status.code(), Some(2));
    assert!(
        stderr(&once).contains("api.token_file")
            && stderr(&once).contains("/etc/sdm-watch/sdm-token"),
        "{}",
        stderr(&once)
    );
}

/// `${CREDENTIALS_DIRECTORY:-DIR}`: systemd's credentials when it set the variable, DIR
/// from a shell.
#[tokio::test]
async fn a_token_file_falls_back_to_its_directory_without_systemd_credentials() {
    let sim = Simulator::start().await.unwrap();
    let (fallback, credentials) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    std::fs::write(fallback.path().join("sdm-token"), sim.token()).unwrap();
    let state = fallback.path().join("state.db");
    let text = format!(
        "[api]\nbase_url = \"{}\"\ntoken_file = \"${{CREDENTIALS_DIRECTORY:-{}}}/sdm-token\"\n\
         [http]\nlisten = \"\"\n[state]\npath = \"{}\"\n",
        sim.base_url(),
        fallback.path().display(),
        state.display()
    );
    let from_shell = sdm_watch(&text, &["once"], &[("CREDENTIALS_DIRECTORY", "")]).await;
    assert_eq!(from_shell.status.code(), Some(0), "{}", stderr(&from_shell));

    let directory = credentials.path().to_str().unwrap();
    let under_systemd = sdm_watch(&text, &["once"], &[("CREDENTIALS_DIRECTORY", directory)]).await;
    assert_eq!(
        under_systemd.status.code(),
        Some(2),
        "the credential is missing"
    );
    assert!(stderr(&under_systemd).contains(&format!("{directory}/sdm-token")));
    std::fs::write(credentials.path().join("sdm-token"), sim.token()).unwrap();
    let under_systemd = sdm_watch(&text, &["once"], &[("CREDENTIALS_DIRECTORY", directory)]).await;
    assert_eq!(
        under_systemd.status.code(),
        Some(0),
        "{}",
        stderr(&under_systemd)
    );
}

/// A minimal system without `ca-certificates` (here: `SSL_CERT_FILE` naming an empty
/// file, the only store then read): a config with an http:// API and receiver still polls
/// and alerts, and the log says once what is missing.
#[tokio::test]
async fn without_system_ca_certificates_a_config_without_tls_still_runs() {
    let sim = Simulator::start().await.unwrap();
    let receiver = WebhookReceiver::start().await.unwrap();
    let job = sim.add_job(NewJob::new(Status::Running));
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("no-certificates.pem");
    std::fs::write(&empty, "").unwrap();
    let text = format!(
        "[api]\nbase_url = \"{}\"\ntoken = \"{}\"\n[http]\nlisten = \"\"\n[state]\npath = \"{}\"\n\
         [[webhook]]\nname = \"ops\"\nurl = \"{}\"\n[heartbeat]\nurl = \"{}\"\n",
        sim.base_url(),
        sim.token(),
        dir.path().join("state.db").display(),
        receiver.url("/hook"),
        receiver.url("/ping"),
    );
    let env = [
        ("SSL_CERT_FILE", empty.to_str().unwrap()),
        ("SSL_CERT_DIR", ""),
    ];
    let first = sdm_watch(&text, &["once"], &env).await;
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    sim.set_status(&job, Status::Error, Some("bad row"));
    let second = sdm_watch(&text, &["once"], &env).await;
    assert_eq!(second.status.code(), Some(0), "{}", stderr(&second));
    let log = stderr(&second);
    assert_eq!(
        log.matches("the system has no CA certificates").count(),
        1,
        "said once: {log}"
    );
    let alerts: Vec<_> = receiver
        .received()
        .into_iter()
        .filter(|hook| hook.path == "/hook")
        .collect();
    assert_eq!(alerts.len(), 1, "the error alert was delivered");
    assert_eq!(alerts[0].json()["data"]["job"]["status"], "error");
}

/// Not setting `http.listen`: the endpoints on the new default, 10187, and for this
/// release on 9187 too, with a warning; a config that sets 9187 keeps it, warned.
#[tokio::test]
async fn the_default_port_is_10187_and_9187_still_answers_for_one_release() {
    let sim = Simulator::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    let base = format!(
        "[api]\nbase_url = \"{}\"\ntoken = \"{}\"\n[state]\npath = \"{}\"\n",
        sim.base_url(),
        sim.token(),
        dir.path().join("state.db").display()
    );
    std::fs::write(&config, &base).unwrap();
    let daemon = testkit::Daemon::start(&config, &[]);
    daemon.wait_for_log("serving /, /status.json", 1).await;
    let said = daemon
        .wait_for_log("also serving on the old default port 9187", 1)
        .await;
    assert!(said[0].contains("127.0.0.1:10187"), "{said:?}");
    for port in [10187, 9187] {
        let body = testkit::http()
            .get(format!("http://127.0.0.1:{port}/healthz"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("port {port}: {e}"));
        assert_eq!(body.status(), 200, "port {port}");
    }
    daemon.stop().await;

    // Set to 9187 by the operator: served there alone, with a warning.
    std::fs::write(
        &config,
        format!("{base}[http]\nlisten = \"127.0.0.1:9187\"\n"),
    )
    .unwrap();
    let daemon = testkit::Daemon::start(&config, &[]);
    daemon
        .wait_for_log("postgres_exporter's: sdm-watch's default is now", 1)
        .await;
    assert!(
        testkit::http()
            .get("http://127.0.0.1:9187/healthz")
            .send()
            .await
            .is_ok()
    );
    assert!(
        testkit::http()
            .get("http://127.0.0.1:10187/healthz")
            .send()
            .await
            .is_err(),
        "only where the config says"
    );
    daemon.stop().await;
}

/// What the alerting rules read of a live daemon: a failed reload as
/// `sdm_watch_config_last_reload_successful 0` until a good one, and the standard
/// `process_*` metrics.
#[tokio::test]
async fn metrics_say_when_a_reload_failed_and_what_the_process_takes() {
    let sim = Simulator::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    let listen = format!("127.0.0.1:{}", testkit::ports::free());
    let good = format!(
        "[api]\nbase_url = \"{}\"\ntoken = \"{}\"\n[state]\npath = \"{}\"\n[http]\nlisten = \"{listen}\"\n",
        sim.base_url(),
        sim.token(),
        dir.path().join("state.db").display()
    );
    std::fs::write(&config, &good).unwrap();
    let daemon = testkit::Daemon::start(&config, &[]);
    daemon.wait_for_log("serving /, /status.json", 1).await;
    let metric = async |name: &str| -> f64 {
        let text = testkit::metrics::scrape(&listen).await;
        testkit::metrics::value(&text, name)
            .unwrap_or_else(|| panic!("no {name} in /metrics:\n{text}"))
    };
    assert_eq!(metric("sdm_watch_config_last_reload_successful").await, 1.0);
    let loaded = metric("sdm_watch_config_last_reload_success_timestamp_seconds").await;
    assert!(loaded > 1.7e9, "{loaded}");
    assert!(metric("process_resident_memory_bytes").await > 1e6);
    assert!(metric("process_open_fds").await >= 3.0);
    assert!(metric("process_start_time_seconds").await > 1.7e9);

    std::fs::write(&config, format!("{good}[log]\nformat = \"xml\"\n")).unwrap();
    daemon.signal("HUP");
    daemon.wait_for_log("reload refused", 1).await;
    assert_eq!(metric("sdm_watch_config_last_reload_successful").await, 0.0);
    assert_eq!(
        metric("sdm_watch_config_last_reload_success_timestamp_seconds").await,
        loaded,
        "the last success stays the start"
    );

    std::fs::write(&config, &good).unwrap();
    daemon.signal("HUP");
    daemon.wait_for_log("configuration reloaded", 1).await;
    assert_eq!(metric("sdm_watch_config_last_reload_successful").await, 1.0);
    daemon.stop().await;
}
