//! One thing to deliver (an alert alone, or a digest of a channel's alerts), how an
//! attempt at it ends up, and how that is recorded.

use std::time::Duration;

use tracing::{error, info, warn};

use super::{Attempt, Channels, DeliverySetup, Digest, Message};
use crate::store::StoreError;
use crate::store::digests::{self, Digest as StoredDigest};
use crate::store::outbox::{self, Alert, Recorded, Target};
use crate::telemetry::{ALERTS, DIGESTS};

/// A backstop on one attempt, beyond the senders' own timeouts.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(90);

/// How long a replica's claim on an alert lasts: the longest an attempt can take with
/// these channels' timeouts, and a margin. An alert whose replica died mid-attempt goes
/// out again (same id) once it lapses.
pub fn claim_ttl(config: &crate::config::Config) -> Duration {
    let longest = config
        .webhooks
        .iter()
        .map(|hook| hook.timeout)
        .chain(config.smtp.iter().map(|smtp| smtp.timeout))
        .max()
        .unwrap_or(ATTEMPT_TIMEOUT)
        .min(ATTEMPT_TIMEOUT);
    longest + Duration::from_secs(15)
}

/// What one attempt sends.
#[derive(Clone, Debug)]
pub enum Delivery {
    Alert(Alert),
    Digest {
        digest: StoredDigest,
        members: Vec<Alert>,
    },
}

impl Delivery {
    /// The alert's or the digest's id.
    pub fn id(&self) -> &str {
        match self {
            Delivery::Alert(alert) => &alert.id,
            Delivery::Digest { digest, .. } => &digest.id,
        }
    }

    pub fn channel(&self) -> &str {
        match self {
            Delivery::Alert(alert) => &alert.channel,
            Delivery::Digest { digest, .. } => &digest.channel,
        }
    }

    fn attempts(&self) -> u32 {
        match self {
            Delivery::Alert(alert) => alert.attempts,
            Delivery::Digest { digest, .. } => digest.attempts,
        }
    }

    /// When it is dead if still undelivered.
    fn expires_ms(&self, max_age: Duration) -> i64 {
        match self {
            Delivery::Alert(alert) => crate::domain::time::after_ms(alert.age_from_ms, max_age),
            Delivery::Digest { digest, .. } => digest.expires_ms,
        }
    }

    /// The organisations its alerts are about: one, or a digest's several joined by `,`.
    fn organisations(&self) -> String {
        match self {
            Delivery::Alert(alert) => alert.organisation.clone(),
            Delivery::Digest { members, .. } => {
                let mut names: Vec<&str> =
                    members.iter().map(|m| m.organisation.as_str()).collect();
                names.sort_unstable();
                names.dedup();
                names.join(",")
            }
        }
    }

    /// The span its attempt and the record of how it ended run in: every line logged of
    /// it (by the sender too) names the organisation, the channel and the alert.
    pub fn span(&self) -> tracing::Span {
        tracing::info_span!(
            "delivery",
            organisation = %self.organisations(),
            channel = %self.channel(),
            alert_id = %self.id()
        )
    }

    /// How many alerts it carries.
    fn alerts(&self) -> u64 {
        match self {
            Delivery::Alert(_) => 1,
            Delivery::Digest { members, .. } => members.len() as u64,
        }
    }

    fn message(&self) -> Message {
        match self {
            Delivery::Alert(alert) => Message::Alert {
                id: alert.id.clone(),
                payload: alert.payload.clone(),
            },
            Delivery::Digest { digest, members } => {
                Message::Digest(Digest::new(&digest.id, digest.created_ms, members))
            }
        }
    }
}

