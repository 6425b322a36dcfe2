//! Held changes: a change that alerts but waits for what only another request can tell
//! (an error's message, the job's project, a done job's rows). Written in the transaction
//! that records the job's new status, so that a crash loses neither; deleted in the one
//! that queues its alerts.

use super::StoreError;
use super::db::{Db, DbRow};

/// A held change. `change` is the watcher's own JSON; the store does not read it.
#[derive(Clone, Debug, PartialEq)]
pub struct Held {
    /// Held changes of one job are turned into alerts in this order.
    pub seq: i64,
    pub job_id: String,
    pub change: String,
    /// When it was first held (Unix ms): it is given up on `retry.max_elapsed` later.
    pub held_ms: i64,
    pub attempts: u32,
    pub next_attempt_ms: i64,
    pub last_error: Option<String>,
}

const COLUMNS: &str = "seq, job_id, change, held_ms, attempts, next_attempt_ms, last_error";

fn from_row(row: &DbRow) -> Result<Held, StoreError> {
    Ok(Held {
        seq: row.get(0)?,
        job_id: row.get(1)?,
        change: row.get(2)?,
        held_ms: row.get(3)?,
        attempts: row.get(4)?,
        next_attempt_ms: row.get(5)?,
        last_error: row.get(6)?,
    })
}

pub fn insert(
    conn: &mut dyn Db,
    org: &str,
    job_id: &str,
    change: &str,
    now_ms: i64,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO held (job_id, change, held_ms, next_attempt_ms, organisation)
         VALUES (?1, ?2, ?3, ?3, ?4)",
        &[&job_id, &change, &now_ms, &org],
    )?;
    Ok(())
}

/// Whether `job_id` has a held change (a later change of the job is held behind it, so
/// that its alerts keep their order).
pub fn has_job(conn: &mut dyn Db, org: &str, job_id: &str) -> Result<bool, StoreError> {
    conn.query_one(
        "SELECT EXISTS (SELECT 1 FROM held WHERE organisation = ?2 AND job_id = ?1)",
        &[&job_id, &org],
    )?
    .get(0)
}

/// Every held change of `org`, in order.
pub fn all(conn: &mut dyn Db, org: &str) -> Result<Vec<Held>, StoreError> {
    conn.query_map(
        &format!("SELECT {COLUMNS} FROM held WHERE organisation = ?1 ORDER BY seq"),
        &[&org],
        from_row,
    )
}

/// Records a failed attempt to complete `seq`, with what it learnt so far in `change`.
pub fn attempt_failed(
    conn: &mut dyn Db,
    seq: i64,
    change: &str,
    attempts: u32,
    next_attempt_ms: i64,
    error: &str,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE held SET change = ?2, attempts = ?3, next_attempt_ms = ?4, last_error = ?5
         WHERE seq = ?1",
        &[&seq, &change, &attempts, &next_attempt_ms, &error],
    )?;
    Ok(())
}

pub fn delete(conn: &mut dyn Db, seq: i64) -> Result<(), StoreError> {
    conn.execute("DELETE FROM held WHERE seq = ?1", &[&seq])?;
    Ok(())
}

pub fn count(conn: &mut dyn Db) -> Result<u64, StoreError> {
    Ok(conn
        .query_one("SELECT COUNT(*) FROM held", &[])?
        .get::<i64>(0)? as u64)
}
