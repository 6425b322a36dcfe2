//! The task that sends scheduled reports (`[[report]]`): at each report's slot it decides
//! the slot in the store (the first replica to insert it wins, so exactly one sends it, and
//! a restart never sends it again), gathers the report and queues it to the report's
//! channels, all in one transaction. A slot found 6 h or more late (the daemon was down)
//! is decided skipped and logged; a later one is sent at once.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tracing::{info, warn};

use super::report::{ReportData, ReportEvent, alerts};
use super::setup::DeliverySetup;
use crate::domain::Clock;
use crate::domain::time::{from_millis, rfc3339_seconds};
use crate::report::{period_start, read};
use crate::store::history::Scope;
use crate::store::reports::{self, Outcome};
use crate::store::{Store, StoreError, outbox};

/// A slot found this late is skipped, not sent.
pub const TOO_LATE: Duration = Duration::from_secs(6 * 3600);

pub struct Reporter {
    store: Store,
    setup: watch::Receiver<Arc<DeliverySetup>>,
    clock: Arc<dyn Clock>,
    wake: Arc<Notify>,
}

/// What one look at the schedules did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ticked {
    /// `(report, slot)` queued to their channels.
    pub sent: Vec<(String, String)>,
    /// `(report, slot)` found too late.
    pub skipped: Vec<(String, String)>,
}

impl Reporter {
    pub fn new(
        store: Store,
        setup: watch::Receiver<Arc<DeliverySetup>>,
        clock: Arc<dyn Clock>,
        wake: Arc<Notify>,
    ) -> Self {
        Self {
            store,
            setup,
            clock,
            wake,
        }
    }

    /// Decides every report's latest slot not decided yet.
    pub async fn tick(&self) -> Result<Ticked, StoreError> {
        let setup = self.setup.borrow().clone();
        let now_ms = self.clock.now_ms();
        let mut ticked = Ticked::default();
        for report in &setup.reports {
            let Some(slot) = report.slots.latest_slot(now_ms) else {
                continue;
            };
            let (name, date) = (report.name.clone(), slot.date.clone());
            let late_ms = now_ms.saturating_sub(slot.at_ms);
            let too_late = late_ms >= TOO_LATE.as_millis() as i64;
            let (at, span) = (slot.at_ms, report.since);
            let config = report.clone();
            let decided = self
                .store
                .run(move |conn| {
                    if reports::decided(conn, &name, &date)? {
                        return Ok(None);
                    }
                    conn.transaction(|tx| {
                        if too_late {
                            return Ok(reports::decide(
                                tx,
                                &name,
                                &date,
                                at,
                                now_ms,
                                Outcome::Skipped,
                            )?
                            .then_some(0));
                        }
                        if !reports::decide(tx, &name, &date, at, now_ms, Outcome::Sent)? {
                            return Ok(None);
                        }
                        let until = from_millis(now_ms).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
                        let slot_at = from_millis(at).unwrap_or(until);
                        let since = period_start(slot_at, span);
                        let report = read(tx, &Scope::default(), since, until)?;
                        let event = ReportEvent {
                            kind: "report".into(),
                            timestamp: rfc3339_seconds(until),
                            data: ReportData {
                                name: name.clone(),
                                slot: date.clone(),
                                organisations: config.several_organisations,
                                report,
                            },
                        };
                        let queued = alerts(&config, &event, now_ms);
                        for alert in &queued {
                            outbox::insert(tx, alert)?;
                        }
                        crate::store::gauges::set_outbox_pending(tx)?;
                        outbox::announce(tx)?;
                        Ok(Some(queued.len()))
                    })
                })
                .await?;
            let key = (report.name.clone(), slot.date.clone());
            match decided {
                Some(_) if too_late => {
                    warn!(report = %report.name, slot = %slot.date, late_minutes = late_ms / 60_000, "a scheduled report's slot passed 6 h or more ago (was sdm-watch down?); it is skipped, not sent");
                    ticked.skipped.push(key);
                }
                Some(channels) => {
                    info!(report = %report.name, slot = %slot.date, channels, "scheduled report queued");
                    ticked.sent.push(key);
                    self.wake.notify_one();
                }
                None => {}
            }
        }
        Ok(ticked)
    }

    /// Looks at the schedules until `stop` turns true: at each next slot, and every
    /// minute (a reload may bring new reports).
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        loop {
            if let Err(error) = self.tick().await {
                warn!(error = %error, "cannot decide the scheduled reports' slots; trying again in a minute");
            }
            let now = self.clock.now_ms();
            let next = self
                .setup
                .borrow()
                .reports
                .iter()
                .filter_map(|report| report.slots.next_slot(now))
                .map(|slot| slot.at_ms.saturating_sub(now))
                .min()
                .unwrap_or(60_000)
                .clamp(1_000, 60_000);
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(next as u64)) => {}
                changed = stop.changed() => {
                    if changed.is_err() || *stop.borrow() {
                        return;
                    }
                }
            }
        }
    }
}
