//! Where a webhook posts and how it proves who it is: `url` (or, for an Alertmanager
//! cluster, `urls`), HTTP authentication, and what the incident formats need besides:
//! `resend` for `alertmanager`, `routing_key` for `pagerduty`. Also the rules those two
//! formats put on `events`, `send_resolved` and `group_wait`.

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use serde::{Deserialize, Serialize, Serializer};
use url::Url;

use super::Secret;
use super::error::{ConfigError, Section};
use super::value::{HumanDuration, secret};
use crate::domain::{Event, Status};

/// The shape of a webhook's body: SPEC's standard JSON, a chat service's message, the
/// operator's template, or an incident tool's API (Alertmanager, PagerDuty).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum WebhookFormat {
    #[default]
    Standard,
    Slack,
    Teams,
    GoogleChat,
    Discord,
    Template,
    Alertmanager,
    Pagerduty,
}

/// Why a Standard Webhooks secret cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SigningKeyError {
    #[error("must start with \"whsec_\" (Standard Webhooks secret format)")]
    Prefix,
    #[error("the part after \"whsec_\" is not valid base64")]
    Base64,
    #[error("the part after \"whsec_\" is empty")]
    Empty,
}

/// The HMAC key of a Standard Webhooks secret: the base64-decoded part after `whsec_`.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKey(Vec<u8>);

impl SigningKey {
    pub fn parse(secret: &str) -> Result<Self, SigningKeyError> {
        let encoded = secret
            .strip_prefix("whsec_")
            .ok_or(SigningKeyError::Prefix)?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|_| SigningKeyError::Base64)?;
        if bytes.is_empty() {
            return Err(SigningKeyError::Empty);
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

/// Where PagerDuty's Events API v2 takes events.
pub const PAGERDUTY_EVENTS: &str = "https://events.pagerduty.com/v2/enqueue";

/// Alertmanager's `resend` when none is set, and the shortest allowed.
const RESEND: Duration = Duration::from_secs(60);
const SHORTEST_RESEND: Duration = Duration::from_secs(10);

/// HTTP authentication on a webhook's requests.
#[derive(Clone, Debug)]
pub enum Auth {
    /// `username` and `password` (or `password_file`).
    Basic { username: String, password: Secret },
    /// `bearer_token` (or `bearer_token_file`).
    Bearer(Secret),
}

impl Serialize for Auth {
    /// The user name, never a password or token.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Auth::Basic { username, .. } => {
                serializer.serialize_str(&format!("basic, user {username:?}"))
            }
            Auth::Bearer(_) => serializer.serialize_str("bearer token"),
        }
    }
}

/// The keys of a `[[webhook]]` this module reads, as written.
pub(super) struct RawReceiver {
    pub url: Option<String>,
    pub urls: Option<Vec<String>>,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub password_file: Option<PathBuf>,
    pub bearer_token: Option<Secret>,
    pub bearer_token_file: Option<PathBuf>,
    pub resend: Option<HumanDuration>,
    pub routing_key: Option<Secret>,
    pub routing_key_file: Option<PathBuf>,
}

/// Where a webhook posts, and with what.
pub(super) struct Receiver {
    /// The first (for most formats, the only) URL.
    pub url: Url,
    /// Every URL posted: `[url]`, or each member of an Alertmanager cluster.
    pub urls: Vec<Url>,
    pub auth: Option<Auth>,
    pub resend: Option<Duration>,
    pub routing_key: Option<Secret>,
}

/// Whether a format keeps incidents on the receiver's side (Alertmanager, PagerDuty).
pub fn is_incident_format(format: WebhookFormat) -> bool {
    matches!(
        format,
        WebhookFormat::Alertmanager | WebhookFormat::Pagerduty
    )
}

