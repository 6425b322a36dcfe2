//! `[poll]`: how often to look, how far back the very first cycle looks, which projects,
//! which statuses alert.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::{ConfigError, Section};
use super::value::{HumanDuration, human, human_or_zero, positive, project_ids, secs, statuses};
use crate::domain::{Event, ProjectId, Status};

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RawPoll {
    pub interval: HumanDuration,
    /// Default: 10 s, or `interval` if that is shorter.
    pub active_interval: Option<HumanDuration>,
    pub lookback: HumanDuration,
    pub projects: Vec<ProjectId>,
    pub notify_on: Vec<Status>,
    pub alert_existing: bool,
    pub remind_pending_every: HumanDuration,
    pub running_longer_than: HumanDuration,
    /// `job.running_long` once a job runs this many times its project's usual p95 (0: off).
    pub running_longer_than_usual: f64,
}

impl Default for RawPoll {
    fn default() -> Self {
        Self {
            interval: secs(60),
            active_interval: None,
            lookback: secs(7 * 24 * 3600),
            projects: Vec::new(),
            notify_on: vec![Status::Done, Status::Error, Status::Pending],
            alert_existing: false,
            remind_pending_every: secs(0),
            running_longer_than: secs(0),
            running_longer_than_usual: 0.0,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct PollConfig {
    #[serde(serialize_with = "human")]
    pub interval: Duration,
    /// The cadence while any tracked job is `running`.
    #[serde(serialize_with = "human")]
    pub active_interval: Duration,
    #[serde(serialize_with = "human")]
    pub lookback: Duration,
    pub projects: Vec<ProjectId>,
    pub notify_on: Vec<Status>,
    pub alert_existing: bool,
    /// How often a job still `pending` is reminded of; `None`: never.
    #[serde(serialize_with = "human_or_zero")]
    pub remind_pending_every: Option<Duration>,
    /// After how long a job still `running` alerts, once; `None`: never.
    #[serde(serialize_with = "human_or_zero")]
    pub running_longer_than: Option<Duration>,
    /// A job still `running` alerts, once, when it has run this many times the p95 of its
    /// project's last completed runs; `None`: never.
    #[serde(serialize_with = "factor_or_zero")]
    pub running_longer_than_usual: Option<f64>,
}

/// How many completed runs of a project the adaptive running-long rule looks back on.
pub const USUAL_RUNS: usize = 50;
/// The fewest completed runs it needs before it judges a project's job.
pub const USUAL_RUNS_NEEDED: usize = 10;

fn factor_or_zero<S: serde::Serializer>(factor: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(factor.unwrap_or(0.0))
}

impl PollConfig {
    pub(super) fn parse(raw: RawPoll) -> Result<PollConfig, ConfigError> {
        let poll = Section::new("poll");
        if raw.interval.0 < Duration::from_secs(1) {
            return Err(poll.invalid("interval", "must be at least 1s"));
        }
        let active_interval = raw
            .active_interval
            .map_or(raw.interval.0.min(Duration::from_secs(10)), |d| d.0);
        if active_interval < Duration::from_secs(1) {
            return Err(poll.invalid("active_interval", "must be at least 1s"));
        }
        if active_interval > raw.interval.0 {
            return Err(poll.invalid(
                "active_interval",
                format!(
                    "{} is longer than poll.interval ({}): it is the faster cadence, used while jobs run",
                    humantime::format_duration(active_interval),
                    humantime::format_duration(raw.interval.0)
                ),
            ));
        }
        let never_if_zero = |d: HumanDuration| (!d.0.is_zero()).then_some(d.0);
        let usual = raw.running_longer_than_usual;
        if !usual.is_finite() || usual < 0.0 || (usual > 0.0 && usual < 1.0) || usual > 1000.0 {
            return Err(poll.invalid(
                "running_longer_than_usual",
                format!(
                    "{usual} is not a factor between 1 and 1000 (0 turns it off): a job alerts when it runs that many times its project's usual p95"
                ),
            ));
        }
        Ok(PollConfig {
            interval: raw.interval.0,
            active_interval,
            lookback: positive(&poll.key("lookback"), raw.lookback.0)?,
            projects: project_ids(&poll.key("projects"), raw.projects)?,
            notify_on: statuses(&poll.key("notify_on"), raw.notify_on, &Status::KNOWN)?,
            alert_existing: raw.alert_existing,
            remind_pending_every: never_if_zero(raw.remind_pending_every),
            running_longer_than: never_if_zero(raw.running_longer_than),
            running_longer_than_usual: (usual > 0.0).then_some(usual),
        })
    }

    /// How long after a cycle began the next begins: `active_interval` while a tracked
    /// job is `running`, else `interval`.
    pub fn cadence(&self, running: bool) -> Duration {
        if running {
            self.active_interval
        } else {
            self.interval
        }
    }

    /// The events a channel may ask for: the `notify_on` statuses and the reminders that
    /// are enabled. A channel that names none gets them all.
    pub fn events(&self) -> Vec<Event> {
        let mut events: Vec<Event> = self.notify_on.iter().cloned().map(Event::from).collect();
        if self.remind_pending_every.is_some() {
            events.push(Event::PendingReminder);
        }
        if self.running_long() {
            events.push(Event::RunningLong);
        }
        events
    }

    /// Whether either running-long rule is on.
    pub fn running_long(&self) -> bool {
        self.running_longer_than.is_some() || self.running_longer_than_usual.is_some()
    }
}
