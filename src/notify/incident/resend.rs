//! Alertmanager forgets an alert that is not posted again before its `endsAt`: every
//! `resend`, each `alertmanager` channel is told again of the incidents it was told of
//! that are still open (`endsAt` 4 x `resend` ahead), and of those that ended within the
//! last 4 x `resend` (`endsAt` at their end), as Prometheus does. The second keeps an
//! end the last word even when a resend that read the incident open crossed its
//! resolution. At start it runs at once, so an Alertmanager that expired the alerts
//! while sdm-watch was down has them again. Among replicas on PostgreSQL, an
//! organisation's incidents are told again by the replica that leads it, alone.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use time::OffsetDateTime;
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{debug, warn};

use super::alertmanager::{alert, post_all};
use super::{Step, lifetime};
use crate::config::WebhookFormat;
use crate::domain::Clock;
use crate::domain::time::{after_ms, from_millis};
use crate::notify::webhook::WebhookSender;
use crate::notify::{Attempt, Channel, DeliverySetup};
use crate::store::Store;
use crate::store::incidents::{self, Told};

/// At most this many alerts in one post.
const BATCH: usize = 500;

/// Whether this process leads an organisation (among replicas); alone, it leads all.
pub type Leads = Arc<dyn Fn(&str) -> bool + Send + Sync>;

pub struct Resender {
    store: Store,
    setup: watch::Receiver<Arc<DeliverySetup>>,
    clock: Arc<dyn Clock>,
    /// Only the incidents of organisations this replica leads are told again.
    leads: Option<Leads>,
}

impl Resender {
    pub fn new(
        store: Store,
        setup: watch::Receiver<Arc<DeliverySetup>>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            store,
            setup,
            clock,
            leads: None,
        }
    }

    /// Among replicas: tells again only the incidents of organisations `leads` says this
    /// replica leads, so that N replicas do not post N times.
    pub fn only_where(mut self, leads: Leads) -> Self {
        self.leads = Some(leads);
        self
    }

    /// Resends until `stop` turns true (or its sender goes).
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut last: HashMap<String, Instant> = HashMap::new();
        loop {
            let setup = self.setup.borrow().clone();
            let mut next = Instant::now() + Duration::from_secs(60);
            for (name, sender) in alertmanagers(&setup) {
                let resend = sender.config().resend.unwrap_or(Duration::from_secs(60));
                let due = last.get(name).map_or_else(Instant::now, |at| *at + resend);
                if due <= Instant::now() {
                    last.insert(name.to_owned(), Instant::now());
                    self.resend(name, sender, resend).await;
                    next = next.min(Instant::now() + resend);
                } else {
                    next = next.min(due);
                }
            }
            if *stop.borrow() {
                return;
            }
            tokio::select! {
                _ = tokio::time::sleep_until(next) => {}
                changed = stop.changed() => {
                    if changed.is_err() || *stop.borrow() {
                        return;
                    }
                }
            }
        }
    }

    /// Tells `sender`'s Alertmanagers again of what they were told.
    async fn resend(&self, name: &str, sender: &WebhookSender, resend: Duration) {
        let now_ms = self.clock.now_ms();
        let keep = lifetime(resend);
        let since = now_ms.saturating_sub(i64::try_from(keep.as_millis()).unwrap_or(i64::MAX));
        let channel = name.to_owned();
        let told = match self
            .store
            .run(move |conn| incidents::told(conn, &channel, since))
            .await
        {
            Ok(told) => told,
            Err(error) => {
                warn!(channel = %name, error = %error, "cannot read the incidents to resend to Alertmanager; trying again at the next resend");
                return;
            }
        };
        let told: Vec<Told> = match &self.leads {
            Some(leads) => told
                .into_iter()
                .filter(|incident| leads(&incident.organisation))
                .collect(),
            None => told,
        };
        let alerts = bodies(&told, now_ms, keep);
        for batch in alerts.chunks(BATCH) {
            let body = Value::Array(batch.to_vec());
            match post_all(sender.http(), sender.config(), &body).await {
                Attempt::Delivered => {
                    debug!(channel = %name, alerts = batch.len(), "incidents resent to Alertmanager")
                }
                Attempt::Retry { error, .. } | Attempt::Permanent { error } => {
                    warn!(channel = %name, alerts = batch.len(), error = %error, "Alertmanager did not take the incidents resent; trying again at the next resend");
                }
            }
        }
    }
}

/// The channels of format `alertmanager`.
fn alertmanagers(setup: &DeliverySetup) -> Vec<(&str, &WebhookSender)> {
    setup
        .channels
        .iter()
        .filter_map(|(name, channel)| match channel {
            Channel::Webhook(sender) if sender.config().format == WebhookFormat::Alertmanager => {
                Some((name, sender))
            }
            _ => None,
        })
        .collect()
}

/// The alerts that tell `told` again at `now_ms`: open ones active for `keep` more,
/// ended ones resolved at their end. A payload that cannot be read is left out.
pub fn bodies(told: &[Told], now_ms: i64, keep: Duration) -> Vec<Value> {
    let at = |ms: i64| from_millis(ms).unwrap_or_else(OffsetDateTime::now_utc);
    told.iter()
        .filter_map(|incident| {
            let step = Step::read(&incident.payload).ok()?;
            let ends = incident
                .resolved_ms
                .unwrap_or_else(|| after_ms(now_ms, keep));
            Some(alert(&step, at(incident.opened_ms), at(ends)))
        })
        .collect()
}
