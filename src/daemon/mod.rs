//! Wires the parts into the daemon: store, API client, channels, delivery worker, watcher,
//! health endpoints and systemd, for `run` (until told to stop, reloading on SIGHUP) and
//! `once` (one cycle, then the due deliveries).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::{Notify, mpsc, watch};
use tokio::time::Instant;
use tracing::{error, info, warn};

mod heartbeat;
pub mod leader;
mod once;
mod report;
mod start;
mod watchdog;

pub use once::once;
use report::{register_series, report};
use start::{lead, serve};
pub use watchdog::Watchdog;

use crate::config::{Config, StateConfig};
use crate::domain::{Clock, SystemClock};
use crate::notify::{Channels, DeliverySetup, Worker};
use crate::ops::health::Health;
use crate::ops::signals::Control;
use crate::ops::systemd;
use crate::sdm::SdmClient;
use crate::store::postgres::PgSettings;
use crate::store::{Fence, Location, Store};
use crate::telemetry;
use crate::watch::{WatchSetup, Watcher};

/// The parts of a daemon, built from one config.
pub struct Parts {
    pub store: Store,
    /// Wakes the delivery worker: alerts were queued (here, or by another replica).
    pub wake: Arc<Notify>,
    pub watcher: Watcher,
    /// Tells when the watcher is blind (`watchdog.alert_after`), and when it sees again.
    pub watchdog: Watchdog,
    pub worker: Worker,
    /// Set on PostgreSQL: this process is one replica among any number.
    pub replicas: Option<Replicas>,
    pub reloader: Reloader,
}

/// Hands a new config to the running parts.
pub struct Reloader {
    config: Arc<Config>,
    watch_setup: watch::Sender<Arc<WatchSetup>>,
    delivery_setup: watch::Sender<Arc<DeliverySetup>>,
}

/// What a replica on PostgreSQL needs to lead: where the database is, how long the lease
/// lasts, and the fence its watcher's commits carry.
pub struct Replicas {
    pub settings: PgSettings,
    pub lease: Duration,
    pub fence: Arc<std::sync::Mutex<Fence>>,
}

/// Where `state` puts the store: a SQLite file, or PostgreSQL with its password.
pub fn location(state: &StateConfig) -> anyhow::Result<Location> {
    match &state.url {
        None => Ok(Location::Sqlite(state.path.clone())),
        Some(url) => PgSettings::parse(url, state.password.as_ref().map(|p| p.expose()))
            .map(|settings| Location::Postgres(Box::new(settings)))
            .map_err(|why| anyhow::anyhow!("state.url: {why}")),
    }
}

/// Opens the store `state` names (connecting and migrating PostgreSQL).
pub async fn open_store(state: &StateConfig) -> anyhow::Result<Store> {
    let location = location(state)?;
    Store::open_configured(&location)
        .await
        .with_context(|| format!("cannot open the state store at {location}"))
}

impl Parts {
    pub async fn build(config: Config) -> anyhow::Result<Parts> {
        Self::build_with_clock(config, Arc::new(SystemClock)).await
    }

    /// As [`Parts::build`], reading the time from `clock`: the watcher for its reminders and
    /// the alerts it queues, the worker for digest windows, retries and expiry.
    pub async fn build_with_clock(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<Parts> {
        let config = Arc::new(config);
        let store = open_store(&config.state).await?;
        if let Some(output) = &config.output {
            std::fs::create_dir_all(&output.dir)
                .with_context(|| format!("cannot create output.dir {}", output.dir.display()))?;
        }
        let (watch_setup, delivery_setup) = setups(&config)?;
        let (watch_setup, watch_current) = watch::channel(Arc::new(watch_setup));
        let (delivery_setup, delivery_current) = watch::channel(Arc::new(delivery_setup));
        let wake = Arc::new(Notify::new());
        let worker =
            Worker::new(store.clone(), wake.clone(), delivery_current).with_clock(clock.clone());
        let replicas = match store.location() {
            Location::Sqlite(_) => None,
            Location::Postgres(settings) => Some(Replicas {
                settings: (**settings).clone(),
                lease: config.state.lease,
                fence: Arc::new(std::sync::Mutex::new(leader::no_fence())),
            }),
        };
        // The leader's commits carry its lease's token; a standby's carry none that leads.
        let watched = match &replicas {
            Some(replicas) => store.fenced(replicas.fence.clone()),
            None => store.clone(),
        };
        let watchdog = Watchdog::new(watched.clone(), clock.clone());
        let watcher = Watcher::new(watched, wake.clone(), watch_current).with_clock(clock);
        Ok(Parts {
            store,
            wake,
            watcher,
            watchdog,
            worker,
            replicas,
            reloader: Reloader {
                config,
                watch_setup,
                delivery_setup,
            },
        })
    }
}

/// A client and channels for `config`.
fn setups(config: &Arc<Config>) -> anyhow::Result<(WatchSetup, DeliverySetup)> {
    let client = SdmClient::new(&config.api, &config.retry)?;
    let channels = Channels::from_config(config).context("cannot set up the alert channels")?;
    Ok((
        WatchSetup {
            config: config.clone(),
            client,
        },
        DeliverySetup {
            channels,
            backoff: config.retry.backoff(),
            max_age: config.delivery.max_age,
            concurrency: config.delivery.concurrency,
            groupings: config
                .channel_names()
                .into_iter()
                .filter_map(|channel| Some((channel.to_owned(), config.grouping(channel)?)))
                .collect(),
            claim_ttl: crate::notify::delivery::claim_ttl(config),
        },
    ))
}

impl Reloader {
    pub fn config(&self) -> &Arc<Config> {
        &self.config
    }

