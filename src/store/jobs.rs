//! Tracked jobs: each job's last recorded status and details, and the per-job lookups that
//! failed.

use std::collections::HashMap;

use super::StoreError;
use super::db::{Db, DbRow, ToValue};
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
    /// `completion_date` parsed, in microseconds since the epoch.
    pub completed_us: Option<i64>,
    /// Time spent pending in the stretches that ended (ms, the watcher's clock); a
    /// stretch in progress is counted from `since_ms` by whoever reads it.
    pub pending_ms: i64,
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
    pub organisation: String,
    pub id: String,
    pub status: Status,
    pub attempts: u32,
    pub next_ms: i64,
    pub error: String,
}

const COLUMNS: &str = "id, status, name, project, project_checked, creation_date, \
     completion_date, created_us, message, step, since_ms, reminders, completed_us, pending_ms";

/// How many columns `COLUMNS` names: a query that selects more reads them from here on.
const COLUMN_COUNT: usize = 14;

fn from_row(row: &DbRow) -> Result<TrackedJob, StoreError> {
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
        completed_us: row.get(12)?,
        pending_ms: row.get(13)?,
    })
}

/// The recorded state of each of `ids` that is known.
pub fn get_many<'a>(
    conn: &mut dyn Db,
    org: &str,
    ids: impl IntoIterator<Item = &'a str>,
) -> Result<HashMap<String, TrackedJob>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM jobs WHERE organisation = ?1 AND id = ?2");
    let mut found = HashMap::new();
    for id in ids {
        if let Some(row) = conn.query_opt(&sql, &[&org, &id])? {
            let job = from_row(&row)?;
            found.insert(job.id.clone(), job);
        }
    }
    Ok(found)
}

pub fn get(conn: &mut dyn Db, org: &str, id: &str) -> Result<Option<TrackedJob>, StoreError> {
    Ok(get_many(conn, org, [id])?.remove(id))
}

/// Records `job`, replacing what was known of it. Seeing a job ends its failed lookups.
pub fn upsert(
    conn: &mut dyn Db,
    org: &str,
    job: &TrackedJob,
    now_ms: i64,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO jobs (id, status, name, project, project_checked, creation_date,
                           completion_date, created_us, message, step, since_ms, reminders,
                           first_seen_ms, changed_ms, organisation, completed_us, pending_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?13, ?14, ?15, ?16)
         ON CONFLICT (organisation, id) DO UPDATE SET
            status = excluded.status, name = excluded.name, project = excluded.project,
            project_checked = excluded.project_checked, creation_date = excluded.creation_date,
            completion_date = excluded.completion_date, created_us = excluded.created_us,
            message = excluded.message, step = excluded.step, since_ms = excluded.since_ms,
            reminders = excluded.reminders, changed_ms = excluded.changed_ms,
            completed_us = excluded.completed_us, pending_ms = excluded.pending_ms,
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
            &org,
            &job.completed_us,
            &job.pending_ms,
        ],
    )?;
    Ok(())
}

/// Forgets the settled jobs of `org` (neither running nor pending) created before
/// `before_us`: `[state] keep`. Jobs whose creation is unknown are kept, and so are jobs
/// whose alert still waits for details (it needs their record to complete).
pub fn forget_created_before(
    conn: &mut dyn Db,
    org: &str,
    before_us: i64,
) -> Result<usize, StoreError> {
    conn.execute(
        "DELETE FROM jobs WHERE organisation = ?1 AND created_us < ?2
           AND status <> 'running' AND status <> 'pending'
           AND NOT EXISTS (SELECT 1 FROM held
                           WHERE held.organisation = jobs.organisation AND held.job_id = jobs.id)",
        &[&org, &before_us],
    )
}

pub fn delete(conn: &mut dyn Db, org: &str, id: &str) -> Result<(), StoreError> {
    conn.execute(
        "DELETE FROM jobs WHERE organisation = ?1 AND id = ?2",
        &[&org, &id],
    )?;
    Ok(())
}

