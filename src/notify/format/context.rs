//! What a template sees: SPEC's context (`type`, `job`, `previous_status`, `url`, `link`,
//! `output`, and for digests `alerts` and `counts`), plus a few conveniences. Its shape is
//! `template::sample_alert`'s, which the configuration checks templates against; a test
//! below keeps the two equal.

use serde_json::{Value, json};

use crate::notify::Digest;
use crate::notify::payload::AlertEvent;

/// One alert's context.
pub fn alert(event: &AlertEvent) -> Value {
    let data = &event.data;
    json!({
        "type": event.kind,
        "event": event.kind.strip_prefix("job.").unwrap_or(&event.kind),
        "timestamp": event.timestamp,
        "job": event.job().map_or_else(|| watcher_job(event), |job| json!(job)),
        "previous_status": event.previous_status(),
        "url": event.url(),
        "watcher": event.watcher_facts().map(|facts| json!({
            "since": facts.since,
            "failing_for_seconds": facts.failing_for_seconds,
            "reason": facts.reason,
            "last_error": facts.last_error,
            "down_for_seconds": facts.down_for_seconds,
            "watching": facts.watching,
        })),
        "link": data.link,
        "organisation": data.organisation,
        "output": data.output,
        "headline": event.headline(),
        "reminder": data.reminder,
        "pending_since": data.pending_since,
        "running_since": data.running_since,
        "running_for_seconds": data.running_for_seconds,
        "resolves": data.resolves,
        "condition": data.condition,
        "test": data.test,
        "alerts": [],
        "counts": {},
    })
}

/// What a watcher alert shows as `job` (see `template::sample_watcher`).
fn watcher_job(event: &AlertEvent) -> Value {
    json!({
        "id": "",
        "name": "sdm-watch",
        "status": event.what(),
        "creation_date": null,
        "completion_date": null,
        "project": null,
        "step": null,
        "message": event.watcher_facts().and_then(|facts| facts.last_error.clone()),
    })
}

/// A digest's context: each member's context in `alerts`, `counts` by event.
pub fn digest(digest: &Digest) -> Value {
    let alerts: Vec<Value> = digest.events().map(|event| alert(&event)).collect();
    json!({
        "type": "digest",
        "event": "digest",
        "timestamp": digest.timestamp(),
        "job": null,
        "previous_status": null,
        "url": null,
        "link": null,
        "organisation": null,
        "output": null,
        "headline": digest.summary(),
        "reminder": null,
        "pending_since": null,
        "running_since": null,
        "running_for_seconds": null,
        "resolves": null,
        "condition": null,
        "watcher": null,
        "test": false,
        "alerts": alerts,
        "counts": digest.counts(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::payload::JobSnapshot;
    use std::collections::BTreeSet;

    fn keys(value: &Value) -> BTreeSet<String> {
        value.as_object().unwrap().keys().cloned().collect()
    }

    #[test]
    fn the_context_has_the_shape_templates_are_checked_against() {
        let event = AlertEvent::new(
            JobSnapshot {
                id: "a".into(),
                name: None,
                status: "error".into(),
                creation_date: None,
                completion_date: None,
                project: None,
                step: None,
                message: None,
            },
            None,
            "https://x/".into(),
            time::OffsetDateTime::UNIX_EPOCH,
        );
        let context = alert(&event);
        let sample = crate::template::sample_alert();
        assert_eq!(keys(&context), keys(&sample));
        assert_eq!(keys(&context["job"]), keys(&sample["job"]));
        assert_eq!(keys(&sample), keys(&crate::template::sample_digest()));
        let watcher = AlertEvent::watcher(
            "recovered",
            crate::notify::payload::WatcherFacts {
                since: "2026-11-28T10:02:00Z".into(),
                failing_for_seconds: None,
                reason: None,
                last_error: None,
                down_for_seconds: Some(60),
                watching: "https://x/".into(),
            },
            time::OffsetDateTime::UNIX_EPOCH,
        );
        let context = alert(&watcher);
        let sample = crate::template::sample_watcher();
        assert_eq!(keys(&context), keys(&sample));
        assert_eq!(keys(&context["job"]), keys(&sample["job"]));
        assert_eq!(keys(&context["watcher"]), keys(&sample["watcher"]));
    }
}
