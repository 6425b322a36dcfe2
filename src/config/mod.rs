//! Configuration: the TOML file, then `SDM_WATCH_<SECTION>__<KEY>` environment variables,
//! parsed once into typed values. Every later module takes these types and never re-checks.

mod raw;
mod secret;

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use figment::Figment;
use figment::providers::{Env, Format, Toml};
use lettre::message::Mailbox;
use serde::{Deserialize, Serialize, Serializer};
use url::Url;

pub use secret::Secret;

use crate::sdm::{ProjectId, Status};
use raw::RawConfig;

/// Where the config file is looked for when neither `--config` nor `$SDM_WATCH_CONFIG` names one.
pub const DEFAULT_PATH: &str = "/etc/sdm-watch/config.toml";

/// A configuration that cannot be used, with the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {}: {problem}", path.display())]
    File { path: PathBuf, problem: String },
    #[error("{key}: {problem}")]
    Invalid { key: String, problem: String },
}

impl ConfigError {
    fn invalid(key: impl Into<String>, problem: impl Into<String>) -> Self {
        ConfigError::Invalid {
            key: key.into(),
            problem: problem.into(),
        }
    }

    /// The offending key, as an operator writes it (`webhook[0].url`).
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::Invalid { key, .. } => Some(key),
            ConfigError::File { .. } => None,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    #[default]
    Starttls,
    Tls,
    None,
}

#[derive(Clone, Debug, Serialize)]
pub struct Config {
    pub api: ApiConfig,
    pub poll: PollConfig,
    pub retry: RetryConfig,
    pub state: StateConfig,
    pub delivery: DeliveryConfig,
    pub http: HttpConfig,
    pub log: LogConfig,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<OutputConfig>,
    #[serde(rename = "webhook", skip_serializing_if = "Vec::is_empty")]
    pub webhooks: Vec<WebhookConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smtp: Option<SmtpConfig>,
    #[serde(rename = "email", skip_serializing_if = "Vec::is_empty")]
    pub emails: Vec<EmailConfig>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ApiConfig {
    /// Always ends in `/`, so that `jobs/` joins below it.
    pub base_url: Url,
    pub token: Secret,
    #[serde(serialize_with = "human")]
    pub timeout: Duration,
    /// Extra trusted roots for the API's TLS certificate, besides the system's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<CaFile>,
    pub page_size: u32,
    pub max_requests_per_second: f64,
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

#[derive(Clone, Debug, Serialize)]
pub struct StateConfig {
    pub path: PathBuf,
}

#[derive(Clone, Debug, Serialize)]
pub struct DeliveryConfig {
    #[serde(serialize_with = "human")]
    pub max_age: Duration,
    /// Alerts in flight at once, across channels.
    pub concurrency: usize,
}

#[derive(Clone, Debug, Serialize)]
pub struct HttpConfig {
    /// `None` when `listen = ""` turns the endpoints off.
    #[serde(serialize_with = "listen_address")]
    pub listen: Option<SocketAddr>,
}

#[derive(Clone, Debug, Serialize)]
pub struct LogConfig {
    pub format: LogFormat,
}

#[derive(Clone, Debug, Serialize)]
pub struct OutputConfig {
    /// For jobs of projects not in `projects`; `None`: only those projects' jobs are fetched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format_id: Option<u32>,
    #[serde(serialize_with = "project_formats")]
    pub projects: BTreeMap<ProjectId, u32>,
    pub dir: PathBuf,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "human_option"
    )]
    pub retention: Option<Duration>,
    pub email_attach_max_bytes: u64,
}

impl OutputConfig {
    /// The output format to fetch for a job of `project`, if any.
    pub fn format_for(&self, project: Option<ProjectId>) -> Option<u32> {
        project
            .and_then(|project| self.projects.get(&project).copied())
            .or(self.format_id)
    }
}

fn project_formats<S: Serializer>(
    value: &BTreeMap<ProjectId, u32>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_map(value.iter().map(|(project, id)| (project.to_string(), id)))
}

