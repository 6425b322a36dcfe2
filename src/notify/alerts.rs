//! Alerts from a detected change: one payload, routed to every channel that wants it, one
//! alert (with its own id) per channel.

use time::OffsetDateTime;

use super::payload::{AlertEvent, JobSnapshot};
use crate::config::Config;
use crate::domain::{ProjectId, Status};
use crate::store::outbox::Alert;

/// A done job's rows, as an alert tells them.
#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    /// The alert's `output` object.
    Saved(serde_json::Value),
    /// Wanted but not had: `output: null`, and this as `output_error`.
    Missing(String),
}

/// A change worth telling, as the watcher detected it.
#[derive(Clone, Debug, PartialEq)]
pub struct Detected {
    pub job: JobSnapshot,
    pub status: Status,
    pub previous: Option<Status>,
    /// The job's page in the API.
    pub url: String,
    /// For a done job with `[output]`.
    pub output: Option<Output>,
    /// When the change was detected.
    pub at: OffsetDateTime,
}

/// One alert per channel that wants `detected`, all sharing one payload.
pub fn build(detected: &Detected, config: &Config, now_ms: i64) -> Vec<Alert> {
    let channels = route(config, &detected.status, detected.job.project);
    if channels.is_empty() {
        return Vec::new();
    }
    let mut event = AlertEvent::new(
        detected.job.clone(),
        detected.previous.as_ref().map(|status| status.to_string()),
        detected.url.clone(),
        detected.at,
    );
    match &detected.output {
        Some(Output::Saved(output)) => event.data.output = Some(output.clone()),
        Some(Output::Missing(error)) => {
            event.data.output = Some(serde_json::Value::Null);
            event.data.output_error = Some(error.clone());
        }
        None => {}
    }
    let payload = event.to_json();
    channels
        .iter()
        .map(|channel| {
            Alert::new(
                new_alert_id(),
                channel,
                &detected.job.id,
                detected.status.clone(),
                payload.clone(),
                now_ms,
            )
        })
        .collect()
}

/// The channels that want an alert for a job entering `status` in `project`.
pub fn route(config: &Config, status: &Status, project: Option<ProjectId>) -> Vec<String> {
    let wants = |events: &[Status], projects: &[ProjectId]| {
        events.contains(status)
            && (projects.is_empty() || project.is_some_and(|p| projects.contains(&p)))
    };
    let webhooks = config
        .webhooks
        .iter()
        .filter(|hook| wants(&hook.events, &hook.projects))
        .map(|hook| hook.name.clone());
    let emails = config
        .emails
        .iter()
        .filter(|email| wants(&email.events, &email.projects))
        .map(|email| email.name.clone());
    webhooks.chain(emails).collect()
}

/// `msg_` and a time-ordered UUID, in the style of Standard Webhooks message ids.
pub fn new_alert_id() -> String {
    format!("msg_{}", uuid::Uuid::now_v7().simple())
}
