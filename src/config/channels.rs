//! `[[webhook]]` and `[[email]]`: the channels alerts go to, each with its name, the
//! events and projects it wants, and how to reach it.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use lettre::message::Mailbox;
use serde::{Deserialize, Serialize};
use url::Url;

use super::Secret;
use super::calendar::Hours;
use super::error::{ConfigError, Section};
use super::receiver::{
    Auth, RawReceiver, Receiver, SigningKey, WebhookFormat, headers, incident_rules,
    is_incident_format,
};
use super::routing::{Grouping, Routing};
use super::smtp::thirty_seconds;
use super::value::{
    CaFile, HumanDuration, displays, events, human, mailbox, positive, project_ids, secret, secs,
};
use crate::domain::{Event, ProjectId};
use crate::template::{Escape, Template};

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawWebhook {
    pub name: String,
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
    pub secret: Option<Secret>,
    pub secret_file: Option<PathBuf>,
    pub events: Option<Vec<Event>>,
    #[serde(default = "no_wait")]
    pub group_wait: HumanDuration,
    #[serde(default = "hundred")]
    pub group_max: i64,
    #[serde(default)]
    pub projects: Vec<ProjectId>,
    #[serde(default)]
    pub organisations: Vec<String>,
    #[serde(default)]
    pub active_during: Vec<String>,
    #[serde(default)]
    pub muted_during: Vec<String>,
    pub send_resolved: Option<bool>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default = "thirty_seconds")]
    pub timeout: HumanDuration,
    pub ca_file: Option<PathBuf>,
    #[serde(default)]
    pub format: WebhookFormat,
    pub body_template: Option<String>,
    pub content_type: Option<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawEmail {
    pub name: String,
    pub to: Vec<String>,
    pub events: Option<Vec<Event>>,
    #[serde(default = "no_wait")]
    pub group_wait: HumanDuration,
    #[serde(default = "hundred")]
    pub group_max: i64,
    #[serde(default)]
    pub projects: Vec<ProjectId>,
    #[serde(default)]
    pub organisations: Vec<String>,
    #[serde(default)]
    pub active_during: Vec<String>,
    #[serde(default)]
    pub muted_during: Vec<String>,
    #[serde(default)]
    pub send_resolved: bool,
    pub subject_template: Option<String>,
    pub body_template: Option<String>,
    #[serde(default)]
    pub html: bool,
}

/// `format = "template"`: the body's template and its content type.
#[derive(Clone, Debug, Serialize)]
pub struct BodyTemplate {
    #[serde(rename = "body_template")]
    pub template: Template,
    pub content_type: String,
}

fn one(urls: &[Url]) -> bool {
    urls.len() == 1
}

fn no_wait() -> HumanDuration {
    secs(0)
}

fn hundred() -> i64 {
    100
}

#[derive(Clone, Debug, Serialize)]
pub struct WebhookConfig {
    pub name: String,
    /// The receiver; for `alertmanager`, its base URL (the first of `urls`). Shown
    /// redacted: a chat service's URL is its key.
    #[serde(serialize_with = "super::value::redacted")]
    pub url: Url,
    /// Every URL posted: `[url]`, or each member of an Alertmanager cluster.
    #[serde(
        skip_serializing_if = "one",
        serialize_with = "super::value::redacted_all"
    )]
    pub urls: Vec<Url>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<Auth>,
    /// `alertmanager`: how often open incidents are posted again.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "super::value::human_option"
    )]
    pub resend: Option<Duration>,
    /// `pagerduty`: the Events API v2 integration key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub routing_key: Option<Secret>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<SigningKey>,
    /// Which alerts it takes, and when.
    #[serde(flatten)]
    pub routing: Routing,
    #[serde(serialize_with = "super::value::header_names")]
    pub headers: Vec<(String, String)>,
    /// How long one delivery attempt may take.
    #[serde(serialize_with = "human")]
    pub timeout: Duration,
    /// Extra trusted roots for the receiver's TLS certificate, besides the system's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<CaFile>,
    pub format: WebhookFormat,
    /// Set exactly when `format` is `template`.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub template: Option<BodyTemplate>,
}

