//! `[smtp]`: the mail server every `[[email]]` channel sends through.

use std::path::PathBuf;
use std::time::Duration;

use lettre::message::Mailbox;
use serde::{Deserialize, Serialize};

use super::Secret;
use super::error::{ConfigError, Section};
use super::value::{CaFile, HumanDuration, display, human, mailbox, positive, secret, secs};

#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    #[default]
    Starttls,
    Tls,
    None,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSmtp {
    pub host: String,
    pub port: Option<i64>,
    #[serde(default)]
    pub tls: SmtpTls,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub password_file: Option<PathBuf>,
    pub from: String,
    #[serde(default = "thirty_seconds")]
    pub timeout: HumanDuration,
    pub ca_file: Option<PathBuf>,
}

pub(super) fn thirty_seconds() -> HumanDuration {
    secs(30)
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

impl SmtpConfig {
    pub(super) fn parse(raw: RawSmtp) -> Result<SmtpConfig, ConfigError> {
        let smtp = Section::new("smtp");
        if raw.host.trim().is_empty() {
            return Err(smtp.invalid("host", "must not be empty"));
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
                .ok_or_else(|| smtp.invalid("port", format!("{port} is not a TCP port")))?,
        };
        let password = secret(&smtp.key("password"), raw.password, raw.password_file)?;
        if raw.username.is_some() != password.is_some() {
            let missing = if raw.username.is_some() {
                "password"
            } else {
                "username"
            };
            return Err(smtp.invalid(
                missing,
                "smtp.username and smtp.password go together: set both or neither",
            ));
        }
        Ok(SmtpConfig {
            host: raw.host,
            port,
            tls: raw.tls,
            username: raw.username,
            password,
            from: mailbox(&smtp.key("from"), &raw.from)?,
            timeout: positive(&smtp.key("timeout"), raw.timeout.0)?,
            ca_file: raw
                .ca_file
                .map(|path| CaFile::load(&smtp.key("ca_file"), path))
                .transpose()?,
        })
    }
}
