//! How a cycle's outcome is told: the log line, health and readiness, metrics, systemd's
//! status; and the series a config implies, registered at zero from the start.

use std::time::Duration;

use tracing::{info, warn};

use crate::config::Config;
use crate::domain::time::clock;
use crate::ops::health::{Health, LastCycle};
use crate::ops::systemd;
use crate::poll::{CycleError, CycleSummary};
use crate::telemetry;

/// Makes every series `config` implies visible from the start.
pub(super) fn register_series(config: &Config) {
    let mut reminders = Vec::new();
    if config.poll.remind_pending_every.is_some() {
        reminders.push("pending_reminder");
    }
    if config.poll.running_long() {
        reminders.push("running_long");
    }
    let channels = config.channel_names();
    telemetry::register(&telemetry::Series {
        organisations: config
            .organisations
            .iter()
            .map(|org| org.name.as_str())
            .collect(),
        notify_on: &config.poll.notify_on,
        digest_channels: channels
            .iter()
            .copied()
            .filter(|channel| config.grouping(channel).is_some())
            .collect(),
        channels,
        reminders,
        output: config.output.is_some(),
        heartbeat: config
            .heartbeat
            .as_ref()
            .map(|heartbeat| heartbeat.fail_url.is_some()),
    });
}

/// Logs a cycle's outcome (of organisation `org`) and tells health, metrics and systemd.
pub(super) fn report(
    org: &str,
    result: &Result<CycleSummary, CycleError>,
    health: &Health,
    took: Duration,
) {
    let now = time::OffsetDateTime::now_utc();
    let finished_ms = crate::domain::time::now_ms();
    let outcome = if result.is_ok() { "ok" } else { "error" };
    metrics::histogram!(telemetry::POLL_CYCLE_SECONDS, "outcome" => outcome, "organisation" => org.to_owned())
        .record(took.as_secs_f64());
    match result {
        Ok(summary) => {
            health.cycle_succeeded(
                org,
                LastCycle {
                    finished_ms,
                    duration_ms: summary.duration.as_millis() as u64,
                    requests: Some(summary.requests),
                    jobs_seen: Some(summary.jobs_seen),
                    transitions: Some(summary.transitions),
                    error: None,
                },
            );
            metrics::counter!(telemetry::POLL_CYCLES, "outcome" => "ok", "organisation" => org.to_owned()).increment(1);
            metrics::gauge!(telemetry::LAST_SUCCESSFUL_POLL, "organisation" => org.to_owned())
                .set(now.unix_timestamp() as f64);
            info!(
                organisation = org,
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
            health.cycle_failed(
                org,
                LastCycle {
                    finished_ms,
                    duration_ms: took.as_millis() as u64,
                    requests: None,
                    jobs_seen: None,
                    transitions: None,
                    error: Some(error.clone()),
                },
            );
            metrics::counter!(telemetry::POLL_CYCLES, "outcome" => "error", "organisation" => org.to_owned()).increment(1);
            warn!(organisation = org, error = %error, "poll cycle failed; trying again at the next interval");
            systemd::status(&format!("last cycle failed at {}: {error}", clock(now)));
        }
    }
}
