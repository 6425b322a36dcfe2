//! Which alerts a channel (a `[[webhook]]` or an `[[email]]`) takes, when, and how they
//! are gathered into digests: the keys both kinds of channel share.

use std::time::Duration;

use serde::Serialize;

use super::calendar::Hours;
use super::error::{ConfigError, Section};
use super::value::{HumanDuration, human};
use crate::domain::{Event, ProjectId};

/// Alerts of one channel gathered into digests: those queued within `wait` of the first
/// go out together, at most `max` in one message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Grouping {
    #[serde(rename = "group_wait", serialize_with = "human")]
    pub wait: Duration,
    #[serde(rename = "group_max")]
    pub max: usize,
}

impl Grouping {
    pub(super) fn parse(
        section: &Section,
        wait: HumanDuration,
        max: i64,
    ) -> Result<Option<Grouping>, ConfigError> {
        let max = usize::try_from(max)
            .ok()
            .filter(|max| (1..=10_000).contains(max))
            .ok_or_else(|| {
                section.invalid(
                    "group_max",
                    format!("must be between 1 and 10000 alerts in one digest, got {max}"),
                )
            })?;
        Ok((!wait.0.is_zero()).then_some(Grouping { wait: wait.0, max }))
    }
}

/// Which alerts a channel takes, and when: the keys `[[webhook]]` and `[[email]]` share.
#[derive(Clone, Debug, Serialize)]
pub struct Routing {
    pub events: Vec<Event>,
    pub projects: Vec<ProjectId>,
    /// The organisations whose alerts it wants (empty: all); checked against the config's
    /// organisations by `Config::from_raw`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub organisations: Vec<String>,
    /// The `[[time_window]]`s it hears alerts in (empty: always) and those it is muted
    /// in, by name; read into `hours` by `Config::from_raw`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub active_during: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub muted_during: Vec<String>,
    #[serde(skip)]
    pub hours: Hours,
    /// Also `job.resolved` when an incident it was sent ends (always, for `alertmanager`
    /// and `pagerduty`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub send_resolved: bool,
    /// `None` (`group_wait = "0s"`): one message per alert.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub grouping: Option<Grouping>,
}
