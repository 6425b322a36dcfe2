//! `sdm-watch once`: one cycle of each organisation (or of the one named), concurrently,
//! with the lease among replicas, the watchdog's verdict on each, then every alert that
//! is due.

use std::sync::Arc;

use anyhow::Context as _;
use tokio::sync::watch;
use tracing::Instrument as _;

use super::Parts;
use super::leader::Leader;
use crate::config::Config;
use crate::notify::Settled;
use crate::ops::health::Health;
use crate::poll::{CycleError, CycleSummary};

/// Each organisation's name and the outcome of its cycle.
pub type Cycles = Vec<(String, Result<CycleSummary, CycleError>)>;

/// `sdm-watch once`: one cycle of each organisation (`only`: of that one), then every
/// alert that is due, whatever the cycles' fate.
pub async fn once(config: Config, only: Option<&str>) -> anyhow::Result<(Cycles, Settled)> {
    if let Some(name) = only
        && config.organisation(name).is_none()
    {
        anyhow::bail!("--org {name}: the config has no such organisation");
    }
    let parts = Parts::build(config).await?;
    let (stop, stopped) = watch::channel(false);
    let lease_task = match parts.replicas {
        Some(replicas) => {
            let orgs = parts.orgs.iter().map(|org| org.name.as_str());
            let health = Arc::new(Health::new(parts.reloader.config().poll.interval, orgs));
            let mut leader = Leader::new(
                replicas.settings,
                parts.worker.replica(),
                replicas.lease,
                health,
                &replicas.fences,
                false,
            );
            let wanted: Vec<&str> = parts
                .orgs
                .iter()
                .map(|org| org.name.as_str())
                .filter(|name| only.is_none_or(|only| only == *name))
                .collect();
            if let Err(error) = leader.take(&wanted).await {
                anyhow::bail!("{error:#}: `once` polls only when it can take the lease");
            }
            // Renewed on its timer while the cycles last, given up at the end.
            Some(leader.spawn(stopped))
        }
        None => None,
    };
    let chosen: Vec<_> = parts
        .orgs
        .into_iter()
        .filter(|org| only.is_none_or(|name| org.name == name))
        .collect();
    let permits = Arc::new(tokio::sync::Semaphore::new(super::CONCURRENT_CYCLES));
    let tasks: Vec<_> = chosen
        .into_iter()
        .map(|org| {
            let permits = permits.clone();
            let span = super::organisation_span(&org.name);
            tokio::spawn(
                async move {
                    let _permit = permits.acquire_owned().await;
                    let cycle = org.watcher.cycle().await;
                    (org, cycle)
                }
                .instrument(span),
            )
        })
        .collect();
    let mut cycles = Vec::new();
    for task in tasks {
        cycles.push(task.await.context("a poll cycle's task failed")?);
    }
    let all_ok = cycles.iter().all(|(_, cycle)| cycle.is_ok());
    let ping = super::heartbeat::Heartbeat::default()
        .after_cycle(all_ok, parts.reloader.config().heartbeat.as_ref());
    let mut outcomes = Vec::new();
    for (org, cycle) in cycles {
        let mut watchdog = org.watchdog;
        parts.reloader.watch_over(&mut watchdog, &cycle).await;
        outcomes.push((org.name, cycle));
    }
    let settled = parts.worker.deliver_due().await;
    if let Some(ping) = ping {
        let _ = ping.await;
    }
    let _ = stop.send(true);
    if let Some(task) = lease_task {
        let _ = task.await;
    }
    Ok((outcomes, settled?))
}
