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

use crate::config::Config;
use crate::console::Console;
use crate::domain::time::clock;
use crate::domain::{Clock, SystemClock};
use crate::notify::{Channels, DeliverySetup, Settled, Worker};
use crate::ops::health::{Health, LastCycle};
use crate::ops::signals::Control;
use crate::ops::{http, systemd};
use crate::sdm::SdmClient;
use crate::store::Store;
use crate::telemetry;
use crate::watch::{CycleError, CycleSummary, WatchSetup, Watcher};

/// The parts of a daemon, built from one config.
pub struct Parts {
    pub store: Store,
    pub watcher: Watcher,
    pub worker: Worker,
    pub reloader: Reloader,
}

/// Hands a new config to the running parts.
pub struct Reloader {
    config: Arc<Config>,
    watch_setup: watch::Sender<Arc<WatchSetup>>,
    delivery_setup: watch::Sender<Arc<DeliverySetup>>,
}

impl Parts {
    pub fn build(config: Config) -> anyhow::Result<Parts> {
        Self::build_with_clock(config, Arc::new(SystemClock))
    }

    /// As [`Parts::build`], reading the time from `clock`: the watcher for its reminders and
    /// the alerts it queues, the worker for digest windows, retries and expiry.
    pub fn build_with_clock(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<Parts> {
        let config = Arc::new(config);
        let store = Store::open(&config.state.path)?;
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
        let watcher = Watcher::new(store.clone(), wake, watch_current).with_clock(clock);
        Ok(Parts {
            store,
            watcher,
            worker,
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
        },
    ))
}

impl Reloader {
    pub fn config(&self) -> &Arc<Config> {
        &self.config
    }

    /// Makes `new` current for what comes next: the next cycle, the next attempt. Tracked
    /// state and queued alerts are untouched. Keys that need a restart keep their old
    /// values, with a warning.
    pub fn apply(&mut self, new: Config) -> anyhow::Result<()> {
        let mut new = new;
        let old = &self.config;
        if new.state.path != old.state.path {
            warn!(old = %old.state.path.display(), new = %new.state.path.display(), "state.path changes only on restart; keeping the old one");
            new.state.path = old.state.path.clone();
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
        watcher,
        worker,
        mut reloader,
    } = Parts::build(config)?;
    let health = Arc::new(Health::new(reloader.config().poll.interval));
    metrics::gauge!(telemetry::POLL_INTERVAL).set(reloader.config().poll.interval.as_secs_f64());
    let _endpoints = match listen {
        Some(address) => {
            let pages = Console::new(store.clone(), health.clone()).pages();
            let (bound, running) = http::start(address, health.clone(), recorder, Some(pages))
                .await
                .with_context(|| format!("cannot listen on http.listen = {address}"))?;
            info!(address = %bound, "serving /, /status.json, /healthz, /readyz and /metrics");
            Some(running)
        }
        None => None,
    };
    if let Err(error) = watcher.prime_gauges().await {
        warn!(error = %error, "cannot count the tracked jobs for the metrics");
    }
    let (stop, stopped) = watch::channel(false);
    let worker = tokio::spawn(worker.run(stopped));
    info!(
        state = %store.path().display(),
        interval = %humantime::format_duration(reloader.config().poll.interval),
        "sdm-watch started"
    );
    systemd::ready();
    systemd::spawn_watchdog();

    // The cadence: `poll.interval`, or `poll.active_interval` while a job runs.
    let mut next_cycle = Instant::now();
    let mut running = false;
    'running: loop {
        let mut reload = false;
        tokio::select! {
            control = controls.recv() => match control {
                Some(Control::Reload) => reload = true,
                Some(Control::Shutdown) | None => break 'running,
            },
            _ = tokio::time::sleep_until(next_cycle) => {
                let started = Instant::now();
                let cycle = watcher.cycle();
                tokio::pin!(cycle);
                loop {
                    tokio::select! {
                        result = &mut cycle => {
                            report(&result, &health, started.elapsed());
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
    info!("stopped");
    Ok(())
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

/// Makes every series `config` implies visible from the start.
fn register_series(config: &Config) {
    let mut reminders = Vec::new();
    if config.poll.remind_pending_every.is_some() {
        reminders.push("pending_reminder");
    }
    if config.poll.running_longer_than.is_some() {
        reminders.push("running_long");
    }
    let channels = config.channel_names();
    telemetry::register(&telemetry::Series {
        notify_on: &config.poll.notify_on,
        digest_channels: channels
            .iter()
            .copied()
            .filter(|channel| config.grouping(channel).is_some())
            .collect(),
        channels,
        reminders,
        output: config.output.is_some(),
    });
}

/// Logs a cycle's outcome and tells health, metrics and systemd.
fn report(result: &Result<CycleSummary, CycleError>, health: &Health, took: Duration) {
    let now = time::OffsetDateTime::now_utc();
    let finished_ms = crate::domain::time::now_ms();
    match result {
        Ok(summary) => {
            health.cycle_succeeded();
            health.record_cycle(LastCycle {
                finished_ms,
                duration_ms: summary.duration.as_millis() as u64,
                requests: Some(summary.requests),
                jobs_seen: Some(summary.jobs_seen),
                transitions: Some(summary.transitions),
                error: None,
            });
            metrics::counter!(telemetry::POLL_CYCLES, "outcome" => "ok").increment(1);
            metrics::gauge!(telemetry::LAST_SUCCESSFUL_POLL).set(now.unix_timestamp() as f64);
            info!(
                jobs_seen = summary.jobs_seen,
                transitions = summary.transitions,
                alerts_queued = summary.alerts_queued,
                alerts_waiting = summary.alerts_held,
                requests = summary.requests,
                duration_ms = summary.duration.as_millis() as u64,
                store_us = summary.store_time.as_micros() as u64,
                "poll cycle done"
            );
            systemd::status(&format!(
                "last cycle ok at {}: {} jobs seen, {} transitions, {} alerts queued",
                clock(now),
                summary.jobs_seen,
                summary.transitions,
                summary.alerts_queued
            ));
        }
        Err(error) => {
            let error = crate::domain::error_chain(error);
            health.cycle_failed(error.clone());
            health.record_cycle(LastCycle {
                finished_ms,
                duration_ms: took.as_millis() as u64,
                requests: None,
                jobs_seen: None,
                transitions: None,
                error: Some(error.clone()),
            });
            metrics::counter!(telemetry::POLL_CYCLES, "outcome" => "error").increment(1);
            warn!(error = %error, "poll cycle failed; trying again at the next interval");
            systemd::status(&format!("last cycle failed at {}: {error}", clock(now)));
        }
    }
}

/// `sdm-watch once`: one cycle, then every alert that is due, whatever the cycle's fate.
pub async fn once(config: Config) -> anyhow::Result<(Result<CycleSummary, CycleError>, Settled)> {
    let parts = Parts::build(config)?;
    let cycle = parts.watcher.cycle().await;
    let settled = parts.worker.deliver_due().await?;
    Ok((cycle, settled))
}