/// One attempt, with the channels current when it started.
pub async fn attempt(channels: &Channels, delivery: &Delivery) -> Attempt {
    let Some(channel) = channels.get(delivery.channel()) else {
        return Attempt::Permanent {
            error: format!("channel {:?} is no longer configured", delivery.channel()),
        };
    };
    let message = delivery.message();
    match tokio::time::timeout(ATTEMPT_TIMEOUT, channel.send(&message)).await {
        Ok(attempt) => attempt,
        Err(_) => Attempt::Retry {
            error: format!("no answer within {}s", ATTEMPT_TIMEOUT.as_secs()),
            retry_after: None,
        },
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    Retrying,
    Dead,
}

/// How one attempt ended, ready to record.
#[derive(Clone)]
pub struct Settlement {
    delivery: Delivery,
    pub outcome: Outcome,
    /// When to try again, for `Retrying`.
    next: i64,
    error: Option<String>,
}

impl Settlement {
    /// The alert's or digest's id.
    pub fn id(&self) -> &str {
        self.delivery.id()
    }
}

/// Decides what an attempt's result means (logging it), given the retry rules and the
/// time now.
pub fn judge(delivery: Delivery, attempt: Attempt, setup: &DeliverySetup, now: i64) -> Settlement {
    let span = delivery.span();
    let _in_span = span.enter();
    let attempts = delivery.attempts() + 1;
    let (id, channel, alerts) = (delivery.id(), delivery.channel(), delivery.alerts());
    let (outcome, next, error) = match attempt {
        Attempt::Delivered => {
            info!(alert_id = %id, channel = %channel, alerts, attempts, "alert delivered");
            (Outcome::Delivered, now, None)
        }
        Attempt::Permanent { error } => {
            error!(alert_id = %id, channel = %channel, alerts, attempts, error = %error, "alert failed for good; it is dead");
            (Outcome::Dead, now, Some(error))
        }
        Attempt::Retry { error, retry_after } => {
            let expires = delivery.expires_ms(setup.max_age);
            if now >= expires {
                let error = format!(
                    "still undelivered after delivery.max_age ({}): {error}",
                    humantime::format_duration(setup.max_age)
                );
                error!(alert_id = %id, channel = %channel, alerts, attempts, error = %error, "alert expired; it is dead");
                (Outcome::Dead, now, Some(error))
            } else {
                // A receiver's Retry-After is honoured up to the backoff's longest wait: a
                // huge one must neither wrap into the past nor park the alert for years.
                let wait = setup
                    .backoff
                    .after_attempt(attempts)
                    .max(retry_after.unwrap_or_default().min(setup.backoff.max));
                // The last try falls at max_age, not after it.
                let next = crate::domain::time::after_ms(now, wait).min(expires);
                warn!(alert_id = %id, channel = %channel, alerts, attempts, retry_in_ms = next - now, error = %error, "alert delivery failed; will retry");
                (Outcome::Retrying, next, Some(error))
            }
        }
    };
    Settlement {
        delivery,
        outcome,
        next,
        error,
    }
}

/// Records settlements (each attempt in the log too), in `conn`'s open transaction.
pub fn record(
    conn: &mut dyn crate::store::Db,
    settled: &[Settlement],
    now: i64,
    by: &str,
) -> Result<(), StoreError> {
    for s in settled {
        let attempts = s.delivery.attempts() + 1;
        let error = s.error.as_deref().unwrap_or_default();
        let id = s.delivery.id();
        let recorded = match s.outcome {
            Outcome::Delivered => Recorded::Delivered,
            Outcome::Dead => Recorded::Dead { error },
            Outcome::Retrying => Recorded::Retry {
                next_attempt_ms: s.next,
                error,
            },
        };
        match &s.delivery {
            Delivery::Alert(_) => {
                outbox::record_outcome(conn, Target::Alert, id, attempts, recorded, now, by)?
            }
            Delivery::Digest { .. } => {
                digests::record_outcome(conn, id, attempts, recorded, now, by)?
            }
        }
        let outcome = match s.outcome {
            Outcome::Delivered => "delivered",
            Outcome::Retrying => "retry",
            Outcome::Dead => "dead",
        };
        outbox::log_attempt(conn, id, now, outcome, s.error.as_deref())?;
    }
    Ok(())
}

/// Counts recorded settlements in the metrics: each alert's outcome (a digest's, once
/// per member), and each digest delivered.
pub fn count(settled: &[Settlement]) {
    for s in settled {
        let label = match s.outcome {
            Outcome::Delivered => "delivered",
            Outcome::Retrying => "retry",
            Outcome::Dead => "dead",
        };
        let channel = s.delivery.channel().to_owned();
        metrics::counter!(ALERTS, "channel" => channel.clone(), "outcome" => label)
            .increment(s.delivery.alerts());
        if matches!(s.delivery, Delivery::Digest { .. }) && s.outcome == Outcome::Delivered {
            metrics::counter!(DIGESTS, "channel" => channel).increment(1);
        }
    }
}
