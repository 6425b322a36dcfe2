//! `[state]`: where the store lives: a SQLite file (`path`, the default), or a PostgreSQL
//! database several replicas share (`url`, with `password` or `password_file`).

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::{ConfigError, Section};
use super::secret::Secret;
use super::value::{HumanDuration, human, positive, secret};

const DEFAULT_PATH: &str = "/var/lib/sdm-watch/state.db";
/// How long a leader's lease lasts unless renewed.
const DEFAULT_LEASE: Duration = Duration::from_secs(15);
/// How long finished jobs are kept for reports.
const DEFAULT_KEEP: Duration = Duration::from_secs(90 * 86_400);

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RawState {
    pub path: Option<PathBuf>,
    pub url: Option<String>,
    pub password: Option<Secret>,
    pub password_file: Option<PathBuf>,
    pub lease: Option<HumanDuration>,
    /// How long durations and outcomes of finished jobs are kept (default 90d).
    pub keep: Option<HumanDuration>,
}

#[derive(Clone, Debug, Serialize)]
pub struct StateConfig {
    /// The SQLite file; unused with `url`.
    pub path: PathBuf,
    /// PostgreSQL, shared by replicas; the password is never in it (nor printed).
    pub url: Option<String>,
    pub password: Option<Secret>,
    /// How long the leader's lease lasts unless renewed (PostgreSQL).
    #[serde(serialize_with = "human")]
    pub lease: Duration,
    /// Settled jobs created longer ago than this are forgotten (reports read up to it).
    #[serde(serialize_with = "human")]
    pub keep: Duration,
}

impl StateConfig {
    pub(super) fn parse(raw: RawState) -> Result<StateConfig, ConfigError> {
        let section = Section::new("state");
        let password = secret(&section.key("password"), raw.password, raw.password_file)?;
        let lease = match raw.lease {
            Some(lease) => positive(&section.key("lease"), lease.0)?,
            None => DEFAULT_LEASE,
        };
        if lease < Duration::from_secs(2) {
            return Err(section.invalid(
                "lease",
                "must be at least 2s: a shorter lease is lost to an ordinary pause",
            ));
        }
        let keep = match raw.keep {
            Some(keep) => positive(&section.key("keep"), keep.0)?,
            None => DEFAULT_KEEP,
        };
        if keep < Duration::from_secs(86_400) {
            return Err(section.invalid(
                "keep",
                "must be at least 1d: a job must outlive the cycles that compare against it",
            ));
        }
        match (raw.path, raw.url) {
            (Some(_), Some(_)) => Err(section.invalid(
                "url",
                "set state.path (SQLite) or state.url (PostgreSQL), not both",
            )),
            (path, None) => {
                if password.is_some() {
                    return Err(section.invalid(
                        "password",
                        "is for state.url (PostgreSQL); SQLite needs none",
                    ));
                }
                let path = path.unwrap_or_else(|| DEFAULT_PATH.into());
                if path.as_os_str().is_empty() {
                    return Err(section.invalid("path", "must not be empty"));
                }
                Ok(StateConfig {
                    path,
                    url: None,
                    password: None,
                    lease,
                    keep,
                })
            }
            (None, Some(url)) => {
                check_url(&section, &url)?;
                Ok(StateConfig {
                    path: DEFAULT_PATH.into(),
                    url: Some(url),
                    password,
                    lease,
                    keep,
                })
            }
        }
    }
}

/// A PostgreSQL URL as `state.url` takes it: the scheme, a known `sslmode`, no password.
fn check_url(section: &Section, url: &str) -> Result<(), ConfigError> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(section.invalid("url", "must start with postgres:// or postgresql://"));
    }
    let sslmode = url
        .split_once('?')
        .and_then(|(_, q)| q.split('&').find_map(|p| p.strip_prefix("sslmode=")));
    if let Some(mode) = sslmode
        && !["disable", "prefer", "require", "verify-ca", "verify-full"].contains(&mode)
    {
        return Err(section.invalid(
            "url",
            format!(
                "sslmode {mode:?} is not one of disable, prefer, require, verify-ca, verify-full"
            ),
        ));
    }
    if url_has_password(url) {
        return Err(section.invalid(
            "url",
            "must not hold the password: use state.password or state.password_file",
        ));
    }
    Ok(())
}

/// Whether `url` carries a password (`user:secret@host` or `?password=`).
fn url_has_password(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
    let in_authority = authority
        .rsplit_once('@')
        .is_some_and(|(user, _)| user.contains(':'));
    let in_query = url
        .split_once('?')
        .is_some_and(|(_, q)| q.split('&').any(|p| p.starts_with("password=")));
    in_authority || in_query
}
