//! The watcher's own alerts, `watcher.failing` and `watcher.recovered`, and their direct
//! send when the store cannot queue them.

use time::OffsetDateTime;
use tracing::{error, info};

use crate::config::Config;
use crate::domain::time::{from_millis, millis as ms, rfc3339_seconds};
use crate::notify::alerts::{self, new_alert_id};
use crate::notify::payload::WatcherFacts;
use crate::notify::{AlertEvent, Attempt, Channels, Message};
use crate::sdm::Failure;

/// The API the organisation's watcher reads, as alerts name it.
fn watching(config: &Config, org: &str) -> String {
    config
        .organisation(org)
        .map_or_else(|| org.to_owned(), |org| org.api.base_url.to_string())
}

pub(super) fn failing(
    failure: &Failure,
    since_ms: i64,
    config: &Config,
    org: &str,
    now: OffsetDateTime,
) -> AlertEvent {
    AlertEvent::watcher(
        "failing",
        WatcherFacts {
            since: since_text(since_ms),
            failing_for_seconds: Some(seconds_between(since_ms, now)),
            reason: Some(failure.reason.to_owned()),
            last_error: Some(failure.error.clone()),
            down_for_seconds: None,
            watching: watching(config, org),
        },
        now,
    )
}

/// `watcher.recovered`, after an outage that began at `since_ms`.
pub(super) fn recovered(
    since_ms: i64,
    config: &Config,
    org: &str,
    now: OffsetDateTime,
) -> AlertEvent {
    let down = seconds_between(since_ms, now);
    info!(
        down_for_seconds = down,
        "the watcher polls again; sending watcher.recovered"
    );
    AlertEvent::watcher(
        "recovered",
        WatcherFacts {
            since: since_text(since_ms),
            failing_for_seconds: None,
            reason: None,
            last_error: None,
            down_for_seconds: Some(down),
            watching: watching(config, org),
        },
        now,
    )
}

/// Best effort, once: every channel that wants the `watcher` event, one attempt each.
pub(super) async fn send_directly(
    event: &AlertEvent,
    org: &str,
    config: &Config,
    channels: &Channels,
) {
    let mut event = event.clone();
    alerts::name_organisation(&mut event, org, config);
    let payload = event.to_json();
    for name in alerts::route(config, org, &crate::domain::Event::Watcher, None) {
        let Some(channel) = channels.get(&name) else {
            continue;
        };
        let message = Message::Alert {
            id: new_alert_id(),
            payload: payload.clone(),
        };
        match channel.send(&message).await {
            Attempt::Delivered => {
                info!(channel = %name, "{} sent directly", event.kind)
            }
            Attempt::Retry { error, .. } | Attempt::Permanent { error } => {
                error!(channel = %name, error = %error, "{} could not be sent directly; it is not retried", event.kind)
            }
        }
    }
}

pub(super) fn seconds_between(since_ms: i64, now: OffsetDateTime) -> u64 {
    u64::try_from(ms(now).saturating_sub(since_ms) / 1_000).unwrap_or(0)
}

pub(super) fn since_text(since_ms: i64) -> String {
    from_millis(since_ms).map_or_else(|| since_ms.to_string(), rfc3339_seconds)
}
