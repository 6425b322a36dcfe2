//! `run`: one poll loop per organisation, each on its own cadence, concurrently, the
//! process-wide work bounded by [`CONCURRENT_CYCLES`]; around them the delivery worker,
//! the endpoints, leadership among replicas, and the signals (SIGTERM stops, SIGHUP
//! reloads).

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::time::Instant;
use tracing::{Instrument as _, error, info, warn};

use super::heartbeat::Heartbeat;
use super::leader::LeaderHandle;
use super::report::{register_series, report};
use super::start::{lead, serve};
use super::{OrgWatch, Parts, Reloader};
use crate::config::Config;
use crate::notify::DeliverySetup;
use crate::ops::auth::Access;
use crate::ops::health::Health;
use crate::ops::signals::Control;
use crate::ops::systemd;
use crate::telemetry;
use crate::watch::WatchSetup;

/// At most this many cycles (of different organisations) run at once: one organisation
/// that is slow never delays another, and a thousand never run a thousand cycles at once.
pub const CONCURRENT_CYCLES: usize = 16;

/// What every organisation's loop shares.
#[derive(Clone)]
struct Shared {
    health: Arc<Health>,
    leadership: Option<LeaderHandle>,
    permits: Arc<Semaphore>,
    channels: watch::Receiver<Arc<DeliverySetup>>,
    /// The dead man's switch, and the organisations whose last cycle failed: it pings
    /// success only while none does.
    heartbeat: Arc<Mutex<(Heartbeat, HashSet<String>)>>,
}

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
    let listen = config.http.listen;
    let legacy_listen = config.http.legacy_listen;
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
    let http = &reloader.config().http;
    let access = Arc::new(Access::new(http.users.clone(), http.metrics_auth));
    let delivery = reloader.channels_receiver();
    let channels: crate::actions::SetupNow = Arc::new(move || delivery.borrow().clone());
    // The certificate served, replaced on SIGHUP (turning HTTPS on or off needs a restart).
    let tls: Option<crate::ops::http::TlsServer> = http
        .tls
        .as_ref()
        .map(|tls| Arc::new(std::sync::RwLock::new(tls.server.clone())));
    let _endpoints = serve(
        listen,
        legacy_listen,
        &store,
        &health,
        recorder,
        access.clone(),
        channels,
        tls.clone(),
    )
    .await?;
    let names: Vec<String> = orgs.iter().map(|org| org.name.clone()).collect();
    if let Err(error) = store
        .run(move |conn| crate::store::gauges::set_all(conn, &names))
        .await
    {
        warn!(error = %error, "cannot count the tracked jobs for the metrics");
    }
    let resender = tokio::spawn(resender(&worker, leadership.clone()).run(stopped.clone()));
    let reporter = tokio::spawn(worker.reporter().run(stopped.clone()));
    let worker = tokio::spawn(worker.run(stopped.clone()));
    info!(
        state = %store.location(),
        organisations = orgs.len(),
        interval = %humantime::format_duration(reloader.config().poll.interval),
        "sdm-watch started"
    );
    systemd::ready();
    systemd::spawn_watchdog();

    let shared = Shared {
        health: health.clone(),
        leadership,
        permits: Arc::new(Semaphore::new(CONCURRENT_CYCLES)),
        channels: reloader.channels_receiver(),
        heartbeat: Arc::new(Mutex::new((Heartbeat::default(), HashSet::new()))),
    };
    let loops: Vec<_> = orgs
        .into_iter()
        .map(|org| {
            let setup = reloader.setup_receiver(&org.name);
            let span = super::organisation_span(&org.name);
            tokio::spawn(watch_org(org, setup, shared.clone(), stopped.clone()).instrument(span))
        })
        .collect();
    while let Some(control) = controls.recv().await {
        match control {
            Control::Reload => {
                apply_reload(config_path.as_ref(), &mut reloader);
                // The console's users come with the config (the old ones stay on failure).
                let http = &reloader.config().http;
                access.replace(http.users.clone(), http.metrics_auth);
                match (&tls, &http.tls) {
                    (Some(served), Some(new)) => {
                        *served.write().unwrap_or_else(|e| e.into_inner()) = new.server.clone();
                    }
                    (None, None) => {}
                    _ => warn!(
                        "turning HTTPS on or off takes a restart; the listener stays as it was"
                    ),
                }
                let poll = &reloader.config().poll;
                health.set_interval(poll.interval);
                metrics::gauge!(telemetry::POLL_INTERVAL).set(poll.interval.as_secs_f64());
            }
            Control::Shutdown => break,
        }
    }
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