/// Jobs last seen `running` or `pending`, the ones every cycle re-reads. Read through the
/// index `jobs_by_status`, so the cost follows the active jobs, not the history.
pub fn active(conn: &mut dyn Db, org: &str) -> Result<Vec<ActiveJob>, StoreError> {
    conn.query_map(&active_query(), &[&org], |row| {
        Ok(ActiveJob {
            job: from_row(row)?,
            lookup_attempts: row.get(COLUMN_COUNT)?,
            lookup_next_ms: row.get(COLUMN_COUNT + 1)?,
        })
    })
}

fn active_query() -> String {
    format!(
        "SELECT {COLUMNS}, lookup_attempts, lookup_next_ms FROM jobs
         WHERE organisation = ?1 AND status IN ('running', 'pending')"
    )
}

/// The `limit` jobs of `org` running or pending the longest, oldest first: when the
/// watcher first saw them in that status (or, before that was kept, when they last changed).
pub fn active_oldest_first(
    conn: &mut dyn Db,
    org: &str,
    limit: usize,
) -> Result<Vec<TrackedJob>, StoreError> {
    select(
        conn,
        "organisation = ?2 AND status IN ('running', 'pending')
         ORDER BY COALESCE(since_ms, changed_ms), id LIMIT ?1",
        &[&limit, &org],
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
    org: &str,
    now_ms: i64,
    every_ms: i64,
) -> Result<Vec<TrackedJob>, StoreError> {
    select(
        conn,
        "organisation = ?3 AND status = 'pending' AND since_ms IS NOT NULL
         AND since_ms + (reminders + 1) * ?2 <= ?1",
        &[&now_ms, &every_ms, &org],
    )
}

/// Running jobs that have run `longer_ms` by `now_ms` and were not told so yet.
pub fn due_running_long(
    conn: &mut dyn Db,
    org: &str,
    now_ms: i64,
    longer_ms: i64,
) -> Result<Vec<TrackedJob>, StoreError> {
    select(
        conn,
        "organisation = ?3 AND status = 'running' AND since_ms IS NOT NULL AND reminders = 0
         AND since_ms + ?2 <= ?1",
        &[&now_ms, &longer_ms, &org],
    )
}

/// Running jobs of a known project, created at a known time, that were not told of as
/// running long yet: what the adaptive rule (`poll.running_longer_than_usual`) judges.
pub fn running_untold(conn: &mut dyn Db, org: &str) -> Result<Vec<TrackedJob>, StoreError> {
    select(
        conn,
        "organisation = ?1 AND status = 'running' AND reminders = 0
         AND project IS NOT NULL AND created_us IS NOT NULL",
        &[&org],
    )
}

/// How long (creation to completion, µs) each of the last `limit` completed (`done` or
/// `error`) jobs of `project` ran, the latest completion first.
pub fn recent_runs(
    conn: &mut dyn Db,
    org: &str,
    project: ProjectId,
    limit: usize,
) -> Result<Vec<i64>, StoreError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    conn.query_map(
        "SELECT completed_us - created_us FROM jobs
          WHERE organisation = ?1 AND project = ?2 AND completed_us IS NOT NULL
            AND created_us IS NOT NULL AND completed_us >= created_us
            AND (status = 'done' OR status = 'error')
          ORDER BY completed_us DESC LIMIT ?3",
        &[&org, &project, &limit],
        |row| row.get(0),
    )
}

/// Keeps the error message read from `id`'s detail with the job, while it is still in
/// the error that message came with and no message is recorded (reports group them).
pub fn keep_error_message(
    conn: &mut dyn Db,
    org: &str,
    id: &str,
    message: &str,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE jobs SET message = ?3
          WHERE organisation = ?1 AND id = ?2 AND status = 'error' AND message IS NULL",
        &[&org, &id, &message],
    )?;
    Ok(())
}

/// Records that `reminders` reminders went out for `id`'s current stretch.
pub fn set_reminders(
    conn: &mut dyn Db,
    org: &str,
    id: &str,
    reminders: u32,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE jobs SET reminders = ?2 WHERE organisation = ?3 AND id = ?1",
        &[&id, &reminders, &org],
    )?;
    Ok(())
}

