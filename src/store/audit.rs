//! The audit trail: who did what to the alerts, when, from where, and how it ended; from
//! the console and the command line alike. Kept, never pruned: it is small.

use serde::Serialize;

use super::StoreError;
use super::db::{Db, DbRow};

/// One thing an operator did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Entry {
    pub at_ms: i64,
    /// The signed-in user, or the command line's user.
    pub who: String,
    /// The client's address, or `cli`.
    pub address: String,
    /// `silence.add`, `silence.end`, `alerts.retry`, `test-alert`.
    pub action: String,
    /// What it was about, in words.
    pub detail: String,
    /// `ok`, or what went wrong.
    pub outcome: String,
}

pub fn record(conn: &mut dyn Db, entry: &Entry) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO audit (at_ms, who, address, action, detail, outcome)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        &[
            &entry.at_ms,
            &entry.who,
            &entry.address,
            &entry.action,
            &entry.detail,
            &entry.outcome,
        ],
    )?;
    Ok(())
}

/// The entries from `since_ms` on, newest first, at most `limit`.
pub fn since(conn: &mut dyn Db, since_ms: i64, limit: usize) -> Result<Vec<Entry>, StoreError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    conn.query_map(
        "SELECT at_ms, who, address, action, detail, outcome FROM audit
          WHERE at_ms >= ?1 ORDER BY at_ms DESC, seq DESC LIMIT ?2",
        &[&since_ms, &limit],
        |row: &DbRow| {
            Ok(Entry {
                at_ms: row.get(0)?,
                who: row.get(1)?,
                address: row.get(2)?,
                action: row.get(3)?,
                detail: row.get(4)?,
                outcome: row.get(5)?,
            })
        },
    )
}
