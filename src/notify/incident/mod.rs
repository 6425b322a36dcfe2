//! Alerts into the incident tools teams page with: Alertmanager (`format = "alertmanager"`)
//! and PagerDuty's Events API v2 (`format = "pagerduty"`). Both see an alert as a step of
//! an incident: one that opens it (or repeats it), or one that ends it (`job.resolved`,
//! `watcher.recovered`), keyed by the job (or organisation) and the condition.

pub mod alertmanager;
pub mod pagerduty;
pub mod resend;

use std::time::Duration;

use super::Attempt;
use super::format::RenderError;
use super::http::Post;
use super::payload::AlertEvent;
use crate::config::{DEFAULT_ORGANISATION, WebhookConfig};

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

/// Posts `body` (JSON) to `url` as the channel does; `explain` reads a refusal's reason.
pub async fn post(
    http: &reqwest::Client,
    config: &WebhookConfig,
    url: url::Url,
    body: String,
    explain: fn(&str) -> Option<String>,
) -> Attempt {
    let post = Post {
        url,
        content_type: "application/json",
        headers: Vec::new(),
        body,
        explain: Some(explain),
    };
    super::http::post(http, config, post).await
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::payload::{JobSnapshot, WatcherFacts};

    fn job_event(kind: &str) -> AlertEvent {
        let job = JobSnapshot {
            id: "job-1".into(),
            name: Some("Feed".into()),
            status: "error".into(),
            creation_date: None,
            completion_date: None,
            project: Some(17),
            step: None,
            message: None,
        };
        let mut event = AlertEvent::new(
            job,
            Some("running".into()),
            "https://sdm.example/api/v1/jobs/job-1/".into(),
            time::macros::datetime!(2026-12-02 07:00:00 UTC),
        );
        event.kind = kind.into();
        event
    }

    fn watcher_event(kind: &str, org: Option<&str>) -> AlertEvent {
        let facts = WatcherFacts {
            since: "2026-12-02T06:00:00Z".into(),
            failing_for_seconds: Some(600),
            reason: Some("token_refused".into()),
            last_error: None,
            down_for_seconds: None,
            watching: "https://sdm.example/api/v1/".into(),
        };
        let mut event = AlertEvent::watcher(kind, facts, time::OffsetDateTime::UNIX_EPOCH);
        event.data.organisation = org.map(str::to_owned);
        event
    }

    fn step(event: &AlertEvent) -> Step {
        Step::read(&event.to_json()).unwrap()
    }

    #[test]
    fn every_incident_event_is_a_step_with_its_condition_key_and_severity() {
        let cases = [
            ("job.error", "error", false, "error", "SdmJobFailed"),
            ("job.pending", "pending", false, "warning", "SdmJobPending"),
            (
                "job.pending_reminder",
                "pending",
                false,
                "warning",
                "SdmJobPending",
            ),
            (
                "job.running_long",
                "running_long",
                false,
                "warning",
                "SdmJobRunningLong",
            ),
        ];
        for (kind, condition, ends, severity, alertname) in cases {
            let step = step(&job_event(kind));
            assert_eq!(
                (step.condition.as_str(), step.ends),
                (condition, ends),
                "{kind}"
            );
            assert_eq!(step.severity(), severity, "{kind}");
            assert_eq!(alertmanager::alertname(&step.condition), alertname);
            assert_eq!(
                pagerduty::dedup_key(&step),
                format!("sdm-watch/job-1/{condition}")
            );
        }
        let mut resolved = job_event("job.resolved");
        resolved.data.condition = Some("running_long".into());
        let step = step(&resolved);
        assert!(step.ends);
        assert_eq!(pagerduty::dedup_key(&step), "sdm-watch/job-1/running_long");
        // `sdm-watch test-alert`'s alert: a test incident of its own, for information.
        let test =
            Step::read(&AlertEvent::test(time::OffsetDateTime::UNIX_EPOCH).to_json()).unwrap();
        assert_eq!((test.condition.as_str(), test.ends), ("test", false));
        assert_eq!(test.severity(), "info");
        assert_eq!(alertmanager::alertname(&test.condition), "SdmWatchTest");
        // A done or running alert is no step of an incident; nor a resolution without its
        // condition.
        for kind in ["job.done", "job.running", "job.resolved"] {
            assert!(Step::read(&job_event(kind).to_json()).is_err(), "{kind}");
        }
    }

    #[test]
    fn the_watcher_s_incident_is_keyed_by_its_organisation() {
        let failing = step(&watcher_event("failing", Some("acme")));
        assert_eq!(
            (failing.condition.as_str(), failing.ends),
            ("watcher", false)
        );
        assert_eq!(failing.severity(), "critical");
        assert_eq!(pagerduty::dedup_key(&failing), "sdm-watch/acme/watcher");
        let recovered = step(&watcher_event("recovered", None));
        assert!(recovered.ends);
        assert_eq!(
            pagerduty::dedup_key(&recovered),
            "sdm-watch/default/watcher"
        );
        let am = alertmanager::alert(
            &failing,
            time::OffsetDateTime::UNIX_EPOCH,
            time::OffsetDateTime::UNIX_EPOCH,
        );
        assert_eq!(am["labels"]["alertname"], "SdmWatcherFailing");
        assert_eq!(am["labels"]["organisation"], "acme");
        assert!(am["labels"].get("job_id").is_none());
        assert_eq!(am["generatorURL"], "https://sdm.example/api/v1/");
    }

    #[test]
    fn alertmanager_s_endpoint_keeps_a_path_prefix() {
        let at = |base: &str| alertmanager::endpoint(&url::Url::parse(base).unwrap()).to_string();
        assert_eq!(at("http://am:9093"), "http://am:9093/api/v2/alerts");
        assert_eq!(at("http://am:9093/"), "http://am:9093/api/v2/alerts");
        assert_eq!(
            at("https://ops.example/alertmanager"),
            "https://ops.example/alertmanager/api/v2/alerts"
        );
    }

    #[test]
    fn cut_keeps_whole_characters() {
        assert_eq!(cut("ééééé", 5), "ééééé");
        assert_eq!(cut("éééééé", 5), "éé...");
        assert_eq!(cut("abc", 2), "...");
    }
}
