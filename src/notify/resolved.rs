//! `job.resolved`: when an incident ends, an alert to each channel it was sent to that
//! asks for resolutions (`send_resolved`). It goes out after the incident's first alert
//! on that channel (`Alert::after_alert`), so that no receiver hears of the end first.
//! A silence does not hold a resolution back: whoever was told of the start is told of
//! the end.

use super::alerts::{Detected, keep_hours, name_organisation, new_alert_id};
use super::payload::AlertEvent;
use crate::config::{Config, Hours};
use crate::domain::Event;
use crate::store::incidents::Resolved;
use crate::store::outbox::Alert;

/// What resolutions need of the config, read before the transaction that finds which
/// incidents end (it runs on the store's thread, without the config).
#[derive(Clone, Debug, Default)]
pub struct Resolutions {
    /// The channels with `send_resolved`, whether each gathers digests, and its hours.
    channels: Vec<(String, bool, Hours)>,
}

impl Resolutions {
    pub fn from_config(config: &Config) -> Resolutions {
        let hooks = config
            .webhooks
            .iter()
            .filter(|hook| hook.routing.send_resolved)
            .map(|hook| {
                (
                    hook.name.clone(),
                    hook.routing.grouping.is_some(),
                    hook.routing.hours.clone(),
                )
            });
        let emails = config
            .emails
            .iter()
            .filter(|email| email.routing.send_resolved)
            .map(|email| {
                (
                    email.name.clone(),
                    email.routing.grouping.is_some(),
                    email.routing.hours.clone(),
                )
            });
        Resolutions {
            channels: hooks.chain(emails).collect(),
        }
    }

    /// The body of a resolution of `detected`'s job, in its new state: `job.resolved`,
    /// with the link and organisation its other alerts have; the incident fills the rest.
    pub fn template(detected: &Detected, org: &str, config: &Config) -> AlertEvent {
        let detected = Detected {
            event: Event::Resolved,
            output: None,
            reminder: None,
            ..detected.clone()
        };
        let mut event = detected.payload();
        event.data.link = config
            .links
            .job_link(&detected.job.id, detected.job.project);
        name_organisation(&mut event, org, config);
        event
    }

    /// The alerts telling that `incident` ended, one per channel it went to that asks.
    pub fn alerts(&self, template: &AlertEvent, incident: &Resolved, now_ms: i64) -> Vec<Alert> {
        incident
            .channels
            .iter()
            .filter_map(|(channel, first)| {
                let (_, grouped, hours) =
                    self.channels.iter().find(|(name, ..)| name == channel)?;
                let mut event = template.clone();
                event.data.resolves = Some(first.clone());
                event.data.condition = Some(incident.condition.as_str().to_owned());
                let mut alert = Alert::new(
                    new_alert_id(),
                    channel,
                    &incident.organisation,
                    &incident.job_id,
                    Event::Resolved,
                    event.to_json(),
                    now_ms,
                );
                alert.grouped = *grouped;
                alert.after_alert = Some(first.clone());
                keep_hours(&mut alert, hours, now_ms);
                Some(alert)
            })
            .collect()
    }
}
