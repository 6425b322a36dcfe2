//! Target 5 and issues 13 and 21: bursts of transitions, with and without digests, and one huge message on every channel.

use super::*;

/// Records when each webhook arrives, counting them.
pub(super) struct Arrivals {
    pub(super) count: Arc<AtomicUsize>,
    /// (arrival, job id, status) of each.
    pub(super) seen: Arc<Mutex<Vec<(Instant, String, String)>>>,
}

impl Arrivals {
    pub(super) async fn receiver() -> (WebhookReceiver, Arrivals) {
        let count = Arc::new(AtomicUsize::new(0));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (c, s) = (count.clone(), seen.clone());
        let receiver =
            WebhookReceiver::start_with(Some(Box::new(move |hook: &ReceivedWebhook| {
                let body = hook.json();
                let job = &body["data"]["job"];
                s.lock().unwrap().push((
                    hook.at,
                    job["id"].as_str().unwrap_or_default().to_owned(),
                    job["status"].as_str().unwrap_or_default().to_owned(),
                ));
                c.fetch_add(1, Ordering::SeqCst);
            })))
            .await
            .unwrap();
        (receiver, Arrivals { count, seen })
    }

    /// What arrived, per second from the first arrival to the last, and those two times.
    pub(super) fn rate(&self) -> (Vec<(Instant, String, String)>, f64, Instant, Instant) {
        let seen = self.seen.lock().unwrap().clone();
        let first = seen.iter().map(|(at, ..)| *at).min().unwrap();
        let last = seen.iter().map(|(at, ..)| *at).max().unwrap();
        let rate = seen.len() as f64 / (last - first).as_secs_f64().max(1e-3);
        (seen, rate, first, last)
    }

