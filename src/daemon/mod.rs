//! Wires the parts into the daemon: store, API clients, channels, delivery worker, one
//! watcher per organisation, health endpoints and systemd, for `run` (until told to stop,
//! reloading on SIGHUP) and `once` (one cycle each, then the due deliveries).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::{Notify, watch};

mod heartbeat;
pub mod leader;
mod once;
mod org_loop;
mod outcome;
mod reload;
mod run;
mod share;
mod standing;
mod start;
mod watchdog;

pub use once::once;
pub use reload::Reloader;
pub use run::{CONCURRENT_CYCLES, run};
pub use watchdog::Watchdog;

use crate::config::{Config, StateConfig};
use crate::domain::{Clock, SystemClock};
use crate::notify::{DeliverySetup, Worker};
use crate::poll::{WatchSetup, Watcher};
use crate::sdm::SdmClient;
use crate::store::postgres::PgSettings;
use crate::store::{Fence, Location, Store};

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
            reloader: Reloader::new(config, senders, delivery_setup),
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
