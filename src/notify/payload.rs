//! What an alert says: the Standard Webhooks JSON body of SPEC.md, which the e-mail is
//! rendered from too. It is built once, when the alert is queued, and never changes after.
//! An alert is about a job (`job.*`) or about the watcher itself (`watcher.*`: it cannot
//! poll, or polls again).

use serde::{Deserialize, Serialize};

use crate::domain::time::rfc3339_seconds;
use serde_json::Value;

// The JSON Schema of these types is `docs/schemas/alert.schema.json` (a test below keeps
// the file current); their doc comments are its descriptions.
/// An sdm-watch alert: `{"type": "job.error", "timestamp": ..., "data": {...}}`, the body
/// of a webhook of `format = "standard"`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AlertEvent {
    #[serde(rename = "type")]
    pub kind: String,
    /// When the change was detected, RFC 3339 in UTC to the second.
    pub timestamp: String,
    pub data: AlertData,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AlertData {
    /// The job and its change, or the watcher's outage.
    #[serde(flatten)]
    pub about: About,
    /// The organisation's name, when the config has `[[organisation]]` tables.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organisation: Option<String>,
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
    /// `job.running_long` by `poll.running_longer_than_usual`: the basis it was judged on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usual: Option<Usual>,
    /// `job.resolved`: the id of the incident's first alert on this channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolves: Option<String>,
    /// `job.resolved`: the condition that ended (`error`, `pending`, `running_long`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    /// Set only on `sdm-watch test-alert`'s alerts.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub test: bool,
}

/// Why the adaptive rule found a job slower than usual: `data.usual`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Usual {
    /// The p95 (nearest rank) of the project's last completed runs, in whole seconds.
    pub p95_seconds: u64,
    /// How many completed runs it is taken over (10 to 50).
    pub runs: u32,
    /// `poll.running_longer_than_usual`.
    pub factor: f64,
    /// How long the job has run since its creation, in whole seconds.
    pub running_seconds: u64,
}

/// What an alert is about, flattened into `data`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum About {
    /// `job`, `previous_status` (`null` for a first sighting) and the job's API `url`.
    Job {
        job: JobSnapshot,
        previous_status: Option<String>,
        url: String,
    },
    /// `watcher.failing` and `watcher.recovered`.
    Watcher(WatcherFacts),
}

/// The watcher's outage, as `watcher.failing` and `watcher.recovered` tell it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WatcherFacts {
    /// When the outage began (the first failed cycle), RFC 3339 in UTC to the second.
    pub since: String,
    /// `watcher.failing`: how long no cycle has succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failing_for_seconds: Option<u64>,
    /// `token_refused`, `api_unreachable`, `api_errors`, `rate_limited` or `store`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The last cycle's error, as logged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// `watcher.recovered`: how long it was down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub down_for_seconds: Option<u64>,
    /// The organisation or API watched, for people: `api.base_url`.
    pub watching: String,
}

