//! The alert outbox: alerts are written in the same transaction as the status change that
//! causes them, then claimed, attempted and settled by the delivery worker.

use super::StoreError;
use super::db::{Db, DbRow, Engine, FromValue, ToValue, Value};
use crate::domain::Event;

/// Where an alert stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlertState {
    /// Waiting for its (next) delivery attempt, or for its digest's.
    Pending,
    Delivered,
    /// Refused for good, or still undelivered after `delivery.max_age`; kept and reported.
    Dead,
    /// Matched an active silence when it was queued: recorded, never sent.
    Silenced,
}

impl AlertState {
    pub const ALL: [AlertState; 4] = [
        AlertState::Pending,
        AlertState::Delivered,
        AlertState::Dead,
        AlertState::Silenced,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Pending => "pending",
            AlertState::Delivered => "delivered",
            AlertState::Dead => "dead",
            AlertState::Silenced => "silenced",
        }
    }

    pub fn parse(text: &str) -> Option<AlertState> {
        AlertState::ALL
            .into_iter()
            .find(|state| state.as_str() == text)
    }
}

impl std::fmt::Display for AlertState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ToValue for AlertState {
    fn to_value(&self) -> Value {
        Value::Text(self.as_str().to_owned())
    }
}

impl FromValue for AlertState {
    fn from_value(value: &Value) -> Result<Self, crate::store::db::ValueError> {
        let text = String::from_value(value)?;
        AlertState::parse(&text).ok_or(crate::store::db::ValueError::Unknown {
            expected: "an alert state",
            found: text,
        })
    }
}

/// An alert as queued. `payload` is the exact JSON body a webhook receives (alone; in a
/// digest it is one of the items).
#[derive(Clone, Debug, PartialEq)]
pub struct Alert {
    pub id: String,
    pub channel: String,
    /// The organisation of the job (or of the watcher) it is about.
    pub organisation: String,
    pub job_id: String,
    pub event: Event,
    pub payload: String,
    pub created_ms: i64,
    pub state: AlertState,
    pub attempts: u32,
    pub next_attempt_ms: i64,
    pub last_error: Option<String>,
    /// Its channel gathers alerts into digests: it goes out in one, not alone.
    pub grouped: bool,
    pub digest_id: Option<String>,
    /// The silence that muted it.
    pub silence_id: Option<String>,
    /// `delivery.max_age` counts from here: when it was queued, or queued again.
    pub age_from_ms: i64,
    /// A resolution waits until the alert it resolves (on its channel) is no longer
    /// pending: a receiver never hears of the end before the start.
    pub after_alert: Option<String>,
}

impl Alert {
    pub fn new(
        id: String,
        channel: &str,
        organisation: &str,
        job_id: &str,
        event: Event,
        payload: String,
        now_ms: i64,
    ) -> Self {
        Self {
            id,
            channel: channel.to_owned(),
            organisation: organisation.to_owned(),
            job_id: job_id.to_owned(),
            event,
            payload,
            created_ms: now_ms,
            state: AlertState::Pending,
            attempts: 0,
            next_attempt_ms: now_ms,
            last_error: None,
            grouped: false,
            digest_id: None,
            silence_id: None,
            age_from_ms: now_ms,
            after_alert: None,
        }
    }
}

pub(super) const COLUMNS: &str = "id, channel, job_id, event, payload, created_ms, state, attempts, \
     next_attempt_ms, last_error, grouped, digest_id, silence_id, COALESCE(requeued_ms, created_ms), \
     organisation, after_alert";

pub(super) fn from_row(row: &DbRow) -> Result<Alert, StoreError> {
    Ok(Alert {
        id: row.get(0)?,
        channel: row.get(1)?,
        job_id: row.get(2)?,
        event: Event::parse(&row.get::<String>(3)?),
        payload: row.get(4)?,
        created_ms: row.get(5)?,
        state: row.get(6)?,
        attempts: row.get(7)?,
        next_attempt_ms: row.get(8)?,
        last_error: row.get(9)?,
        grouped: row.get(10)?,
        digest_id: row.get(11)?,
        silence_id: row.get(12)?,
        age_from_ms: row.get(13)?,
        organisation: row.get(14)?,
        after_alert: row.get(15)?,
    })
}

