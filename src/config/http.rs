//! `[http]` and `[log]`: the health, readiness and metrics endpoints, and the log format.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize, Serializer};

use super::error::{ConfigError, Section};
use super::tls::{Tls, TlsError};
use super::users::Users;

/// Where the endpoints listen when `http.listen` is not set: 10187, outside the range of
/// Prometheus exporters' ports (9100-9999, all allocated), none of which sdm-watch may take.
pub const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 10187);

/// The default before 0.1.0-2, postgres_exporter's port: still served beside the new one
/// for this release when `http.listen` is not set, with a warning; gone in the next.
pub const LEGACY_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 9187);

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RawHttp {
    /// Default 127.0.0.1:10187; "" turns the endpoints off.
    pub listen: Option<String>,
    /// Console users, `name:hash` a line; without it the console is read-only and open.
    pub users_file: Option<PathBuf>,
    /// Whether `/metrics` needs a user too.
    pub metrics_auth: bool,
    /// HTTPS: the certificate chain and its key (both or neither).
    pub tls_cert_file: Option<PathBuf>,
    pub tls_key_file: Option<PathBuf>,
}

#[derive(Clone, Debug, Serialize)]
pub struct HttpConfig {
    /// `None` when `listen = ""` turns the endpoints off.
    #[serde(serialize_with = "listen_address")]
    pub listen: Option<SocketAddr>,
    /// [`LEGACY_LISTEN`], served too when `listen` was not set (for this release only).
    #[serde(skip)]
    pub legacy_listen: Option<SocketAddr>,
    /// Who may sign in (`users_file`), read and checked; `check` prints its path only.
    #[serde(
        rename = "users_file",
        serialize_with = "users_path",
        skip_serializing_if = "Option::is_none"
    )]
    pub users: Option<Users>,
    pub metrics_auth: bool,
    /// HTTPS on `listen`; `check` prints the two paths.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub tls: Option<Tls>,
}

fn users_path<S: Serializer>(users: &Option<Users>, serializer: S) -> Result<S::Ok, S::Error> {
    match users {
        Some(users) => serializer.collect_str(&users.path.display()),
        None => serializer.serialize_none(),
    }
}

impl HttpConfig {
    pub(super) fn parse(raw: RawHttp) -> Result<HttpConfig, ConfigError> {
        let (listen, legacy_listen) = match raw.listen.as_deref().map(str::trim) {
            None => (Some(DEFAULT_LISTEN), Some(LEGACY_LISTEN)),
            Some("") => (None, None),
            Some(text) => (
                Some(text.parse::<SocketAddr>().map_err(|_| {
                    Section::new("http").invalid(
                        "listen",
                        format!(
                            "{text:?} is not an address like \"127.0.0.1:10187\" (\"\" turns the endpoints off)"
                        ),
                    )
                })?),
                None,
            ),
        };
        let http = Section::new("http");
        let users = match raw.users_file {
            Some(path) => Some(
                Users::load(&path).map_err(|why| http.invalid("users_file", why.to_string()))?,
            ),
            None => None,
        };
        if raw.metrics_auth && users.is_none() {
            return Err(http.invalid(
                "metrics_auth",
                "needs http.users_file: without users nobody could read /metrics",
            ));
        }
        let tls = match (raw.tls_cert_file, raw.tls_key_file) {
            (None, None) => None,
            (Some(_), None) => {
                return Err(http.invalid(
                    "tls_key_file",
                    "is missing: tls_cert_file needs the key that goes with it",
                ));
            }
            (None, Some(_)) => {
                return Err(http.invalid(
                    "tls_cert_file",
                    "is missing: tls_key_file needs the certificate it goes with",
                ));
            }
            (Some(cert), Some(key)) => Some(Tls::load(&cert, &key).map_err(|e| match e {
                TlsError::Cert(why) => http.invalid("tls_cert_file", why),
                TlsError::Key(why) => http.invalid("tls_key_file", why),
            })?),
        };
        Ok(HttpConfig {
            listen,
            legacy_listen,
            users,
            metrics_auth: raw.metrics_auth,
            tls,
        })
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
