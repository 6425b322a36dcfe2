//! What a channel sends in one attempt: one alert, or a digest of several. A digest's body
//! is built from its members' stored payloads and its own creation time, so every attempt
//! of it sends the same bytes.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::payload::{AlertEvent, Tone};
use crate::domain::time::{from_millis, rfc3339_seconds};
use crate::domain::{Event, Status};
use crate::store::outbox::Alert;

/// One attempt's content; `id` is the `webhook-id` and the e-mail's `Message-ID`.
#[derive(Clone, Debug, PartialEq)]
pub enum Message {
    /// One alert: its payload as queued.
    Alert { id: String, payload: String },
    /// Several alerts of one channel in one message.
    Digest(Digest),
}

impl Message {
    pub fn id(&self) -> &str {
        match self {
            Message::Alert { id, .. } => id,
            Message::Digest(digest) => &digest.id,
        }
    }

    /// The JSON body a webhook receives.
    pub fn body(&self) -> Cow<'_, str> {
        match self {
            Message::Alert { payload, .. } => Cow::Borrowed(payload),
            Message::Digest(digest) => Cow::Owned(digest.body()),
        }
    }
}

/// A digest, ready to send. It keeps its members' stored payloads and builds what a
/// channel sends from them when asked, one member at a time, so that a digest in flight
/// holds little more than those payloads.
#[derive(Clone, Debug, PartialEq)]
pub struct Digest {
    pub id: String,
    created_ms: i64,
    /// Each member's event and payload, in the order they were queued.
    members: Vec<(Event, String)>,
}

impl Digest {
    /// The digest `id` formed at `created_ms` of `members`.
    pub fn new(id: &str, created_ms: i64, members: &[Alert]) -> Digest {
        Digest {
            id: id.to_owned(),
            created_ms,
            members: members
                .iter()
                .map(|member| (member.event.clone(), member.payload.clone()))
                .collect(),
        }
    }

    /// SPEC's digest body: `{"type": "digest", "timestamp", "data": {"counts", "alerts"}}`,
    /// each item a member's `data` with its `type`. The same bytes at every attempt.
    pub fn body(&self) -> String {
        let head = json!({ "type": "digest", "timestamp": self.timestamp() });
        let mut body = head.to_string();
        body.pop(); // the closing brace: `data` follows
        body.push_str(",\"data\":{\"counts\":");
        body.push_str(&json!(self.counts()).to_string());
        body.push_str(",\"alerts\":[");
        for (n, (_, payload)) in self.members.iter().enumerate() {
            if n > 0 {
                body.push(',');
            }
            let payload: Value = serde_json::from_str(payload).unwrap_or(Value::Null);
            let mut item = Map::new();
            item.insert("type".into(), payload["type"].clone());
            if let Value::Object(data) = &payload["data"] {
                item.extend(data.clone());
            }
            body.push_str(&Value::Object(item).to_string());
        }
        body.push_str("]}}");
        body
    }

    /// When the digest was formed, RFC 3339 in UTC to the second.
    pub fn timestamp(&self) -> String {
        from_millis(self.created_ms)
            .map(rfc3339_seconds)
            .unwrap_or_default()
    }

    /// How many alerts it carries.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Each member's payload, in the order they were queued, read one at a time.
    pub fn events(&self) -> impl Iterator<Item = AlertEvent> + '_ {
        self.members
            .iter()
            .filter_map(|(_, payload)| serde_json::from_str(payload).ok())
    }

    /// How many members entered each event (`done`, `error`, `pending_reminder`, ...);
    /// resolutions count apart, as `resolved`.
    pub fn counts(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for (event, _) in &self.members {
            *counts.entry(event.to_string()).or_default() += 1;
        }
        counts
    }

    /// The gravest of its members' tones, from their events alone (no payload read): any
    /// error makes it bad, else anything waiting, else good.
    pub fn tone(&self) -> Tone {
        self.members
            .iter()
            .map(|(event, _)| match event {
                Event::Entered(Status::Error) => Tone::Bad,
                Event::Entered(Status::Done) | Event::Resolved => Tone::Good,
                _ => Tone::Waiting,
            })
            .fold(Tone::Good, Tone::worse)
    }

    /// `12 jobs: 10 done, 2 error`.
    pub fn summary(&self) -> String {
        let counts = self.counts();
        let total: usize = counts.values().sum();
        let parts: Vec<String> = counts
            .iter()
            .map(|(event, count)| format!("{count} {event}"))
            .collect();
        format!(
            "{total} job{}: {}",
            if total == 1 { "" } else { "s" },
            parts.join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(event: Event, payload: Value) -> Alert {
        Alert::new(
            "msg_1".into(),
            "ops",
            "default",
            "job",
            event,
            payload.to_string(),
            0,
        )
    }

    #[test]
    fn a_digest_lists_each_alert_s_data_with_its_type_and_counts_them() {
        let done = json!({"type": "job.done", "timestamp": "t", "data": {"job": {"id": "a"}, "previous_status": "running"}});
        let error = json!({"type": "job.error", "timestamp": "t", "data": {"job": {"id": "b"}, "previous_status": null}});
        let members = [
            alert(Event::from(Status::Done), done.clone()),
            alert(Event::from(Status::Done), done),
            alert(Event::from(Status::Error), error),
        ];
        let digest = Digest::new("dgst_1", 1_764_324_902_000, &members);
        let body: Value = serde_json::from_str(&digest.body()).unwrap();
        assert_eq!(body["type"], "digest");
        assert_eq!(body["timestamp"], "2025-11-28T10:15:02Z");
        assert_eq!(body["data"]["counts"], json!({"done": 2, "error": 1}));
        assert_eq!(body["data"]["alerts"][2]["type"], "job.error");
        assert_eq!(body["data"]["alerts"][2]["job"]["id"], "b");
        assert_eq!(digest.summary(), "3 jobs: 2 done, 1 error");
        assert_eq!(digest.tone(), Tone::Bad);
        assert_eq!(
            Digest::new("dgst_1", 1_764_324_902_000, &members).body(),
            digest.body()
        );
    }

    #[test]
    fn a_digest_counts_resolutions_apart_and_they_are_good_news() {
        let resolved = json!({"type": "job.resolved", "timestamp": "t", "data": {"job": {"id": "a"}, "previous_status": "running", "condition": "error", "resolves": "msg_0"}});
        let pending = json!({"type": "job.pending", "timestamp": "t", "data": {"job": {"id": "b"}, "previous_status": "running"}});
        let only = [
            alert(Event::Resolved, resolved.clone()),
            alert(Event::Resolved, resolved.clone()),
        ];
        let digest = Digest::new("dgst_2", 0, &only);
        assert_eq!(digest.summary(), "2 jobs: 2 resolved");
        assert_eq!(digest.tone(), Tone::Good);
        let mixed = [
            alert(Event::Resolved, resolved),
            alert(Event::from(Status::Pending), pending),
        ];
        let digest = Digest::new("dgst_3", 0, &mixed);
        let body: Value = serde_json::from_str(&digest.body()).unwrap();
        assert_eq!(body["data"]["counts"], json!({"pending": 1, "resolved": 1}));
        assert_eq!(body["data"]["alerts"][0]["resolves"], "msg_0");
        assert_eq!(digest.tone(), Tone::Waiting);
    }
}