fn human_option<S: Serializer>(value: &Option<Duration>, serializer: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(duration) => human(duration, serializer),
        None => serializer.serialize_none(),
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct WebhookConfig {
    pub name: String,
    pub url: Url,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<SigningKey>,
    pub events: Vec<Status>,
    pub projects: Vec<ProjectId>,
    pub headers: Vec<(String, String)>,
    /// How long one delivery attempt may take.
    #[serde(serialize_with = "human")]
    pub timeout: Duration,
    /// Extra trusted roots for the receiver's TLS certificate, besides the system's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<CaFile>,
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
    fn load(key: &str, path: PathBuf) -> Result<CaFile, ConfigError> {
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

/// The HMAC key of a Standard Webhooks secret: the base64-decoded part after `whsec_`.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKey(Vec<u8>);

impl SigningKey {
    pub fn parse(secret: &str) -> Result<Self, String> {
        let encoded = secret
            .strip_prefix("whsec_")
            .ok_or("must start with \"whsec_\" (Standard Webhooks secret format)")?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|_| "the part after \"whsec_\" is not valid base64")?;
        if bytes.is_empty() {
            return Err("the part after \"whsec_\" is empty".into());
        }
        Ok(SigningKey(bytes))
    }

    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

impl Serialize for SigningKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("[redacted]")
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
    #[serde(serialize_with = "display")]
    pub from: Mailbox,
    #[serde(serialize_with = "human")]
    pub timeout: Duration,
    /// Extra trusted roots for the SMTP server's TLS certificate, besides the system's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<CaFile>,
}

#[derive(Clone, Debug, Serialize)]
pub struct EmailConfig {
    pub name: String,
    #[serde(serialize_with = "displays")]
    pub to: Vec<Mailbox>,
    pub events: Vec<Status>,
    pub projects: Vec<ProjectId>,
}

fn human<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&humantime::format_duration(*value).to_string())
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

fn display<S: Serializer>(value: &Mailbox, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(value)
}

fn displays<S: Serializer>(values: &[Mailbox], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(values.iter().map(ToString::to_string))
}

impl Config {
    /// Reads the file at `path`, applies the environment, and checks every value.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
            path: path.to_owned(),
            problem: match e.kind() {
                std::io::ErrorKind::NotFound => {
                    "not found (give --config PATH or set SDM_WATCH_CONFIG)".into()
                }
                _ => format!("cannot be read: {e}"),
            },
        })?;
        Self::from_toml(&text, path)
    }

    /// As [`Config::load`], from TOML text; `path` only names the source in errors.
    pub fn from_toml(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let environment = Env::prefixed("SDM_WATCH_")
            // SDM_WATCH_CONFIG and SDM_WATCH_LOG are not config keys.
            .filter(|key| key.as_str().contains("__"))
            .split("__");
        let raw = Figment::new()
            .merge(Toml::string(text))
            .merge(environment)
            .extract::<RawConfig>()
            .map_err(|e| figment_error(e, path))
            .and_then(Self::from_raw);
        raw.map_err(name_the_variable)
    }

    fn from_raw(raw: RawConfig) -> Result<Config, ConfigError> {
        let api = raw.api;
        let base_url = base_url(&api.base_url)?;
        let token = secret("api.token", api.token, api.token_file)?.ok_or_else(|| {
            ConfigError::invalid(
                "api.token",
                "missing: set api.token, api.token_file or SDM_WATCH_API__TOKEN",
            )
        })?;
        if token
            .expose()
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(ConfigError::invalid(
                "api.token",
                "contains spaces or control characters",
            ));
        }
        let timeout = positive("api.timeout", api.timeout.0)?;
        let ca_file = api
            .ca_file
            .map(|path| CaFile::load("api.ca_file", path))
            .transpose()?;
        let page_size = match u32::try_from(api.page_size) {
            Ok(n @ 1..=1000) => n,
            _ => {
                return Err(ConfigError::invalid(
                    "api.page_size",
                    format!("must be between 1 and 1000, got {}", api.page_size),
                ));
            }
        };
        let rate = api.max_requests_per_second;
        if !(rate > 0.0 && rate <= 10.0) {
            return Err(ConfigError::invalid(
                "api.max_requests_per_second",
                format!("must be above 0 and at most 10 (the API's fair-use limit), got {rate}"),
            ));
        }

        let poll = raw.poll;
        if poll.interval.0 < Duration::from_secs(1) {
            return Err(ConfigError::invalid("poll.interval", "must be at least 1s"));
        }
        let lookback = positive("poll.lookback", poll.lookback.0)?;
        let notify_on = statuses("poll.notify_on", poll.notify_on, &Status::KNOWN)?;
        let projects = project_ids("poll.projects", poll.projects)?;

        let retry = raw.retry;
        let initial_interval = positive("retry.initial_interval", retry.initial_interval.0)?;
        if retry.max_interval.0 < initial_interval {
            return Err(ConfigError::invalid(
                "retry.max_interval",
                "must not be shorter than retry.initial_interval",
            ));
        }
        if !(retry.multiplier >= 1.0 && retry.multiplier <= 100.0) {
            return Err(ConfigError::invalid(
                "retry.multiplier",
                format!("must be between 1.0 and 100, got {}", retry.multiplier),
            ));
        }
        let max_elapsed = positive("retry.max_elapsed", retry.max_elapsed.0)?;

        if raw.state.path.as_os_str().is_empty() {
            return Err(ConfigError::invalid("state.path", "must not be empty"));
        }
        let max_age = positive("delivery.max_age", raw.delivery.max_age.0)?;
        let concurrency = match usize::try_from(raw.delivery.concurrency) {
            Ok(n @ 1..=256) => n,
            _ => {
                return Err(ConfigError::invalid(
                    "delivery.concurrency",
                    format!(
                        "must be between 1 and 256, got {}",
                        raw.delivery.concurrency
                    ),
                ));
            }
        };
        let listen = match raw.http.listen.trim() {
            "" => None,
            text => Some(text.parse::<SocketAddr>().map_err(|_| {
                ConfigError::invalid(
                    "http.listen",
                    format!(
                        "{text:?} is not an address like \"127.0.0.1:9187\" (\"\" turns the endpoints off)"
                    ),
                )
            })?),
        };

        let output = raw.output.map(output_config).transpose()?;

        let mut names = HashSet::new();
        let mut channel_name = |key: String, name: &str| {
            if name.trim().is_empty() {
                return Err(ConfigError::invalid(key, "must not be empty"));
            }
            if !names.insert(name.to_owned()) {
                return Err(ConfigError::invalid(
                    key,
                    format!("{name:?} is used by another channel; names must be unique"),
                ));
            }
            Ok(name.to_owned())
        };

        let mut webhooks = Vec::new();
        for (i, hook) in raw.webhook.into_iter().enumerate() {
            let key = |field: &str| format!("webhook[{i}].{field}");
            let name = channel_name(key("name"), &hook.name)?;
            let url = Url::parse(&hook.url)
                .ok()
                .filter(|url| matches!(url.scheme(), "http" | "https") && url.has_host())
                .ok_or_else(|| {
                    ConfigError::invalid(
                        key("url"),
                        format!("{:?} is not an http(s) URL", hook.url),
                    )
                })?;
            let secret = secret(&key("secret"), hook.secret, hook.secret_file)?
                .map(|secret| {
                    SigningKey::parse(secret.expose())
                        .map_err(|problem| ConfigError::invalid(key("secret"), problem))
                })
                .transpose()?;
            let events = match hook.events {
                Some(events) => statuses(&key("events"), events, &notify_on)?,
                None => notify_on.clone(),
            };
            let mut headers = Vec::new();
            for (header, value) in hook.headers {
                let lower = header.to_ascii_lowercase();
                let problem = if reqwest::header::HeaderName::from_bytes(header.as_bytes()).is_err()
                {
                    Some("is not a valid header name".to_owned())
                } else if reqwest::header::HeaderValue::from_str(&value).is_err() {
                    Some("has a value that is not a valid header value".to_owned())
                } else if lower.starts_with("webhook-")
                    || matches!(lower.as_str(), "content-type" | "content-length" | "host")
                {
                    Some("is set by sdm-watch itself and cannot be overridden".to_owned())
                } else {
                    None
                };
                if let Some(problem) = problem {
                    return Err(ConfigError::invalid(
                        key("headers"),
                        format!("{header:?} {problem}"),
                    ));
                }
                headers.push((header, value));
            }
            webhooks.push(WebhookConfig {
                name,
                url,
                secret,
                events,
                projects: project_ids(&key("projects"), hook.projects)?,
                headers,
                timeout: positive(&key("timeout"), hook.timeout.0)?,
                ca_file: hook
                    .ca_file
                    .map(|path| CaFile::load(&key("ca_file"), path))
                    .transpose()?,
            });
        }

        let smtp = raw.smtp.map(smtp).transpose()?;
        let mut emails = Vec::new();
        for (i, email) in raw.email.into_iter().enumerate() {
            let key = |field: &str| format!("email[{i}].{field}");
            let name = channel_name(key("name"), &email.name)?;
            if smtp.is_none() {
                return Err(ConfigError::invalid(
                    key("name"),
                    "an [[email]] channel needs an [smtp] section",
                ));
            }
            if email.to.is_empty() {
                return Err(ConfigError::invalid(
                    key("to"),
                    "needs at least one address",
                ));
            }
            let to = email
                .to
                .iter()
                .map(|address| mailbox(&key("to"), address))
                .collect::<Result<Vec<_>, _>>()?;
            let events = match email.events {
                Some(events) => statuses(&key("events"), events, &notify_on)?,
                None => notify_on.clone(),
            };
            emails.push(EmailConfig {
                name,
                to,
                events,
                projects: project_ids(&key("projects"), email.projects)?,
            });
        }

        Ok(Config {
            api: ApiConfig {
                base_url,
                token,
                timeout,
                ca_file,
                page_size,
                max_requests_per_second: rate,
            },
            poll: PollConfig {
                interval: poll.interval.0,
                lookback,
                projects,
                notify_on,
                alert_existing: poll.alert_existing,
            },
            retry: RetryConfig {
                initial_interval,
                max_interval: retry.max_interval.0,
                multiplier: retry.multiplier,
                max_elapsed,
            },
            state: StateConfig {
                path: raw.state.path,
            },
            delivery: DeliveryConfig {
                max_age,
                concurrency,
            },
            http: HttpConfig { listen },
            log: LogConfig {
                format: raw.log.format,
            },
            output,
            webhooks,
            smtp,
            emails,
        })
    }

    /// The effective configuration as TOML, every secret shown as `[redacted]`.
    pub fn to_redacted_toml(&self) -> String {
        toml::to_string_pretty(self)
            .unwrap_or_else(|e| format!("# the configuration could not be shown: {e}\n"))
    }
}

