//! The alert outbox: alerts are written in the same transaction as the status change that
//! causes them, then claimed, attempted and settled by the delivery worker.

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use rusqlite::{Connection, Row, params};

use super::StoreError;
use crate::domain::Status;

/// Where an alert stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlertState {
    /// Waiting for its (next) delivery attempt.
    Pending,
    Delivered,
    /// Refused for good, or still undelivered after `delivery.max_age`; kept and reported.
    Dead,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Pending => "pending",
            AlertState::Delivered => "delivered",
            AlertState::Dead => "dead",
        }
    }
}

impl ToSql for AlertState {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

impl FromSql for AlertState {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        match value.as_str()? {
            "pending" => Ok(AlertState::Pending),
            "delivered" => Ok(AlertState::Delivered),
            "dead" => Ok(AlertState::Dead),
            _ => Err(FromSqlError::InvalidType),
        }
    }
}

/// An alert as queued. `payload` is the exact JSON body a webhook receives.
#[derive(Clone, Debug, PartialEq)]
pub struct Alert {
    pub id: String,
    pub channel: String,
    pub job_id: String,
    /// The status the job entered.
    pub event: Status,
    pub payload: String,
    pub created_ms: i64,
    pub attempts: u32,
    pub next_attempt_ms: i64,
    pub last_error: Option<String>,
}

impl Alert {
    pub fn new(
        id: String,
        channel: &str,
        job_id: &str,
        event: Status,
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
            attempts: 0,
            next_attempt_ms: now_ms,
            last_error: None,
        }
    }
}

const COLUMNS: &str =
    "id, channel, job_id, event, payload, created_ms, attempts, next_attempt_ms, last_error";

fn from_row(row: &Row<'_>) -> rusqlite::Result<Alert> {
    Ok(Alert {
        id: row.get(0)?,
        channel: row.get(1)?,
        job_id: row.get(2)?,
        event: row.get(3)?,
        payload: row.get(4)?,
        created_ms: row.get(5)?,
        attempts: row.get::<_, i64>(6)? as u32,
        next_attempt_ms: row.get(7)?,
        last_error: row.get(8)?,
    })
}

pub fn insert(conn: &Connection, alert: &Alert) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO alerts (id, channel, job_id, event, payload, created_ms, state, attempts,
                             next_attempt_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending', 0, ?7)",
    )?
    .execute(params![
        alert.id,
        alert.channel,
        alert.job_id,
        alert.event,
        alert.payload,
        alert.created_ms,
        alert.next_attempt_ms
    ])?;
    Ok(())
}

/// Pending alerts due at `now_ms`, oldest first, at most `limit`.
pub fn due(conn: &Connection, now_ms: i64, limit: usize) -> Result<Vec<Alert>, StoreError> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM alerts WHERE state = 'pending' AND next_attempt_ms <= ?1
         ORDER BY next_attempt_ms, created_ms LIMIT ?2"
    ))?;
    let alerts = statement
        .query_map(params![now_ms, limit as i64], from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(alerts)
}

/// When the next pending alert after `now_ms` falls due.
pub fn next_due_after(conn: &Connection, now_ms: i64) -> Result<Option<i64>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT MIN(next_attempt_ms) FROM alerts WHERE state = 'pending' AND next_attempt_ms > ?1",
        )?
        .query_row([now_ms], |row| row.get(0))?)
}

pub fn mark_delivered(
    conn: &Connection,
    id: &str,
    attempts: u32,
    now_ms: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE alerts SET state = 'delivered', attempts = ?2, finished_ms = ?3, last_error = NULL
         WHERE id = ?1",
    )?
    .execute(params![id, attempts, now_ms])?;
    Ok(())
}

pub fn mark_retry(
    conn: &Connection,
    id: &str,
    attempts: u32,
    next_attempt_ms: i64,
    error: &str,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE alerts SET attempts = ?2, next_attempt_ms = ?3, last_error = ?4 WHERE id = ?1",
    )?
    .execute(params![id, attempts, next_attempt_ms, error])?;
    Ok(())
}

pub fn mark_dead(
    conn: &Connection,
    id: &str,
    attempts: u32,
    error: &str,
    now_ms: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE alerts SET state = 'dead', attempts = ?2, last_error = ?3, finished_ms = ?4
         WHERE id = ?1",
    )?
    .execute(params![id, attempts, error, now_ms])?;
    Ok(())
}

/// Alerts in `state`, newest first, at most `limit`.
pub fn list(conn: &Connection, state: AlertState, limit: usize) -> Result<Vec<Alert>, StoreError> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM alerts WHERE state = ?1 ORDER BY created_ms DESC LIMIT ?2"
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
