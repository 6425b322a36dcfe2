//! `[delivery]`: how long an alert may stay undelivered, how many go out at once.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::{ConfigError, Section};
use super::value::{HumanDuration, human, positive, secs};

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RawDelivery {
    pub max_age: HumanDuration,
    pub concurrency: i64,
}

impl Default for RawDelivery {
    fn default() -> Self {
        Self {
            max_age: secs(24 * 3600),
            concurrency: 16,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct DeliveryConfig {
    #[serde(serialize_with = "human")]
    pub max_age: Duration,
    /// Alerts in flight at once, across channels.
    pub concurrency: usize,
}

impl DeliveryConfig {
    pub(super) fn parse(raw: RawDelivery) -> Result<DeliveryConfig, ConfigError> {
        let delivery = Section::new("delivery");
        let concurrency = match usize::try_from(raw.concurrency) {
            Ok(n @ 1..=256) => n,
            _ => {
                return Err(delivery.invalid(
                    "concurrency",
                    format!("must be between 1 and 256, got {}", raw.concurrency),
                ));
            }
        };
        Ok(DeliveryConfig {
            max_age: positive(&delivery.key("max_age"), raw.max_age.0)?,
            concurrency,
        })
    }
}
