//! Configuration: the TOML file, then `SDM_WATCH_<SECTION>__<KEY>` environment variables,
//! parsed once into typed values. Each section's file turns its raw form into its typed
//! one, naming the key in every error; every later module takes these types and never
//! re-checks.

mod api;
mod calendar;
mod channels;
mod delivery;
mod environment;
mod error;
pub mod exposure;
mod http;
mod links;
mod organisation;
mod output;
mod poll;
mod receiver;
mod report;
mod retry;
mod routing;
mod schema;
mod secret;
mod smtp;
mod state;
mod tls;
mod users;
mod value;
mod watchdog;

use std::path::Path;

use serde::{Deserialize, Serialize};

pub use api::{ApiConfig, ApiToken};
pub use calendar::{Hours, TimeWindow};
pub use channels::{BodyTemplate, EmailConfig, WebhookConfig};
pub use delivery::DeliveryConfig;
pub use error::ConfigError;
pub use http::{DEFAULT_LISTEN, HttpConfig, LEGACY_LISTEN, LogConfig, LogFormat};
pub use links::LinksConfig;
pub use organisation::{DEFAULT_ORGANISATION, Organisation};
pub use output::OutputConfig;
pub use poll::{PollConfig, USUAL_RUNS, USUAL_RUNS_NEEDED};
pub use receiver::{
    Auth, PAGERDUTY_EVENTS, SigningKey, SigningKeyError, WebhookFormat, is_incident_format,
};
pub use report::ReportConfig;
pub use retry::RetryConfig;
pub use routing::{Grouping, Routing};
pub use schema::config_schema;
pub use secret::Secret;
pub use smtp::{SmtpConfig, SmtpTls};
pub use state::StateConfig;
pub use tls::Tls;
pub use users::{PasswordHashText, Users};
pub use value::{CaFile, SecretFileError, read_secret_file};
pub use watchdog::{HeartbeatConfig, WatchdogConfig};

/// Where the config file is looked for when neither `--config` nor `$SDM_WATCH_CONFIG` names one.
pub const DEFAULT_PATH: &str = "/etc/sdm-watch/config.toml";

/// The configuration file as written: every section with its documented defaults,
/// unknown keys refused. Nothing here is trusted until [`Config::from_raw`] checked it.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
struct RawConfig {
    api: api::RawApi,
    poll: poll::RawPoll,
    retry: retry::RawRetry,
    state: state::RawState,
    delivery: delivery::RawDelivery,
    http: http::RawHttp,
    log: http::RawLog,
    output: Option<output::RawOutput>,
    links: links::RawLinks,
    webhook: Vec<channels::RawWebhook>,
    smtp: Option<smtp::RawSmtp>,
    email: Vec<channels::RawEmail>,
    watchdog: watchdog::RawWatchdog,
    heartbeat: watchdog::RawHeartbeat,
    organisation: Vec<organisation::RawOrganisation>,
    time_window: Vec<calendar::RawTimeWindow>,
    report: Vec<report::RawReport>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Config {
    /// The organisations watched: the `[[organisation]]` tables in order, or `[api]` alone.
    #[serde(rename = "organisation", skip_serializing_if = "only_implicit")]
    pub organisations: Vec<Organisation>,
    pub poll: PollConfig,
    pub retry: RetryConfig,
    pub state: StateConfig,
    pub delivery: DeliveryConfig,
    pub http: HttpConfig,
    pub log: LogConfig,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<OutputConfig>,
    #[serde(skip_serializing_if = "LinksConfig::is_empty")]
    pub links: LinksConfig,
    #[serde(rename = "webhook", skip_serializing_if = "Vec::is_empty")]
    pub webhooks: Vec<WebhookConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smtp: Option<SmtpConfig>,
    #[serde(rename = "email", skip_serializing_if = "Vec::is_empty")]
    pub emails: Vec<EmailConfig>,
    pub watchdog: WatchdogConfig,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heartbeat: Option<HeartbeatConfig>,
    #[serde(rename = "time_window", skip_serializing_if = "Vec::is_empty")]
    pub time_windows: Vec<TimeWindow>,
    #[serde(rename = "report", skip_serializing_if = "Vec::is_empty")]
    pub reports: Vec<ReportConfig>,
}

impl Config {
    /// Reads the file at `path`, applies the environment, and checks every value.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Self::load_for(path, ApiToken::Required)
    }