/// The job as the API showed it; what the API did not say is `null`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
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
                organisation: None,
                about: About::Job {
                    job,
                    previous_status,
                    url,
                },
                link: None,
                output: None,
                output_error: None,
                pending_since: None,
                reminder: None,
                running_since: None,
                running_for_seconds: None,
                usual: None,
                resolves: None,
                condition: None,
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

    /// A watcher alert: `watcher.failing` or `watcher.recovered`.
    pub fn watcher(kind: &str, facts: WatcherFacts, at: time::OffsetDateTime) -> Self {
        Self {
            kind: format!("watcher.{kind}"),
            timestamp: rfc3339_seconds(at),
            data: AlertData {
                organisation: None,
                about: About::Watcher(facts),
                link: None,
                output: None,
                output_error: None,
                pending_since: None,
                reminder: None,
                running_since: None,
                running_for_seconds: None,
                usual: None,
                resolves: None,
                condition: None,
                test: false,
            },
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }

    /// The job, unless the alert is about the watcher.
    pub fn job(&self) -> Option<&JobSnapshot> {
        match &self.data.about {
            About::Job { job, .. } => Some(job),
            About::Watcher(_) => None,
        }
    }

    pub fn job_mut(&mut self) -> Option<&mut JobSnapshot> {
        match &mut self.data.about {
            About::Job { job, .. } => Some(job),
            About::Watcher(_) => None,
        }
    }

    /// The watcher's outage, if the alert is about it.
    pub fn watcher_facts(&self) -> Option<&WatcherFacts> {
        match &self.data.about {
            About::Watcher(facts) => Some(facts),
            About::Job { .. } => None,
        }
    }

    pub fn previous_status(&self) -> Option<&str> {
        match &self.data.about {
            About::Job {
                previous_status, ..
            } => previous_status.as_deref(),
            About::Watcher(_) => None,
        }
    }

    /// The job's page in the API (none for a watcher alert).
    pub fn url(&self) -> Option<&str> {
        match &self.data.about {
            About::Job { url, .. } => Some(url),
            About::Watcher(_) => None,
        }
    }

    /// The job's name, or its id when the API gave none; `sdm-watch` for the watcher.
    pub fn job_name(&self) -> &str {
        match self.job() {
            Some(job) => job.name.as_deref().unwrap_or(&job.id),
            None => "sdm-watch",
        }
    }

    /// What entered: `done`, `error`, `pending_reminder`, ... (`TEST` for a test alert;
    /// `failing` and `recovered` for the watcher).
    pub fn what(&self) -> &str {
        if self.data.test {
            return "TEST";
        }
        match self.job() {
            Some(job) => self.kind.strip_prefix("job.").unwrap_or(&job.status),
            None => self.kind.strip_prefix("watcher.").unwrap_or(&self.kind),
        }
    }

    /// `error: Supplier feed`: an e-mail's subject after `[sdm-watch] `, a chat header;
    /// `failing: sdm-watch cannot poll the SDM API` for the watcher; `acme: error: ...`
    /// when the alert names its organisation.
    pub fn title(&self) -> String {
        let title = self.own_title();
        match &self.data.organisation {
            Some(org) => format!("{org}: {title}"),
            None => title,
        }
    }

    fn own_title(&self) -> String {
        match self.watcher_facts() {
            Some(_) if self.kind == "watcher.recovered" => {
                "recovered: sdm-watch polls the SDM API again".to_owned()
            }
            Some(_) => "failing: sdm-watch cannot poll the SDM API".to_owned(),
            None => format!("{}: {}", self.what(), self.job_name()),
        }
    }

    /// What happened, in one sentence.
    pub fn headline(&self) -> String {
        if let Some(facts) = self.watcher_facts() {
            return watcher_headline(&self.kind, facts);
        }
        let name = self.job_name();
        let data = &self.data;
        match self.kind.as_str() {
            "job.pending_reminder" => format!(
                "Job \"{name}\" is still pending (reminder {}; pending since {}).",
                data.reminder.unwrap_or(1),
                data.pending_since.as_deref().unwrap_or("?")
            ),
            "job.resolved" => format!(
                "Resolved: job \"{name}\" is no longer {} (now {}).",
                match data.condition.as_deref() {
                    Some("running_long") => "running long",
                    Some(condition) => condition,
                    None => "in trouble",
                },
                self.job().map_or("unknown", |job| job.status.as_str()),
            ),
            "job.running_long" => match &data.usual {
                Some(usual) => format!(
                    "Job \"{name}\" has run for {}, {:.1} times its project's usual {} (p95 of its last {} runs).",
                    seconds_text(usual.running_seconds),
                    usual.running_seconds as f64 / usual.p95_seconds.max(1) as f64,
                    seconds_text(usual.p95_seconds),
                    usual.runs
                ),
                None => format!(
                    "Job \"{name}\" has been running for {} (since {}).",
                    seconds_text(data.running_for_seconds.unwrap_or(0)),
                    data.running_since.as_deref().unwrap_or("?")
                ),
            },
            _ => format!(
                "Job \"{name}\" is now {}{}.",
                self.job().map_or("unknown", |job| job.status.as_str()),
                self.previous_status()
                    .map(|p| format!(" (was {p})"))
                    .unwrap_or_else(|| " (first seen in this status)".into()),
            ),
        }
    }

    /// How a message should look: good news, bad news, something waiting, or a test.
    pub fn tone(&self) -> Tone {
        match self.kind.as_str() {
            _ if self.data.test => Tone::Info,
            "job.done" | "job.resolved" | "watcher.recovered" => Tone::Good,
            "job.error" | "watcher.failing" => Tone::Bad,
            _ => Tone::Waiting,
        }
    }
}

/// `sdm-watch has completed no poll cycle of https://... since ... (12m): token_refused.`
fn watcher_headline(kind: &str, facts: &WatcherFacts) -> String {
    let human = |seconds: Option<u64>| {
        humantime::format_duration(std::time::Duration::from_secs(seconds.unwrap_or(0))).to_string()
    };
    if kind == "watcher.recovered" {
        return format!(
            "sdm-watch polls {} again, after {} without a successful cycle (since {}).",
            facts.watching,
            human(facts.down_for_seconds),
            facts.since
        );
    }
    format!(
        "sdm-watch has completed no poll cycle of {} for {} (since {}): {}. Job alerts are not being sent.",
        facts.watching,
        human(facts.failing_for_seconds),
        facts.since,
        facts.reason.as_deref().unwrap_or("unknown reason")
    )
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
/// Whole seconds as `1h 2m 3s`.
fn seconds_text(seconds: u64) -> String {
    humantime::format_duration(std::time::Duration::from_secs(seconds)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `docs/schemas/alert.schema.json` is what users validate alerts against: it must be
    /// the schema of the types that build them. `SDM_WATCH_WRITE_SCHEMAS=1 cargo test --lib
    /// payload` writes it again after a change.
    #[test]
    fn the_documented_schema_is_the_payload_s() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/docs/schemas/alert.schema.json"
        );
        let mut schema = serde_json::to_string_pretty(&schemars::schema_for!(AlertEvent)).unwrap();
        schema.push('\n');
        if std::env::var_os("SDM_WATCH_WRITE_SCHEMAS").is_some() {
            std::fs::write(path, &schema).unwrap();
        }
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == schema,
            "{path} is not the payload's schema; write it with \
             SDM_WATCH_WRITE_SCHEMAS=1 cargo test --lib payload"
        );
    }
}
