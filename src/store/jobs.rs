//! Tracked jobs: each job's last recorded status and details, and the watcher's bookkeeping.

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::StoreError;

/// A job as last recorded.
#[derive(Clone, Debug, PartialEq)]
pub struct TrackedJob {
    pub id: String,
    pub status: String,
    pub name: Option<String>,
    pub project: Option<i64>,
    pub creation_date: Option<String>,
    pub completion_date: Option<String>,
    /// `creation_date` parsed, in microseconds since the epoch.
    pub created_us: Option<i64>,
    pub message: Option<String>,
    /// The job's `step` as JSON text.
    pub step: Option<String>,
}

const COLUMNS: &str =
    "id, status, name, project, creation_date, completion_date, created_us, message, step";

fn from_row(row: &Row<'_>) -> rusqlite::Result<TrackedJob> {
    Ok(TrackedJob {
        id: row.get(0)?,
        status: row.get(1)?,
        name: row.get(2)?,
        project: row.get(3)?,
        creation_date: row.get(4)?,
        completion_date: row.get(5)?,
        created_us: row.get(6)?,
        message: row.get(7)?,
        step: row.get(8)?,
    })
}

/// The recorded state of each of `ids` that is known.
pub fn get_many<'a>(
    conn: &Connection,
    ids: impl IntoIterator<Item = &'a str>,
) -> Result<HashMap<String, TrackedJob>, StoreError> {
    let mut statement =
        conn.prepare_cached(&format!("SELECT {COLUMNS} FROM jobs WHERE id = ?1"))?;
    let mut found = HashMap::new();
    for id in ids {
        if let Some(job) = statement.query_row([id], from_row).optional()? {
            found.insert(job.id.clone(), job);
        }
    }
    Ok(found)
}

/// Records `job`, replacing what was known of it.
pub fn upsert(conn: &Connection, job: &TrackedJob, now_ms: i64) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO jobs (id, status, name, project, creation_date, completion_date, created_us,
                           message, step, first_seen_ms, changed_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)
         ON CONFLICT (id) DO UPDATE SET
            status = excluded.status, name = excluded.name, project = excluded.project,
            creation_date = excluded.creation_date, completion_date = excluded.completion_date,
            created_us = excluded.created_us, message = excluded.message, step = excluded.step,
            changed_ms = excluded.changed_ms",
    )?
    .execute(params![
        job.id,
        job.status,
        job.name,
        job.project,
        job.creation_date,
        job.completion_date,
        job.created_us,
        job.message,
        job.step,
        now_ms
    ])?;
    Ok(())
}

pub fn delete(conn: &Connection, id: &str) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM jobs WHERE id = ?1")?
        .execute([id])?;
    Ok(())
}

/// Jobs last seen in a status other than `done` or `error` (`running`, `pending`, or one
/// this version does not know): the ones that can still change. Read through the partial
/// index `jobs_active`, so the cost follows the active jobs, not the history.
pub fn active(conn: &Connection) -> Result<Vec<TrackedJob>, StoreError> {
    let mut statement = conn.prepare_cached(&active_query())?;
    let jobs = statement
        .query_map([], from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(jobs)
}

fn active_query() -> String {
    format!("SELECT {COLUMNS} FROM jobs WHERE status NOT IN ('done', 'error') ORDER BY created_us")
}

/// How many tracked jobs were created strictly between `after_us` and `before_us`.
pub fn count_created_between(
    conn: &Connection,
    after_us: i64,
    before_us: i64,
) -> Result<u64, StoreError> {
    Ok(conn
        .prepare_cached("SELECT COUNT(*) FROM jobs WHERE created_us > ?1 AND created_us < ?2")?
        .query_row([after_us, before_us], |row| row.get::<_, i64>(0))? as u64)
}

/// How many tracked jobs are in each status.
pub fn count_by_status(conn: &Connection) -> Result<Vec<(String, u64)>, StoreError> {
    let mut statement =
        conn.prepare_cached("SELECT status, COUNT(*) FROM jobs GROUP BY status ORDER BY status")?;
    let counts = statement
        .query_map([], |row| Ok((row.get(0)?, row.get::<_, i64>(1)? as u64)))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(counts)
}

pub fn get_meta(conn: &Connection, key: &str) -> Result<Option<String>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT value FROM meta WHERE key = ?1")?
        .query_row([key], |row| row.get(0))
        .optional()?)
}

pub fn set_meta(conn: &Connection, key: &str, value: &str) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )?
    .execute([key, value])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn active_jobs_are_read_through_the_partial_index_not_a_scan() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(&dir.path().join("state.db")).unwrap();
        let conn = store.conn.lock().unwrap();
        let plan: Vec<String> = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {}", active_query()))
            .unwrap()
            .query_map([], |row| row.get::<_, String>(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(plan, ["SCAN jobs USING INDEX jobs_active"], "{plan:?}");
    }
}