    /// As [`Config::load`]; `need` says whether an API token that cannot be read is an
    /// error or only noted ([`ApiConfig::token_unread`]).
    pub fn load_for(path: &Path, need: ApiToken) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
            path: path.to_owned(),
            problem: match e.kind() {
                std::io::ErrorKind::NotFound => {
                    "not found (give --config PATH or set SDM_WATCH_CONFIG)".into()
                }
                _ => format!("cannot be read: {e}"),
            },
        })?;
        Self::from_toml_for(&text, path, need)
    }

    /// As [`Config::load`], from TOML text; `path` only names the source in errors.
    pub fn from_toml(text: &str, path: &Path) -> Result<Config, ConfigError> {
        Self::from_toml_for(text, path, ApiToken::Required)
    }

    fn from_toml_for(text: &str, path: &Path, need: ApiToken) -> Result<Config, ConfigError> {
        let mut table = text.parse::<toml::Table>().map_err(|e| ConfigError::File {
            path: path.to_owned(),
            problem: e.to_string().trim_end().to_owned(),
        })?;
        environment::overlay(&mut table, std::env::vars_os())?;
        serde_path_to_error::deserialize(toml::Value::Table(table))
            .map_err(|e| error::shape_error(e, path))
            .and_then(|raw| Self::from_raw(raw, need))
            .map_err(error::name_the_variable)
    }

    fn from_raw(raw: RawConfig, need: ApiToken) -> Result<Config, ConfigError> {
        let poll = PollConfig::parse(raw.poll)?;
        let organisations = organisation::parse(raw.api, &poll, raw.organisation, need)?;
        let retry = RetryConfig::parse(raw.retry)?;
        let state = StateConfig::parse(raw.state)?;
        let delivery = DeliveryConfig::parse(raw.delivery)?;
        let http = HttpConfig::parse(raw.http)?;
        let output = raw.output.map(OutputConfig::parse).transpose()?;
        let links = LinksConfig::parse(raw.links)?;
        let watchdog = WatchdogConfig::parse(raw.watchdog, poll.interval)?;
        let heartbeat = HeartbeatConfig::parse(raw.heartbeat)?;
        let mut names = channels::Names::default();
        let mut events = poll.events();
        if watchdog.alert_after.is_some() {
            events.push(crate::domain::Event::Watcher);
        }
        let webhooks = raw
            .webhook
            .into_iter()
            .enumerate()
            .map(|(i, hook)| WebhookConfig::parse(i, hook, &events, &mut names))
            .collect::<Result<Vec<_>, _>>()?;
        let smtp = raw.smtp.map(SmtpConfig::parse).transpose()?;
        let mut emails = raw
            .email
            .into_iter()
            .enumerate()
            .map(|(i, email)| EmailConfig::parse(i, email, &events, smtp.is_some(), &mut names))
            .collect::<Result<Vec<_>, _>>()?;
        // A channel's `organisations` must name organisations of this config, and its
        // `active_during` / `muted_during` the config's time windows.
        let mut webhooks = webhooks;
        let time_windows = calendar::parse(raw.time_window)?;
        let channels = webhooks
            .iter_mut()
            .map(|hook| ("webhook", &mut hook.routing))
            .chain(emails.iter_mut().map(|email| ("email", &mut email.routing)));
        let mut index = std::collections::HashMap::new();
        for (section, routing) in channels {
            let i: &mut usize = index.entry(section).or_default();
            let section = error::Section::new(format!("{section}[{i}]"));
            *i += 1;
            let names = std::mem::take(&mut routing.organisations);
            routing.organisations =
                organisation::known_names(&section.key("organisations"), names, &organisations)?;
            let (active, muted) = (routing.active_during.clone(), routing.muted_during.clone());
            routing.hours = Hours::parse(&section, active, muted, &time_windows)?;
        }
        let mut reports = report::parse(raw.report, &webhooks, &emails)?;
        for report in &mut reports {
            report.several_organisations = organisations.len() > 1;
        }
        Ok(Config {
            organisations,
            poll,
            retry,
            state,
            delivery,
            http,
            log: LogConfig {
                format: raw.log.format,
            },
            output,
            links,
            webhooks,
            smtp,
            emails,
            watchdog,
            heartbeat,
            time_windows,
            reports,
        })
    }

    /// The organisation named `name`, if the config has it.
    pub fn organisation(&self, name: &str) -> Option<&Organisation> {
        self.organisations.iter().find(|org| org.name == name)
    }

    /// Whether alerts, subjects and pages name the organisation: when the config has
    /// `[[organisation]]` tables (a single-organisation config reads as it always did).
    pub fn names_organisations(&self) -> bool {
        !only_implicit(&self.organisations)
    }

    /// Every channel's name, webhooks first, in the order configured.
    pub fn channel_names(&self) -> Vec<&str> {
        self.webhooks
            .iter()
            .map(|hook| hook.name.as_str())
            .chain(self.emails.iter().map(|email| email.name.as_str()))
            .collect()
    }

    /// When `channel` hears its alerts (`active_during`, `muted_during`).
    pub fn hours(&self, channel: &str) -> Hours {
        let hook = self.webhooks.iter().find(|hook| hook.name == channel);
        let email = self.emails.iter().find(|email| email.name == channel);
        hook.map(|hook| hook.routing.hours.clone())
            .or(email.map(|email| email.routing.hours.clone()))
            .unwrap_or_default()
    }

    /// How `channel` gathers its alerts into digests, if it does.
    pub fn grouping(&self, channel: &str) -> Option<Grouping> {
        let hook = self.webhooks.iter().find(|hook| hook.name == channel);
        let email = self.emails.iter().find(|email| email.name == channel);
        hook.map(|hook| hook.routing.grouping)
            .or(email.map(|email| email.routing.grouping))
            .flatten()
    }

    /// The effective configuration as TOML, every secret shown as `[redacted]`: `[api]`
    /// as written when it is the one organisation, else the `[[organisation]]` tables.
    pub fn to_redacted_toml(&self) -> String {
        #[derive(Serialize)]
        struct Api<'a> {
            api: &'a ApiConfig,
        }
        let api = match self.organisations.as_slice() {
            [only] if only.implicit => {
                toml::to_string_pretty(&Api { api: &only.api }).map(|text| format!("{text}\n"))
            }
            _ => Ok(String::new()),
        };
        let shown = api.and_then(|api| Ok(api + &toml::to_string_pretty(self)?));
        shown.unwrap_or_else(|e| format!("# the configuration could not be shown: {e}\n"))
    }
}

fn only_implicit(organisations: &[Organisation]) -> bool {
    matches!(organisations, [only] if only.implicit)
}
