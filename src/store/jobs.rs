//! Tracked jobs: each job's last recorded status and details, and the per-job lookups that
//! failed.

use std::collections::HashMap;

use super::StoreError;
use super::db::{Db, Row, ToValue};
use crate::domain::{ProjectId, Status};

/// A job as last recorded.
#[derive(Clone, Debug, PartialEq)]
pub struct TrackedJob {
    pub id: String,
    pub status: Status,
    pub name: Option<String>,
    pub project: Option<ProjectId>,
    /// Whether `project` is known: shown by the API, or learnt from a listing filtered by
    /// project. Checked and `None` means the job is in none of the projects the
    /// configuration names.
    pub project_checked: bool,
    pub creation_date: Option<String>,
    pub completion_date: Option<String>,
    /// `creation_date` parsed, in microseconds since the epoch.
    pub created_us: Option<i64>,
    pub message: Option<String>,
    /// The job's `step` as JSON text.
    pub step: Option<String>,
    /// When the watcher first saw the job in its current status (ms, the watcher's clock):
    /// `pending_since` and `running_since` of reminders.
    pub since_ms: Option<i64>,
    /// Reminders sent in this stretch: pending reminders so far, or 1 once `running_long`
    /// went out.
    pub reminders: u32,
}

/// A running or pending job, with its failed lookups if no listing showed it lately.
#[derive(Clone, Debug, PartialEq)]
pub struct ActiveJob {
    pub job: TrackedJob,
    pub lookup_attempts: u32,
    /// When a lookup may be tried again (Unix ms); `None` when none failed.
    pub lookup_next_ms: Option<i64>,
}

/// A job that could not be looked up, for `sdm-watch state`.
#[derive(Clone, Debug, PartialEq)]
pub struct FailedLookup {
    pub id: String,
    pub status: Status,
    pub attempts: u32,
    pub next_ms: i64,
    pub error: String,
}

const COLUMNS: &str = "id, status, name, project, project_checked, creation_date, \
     completion_date, created_us, message, step, since_ms, reminders";

fn from_row(row: &Row) -> Result<TrackedJob, StoreError> {
    Ok(TrackedJob {
        id: row.get(0)?,
        status: row.get(1)?,
        name: row.get(2)?,
        project: row.get(3)?,
        project_checked: row.get(4)?,
        creation_date: row.get(5)?,
        completion_date: row.get(6)?,
        created_us: row.get(7)?,
        message: row.get(8)?,
        step: row.get(9)?,
        since_ms: row.get(10)?,
        reminders: row.get(11)?,
    })
}

/// The recorded state of each of `ids` that is known.
pub fn get_many<'a>(
    conn: &mut dyn Db,
    ids: impl IntoIterator<Item = &'a str>,
) -> Result<HashMap<String, TrackedJob>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM jobs WHERE id = ?1");
    let mut found = HashMap::new();
    for id in ids {
        if let Some(row) = conn.query_opt(&sql, &[&id])? {
            let job = from_row(&row)?;
            found.insert(job.id.clone(), job);
        }
    }
    Ok(found)
}

pub fn get(conn: &mut dyn Db, id: &str) -> Result<Option<TrackedJob>, StoreError> {
    Ok(get_many(conn, [id])?.remove(id))
}

/// Records `job`, replacing what was known of it. Seeing a job ends its failed lookups.
pub fn upsert(conn: &mut dyn Db, job: &TrackedJob, now_ms: i64) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO jobs (id, status, name, project, project_checked, creation_date,
                           completion_date, created_us, message, step, since_ms, reminders,
                           first_seen_ms, changed_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?13)
         ON CONFLICT (id) DO UPDATE SET
            status = excluded.status, name = excluded.name, project = excluded.project,
            project_checked = excluded.project_checked, creation_date = excluded.creation_date,
            completion_date = excluded.completion_date, created_us = excluded.created_us,
            message = excluded.message, step = excluded.step, since_ms = excluded.since_ms,
            reminders = excluded.reminders, changed_ms = excluded.changed_ms,
            lookup_attempts = 0, lookup_next_ms = NULL, lookup_error = NULL",
        &[
            &job.id,
            &job.status,
            &job.name,
            &job.project,
            &job.project_checked,
            &job.creation_date,
            &job.completion_date,
            &job.created_us,
            &job.message,
            &job.step,
            &job.since_ms,
            &job.reminders,
            &now_ms,
        ],
    )?;
    Ok(())
}

pub fn delete(conn: &mut dyn Db, id: &str) -> Result<(), StoreError> {
    conn.execute("DELETE FROM jobs WHERE id = ?1", &[&id])?;
    Ok(())
}

/// Jobs last seen `running` or `pending`, the ones every cycle re-reads. Read through the
/// index `jobs_by_status`, so the cost follows the active jobs, not the history.
pub fn active(conn: &mut dyn Db) -> Result<Vec<ActiveJob>, StoreError> {
    conn.query_map(&active_query(), &[], |row| {
        Ok(ActiveJob {
            job: from_row(row)?,
            lookup_attempts: row.get(12)?,
            lookup_next_ms: row.get(13)?,
        })
    })
}

fn active_query() -> String {
    format!(
        "SELECT {COLUMNS}, lookup_attempts, lookup_next_ms FROM jobs
         WHERE status IN ('running', 'pending')"
    )
}

/// The `limit` jobs running or pending the longest, oldest first: when the watcher first
/// saw them in that status (or, before that was kept, when they last changed).
pub fn active_oldest_first(conn: &mut dyn Db, limit: usize) -> Result<Vec<TrackedJob>, StoreError> {
    select(
        conn,
        "status IN ('running', 'pending') ORDER BY COALESCE(since_ms, changed_ms), id LIMIT ?1",
        &[&limit],
    )
}

