//! Changes held back until their alert is complete: an error's message (only the detail
//! endpoint has it), the job's project (when rows do not carry it and the configuration
//! names projects), a done job's rows (`[output]`). Each is tried once per cycle within a
//! short budget and then on its own backoff, so that no job holds up a cycle or other
//! jobs' alerts; `retry.max_elapsed` after it was held, its alert goes out with what is
//! known. Alerts of one job are queued in the order their changes were found.

use std::collections::{HashMap, HashSet};

use tracing::{debug, warn};

use super::change::{HeldChange, Needs, Watched};
use super::cycle::{Cycle, CycleError};
use crate::domain::Status;
use crate::domain::time::now_ms;
use crate::notify::alerts;
use crate::output;
use crate::sdm::ApiError;
use crate::store::held::{self, Held};
use crate::store::jobs::{self, TrackedJob};
use crate::store::outbox::{self, Alert};

/// The job as recorded now, and the body of a resolution of it.
type Resolution = (TrackedJob, crate::notify::payload::AlertEvent);

/// One held change being worked on.
struct Item {
    row: Held,
    change: HeldChange,
    /// Why this cycle's attempt failed.
    error: Option<String>,
    /// Whether this cycle tried to complete it.
    attempted: bool,
}

/// What settling the held changes decided, committed in one transaction.
#[derive(Default)]
struct Settlement {
    /// Each change released, its alerts, and the job as recorded now with the body of a
    /// resolution: an incident its alerts open may already be over.
    released: Vec<(i64, Vec<Alert>, Option<Resolution>)>,
    /// The error messages read from details, kept with their jobs for reports.
    messages: Vec<(String, String)>,
    /// Changes still held after a failed attempt: seq, change, attempts, next try, error.
    failed: Vec<(i64, String, u32, i64, String)>,
    /// The jobs with a change still held.
    waiting: HashSet<String>,
}

