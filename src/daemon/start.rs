//! What `run` starts beside its cycle loop: the tasks of leadership among replicas, and
//! the HTTP endpoints.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::sync::{Notify, watch};
use tracing::{info, warn};

use super::Replicas;
use super::leader::{self, Leader};
use crate::config::{DEFAULT_LISTEN, LEGACY_LISTEN};
use crate::console::Console;
use crate::ops::health::Health;
use crate::ops::http;
use crate::store::{Location, Store};
use crate::telemetry;

/// The background tasks that leadership among replicas takes: keeping the leases, and
/// waking this replica's worker when another queues alerts. Alone, this process leads.
#[allow(clippy::type_complexity)]
pub(super) fn lead(
    replicas: Option<Replicas>,
    store: &Store,
    wake: &Arc<Notify>,
    replica: &str,
    health: &Arc<Health>,
    stopped: &watch::Receiver<bool>,
) -> (
    Option<leader::LeaderHandle>,
    Option<(tokio::task::JoinHandle<()>, tokio::task::JoinHandle<()>)>,
) {
    let Some(replicas) = replicas else {
        metrics::gauge!(telemetry::LEADER).set(1.0);
        for org in health.last_cycles().into_keys() {
            metrics::gauge!(telemetry::ORGANISATION_LEADER, "organisation" => org).set(1.0);
        }
        return (None, None);
    };
    let leader = Leader::new(
        replicas.settings,
        replica,
        replicas.lease,
        health.clone(),
        &replicas.fences,
        true,
    );
    let handle = leader.handle();
    let task = leader.spawn(stopped.clone());
    let Location::Postgres(settings) = store.location() else {
        // Replicas exist only on PostgreSQL (`Parts::build`).
        return (Some(handle), Some((task, tokio::spawn(async {}))));
    };
    let settings = (**settings).clone();
    let woken = wake.clone();
    let listener = tokio::spawn(crate::store::postgres::listen(settings, move || {
        woken.notify_one()
    }));
    (Some(handle), Some((task, listener)))
}

/// Serves the status page, `/status.json`, health, readiness and metrics on `listen`, and
/// on `legacy` too if given and free (the old default port, for this release).
#[allow(clippy::too_many_arguments)]
pub(super) async fn serve(
    listen: Option<SocketAddr>,
    legacy: Option<SocketAddr>,
    store: &Store,
    health: &Arc<Health>,
    recorder: Option<metrics_exporter_prometheus::PrometheusHandle>,
    access: Arc<crate::ops::auth::Access>,
    channels: crate::actions::SetupNow,
    tls: Option<crate::ops::http::TlsServer>,
) -> anyhow::Result<Option<impl Sized>> {
    let Some(address) = listen else {
        return Ok(None);
    };
    let pages = Console::new(store.clone(), health.clone())
        .with_channels(channels)
        .pages();
    let scheme = if tls.is_some() { "https" } else { "http" };
    let (bound, running) = http::start(
        address,
        health.clone(),
        recorder.clone(),
        Some(pages.clone()),
        access.clone(),
        tls.clone(),
    )
    .await
    .with_context(|| format!("cannot listen on http.listen = {address}"))?;
    info!(address = %bound, scheme, "serving /, /status.json, /healthz, /readyz and /metrics");
    if address.port() == LEGACY_LISTEN.port() {
        warn!(
            address = %address,
            "http.listen uses port 9187, postgres_exporter's: sdm-watch's default is now {DEFAULT_LISTEN}"
        );
    }
    let Some(legacy) = legacy else {
        return Ok(Some((running, None)));
    };
    let also = match http::start(legacy, health.clone(), recorder, Some(pages), access, tls).await {
        Ok((bound, running)) => {
            warn!(
                address = %bound,
                "also serving on the old default port 9187 (postgres_exporter's) for this release only: \
                 point scrape configs and checks at {DEFAULT_LISTEN}, or set http.listen"
            );
            Some(running)
        }
        Err(error) => {
            info!(address = %legacy, error = %error, "the old default port is taken (by postgres_exporter, perhaps): serving on {DEFAULT_LISTEN} only");
            None
        }
    };
    Ok(Some((running, also)))
}
