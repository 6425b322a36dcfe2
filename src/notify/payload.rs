//! What an alert says: the Standard Webhooks JSON body of SPEC.md, which the e-mail is
//! rendered from too. It is built once, when the alert is queued, and never changes after.

use serde::{Deserialize, Serialize};

use crate::domain::time::rfc3339_seconds;
use serde_json::Value;

/// `{"type": "job.error", "timestamp": ..., "data": {...}}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertEvent {
    #[serde(rename = "type")]
    pub kind: String,
    /// When the change was detected, RFC 3339 in UTC to the second.
    pub timestamp: String,
    pub data: AlertData,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertData {
    pub job: JobSnapshot,
    pub previous_status: Option<String>,
    pub url: String,
    /// `{format_id, rows, columns, file}` on `job.done` with `[output]`; `null` (kept, not
    /// skipped) when the rows could not be fetched, with `output_error` saying why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_error: Option<String>,
    /// `job.pending_reminder`: when the watcher first saw the job pending in this stretch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_since: Option<String>,
    /// `job.pending_reminder`: 1 for the first reminder of the stretch, then 2, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reminder: Option<u32>,
    /// `job.running_long`: when the watcher first saw the job running in this stretch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running_since: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running_for_seconds: Option<u64>,
    /// Set only on `sdm-watch test-alert`'s alerts.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub test: bool,
}

/// The job as the API showed it; what the API did not say is `null`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobSnapshot {
    pub id: String,
    pub name: Option<String>,
    pub status: String,
    pub creation_date: Option<String>,
    pub completion_date: Option<String>,
    pub project: Option<i64>,
    pub step: Option<Value>,
    pub message: Option<String>,
}

impl AlertEvent {
    pub fn new(
        job: JobSnapshot,
        previous_status: Option<String>,
        url: String,
        at: time::OffsetDateTime,
    ) -> Self {
        Self {
            kind: format!("job.{}", job.status),
            timestamp: rfc3339_seconds(at),
            data: AlertData {
                job,
                previous_status,
                url,
                output: None,
                output_error: None,
                pending_since: None,
                reminder: None,
                running_since: None,
                running_for_seconds: None,
                test: false,
            },
        }
    }

    /// A clearly marked alert for `sdm-watch test-alert`.
    pub fn test(at: time::OffsetDateTime) -> Self {
        let mut event = Self::new(
            JobSnapshot {
                id: "00000000-0000-0000-0000-000000000000".into(),
                name: Some("sdm-watch test alert (not a real job)".into()),
                status: "error".into(),
                creation_date: None,
                completion_date: None,
                project: None,
                step: None,
                message: Some("This is a test alert sent by `sdm-watch test-alert`.".into()),
            },
            Some("running".into()),
            "about:blank".into(),
            at,
        );
        event.kind = "test".into();
        event.data.test = true;
        event
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }
}