/// Queues `alert` (or records it silenced, if a silence matched it).
pub fn insert(conn: &mut dyn Db, alert: &Alert) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO alerts (id, channel, job_id, event, payload, created_ms, state, attempts,
                             next_attempt_ms, grouped, silence_id, finished_ms, organisation,
                             after_alert)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0, ?8, ?9, ?10,
                 CASE WHEN ?7 = 'silenced' THEN CAST(?6 AS BIGINT) END, ?11, ?12)",
        &[
            &alert.id,
            &alert.channel,
            &alert.job_id,
            &alert.event.stored(),
            &alert.payload,
            &alert.created_ms,
            &alert.state,
            &alert.next_attempt_ms,
            &alert.grouped,
            &alert.silence_id,
            &alert.organisation,
            &alert.after_alert,
        ],
    )?;
    Ok(())
}

/// Pending alerts that go out alone, due at `now_ms`, oldest first, at most `limit`.
pub fn due(conn: &mut dyn Db, claim: &Claim, limit: usize) -> Result<Vec<Alert>, StoreError> {
    let mut alerts = claim_rows(
        conn,
        "alerts",
        COLUMNS,
        "grouped = 0 AND next_attempt_ms <= ?2
           AND (after_alert IS NULL OR NOT EXISTS (
                SELECT 1 FROM alerts AS first WHERE first.id = alerts.after_alert
                  AND first.state = 'pending'))",
        claim,
        limit,
    )?
    .iter()
    .map(from_row)
    .collect::<Result<Vec<_>, _>>()?;
    alerts.sort_by_key(|alert| (alert.next_attempt_ms, alert.created_ms));
    Ok(alerts)
}

/// Claims for `claim.replica`, until its claim lapses, up to `limit` pending rows of
/// `table` that `condition` selects (`?2` is now), unclaimed or with a lapsed claim, the
/// earliest due first; returns their `columns`. On PostgreSQL, rows another replica is
/// claiming at this moment are skipped, not waited for. On SQLite, the store of one
/// process, the worker keeps its claims in memory and nothing is written: a write here
/// would cost a commit (an fsync) for every batch taken.
pub(super) fn claim_rows(
    conn: &mut dyn Db,
    table: &str,
    columns: &str,
    condition: &str,
    claim: &Claim,
    limit: usize,
) -> Result<Vec<DbRow>, StoreError> {
    let due = format!(
        "SELECT {{}} FROM {table} WHERE state = 'pending' AND {condition}
           AND (claim_until_ms IS NULL OR claim_until_ms <= ?2)
         ORDER BY next_attempt_ms, created_ms LIMIT ?4"
    );
    let sql = match conn.engine() {
        Engine::Sqlite => due.replace("{}", columns),
        Engine::Postgres => format!(
            "UPDATE {table} SET claimed_by = ?1, claim_until_ms = ?3
             WHERE id IN ({} FOR UPDATE SKIP LOCKED)
             RETURNING {columns}",
            due.replace("{}", "id")
        ),
    };
    conn.query(
        &sql,
        &[&claim.replica, &claim.now_ms, &claim.until_ms(), &limit],
    )
}

/// A replica's claim on what it is about to send: nobody else takes it before `ttl_ms`
/// after `now_ms`; settling an attempt ends it. A claim that outlives its replica (killed
/// mid-attempt) lapses and the alert is sent again, with the same id.
#[derive(Clone, Debug)]
pub struct Claim {
    pub replica: String,
    pub now_ms: i64,
    pub ttl_ms: i64,
}

impl Claim {
    fn until_ms(&self) -> i64 {
        self.now_ms + self.ttl_ms
    }
}

/// Tells the other replicas (PostgreSQL) that alerts were queued, when the transaction
/// commits, so that their workers look at once; SQLite has one worker, woken in-process.
pub fn announce(conn: &mut dyn Db) -> Result<(), StoreError> {
    if conn.engine() == Engine::Postgres {
        conn.query(
            "SELECT 1 FROM (SELECT pg_notify('sdm_watch_outbox', '')) AS notified",
            &[],
        )?;
    }
    Ok(())
}

