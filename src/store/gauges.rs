//! The gauges the store answers: tracked jobs by status, alerts waiting for delivery.

use super::db::Db;
use super::{StoreError, inspect, jobs, outbox};
use crate::domain::Status;
use crate::telemetry::{JOBS_TRACKED, OUTBOX_PENDING};

/// Sets `jobs_tracked{status}` and `outbox_pending` from the store.
pub fn set_all(conn: &mut dyn Db) -> Result<(), StoreError> {
    let counts = jobs::count_by_status(conn)?;
    // Known statuses always appear, at zero when no job is in them any more.
    for status in Status::KNOWN {
        if !counts.iter().any(|(counted, _)| *counted == status) {
            metrics::gauge!(JOBS_TRACKED, "status" => status.to_string()).set(0.0);
        }
    }
    for (status, count) in counts {
        metrics::gauge!(JOBS_TRACKED, "status" => status.to_string()).set(count as f64);
    }
    set_outbox_pending(conn)
}

pub fn set_outbox_pending(conn: &mut dyn Db) -> Result<(), StoreError> {
    let pending = inspect::count(conn, outbox::AlertState::Pending)?;
    metrics::gauge!(OUTBOX_PENDING).set(pending as f64);
    Ok(())
}