#[derive(Clone, Debug, Serialize)]
pub struct EmailConfig {
    pub name: String,
    #[serde(serialize_with = "displays")]
    pub to: Vec<Mailbox>,
    /// Which alerts it takes, and when.
    #[serde(flatten)]
    pub routing: Routing,
    /// The subject instead of `[sdm-watch] <status>: <job name>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject_template: Option<Template>,
    /// The plain-text body instead of the built-in one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_template: Option<Template>,
    /// Adds an HTML alternative part.
    pub html: bool,
}

/// Compiles a channel's template and renders it against the samples (the digest too
/// when the channel sends digests, the watcher's alert when it wants the `watcher` event),
/// naming `field` in the error.
fn template(
    section: &Section,
    field: &str,
    source: &str,
    escape: Escape,
    grouping: Option<Grouping>,
    events: &[Event],
) -> Result<Template, ConfigError> {
    let template = Template::compile(source, escape)
        .map_err(|error| section.invalid(field, error.to_string()))?;
    template
        .check(grouping.is_some(), events.contains(&Event::Watcher))
        .map_err(|error| section.invalid(field, error.to_string()))?;
    Ok(template)
}

/// Channel names, unique across webhooks and e-mails.
#[derive(Default)]
pub(super) struct Names(HashSet<String>);

impl Names {
    fn claim(&mut self, section: &Section, name: &str) -> Result<String, ConfigError> {
        if name.trim().is_empty() {
            return Err(section.invalid("name", "must not be empty"));
        }
        if !self.0.insert(name.to_owned()) {
            return Err(section.invalid(
                "name",
                format!("{name:?} is used by another channel; names must be unique"),
            ));
        }
        Ok(name.to_owned())
    }
}

/// The Standard Webhooks signing key, if `secret` (or `secret_file`) is set; the incident
/// formats take none.
fn signing_key(
    hook: &Section,
    format: WebhookFormat,
    secret_text: Option<Secret>,
    secret_file: Option<PathBuf>,
) -> Result<Option<SigningKey>, ConfigError> {
    if is_incident_format(format) && (secret_text.is_some() || secret_file.is_some()) {
        return Err(hook.invalid(
            "secret",
            "is not used by format = \"alertmanager\" or \"pagerduty\" (they are not Standard Webhooks receivers)",
        ));
    }
    secret(&hook.key("secret"), secret_text, secret_file)?
        .map(|secret| {
            SigningKey::parse(secret.expose())
                .map_err(|problem| hook.invalid("secret", problem.to_string()))
        })
        .transpose()
}

/// `format = "template"`'s body template and its content type (JSON unless said).
fn body_template(
    hook: &Section,
    format: WebhookFormat,
    source: Option<String>,
    content_type: Option<String>,
    grouping: Option<Grouping>,
    events: &[Event],
) -> Result<Option<BodyTemplate>, ConfigError> {
    let source = match (format, source) {
        (WebhookFormat::Template, Some(source)) => source,
        (WebhookFormat::Template, None) => {
            return Err(hook.invalid("body_template", "is needed with format = \"template\""));
        }
        (_, Some(_)) => {
            return Err(hook.invalid("body_template", "is used only with format = \"template\""));
        }
        (_, None) if content_type.is_some() => {
            return Err(hook.invalid("content_type", "is used only with format = \"template\""));
        }
        (_, None) => return Ok(None),
    };
    let content_type = content_type.unwrap_or_else(|| "application/json".to_owned());
    if reqwest::header::HeaderValue::from_str(&content_type).is_err() || !content_type.contains('/')
    {
        return Err(hook.invalid(
            "content_type",
            format!("{content_type:?} is not a media type such as \"text/plain\""),
        ));
    }
    let escape = Escape::for_content_type(&content_type);
    Ok(Some(BodyTemplate {
        template: template(hook, "body_template", &source, escape, grouping, events)?,
        content_type,
    }))
}

