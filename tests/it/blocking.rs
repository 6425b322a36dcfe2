//! Blocking work stays off the async runtime (issue 33): a token file that takes its time
//! to read (here a FIFO nobody has written yet, as a hung network mount would) stalls the
//! read, never the endpoints. The daemon runs on one runtime thread, so that a read done
//! on it would stop everything, and /healthz would not answer.

use std::fs::OpenOptions;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;
use std::time::{Duration, Instant};

use sdm_watch::domain::Status;
use sdm_watch::sim::{NewJob, Simulator};
use testkit::Daemon;

/// Replaces `path` with a FIFO: whoever reads it waits until a writer comes.
fn make_fifo(path: &Path) {
    std::fs::remove_file(path).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo (coreutils) runs");
    assert!(made.success(), "mkfifo {}", path.display());
}

/// The FIFO's writing end, once the daemon has opened it to read (and waits for its
/// content): opening without blocking succeeds only while a reader is there.
async fn writer_once_read(fifo: &Path, what: &str) -> std::fs::File {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(fifo)
        {
            Ok(writer) => return writer,
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) => {}
            Err(e) => panic!("cannot open {}: {e}", fifo.display()),
        }
        assert!(
            Instant::now() < deadline,
            "the daemon never read the token file ({what})"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// /healthz answers within 3 s, while the token file's read waits.
async fn healthz_answers(listen: &str, what: &str) {
    let answer = testkit::http()
        .get(format!("http://{listen}/healthz"))
        .timeout(Duration::from_secs(3))
        .send()
        .await;
    match answer {
        Ok(answer) => assert_eq!(answer.status(), 200, "{what}"),
        Err(e) => panic!("/healthz did not answer while {what}: {e}"),
    }
}

#[tokio::test]
async fn a_token_file_slow_to_read_stalls_neither_the_endpoints_nor_a_sigterm() {
    let sim = Simulator::start().await.unwrap();
    sim.add_job_with_id("job-1", NewJob::new(Status::Running));
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, sim.token()).unwrap();
    let config = dir.path().join("config.toml");
    let listen = format!("127.0.0.1:{}", testkit::ports::free());
    std::fs::write(
        &config,
        format!(
            "[api]\nbase_url = \"{base}\"\ntoken_file = \"{token}\"\n[poll]\ninterval = \"1s\"\n\
             [state]\npath = \"{state}\"\n[http]\nlisten = \"{listen}\"\n",
            base = sim.base_url(),
            token = token.display(),
            state = dir.path().join("state.db").display(),
        ),
    )
    .unwrap();
    // One runtime thread: whatever blocks it stops the listener too.
    let daemon = Daemon::start(&config, &[("TOKIO_WORKER_THREADS", "1")]);
    daemon.wait_for_log("poll cycle done", 1).await;

    // The API refuses the token: the client reads the file again for a new one.
    make_fifo(&token);
    sim.set_token("rotated-token-0001");
    let mut writer = writer_once_read(&token, "after the API refused the token").await;
    healthz_answers(&listen, "a refused token's file is read again").await;
    assert!(
        testkit::metrics::scrape(&listen)
            .await
            .contains("sdm_watch_")
    );
    writer.write_all(b"rotated-token-0001").unwrap();
    drop(writer);
    daemon
        .wait_for_log("using the new one api.token_file holds", 1)
        .await;
    let cycles = daemon.lines_with("poll cycle done").len();
    daemon.wait_for_log("poll cycle done", cycles + 1).await;

    // SIGHUP reads the config, and with it the token file, again: a read that never ends
    // holds up neither the endpoints nor a SIGTERM.
    make_fifo(&token);
    daemon.signal("HUP");
    let _writer = writer_once_read(&token, "after SIGHUP").await;
    healthz_answers(&listen, "a reload reads the token file").await;
    let cycles = daemon.lines_with("poll cycle done").len();
    daemon.wait_for_log("poll cycle done", cycles + 1).await;
    let log = daemon.stop().await;
    assert!(
        !log.iter()
            .any(|line| line.contains("configuration reloaded"))
    );
}