    pub(super) async fn wait_for(&self, count: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.count.load(Ordering::SeqCst) < count {
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        true
    }
}

/// `total` running jobs created lately, a receiver counting arrivals, and a config that
/// polls every second with one webhook to that receiver: a burst waiting to happen.
pub(super) struct BurstWorld {
    pub(super) sim: Simulator,
    pub(super) ids: Vec<String>,
    pub(super) _receiver: WebhookReceiver,
    pub(super) arrivals: Arrivals,
    pub(super) _dir: tempfile::TempDir,
    pub(super) config: PathBuf,
}

impl BurstWorld {
    pub(super) async fn start(total: usize) -> BurstWorld {
        let sim = Simulator::start().await.unwrap();
        let (ids, _) = history(&sim, total, 0.5, total, false, RECENT);
        let (receiver, arrivals) = Arrivals::receiver().await;
        let dir = workdir();
        let config = write_config(
            dir.path(),
            "config.toml",
            &sim,
            "page_size = 1000",
            &format!("[poll]\ninterval = \"1s\"\n{}", webhook(&receiver)),
        );
        BurstWorld {
            sim,
            ids,
            _receiver: receiver,
            arrivals,
            _dir: dir,
            config,
        }
    }
}

/// Starts the daemon on `config`, lets its first cycle record `ids` running, then turns
/// them all `done` at once: the daemon, its RSS before the burst, and when it began.
pub(super) async fn start_then_finish(
    config: &Path,
    sim: &Simulator,
    ids: &[String],
) -> (Daemon, u64, Instant) {
    let daemon = Daemon::start(config, &[("SDM_WATCH_LOG", "info")]);
    daemon
        .wait_for_log_within("poll cycle done", 1, Duration::from_secs(60))
        .await;
    let rss_before = daemon.rss_kib();
    let changed = Instant::now();
    for id in ids {
        sim.set_status(id, Status::Done, None);
    }
    (daemon, rss_before, changed)
}

/// Target 5: a burst of transitions in one cycle, delivered by webhook and by e-mail.
pub(super) async fn burst(figures: &mut Vec<Figure>) {
    let total = scaled(5_000, 50);
    let world = BurstWorld::start(total).await;
    let (daemon, rss_before, changed) =
        start_then_finish(&world.config, &world.sim, &world.ids).await;
    let all = world
        .arrivals
        .wait_for(total, Duration::from_secs(600))
        .await;
    let stopped = daemon.finish().await;
    let (code, peak_kib) = (stopped.code, stopped.peak_kib);
    assert_eq!(code, 0);
    let (seen, rate, first, last) = world.arrivals.rate();
    figures.push(
        Figure::new(
            "burst: webhook alerts delivered per second",
            format!(
                "{rate:.0}/s ({} alerts in {:.2} s; {:.2} s from the change to the last; concurrency 16)",
                seen.len(),
                (last - first).as_secs_f64(),
                (last - changed).as_secs_f64()
            ),
        )
        .target(">= 500/s, all delivered", rate >= 500.0 && all),
    );
    figures.push(Figure::new(
        "burst: daemon RSS",
        format!(
            "{:.1} MiB before the burst, peak {:.1} MiB over the run",
            mib(rss_before),
            mib(peak_kib)
        ),
    ));

    // E-mail: the same through a real SMTP server, counting its sessions.
    let mails = scaled(1_000, 20);
    let sim = Simulator::start().await.unwrap();
    let (ids, _) = history(&sim, mails, 0.5, mails, false, RECENT);
    let sink = SmtpSink::start();
    let dir = workdir();
    let config = write_config(
        dir.path(),
        "config.toml",
        &sim,
        "page_size = 1000",
        &format!(
            "[poll]\ninterval = \"1s\"\n[smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\n\
             from = \"sdm-watch@example.com\"\n[[email]]\nname = \"oncall\"\nto = [\"oncall@example.com\"]\n",
            sink.addr.port()
        ),
    );
    let daemon = Daemon::start(&config, &[("SDM_WATCH_LOG", "info")]);
    daemon
        .wait_for_log_within("poll cycle done", 1, Duration::from_secs(60))
        .await;
    for id in &ids {
        sim.set_status(id, Status::Done, None);
    }
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut first = None;
    while sink.count() < mails && Instant::now() < deadline {
        if first.is_none() && sink.count() > 0 {
            first = Some(Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let took = first.map_or(Duration::ZERO, |first| first.elapsed());
    daemon.finish().await;
    let sessions = sink.sessions();
    figures.push(
        Figure::new(
            "burst: e-mail alerts over pooled SMTP",
            format!(
                "{} messages over {sessions} SMTP connections, {:.0}/s",
                sink.count(),
                sink.count() as f64 / took.as_secs_f64().max(1e-3)
            ),
        )
        .target(
            "all sent, <= 16 connections",
            sink.count() == mails && sessions <= 16,
        ),
    );
}

/// Issue 13: a burst of transitions with `group_wait = "10s"` on a webhook and an e-mail
/// channel: at most 50 digests each, and the daemon's peak RSS.
pub(super) async fn burst_digests(figures: &mut Vec<Figure>) {
    let total = scaled(5_000, 200);
    let sim = Simulator::start().await.unwrap();
    let (ids, _) = history(&sim, total, 0.5, total, false, RECENT);
    let receiver = WebhookReceiver::start().await.unwrap();
    let sink = SmtpSink::start();
    let dir = workdir();
    let config = write_config(
        dir.path(),
        "config.toml",
        &sim,
        "page_size = 1000",
        &format!(
            "[poll]\ninterval = \"1s\"\n{}group_wait = \"10s\"\ngroup_max = 100\n\
             [smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\n\
             from = \"sdm-watch@example.com\"\n[[email]]\nname = \"oncall\"\n\
             to = [\"oncall@example.com\"]\ngroup_wait = \"10s\"\ngroup_max = 100\n",
            webhook(&receiver),
            sink.addr.port()
        ),
    );
    let (daemon, rss_before, changed) = start_then_finish(&config, &sim, &ids).await;
    let members = |hooks: &[ReceivedWebhook]| -> usize {
        hooks
            .iter()
            .map(|h| h.json()["data"]["alerts"].as_array().map_or(1, Vec::len))
            .sum()
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while (members(&receiver.delivered()) < total || sink.count() < total.div_ceil(100))
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = changed.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let stopped = daemon.finish().await;
    assert_eq!(stopped.code, 0);
    let hooks = receiver.delivered();
    let told = members(&hooks);
    let mails = sink.count();
    let limit = total.div_ceil(100);
    figures.push(
        Figure::new(
            "digests: messages per channel for a burst, group_wait 10s",
            format!(
                "{} webhook digests telling {told} alerts, {mails} e-mails, for {total} changes; the last {:.1} s after the change",
                hooks.len(),
                took.as_secs_f64()
            ),
        )
        .target(
            format!("<= {limit} per channel, every alert told"),
            hooks.len() <= limit && mails <= limit && told == total,
        ),
    );
    figures.push(
        Figure::new(
            "digests: daemon peak RSS",
            format!(
                "{:.1} MiB before the burst, peak {:.1} MiB over the run",
                mib(rss_before),
                mib(stopped.peak_kib)
            ),
        )
        .target("< 32 MiB", stopped.peak_kib < 32 * 1024),
    );
}

/// Issue 21: an error message of 2 MB goes out on every channel (standard, Slack, Teams,
/// Google Chat, Discord, e-mail with its HTML part), each cut where its format says; the
/// daemon's peak RSS over the run.
pub(super) async fn huge_message(figures: &mut Vec<Figure>) {
    let size = scaled(2 * 1024 * 1024, 64 * 1024);
    let sim = Simulator::start().await.unwrap();
    let job = sim.add_job(NewJob::new(Status::Running).name("Huge"));
    let receiver = WebhookReceiver::start().await.unwrap();
    let sink = SmtpSink::start();
    let dir = workdir();
    let formats = ["standard", "slack", "teams", "google_chat", "discord"];
    let hooks: String = formats
        .iter()
        .map(|format| {
            format!(
                "[[webhook]]\nname = \"{format}\"\nurl = \"{}\"\nformat = \"{format}\"\n",
                receiver.url(&format!("/{format}"))
            )
        })
        .collect();
    let config = write_config(
        dir.path(),
        "config.toml",
        &sim,
        "",
        &format!(
            "[poll]\ninterval = \"1s\"\n{hooks}\
             [smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\n\
             from = \"sdm-watch@example.com\"\n[[email]]\nname = \"oncall\"\n\
             to = [\"oncall@example.com\"]\nhtml = true\n",
            sink.addr.port()
        ),
    );
    let daemon = Daemon::start(&config, &[]);
    daemon.wait_for_log("poll cycle done", 1).await;
    let message = "Row 17 has no sku. ".repeat(size / 19 + 1);
    sim.set_status(&job, Status::Error, Some(&message[..size]));
    let deadline = Instant::now() + Duration::from_secs(120);
    while (receiver.delivered().len() < formats.len() || sink.count() < 1)
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stopped = daemon.finish().await;
    assert_eq!(stopped.code, 0);
    let delivered = receiver.delivered();
    let bytes: Vec<String> = formats
        .iter()
        .map(|format| {
            let body = delivered
                .iter()
                .find(|h| h.path == format!("/{format}"))
                .map_or(0, |h| h.body.len());
            format!("{format} {} KiB", body / 1024)
        })
        .collect();
    figures.push(
        Figure::new(
            "a 2 MB error message on every channel: daemon peak RSS",
            format!(
                "{:.1} MiB; {} webhooks ({}), {} e-mail",
                mib(stopped.peak_kib),
                delivered.len(),
                bytes.join(", "),
                sink.count()
            ),
        )
        .target(
            "< 40 MiB, every channel delivered",
            stopped.peak_kib < 40 * 1024 && delivered.len() == formats.len() && sink.count() == 1,
        ),
    );
}
