//! `format = "pagerduty"`: PagerDuty's Events API v2. An incident's alerts are `trigger`
//! events and its end a `resolve`, all sharing the `dedup_key`
//! `sdm-watch/<job id>/<condition>` (`sdm-watch/<organisation>/watcher` for the
//! watcher's), so that PagerDuty keeps one alert per incident. 202 is success, 400 a
//! refusal for good (with PagerDuty's own words), 429 and 5xx are tried again.

use serde_json::{Map, Value, json};
use url::Url;

use super::{Step, cut};
use crate::config::WebhookConfig;
use crate::notify::format::{Card, RenderError};
use crate::notify::{Attempt, Message};

/// The key PagerDuty groups an incident's events by.
pub fn dedup_key(step: &Step) -> String {
    format!("sdm-watch/{}/{}", step.subject(), step.condition)
}

/// The event for `step`; `client_url` is sdm-watch's status page, when `[links]` names it.
pub fn event(step: &Step, routing_key: &str, client_url: Option<&Url>) -> Value {
    if step.ends {
        return json!({
            "routing_key": routing_key,
            "event_action": "resolve",
            "dedup_key": dedup_key(step),
        });
    }
    let card = Card::of(&step.event);
    let summary = match &step.event.data.organisation {
        Some(org) => format!("{org}: {}", card.headline),
        None => card.headline.clone(),
    };
    let mut details = Map::new();
    for (label, value) in step.details() {
        details.insert(label, value.into());
    }
    details.insert("Organisation".into(), step.organisation().into());
    let source = step
        .event
        .url()
        .or(step
            .event
            .watcher_facts()
            .map(|facts| facts.watching.as_str()))
        .and_then(|url| Url::parse(url).ok())
        .and_then(|url| url.host_str().map(str::to_owned))
        .unwrap_or_else(|| "sdm-watch".to_owned());
    let mut payload = json!({
        "summary": cut(&summary, 1024),
        "timestamp": step.event.timestamp,
        "severity": step.severity(),
        "source": source,
        "group": step.organisation(),
        "class": step.condition,
        "custom_details": details,
    });
    if let Some(project) = step.event.job().and_then(|job| job.project) {
        payload["component"] = format!("project {project}").into();
    }
    let mut event = json!({
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": dedup_key(step),
        "payload": payload,
        "client": "sdm-watch",
    });
    let links: Vec<Value> = match (&step.event.data.link, step.event.url()) {
        (Some(link), _) => vec![json!({"href": link, "text": "The job in SDM"})],
        (None, Some(url)) => vec![json!({"href": url, "text": "The job in the SDM API"})],
        (None, None) => Vec::new(),
    };
    if !links.is_empty() {
        event["links"] = Value::Array(links);
    }
    if let Some(url) = client_url {
        event["client_url"] = url.as_str().into();
    }
    event
}

/// One delivery of a queued alert.
pub async fn send(
    http: &reqwest::Client,
    config: &WebhookConfig,
    client_url: Option<&Url>,
    message: &Message,
) -> Attempt {
    let step = match message {
        Message::Alert { payload, .. } => Step::read(payload),
        Message::Digest(_) => Err(RenderError::Digest),
    };
    let (step, key) = match (step, &config.routing_key) {
        (Ok(step), Some(key)) => (step, key),
        (Err(error), _) => {
            return Attempt::Permanent {
                error: error.to_string(),
            };
        }
        (Ok(_), None) => {
            return Attempt::Permanent {
                error: "the channel has no routing_key".to_owned(),
            };
        }
    };
    let body = event(&step, key.expose(), client_url).to_string();
    super::post(http, config, config.url.clone(), body, explain).await
}

/// PagerDuty's refusal: `{"status", "message", "errors": [...]}`, as one line.
fn explain(text: &str) -> Option<String> {
    let Ok(body) = serde_json::from_str::<Value>(text) else {
        let text = text.trim();
        return (!text.is_empty()).then(|| cut(text, 300));
    };
    let message = body["message"].as_str().or(body["status"].as_str());
    let errors: Vec<&str> = body["errors"]
        .as_array()
        .map(|errors| errors.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let said = match (message, errors.is_empty()) {
        (Some(message), false) => format!("{message} ({})", errors.join("; ")),
        (Some(message), true) => message.to_owned(),
        (None, false) => errors.join("; "),
        (None, true) => return None,
    };
    Some(cut(&said, 500))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_pagerduty_refusals() {
        assert_eq!(
            explain(r#"{"status":"invalid event","message":"Event object is invalid","errors":["Length of 'routing_key' is incorrect (should be 32 characters)"]}"#).unwrap(),
            "Event object is invalid (Length of 'routing_key' is incorrect (should be 32 characters))"
        );
        assert_eq!(explain("  upstream down \n").unwrap(), "upstream down");
        assert_eq!(explain("{}"), None);
    }
}
