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
    /// The job's page for people, from `[links] job`; absent without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
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
                link: None,
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

    /// The job's name, or its id when the API gave none.
    pub fn job_name(&self) -> &str {
        self.data.job.name.as_deref().unwrap_or(&self.data.job.id)
    }

    /// What entered: `done`, `error`, `pending_reminder`, ... (`TEST` for a test alert).
    pub fn what(&self) -> &str {
        if self.data.test {
            return "TEST";
        }
        self.kind
            .strip_prefix("job.")
            .unwrap_or(&self.data.job.status)
    }

    /// `error: Supplier feed`: an e-mail's subject after `[sdm-watch] `, a chat header.
    pub fn title(&self) -> String {
        format!("{}: {}", self.what(), self.job_name())
    }

    /// What happened, in one sentence.
    pub fn headline(&self) -> String {
        let name = self.job_name();
        let data = &self.data;
        match self.kind.as_str() {
            "job.pending_reminder" => format!(
                "Job \"{name}\" is still pending (reminder {}; pending since {}).",
                data.reminder.unwrap_or(1),
                data.pending_since.as_deref().unwrap_or("?")
            ),
            "job.running_long" => format!(
                "Job \"{name}\" has been running for {} (since {}).",
                humantime::format_duration(std::time::Duration::from_secs(
                    data.running_for_seconds.unwrap_or(0)
                )),
                data.running_since.as_deref().unwrap_or("?")
            ),
            _ => format!(
                "Job \"{name}\" is now {}{}.",
                data.job.status,
                data.previous_status
                    .as_deref()
                    .map(|p| format!(" (was {p})"))
                    .unwrap_or_else(|| " (first seen in this status)".into()),
            ),
        }
    }

    /// How a message should look: good news, bad news, something waiting, or a test.
    pub fn tone(&self) -> Tone {
        match self.kind.as_str() {
            _ if self.data.test => Tone::Info,
            "job.done" => Tone::Good,
            "job.error" => Tone::Bad,
            _ => Tone::Waiting,
        }
    }
}

/// The colour of an alert in formats that have colours.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tone {
    Good,
    Bad,
    Waiting,
    Info,
}

impl Tone {
    /// The graver of two, for a digest's colour: bad, then waiting, then good.
    pub fn worse(self, other: Tone) -> Tone {
        match (self, other) {
            (Tone::Bad, _) | (_, Tone::Bad) => Tone::Bad,
            (Tone::Waiting, _) | (_, Tone::Waiting) => Tone::Waiting,
            _ => Tone::Good,
        }
    }
}
