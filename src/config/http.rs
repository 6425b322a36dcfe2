//! `[http]` and `[log]`: the health, readiness and metrics endpoints, and the log format.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize, Serializer};

use super::error::{ConfigError, Section};

#[derive(Debug, Deserialize, schemars::JsonSchema)]
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

#[derive(Clone, Debug, Serialize)]
pub struct HttpConfig {
    /// `None` when `listen = ""` turns the endpoints off.
    #[serde(serialize_with = "listen_address")]
    pub listen: Option<SocketAddr>,
}

impl HttpConfig {
    pub(super) fn parse(raw: RawHttp) -> Result<HttpConfig, ConfigError> {
        let listen = match raw.listen.trim() {
            "" => None,
            text => Some(text.parse::<SocketAddr>().map_err(|_| {
                Section::new("http").invalid(
                    "listen",
                    format!(
                        "{text:?} is not an address like \"127.0.0.1:9187\" (\"\" turns the endpoints off)"
                    ),
                )
            })?),
        };
        Ok(HttpConfig { listen })
    }
}

fn listen_address<S: Serializer>(
    value: &Option<SocketAddr>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(address) => serializer.collect_str(address),
        None => serializer.serialize_str(""),
    }
}

#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RawLog {
    pub format: LogFormat,
}

#[derive(Clone, Debug, Serialize)]
pub struct LogConfig {
    pub format: LogFormat,
}