impl Receiver {
    pub(super) fn parse(
        hook: &Section,
        format: WebhookFormat,
        raw: RawReceiver,
    ) -> Result<Receiver, ConfigError> {
        let urls = urls(hook, format, raw.url, raw.urls)?;
        let password = secret(&hook.key("password"), raw.password, raw.password_file)?;
        let bearer = secret(
            &hook.key("bearer_token"),
            raw.bearer_token,
            raw.bearer_token_file,
        )?;
        let auth = auth(hook, format, raw.username, password, bearer)?;
        let resend = resend(hook, format, raw.resend)?;
        let routing_key = secret(
            &hook.key("routing_key"),
            raw.routing_key,
            raw.routing_key_file,
        )?;
        match (format, &routing_key) {
            (WebhookFormat::Pagerduty, None) => {
                return Err(hook.invalid(
                    "routing_key",
                    "is needed with format = \"pagerduty\" (or routing_key_file): the integration key of an Events API v2 integration",
                ));
            }
            (WebhookFormat::Pagerduty, Some(_)) | (_, None) => {}
            (_, Some(_)) => {
                return Err(hook.invalid(
                    "routing_key",
                    format!(
                        "is used only with format = \"pagerduty\", not {}",
                        format_name(format)
                    ),
                ));
            }
        }
        Ok(Receiver {
            url: urls[0].clone(),
            urls,
            auth,
            resend,
            routing_key,
        })
    }
}

/// Every URL a webhook posts to: `url`, or `urls` (an Alertmanager cluster), or
/// PagerDuty's own.
fn urls(
    hook: &Section,
    format: WebhookFormat,
    url: Option<String>,
    urls: Option<Vec<String>>,
) -> Result<Vec<Url>, ConfigError> {
    let http = |key: &str, text: &str| {
        Url::parse(text)
            .ok()
            .filter(|url| matches!(url.scheme(), "http" | "https") && url.has_host())
            .ok_or_else(|| hook.invalid(key, format!("{text:?} is not an http(s) URL")))
    };
    match (format, url, urls) {
        (_, Some(_), Some(_)) => Err(hook.invalid("urls", "set url or urls, not both")),
        (WebhookFormat::Alertmanager, None, Some(urls)) => {
            if urls.is_empty() {
                return Err(hook.invalid("urls", "needs at least one Alertmanager URL"));
            }
            let mut parsed: Vec<Url> = Vec::new();
            for text in &urls {
                let url = http("urls", text)?;
                if parsed.contains(&url) {
                    return Err(hook.invalid("urls", format!("{text:?} is listed twice")));
                }
                parsed.push(url);
            }
            Ok(parsed)
        }
        (_, None, Some(_)) => {
            Err(hook.invalid("urls", "is used only with format = \"alertmanager\""))
        }
        (_, Some(url), None) => Ok(vec![http("url", &url)?]),
        (WebhookFormat::Pagerduty, None, None) => Ok(vec![
            Url::parse(PAGERDUTY_EVENTS).expect("PagerDuty's URL parses"),
        ]),
        (WebhookFormat::Alertmanager, None, None) => Err(hook.invalid(
            "url",
            "is needed: the Alertmanager's base URL (or urls, every member of a cluster)",
        )),
        (_, None, None) => Err(hook.invalid("url", "is needed")),
    }
}

/// Basic or bearer authentication, or none; PagerDuty takes neither.
fn auth(
    hook: &Section,
    format: WebhookFormat,
    username: Option<String>,
    password: Option<Secret>,
    bearer: Option<Secret>,
) -> Result<Option<Auth>, ConfigError> {
    let auth = match (username, password, bearer) {
        (Some(_), _, Some(_)) => {
            return Err(hook.invalid(
                "bearer_token",
                "set username and password, or bearer_token, not both",
            ));
        }
        (Some(username), Some(password), None) => Some(Auth::Basic { username, password }),
        (Some(_), None, None) => return Err(hook.invalid("password", "is needed with username")),
        (None, Some(_), _) => return Err(hook.invalid("username", "is needed with password")),
        (None, None, Some(token)) => Some(Auth::Bearer(token)),
        (None, None, None) => None,
    };
    if auth.is_some() && format == WebhookFormat::Pagerduty {
        return Err(hook.invalid(
            "username",
            "is not used by format = \"pagerduty\": PagerDuty takes the routing_key",
        ));
    }
    Ok(auth)
}

