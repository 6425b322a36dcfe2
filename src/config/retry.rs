//! `[retry]`: the exponential backoff with jitter around every API call (and, but for
//! `max_elapsed`, every delivery).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::{ConfigError, Section};
use super::value::{HumanDuration, human, positive, secs};
use crate::backoff::Backoff;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RawRetry {
    pub initial_interval: HumanDuration,
    pub max_interval: HumanDuration,
    pub multiplier: f64,
    pub max_elapsed: HumanDuration,
}

impl Default for RawRetry {
    fn default() -> Self {
        Self {
            initial_interval: secs(1),
            max_interval: secs(60),
            multiplier: 2.0,
            max_elapsed: secs(300),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct RetryConfig {
    #[serde(serialize_with = "human")]
    pub initial_interval: Duration,
    #[serde(serialize_with = "human")]
    pub max_interval: Duration,
    pub multiplier: f64,
    #[serde(serialize_with = "human")]
    pub max_elapsed: Duration,
}

impl RetryConfig {
    pub(super) fn parse(raw: RawRetry) -> Result<RetryConfig, ConfigError> {
        let retry = Section::new("retry");
        let initial_interval = positive(&retry.key("initial_interval"), raw.initial_interval.0)?;
        if raw.max_interval.0 < initial_interval {
            return Err(retry.invalid(
                "max_interval",
                "must not be shorter than retry.initial_interval",
            ));
        }
        if !(raw.multiplier >= 1.0 && raw.multiplier <= 100.0) {
            return Err(retry.invalid(
                "multiplier",
                format!("must be between 1.0 and 100, got {}", raw.multiplier),
            ));
        }
        Ok(RetryConfig {
            initial_interval,
            max_interval: raw.max_interval.0,
            multiplier: raw.multiplier,
            max_elapsed: positive(&retry.key("max_elapsed"), raw.max_elapsed.0)?,
        })
    }

    /// The schedule of waits between tries.
    pub fn backoff(&self) -> Backoff {
        Backoff::new(self.initial_interval, self.max_interval, self.multiplier)
    }
}
