//! The alert outbox: alerts are written in the same transaction as the status change that
//! causes them, then claimed, attempted and settled by the delivery worker.

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::StoreError;
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

impl ToSql for AlertState {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

impl FromSql for AlertState {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        AlertState::parse(value.as_str()?).ok_or(FromSqlError::InvalidType)
    }
}

/// An alert as queued. `payload` is the exact JSON body a webhook receives (alone; in a
/// digest it is one of the items).
#[derive(Clone, Debug, PartialEq)]
pub struct Alert {
    pub id: String,
    pub channel: String,
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
}

impl Alert {
    pub fn new(
        id: String,
        channel: &str,
        job_id: &str,
        event: Event,
        payload: String,
        now_ms: i64,
    ) -> Self {
        Self {
            id,
            channel: channel.to_owned(),
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
        }
    }
}

/// One delivery attempt of an alert or a digest, for `alerts show`.
#[derive(Clone, Debug, PartialEq)]
pub struct AttemptRecord {
    pub at_ms: i64,
    pub outcome: String,
    pub error: Option<String>,
}

const COLUMNS: &str = "id, channel, job_id, event, payload, created_ms, state, attempts, \
     next_attempt_ms, last_error, grouped, digest_id, silence_id, COALESCE(requeued_ms, created_ms)";

pub(super) fn from_row(row: &Row<'_>) -> rusqlite::Result<Alert> {
    Ok(Alert {
        id: row.get(0)?,
        channel: row.get(1)?,
        job_id: row.get(2)?,
        event: Event::parse(&row.get::<_, String>(3)?),
        payload: row.get(4)?,
        created_ms: row.get(5)?,
        state: row.get(6)?,
        attempts: row.get::<_, i64>(7)? as u32,
        next_attempt_ms: row.get(8)?,
        last_error: row.get(9)?,
        grouped: row.get(10)?,
        digest_id: row.get(11)?,
        silence_id: row.get(12)?,
        age_from_ms: row.get(13)?,
    })
}

/// Queues `alert` (or records it silenced, if a silence matched it).
pub fn insert(conn: &Connection, alert: &Alert) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO alerts (id, channel, job_id, event, payload, created_ms, state, attempts,
                             next_attempt_ms, grouped, silence_id, finished_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0, ?8, ?9, ?10,
                 CASE WHEN ?7 = 'silenced' THEN ?6 END)",
    )?
    .execute(params![
        alert.id,
        alert.channel,
        alert.job_id,
        alert.event.as_str(),
        alert.payload,
        alert.created_ms,
        alert.state,
        alert.next_attempt_ms,
        alert.grouped,
        alert.silence_id,
    ])?;
    Ok(())
}

/// Pending alerts that go out alone, due at `now_ms`, oldest first, at most `limit`.
pub fn due(conn: &Connection, now_ms: i64, limit: usize) -> Result<Vec<Alert>, StoreError> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM alerts WHERE state = 'pending' AND grouped = 0
         AND next_attempt_ms <= ?1 ORDER BY next_attempt_ms, created_ms LIMIT ?2"
    ))?;
    let alerts = statement
        .query_map(params![now_ms, limit as i64], from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(alerts)
}

/// When the next pending alert that goes out alone falls due after `now_ms`.
pub fn next_due_after(conn: &Connection, now_ms: i64) -> Result<Option<i64>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT MIN(next_attempt_ms) FROM alerts
             WHERE state = 'pending' AND grouped = 0 AND next_attempt_ms > ?1",
        )?
        .query_row([now_ms], |row| row.get(0))?)
}

pub fn get(conn: &Connection, id: &str) -> Result<Option<Alert>, StoreError> {
    Ok(conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM alerts WHERE id = ?1"))?
        .query_row([id], from_row)
        .optional()?)
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

/// Records the outcome of attempt number `attempts` on `target` `id`: delivered or dead
/// (finished at `now_ms`), or waiting for its next attempt.
pub fn record_outcome(
    conn: &Connection,
    target: Target,
    id: &str,
    attempts: u32,
    outcome: Recorded<'_>,
    now_ms: i64,
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
    conn.prepare_cached(&format!(
        "UPDATE {table} SET state = COALESCE(?2, state), attempts = ?3,
             next_attempt_ms = COALESCE(?4, next_attempt_ms), last_error = ?5,
             finished_ms = COALESCE(?6, finished_ms)
         WHERE {key} = ?1"
    ))?
    .execute(params![id, state, attempts, next, error, finished])?;
    Ok(())
}

/// Records one attempt of alert or digest `id`.
pub fn log_attempt(
    conn: &Connection,
    id: &str,
    at_ms: i64,
    outcome: &str,
    error: Option<&str>,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO attempts (alert_id, at_ms, outcome, error) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![id, at_ms, outcome, error])?;
    Ok(())
}

/// Every attempt of alert or digest `id`, first first.
pub fn attempts(conn: &Connection, id: &str) -> Result<Vec<AttemptRecord>, StoreError> {
    let mut statement = conn.prepare_cached(
        "SELECT at_ms, outcome, error FROM attempts WHERE alert_id = ?1 ORDER BY seq",
    )?;
    let attempts = statement
        .query_map([id], |row| {
            Ok(AttemptRecord {
                at_ms: row.get(0)?,
                outcome: row.get(1)?,
                error: row.get(2)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(attempts)
}

/// Which alerts `alerts list` shows.
#[derive(Clone, Debug, Default)]
pub struct Query {
    pub state: Option<AlertState>,
    pub channel: Option<String>,
    pub since_ms: Option<i64>,
    pub limit: usize,
}

/// Alerts matching `query`, newest first.
pub fn list(conn: &Connection, query: &Query) -> Result<Vec<Alert>, StoreError> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM alerts
         WHERE (?1 IS NULL OR state = ?1) AND (?2 IS NULL OR channel = ?2)
           AND (?3 IS NULL OR created_ms >= ?3)
         ORDER BY created_ms DESC, rowid DESC LIMIT ?4"
    ))?;
    let alerts = statement
        .query_map(
            params![
                query.state,
                query.channel,
                query.since_ms,
                query.limit as i64
            ],
            from_row,
        )?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(alerts)
}

/// The `limit` oldest alerts in `state`, oldest first.
pub fn oldest(
    conn: &Connection,
    state: AlertState,
    limit: usize,
) -> Result<Vec<Alert>, StoreError> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM alerts WHERE state = ?1
         ORDER BY created_ms, rowid LIMIT ?2"
    ))?;
    let alerts = statement
        .query_map(params![state, limit as i64], from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(alerts)
}

pub fn count(conn: &Connection, state: AlertState) -> Result<u64, StoreError> {
    Ok(conn
        .prepare_cached("SELECT COUNT(*) FROM alerts WHERE state = ?1")?
        .query_row([state], |row| row.get::<_, i64>(0))? as u64)
}

/// Queues dead alert `id` again: the same id, attempts from zero, `delivery.max_age` from
/// `now_ms`; out of any digest, to be gathered into a new one if its channel groups.
/// False if it is not dead.
pub fn requeue(conn: &Connection, id: &str, now_ms: i64) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached(
            "UPDATE alerts SET state = 'pending', attempts = 0, next_attempt_ms = ?2,
                 last_error = NULL, finished_ms = NULL, digest_id = NULL, requeued_ms = ?2
             WHERE id = ?1 AND state = 'dead'",
        )?
        .execute(params![id, now_ms])?
        == 1)
}
