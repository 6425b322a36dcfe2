//! `[[report]]`: a report of the last `since`, sent on a schedule (`"mon 08:00"`,
//! `"daily 07:30"` in `timezone`) to the channels named.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::channels::{EmailConfig, WebhookConfig};
use super::error::{ConfigError, Section};
use super::receiver::WebhookFormat;
use super::value::{HumanDuration, human, positive};
use crate::domain::schedule::{Schedule, ScheduleError};

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawReport {
    pub name: String,
    /// `"mon 08:00"`, `"mon-fri 07:00"`, `"daily 07:30"`.
    pub schedule: String,
    /// An IANA time zone; default `UTC`.
    #[serde(default = "utc")]
    pub timezone: String,
    /// The period reported: jobs created this long before the slot; default 7 days.
    pub since: Option<HumanDuration>,
    pub channels: Vec<String>,
}

fn utc() -> String {
    "UTC".into()
}

#[derive(Clone, Debug, Serialize)]
pub struct ReportConfig {
    pub name: String,
    pub schedule: String,
    pub timezone: String,
    #[serde(serialize_with = "human")]
    pub since: Duration,
    pub channels: Vec<String>,
    #[serde(skip)]
    pub slots: Arc<Schedule>,
    /// Whether the config names several organisations (the report then says which).
    #[serde(skip)]
    pub several_organisations: bool,
}

pub(super) fn parse(
    raw: Vec<RawReport>,
    webhooks: &[WebhookConfig],
    emails: &[EmailConfig],
) -> Result<Vec<ReportConfig>, ConfigError> {
    let mut reports: Vec<ReportConfig> = Vec::new();
    for (i, raw) in raw.into_iter().enumerate() {
        let section = Section::new(format!("report[{i}]"));
        let name = raw.name.trim().to_owned();
        if name.is_empty() {
            return Err(section.invalid("name", "must not be empty"));
        }
        if reports.iter().any(|r| r.name == name) {
            return Err(section.invalid("name", format!("{name:?} names two reports")));
        }
        let slots = Schedule::parse(&raw.schedule, &raw.timezone).map_err(|e| match e {
            ScheduleError::Schedule(problem) => section.invalid("schedule", problem),
            ScheduleError::Timezone(problem) => section.invalid("timezone", problem.to_string()),
        })?;
        let since = match raw.since {
            Some(since) => positive(&section.key("since"), since.0)?,
            None => Duration::from_secs(7 * 86_400),
        };
        if raw.channels.is_empty() {
            return Err(section.invalid("channels", "names no channel: name at least one"));
        }
        for channel in &raw.channels {
            let hook = webhooks.iter().find(|hook| &hook.name == channel);
            let email = emails.iter().any(|email| &email.name == channel);
            match hook.map(|hook| hook.format) {
                None if !email => {
                    return Err(section.invalid(
                        "channels",
                        format!("{channel:?} is not a [[webhook]] or [[email]] of this config"),
                    ));
                }
                Some(WebhookFormat::Alertmanager | WebhookFormat::Pagerduty) => {
                    return Err(section.invalid(
                        "channels",
                        format!("{channel:?} is an incident tool: it takes incidents, not reports"),
                    ));
                }
                Some(WebhookFormat::Template) => {
                    return Err(section.invalid(
                        "channels",
                        format!(
                            "{channel:?} has format = \"template\", whose template is written for alerts: send reports to a channel of another format"
                        ),
                    ));
                }
                _ => {}
            }
        }
        reports.push(ReportConfig {
            name,
            schedule: raw.schedule,
            timezone: raw.timezone,
            since,
            channels: raw.channels,
            slots: Arc::new(slots),
            several_organisations: false,
        });
    }
    Ok(reports)
}
