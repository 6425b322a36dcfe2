//! The gauges the store answers: tracked jobs by status, alerts waiting for delivery.

use super::db::Db;
use super::{StoreError, inspect, jobs, outbox};
use crate::domain::Status;
use crate::telemetry::{JOBS_TRACKED, OUTBOX_PENDING};

/// Sets `jobs_tracked{status,organisation}` of `orgs` and `outbox_pending` from the store.
pub fn set_all(conn: &mut dyn Db, orgs: &[String]) -> Result<(), StoreError> {
    let counts = jobs::count_by_status(conn)?;
    for org in orgs {
        // Known statuses always appear, at zero when no job is in them any more.
        for status in Status::KNOWN {
            let count = counts
                .iter()
                .find(|(of, counted, _)| of == org && *counted == status)
                .map_or(0, |(_, _, count)| *count);
            metrics::gauge!(JOBS_TRACKED, "status" => status.to_string(), "organisation" => org.clone())
                .set(count as f64);
        }
        for (_, status, count) in counts
            .iter()
            .filter(|(of, status, _)| of == org && !Status::KNOWN.contains(status))
        {
            metrics::gauge!(JOBS_TRACKED, "status" => status.to_string(), "organisation" => org.clone())
                .set(*count as f64);
        }
    }
    set_outbox_pending(conn)
}

pub fn set_outbox_pending(conn: &mut dyn Db) -> Result<(), StoreError> {
    let pending = inspect::count(conn, outbox::AlertState::Pending)?;
    metrics::gauge!(OUTBOX_PENDING).set(pending as f64);
    Ok(())
}