fn output_config(raw: raw::RawOutput) -> Result<OutputConfig, ConfigError> {
    let format_id = |key: &str, id: i64| match u32::try_from(id) {
        Ok(id) if id > 0 => Ok(id),
        _ => Err(ConfigError::invalid(
            key,
            format!("a format id is a positive integer, got {id}"),
        )),
    };
    let default_format = raw
        .format_id
        .map(|id| format_id("output.format_id", id))
        .transpose()?;
    let mut projects = BTreeMap::new();
    for (project, id) in raw.projects {
        let key = format!("output.projects.{project}");
        let project_id = project
            .parse::<ProjectId>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| ConfigError::invalid(&key, "the key must be a project id"))?;
        projects.insert(project_id, format_id(&key, id)?);
    }
    if default_format.is_none() && projects.is_empty() {
        return Err(ConfigError::invalid(
            "output.format_id",
            "missing: set output.format_id, output.projects, or both",
        ));
    }
    if raw.dir.as_os_str().is_empty() {
        return Err(ConfigError::invalid("output.dir", "must not be empty"));
    }
    let retention = raw
        .retention
        .map(|retention| positive("output.retention", retention.0))
        .transpose()?;
    let email_attach_max_bytes = u64::try_from(raw.email_attach_max_bytes).map_err(|_| {
        ConfigError::invalid(
            "output.email_attach_max_bytes",
            "must be zero (never attach) or more",
        )
    })?;
    Ok(OutputConfig {
        format_id: default_format,
        projects,
        dir: raw.dir,
        retention,
        email_attach_max_bytes,
    })
}

