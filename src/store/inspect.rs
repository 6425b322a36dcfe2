//! The outbox as operators look at it: `alerts list`, `alerts show` (every attempt),
//! `alerts retry`, the counts of `state`, the status page and the gauges.

use super::StoreError;
use super::db::Db;
use super::outbox::{Alert, AlertState, COLUMNS, from_row};

/// One delivery attempt of an alert or a digest, for `alerts show`.
#[derive(Clone, Debug, PartialEq)]
pub struct AttemptRecord {
    pub at_ms: i64,
    pub outcome: String,
    pub error: Option<String>,
}

/// Every attempt of alert or digest `id`, first first.
pub fn attempts(conn: &mut dyn Db, id: &str) -> Result<Vec<AttemptRecord>, StoreError> {
    conn.query_map(
        "SELECT at_ms, outcome, error FROM attempts WHERE alert_id = ?1 ORDER BY seq",
        &[&id],
        |row| {
            Ok(AttemptRecord {
                at_ms: row.get(0)?,
                outcome: row.get(1)?,
                error: row.get(2)?,
            })
        },
    )
}

/// Which alerts `alerts list` shows.
#[derive(Clone, Debug, Default)]
pub struct Query {
    pub state: Option<AlertState>,
    pub channel: Option<String>,
    /// Only the alerts of this organisation.
    pub organisation: Option<String>,
    pub since_ms: Option<i64>,
    pub limit: usize,
}

/// Alerts matching `query`, newest first.
pub fn list(conn: &mut dyn Db, query: &Query) -> Result<Vec<Alert>, StoreError> {
    conn.query_map(
        &format!(
            "SELECT {COLUMNS} FROM alerts
             WHERE (CAST(?1 AS TEXT) IS NULL OR state = ?1)
               AND (CAST(?2 AS TEXT) IS NULL OR channel = ?2)
               AND (CAST(?3 AS BIGINT) IS NULL OR created_ms >= ?3)
               AND (CAST(?5 AS TEXT) IS NULL OR organisation = ?5)
             ORDER BY created_ms DESC, id DESC LIMIT ?4"
        ),
        &[
            &query.state,
            &query.channel,
            &query.since_ms,
            &query.limit,
            &query.organisation,
        ],
        from_row,
    )
}

/// The `limit` oldest alerts in `state`, oldest first.
pub fn oldest(
    conn: &mut dyn Db,
    state: AlertState,
    limit: usize,
) -> Result<Vec<Alert>, StoreError> {
    conn.query_map(
        &format!(
            "SELECT {COLUMNS} FROM alerts WHERE state = ?1
             ORDER BY created_ms, id LIMIT ?2"
        ),
        &[&state, &limit],
        from_row,
    )
}

pub fn count(conn: &mut dyn Db, state: AlertState) -> Result<u64, StoreError> {
    Ok(conn
        .query_one("SELECT COUNT(*) FROM alerts WHERE state = ?1", &[&state])?
        .get::<i64>(0)? as u64)
}

/// How many alerts of organisation `org` are in `state`.
pub fn count_of(conn: &mut dyn Db, state: AlertState, org: &str) -> Result<u64, StoreError> {
    Ok(conn
        .query_one(
            "SELECT COUNT(*) FROM alerts WHERE state = ?1 AND organisation = ?2",
            &[&state, &org],
        )?
        .get::<i64>(0)? as u64)
}

/// Queues dead alert `id` again: the same id, attempts from zero, `delivery.max_age` from
/// `now_ms`; out of any digest, to be gathered into a new one if its channel groups.
/// False if it is not dead.
pub fn requeue(conn: &mut dyn Db, id: &str, now_ms: i64) -> Result<bool, StoreError> {
    Ok(conn.execute(
        "UPDATE alerts SET state = 'pending', attempts = 0, next_attempt_ms = ?2,
             last_error = NULL, finished_ms = NULL, digest_id = NULL, requeued_ms = ?2,
             claimed_by = NULL, claim_until_ms = NULL
         WHERE id = ?1 AND state = 'dead'",
        &[&id, &now_ms],
    )? == 1)
}
