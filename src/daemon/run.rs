//! `run`: one poll loop per organisation, each on its own cadence, concurrently, the
//! process-wide work bounded by [`CONCURRENT_CYCLES`]; around them the delivery worker,
//! the endpoints, leadership among replicas, and the signals (SIGTERM stops, SIGHUP
//! reloads).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use tokio::sync::{Semaphore, mpsc, watch};
use tracing::{Instrument as _, info, warn};

use super::leader::LeaderHandle;
use super::org_loop::{Shared, watch_org};
use super::outcome::register_series;
use super::start::{lead, serve};
use super::{OrgWatch, Parts, Reloader};
use crate::config::Config;
use crate::ops::auth::Access;
use crate::ops::health::Health;
use crate::ops::signals::Control;
use crate::ops::systemd;
use crate::store::Store;
use crate::telemetry;

/// At most this many cycles (of different organisations) run at once: one organisation
/// that is slow never delays another, and a thousand never run a thousand cycles at once.
pub const CONCURRENT_CYCLES: usize = 16;

/// Polls, tracks and alerts until a [`Control::Shutdown`] (or the end of `controls`);
/// reloads from `config_path` on [`Control::Reload`]. On shutdown, polling stops, deliveries
/// in flight get at most 10 s, and the function returns.
pub async fn run(
    config: Config,
    config_path: Option<PathBuf>,
    mut controls: mpsc::Receiver<Control>,
) -> anyhow::Result<()> {
    let recorder = telemetry::install();
    register_series(&config);
    telemetry::config_loaded(true);
    let (listen, legacy_listen) = (config.http.listen, config.http.legacy_listen);
    let Parts {
        store,
        wake,
        orgs,
        worker,
        replicas,
        mut reloader,
    } = Parts::build(config).await?;
    let names: Vec<&str> = orgs.iter().map(|org| org.name.as_str()).collect();
    let health = Arc::new(Health::new(reloader.config().poll.interval, names));
    metrics::gauge!(telemetry::POLL_INTERVAL).set(reloader.config().poll.interval.as_secs_f64());
    let (stop, stopped) = watch::channel(false);
    let (leadership, lease_task) =
        lead(replicas, &store, &wake, worker.replica(), &health, &stopped);
    let followed = Followed::new(&reloader, health.clone());
    let delivery = reloader.channels_receiver();
    let channels: crate::actions::SetupNow = Arc::new(move || delivery.borrow().clone());
    let _endpoints = serve(
        listen,
        legacy_listen,
        &store,
        &health,
        recorder,
        followed.access.clone(),
        channels,
        followed.tls.clone(),
    )
    .await?;
    count_tracked(&store, &orgs).await;
    let resender = tokio::spawn(resender(&worker, leadership.clone()).run(stopped.clone()));
    let reporter = tokio::spawn(worker.reporter().run(stopped.clone()));
    let worker = tokio::spawn(worker.run(stopped.clone()));
    started(&store, orgs.len(), reloader.config());
    let shared = Shared {
        health: health.clone(),
        leadership,
        permits: Arc::new(Semaphore::new(CONCURRENT_CYCLES)),
        channels: reloader.channels_receiver(),
        heartbeat: Arc::new(Mutex::new(Default::default())),
    };
    let loops = spawn_loops(orgs, &reloader, &shared, &stopped);
    answer_signals(
        &mut controls,
        &mut reloader,
        config_path.as_ref(),
        &followed,
    )
    .await;

    info!("stopping");
    systemd::stopping();
    let _ = stop.send(true);
    for task in loops {
        let _ = task.await;
    }
    worker.await.context("the delivery worker failed")?;
    // A resend in flight is not waited for: it is only ever a repeat.
    resender.abort();
    // A report is decided and queued in one transaction: stopping between two loses none.
    reporter.abort();
    if let Some((task, listener)) = lease_task {
        let _ = task.await;
        listener.abort();
    }
    info!("stopped");
    Ok(())
}

