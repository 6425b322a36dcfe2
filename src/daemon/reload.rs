//! SIGHUP: the config file read again and made current for what comes next. Reading it
//! (secret files, CA files) and building its clients may block on a slow disk or a hung
//! mount, so that part runs on a blocking thread; the endpoints and the poll loops go on
//! meanwhile, and only the quick swap happens on the runtime.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::watch;
use tracing::{error, info, warn};

use super::outcome::register_series;
use super::{Watchdog, setups};
use crate::config::{Config, ConfigError};
use crate::notify::DeliverySetup;
use crate::poll::WatchSetup;
use crate::telemetry;

/// Hands a new config to the running parts.
pub struct Reloader {
    config: Arc<Config>,
    /// Each organisation's setup, by name.
    watch_setups: Vec<(String, watch::Sender<Arc<WatchSetup>>)>,
    delivery_setup: watch::Sender<Arc<DeliverySetup>>,
}

/// A config read, with the keys that need a restart kept as they run, and the clients and
/// channels it configures built: ready to be made current.
struct Prepared {
    config: Arc<Config>,
    watch_setups: Vec<WatchSetup>,
    delivery_setup: DeliverySetup,
}

/// Why a reload kept the old configuration.
#[derive(Debug, thiserror::Error)]
enum ReloadError {
    #[error("invalid configuration: {0}")]
    Invalid(#[from] ConfigError),
    #[error("{0:#}")]
    Setup(anyhow::Error),
    #[error("the reload's thread failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl Reloader {
    pub(super) fn new(
        config: Arc<Config>,
        watch_setups: Vec<(String, watch::Sender<Arc<WatchSetup>>)>,
        delivery_setup: watch::Sender<Arc<DeliverySetup>>,
    ) -> Reloader {
        Reloader {
            config,
            watch_setups,
            delivery_setup,
        }
    }

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
        result: &Result<crate::poll::CycleSummary, crate::poll::CycleError>,
    ) {
        let setup = self.channels();
        watchdog
            .after_cycle(result, &self.config, &setup.channels)
            .await;
    }

    /// SIGHUP: reads `path` again and makes it current for what comes next (the next
    /// cycle, the next attempt); tracked state and queued alerts are untouched. On any
    /// error the old configuration stays, and the log and `sdm_watch_config_last_reload_
    /// successful` say so.
    pub async fn reload(&mut self, path: Option<&PathBuf>) {
        let Some(path) = path else {
            warn!("SIGHUP ignored: this run has no configuration file to reload");
            return;
        };
        let old = self.config.clone();
        let file = path.clone();
        let prepared = tokio::task::spawn_blocking(move || prepare(&old, &file))
            .await
            .map_err(ReloadError::from)
            .and_then(|prepared| prepared);
        let succeeded = match prepared {
            Ok(prepared) => {
                self.install(prepared);
                info!(config = %path.display(), "configuration reloaded");
                true
            }
            Err(error @ ReloadError::Invalid(_)) => {
                error!(error = %error, "reload refused; keeping the old configuration");
                false
            }
            Err(error) => {
                error!(error = %error, "reload failed; keeping the old configuration");
                false
            }
        };
        telemetry::config_loaded(succeeded);
    }

    /// Makes `prepared` current: each organisation's next cycle, the next delivery attempt.
    fn install(&mut self, prepared: Prepared) {
        register_series(&prepared.config);
        for setup in prepared.watch_setups {
            if let Some((_, sender)) = self
                .watch_setups
                .iter()
                .find(|(name, _)| *name == setup.org.name)
            {
                sender.send_replace(Arc::new(setup));
            }
        }
        self.delivery_setup
            .send_replace(Arc::new(prepared.delivery_setup));
        self.config = prepared.config;
    }
}

/// Reads the config at `path` and builds what it configures (blocking: files, CA stores).
/// Keys that need a restart keep their values in `old`, with a warning.
fn prepare(old: &Config, path: &Path) -> Result<Prepared, ReloadError> {
    let mut new = Config::load(path)?;
    keep_restart_only_keys(old, &mut new);
    let config = Arc::new(new);
    let (watch_setups, delivery_setup) = setups(&config).map_err(ReloadError::Setup)?;
    Ok(Prepared {
        config,
        watch_setups,
        delivery_setup,
    })
}

/// The keys a running daemon cannot change (where the store is, the listener, the log's
/// format, which organisations it watches) keep `old`'s values, with a warning each.
fn keep_restart_only_keys(old: &Config, new: &mut Config) {
    if new.state.path != old.state.path
        || new.state.url != old.state.url
        || new.state.lease != old.state.lease
    {
        warn!("state.path, state.url and state.lease change only on restart; keeping the old ones");
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
    if names(new) != names(old) {
        warn!("organisations are added, removed or renamed only on restart; keeping the old ones");
        new.organisations = old.organisations.clone();
    }
}
