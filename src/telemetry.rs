//! Prometheus metrics through the `metrics` facade: every series' name (all start with
//! `sdm_watch_`), its description, and the process-wide recorder whose handle renders
//! `/metrics`. A leaf: modules record through the names here; who counts what is theirs.

use std::sync::OnceLock;

use metrics::{describe_counter, describe_gauge};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::domain::Status;

pub const POLL_CYCLES: &str = "sdm_watch_poll_cycles_total";
pub const API_REQUESTS: &str = "sdm_watch_api_requests_total";
pub const API_REQUEST_SECONDS: &str = "sdm_watch_api_request_duration_seconds";
pub const JOBS_TRACKED: &str = "sdm_watch_jobs_tracked";
pub const TRANSITIONS: &str = "sdm_watch_transitions_total";
pub const ALERTS: &str = "sdm_watch_alerts_total";
pub const OUTBOX_PENDING: &str = "sdm_watch_outbox_pending";
pub const OUTPUT_FAILURES: &str = "sdm_watch_output_fetch_failures_total";
pub const LAST_SUCCESSFUL_POLL: &str = "sdm_watch_last_successful_poll_timestamp_seconds";
pub const REMINDERS: &str = "sdm_watch_reminders_total";
pub const DIGESTS: &str = "sdm_watch_digests_total";
pub const POLL_INTERVAL: &str = "sdm_watch_poll_interval_seconds";
pub const LEADER: &str = "sdm_watch_leader";
pub const LEADERSHIP_CHANGES: &str = "sdm_watch_leadership_changes_total";
pub const ORGANISATION_LEADER: &str = "sdm_watch_organisation_leader";
pub const API_ROWS_SKIPPED: &str = "sdm_watch_api_rows_skipped_total";
pub const HEARTBEATS: &str = "sdm_watch_heartbeat_total";
pub const BUILD_INFO: &str = "sdm_watch_build_info";
pub const POLL_CYCLE_SECONDS: &str = "sdm_watch_poll_cycle_duration_seconds";
pub const HTTP_REFUSED: &str = "sdm_watch_http_refused_total";
pub const RELOAD_SUCCESSFUL: &str = "sdm_watch_config_last_reload_successful";
pub const RELOAD_SUCCESS_TIME: &str = "sdm_watch_config_last_reload_success_timestamp_seconds";
/// The reasons `sdm_watch_http_refused_total` counts by.
pub const HTTP_REFUSED_REASONS: [&str; 5] = [
    "sign_in_failed",
    "locked_out",
    "busy",
    "csrf_refused",
    "connection_refused",
];

/// The poll cycle histogram's buckets, in seconds: a quiet cycle takes well under a second,
/// a first cycle or one under retries, minutes.
const CYCLE_BUCKETS: [f64; 12] = [
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

/// The commit sdm-watch was built from (`build.rs`), or "unknown".
pub const REVISION: &str = match option_env!("SDM_WATCH_REVISION") {
    Some(revision) => revision,
    None => "unknown",
};

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide recorder once and returns its handle (`None` if another
/// recorder was installed first, as can happen in tests).
pub fn install() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    metrics_exporter_prometheus::Matcher::Full(POLL_CYCLE_SECONDS.to_owned()),
                    &CYCLE_BUCKETS,
                )
                .ok()?
                .set_buckets_for_metric(
                    metrics_exporter_prometheus::Matcher::Full(API_REQUEST_SECONDS.to_owned()),
                    &REQUEST_BUCKETS,
                )
                .ok()?
                .install_recorder()
                .ok()?;
            describe();
            metrics::gauge!(
                BUILD_INFO,
                "version" => env!("CARGO_PKG_VERSION"),
                "revision" => REVISION
            )
            .set(1.0);
            Some(handle)
        })
        .clone()
}

