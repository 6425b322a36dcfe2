//! Wires the parts into the daemon: store, API clients, channels, delivery worker, one
//! watcher per organisation, health endpoints and systemd, for `run` (until told to stop,
//! reloading on SIGHUP) and `once` (one cycle each, then the due deliveries).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::{Notify, watch};
use tracing::warn;

mod heartbeat;
pub mod leader;
mod once;
mod report;
mod run;
mod share;
mod standing;
mod start;
mod watchdog;

pub use once::once;
use report::register_series;
pub use run::{CONCURRENT_CYCLES, run};
pub use watchdog::Watchdog;

use crate::config::{Config, StateConfig};
use crate::domain::{Clock, SystemClock};
use crate::notify::{DeliverySetup, Worker};
use crate::sdm::SdmClient;
use crate::store::postgres::PgSettings;
use crate::store::{Fence, Location, Store};
use crate::watch::{WatchSetup, Watcher};

/// The parts of a daemon, built from one config.
pub struct Parts {
    pub store: Store,
    /// Wakes the delivery worker: alerts were queued (here, or by another replica).
    pub wake: Arc<Notify>,
    /// One watcher per organisation, in the config's order.
    pub orgs: Vec<OrgWatch>,
    pub worker: Worker,
    /// Set on PostgreSQL: this process is one replica among any number.
    pub replicas: Option<Replicas>,
    pub reloader: Reloader,
}

/// One organisation's watcher and its watchdog.
pub struct OrgWatch {
    pub name: String,
    pub watcher: Watcher,
    /// Tells when the watcher is blind (`watchdog.alert_after`), and when it sees again.
    pub watchdog: Watchdog,
}

/// Hands a new config to the running parts.
pub struct Reloader {
    config: Arc<Config>,
    /// Each organisation's setup, by name.
    watch_setups: Vec<(String, watch::Sender<Arc<WatchSetup>>)>,
    delivery_setup: watch::Sender<Arc<DeliverySetup>>,
}

/// What a replica on PostgreSQL needs to lead: where the database is, how long a lease
/// lasts, and the fence each organisation's watcher's commits carry.
pub struct Replicas {
    pub settings: PgSettings,
    pub lease: Duration,
    /// By organisation, in the config's order.
    pub fences: Vec<(String, Arc<std::sync::Mutex<Fence>>)>,
}

/// The span an organisation's poll loop (or `once`'s cycle) runs in: every line it logs,
/// of the watcher, the API client or the store, names the organisation (in the text log as
/// `organisation{organisation=acme}:`, in the JSON log as `span.organisation`).
fn organisation_span(name: &str) -> tracing::Span {
    tracing::info_span!("organisation", organisation = %name)
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
        let (watch_setups, delivery_setup) = setups(&config)?;
        let (delivery_setup, delivery_current) = watch::channel(Arc::new(delivery_setup));
        let wake = Arc::new(Notify::new());
        let worker =
            Worker::new(store.clone(), wake.clone(), delivery_current).with_clock(clock.clone());
        let replicas = match store.location() {
            Location::Sqlite(_) => None,
            Location::Postgres(settings) => Some(Replicas {
                settings: (**settings).clone(),
                lease: config.state.lease,
                fences: config
                    .organisations
                    .iter()
                    .map(|org| {
                        let fence = leader::no_fence(&org.name);
                        (org.name.clone(), Arc::new(std::sync::Mutex::new(fence)))
                    })
                    .collect(),
            }),
        };
        let mut orgs = Vec::new();
        let mut senders = Vec::new();
        let told_directly = Arc::new(std::sync::atomic::AtomicBool::new(false));
        for setup in watch_setups {
            let name = setup.org.name.clone();
            // The leader's commits carry its lease's token; a standby's none that leads.
            let fence = replicas
                .as_ref()
                .and_then(|r| r.fences.iter().find(|(org, _)| *org == name));
            let watched = match fence {
                Some((_, fence)) => store.fenced(fence.clone()),
                None => store.clone(),
            };
            let (sender, current) = watch::channel(Arc::new(setup));
            orgs.push(OrgWatch {
                watchdog: Watchdog::new(
                    watched.clone(),
                    clock.clone(),
                    &name,
                    told_directly.clone(),
                ),
                watcher: Watcher::new(watched.clone(), wake.clone(), current)
                    .with_clock(clock.clone()),
                name: name.clone(),
            });
            senders.push((name, sender));
        }
        Ok(Parts {
            store,
            wake,
            orgs,
            worker,
            replicas,
            reloader: Reloader {
                config,
                watch_setups: senders,
                delivery_setup,
            },
        })
    }

    /// The first organisation's watcher: the only one of a config without
    /// `[[organisation]]` tables.
    pub fn watcher(&self) -> &Watcher {
        &self.orgs[0].watcher
    }
}

/// A client for each organisation, and the channels, for `config`.
fn setups(config: &Arc<Config>) -> anyhow::Result<(Vec<WatchSetup>, DeliverySetup)> {
    let mut watch_setups = Vec::new();
    let mut http = crate::sdm::HttpClients::default();
    for org in &config.organisations {
        let client = SdmClient::sharing(&org.api, &config.retry, &mut http)
            .with_context(|| format!("organisation {}", org.name))?
            .for_organisation(&org.name);
        watch_setups.push(WatchSetup {
            config: config.clone(),
            org: org.clone(),
            client,
        });
    }
    let channels =
        crate::notify::Channels::from_config(config).context("cannot set up the alert channels")?;
    Ok((
        watch_setups,
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
            hours: config
                .channel_names()
                .into_iter()
                .map(|channel| (channel.to_owned(), config.hours(channel)))
                .filter(|(_, hours)| !hours.active.is_empty())
                .collect(),
            reports: config.reports.clone(),
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

    /// The channels, as each reload replaces them.
    pub fn channels_receiver(&self) -> watch::Receiver<Arc<DeliverySetup>> {
        self.delivery_setup.subscribe()
    }

    /// Organisation `name`'s setup, as each reload replaces it.
    ///
    /// # Panics
    /// When the config has no organisation `name` (the parts are built from it).
    pub fn setup_receiver(&self, name: &str) -> watch::Receiver<Arc<WatchSetup>> {
        self.watch_setups
            .iter()
            .find(|(org, _)| org == name)
            .map(|(_, sender)| sender.subscribe())
            .expect("every organisation has a setup")
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
        let names = |config: &Config| -> Vec<String> {
            config
                .organisations
                .iter()
                .map(|org| org.name.clone())
                .collect()
        };
        if names(&new) != names(old) {
            warn!(
                "organisations are added, removed or renamed only on restart; keeping the old ones"
            );
            new.organisations = old.organisations.clone();
        }
        let new = Arc::new(new);
        let (watch_setups, delivery_setup) = setups(&new)?;
        register_series(&new);
        for setup in watch_setups {
            if let Some((_, sender)) = self
                .watch_setups
                .iter()
                .find(|(name, _)| *name == setup.org.name)
            {
                sender.send_replace(Arc::new(setup));
            }
        }
        self.delivery_setup.send_replace(Arc::new(delivery_setup));
        self.config = new;
        Ok(())
    }
}
