//! E-mail delivery over SMTP with lettre: one plain-text message per alert, its
//! `Message-ID` derived from the alert id so that a retried alert is recognisably the same.

use std::fmt::Write as _;
use std::sync::Arc;

use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::payload::AlertEvent;
use super::{Attempt, Digest, Message as Outgoing};
use crate::config::{EmailConfig, SmtpConfig, SmtpTls};

pub type SmtpTransport = AsyncSmtpTransport<Tokio1Executor>;

/// The pooled SMTP transport every e-mail channel shares. The pool keeps as many idle
/// connections as deliveries may run at once, so a burst reuses the connections it
/// opened instead of dropping some and opening others.
pub fn transport(
    smtp: &SmtpConfig,
    concurrency: usize,
) -> Result<Arc<SmtpTransport>, lettre::transport::smtp::Error> {
    let builder = match smtp.tls {
        SmtpTls::Starttls => SmtpTransport::starttls_relay(&smtp.host)?,
        SmtpTls::Tls => SmtpTransport::relay(&smtp.host)?,
        SmtpTls::None => SmtpTransport::builder_dangerous(&smtp.host),
    };
    let pool = PoolConfig::new().max_size(u32::try_from(concurrency).unwrap_or(u32::MAX));
    let mut builder = builder
        .port(smtp.port)
        .timeout(Some(smtp.timeout))
        .pool_config(pool);
    if let Some(ca_file) = smtp.ca_file.as_ref().filter(|_| smtp.tls != SmtpTls::None) {
        let parameters = TlsParameters::builder(smtp.host.clone())
            .add_root_certificate(Certificate::from_pem(&ca_file.pem)?)
            .build()?;
        builder = builder.tls(match smtp.tls {
            SmtpTls::Tls => Tls::Wrapper(parameters),
            _ => Tls::Required(parameters),
        });
    }
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
    /// A done job's saved rows are attached as CSV when the file is at most this big.
    attach_max_bytes: u64,
}

impl EmailSender {
    pub fn new(
        transport: Arc<SmtpTransport>,
        from: Mailbox,
        config: &EmailConfig,
        attach_max_bytes: u64,
    ) -> Self {
        Self {
            transport,
            from,
            to: config.to.clone(),
            attach_max_bytes,
        }
    }

    /// One delivery attempt of `outgoing`: an alert's e-mail, or a digest's.
    pub async fn send(&self, outgoing: &Outgoing) -> Attempt {
        let built = match outgoing {
            Outgoing::Alert { id, payload } => match serde_json::from_str(payload) {
                Ok(event) => self.alert_message(id, &event).await,
                Err(error) => {
                    return Attempt::Permanent {
                        error: format!("the queued alert cannot be read: {error}"),
                    };
                }
            },
            Outgoing::Digest(digest) => self
                .builder(&digest.id, &format!("[sdm-watch] {}", digest.summary()))
                .header(ContentType::TEXT_PLAIN)
                .body(digest_body(digest)),
        };
        let message = match built {
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
                    crate::domain::error_chain(&error)
                ),
            },
            Err(error) => Attempt::Retry {
                error: format!("SMTP: {}", crate::domain::error_chain(&error)),
                retry_after: None,
            },
        }
    }

    fn builder(&self, id: &str, subject: &str) -> lettre::message::MessageBuilder {
        let mut message = Message::builder()
            .from(self.from.clone())
            .subject(subject)
            .message_id(Some(format!("<{id}@sdm-watch>")));
        for to in &self.to {
            message = message.to(to.clone());
        }
        message
    }

    async fn alert_message(
        &self,
        id: &str,
        event: &AlertEvent,
    ) -> Result<Message, lettre::error::Error> {
        let message = self.builder(id, &subject(event));
        let attachment = attachment(event, self.attach_max_bytes).await;
        let text = body(id, event, attachment.note.as_deref());
        match attachment.csv {
            Some((name, csv)) => {
                let csv_type = ContentType::parse("text/csv; charset=utf-8")
                    .unwrap_or(ContentType::TEXT_PLAIN);
                message.multipart(
                    MultiPart::mixed()
                        .singlepart(SinglePart::plain(text))
                        .singlepart(Attachment::new(name).body(csv, csv_type)),
                )
            }
            None => message.header(ContentType::TEXT_PLAIN).body(text),
        }
    }
}

/// A done job's rows as a CSV attachment, or a note on why they are not attached.
struct Attached {
    csv: Option<(String, Vec<u8>)>,
    note: Option<String>,
}

