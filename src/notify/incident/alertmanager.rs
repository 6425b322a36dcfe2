//! `format = "alertmanager"`: incidents as Prometheus alerts, posted to an Alertmanager's
//! `/api/v2/alerts` (every member of a cluster, as Prometheus does). An open incident is
//! posted with `endsAt` 4 x `resend` ahead and posted again every `resend` (see
//! [`super::resend`]), so that it stays active while sdm-watch runs and expires on its
//! own when sdm-watch is gone; its end is posted with `endsAt` at the time it ended.
//! Labels are few and bounded (the job's name goes in the annotations, not a label).

use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tracing::warn;
use url::Url;

use super::{Step, cut, lifetime};
use crate::config::WebhookConfig;
use crate::notify::{Attempt, Message};

/// The alert's name for Alertmanager's routing, by condition.
pub fn alertname(condition: &str) -> &'static str {
    match condition {
        "error" => "SdmJobFailed",
        "pending" => "SdmJobPending",
        "running_long" => "SdmJobRunningLong",
        "watcher" => "SdmWatcherFailing",
        _ => "SdmWatchTest",
    }
}

/// `<base>/api/v2/alerts`, keeping a path prefix the base URL has.
pub fn endpoint(base: &Url) -> Url {
    let mut base = base.clone();
    if !base.path().ends_with('/') {
        let path = format!("{}/", base.path());
        base.set_path(&path);
    }
    base.join("api/v2/alerts").unwrap_or(base)
}

/// One Prometheus alert for `step`, active from `starts` until `ends`.
pub fn alert(step: &Step, starts: OffsetDateTime, ends: OffsetDateTime) -> Value {
    let mut labels = Map::new();
    labels.insert("alertname".into(), alertname(&step.condition).into());
    labels.insert("severity".into(), step.severity().into());
    labels.insert("organisation".into(), step.organisation().into());
    if let Some(job) = step.event.job() {
        labels.insert("job_id".into(), job.id.clone().into());
        if let Some(project) = job.project {
            labels.insert("project".into(), project.to_string().into());
        }
    }
    let card = crate::notify::format::Card::of(&step.event);
    let summary = if step.ends {
        // The incident's own words, not "resolved: ...": Alertmanager says it resolved.
        opening_summary(step)
    } else {
        card.headline.clone()
    };
    let description: Vec<String> = step
        .details()
        .into_iter()
        .map(|(label, value)| format!("{label}: {value}"))
        .collect();
    let generator = step
        .event
        .data
        .link
        .as_deref()
        .or(step.event.url())
        .or(step
            .event
            .watcher_facts()
            .map(|facts| facts.watching.as_str()))
        .filter(|url| Url::parse(url).is_ok());
    let mut alert = json!({
        "labels": labels,
        "annotations": {
            "summary": cut(&summary, 1024),
            "description": cut(&description.join("\n"), 4096),
        },
        "startsAt": rfc3339(starts.min(ends)),
        "endsAt": rfc3339(ends),
    });
    if let Some(url) = generator {
        alert["generatorURL"] = url.into();
    }
    alert
}

/// What the incident is, said as when it opened: "Job "X" failed", for a resolution too.
fn opening_summary(step: &Step) -> String {
    let name = step.event.job_name();
    match step.condition.as_str() {
        "error" => format!("Job \"{name}\" failed."),
        "pending" => format!("Job \"{name}\" waits for action (pending)."),
        "running_long" => format!("Job \"{name}\" runs longer than expected."),
        "watcher" => "sdm-watch cannot poll the SDM API.".to_owned(),
        _ => crate::notify::format::Card::of(&step.event).headline,
    }
}

/// When `step` says its condition began: for a reminder, when the job entered the status;
/// otherwise when it was detected.
pub fn began(step: &Step) -> Option<OffsetDateTime> {
    let data = &step.event.data;
    let since = data
        .pending_since
        .as_deref()
        .or(data.running_since.as_deref());
    since
        .and_then(|text| OffsetDateTime::parse(text, &Rfc3339).ok())
        .or_else(|| detected(step))
}

/// When the alert's change was detected.
fn detected(step: &Step) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(&step.event.timestamp, &Rfc3339).ok()
}

/// The body posted for a queued alert at `now`: an opening is active for 4 x `resend`;
/// an end is resolved at the time it ended.
pub fn body(config: &WebhookConfig, step: &Step, now: OffsetDateTime) -> Value {
    let resend = config.resend.unwrap_or(std::time::Duration::from_secs(60));
    let alert = if step.ends {
        let ended = detected(step).unwrap_or(now).min(now);
        self::alert(step, ended, ended)
    } else {
        let ends =
            now.saturating_add(time::Duration::try_from(lifetime(resend)).unwrap_or_default());
        self::alert(step, began(step).unwrap_or(now), ends)
    };
    Value::Array(vec![alert])
}

/// Posts `alerts` to every Alertmanager of the channel: delivered when one took them
/// (the others are told again at the next resend, as Prometheus does).
pub async fn post_all(http: &reqwest::Client, config: &WebhookConfig, alerts: &Value) -> Attempt {
    let body = alerts.to_string();
    let mut failures = Vec::new();
    let mut delivered = false;
    for url in &config.urls {
        let attempt = super::post(http, config, endpoint(url), body.clone(), explain).await;
        match attempt {
            Attempt::Delivered => delivered = true,
            failed => failures.push((url.host_str().unwrap_or_default().to_owned(), failed)),
        }
    }
    if delivered || failures.is_empty() {
        for (host, failed) in &failures {
            if let Attempt::Retry { error, .. } | Attempt::Permanent { error } = failed {
                warn!(channel = %config.name, alertmanager = %host, error = %error, "one Alertmanager of the cluster did not take the alerts; the others did");
            }
        }
        return Attempt::Delivered;
    }
    // Retry unless every member refused for good.
    let permanent = failures
        .iter()
        .all(|(_, failed)| matches!(failed, Attempt::Permanent { .. }));
    let error = failures
        .iter()
        .map(|(host, failed)| match failed {
            Attempt::Retry { error, .. } | Attempt::Permanent { error } => {
                format!("{host}: {error}")
            }
            Attempt::Delivered => String::new(),
        })
        .collect::<Vec<_>>()
        .join("; ");
    if permanent {
        Attempt::Permanent { error }
    } else {
        let retry_after = failures.iter().find_map(|(_, failed)| match failed {
            Attempt::Retry { retry_after, .. } => *retry_after,
            _ => None,
        });
        Attempt::Retry { error, retry_after }
    }
}

/// One delivery of a queued alert.
pub async fn send(http: &reqwest::Client, config: &WebhookConfig, message: &Message) -> Attempt {
    let step = match message {
        Message::Alert { payload, .. } => Step::read(payload),
        Message::Digest(_) => Err(crate::notify::format::RenderError::Digest),
    };
    match step {
        Ok(step) => {
            post_all(
                http,
                config,
                &body(config, &step, OffsetDateTime::now_utc()),
            )
            .await
        }
        Err(error) => Attempt::Permanent {
            error: error.to_string(),
        },
    }
}

/// Alertmanager's refusal: a JSON string or a plain text, cut short.
fn explain(text: &str) -> Option<String> {
    let text = serde_json::from_str::<Value>(text)
        .ok()
        .and_then(|value| value.as_str().map(str::to_owned))
        .unwrap_or_else(|| text.trim().to_owned());
    (!text.is_empty()).then(|| cut(&text, 300))
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_default()
}
