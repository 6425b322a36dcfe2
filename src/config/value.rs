//! Values that several sections share, read from text once: durations, secrets (inline or
//! from a file), statuses, project ids, e-mail addresses, trusted CA files; and how they
//! print in `check`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use lettre::message::Mailbox;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::Secret;
use super::error::ConfigError;
use crate::domain::{Event, ProjectId, Status};

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
                crate::domain::time::parse_duration(text)
                    .map(HumanDuration)
                    .map_err(E::custom)
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

pub(super) fn secs(n: u64) -> HumanDuration {
    HumanDuration(Duration::from_secs(n))
}

pub(super) fn positive(key: &str, value: Duration) -> Result<Duration, ConfigError> {
    if value.is_zero() {
        return Err(ConfigError::invalid(key, "must be longer than zero"));
    }
    Ok(value)
}

/// A secret given inline or as `<key>_file`, never both; a file's content is trimmed.
pub(super) fn secret(
    key: &str,
    inline: Option<Secret>,
    file: Option<PathBuf>,
) -> Result<Option<Secret>, ConfigError> {
    match (inline, file) {
        (Some(_), Some(_)) => Err(ConfigError::invalid(
            key,
            format!("set either {key} or {key}_file, not both"),
        )),
        (Some(secret), None) if secret.expose().trim().is_empty() => {
            Err(ConfigError::invalid(key, "is empty"))
        }
        (Some(secret), None) => Ok(Some(Secret::new(secret.expose().trim()))),
        (None, Some(path)) => {
            let file_key = format!("{key}_file");
            let path = secret_path(&file_key, &path)?;
            read_secret_file(&path)
                .map(Some)
                .map_err(|reason| ConfigError::invalid(&file_key, reason.to_string()))
        }
        (None, None) => Ok(None),
    }
}

/// Why a secret file cannot be used; it names the file, never its content.
#[derive(Debug, thiserror::Error)]
pub enum SecretFileError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is empty", path.display())]
    Empty { path: PathBuf },
}

/// A secret file's trimmed content.
pub fn read_secret_file(path: &Path) -> Result<Secret, SecretFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| SecretFileError::Read {
        path: path.to_owned(),
        source,
    })?;
    let text = text.trim();
    if text.is_empty() {
        return Err(SecretFileError::Empty {
            path: path.to_owned(),
        });
    }
    Ok(Secret::new(text))
}

/// The path a `<key>_file` names: `$CREDENTIALS_DIRECTORY/x` or `${CREDENTIALS_DIRECTORY}/x`
/// becomes the directory where systemd put the unit's `LoadCredential=` files;
/// `${CREDENTIALS_DIRECTORY:-/etc/sdm-watch}/x` the same, or `/etc/sdm-watch/x` where the
/// variable is not set (from a shell), as a POSIX shell reads it.
pub(super) fn secret_path(key: &str, path: &Path) -> Result<PathBuf, ConfigError> {
    let text = path.to_string_lossy();
    let directory = std::env::var_os("CREDENTIALS_DIRECTORY").filter(|dir| !dir.is_empty());
    if let Some(rest) = text.strip_prefix("${CREDENTIALS_DIRECTORY:-") {
        let Some((fallback, rest)) = rest.split_once('}') else {
            return Err(ConfigError::invalid(
                key,
                format!("{text} has no '}}' after ${{CREDENTIALS_DIRECTORY:-"),
            ));
        };
        let directory = directory.map_or_else(|| PathBuf::from(fallback), PathBuf::from);
        return Ok(directory.join(rest.trim_start_matches('/')));
    }
    let rest = text
        .strip_prefix("${CREDENTIALS_DIRECTORY}")
        .or_else(|| text.strip_prefix("$CREDENTIALS_DIRECTORY"));
    let Some(rest) = rest else {
        return Ok(path.to_owned());
    };
    let directory = directory.ok_or_else(|| {
        ConfigError::invalid(
            key,
            format!(
                "{text} uses $CREDENTIALS_DIRECTORY, which is not set (systemd sets it for units with LoadCredential=; \
                 ${{CREDENTIALS_DIRECTORY:-/etc/sdm-watch}}/... names a directory for when it is not)"
            ),
        )
    })?;
    Ok(PathBuf::from(directory).join(rest.trim_start_matches('/')))
}

/// A non-empty list of events a channel wants, each one of `allowed` (see
/// [`super::PollConfig::events`]), duplicates dropped.
pub(super) fn events(
    key: &str,
    values: Vec<Event>,
    allowed: &[Event],
) -> Result<Vec<Event>, ConfigError> {
    if values.is_empty() {
        return Err(ConfigError::invalid(key, "must name at least one event"));
    }
    let mut result: Vec<Event> = Vec::new();
    for event in values {
        if !allowed.contains(&event) {
            let why = match &event {
                Event::PendingReminder => {
                    "is not enabled: set poll.remind_pending_every to a period".to_owned()
                }
                Event::RunningLong => {
                    "is not enabled: set poll.running_longer_than to a duration or poll.running_longer_than_usual to a factor".to_owned()
                }
                Event::Watcher => "is not enabled: watchdog.alert_after is \"0s\"".to_owned(),
                Event::Resolved => {
                    "is not an event to ask for: set send_resolved = true on the channel".to_owned()
                }
                Event::Report => {
                    "is not an event to ask for: a [[report]] names the channels it goes to"
                        .to_owned()
                }
                Event::Entered(status) if Status::KNOWN.contains(status) => {
                    "is not in poll.notify_on, so it would never be alerted".to_owned()
                }
                Event::Entered(_) => "is neither a job status nor a reminder".to_owned(),
            };
            let allowed: Vec<&str> = allowed.iter().map(Event::as_str).collect();
            return Err(ConfigError::invalid(
                key,
                format!(
                    "{:?} {why} (allowed: {})",
                    event.as_str(),
                    allowed.join(", ")
                ),
            ));
        }
        if !result.contains(&event) {
            result.push(event);
        }
    }
    Ok(result)
}