/// Lets go of a claim taken but not acted on (PostgreSQL; SQLite writes no claims).
pub fn unclaim(
    conn: &mut dyn Db,
    target: Target,
    id: &str,
    replica: &str,
) -> Result<(), StoreError> {
    if conn.engine() == Engine::Sqlite {
        return Ok(());
    }
    let table = match target {
        Target::Alert | Target::DigestMembers => "alerts",
        Target::Digest => "digests",
    };
    conn.execute(
        &format!(
            "UPDATE {table} SET claimed_by = NULL, claim_until_ms = NULL
             WHERE id = ?1 AND claimed_by = ?2"
        ),
        &[&id, &replica],
    )?;
    Ok(())
}

/// When the next pending alert that goes out alone falls due after `now_ms`.
pub fn next_due_after(conn: &mut dyn Db, now_ms: i64) -> Result<Option<i64>, StoreError> {
    conn.query_one(
        "SELECT MIN(CASE WHEN claim_until_ms > next_attempt_ms THEN claim_until_ms
                         ELSE next_attempt_ms END) FROM alerts
         WHERE state = 'pending' AND grouped = 0
           AND (next_attempt_ms > ?1 OR claim_until_ms > ?1)",
        &[&now_ms],
    )?
    .get(0)
}

pub fn get(conn: &mut dyn Db, id: &str) -> Result<Option<Alert>, StoreError> {
    conn.query_opt(
        &format!("SELECT {COLUMNS} FROM alerts WHERE id = ?1"),
        &[&id],
    )?
    .map(|row| from_row(&row))
    .transpose()
}

/// How an attempt ended, as the store records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recorded<'a> {
    Delivered,
    Retry {
        next_attempt_ms: i64,
        error: &'a str,
    },
    Dead {
        error: &'a str,
    },
}

/// The rows an attempt's outcome is written to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The alert with that id.
    Alert,
    /// The digest with that id.
    Digest,
    /// Every alert in the digest with that id; a retry leaves their own schedule, the
    /// digest's governs.
    DigestMembers,
}

/// Records the outcome of attempt number `attempts` on `target` `id` by replica `by`:
/// delivered or dead (finished at `now_ms`), or waiting for its next attempt. `by`'s claim
/// ends; a claim another replica took meanwhile (`by`'s lapsed) stays.
pub fn record_outcome(
    conn: &mut dyn Db,
    target: Target,
    id: &str,
    attempts: u32,
    outcome: Recorded<'_>,
    now_ms: i64,
    by: &str,
) -> Result<(), StoreError> {
    let (table, key) = match target {
        Target::Alert => ("alerts", "id"),
        Target::Digest => ("digests", "id"),
        Target::DigestMembers => ("alerts", "digest_id"),
    };
    let (state, next, error, finished) = match outcome {
        Recorded::Delivered => (Some("delivered"), None, None, Some(now_ms)),
        Recorded::Dead { error } => (Some("dead"), None, Some(error), Some(now_ms)),
        Recorded::Retry {
            next_attempt_ms,
            error,
        } => {
            let next = (target != Target::DigestMembers).then_some(next_attempt_ms);
            (None, next, Some(error), None)
        }
    };
    // Members carry no claim: their digest's is the one.
    let params = if target == Target::DigestMembers {
        6
    } else {
        7
    };
    let claim = match target {
        Target::DigestMembers => "",
        Target::Alert | Target::Digest => {
            ", claimed_by = CASE WHEN claimed_by = ?7 THEN NULL ELSE claimed_by END,
               claim_until_ms = CASE WHEN claimed_by = ?7 THEN NULL ELSE claim_until_ms END"
        }
    };
    conn.execute(
        &format!(
            "UPDATE {table} SET state = COALESCE(?2, state), attempts = ?3,
                 next_attempt_ms = COALESCE(?4, next_attempt_ms), last_error = ?5,
                 finished_ms = COALESCE(?6, finished_ms){claim}
             WHERE {key} = ?1"
        ),
        &([&id, &state, &attempts, &next, &error, &finished, &by] as [&dyn ToValue; 7])[..params],
    )?;
    Ok(())
}

/// Records one attempt of alert or digest `id`.
pub fn log_attempt(
    conn: &mut dyn Db,
    id: &str,
    at_ms: i64,
    outcome: &str,
    error: Option<&str>,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO attempts (alert_id, at_ms, outcome, error) VALUES (?1, ?2, ?3, ?4)",
        &[&id, &at_ms, &outcome, &error],
    )?;
    Ok(())
}
