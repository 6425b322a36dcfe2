//! Status changes as the watcher saw them, for the status page: the most recent, and how
//! many came each hour. Written in the transaction that records the job's new status;
//! kept for a week.

use super::StoreError;
use super::db::Db;
use crate::domain::Status;

/// How long transitions are kept.
pub const KEEP_MS: i64 = 7 * 24 * 3600 * 1000;

/// One status change, with what the store knows of the job now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    pub organisation: String,
    pub job_id: String,
    pub name: Option<String>,
    pub project: Option<i64>,
    /// `None`: the job was new to the watcher.
    pub previous: Option<Status>,
    pub status: Status,
    pub at_ms: i64,
}

/// Records that `job_id` went from `previous` to `status` at `at_ms`.
pub fn record(
    conn: &mut dyn Db,
    org: &str,
    job_id: &str,
    previous: Option<&Status>,
    status: &Status,
    at_ms: i64,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO transitions (job_id, previous, status, at_ms, organisation)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        &[&job_id, &previous, &status, &at_ms, &org],
    )?;
    Ok(())
}

/// Forgets transitions older than a week before `now_ms`.
pub fn prune(conn: &mut dyn Db, now_ms: i64) -> Result<usize, StoreError> {
    conn.execute(
        "DELETE FROM transitions WHERE at_ms < ?1",
        &[&(now_ms - KEEP_MS)],
    )
}

/// The `limit` most recent transitions, newest first.
pub fn recent(conn: &mut dyn Db, limit: usize) -> Result<Vec<Transition>, StoreError> {
    conn.query_map(
        "SELECT t.job_id, j.name, j.project, t.previous, t.status, t.at_ms, t.organisation
         FROM transitions t
         LEFT JOIN jobs j ON j.organisation = t.organisation AND j.id = t.job_id
         ORDER BY t.at_ms DESC, t.seq DESC LIMIT ?1",
        &[&limit],
        |row| {
            Ok(Transition {
                job_id: row.get(0)?,
                name: row.get(1)?,
                project: row.get(2)?,
                previous: row.get(3)?,
                status: row.get(4)?,
                at_ms: row.get(5)?,
                organisation: row.get(6)?,
            })
        },
    )
}

/// Transitions in each of the `hours` whole hours ending with the one holding `now_ms`,
/// oldest hour first.
pub fn per_hour(conn: &mut dyn Db, now_ms: i64, hours: usize) -> Result<Vec<u64>, StoreError> {
    const HOUR: i64 = 3600 * 1000;
    let current = now_ms.div_euclid(HOUR);
    let first = current - hours as i64 + 1;
    let mut counts = vec![0u64; hours];
    let rows = conn.query(
        "SELECT at_ms / 3600000 AS hour, COUNT(*) FROM transitions
         WHERE at_ms >= ?1 GROUP BY hour",
        &[&(first * HOUR)],
    )?;
    for row in rows {
        let (hour, count) = (row.get::<i64>(0)?, row.get::<i64>(1)?);
        if let Some(slot) = usize::try_from(hour - first).ok().filter(|i| *i < hours) {
            counts[slot] = count as u64;
        }
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    #[tokio::test]
    async fn counts_per_hour_and_lists_the_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db")).unwrap();
        let hour = 3_600_000;
        let now = 1_000 * hour + 10;
        store
            .run(move |conn| {
                record(conn, "o", "a", None, &Status::Running, now - 30 * hour)?;
                record(
                    conn,
                    "o",
                    "a",
                    Some(&Status::Running),
                    &Status::Done,
                    now - 2 * hour,
                )?;
                record(conn, "o", "b", None, &Status::Error, now - 2 * hour + 5)?;
                record(
                    conn,
                    "o",
                    "c",
                    Some(&Status::Running),
                    &Status::Pending,
                    now,
                )?;
                let counts = per_hour(conn, now, 24)?;
                assert_eq!(counts.len(), 24);
                assert_eq!(counts[23], 1);
                assert_eq!(counts[21], 2);
                assert_eq!(counts.iter().sum::<u64>(), 3, "the 30 h old one is outside");
                let recent = recent(conn, 2)?;
                assert_eq!(recent[0].job_id, "c");
                assert_eq!(recent[1].job_id, "b");
                assert_eq!(prune(conn, now + 6 * 24 * hour)?, 1);
                Ok(())
            })
            .await
            .unwrap();
    }
}
