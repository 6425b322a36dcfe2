//! Alerts from a detected change or a reminder: one payload, routed to every channel that
//! wants it, one alert (with its own id) per channel, silenced where a silence says so.

use time::OffsetDateTime;

use super::payload::{AlertEvent, JobSnapshot, Usual};
use crate::config::{Config, Hours};
use crate::domain::time::rfc3339_seconds;
use crate::domain::{Event, ProjectId, Status};
use crate::store::outbox::{Alert, AlertState};
use crate::store::silences::Silence;
use crate::telemetry::ALERTS;
use tracing::info;

/// A done job's rows, as an alert tells them.
#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    /// The alert's `output` object.
    Saved(serde_json::Value),
    /// Wanted but not had: `output: null`, and this as `output_error`.
    Missing(String),
}

/// What a reminder adds to its alert.
#[derive(Clone, Debug, PartialEq)]
pub enum Reminder {
    /// `data.pending_since` and `data.reminder` (1, 2, ...).
    Pending { since: OffsetDateTime, number: u32 },
    /// `data.running_since` and `data.running_for_seconds`; `data.usual` when the
    /// adaptive rule told it.
    RunningLong {
        since: OffsetDateTime,
        for_seconds: u64,
        usual: Option<Usual>,
    },
}

/// Something worth telling, as the watcher found it.
#[derive(Clone, Debug, PartialEq)]
pub struct Detected {
    pub job: JobSnapshot,
    pub event: Event,
    /// For a status change: the status before, `None` for a first sighting; for a
    /// reminder, the status itself (nothing changed).
    pub previous: Option<Status>,
    /// The job's page in the API.
    pub url: String,
    /// For a done job with `[output]`.
    pub output: Option<Output>,
    pub reminder: Option<Reminder>,
    /// When it was detected.
    pub at: OffsetDateTime,
}

impl Detected {
    /// The alert's body: SPEC's payload.
    pub fn payload(&self) -> AlertEvent {
        let mut event = AlertEvent::new(
            self.job.clone(),
            self.previous.as_ref().map(Status::to_string),
            self.url.clone(),
            self.at,
        );
        event.kind = format!("job.{}", self.event);
        match &self.output {
            Some(Output::Saved(output)) => event.data.output = Some(output.clone()),
            Some(Output::Missing(error)) => {
                event.data.output = Some(serde_json::Value::Null);
                event.data.output_error = Some(error.clone());
            }
            None => {}
        }
        match &self.reminder {
            Some(Reminder::Pending { since, number }) => {
                event.data.pending_since = Some(rfc3339_seconds(*since));
                event.data.reminder = Some(*number);
            }
            Some(Reminder::RunningLong {
                since,
                for_seconds,
                usual,
            }) => {
                event.data.running_since = Some(rfc3339_seconds(*since));
                event.data.running_for_seconds = Some(*for_seconds);
                event.data.usual = usual.clone();
            }
            None => {}
        }
        event
    }
}

/// One alert per channel that wants `detected`, all sharing one payload; an alert that
/// one of `silences` matches is recorded silenced. Alerts of channels that gather digests
/// are marked so.
pub fn build(
    detected: &Detected,
    org: &str,
    config: &Config,
    silences: &[Silence],
    now_ms: i64,
) -> Vec<Alert> {
    let channels = route(config, org, &detected.event, detected.job.project);
    if channels.is_empty() {
        return Vec::new();
    }
    let mut event = detected.payload();
    event.data.link = config
        .links
        .job_link(&detected.job.id, detected.job.project);
    name_organisation(&mut event, org, config);
    let payload = event.to_json();
    let silence = silences.iter().find(|s| {
        s.matches(
            org,
            &detected.job.id,
            detected.job.project,
            &detected.event,
            now_ms,
        )
    });
    channels
        .iter()
        .map(|channel| {
            let mut alert = Alert::new(
                new_alert_id(),
                channel,
                org,
                &detected.job.id,
                detected.event.clone(),
                payload.clone(),
                now_ms,
            );
            alert.grouped = config.grouping(channel).is_some();
            if let Some(silence) = silence {
                alert.state = AlertState::Silenced;
                alert.silence_id = Some(silence.id.clone());
            }
            keep_hours(&mut alert, &config.hours(channel), now_ms);
            alert
        })
        .collect()
}

