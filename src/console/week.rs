//! The page's "last 7 days by project" table, read at most once a minute. Reading it walks
//! every job created in the week (about 200 ms over 200,000 jobs, BENCHMARKS.md), while the
//! page is loaded every 30 s by each reader, and by anyone who reaches the listener; the
//! rest of the page is read afresh on every load.

use tokio::sync::Mutex;

use crate::report::ProjectLine;
use crate::store::{Store, StoreError};

/// How long the week's table is shown before it is read again (ms).
pub const WEEK_FRESH_MS: i64 = 60_000;

#[derive(Default)]
pub(super) struct Week {
    /// The last read: when (the clock's Unix ms) and what. Held while a read runs, so that
    /// the loads arriving meanwhile wait for it instead of reading the week again.
    last: Mutex<Option<(i64, Vec<ProjectLine>)>>,
}

impl Week {
    /// The table as of `now`, or as of a read less than [`WEEK_FRESH_MS`] before it (a
    /// clock that went back reads again).
    pub async fn projects(&self, store: &Store, now: i64) -> Result<Vec<ProjectLine>, StoreError> {
        let mut last = self.last.lock().await;
        if let Some((read_at, projects)) = last.as_ref()
            && (0..WEEK_FRESH_MS).contains(&now.saturating_sub(*read_at))
        {
            return Ok(projects.clone());
        }
        let projects = store
            .read(move |conn| super::status::week(conn, now))
            .await?;
        *last = Some((now, projects.clone()));
        Ok(projects)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Status;
    use crate::store::jobs::{self, TrackedJob};

    fn done(id: &str, now_ms: i64) -> TrackedJob {
        TrackedJob {
            id: id.to_owned(),
            status: Status::Done,
            name: Some(id.to_owned()),
            project: Some(7),
            project_checked: true,
            creation_date: Some("2026-12-06T10:00:00Z".to_owned()),
            completion_date: Some("2026-12-06T10:05:00Z".to_owned()),
            created_us: Some(now_ms.saturating_sub(3_600_000).saturating_mul(1000)),
            message: None,
            step: None,
            since_ms: Some(now_ms),
            reminders: 0,
            completed_us: None,
            pending_ms: 0,
        }
    }

    async fn finish(store: &Store, id: &str, now: i64) {
        let job = done(id, now);
        store
            .run(move |conn| jobs::upsert(conn, "default", &job, now))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn the_week_is_read_again_only_once_a_minute_has_passed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("state.db")).unwrap();
        let week = Week::default();
        let now = crate::domain::time::now_ms();
        let done_in_project_7 = |table: &[ProjectLine]| {
            table
                .iter()
                .find(|line| line.project == Some(7))
                .map_or(0, |line| line.done)
        };
        finish(&store, "a", now).await;
        let first = week.projects(&store, now).await.unwrap();
        assert_eq!(done_in_project_7(&first), 1, "{first:?}");

        finish(&store, "b", now).await;
        let cached = week
            .projects(&store, now + WEEK_FRESH_MS - 1)
            .await
            .unwrap();
        assert_eq!(
            done_in_project_7(&cached),
            1,
            "within the minute: {cached:?}"
        );
        let later = week.projects(&store, now + WEEK_FRESH_MS).await.unwrap();
        assert_eq!(done_in_project_7(&later), 2, "a minute on: {later:?}");

        finish(&store, "c", now).await;
        let back = week.projects(&store, now).await.unwrap();
        assert_eq!(done_in_project_7(&back), 3, "the clock went back: {back:?}");
    }
}
