//! The configuration file as written: serde structs with the documented defaults, unknown
//! keys refused. Nothing here is trusted; [`super::Config::from_raw`] checks every value.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use super::Secret;
use crate::sdm::{ProjectId, Status};

/// A humantime duration such as `"30s"` or `"7d"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = HumanDuration;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a duration string such as \"30s\", \"5m\" or \"7d\"")
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<HumanDuration, E> {
                humantime::parse_duration(text)
                    .map(HumanDuration)
                    .map_err(|e| {
                        E::custom(format!(
                            "{text:?} is not a duration ({e}); write e.g. \"30s\", \"5m\", \"7d\""
                        ))
                    })
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

fn secs(n: u64) -> HumanDuration {
    HumanDuration(Duration::from_secs(n))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawConfig {
    pub api: RawApi,
    pub poll: RawPoll,
    pub retry: RawRetry,
    pub state: RawState,
    pub delivery: RawDelivery,
    pub http: RawHttp,
    pub log: RawLog,
    pub output: Option<RawOutput>,
    pub webhook: Vec<RawWebhook>,
    pub smtp: Option<RawSmtp>,
    pub email: Vec<RawEmail>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawApi {
    pub base_url: String,
    pub token: Option<Secret>,
    pub token_file: Option<PathBuf>,
    pub timeout: HumanDuration,
    pub ca_file: Option<PathBuf>,
    pub page_size: i64,
    pub max_requests_per_second: f64,
}

impl Default for RawApi {
    fn default() -> Self {
        Self {
            base_url: "https://sdm.akeneo.cloud/api/v1/".into(),
            token: None,
            token_file: None,
            timeout: secs(30),
            ca_file: None,
            page_size: 100,
            max_requests_per_second: 5.0,
        }
    }
}

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

#[derive(Debug, Deserialize)]
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawState {
    pub path: PathBuf,
}

impl Default for RawState {
    fn default() -> Self {
        Self {
            path: "/var/lib/sdm-watch/state.db".into(),
        }
    }
}

#[derive(Debug, Deserialize)]
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawHttp {
    pub listen: String,
}

impl Default for RawHttp {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:9187".into(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawLog {
    pub format: super::LogFormat,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOutput {
    pub format_id: Option<i64>,
    /// Project id (as a TOML key, so a string) to the format id for that project.
    #[serde(default)]
    pub projects: BTreeMap<String, i64>,
    pub dir: PathBuf,
    pub retention: Option<HumanDuration>,
    #[serde(default = "five_mebibytes")]
    pub email_attach_max_bytes: i64,
}

fn five_mebibytes() -> i64 {
    5 * 1024 * 1024
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWebhook {
    pub name: String,
    pub url: String,
    pub secret: Option<Secret>,
    pub secret_file: Option<PathBuf>,
    pub events: Option<Vec<Status>>,
    #[serde(default)]
    pub projects: Vec<ProjectId>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default = "thirty_seconds")]
    pub timeout: HumanDuration,
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSmtp {
    pub host: String,
    pub port: Option<i64>,
    #[serde(default)]
    pub tls: super::SmtpTls,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub password_file: Option<PathBuf>,
    pub from: String,
    #[serde(default = "thirty_seconds")]
    pub timeout: HumanDuration,
    pub ca_file: Option<PathBuf>,
}

fn thirty_seconds() -> HumanDuration {
    secs(30)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEmail {
    pub name: String,
    pub to: Vec<String>,
    pub events: Option<Vec<Status>>,
    #[serde(default)]
    pub projects: Vec<ProjectId>,
}
