//! Finding out about particular jobs: the tracked active jobs that no listing showed (they
//! finished or were deleted), and the projects of jobs whose rows do not say. Both list the
//! jobs' exact creation dates (a listing of one date returns the job with every list
//! field for the price of a detail request) and fall back to the detail endpoint.

use std::collections::HashMap;

use tracing::{debug, warn};

use super::change::Watched;
use super::cycle::{Active, Cycle, CycleError};
use super::plan;
use super::tracker;
use crate::domain::time::now_ms;
use crate::sdm::ApiError;
use crate::store::jobs;

impl Cycle<'_> {
    /// Looks up every watched active job that no listing of this cycle showed: by listing
    /// its creation date (or a range of them), else by its detail. A job the API no longer
    /// has is forgotten; one that cannot be looked up now is tried again on its own backoff.
    pub async fn look_up(&mut self, active: &Active) -> Result<(), CycleError> {
        let due = plan::to_look_up(
            active,
            &self.seen,
            |job| self.watched(job) != Watched::No,
            now_ms(),
        );
        if due.is_empty() {
            return Ok(());
        }
        let dates: Vec<i64> = due.iter().filter_map(|a| a.job.created_us).collect();
        for (first, last) in self.ranges(dates).await? {
            self.read_listing(&plan::range_listing(first, last, None))
                .await?;
        }
        let missing: Vec<_> = due
            .into_iter()
            .filter(|a| !self.seen.contains(&a.job.id))
            .collect();
        let backoff = self.config.retry.backoff();
        for active in missing {
            let old = &active.job;
            match self.quick.job(&old.id).await {
                Ok(detail) => {
                    let mut job = tracker::job_from_record(old);
                    job.status = detail.status;
                    job.message = detail.message;
                    job.step = detail.step;
                    let recorded = HashMap::from([(old.id.clone(), old.clone())]);
                    let changes = tracker::plan(vec![job], &recorded, &self.rules);
                    let recovered = if active.lookup_attempts > 0 {
                        vec![old.id.clone()]
                    } else {
                        Vec::new()
                    };
                    self.commit(changes, &recorded, Vec::new(), recovered)
                        .await?;
                }
                Err(ApiError::NotFound { .. }) => {
                    self.commit(Vec::new(), &HashMap::new(), vec![old.clone()], Vec::new())
                        .await?;
                }
                Err(error) => {
                    let attempts = active.lookup_attempts + 1;
                    let wait = backoff.after_attempt(attempts);
                    let error = crate::domain::error_chain(&error);
                    if attempts == 1 {
                        warn!(job_id = %old.id, error = %error, retry_in_ms = wait.as_millis() as u64, "cannot look up a job no listing showed; it is retried on its own backoff");
                    } else {
                        debug!(job_id = %old.id, attempts, error = %error, "a job's lookup failed again");
                    }
                    let id = old.id.clone();
                    let next = crate::domain::time::after_ms(now_ms(), wait);
                    let org = self.org_name();
                    self.timed(move |conn| {
                        jobs::lookup_failed(conn, &org, &id, attempts, next, &error)
                    })
                    .await?;
                }
            }
        }
        Ok(())
    }

    /// Learns which of the projects the configuration names each of `targets` (job ids and
    /// creation dates, µs) belongs to, by listing their creation dates filtered by each
    /// project in turn. A job found in none is recorded as such.
    pub async fn resolve_projects(
        &mut self,
        targets: Vec<(String, i64)>,
    ) -> Result<(), CycleError> {
        let mut missing: HashMap<String, i64> = targets.into_iter().collect();
        let interest = self.interest.clone();
        for project in interest {
            if missing.is_empty() {
                break;
            }
            let dates: Vec<i64> = missing.values().copied().collect();
            for (first, last) in self.ranges(dates).await? {
                self.read_listing(&plan::range_listing(first, last, Some(project)))
                    .await?;
            }
            let ids: Vec<String> = missing.keys().cloned().collect();
            let org = self.org_name();
            let found = self
                .timed(move |conn| jobs::get_many(conn, &org, ids.iter().map(String::as_str)))
                .await?;
            missing.retain(|id, _| found.get(id).is_none_or(|job| job.project.is_none()));
        }
        let none: Vec<String> = missing.into_keys().collect();
        if !none.is_empty() {
            let org = self.org_name();
            self.timed(move |conn| {
                conn.transaction(|tx| {
                    for id in &none {
                        jobs::set_project(tx, &org, id, None)?;
                    }
                    Ok(())
                })
            })
            .await?;
        }
        Ok(())
    }

    /// The creation-date ranges that list `dates` in fewest requests.
    async fn ranges(&mut self, mut dates: Vec<i64>) -> Result<Vec<(i64, i64)>, CycleError> {
        dates.sort_unstable();
        dates.dedup();
        if dates.is_empty() {
            return Ok(Vec::new());
        }
        let page_size = self.client.effective_page_size();
        let floor_us = self.floor_us;
        let org = self.org_name();
        Ok(self
            .timed(move |conn| {
                plan::cover(&dates, page_size, floor_us, |first, last| {
                    jobs::count_created_in(conn, &org, first, last)
                })
            })
            .await?)
    }
}