/// Whether any tracked job is `running` (the cycles then run at `poll.active_interval`).
pub fn any_running(conn: &mut dyn Db, org: &str) -> Result<bool, StoreError> {
    conn.query_one(
        "SELECT EXISTS (SELECT 1 FROM jobs WHERE organisation = ?1 AND status = 'running')",
        &[&org],
    )?
    .get(0)
}

/// Records that looking `id` up failed: tried again from `next_ms`.
pub fn lookup_failed(
    conn: &mut dyn Db,
    org: &str,
    id: &str,
    attempts: u32,
    next_ms: i64,
    error: &str,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE jobs SET lookup_attempts = ?2, lookup_next_ms = ?3, lookup_error = ?4
         WHERE organisation = ?5 AND id = ?1",
        &[&id, &attempts, &next_ms, &error, &org],
    )?;
    Ok(())
}

/// Forgets the failed lookups of `id` (a listing showed it again).
pub fn lookup_recovered(conn: &mut dyn Db, org: &str, id: &str) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE jobs SET lookup_attempts = 0, lookup_next_ms = NULL, lookup_error = NULL
         WHERE organisation = ?2 AND id = ?1",
        &[&id, &org],
    )?;
    Ok(())
}

/// Jobs whose last lookup failed, most attempts first, at most `limit`.
pub fn failed_lookups(conn: &mut dyn Db, limit: usize) -> Result<Vec<FailedLookup>, StoreError> {
    conn.query_map(
        "SELECT id, status, lookup_attempts, lookup_next_ms, lookup_error, organisation FROM jobs
         WHERE lookup_attempts > 0 ORDER BY lookup_attempts DESC, organisation, id LIMIT ?1",
        &[&limit],
        |row| {
            Ok(FailedLookup {
                id: row.get(0)?,
                status: row.get(1)?,
                attempts: row.get(2)?,
                next_ms: row.get::<Option<i64>>(3)?.unwrap_or_default(),
                error: row.get::<Option<String>>(4)?.unwrap_or_default(),
                organisation: row.get(5)?,
            })
        },
    )
}

/// Records what a listing filtered by project showed: `project` is `id`'s project (or,
/// `None`, the job is in none of the projects asked).
pub fn set_project(
    conn: &mut dyn Db,
    org: &str,
    id: &str,
    project: Option<ProjectId>,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE jobs SET project = ?2, project_checked = 1 WHERE organisation = ?3 AND id = ?1",
        &[&id, &project, &org],
    )?;
    Ok(())
}

/// Forgets every "in none of the projects" finding: the projects named changed.
pub fn uncheck_missing_projects(conn: &mut dyn Db, org: &str) -> Result<usize, StoreError> {
    conn.execute(
        "UPDATE jobs SET project_checked = 0
         WHERE organisation = ?1 AND project IS NULL AND project_checked = 1",
        &[&org],
    )
}

/// How many tracked jobs were created from `first_us` to `last_us`, both included.
pub fn count_created_in(
    conn: &mut dyn Db,
    org: &str,
    first_us: i64,
    last_us: i64,
) -> Result<u64, StoreError> {
    Ok(conn
        .query_one(
            "SELECT COUNT(*) FROM jobs
             WHERE organisation = ?3 AND created_us >= ?1 AND created_us <= ?2",
            &[&first_us, &last_us, &org],
        )?
        .get::<i64>(0)? as u64)
}

/// How many tracked jobs each organisation has in each status.
pub fn count_by_status(conn: &mut dyn Db) -> Result<Vec<(String, Status, u64)>, StoreError> {
    conn.query_map(
        "SELECT organisation, status, COUNT(*) FROM jobs
         GROUP BY organisation, status ORDER BY organisation, status",
        &[],
        |row| Ok((row.get(0)?, row.get(1)?, row.get::<i64>(2)? as u64)),
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
            .query(
                &format!("EXPLAIN QUERY PLAN {}", active_query()),
                &[&"default"],
            )
            .unwrap()
            .iter()
            .map(|row| row.get::<String>(3).unwrap())
            .collect();
        assert_eq!(
            plan,
            ["SEARCH jobs USING INDEX jobs_by_status (organisation=? AND status=?)"],
            "{plan:?}"
        );
    }
}
