//! The worker's records of attempts: what each finished attempt means, recorded in one
//! transaction per batch. Outcomes the store cannot take now (PostgreSQL failing over)
//! wait in memory and are recorded when it can, so that their alerts are not sent again.

use std::sync::Arc;

use tracing::{error, info, warn};

use super::Worker;
use crate::notify::Attempt;
use crate::notify::delivery::{self, Delivery, Outcome, Settlement};
use crate::store::StoreError;
use crate::store::gauges::set_outbox_pending;

/// Outcomes waiting for the store are kept up to this many: an alert whose outcome is
/// forgotten is sent again, with the same `webhook-id`, once its claim lapses.
const UNRECORDED_AT_MOST: usize = 10_000;

impl Worker {
    /// Records how attempts ended (delivered, rescheduled with backoff, or dead) and
    /// refreshes the backlog gauge, in one transaction.
    pub(super) async fn settle(
        &self,
        finished: Vec<(Delivery, Attempt)>,
    ) -> Result<Vec<Outcome>, StoreError> {
        let settled = self.judge(finished);
        self.record(settled).await.map_err(|(error, _)| error)
    }

    /// What each finished attempt means, given the rules current now.
    pub(super) fn judge(&self, finished: Vec<(Delivery, Attempt)>) -> Vec<Settlement> {
        let setup = self.current();
        let now = self.clock.now_ms();
        finished
            .into_iter()
            .map(|(delivery, attempt)| delivery::judge(delivery, attempt, &setup, now))
            .collect()
    }

    /// Records `settled` in one transaction; when the store fails, gives them back.
    async fn record(
        &self,
        settled: Vec<Settlement>,
    ) -> Result<Vec<Outcome>, (StoreError, Vec<Settlement>)> {
        if settled.is_empty() {
            return Ok(Vec::new());
        }
        let now = self.clock.now_ms();
        let replica = self.replica.clone();
        let shared = Arc::new(settled);
        let given = shared.clone();
        let recorded = self
            .store
            .run(move |conn| {
                conn.transaction(|tx| {
                    delivery::record(tx, &given, now, &replica)?;
                    set_outbox_pending(tx)
                })
            })
            .await;
        let settled = Arc::try_unwrap(shared).unwrap_or_else(|shared| (*shared).clone());
        match recorded {
            Ok(()) => {
                delivery::count(&settled);
                Ok(settled.into_iter().map(|s| s.outcome).collect())
            }
            Err(error) => Err((error, settled)),
        }
    }

    /// Records `settled` together with the outcomes in `unrecorded`; what the store does
    /// not take now is left in `unrecorded` (at most [`UNRECORDED_AT_MOST`]).
    pub(super) async fn record_or_keep(
        &self,
        mut settled: Vec<Settlement>,
        unrecorded: &mut Vec<Settlement>,
    ) {
        let waited = unrecorded.len();
        settled.append(unrecorded);
        match self.record(settled).await {
            Ok(_) if waited > 0 => {
                info!(
                    outcomes = waited,
                    "recorded the delivery outcomes that waited for the store"
                );
            }
            Ok(_) => {}
            Err((error, mut back)) => {
                if back.len() > UNRECORDED_AT_MOST {
                    let dropped = back.len() - UNRECORDED_AT_MOST;
                    back.drain(..dropped);
                    warn!(
                        dropped,
                        "too many delivery outcomes wait for the store; the oldest are forgotten and their alerts sent again"
                    );
                }
                error!(error = %error, waiting = back.len(), "cannot record delivery outcomes; trying again in 1s (their alerts are not sent again meanwhile)");
                *unrecorded = back;
            }
        }
    }
}