/// One organisation's poll loop: `poll.interval`, or `poll.active_interval` while one of
/// its jobs runs; a cycle only while this replica leads; until `stopped`.
async fn watch_org(
    org: OrgWatch,
    mut setup: watch::Receiver<Arc<WatchSetup>>,
    shared: Shared,
    mut stopped: watch::Receiver<bool>,
) {
    let OrgWatch {
        name,
        watcher,
        mut watchdog,
    } = org;
    let mut next_cycle = Instant::now();
    let mut running = false;
    let mut cadence = setup.borrow().config.poll.cadence(running);
    // A standby wakes when the lead changes hands, not only at its next interval.
    let lead = shared.leadership.as_ref().and_then(|l| l.org(&name));
    let mut standing = lead.as_ref().map(|l| l.standing.clone());
    let mut led_with: Option<i64> = None;
    let config = |setup: &watch::Receiver<Arc<WatchSetup>>| setup.borrow().config.clone();
    let channels = || shared.channels.borrow().clone();
    loop {
        tokio::select! {
            _ = stopped.changed() => return,
            Ok(()) = setup.changed() => {
                // A reload: the next cycle comes one new cadence from now if it changed.
                let new = config(&setup).poll.cadence(running);
                if new != cadence {
                    cadence = new;
                    next_cycle = Instant::now() + new;
                }
                continue;
            }
            Ok(()) = async { standing.as_mut().expect("guarded").changed().await }, if standing.is_some() => {
                // Taking the lead (a new token) polls at once; a renewal changes nothing.
                let token = standing.as_ref().and_then(|s| s.borrow().token);
                if token.is_some() && token != led_with {
                    next_cycle = Instant::now();
                }
                led_with = token;
                continue;
            }
            _ = tokio::time::sleep_until(next_cycle) => {}
        }
        // Taken before the standing is read, so that a wait for a turn never eats into the
        // lease the cycle relies on.
        let Ok(_permit) = shared.permits.clone().acquire_owned().await else {
            return;
        };
        if *stopped.borrow() {
            return;
        }
        let current = config(&setup);
        // Held for the cycle: the lease is not given up under it.
        let _turn = match &lead {
            Some(lead) => Some(lead.turn().await),
            None => None,
        };
        // A standby does not poll.
        let mut until = match &standing {
            Some(standing) => {
                let now = standing.borrow().clone();
                led_with = now.token;
                if !now.leads() {
                    let setup = channels();
                    watchdog
                        .standing_by(now.leader.as_deref(), &current, &setup.channels)
                        .await;
                    next_cycle = Instant::now() + current.poll.cadence(running);
                    continue;
                }
                now.valid_until
            }
            None => None,
        };
        let started = Instant::now();
        let cycle = watcher.cycle();
        tokio::pin!(cycle);
        // `watcher.failing` is judged while the cycle still retries, not only at its end.
        let mut check = watchdog.due_in(&current).map(|wait| started + wait);
        loop {
            tokio::select! {
                biased;
                _ = stopped.changed() => return,
                _ = sleep_until_opt(check), if check.is_some() => {
                    let failure = setup.borrow().client.last_failure();
                    check = watchdog.during_cycle(failure, &current, &channels().channels).await;
                }
                // The lease may have lapsed (a pause, a lost database): drop the cycle, so
                // that this replica sends no more requests; its commits are fenced off anyway.
                _ = sleep_until_opt(until) => {
                    warn!(organisation = %name, "the lease may have lapsed during the cycle: abandoning it");
                    next_cycle = Instant::now();
                    break;
                }
                Ok(()) = async { standing.as_mut().expect("guarded").changed().await }, if standing.is_some() => {
                    let now = standing.as_ref().expect("guarded").borrow().clone();
                    if !now.leads() {
                        warn!(organisation = %name, "lost the lead during the cycle: abandoning it");
                        next_cycle = Instant::now() + current.poll.cadence(running);
                        break;
                    }
                    until = now.valid_until;
                    led_with = now.token;
                }
                result = &mut cycle => {
                    report(&name, &result, &shared.health, started.elapsed());
                    beat(&shared, &name, result.is_ok(), &current);
                    let current = config(&setup);
                    watchdog.after_cycle(&result, &current, &channels().channels).await;
                    if let Ok(summary) = &result {
                        running = summary.running;
                    }
                    // A cycle longer than the cadence is followed at once, not by a burst
                    // of catching up.
                    cadence = current.poll.cadence(running);
                    next_cycle = (started + cadence).max(Instant::now());
                    break;
                }
            }
        }
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

/// The heartbeat after `org`'s cycle: success only while no organisation's last cycle failed.
fn beat(shared: &Shared, org: &str, succeeded: bool, config: &Config) {
    let mut guard = shared
        .heartbeat
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let (heartbeat, failing) = &mut *guard;
    if succeeded {
        failing.remove(org);
    } else {
        failing.insert(org.to_owned());
    }
    heartbeat.after_cycle(failing.is_empty(), config.heartbeat.as_ref());
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn apply_reload(path: Option<&PathBuf>, reloader: &mut Reloader) {
    let Some(path) = path else {
        warn!("SIGHUP ignored: this run has no configuration file to reload");
        return;
    };
    let succeeded = match Config::load(path) {
        Ok(config) => match reloader.apply(config) {
            Ok(()) => {
                info!(config = %path.display(), "configuration reloaded");
                true
            }
            Err(error) => {
                error!(error = %format!("{error:#}"), "reload failed; keeping the old configuration");
                false
            }
        },
        Err(error) => {
            error!(
                error = %format!("invalid configuration: {error}"),
                "reload refused; keeping the old configuration"
            );
            false
        }
    };
    telemetry::config_loaded(succeeded);
}