fn smtp(raw: raw::RawSmtp) -> Result<SmtpConfig, ConfigError> {
    if raw.host.trim().is_empty() {
        return Err(ConfigError::invalid("smtp.host", "must not be empty"));
    }
    let port = match raw.port {
        None => match raw.tls {
            SmtpTls::Starttls => 587,
            SmtpTls::Tls => 465,
            SmtpTls::None => 25,
        },
        Some(port) => u16::try_from(port)
            .ok()
            .filter(|port| *port > 0)
            .ok_or_else(|| {
                ConfigError::invalid("smtp.port", format!("{port} is not a TCP port"))
            })?,
    };
    let password = secret("smtp.password", raw.password, raw.password_file)?;
    if raw.username.is_some() != password.is_some() {
        return Err(ConfigError::invalid(
            if raw.username.is_some() {
                "smtp.password"
            } else {
                "smtp.username"
            },
            "smtp.username and smtp.password go together: set both or neither",
        ));
    }
    Ok(SmtpConfig {
        host: raw.host,
        port,
        tls: raw.tls,
        username: raw.username,
        password,
        from: mailbox("smtp.from", &raw.from)?,
        timeout: positive("smtp.timeout", raw.timeout.0)?,
        ca_file: raw
            .ca_file
            .map(|path| CaFile::load("smtp.ca_file", path))
            .transpose()?,
    })
}

