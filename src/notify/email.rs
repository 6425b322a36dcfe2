//! E-mail delivery over SMTP with lettre: one plain-text message per alert, its
//! `Message-ID` derived from the alert id so that a retried alert is recognisably the same.

use std::fmt::Write as _;
use std::sync::Arc;

use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::Attempt;
use super::payload::AlertEvent;
use crate::config::{EmailConfig, SmtpConfig, SmtpTls};

pub type SmtpTransport = AsyncSmtpTransport<Tokio1Executor>;

/// The pooled SMTP transport every e-mail channel shares.
pub fn transport(smtp: &SmtpConfig) -> Result<Arc<SmtpTransport>, lettre::transport::smtp::Error> {
    let builder = match smtp.tls {
        SmtpTls::Starttls => SmtpTransport::starttls_relay(&smtp.host)?,
        SmtpTls::Tls => SmtpTransport::relay(&smtp.host)?,
        SmtpTls::None => SmtpTransport::builder_dangerous(&smtp.host),
    };
    let mut builder = builder.port(smtp.port).timeout(Some(smtp.timeout));
    if let (Some(username), Some(password)) = (&smtp.username, &smtp.password) {
        builder = builder.credentials(Credentials::new(
            username.clone(),
            password.expose().to_owned(),
        ));
    }
    Ok(Arc::new(builder.build()))
}

/// Sends alerts to one channel's recipients.
#[derive(Clone)]
pub struct EmailSender {
    transport: Arc<SmtpTransport>,
    from: Mailbox,
    to: Vec<Mailbox>,
}

impl EmailSender {
    pub fn new(transport: Arc<SmtpTransport>, from: Mailbox, config: &EmailConfig) -> Self {
        Self {
            transport,
            from,
            to: config.to.clone(),
        }
    }

    /// One delivery attempt of alert `id` with body `payload` (the webhook JSON).
    pub async fn send(&self, id: &str, payload: &str) -> Attempt {
        let event: AlertEvent = match serde_json::from_str(payload) {
            Ok(event) => event,
            Err(error) => {
                return Attempt::Permanent {
                    error: format!("the queued alert cannot be read: {error}"),
                };
            }
        };
        let mut message = Message::builder()
            .from(self.from.clone())
            .subject(subject(&event))
            .message_id(Some(format!("<{id}@sdm-watch>")))
            .header(ContentType::TEXT_PLAIN);
        for to in &self.to {
            message = message.to(to.clone());
        }
        let message = match message.body(body(id, &event)) {
            Ok(message) => message,
            Err(error) => {
                return Attempt::Permanent {
                    error: format!("cannot build the e-mail: {error}"),
                };
            }
        };
        match self.transport.send(message).await {
            Ok(_) => Attempt::Delivered,
            Err(error) if error.is_permanent() => Attempt::Permanent {
                error: format!(
                    "the SMTP server refused the message: {}",
                    crate::error_chain(&error)
                ),
            },
            Err(error) => Attempt::Retry {
                error: format!("SMTP: {}", crate::error_chain(&error)),
                retry_after: None,
            },
        }
    }
}

/// `[sdm-watch] <status>: <job name>`.
pub fn subject(event: &AlertEvent) -> String {
    let job = &event.data.job;
    let name = job.name.as_deref().unwrap_or(&job.id);
    if event.data.test {
        return format!("[sdm-watch] TEST: {name}");
    }
    format!("[sdm-watch] {}: {name}", job.status)
}

/// The plain-text body: everything an operator needs without opening SDM.
pub fn body(id: &str, event: &AlertEvent) -> String {
    let job = &event.data.job;
    let unknown = "(unknown)";
    let mut text = String::new();
    if event.data.test {
        text.push_str("THIS IS A TEST ALERT from `sdm-watch test-alert`; no job changed.\n\n");
    }
    let previous = event.data.previous_status.as_deref();
    let _ = writeln!(
        text,
        "Job \"{}\" is now {}{}.\n",
        job.name.as_deref().unwrap_or(&job.id),
        job.status,
        previous
            .map(|p| format!(" (was {p})"))
            .unwrap_or_else(|| " (first seen in this status)".into()),
    );
    let mut field = |label: &str, value: &str| {
        let _ = writeln!(text, "{label:<16}{value}");
    };
    field("Job id:", &job.id);
    field("Name:", job.name.as_deref().unwrap_or(unknown));
    field(
        "Project:",
        &job.project
            .map(|p| p.to_string())
            .unwrap_or_else(|| unknown.into()),
    );
    field("Status:", &job.status);
    field("Previous status:", previous.unwrap_or("(none)"));
    field("Created:", job.creation_date.as_deref().unwrap_or(unknown));
    field("Completed:", job.completion_date.as_deref().unwrap_or("-"));
    if let Some(message) = &job.message {
        field("Error message:", message);
    }
    field("URL:", &event.data.url);
    let _ = writeln!(
        text,
        "\nAlert {id}, detected {} by sdm-watch {}.",
        event.timestamp,
        env!("CARGO_PKG_VERSION")
    );
    text
}