    /// The channels as configured now (the watchdog sends through them when the store fails).
    pub fn channels(&self) -> Arc<DeliverySetup> {
        self.delivery_setup.borrow().clone()
    }

    /// The watchdog's look, while this replica stands by, at whether any replica leads.
    pub async fn watch_standby(&self, watchdog: &mut Watchdog, leader: Option<&str>) {
        let setup = self.channels();
        watchdog
            .standing_by(leader, &self.config, &setup.channels)
            .await;
    }

    /// The watchdog's verdict on a cycle, with the config and channels in force now.
    pub async fn watch_over(
        &self,
        watchdog: &mut Watchdog,
        result: &Result<crate::watch::CycleSummary, crate::watch::CycleError>,
    ) {
        let setup = self.channels();
        watchdog
            .after_cycle(result, &self.config, &setup.channels)
            .await;
    }

    /// Makes `new` current for what comes next: the next cycle, the next attempt. Tracked
    /// state and queued alerts are untouched. Keys that need a restart keep their old
    /// values, with a warning.
    pub fn apply(&mut self, new: Config) -> anyhow::Result<()> {
        let mut new = new;
        let old = &self.config;
        if new.state.path != old.state.path
            || new.state.url != old.state.url
            || new.state.lease != old.state.lease
        {
            warn!(
                "state.path, state.url and state.lease change only on restart; keeping the old ones"
            );
            new.state = old.state.clone();
        }
        if new.http.listen != old.http.listen {
            warn!("http.listen changes only on restart; keeping the old one");
            new.http.listen = old.http.listen;
        }
        if new.log.format != old.log.format {
            warn!("log.format changes only on restart; keeping the old one");
            new.log.format = old.log.format;
        }
        let new = Arc::new(new);
        let (watch_setup, delivery_setup) = setups(&new)?;
        register_series(&new);
        self.watch_setup.send_replace(Arc::new(watch_setup));
        self.delivery_setup.send_replace(Arc::new(delivery_setup));
        self.config = new;
        Ok(())
    }
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
    let listen = config.http.listen;
    let Parts {
        store,
        wake,
        watcher,
        mut watchdog,
        worker,
        replicas,
        mut reloader,
    } = Parts::build(config).await?;
    let health = Arc::new(Health::new(reloader.config().poll.interval));
    metrics::gauge!(telemetry::POLL_INTERVAL).set(reloader.config().poll.interval.as_secs_f64());
    let (stop, stopped) = watch::channel(false);
    let (leadership, lease_task) =
        lead(replicas, &store, &wake, worker.replica(), &health, &stopped);
    let _endpoints = serve(listen, &store, &health, recorder).await?;
    if let Err(error) = watcher.prime_gauges().await {
        warn!(error = %error, "cannot count the tracked jobs for the metrics");
    }
    let worker = tokio::spawn(worker.run(stopped));
    info!(
        state = %store.location(),
        interval = %humantime::format_duration(reloader.config().poll.interval),
        "sdm-watch started"
    );
    systemd::ready();
    systemd::spawn_watchdog();

