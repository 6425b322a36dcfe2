//! `sdm-watch once`: one cycle (with the lease, among replicas), the watchdog's verdict on
//! it, then every alert that is due.

use std::sync::Arc;

use tokio::sync::watch;

use super::Parts;
use super::leader::Leader;
use crate::config::Config;
use crate::notify::Settled;
use crate::ops::health::Health;
use crate::watch::{CycleError, CycleSummary};

/// `sdm-watch once`: one cycle, then every alert that is due, whatever the cycle's fate.
pub async fn once(config: Config) -> anyhow::Result<(Result<CycleSummary, CycleError>, Settled)> {
    let parts = Parts::build(config).await?;
    let (stop, stopped) = watch::channel(false);
    let lease_task = match parts.replicas {
        Some(replicas) => {
            let health = Arc::new(Health::new(parts.reloader.config().poll.interval));
            let (mut leader, _) = Leader::new(
                replicas.settings,
                parts.worker.replica(),
                replicas.lease,
                health,
                replicas.fence,
            );
            let standing = leader.step().await;
            if !standing.leads() {
                anyhow::bail!(
                    "another replica leads ({}): `once` polls only when it can take the lease",
                    standing
                        .leader
                        .as_deref()
                        .unwrap_or("unknown: the lease could not be read")
                );
            }
            // Renewed on its timer while the cycle lasts, given up at the end.
            Some(leader.spawn(stopped).1)
        }
        None => None,
    };
    let cycle = parts.watcher.cycle().await;
    let ping = super::heartbeat::Heartbeat::default()
        .after_cycle(cycle.is_ok(), parts.reloader.config().heartbeat.as_ref());
    let mut watchdog = parts.watchdog;
    parts.reloader.watch_over(&mut watchdog, &cycle).await;
    let settled = parts.worker.deliver_due().await;
    if let Some(ping) = ping {
        let _ = ping.await;
    }
    let _ = stop.send(true);
    if let Some(task) = lease_task {
        let _ = task.await;
    }
    Ok((cycle, settled?))
}