/// An API request's round trip: from 20 ms (a near server) to its 30 s default timeout.
const REQUEST_BUCKETS: [f64; 10] = [0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

fn describe() {
    metrics::describe_histogram!(
        API_REQUEST_SECONDS,
        metrics::Unit::Seconds,
        "SDM API requests' round trips (sent to the answer's headers), by organisation, endpoint (list, detail, data) and code (or error)."
    );
    metrics::describe_histogram!(
        POLL_CYCLE_SECONDS,
        metrics::Unit::Seconds,
        "How long poll cycles took, by organisation and outcome (ok, error)."
    );
    describe_gauge!(
        BUILD_INFO,
        "Always 1; the labels say which sdm-watch runs (version, revision)."
    );
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
        "Alerts by channel and outcome: delivery attempts (delivered, retry, dead), and alerts silenced."
    );
    describe_gauge!(
        OUTBOX_PENDING,
        "Alerts queued and not yet delivered or dead."
    );
    describe_gauge!(
        LAST_SUCCESSFUL_POLL,
        "Unix time of the last successful poll cycle."
    );
    describe_counter!(
        REMINDERS,
        "Reminders queued, by kind (pending_reminder, running_long)."
    );
    describe_counter!(DIGESTS, "Digests sent, by channel.");
    describe_gauge!(
        POLL_INTERVAL,
        "poll.interval in seconds (the idle cadence): readiness and the stale-poll alert allow three."
    );
    describe_gauge!(
        LEADER,
        "1 while this replica leads (polls) at least one organisation, 0 while it stands by; always 1 on SQLite."
    );
    describe_gauge!(
        ORGANISATION_LEADER,
        "1 while this replica holds the organisation's lease and polls it, else 0; always 1 on SQLite."
    );
    describe_counter!(
        LEADERSHIP_CHANGES,
        "Times this replica took or lost the lead, by change (acquired, lost)."
    );
    describe_counter!(
        API_ROWS_SKIPPED,
        "Rows of the API's job listings skipped because they lack a usable id or status, by reason."
    );
    describe_counter!(
        HEARTBEATS,
        "Heartbeat pings by kind (success, fail) and outcome (ok, error)."
    );
    describe_gauge!(
        RELOAD_SUCCESSFUL,
        "Whether the last configuration reload succeeded (1), or failed and the previous configuration stays in force (0)."
    );
    describe_gauge!(
        RELOAD_SUCCESS_TIME,
        "When the configuration was last loaded successfully, at start or on a reload (Unix seconds)."
    );
    describe_counter!(
        HTTP_REFUSED,
        "Requests and connections the console refused, by reason (sign_in_failed, locked_out, busy, csrf_refused, connection_refused)."
    );
}

/// The series a configuration implies, so that they are there from the start.
pub struct Series<'a> {
    /// The organisations watched: the per-organisation series carry their names.
    pub organisations: Vec<&'a str>,
    pub notify_on: &'a [Status],
    pub channels: Vec<&'a str>,
    /// The channels that gather digests.
    pub digest_channels: Vec<&'a str>,
    /// The reminder kinds enabled (`pending_reminder`, `running_long`).
    pub reminders: Vec<&'a str>,
    pub output: bool,
    /// `[heartbeat]` is configured (with `fail_url`: both kinds).
    pub heartbeat: Option<bool>,
}

/// Makes every series in `series` visible at zero from the start, so that dashboards and
/// alert rules see them before the first event.
pub fn register(series: &Series<'_>) {
    for org in &series.organisations {
        let org = org.to_string();
        for outcome in ["ok", "error"] {
            metrics::counter!(POLL_CYCLES, "outcome" => outcome, "organisation" => org.clone())
                .increment(0);
        }
        for status in series.notify_on {
            metrics::counter!(TRANSITIONS, "status" => status.to_string(), "organisation" => org.clone())
                .increment(0);
        }
        metrics::gauge!(LAST_SUCCESSFUL_POLL, "organisation" => org).increment(0.0);
    }
    for channel in &series.channels {
        for outcome in ["delivered", "retry", "dead", "silenced"] {
            metrics::counter!(ALERTS, "channel" => channel.to_string(), "outcome" => outcome)
                .increment(0);
        }
    }
    for channel in &series.digest_channels {
        metrics::counter!(DIGESTS, "channel" => channel.to_string()).increment(0);
    }
    for kind in &series.reminders {
        metrics::counter!(REMINDERS, "kind" => kind.to_string()).increment(0);
    }
    if series.output {
        metrics::counter!(OUTPUT_FAILURES).increment(0);
    }
    if let Some(with_fail) = series.heartbeat {
        let kinds: &[&str] = if with_fail {
            &["success", "fail"]
        } else {
            &["success"]
        };
        for kind in kinds {
            for outcome in ["ok", "error"] {
                metrics::counter!(HEARTBEATS, "kind" => *kind, "outcome" => outcome).increment(0);
            }
        }
    }
    metrics::gauge!(OUTBOX_PENDING).increment(0.0);
    for change in ["acquired", "lost"] {
        metrics::counter!(LEADERSHIP_CHANGES, "change" => change).increment(0);
    }
    for reason in ["not_an_object", "no_id", "no_status"] {
        metrics::counter!(API_ROWS_SKIPPED, "reason" => reason).increment(0);
    }
    for reason in HTTP_REFUSED_REASONS {
        metrics::counter!(HTTP_REFUSED, "reason" => reason).increment(0);
    }
}

/// The configuration was loaded (at start, or by a reload) or a reload failed.
pub fn config_loaded(succeeded: bool) {
    metrics::gauge!(RELOAD_SUCCESSFUL).set(if succeeded { 1.0 } else { 0.0 });
    if succeeded {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |since| since.as_secs_f64());
        metrics::gauge!(RELOAD_SUCCESS_TIME).set(now);
    }
}
