//! Receiver outage: the webhook receiver and the SMTP server refuse connections, then fail
//! (503, SMTP 451), then hang, for longer than several retry intervals, then come back.
//! The backlog shows in `outbox_pending` meanwhile; afterwards every alert is delivered.

use std::time::Duration;

use sdm_watch::domain::Status;
use sdm_watch::sim::{NewJob, Reply, Simulator, WebhookReceiver};

use testkit::cli::{sdm_watch, stdout};
use testkit::config::config_text;
use testkit::smtp::SmtpSink;
use testkit::{Daemon, ports};

async fn metric(base: &str, name: &str) -> f64 {
    let text = testkit::http()
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|line| line.starts_with(name))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Waits, at most 15 s, until metric `name` reads `value`.
async fn metric_reaches(base: &str, name: &str, value: f64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let now = metric(base, name).await;
        if now == value {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name} stays at {now}, not {value}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn alerts_wait_out_a_receiver_outage_and_are_all_delivered() {
    let sim = Simulator::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let jobs: Vec<String> = (0..3)
        .map(|_| sim.add_job(NewJob::new(Status::Running)))
        .collect();

    // Both receivers start out absent: connections are refused.
    let hook = WebhookReceiver::start().await.unwrap();
    let hook_addr = hook.addr();
    let hook_url = hook.url("/ops");
    hook.stop().await;
    let smtp_port = ports::listener().local_addr().unwrap().port();
    let http = ports::listener().local_addr().unwrap();
    let text = config_text(
        &sim,
        "",
        &format!(
            "[poll]\ninterval = \"1s\"\n[state]\npath = \"{}\"\n\
             [[webhook]]\nname = \"ops\"\nurl = \"{hook_url}\"\ntimeout = \"1s\"\n\
             [smtp]\nhost = \"127.0.0.1\"\nport = {smtp_port}\ntls = \"none\"\ntimeout = \"1s\"\nfrom = \"a@b.example\"\n\
             [[email]]\nname = \"mail\"\nto = [\"ops@example.com\"]\n",
            dir.path().join("state.db").display()
        ),
    )
    .replace("listen = \"\"", &format!("listen = \"{http}\""))
    .replace("max_interval = \"200ms\"", "max_interval = \"1s\"");
    let config = dir.path().join("config.toml");
    std::fs::write(&config, &text).unwrap();
    let base = format!("http://{http}");
    let daemon = Daemon::start(&config, &[]);
    daemon.wait_for_log("poll cycle done", 1).await;
    for (job, status) in jobs
        .iter()
        .zip([Status::Done, Status::Error, Status::Pending])
    {
        sim.set_status(job, status, Some("failed"));
    }

    // Refused, for three seconds (the outage lasts that long on purpose), and until the
    // backlog shows.
    tokio::time::sleep(Duration::from_secs(3)).await;
    metric_reaches(&base, "sdm_watch_outbox_pending", 6.0).await;
    let output = sdm_watch(&text, &["state"], &[]).await;
    assert!(
        stdout(&output).contains("alerts pending delivery: 6"),
        "{}",
        stdout(&output)
    );

    // Answering with errors, for three seconds.
    let hook = WebhookReceiver::start_at(hook_addr).await.unwrap();
    hook.set_default(Reply::Status(503));
    let hanging = tokio::net::TcpListener::bind(("127.0.0.1", smtp_port))
        .await
        .unwrap();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = hanging.accept().await {
            held.push(socket); // accepted, never answered
        }
    });
    tokio::time::sleep(Duration::from_secs(3)).await;

    // Hanging (webhook) and busy (SMTP 451), for three seconds.
    hook.set_default(Reply::Hang);
    hold.abort();
    let _ = hold.await;
    let smtp = SmtpSink::start_on(std::net::TcpListener::bind(("127.0.0.1", smtp_port)).unwrap());
    smtp.set_busy(true);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        metric(&base, "sdm_watch_outbox_pending").await,
        6.0,
        "nothing lost, nothing dead"
    );
    assert!(
        metric(
            &base,
            "sdm_watch_alerts_total{channel=\"ops\",outcome=\"retry\"}"
        )
        .await
            >= 3.0
    );
    assert!(
        metric(
            &base,
            "sdm_watch_alerts_total{channel=\"mail\",outcome=\"retry\"}"
        )
        .await
            >= 3.0
    );

    // Back.
    hook.set_default(Reply::Status(200));
    smtp.set_busy(false);
    let delivered = hook.wait_for_delivered(3, Duration::from_secs(20)).await;
    let mails = smtp.wait_for(3, Duration::from_secs(20)).await;
    assert_eq!(delivered.len(), 3, "every webhook delivered after recovery");
    assert_eq!(mails.len(), 3, "every e-mail delivered after recovery");
    let answered: Vec<u16> = hook.received().iter().map(|r| r.answered).collect();
    assert!(
        answered.contains(&503) && answered.contains(&0),
        "503s and hangs were met: {answered:?}"
    );
    // The last outcome is recorded just after the receiver saw the delivery.
    metric_reaches(&base, "sdm_watch_outbox_pending", 0.0).await;
    assert_eq!(
        metric(
            &base,
            "sdm_watch_alerts_total{channel=\"ops\",outcome=\"dead\"}"
        )
        .await,
        0.0
    );
    daemon.stop().await;
}
