//! Alerts into the incident tools teams page with: Alertmanager (`format = "alertmanager"`)
//! and PagerDuty's Events API v2 (`format = "pagerduty"`). Both see an alert as a step of
//! an incident: one that opens it (or repeats it), or one that ends it (`job.resolved`,
//! `watcher.recovered`), keyed by the job (or organisation) and the condition.

pub mod alertmanager;
pub mod pagerduty;
pub mod resend;

use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};

use super::Attempt;
use super::format::RenderError;
use super::payload::AlertEvent;
use crate::config::{Auth, DEFAULT_ORGANISATION, WebhookConfig};

/// One alert, read as a step of an incident.
#[derive(Clone, Debug)]
pub struct Step {
    pub event: AlertEvent,
    /// `error`, `pending`, `running_long`, `watcher` (`test` for `sdm-watch test-alert`).
    pub condition: String,
    /// Whether it ends the incident.
    pub ends: bool,
}

impl Step {
    /// Reads a queued alert's payload; an alert that is no step of an incident (a `done`
    /// queued before the channel's format changed, say) cannot be sent.
    pub fn read(payload: &str) -> Result<Step, RenderError> {
        let event: AlertEvent = serde_json::from_str(payload)?;
        let (condition, ends) = match event.kind.as_str() {
            _ if event.data.test => ("test".to_owned(), false),
            "job.error" => ("error".to_owned(), false),
            "job.pending" | "job.pending_reminder" => ("pending".to_owned(), false),
            "job.running_long" => ("running_long".to_owned(), false),
            "watcher.failing" => ("watcher".to_owned(), false),
            "watcher.recovered" => ("watcher".to_owned(), true),
            "job.resolved" => match event.data.condition.clone() {
                Some(condition) => (condition, true),
                None => return Err(RenderError::NotAnIncident(event.kind)),
            },
            _ => return Err(RenderError::NotAnIncident(event.kind)),
        };
        Ok(Step {
            event,
            condition,
            ends,
        })
    }

    /// The organisation's name (`default` for a config without `[[organisation]]`).
    pub fn organisation(&self) -> &str {
        self.event
            .data
            .organisation
            .as_deref()
            .unwrap_or(DEFAULT_ORGANISATION)
    }

    /// What the incident is about: the job's id, or the organisation for the watcher's.
    pub fn subject(&self) -> &str {
        match self.event.job() {
            Some(job) => &job.id,
            None => self.organisation(),
        }
    }

    /// `error` for a failed job, `warning` for one waiting or running long, `critical`
    /// when the watcher is blind, `info` for a test.
    pub fn severity(&self) -> &'static str {
        match self.condition.as_str() {
            "error" => "error",
            "watcher" => "critical",
            "test" => "info",
            _ => "warning",
        }
    }

    /// The facts of the job (or the watcher's outage) as text lines, for a description.
    pub fn details(&self) -> Vec<(String, String)> {
        let card = super::format::Card::of(&self.event);
        let mut lines: Vec<(String, String)> = card
            .facts
            .into_iter()
            .map(|(label, value)| (label.to_owned(), value))
            .collect();
        if let Some(message) = card.message {
            lines.push(("Message".to_owned(), message));
        }
        if let Some(link) = card.link {
            lines.push(("Link".to_owned(), link));
        }
        lines
    }
}

/// Posts `body` (JSON) to `url` with the channel's authentication and headers; how the
/// receiver answered, as an attempt (`explain` reads a refusal's body for the error).
pub async fn post(
    http: &reqwest::Client,
    config: &WebhookConfig,
    url: url::Url,
    body: String,
    explain: fn(&str) -> Option<String>,
) -> Attempt {
    let mut request = http
        .post(url)
        .timeout(config.timeout)
        .header(CONTENT_TYPE, "application/json");
    match &config.auth {
        Some(Auth::Basic { username, password }) => {
            request = request.basic_auth(username, Some(password.expose()));
        }
        Some(Auth::Bearer(token)) => request = request.bearer_auth(token.expose()),
        None => {}
    }
    for (name, value) in &config.headers {
        request = request.header(name.as_str(), value.as_str());
    }
    let response = match request.body(body).send().await {
        Ok(response) => response,
        Err(error) => {
            return Attempt::Retry {
                error: format!(
                    "request failed: {}",
                    crate::domain::error_chain(&error.without_url())
                ),
                retry_after: None,
            };
        }
    };
    let status = response.status();
    if status.is_success() {
        return Attempt::Delivered;
    }
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(crate::domain::retry_after);
    // What the receiver said, cut short: a proxy's error page can be long.
    let text = response.text().await.unwrap_or_default();
    let error = match explain(&text) {
        Some(reason) => format!("the receiver answered {status}: {reason}"),
        None => format!("the receiver answered {status}"),
    };
    if status.as_u16() == 408 || status.as_u16() == 429 || status.is_server_error() {
        Attempt::Retry { error, retry_after }
    } else {
        Attempt::Permanent { error }
    }
}

/// At most `max` characters of `text`, ending with "..." when cut.
pub fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(3)).collect();
    cut.push_str("...");
    cut
}

/// `Alertmanager keeps an alert this long after each post`: 4 x `resend`, as Prometheus.
pub fn lifetime(resend: Duration) -> Duration {
    resend.saturating_mul(4)
}
