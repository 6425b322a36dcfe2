//! `[poll]`: how often to look, how far back the very first cycle looks, which projects,
//! which statuses alert.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::{ConfigError, Section};
use super::value::{HumanDuration, human, positive, project_ids, secs, statuses};
use crate::domain::{ProjectId, Status};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawPoll {
    pub interval: HumanDuration,
    pub lookback: HumanDuration,
    pub projects: Vec<ProjectId>,
    pub notify_on: Vec<Status>,
    pub alert_existing: bool,
}

impl Default for RawPoll {
    fn default() -> Self {
        Self {
            interval: secs(60),
            lookback: secs(7 * 24 * 3600),
            projects: Vec::new(),
            notify_on: vec![Status::Done, Status::Error, Status::Pending],
            alert_existing: false,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct PollConfig {
    #[serde(serialize_with = "human")]
    pub interval: Duration,
    #[serde(serialize_with = "human")]
    pub lookback: Duration,
    pub projects: Vec<ProjectId>,
    pub notify_on: Vec<Status>,
    pub alert_existing: bool,
}

impl PollConfig {
    pub(super) fn parse(raw: RawPoll) -> Result<PollConfig, ConfigError> {
        let poll = Section::new("poll");
        if raw.interval.0 < Duration::from_secs(1) {
            return Err(poll.invalid("interval", "must be at least 1s"));
        }
        Ok(PollConfig {
            interval: raw.interval.0,
            lookback: positive(&poll.key("lookback"), raw.lookback.0)?,
            projects: project_ids(&poll.key("projects"), raw.projects)?,
            notify_on: statuses(&poll.key("notify_on"), raw.notify_on, &Status::KNOWN)?,
            alert_existing: raw.alert_existing,
        })
    }
}
