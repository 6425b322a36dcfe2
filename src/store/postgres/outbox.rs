//! The alert outbox on PostgreSQL, for replicas that all deliver: an alert is claimed
//! before it is sent, with a claim that expires, so two replicas never send the same
//! alert at once and a claim that outlives its replica (killed mid-attempt) is taken over
//! once it lapses, with the same alert id, so the same `webhook-id`. Settling an attempt
//! checks the claim is still this replica's: a replica that lost it records nothing.

use std::time::Duration;

use tokio_postgres::GenericClient;

use super::PgError;
use crate::domain::Event;
use crate::store::outbox::{Alert, AlertState};

/// Queues `alert` (in the caller's transaction, with the job's new state).
pub async fn insert(client: &impl GenericClient, alert: &Alert) -> Result<(), PgError> {
    client
        .execute(
            "INSERT INTO sdm_watch_alerts (id, channel, job_id, event, payload, created_ms,
                 state, attempts, next_attempt_ms, grouped, silence_id, age_from_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            &[
                &alert.id,
                &alert.channel,
                &alert.job_id,
                &alert.event.to_string(),
                &alert.payload,
                &alert.created_ms,
                &alert.state.as_str(),
                &i64::from(alert.attempts),
                &alert.next_attempt_ms,
                &alert.grouped,
                &alert.silence_id,
                &alert.age_from_ms,
            ],
        )
        .await?;
    Ok(())
}

/// Claims up to `limit` alerts due at `now_ms` for `replica`, for `ttl`: pending, not
/// gathered into digests, and unclaimed or claimed by a claim that lapsed. Rows another
/// replica is claiming at this moment are skipped, not waited for.
pub async fn claim(
    client: &impl GenericClient,
    replica: &str,
    now_ms: i64,
    limit: usize,
    ttl: Duration,
) -> Result<Vec<Alert>, PgError> {
    let rows = client
        .query(
            "UPDATE sdm_watch_alerts SET claimed_by = $1,
                 claim_until = clock_timestamp() + make_interval(secs => $4)
             WHERE id IN (
                 SELECT id FROM sdm_watch_alerts
                 WHERE state = 'pending' AND NOT grouped AND next_attempt_ms <= $2
                   AND (claim_until IS NULL OR claim_until < clock_timestamp())
                 ORDER BY next_attempt_ms, id
                 LIMIT $3
                 FOR UPDATE SKIP LOCKED)
             RETURNING id, channel, job_id, event, payload, created_ms, attempts,
                       next_attempt_ms, last_error, grouped, silence_id, age_from_ms",
            &[&replica, &now_ms, &(limit as i64), &ttl.as_secs_f64()],
        )
        .await?;
    let mut alerts: Vec<Alert> = rows
        .iter()
        .map(|row| {
            let mut alert = Alert::new(
                row.get(0),
                row.get::<_, &str>(1),
                row.get::<_, &str>(2),
                Event::parse(row.get::<_, &str>(3)),
                row.get(4),
                row.get(5),
            );
            alert.attempts = u32::try_from(row.get::<_, i64>(6)).unwrap_or(0);
            alert.next_attempt_ms = row.get(7);
            alert.last_error = row.get(8);
            alert.grouped = row.get(9);
            alert.silence_id = row.get(10);
            alert.age_from_ms = row.get(11);
            alert
        })
        .collect();
    alerts.sort_by(|a, b| (a.next_attempt_ms, &a.id).cmp(&(b.next_attempt_ms, &b.id)));
    Ok(alerts)
}

/// How one attempt ended, to record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Settle {
    Delivered,
    Retry { next_attempt_ms: i64, error: String },
    Dead { error: String },
}

/// Records the attempt at `id` by `replica` and ends its claim; false, recording nothing,
/// if the claim is no longer this replica's (it lapsed and another took the alert). A
/// claim that lapsed but that nobody took is still this replica's to settle.
pub async fn settle(
    client: &impl GenericClient,
    replica: &str,
    id: &str,
    attempts: u32,
    outcome: &Settle,
    now_ms: i64,
) -> Result<bool, PgError> {
    let (state, next, error, finished) = match outcome {
        Settle::Delivered => (AlertState::Delivered, None, None, Some(now_ms)),
        Settle::Retry {
            next_attempt_ms,
            error,
        } => (
            AlertState::Pending,
            Some(*next_attempt_ms),
            Some(error.as_str()),
            None,
        ),
        Settle::Dead { error } => (AlertState::Dead, None, Some(error.as_str()), Some(now_ms)),
    };
    let updated = client
        .execute(
            "UPDATE sdm_watch_alerts SET state = $3, attempts = $4,
                 next_attempt_ms = COALESCE($5, next_attempt_ms), last_error = $6,
                 finished_ms = $7, claimed_by = NULL, claim_until = NULL
             WHERE id = $1 AND claimed_by = $2",
            &[
                &id,
                &replica,
                &state.as_str(),
                &i64::from(attempts),
                &next,
                &error,
                &finished,
            ],
        )
        .await?;
    Ok(updated == 1)
}

/// How many alerts are in `state`.
pub async fn count(client: &impl GenericClient, state: AlertState) -> Result<u64, PgError> {
    let count: i64 = client
        .query_one(
            "SELECT count(*) FROM sdm_watch_alerts WHERE state = $1",
            &[&state.as_str()],
        )
        .await?
        .get(0);
    Ok(count as u64)
}
