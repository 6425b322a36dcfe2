//! Prometheus metrics through the `metrics` facade; the exporter renders them for
//! `/metrics`. Every name starts with `sdm_watch_`.

use std::sync::OnceLock;

use metrics::{describe_counter, describe_gauge};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::config::Config;

pub const POLL_CYCLES: &str = "sdm_watch_poll_cycles_total";
pub const API_REQUESTS: &str = "sdm_watch_api_requests_total";
pub const JOBS_TRACKED: &str = "sdm_watch_jobs_tracked";
pub const TRANSITIONS: &str = "sdm_watch_transitions_total";
pub const ALERTS: &str = "sdm_watch_alerts_total";
pub const OUTBOX_PENDING: &str = "sdm_watch_outbox_pending";
pub const OUTPUT_FAILURES: &str = "sdm_watch_output_fetch_failures_total";
pub const LAST_SUCCESSFUL_POLL: &str = "sdm_watch_last_successful_poll_timestamp_seconds";

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide recorder once and returns its handle (`None` if another
/// recorder was installed first, as can happen in tests).
pub fn install() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new().install_recorder().ok()?;
            describe();
            Some(handle)
        })
        .clone()
}

fn describe() {
    describe_counter!(POLL_CYCLES, "Poll cycles by outcome (ok, error).");
    describe_counter!(
        API_REQUESTS,
        "SDM API requests by endpoint and HTTP status (or \"error\")."
    );
    describe_gauge!(JOBS_TRACKED, "Tracked jobs by last recorded status.");
    describe_counter!(
        TRANSITIONS,
        "Job status transitions detected, by new status."
    );
    describe_counter!(
        ALERTS,
        "Alert delivery attempts by channel and outcome (delivered, retry, dead)."
    );
    describe_gauge!(
        OUTBOX_PENDING,
        "Alerts queued and not yet delivered or dead."
    );
    describe_gauge!(
        LAST_SUCCESSFUL_POLL,
        "Unix time of the last successful poll cycle."
    );
}

/// Makes every series the config implies visible at zero from the start, so that
/// dashboards and alert rules see them before the first event.
pub fn register(config: &Config) {
    for outcome in ["ok", "error"] {
        metrics::counter!(POLL_CYCLES, "outcome" => outcome).increment(0);
    }
    for status in &config.poll.notify_on {
        metrics::counter!(TRANSITIONS, "status" => status.to_string()).increment(0);
    }
    let channels = config
        .webhooks
        .iter()
        .map(|hook| hook.name.clone())
        .chain(config.emails.iter().map(|email| email.name.clone()));
    for channel in channels {
        for outcome in ["delivered", "retry", "dead"] {
            metrics::counter!(ALERTS, "channel" => channel.clone(), "outcome" => outcome)
                .increment(0);
        }
    }
    if config.output.is_some() {
        metrics::counter!(OUTPUT_FAILURES).increment(0);
    }
    metrics::gauge!(OUTBOX_PENDING).increment(0.0);
    metrics::gauge!(LAST_SUCCESSFUL_POLL).increment(0.0);
}

/// Sets `jobs_tracked{status}` and `outbox_pending` from the store.
pub fn set_store_gauges(conn: &rusqlite::Connection) -> Result<(), crate::store::StoreError> {
    let counts = crate::store::jobs::count_by_status(conn)?;
    // Known statuses always appear, at zero when no job is in them any more.
    for status in crate::sdm::Status::KNOWN {
        if !counts.iter().any(|(counted, _)| *counted == status) {
            metrics::gauge!(JOBS_TRACKED, "status" => status.to_string()).set(0.0);
        }
    }
    for (status, count) in counts {
        metrics::gauge!(JOBS_TRACKED, "status" => status.to_string()).set(count as f64);
    }
    set_outbox_pending(conn)
}

pub fn set_outbox_pending(conn: &rusqlite::Connection) -> Result<(), crate::store::StoreError> {
    let pending = crate::store::outbox::count(conn, "pending")?;
    metrics::gauge!(OUTBOX_PENDING).set(pending as f64);
    Ok(())
}