impl Cycle<'_> {
    /// Tries to complete the held changes that are due (with `network`; without, only those
    /// whose wait is over go out) and queues the alerts of every one that is complete or
    /// given up on. Returns how many are still held.
    pub async fn complete_held(&mut self, network: bool) -> Result<usize, CycleError> {
        let mut items = self.held_items().await?;
        if items.is_empty() {
            return Ok(0);
        }
        let now = now_ms();
        let give_up_ms =
            i64::try_from(self.config.retry.max_elapsed.as_millis()).unwrap_or(i64::MAX);
        let last: HashMap<String, i64> = items
            .iter()
            .map(|item| (item.row.job_id.clone(), item.row.seq))
            .collect();
        let due = |item: &Item| network && item.row.next_attempt_ms <= now;
        // The projects first: they decide whether rows are wanted.
        let records = self.held_projects(&mut items, &last, &due).await?;
        for item in items.iter_mut().filter(|item| due(item)) {
            let record = records.get(&item.row.job_id);
            let needs = self.held_needs(item, record, &last);
            item.attempted |= needs.any();
            if needs.message {
                self.fetch_message(item).await;
            }
            if needs.output {
                self.fetch_output(item, record).await;
            }
        }
        self.settle_held(items, &records, &last, now, give_up_ms)
            .await
    }

    /// The organisation's held changes, in order; one that cannot be read is dropped.
    async fn held_items(&mut self) -> Result<Vec<Item>, CycleError> {
        let org = self.org_name();
        let rows = self.timed(move |conn| held::all(conn, &org)).await?;
        let mut items: Vec<Item> = Vec::with_capacity(rows.len());
        for row in rows {
            let change = match serde_json::from_str::<HeldChange>(&row.change) {
                Ok(change) => change,
                Err(error) => {
                    warn!(job_id = %row.job_id, error = %error, "a held change cannot be read; dropping it");
                    let seq = row.seq;
                    self.timed(move |conn| held::delete(conn, seq)).await?;
                    continue;
                }
            };
            items.push(Item {
                row,
                change,
                error: None,
                attempted: false,
            });
        }
        Ok(items)
    }

    /// Looks up the projects the due items wait for; the jobs as recorded after.
    async fn held_projects(
        &mut self,
        items: &mut [Item],
        last: &HashMap<String, i64>,
        due: &impl Fn(&Item) -> bool,
    ) -> Result<HashMap<String, TrackedJob>, CycleError> {
        let records = self.records(items).await?;
        let mut targets: Vec<(String, i64)> = Vec::new();
        for item in items.iter_mut().filter(|item| due(item)) {
            let record = records.get(&item.row.job_id);
            if self.held_needs(item, record, last).project {
                item.attempted = true;
                if let Some(created) = record.and_then(|r| r.created_us) {
                    targets.push((item.row.job_id.clone(), created));
                }
            }
        }
        targets.sort();
        targets.dedup();
        if targets.is_empty() {
            return Ok(records);
        }
        if let Err(error) = self.resolve_projects(targets).await {
            let CycleError::Api(error) = error else {
                return Err(error);
            };
            let error = format!(
                "cannot learn the project: {}",
                crate::domain::error_chain(&error)
            );
            for item in items.iter_mut().filter(|item| item.attempted) {
                item.error = Some(error.clone());
            }
        }
        self.records(items).await
    }

    /// Saves a done job's rows (`[output]`), if its project wants them.
    async fn fetch_output(&self, item: &mut Item, record: Option<&TrackedJob>) {
        let Some(config) = &self.config.output else {
            return;
        };
        let Some(format_id) = config.format_for(record.and_then(|r| r.project)) else {
            return;
        };
        let org = &self.org.name;
        match output::fetch(&self.quick, config, org, &item.row.job_id, format_id).await {
            Ok(saved) => item.change.output = Some(saved),
            Err(error) => {
                metrics::counter!(crate::telemetry::OUTPUT_FAILURES).increment(1);
                item.error = Some(format!(
                    "cannot fetch the output: {}",
                    crate::domain::error_chain(&error)
                ));
            }
        }
    }

    /// Queues the alerts of every held change that is complete or given up on, in order,
    /// and records the failed attempts of the others, in one transaction.
    async fn settle_held(
        &mut self,
        items: Vec<Item>,
        records: &HashMap<String, TrackedJob>,
        last: &HashMap<String, i64>,
        now: i64,
        give_up_ms: i64,
    ) -> Result<usize, CycleError> {
        let backoff = self.config.retry.backoff();
        let mut settled = Settlement::default();
        for item in items {
            let record = records.get(&item.row.job_id);
            let needs = self.held_needs(&item, record, last);
            let expired = now >= item.row.held_ms.saturating_add(give_up_ms);
            // A job's alerts keep their order: nothing passes a change still held.
            if !settled.waiting.contains(&item.row.job_id) && (!needs.any() || expired) {
                self.release(&mut settled, item, record, needs, now);
                continue;
            }
            settled.waiting.insert(item.row.job_id.clone());
            if item.attempted {
                settled
                    .failed
                    .push(retry_later(item, |n| backoff.after_attempt(n), now));
            }
        }
        let still_held = settled.waiting.len();
        if !settled.released.is_empty() || !settled.failed.is_empty() {
            self.commit_settlement(settled, now).await?;
        }
        Ok(still_held)
    }

    /// Releases `item`: its alerts (with what is known, if it was given up on), the
    /// resolution of an incident they may open, the error message to keep.
    fn release(
        &self,
        settled: &mut Settlement,
        item: Item,
        record: Option<&TrackedJob>,
        needs: Needs,
        now: i64,
    ) {
        let job_id = item.row.job_id.clone();
        if needs.any() {
            warn!(job_id = %job_id, event = %item.change.job.status, error = ?item.error.as_ref().or(item.row.last_error.as_ref()), "gave up waiting for an alert's details; it goes out with what is known");
        }
        let output_error = needs.output.then(|| {
            item.error
                .clone()
                .or(item.row.last_error.clone())
                .unwrap_or_else(|| "the rows could not be fetched in time".into())
        });
        let watched = record.map_or(Watched::Yes, |record| self.watched(record));
        let alerts = if watched == Watched::No {
            Vec::new()
        } else {
            let url = self.job_url(&job_id);
            alerts::build(
                &item.change.detected(record, url, output_error),
                &self.org.name,
                self.config,
                &self.silences,
                now,
            )
        };
        let resolution = record.map(|record| {
            let job = super::tracker::job_from_record(record);
            let template = self.resolution(&job, record, Some(job.status.clone()));
            (record.clone(), template)
        });
        if item.change.job.status == Status::Error
            && let Some(message) = item.change.job.message.clone()
        {
            settled.messages.push((job_id, message));
        }
        settled.released.push((item.row.seq, alerts, resolution));
    }

    /// Commits `settled`: the released changes' alerts queued and incidents opened or
    /// resolved, messages kept, failed attempts recorded; then wakes the worker.
    async fn commit_settlement(&mut self, settled: Settlement, now: i64) -> Result<(), CycleError> {
        let resolutions = crate::notify::resolved::Resolutions::from_config(self.config);
        let org = self.org_name();
        let Settlement {
            released,
            messages,
            failed,
            ..
        } = settled;
        let (released, resolving) = self
            .timed(move |conn| {
                conn.transaction(|tx| {
                    let mut resolving = Vec::new();
                    for (seq, alerts, resolution) in &released {
                        for alert in alerts {
                            outbox::insert(tx, alert)?;
                        }
                        crate::store::incidents::open(tx, alerts)?;
                        if let Some((record, template)) = resolution {
                            resolving.extend(super::commit::resolve_job(
                                tx,
                                &org,
                                record,
                                template,
                                &resolutions,
                                now,
                            )?);
                        }
                        held::delete(tx, *seq)?;
                    }
                    for (id, message) in &messages {
                        crate::store::jobs::keep_error_message(tx, &org, id, message)?;
                    }
                    for (seq, change, attempts, next, error) in &failed {
                        held::attempt_failed(tx, *seq, change, *attempts, *next, error)?;
                    }
                    crate::store::gauges::set_outbox_pending(tx)?;
                    crate::store::outbox::announce(tx)?;
                    Ok((released, resolving))
                })
            })
            .await?;
        let inserted: Vec<Alert> = released
            .into_iter()
            .flat_map(|(_, alerts, _)| alerts)
            .chain(resolving)
            .collect();
        let queued = alerts::note_committed(&inserted);
        if queued > 0 {
            self.tally.alerts_queued += queued;
            self.wake_worker();
        }
        Ok(())
    }

    /// Reads the error message of a held error from the job's detail.
    async fn fetch_message(&self, item: &mut Item) {
        match self.quick.job(&item.row.job_id).await {
            Ok(detail) if detail.status == Status::Error => {
                item.change.job.message = Some(detail.message.unwrap_or_default());
                if detail.step.is_some() {
                    item.change.job.step = detail.step;
                }
            }
            // The job moved on; the message of that error is gone with it.
            Ok(_) | Err(ApiError::NotFound { .. }) => item.change.moved_on = true,
            Err(error) => {
                item.error = Some(format!(
                    "cannot read the error message: {}",
                    crate::domain::error_chain(&error)
                ))
            }
        }
    }

    /// What a held change still waits for. Only a job's latest change can still get its
    /// message or rows; a job that is gone gets nothing more.
    fn held_needs(
        &self,
        item: &Item,
        record: Option<&TrackedJob>,
        last: &HashMap<String, i64>,
    ) -> Needs {
        let Some(record) = record else {
            return Needs::default();
        };
        let change = &item.change;
        let mut needs = self.needs(&change.job, record, self.watched(record));
        let current = last.get(&item.row.job_id) == Some(&item.row.seq)
            && !change.moved_on
            && record.status == change.job.status;
        needs.message &= current;
        needs.output &= current && change.output.is_none();
        // Without a creation date there is no listing to learn the project from.
        needs.project &= record.created_us.is_some();
        needs
    }

    async fn records(&mut self, items: &[Item]) -> Result<HashMap<String, TrackedJob>, CycleError> {
        let ids: Vec<String> = items.iter().map(|item| item.row.job_id.clone()).collect();
        let org = self.org_name();
        Ok(self
            .timed(move |conn| jobs::get_many(conn, &org, ids.iter().map(String::as_str)))
            .await?)
    }
}

/// A failed attempt at `item`, for the store: tried again `delay_after` its attempts.
fn retry_later(
    item: Item,
    delay_after: impl Fn(u32) -> std::time::Duration,
    now: i64,
) -> (i64, String, u32, i64, String) {
    let attempts = item.row.attempts.saturating_add(1);
    let error = item
        .error
        .unwrap_or_else(|| "waiting for an earlier change of the job".into());
    if attempts == 1 {
        warn!(job_id = %item.row.job_id, error = %error, "an alert waits for its details; retried on its own backoff");
    } else {
        debug!(job_id = %item.row.job_id, attempts, error = %error, "an alert still waits for its details");
    }
    let next = crate::domain::time::after_ms(now, delay_after(attempts));
    (item.row.seq, item.change.to_json(), attempts, next, error)
}
