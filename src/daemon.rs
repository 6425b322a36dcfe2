//! Wires the parts into the daemon: store, API client, channels, delivery worker and
//! watcher, for `run` (until told to stop) and `once` (one cycle, then due deliveries).

use std::future::Future;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::sync::{Notify, watch};
use tracing::info;

use crate::backoff::Backoff;
use crate::config::Config;
use crate::notify::{Channels, Settled, Worker};
use crate::sdm::SdmClient;
use crate::store::Store;
use crate::watch::{CycleError, CycleSummary, Watcher};

/// How many deliveries may be in flight at once.
pub const DELIVERY_CONCURRENCY: usize = 16;

/// The parts of a daemon, built from one config.
pub struct Parts {
    pub store: Store,
    pub watcher: Watcher,
    pub worker: Worker,
}

impl Parts {
    pub fn build(config: Config) -> anyhow::Result<Parts> {
        let config = Arc::new(config);
        let store = Store::open(&config.state.path)?;
        let client = SdmClient::new(&config.api, &config.retry)?;
        let channels =
            Arc::new(Channels::from_config(&config).context("cannot set up the alert channels")?);
        let wake = Arc::new(Notify::new());
        let worker = Worker::new(
            store.clone(),
            channels,
            wake.clone(),
            Backoff::new(&config.retry),
            config.delivery.max_age,
            DELIVERY_CONCURRENCY,
        );
        let watcher = Watcher::new(client, store.clone(), config, wake);
        Ok(Parts {
            store,
            watcher,
            worker,
        })
    }
}

/// Polls, tracks and alerts until `shutdown` resolves; then stops polling, lets deliveries
/// in flight finish (at most 10 s) and returns.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let interval = config.poll.interval;
    let parts = Parts::build(config)?;
    info!(
        state = %parts.store.path().display(),
        interval = %humantime::format_duration(interval),
        "sdm-watch started"
    );
    let (stop, stopped) = watch::channel(false);
    let worker = tokio::spawn(parts.worker.run(stopped));
    parts.watcher.run(shutdown).await;
    info!("stopping");
    let _ = stop.send(true);
    worker.await.context("the delivery worker failed")?;
    info!("stopped");
    Ok(())
}

/// `sdm-watch once`: one cycle, then every alert that is due, whatever the cycle's fate.
pub async fn once(config: Config) -> anyhow::Result<(Result<CycleSummary, CycleError>, Settled)> {
    let parts = Parts::build(config)?;
    let cycle = parts.watcher.cycle().await;
    let settled = parts.worker.deliver_due().await?;
    Ok((cycle, settled))
}
