//! Digests: a channel's alerts gathered into one message. A digest is formed with its
//! members in one transaction, before its first attempt, so that every retry and every
//! restart sends the same digest (same id, same members, same body); each alert is in one
//! digest at most.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::StoreError;
use super::outbox::{self, Alert, Recorded, Target};

/// A digest as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct Digest {
    pub id: String,
    pub channel: String,
    pub created_ms: i64,
    pub attempts: u32,
    pub next_attempt_ms: i64,
    /// `delivery.max_age` after its oldest member was queued.
    pub expires_ms: i64,
    pub last_error: Option<String>,
}

const COLUMNS: &str = "id, channel, created_ms, attempts, next_attempt_ms, expires_ms, last_error";

fn from_row(row: &Row<'_>) -> rusqlite::Result<Digest> {
    Ok(Digest {
        id: row.get(0)?,
        channel: row.get(1)?,
        created_ms: row.get(2)?,
        attempts: row.get::<_, i64>(3)? as u32,
        next_attempt_ms: row.get(4)?,
        expires_ms: row.get(5)?,
        last_error: row.get(6)?,
    })
}

/// The channels with alerts waiting to be gathered, and when the oldest of each was queued.
pub fn waiting(conn: &Connection) -> Result<Vec<(String, i64)>, StoreError> {
    let mut statement = conn.prepare_cached(
        "SELECT channel, MIN(created_ms) FROM alerts
         WHERE state = 'pending' AND grouped = 1 AND digest_id IS NULL GROUP BY channel",
    )?;
    let waiting = statement
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(waiting)
}

/// Gathers `channel`'s waiting alerts queued within `wait_ms` of the oldest into digests of
/// at most `max`, if the oldest has waited that long by `now_ms`; `new_id` names each. An
/// alert alone in its window is sent as itself. Returns the new digests' ids.
pub fn form(
    conn: &Connection,
    channel: &str,
    wait_ms: i64,
    max: usize,
    now_ms: i64,
    max_age_ms: i64,
    mut new_id: impl FnMut() -> String,
) -> Result<Vec<String>, StoreError> {
    let mut statement = conn.prepare_cached(
        "SELECT id, created_ms, COALESCE(requeued_ms, created_ms) FROM alerts
         WHERE state = 'pending' AND grouped = 1 AND digest_id IS NULL AND channel = ?1
         ORDER BY created_ms, rowid",
    )?;
    let waiting: Vec<(String, i64, i64)> = statement
        .query_map([channel], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    let Some(&(_, first, _)) = waiting.first() else {
        return Ok(Vec::new());
    };
    if first + wait_ms > now_ms {
        return Ok(Vec::new());
    }
    let window: Vec<&(String, i64, i64)> = waiting
        .iter()
        .take_while(|(_, created, _)| *created <= first + wait_ms)
        .collect();
    if let [(alone, _, _)] = window.as_slice() {
        // Nothing came with it: it goes out as itself, as without group_wait.
        conn.prepare_cached("UPDATE alerts SET grouped = 0 WHERE id = ?1")?
            .execute([alone])?;
        return Ok(Vec::new());
    }
    let mut formed = Vec::new();
    for members in window.chunks(max.max(1)) {
        let id = new_id();
        let oldest = members
            .iter()
            .map(|(_, _, age_from)| *age_from)
            .min()
            .unwrap_or(now_ms);
        conn.prepare_cached(
            "INSERT INTO digests (id, channel, created_ms, state, next_attempt_ms, expires_ms)
             VALUES (?1, ?2, ?3, 'pending', ?3, ?4)",
        )?
        .execute(params![id, channel, now_ms, oldest + max_age_ms])?;
        let mut join = conn.prepare_cached("UPDATE alerts SET digest_id = ?1 WHERE id = ?2")?;
        for (alert, _, _) in members {
            join.execute(params![id, alert])?;
        }
        formed.push(id);
    }
    Ok(formed)
}

/// Waiting alerts whose channel no longer gathers them (a reload changed it): they go out
/// alone.
pub fn ungroup(conn: &Connection, channel: &str) -> Result<usize, StoreError> {
    Ok(conn
        .prepare_cached(
            "UPDATE alerts SET grouped = 0
             WHERE state = 'pending' AND grouped = 1 AND digest_id IS NULL AND channel = ?1",
        )?
        .execute([channel])?)
}

/// Pending digests due at `now_ms`, oldest first, at most `limit`.
pub fn due(conn: &Connection, now_ms: i64, limit: usize) -> Result<Vec<Digest>, StoreError> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM digests WHERE state = 'pending' AND next_attempt_ms <= ?1
         ORDER BY next_attempt_ms, created_ms LIMIT ?2"
    ))?;
    let digests = statement
        .query_map(params![now_ms, limit as i64], from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(digests)
}

/// When the next pending digest falls due after `now_ms`.
pub fn next_due_after(conn: &Connection, now_ms: i64) -> Result<Option<i64>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT MIN(next_attempt_ms) FROM digests WHERE state = 'pending' AND next_attempt_ms > ?1",
        )?
        .query_row([now_ms], |row| row.get(0))?)
}

pub fn get(conn: &Connection, id: &str) -> Result<Option<Digest>, StoreError> {
    Ok(conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM digests WHERE id = ?1"))?
        .query_row([id], from_row)
        .optional()?)
}

/// A digest's alerts, in the order they were queued.
pub fn members(conn: &Connection, id: &str) -> Result<Vec<Alert>, StoreError> {
    let mut statement = conn.prepare_cached(
        "SELECT id, channel, job_id, event, payload, created_ms, state, attempts,
                next_attempt_ms, last_error, grouped, digest_id, silence_id,
                COALESCE(requeued_ms, created_ms)
         FROM alerts WHERE digest_id = ?1 ORDER BY created_ms, rowid",
    )?;
    let members = statement
        .query_map([id], outbox::from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(members)
}

/// Records the outcome of an attempt at digest `id` on the digest and on its alerts.
pub fn record_outcome(
    conn: &Connection,
    id: &str,
    attempts: u32,
    outcome: Recorded<'_>,
    now_ms: i64,
) -> Result<(), StoreError> {
    outbox::record_outcome(conn, Target::Digest, id, attempts, outcome, now_ms)?;
    outbox::record_outcome(conn, Target::DigestMembers, id, attempts, outcome, now_ms)
}