/// Alertmanager's `resend` (at least 10 s); no other format takes one.
fn resend(
    hook: &Section,
    format: WebhookFormat,
    resend: Option<HumanDuration>,
) -> Result<Option<Duration>, ConfigError> {
    match (format, resend) {
        (WebhookFormat::Alertmanager, resend) => {
            let resend = resend.map_or(RESEND, |r| r.0);
            if resend < SHORTEST_RESEND {
                return Err(hook.invalid(
                    "resend",
                    format!(
                        "must be at least 10s (Alertmanager keeps an alert 4 x resend), got {}",
                        humantime::format_duration(resend)
                    ),
                ));
            }
            Ok(Some(resend))
        }
        (_, Some(_)) => Err(hook.invalid("resend", "is used only with format = \"alertmanager\"")),
        (_, None) => Ok(None),
    }
}

/// `"alertmanager"`, as written in the config.
fn format_name(format: WebhookFormat) -> String {
    serde_json::to_string(&format).unwrap_or_default()
}

/// The events an incident format takes: those that open incidents (their ends come as
/// resolutions, always sent).
fn opens_incidents(event: &Event) -> bool {
    matches!(
        event,
        Event::Entered(Status::Error)
            | Event::Entered(Status::Pending)
            | Event::PendingReminder
            | Event::RunningLong
            | Event::Watcher
    )
}

/// For `alertmanager` and `pagerduty`: only incident-opening events (the default: all of
/// those enabled), resolutions always on, no digests. Other formats pass unchanged.
pub(super) fn incident_rules(
    hook: &Section,
    format: WebhookFormat,
    chosen: Option<&[Event]>,
    events: Vec<Event>,
    send_resolved: Option<bool>,
    grouped: bool,
) -> Result<(Vec<Event>, bool), ConfigError> {
    if !is_incident_format(format) {
        return Ok((events, send_resolved.unwrap_or(false)));
    }
    let name = format_name(format);
    let opening = "error, pending, pending_reminder, running_long, watcher";
    if let Some(event) = chosen.into_iter().flatten().find(|e| !opens_incidents(e)) {
        return Err(hook.invalid(
            "events",
            format!(
                "{:?} opens no incident, and format = {name} sends incidents only (it may name {opening})",
                event.as_str()
            ),
        ));
    }
    let events: Vec<Event> = events.into_iter().filter(opens_incidents).collect();
    if events.is_empty() {
        return Err(hook.invalid(
            "events",
            format!(
                "format = {name} needs an event that opens incidents ({opening}); poll.notify_on and the watchdog enable none"
            ),
        ));
    }
    if send_resolved == Some(false) {
        return Err(hook.invalid(
            "send_resolved",
            format!("is always on for format = {name}: an incident opened there is resolved there"),
        ));
    }
    if grouped {
        return Err(hook.invalid(
            "group_wait",
            format!("must be \"0s\" for format = {name}: each incident is sent on its own"),
        ));
    }
    Ok((events, true))
}

/// A webhook's extra `headers`, checked: valid names and values, none that sdm-watch sets
/// itself (nor `Authorization` when `username` or `bearer_token` sets it).
pub(super) fn headers(
    hook: &Section,
    raw: std::collections::BTreeMap<String, String>,
    authenticates: bool,
) -> Result<Vec<(String, String)>, ConfigError> {
    let mut headers = Vec::new();
    for (header, value) in raw {
        let lower = header.to_ascii_lowercase();
        let problem = if reqwest::header::HeaderName::from_bytes(header.as_bytes()).is_err() {
            Some("is not a valid header name")
        } else if reqwest::header::HeaderValue::from_str(&value).is_err() {
            Some("has a value that is not a valid header value")
        } else if lower.starts_with("webhook-")
            || matches!(lower.as_str(), "content-type" | "content-length" | "host")
        {
            Some("is set by sdm-watch itself and cannot be overridden")
        } else if authenticates && lower == "authorization" {
            Some("is set by username/password or bearer_token; set it one way only")
        } else {
            None
        };
        if let Some(problem) = problem {
            return Err(hook.invalid("headers", format!("{header:?} {problem}")));
        }
        headers.push((header, value));
    }
    Ok(headers)
}