    // The cadence: `poll.interval`, or `poll.active_interval` while a job runs.
    let mut next_cycle = Instant::now();
    let mut running = false;
    // A standby wakes when the lead changes hands, not only at its next interval.
    let mut standing = leadership.as_ref().map(|l| l.standing.clone());
    let mut led_with: Option<i64> = None;
    let mut heartbeat = heartbeat::Heartbeat::default();
    'running: loop {
        let mut reload = false;
        tokio::select! {
            control = controls.recv() => match control {
                Some(Control::Reload) => reload = true,
                Some(Control::Shutdown) | None => break 'running,
            },
            Ok(()) = async { standing.as_mut().expect("guarded").changed().await }, if standing.is_some() => {
                // Taking the lead (a new token) polls at once; a renewal changes nothing.
                let token = standing.as_ref().and_then(|s| s.borrow().token);
                if token.is_some() && token != led_with {
                    next_cycle = Instant::now();
                }
                led_with = token;
            }
            _ = tokio::time::sleep_until(next_cycle) => {
                // Renewed before every cycle; a standby does not poll.
                let until = match &leadership {
                    Some(leadership) => {
                        let now = leadership.renew().await;
                        led_with = now.token;
                        if !now.leads() {
                            reloader.watch_standby(&mut watchdog, now.leader.as_deref()).await;
                            next_cycle = Instant::now() + reloader.config().poll.cadence(running);
                            continue 'running;
                        }
                        now.valid_until
                    }
                    None => None,
                };
                let started = Instant::now();
                let cycle = watcher.cycle();
                tokio::pin!(cycle);
                let mut until = until;
                loop {
                    tokio::select! {
                        biased;
                        // The lease may have lapsed (a pause, a lost database): drop the
                        // cycle, so that this replica sends no more requests; its commits
                        // are fenced off anyway.
                        _ = sleep_until_opt(until) => {
                            warn!("the lease may have lapsed during the cycle: abandoning it");
                            next_cycle = Instant::now();
                            break;
                        }
                        Ok(()) = async { standing.as_mut().expect("guarded").changed().await }, if standing.is_some() => {
                            let now = standing.as_ref().expect("guarded").borrow().clone();
                            if !now.leads() {
                                warn!("lost the lead during the cycle: abandoning it");
                                next_cycle = Instant::now() + reloader.config().poll.cadence(running);
                                break;
                            }
                            until = now.valid_until;
                            led_with = now.token;
                        }
                        result = &mut cycle => {
                            report(&result, &health, started.elapsed());
                            heartbeat.after_cycle(result.is_ok(), reloader.config().heartbeat.as_ref());
                            reloader.watch_over(&mut watchdog, &result).await;
                            if let Ok(summary) = &result {
                                running = summary.running;
                            }
                            // A cycle longer than the cadence is followed at once, not
                            // by a burst of catching up.
                            let cadence = reloader.config().poll.cadence(running);
                            next_cycle = (started + cadence).max(Instant::now());
                            break;
                        }
                        control = controls.recv() => match control {
                            // Applied once the cycle is over, so that it runs on one config.
                            Some(Control::Reload) => reload = true,
                            Some(Control::Shutdown) | None => break 'running,
                        },
                    }
                }
            }
        }
        if reload {
            let cadence = reloader.config().poll.cadence(running);
            apply_reload(config_path.as_ref(), &mut reloader);
            let poll = &reloader.config().poll;
            health.set_interval(poll.interval);
            metrics::gauge!(telemetry::POLL_INTERVAL).set(poll.interval.as_secs_f64());
            if poll.cadence(running) != cadence {
                // The next cycle comes one new interval from now.
                next_cycle = Instant::now() + poll.cadence(running);
            }
        }
    }
    info!("stopping");
    systemd::stopping();
    let _ = stop.send(true);
    worker.await.context("the delivery worker failed")?;
    if let Some((task, listener)) = lease_task {
        let _ = task.await;
        listener.abort();
    }
    info!("stopped");
    Ok(())
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
    match Config::load(path) {
        Ok(config) => match reloader.apply(config) {
            Ok(()) => info!(config = %path.display(), "configuration reloaded"),
            Err(error) => {
                error!(error = %format!("{error:#}"), "reload failed; keeping the old configuration")
            }
        },
        Err(error) => error!(
            error = %format!("invalid configuration: {error}"),
            "reload refused; keeping the old configuration"
        ),
    }
}