/// Tells the log and systemd that the daemon is up.
fn started(store: &Store, organisations: usize, config: &Config) {
    info!(
        state = %store.location(),
        organisations,
        interval = %humantime::format_duration(config.poll.interval),
        "sdm-watch started"
    );
    systemd::ready();
    systemd::spawn_watchdog();
}

/// The tracked-jobs gauges, counted once at start (each cycle keeps them current).
async fn count_tracked(store: &Store, orgs: &[OrgWatch]) {
    let names: Vec<String> = orgs.iter().map(|org| org.name.clone()).collect();
    if let Err(error) = store
        .run(move |conn| crate::store::gauges::set_all(conn, &names))
        .await
    {
        warn!(error = %error, "cannot count the tracked jobs for the metrics");
    }
}

/// Each organisation's poll loop, in its span.
fn spawn_loops(
    orgs: Vec<OrgWatch>,
    reloader: &Reloader,
    shared: &Shared,
    stopped: &watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    orgs.into_iter()
        .map(|org| {
            let setup = reloader.setup_receiver(&org.name);
            let span = super::organisation_span(&org.name);
            let task = watch_org(org, setup, shared.clone(), stopped.clone());
            tokio::spawn(task.instrument(span))
        })
        .collect()
}

/// Answers the signals until SIGTERM (or the end of `controls`): SIGHUP reloads. A reload
/// stuck reading a file never holds up a SIGTERM; a SIGHUP during a reload is answered by
/// one more reload after it, which reads the file as it is then.
async fn answer_signals(
    controls: &mut mpsc::Receiver<Control>,
    reloader: &mut Reloader,
    config_path: Option<&PathBuf>,
    followed: &Followed,
) {
    let mut again = false;
    loop {
        if !std::mem::take(&mut again) {
            match controls.recv().await {
                Some(Control::Reload) => {}
                Some(Control::Shutdown) | None => return,
            }
        }
        {
            let reload = reloader.reload(config_path);
            tokio::pin!(reload);
            loop {
                tokio::select! {
                    () = &mut reload => break,
                    control = controls.recv() => match control {
                        Some(Control::Reload) => again = true,
                        Some(Control::Shutdown) | None => return,
                    },
                }
            }
        }
        followed.follow(reloader);
    }
}

/// What the endpoints take from the config and follow on each reload: the console's users,
/// the certificate served, the interval health judges by.
struct Followed {
    access: Arc<Access>,
    /// The certificate served, replaced on SIGHUP (turning HTTPS on or off needs a restart).
    tls: Option<crate::ops::http::TlsServer>,
    health: Arc<Health>,
}

impl Followed {
    fn new(reloader: &Reloader, health: Arc<Health>) -> Followed {
        let http = &reloader.config().http;
        Followed {
            access: Arc::new(Access::new(http.users.clone(), http.metrics_auth)),
            tls: http
                .tls
                .as_ref()
                .map(|tls| Arc::new(std::sync::RwLock::new(tls.server.clone()))),
            health,
        }
    }

    /// After a reload (the old values stay where it failed).
    fn follow(&self, reloader: &Reloader) {
        let http = &reloader.config().http;
        self.access.replace(http.users.clone(), http.metrics_auth);
        match (&self.tls, &http.tls) {
            (Some(served), Some(new)) => {
                *served.write().unwrap_or_else(|e| e.into_inner()) = new.server.clone();
            }
            (None, None) => {}
            _ => warn!("turning HTTPS on or off takes a restart; the listener stays as it was"),
        }
        let poll = &reloader.config().poll;
        self.health.set_interval(poll.interval);
        metrics::gauge!(telemetry::POLL_INTERVAL).set(poll.interval.as_secs_f64());
    }
}

/// The Alertmanager resender; among replicas, for the organisations this one leads only.
fn resender(
    worker: &crate::notify::Worker,
    leadership: Option<LeaderHandle>,
) -> crate::notify::incident::resend::Resender {
    let resender = worker.resender();
    match leadership {
        Some(handle) => resender.only_where(Arc::new(move |org: &str| {
            handle
                .org(org)
                .is_some_and(|org| org.standing.borrow().leads())
        })),
        None => resender,
    }
}