impl WebhookConfig {
    pub(super) fn parse(
        index: usize,
        raw: RawWebhook,
        allowed: &[Event],
        names: &mut Names,
    ) -> Result<WebhookConfig, ConfigError> {
        let hook = Section::new(format!("webhook[{index}]"));
        let name = names.claim(&hook, &raw.name)?;
        let receiver = Receiver::parse(
            &hook,
            raw.format,
            RawReceiver {
                url: raw.url,
                urls: raw.urls,
                username: raw.username,
                password: raw.password,
                password_file: raw.password_file,
                bearer_token: raw.bearer_token,
                bearer_token_file: raw.bearer_token_file,
                resend: raw.resend,
                routing_key: raw.routing_key,
                routing_key_file: raw.routing_key_file,
            },
        )?;
        let secret = signing_key(&hook, raw.format, raw.secret, raw.secret_file)?;
        let chosen = raw.events.clone();
        let events = match raw.events {
            Some(chosen) => events(&hook.key("events"), chosen, allowed)?,
            None => allowed.to_vec(),
        };
        let headers = headers(&hook, raw.headers, receiver.auth.is_some())?;
        let grouping = Grouping::parse(&hook, raw.group_wait, raw.group_max)?;
        let (events, send_resolved) = incident_rules(
            &hook,
            raw.format,
            chosen.as_deref(),
            events,
            raw.send_resolved,
            grouping.is_some(),
        )?;
        let template = body_template(
            &hook,
            raw.format,
            raw.body_template,
            raw.content_type,
            grouping,
            &events,
        )?;
        Ok(WebhookConfig {
            name,
            url: receiver.url,
            urls: receiver.urls,
            auth: receiver.auth,
            resend: receiver.resend,
            routing_key: receiver.routing_key,
            secret,
            routing: Routing {
                events,
                projects: project_ids(&hook.key("projects"), raw.projects)?,
                organisations: raw.organisations,
                active_during: raw.active_during,
                muted_during: raw.muted_during,
                hours: Hours::default(),
                send_resolved,
                grouping,
            },
            headers,
            timeout: positive(&hook.key("timeout"), raw.timeout.0)?,
            ca_file: raw
                .ca_file
                .map(|path| CaFile::load(&hook.key("ca_file"), path))
                .transpose()?,
            format: raw.format,
            template,
        })
    }
}

impl EmailConfig {
    pub(super) fn parse(
        index: usize,
        raw: RawEmail,
        allowed: &[Event],
        has_smtp: bool,
        names: &mut Names,
    ) -> Result<EmailConfig, ConfigError> {
        let email = Section::new(format!("email[{index}]"));
        let name = names.claim(&email, &raw.name)?;
        if !has_smtp {
            return Err(email.invalid("name", "an [[email]] channel needs an [smtp] section"));
        }
        if raw.to.is_empty() {
            return Err(email.invalid("to", "needs at least one address"));
        }
        let to = raw
            .to
            .iter()
            .map(|address| mailbox(&email.key("to"), address))
            .collect::<Result<Vec<_>, _>>()?;
        let events = match raw.events {
            Some(chosen) => events(&email.key("events"), chosen, allowed)?,
            None => allowed.to_vec(),
        };
        let grouping = Grouping::parse(&email, raw.group_wait, raw.group_max)?;
        let text = |field: &str, source: Option<String>| {
            source
                .map(|source| template(&email, field, &source, Escape::None, grouping, &events))
                .transpose()
        };
        let subject_template = text("subject_template", raw.subject_template)?;
        let body_template = text("body_template", raw.body_template)?;
        Ok(EmailConfig {
            name,
            to,
            routing: Routing {
                events,
                projects: project_ids(&email.key("projects"), raw.projects)?,
                organisations: raw.organisations,
                active_during: raw.active_during,
                muted_during: raw.muted_during,
                hours: Hours::default(),
                send_resolved: raw.send_resolved,
                grouping,
            },
            subject_template,
            body_template,
            html: raw.html,
        })
    }
}