/// The tracked jobs that `condition` (SQL after `WHERE`, with `params`) selects.
fn select(
    conn: &mut dyn Db,
    condition: &str,
    params: &[&dyn ToValue],
) -> Result<Vec<TrackedJob>, StoreError> {
    conn.query_map(
        &format!("SELECT {COLUMNS} FROM jobs WHERE {condition}"),
        params,
        from_row,
    )
}

/// Pending jobs whose next reminder is due at `now_ms`: `every_ms` after they became
/// pending, then every `every_ms` again.
pub fn due_pending_reminders(
    conn: &mut dyn Db,
    now_ms: i64,
    every_ms: i64,
) -> Result<Vec<TrackedJob>, StoreError> {
    select(
        conn,
        "status = 'pending' AND since_ms IS NOT NULL AND since_ms + (reminders + 1) * ?2 <= ?1",
        &[&now_ms, &every_ms],
    )
}

/// Running jobs that have run `longer_ms` by `now_ms` and were not told so yet.
pub fn due_running_long(
    conn: &mut dyn Db,
    now_ms: i64,
    longer_ms: i64,
) -> Result<Vec<TrackedJob>, StoreError> {
    select(
        conn,
        "status = 'running' AND since_ms IS NOT NULL AND reminders = 0 AND since_ms + ?2 <= ?1",
        &[&now_ms, &longer_ms],
    )
}

/// Records that `reminders` reminders went out for `id`'s current stretch.
pub fn set_reminders(conn: &mut dyn Db, id: &str, reminders: u32) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE jobs SET reminders = ?2 WHERE id = ?1",
        &[&id, &reminders],
    )?;
    Ok(())
}

/// Whether any tracked job is `running` (the cycles then run at `poll.active_interval`).
pub fn any_running(conn: &mut dyn Db) -> Result<bool, StoreError> {
    conn.query_one(
        "SELECT EXISTS (SELECT 1 FROM jobs WHERE status = 'running')",
        &[],
    )?
    .get(0)
}

/// Records that looking `id` up failed: tried again from `next_ms`.
pub fn lookup_failed(
    conn: &mut dyn Db,
    id: &str,
    attempts: u32,
    next_ms: i64,
    error: &str,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE jobs SET lookup_attempts = ?2, lookup_next_ms = ?3, lookup_error = ?4 WHERE id = ?1",
        &[&id, &attempts, &next_ms, &error],
    )?;
    Ok(())
}

/// Forgets the failed lookups of `id` (a listing showed it again).
pub fn lookup_recovered(conn: &mut dyn Db, id: &str) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE jobs SET lookup_attempts = 0, lookup_next_ms = NULL, lookup_error = NULL
         WHERE id = ?1",
        &[&id],
    )?;
    Ok(())
}

/// Jobs whose last lookup failed, most attempts first, at most `limit`.
pub fn failed_lookups(conn: &mut dyn Db, limit: usize) -> Result<Vec<FailedLookup>, StoreError> {
    conn.query_map(
        "SELECT id, status, lookup_attempts, lookup_next_ms, lookup_error FROM jobs
         WHERE lookup_attempts > 0 ORDER BY lookup_attempts DESC, id LIMIT ?1",
        &[&limit],
        |row| {
            Ok(FailedLookup {
                id: row.get(0)?,
                status: row.get(1)?,
                attempts: row.get(2)?,
                next_ms: row.get::<Option<i64>>(3)?.unwrap_or_default(),
                error: row.get::<Option<String>>(4)?.unwrap_or_default(),
            })
        },
    )
}

/// Records what a listing filtered by project showed: `project` is `id`'s project (or,
/// `None`, the job is in none of the projects asked).
pub fn set_project(
    conn: &mut dyn Db,
    id: &str,
    project: Option<ProjectId>,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE jobs SET project = ?2, project_checked = 1 WHERE id = ?1",
        &[&id, &project],
    )?;
    Ok(())
}

/// Forgets every "in none of the projects" finding: the projects named changed.
pub fn uncheck_missing_projects(conn: &mut dyn Db) -> Result<usize, StoreError> {
    conn.execute(
        "UPDATE jobs SET project_checked = 0 WHERE project IS NULL AND project_checked = 1",
        &[],
    )
}

/// How many tracked jobs were created from `first_us` to `last_us`, both included.
pub fn count_created_in(conn: &mut dyn Db, first_us: i64, last_us: i64) -> Result<u64, StoreError> {
    Ok(conn
        .query_one(
            "SELECT COUNT(*) FROM jobs WHERE created_us >= ?1 AND created_us <= ?2",
            &[&first_us, &last_us],
        )?
        .get::<i64>(0)? as u64)
}

/// How many tracked jobs are in each status.
pub fn count_by_status(conn: &mut dyn Db) -> Result<Vec<(Status, u64)>, StoreError> {
    conn.query_map(
        "SELECT status, COUNT(*) FROM jobs GROUP BY status ORDER BY status",
        &[],
        |row| Ok((row.get(0)?, row.get::<i64>(1)? as u64)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn active_jobs_are_read_through_the_status_index_not_a_scan() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(&dir.path().join("state.db")).unwrap();
        let mut conn = store.conn.lock().unwrap();
        let plan: Vec<String> = conn
            .query(&format!("EXPLAIN QUERY PLAN {}", active_query()), &[])
            .unwrap()
            .iter()
            .map(|row| row.get::<String>(3).unwrap())
            .collect();
        assert_eq!(
            plan,
            ["SEARCH jobs USING INDEX jobs_by_status (status=?)"],
            "{plan:?}"
        );
    }
}
