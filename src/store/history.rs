//! What reports read of the recorded jobs, streamed a row at a time (a year of jobs is never
//! held whole): the jobs created since a time, and the jobs pending now.

use super::StoreError;
use super::db::{Db, DbRow};
use crate::domain::Status;

/// A recorded job, as a report reads it.
#[derive(Clone, Debug, PartialEq)]
pub struct Recorded {
    pub organisation: String,
    pub id: String,
    pub name: Option<String>,
    pub project: Option<i64>,
    pub status: Status,
    pub creation_date: Option<String>,
    pub completion_date: Option<String>,
    pub message: Option<String>,
    /// Since when the watcher has seen it in its status (ms).
    pub since_ms: Option<i64>,
    /// Time spent pending in stretches that ended (ms).
    pub pending_ms: i64,
}

/// Which jobs: of one organisation and one project, or all.
#[derive(Clone, Debug, Default)]
pub struct Scope {
    pub organisation: Option<String>,
    pub project: Option<i64>,
}

const COLUMNS: &str = "organisation, id, name, project, status, creation_date, completion_date, message, since_ms, \
     pending_ms";

fn from_row(row: &DbRow) -> Result<Recorded, StoreError> {
    Ok(Recorded {
        organisation: row.get(0)?,
        id: row.get(1)?,
        name: row.get(2)?,
        project: row.get(3)?,
        status: row.get(4)?,
        creation_date: row.get(5)?,
        completion_date: row.get(6)?,
        message: row.get(7)?,
        since_ms: row.get(8)?,
        pending_ms: row.get(9)?,
    })
}

/// Hands `each` every job of `scope` created at `since_us` or later (by the index on
/// creation), one at a time.
pub fn created_since(
    conn: &mut dyn Db,
    scope: &Scope,
    since_us: i64,
    each: &mut dyn FnMut(Recorded) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    conn.query_each(
        &format!(
            "SELECT {COLUMNS} FROM jobs WHERE created_us >= ?1
               AND (CAST(?2 AS TEXT) IS NULL OR organisation = ?2)
               AND (CAST(?3 AS BIGINT) IS NULL OR project = ?3)"
        ),
        &[&since_us, &scope.organisation, &scope.project],
        &mut |row| each(from_row(&row)?),
    )
}

/// The jobs of `scope` pending now, whenever they were created.
pub fn pending(conn: &mut dyn Db, scope: &Scope) -> Result<Vec<Recorded>, StoreError> {
    conn.query_map(
        &format!(
            "SELECT {COLUMNS} FROM jobs WHERE status = 'pending'
               AND (CAST(?1 AS TEXT) IS NULL OR organisation = ?1)
               AND (CAST(?2 AS BIGINT) IS NULL OR project = ?2)"
        ),
        &[&scope.organisation, &scope.project],
        from_row,
    )
}
