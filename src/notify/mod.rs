//! Alerts out: which channels an event goes to, the webhook and e-mail senders, and the
//! worker that delivers the outbox. Knows nothing of the SDM API.

pub mod alerts;
pub mod card;
pub mod delivery;
pub mod email;
pub mod format;
mod gather;
mod http;
pub mod incident;
mod message;
pub mod payload;
pub mod report;
pub mod resolved;
pub mod scheduled;
mod setup;
pub mod webhook;
mod worker;

use std::collections::BTreeMap;
use std::time::Duration;

pub use message::{Digest, Message};
pub use payload::{AlertEvent, JobSnapshot};
pub use setup::DeliverySetup;
pub use worker::{Settled, Worker};

use crate::config::Config;

/// How one delivery attempt ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attempt {
    Delivered,
    /// Worth trying again, not before `retry_after` if the receiver said so.
    Retry {
        error: String,
        retry_after: Option<Duration>,
    },
    /// Will fail the same way again: the alert is dead.
    Permanent {
        error: String,
    },
}

/// One configured channel, ready to send.
#[derive(Clone)]
pub enum Channel {
    Webhook(webhook::WebhookSender),
    Email(email::EmailSender),
}

impl Channel {
    pub async fn send(&self, message: &Message) -> Attempt {
        match self {
            Channel::Webhook(sender) => sender.send(message).await,
            Channel::Email(sender) => sender.send(message).await,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Channel::Webhook(_) => "webhook",
            Channel::Email(_) => "email",
        }
    }
}

/// Every configured channel by name.
#[derive(Clone, Default)]
pub struct Channels {
    by_name: BTreeMap<String, Channel>,
}

impl Channels {
    pub fn from_config(config: &Config) -> anyhow::Result<Channels> {
        let mut by_name = BTreeMap::new();
        if !config.webhooks.is_empty() {
            let shared = webhook::http_client(None)?;
            for hook in &config.webhooks {
                // A channel that trusts a private CA gets a client of its own.
                let http = match &hook.ca_file {
                    Some(ca_file) => webhook::http_client(Some(ca_file))?,
                    None => shared.clone(),
                };
                by_name.insert(
                    hook.name.clone(),
                    Channel::Webhook(webhook::WebhookSender::new(
                        http,
                        hook.clone(),
                        config.links.status_page.clone(),
                    )),
                );
            }
        }
        if let Some(smtp) = &config.smtp {
            let transport =
                email::transport(smtp, config.delivery.concurrency).map_err(|error| {
                    let error = anyhow::Error::new(error).context("smtp: the TLS setup failed");
                    if crate::roots::system_store_is_empty() {
                        error.context(format!(
                            "{}; or set smtp.ca_file",
                            crate::roots::NO_SYSTEM_ROOTS
                        ))
                    } else {
                        error
                    }
                })?;
            let attach_max_bytes = config
                .output
                .as_ref()
                .map_or(0, |output| output.email_attach_max_bytes);
            for email in &config.emails {
                by_name.insert(
                    email.name.clone(),
                    Channel::Email(email::EmailSender::new(
                        transport.clone(),
                        smtp.from.clone(),
                        email,
                        attach_max_bytes,
                    )),
                );
            }
        }
        Ok(Channels { by_name })
    }

    pub fn get(&self, name: &str) -> Option<&Channel> {
        self.by_name.get(name)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Channel)> {
        self.by_name
            .iter()
            .map(|(name, channel)| (name.as_str(), channel))
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}
