//! A report read from the store: the jobs created in the period streamed through an
//! [`Accumulator`] one at a time, then the jobs waiting now.

use time::OffsetDateTime;

use super::{Accumulator, Finished, Report, Waiting};
use crate::domain::time::{from_millis, micros, rfc3339_seconds};
use crate::store::StoreError;
use crate::store::db::Db;
use crate::store::history::{self, Scope};

/// The start of a period of `span` ending at `until` (the epoch at the latest).
pub fn period_start(until: OffsetDateTime, span: std::time::Duration) -> OffsetDateTime {
    time::Duration::try_from(span)
        .ok()
        .and_then(|span| until.checked_sub(span))
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
        .max(OffsetDateTime::UNIX_EPOCH)
}

/// The report of the jobs of `scope` created from `since` on, as of `until`.
pub fn read(
    conn: &mut dyn Db,
    scope: &Scope,
    since: OffsetDateTime,
    until: OffsetDateTime,
) -> Result<Report, StoreError> {
    let mut acc = Accumulator::default();
    history::created_since(conn, scope, micros(since), &mut |job| {
        if let Some(finished) = Finished::of(job) {
            acc.finished(finished);
        }
        Ok(())
    })?;
    for job in history::pending(conn, scope)? {
        acc.waiting(Waiting {
            since: job.since_ms.and_then(from_millis).map(rfc3339_seconds),
            organisation: job.organisation,
            id: job.id,
            name: job.name,
            project: job.project,
        });
    }
    Ok(acc.report(rfc3339_seconds(since), rfc3339_seconds(until)))
}