async fn attachment(event: &AlertEvent, max_bytes: u64) -> Attached {
    let none = |note: Option<String>| Attached { csv: None, note };
    let Some(file) = event
        .data
        .output
        .as_ref()
        .and_then(|output| output.get("file"))
        .and_then(|file| file.as_str())
    else {
        return none(None);
    };
    let size = match tokio::fs::metadata(file).await {
        Ok(metadata) => metadata.len(),
        Err(_) => return none(Some("not attached: the file is no longer there".into())),
    };
    if size > max_bytes {
        return none(Some(format!(
            "not attached: {size} bytes is over output.email_attach_max_bytes ({max_bytes})"
        )));
    }
    let csv = match tokio::fs::read(file).await {
        Ok(json) => crate::rows::csv_from_json(&json),
        Err(error) => Err(crate::rows::RowsError::Io(error)),
    };
    match csv {
        Ok(csv) => {
            let name = format!("{}.csv", event.data.job.id);
            Attached {
                note: Some(format!("attached as {name}")),
                csv: Some((name, csv)),
            }
        }
        Err(error) => none(Some(format!("not attached: {error}"))),
    }
}

/// `[sdm-watch] <status>: <job name>`.
pub fn subject(event: &AlertEvent) -> String {
    let job = &event.data.job;
    let name = job.name.as_deref().unwrap_or(&job.id);
    if event.data.test {
        return format!("[sdm-watch] TEST: {name}");
    }
    let what = event.kind.strip_prefix("job.").unwrap_or(&job.status);
    format!("[sdm-watch] {what}: {name}")
}

/// What happened, in one sentence.
fn headline(event: &AlertEvent) -> String {
    let job = &event.data.job;
    let name = job.name.as_deref().unwrap_or(&job.id);
    let data = &event.data;
    match event.kind.as_str() {
        "job.pending_reminder" => format!(
            "Job \"{name}\" is still pending (reminder {}; pending since {}).",
            data.reminder.unwrap_or(1),
            data.pending_since.as_deref().unwrap_or("?")
        ),
        "job.running_long" => format!(
            "Job \"{name}\" has been running for {} (since {}).",
            humantime::format_duration(std::time::Duration::from_secs(
                data.running_for_seconds.unwrap_or(0)
            )),
            data.running_since.as_deref().unwrap_or("?")
        ),
        _ => format!(
            "Job \"{name}\" is now {}{}.",
            job.status,
            data.previous_status
                .as_deref()
                .map(|p| format!(" (was {p})"))
                .unwrap_or_else(|| " (first seen in this status)".into()),
        ),
    }
}

/// A digest's plain-text body: a line or two per alert, in the order they were queued.
pub fn digest_body(digest: &Digest) -> String {
    let mut text = format!("{}.\n\n", digest.summary());
    for event in digest.events() {
        let job = &event.data.job;
        let _ = writeln!(text, "- {}", headline(&event));
        let project = job
            .project
            .map(|p| format!(", project {p}"))
            .unwrap_or_default();
        let _ = writeln!(text, "  job {}{project}", job.id);
        if let Some(message) = &job.message {
            let _ = writeln!(text, "  error: {message}");
        }
        let _ = writeln!(text, "  {}", event.data.url);
    }
    let _ = writeln!(
        text,
        "\nDigest {}, by sdm-watch {}.",
        digest.id,
        env!("CARGO_PKG_VERSION")
    );
    text
}

/// The plain-text body: everything an operator needs without opening SDM. `attachment`
/// says what became of a done job's rows in this message.
pub fn body(id: &str, event: &AlertEvent, attachment: Option<&str>) -> String {
    let job = &event.data.job;
    let unknown = "(unknown)";
    let mut text = String::new();
    if event.data.test {
        text.push_str("THIS IS A TEST ALERT from `sdm-watch test-alert`; no job changed.\n\n");
    }
    let previous = event.data.previous_status.as_deref();
    let _ = writeln!(text, "{}\n", headline(event));
    let mut field = |label: &str, value: &str| {
        let _ = writeln!(text, "{label:<18}{value}");
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
    if let Some(output) = event.data.output.as_ref().filter(|o| !o.is_null()) {
        let columns: Vec<&str> = output["columns"]
            .as_array()
            .map(|columns| columns.iter().filter_map(|c| c.as_str()).collect())
            .unwrap_or_default();
        field(
            "Output:",
            &format!("{} rows; columns: {}", output["rows"], columns.join(", ")),
        );
        field("Saved as:", output["file"].as_str().unwrap_or(unknown));
        if let Some(attachment) = attachment {
            field("Rows:", attachment);
        }
    }
    if let Some(error) = &event.data.output_error {
        field("Output:", &format!("could not be fetched: {error}"));
    }
    let _ = writeln!(
        text,
        "\nAlert {id}, detected {} by sdm-watch {}.",
        event.timestamp,
        env!("CARGO_PKG_VERSION")
    );
    text
}