/// Names `org` in `event` (`data.organisation`) when the config has `[[organisation]]`
/// tables; a single-organisation config's payloads stay as they were.
pub fn name_organisation(event: &mut AlertEvent, org: &str, config: &Config) {
    event.data.organisation = config.names_organisations().then(|| org.to_owned());
}

/// One `watcher.failing` or `watcher.recovered` alert per channel that wants the `watcher`
/// event, whatever its `projects` (an outage concerns every project); never gathered into
/// digests, since it is urgent. Silences apply as to any alert (`--event watcher`, `--all`).
pub fn build_watcher(
    event: &AlertEvent,
    org: &str,
    config: &Config,
    silences: &[Silence],
    now_ms: i64,
) -> Vec<Alert> {
    let mut event = event.clone();
    name_organisation(&mut event, org, config);
    let payload = event.to_json();
    let silence = silences
        .iter()
        .find(|s| s.matches(org, "", None, &Event::Watcher, now_ms));
    route(config, org, &Event::Watcher, None)
        .iter()
        .map(|channel| {
            let mut alert = Alert::new(
                new_alert_id(),
                channel,
                org,
                "",
                Event::Watcher,
                payload.clone(),
                now_ms,
            );
            if let Some(silence) = silence {
                alert.state = AlertState::Silenced;
                alert.silence_id = Some(silence.id.clone());
            }
            keep_hours(&mut alert, &config.hours(channel), now_ms);
            alert
        })
        .collect()
}

/// Keeps `alert` to its channel's hours at `now_ms`: inside a window the channel is
/// `muted_during`, it is recorded silenced (by `muted_during:<window>`); outside every
/// window it is `active_during`, it is held, to go out in one digest when one opens.
pub fn keep_hours(alert: &mut Alert, hours: &Hours, now_ms: i64) {
    if alert.state == AlertState::Silenced {
        return;
    }
    if let Some(window) = hours.muted_by(now_ms) {
        alert.state = AlertState::Silenced;
        alert.silence_id = Some(format!("muted_during:{window}"));
    } else if hours.held(now_ms) {
        alert.grouped = true;
    }
}

/// Logs and counts the alerts among `alerts` that were recorded silenced, once they are
/// committed; returns how many of `alerts` went into the queue.
pub fn note_committed(alerts: &[Alert]) -> usize {
    let mut queued = 0;
    for alert in alerts {
        if alert.state == AlertState::Silenced {
            info!(alert_id = %alert.id, channel = %alert.channel, job_id = %alert.job_id, event = %alert.event, silence = ?alert.silence_id, "alert silenced");
            metrics::counter!(ALERTS, "channel" => alert.channel.clone(), "outcome" => "silenced")
                .increment(1);
        } else {
            queued += 1;
        }
    }
    queued
}

/// The channels that want an alert about `event` of a job in `project` of `org`.
pub fn route(config: &Config, org: &str, event: &Event, project: Option<ProjectId>) -> Vec<String> {
    let wants = |routing: &crate::config::Routing| {
        routing.events.contains(event)
            && (routing.organisations.is_empty() || routing.organisations.iter().any(|o| o == org))
            && (routing.projects.is_empty()
                || *event == Event::Watcher
                || project.is_some_and(|p| routing.projects.contains(&p)))
    };
    let webhooks = config
        .webhooks
        .iter()
        .filter(|hook| wants(&hook.routing))
        .map(|hook| hook.name.clone());
    let emails = config
        .emails
        .iter()
        .filter(|email| wants(&email.routing))
        .map(|email| email.name.clone());
    webhooks.chain(emails).collect()
}

/// `msg_` and a time-ordered UUID, in the style of Standard Webhooks message ids.
pub fn new_alert_id() -> String {
    format!("msg_{}", uuid::Uuid::now_v7().simple())
}

/// A digest's id: `dgst_` and a time-ordered UUID.
pub fn new_digest_id() -> String {
    format!("dgst_{}", uuid::Uuid::now_v7().simple())
}