/// A non-empty list of statuses, each one of `allowed`, duplicates dropped.
pub(super) fn statuses(
    key: &str,
    values: Vec<Status>,
    allowed: &[Status],
) -> Result<Vec<Status>, ConfigError> {
    if values.is_empty() {
        return Err(ConfigError::invalid(key, "must name at least one status"));
    }
    let mut result: Vec<Status> = Vec::new();
    for status in values {
        if !allowed.contains(&status) {
            let allowed: Vec<&str> = allowed.iter().map(Status::as_str).collect();
            let why = if Status::KNOWN.contains(&status) {
                "is not in poll.notify_on, so it would never be alerted"
            } else {
                "is not a job status"
            };
            return Err(ConfigError::invalid(
                key,
                format!(
                    "{status:?} {why} (allowed: {})",
                    allowed.join(", "),
                    status = status.as_str()
                ),
            ));
        }
        if !result.contains(&status) {
            result.push(status);
        }
    }
    Ok(result)
}

pub(super) fn project_ids(key: &str, ids: Vec<ProjectId>) -> Result<Vec<ProjectId>, ConfigError> {
    if let Some(bad) = ids.iter().find(|id| **id <= 0) {
        return Err(ConfigError::invalid(
            key,
            format!("project ids are positive integers, got {bad}"),
        ));
    }
    let mut ids = ids;
    ids.sort_unstable();
    ids.dedup();
    Ok(ids)
}

pub(super) fn mailbox(key: &str, text: &str) -> Result<Mailbox, ConfigError> {
    text.parse()
        .map_err(|e| ConfigError::invalid(key, format!("{text:?} is not an e-mail address ({e})")))
}

/// PEM certificates to trust besides the system's roots, read and checked at load.
#[derive(Clone)]
pub struct CaFile {
    pub path: PathBuf,
    pub certificates: Vec<reqwest::Certificate>,
    /// The file's PEM text, for clients that take it whole (SMTP).
    pub pem: Vec<u8>,
}

impl CaFile {
    pub(super) fn load(key: &str, path: PathBuf) -> Result<CaFile, ConfigError> {
        let pem = std::fs::read(&path).map_err(|e| {
            ConfigError::invalid(key, format!("cannot read {}: {e}", path.display()))
        })?;
        let certificates = reqwest::Certificate::from_pem_bundle(&pem)
            .ok()
            .filter(|certificates| !certificates.is_empty())
            .ok_or_else(|| {
                ConfigError::invalid(key, format!("{} holds no PEM certificate", path.display()))
            })?;
        Ok(CaFile {
            path,
            certificates,
            pem,
        })
    }
}

impl std::fmt::Debug for CaFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CaFile({})", self.path.display())
    }
}

impl Serialize for CaFile {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.path.display())
    }
}

/// A webhook URL as `check` shows it: scheme, host and port; any path or query as
/// `/[redacted]` (Slack, Discord, Google Chat and Teams carry their key there), userinfo
/// left out.
pub fn redacted_url(url: &url::Url) -> String {
    let host = url.host_str().unwrap_or("");
    let port = url
        .port()
        .map(|port| format!(":{port}"))
        .unwrap_or_default();
    let path = if url.path() == "/" && url.query().is_none() {
        "/"
    } else {
        "/[redacted]"
    };
    format!("{}://{host}{port}{path}", url.scheme())
}

pub(super) fn redacted<S: Serializer>(url: &url::Url, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&redacted_url(url))
}

pub(super) fn redacted_all<S: Serializer>(
    urls: &[url::Url],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(urls.iter().map(redacted_url))
}

/// Header values may be credentials: only their names are shown.
pub(super) fn header_names<S: Serializer>(
    headers: &[(String, String)],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_map(headers.iter().map(|(name, _)| (name, "[redacted]")))
}

pub(super) fn human<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&humantime::format_duration(*value).to_string())
}

pub(super) fn human_option<S: Serializer>(
    value: &Option<Duration>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(duration) => human(duration, serializer),
        None => serializer.serialize_none(),
    }
}

/// A period that may be off, printed as the key is written: `"0s"` for off.
pub(super) fn human_or_zero<S: Serializer>(
    value: &Option<Duration>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    human(&value.unwrap_or(Duration::ZERO), serializer)
}

pub(super) fn display<S: Serializer>(value: &Mailbox, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(value)
}

pub(super) fn displays<S: Serializer>(
    values: &[Mailbox],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(values.iter().map(ToString::to_string))
}