fn base_url(text: &str) -> Result<Url, ConfigError> {
    let problem = |why: &str| ConfigError::invalid("api.base_url", format!("{text:?} {why}"));
    let mut url = Url::parse(text).map_err(|e| problem(&format!("is not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") || !url.has_host() {
        return Err(problem("is not an http(s) URL"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(problem("must not have a query or fragment"));
    }
    if !url.path().ends_with('/') {
        // Without it, joining "jobs/" would replace the last path segment.
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

/// A secret given inline or as `<key>_file`, never both; a file's content is trimmed.
fn secret(
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
            let path = expand_credentials_directory(&path)
                .map_err(|problem| ConfigError::invalid(&file_key, problem))?;
            let text = std::fs::read_to_string(&path).map_err(|e| {
                ConfigError::invalid(&file_key, format!("cannot read {}: {e}", path.display()))
            })?;
            let text = text.trim();
            if text.is_empty() {
                return Err(ConfigError::invalid(
                    file_key,
                    format!("{} is empty", path.display()),
                ));
            }
            Ok(Some(Secret::new(text)))
        }
        (None, None) => Ok(None),
    }
}

/// `$CREDENTIALS_DIRECTORY/x` or `${CREDENTIALS_DIRECTORY}/x` becomes the directory where
/// systemd put the unit's `LoadCredential=` files.
fn expand_credentials_directory(path: &Path) -> Result<PathBuf, String> {
    let text = path.to_string_lossy();
    let rest = text
        .strip_prefix("${CREDENTIALS_DIRECTORY}")
        .or_else(|| text.strip_prefix("$CREDENTIALS_DIRECTORY"));
    let Some(rest) = rest else {
        return Ok(path.to_owned());
    };
    let directory = std::env::var_os("CREDENTIALS_DIRECTORY").ok_or_else(|| {
        format!(
            "{text} uses $CREDENTIALS_DIRECTORY, which is not set (systemd sets it for units with LoadCredential=)"
        )
    })?;
    Ok(PathBuf::from(directory).join(rest.trim_start_matches('/')))
}

fn positive(key: &str, value: Duration) -> Result<Duration, ConfigError> {
    if value.is_zero() {
        return Err(ConfigError::invalid(key, "must be longer than zero"));
    }
    Ok(value)
}

/// A non-empty list of statuses, each one of `allowed`, duplicates dropped.
fn statuses(
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

fn project_ids(key: &str, ids: Vec<ProjectId>) -> Result<Vec<ProjectId>, ConfigError> {
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

fn mailbox(key: &str, text: &str) -> Result<Mailbox, ConfigError> {
    text.parse()
        .map_err(|e| ConfigError::invalid(key, format!("{text:?} is not an e-mail address ({e})")))
}

/// Adds "(set by environment variable X)" when the environment gave the bad key, so that
/// an operator does not search the file for it.
fn name_the_variable(error: ConfigError) -> ConfigError {
    let ConfigError::Invalid { key, problem } = error else {
        return error;
    };
    let variable = key
        .split('.')
        .chain(["", ""])
        .take(2)
        .filter(|part| !part.is_empty())
        .map(str::to_ascii_uppercase)
        .collect::<Vec<_>>()
        .join("__");
    let variable = format!("SDM_WATCH_{variable}");
    let problem = if !key.contains('[') && std::env::var_os(&variable).is_some() {
        format!("{problem} (set by environment variable {variable})")
    } else {
        problem
    };
    ConfigError::Invalid { key, problem }
}

/// Turns figment's error into one message naming the key.
fn figment_error(error: figment::Error, path: &Path) -> ConfigError {
    use figment::error::Kind;

    let error = error
        .into_iter()
        .next()
        .unwrap_or_else(|| figment::Error::from(String::new()));
    let mut segments = error.path.clone();
    let problem = match &error.kind {
        Kind::UnknownField(field, expected) => {
            if segments.last() != Some(field) {
                segments.push(field.clone());
            }
            format!("unknown key (expected one of: {})", expected.join(", "))
        }
        Kind::MissingField(field) => {
            segments.push(field.to_string());
            "missing".to_owned()
        }
        Kind::InvalidType(actual, expected) => {
            let expected = match expected.as_str() {
                "i64" | "u32" | "u16" => "an integer",
                "f64" => "a number",
                "bool" => "true or false",
                other => other,
            };
            format!("expected {expected}, found {actual}")
        }
        other => other.to_string(),
    };
    if segments.is_empty() {
        return ConfigError::File {
            path: path.to_owned(),
            problem,
        };
    }
    let mut key = String::new();
    for segment in &segments {
        if segment.parse::<usize>().is_ok() {
            key.push_str(&format!("[{segment}]"));
        } else {
            if !key.is_empty() {
                key.push('.');
            }
            key.push_str(segment);
        }
    }
    ConfigError::Invalid { key, problem }
}
