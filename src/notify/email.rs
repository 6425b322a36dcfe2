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

use super::format;
use super::payload::AlertEvent;
use super::report;
use super::{Attempt, Digest, Message as Outgoing};
use crate::config::{EmailConfig, SmtpConfig, SmtpTls};
use crate::template::{Template, TemplateError};

pub type SmtpTransport = AsyncSmtpTransport<Tokio1Executor>;

/// The pooled SMTP transport every e-mail channel shares. The pool keeps as many idle
/// connections as deliveries may run at once, so a burst reuses the connections it
/// opened instead of dropping some and opening others.
pub fn transport(
    smtp: &SmtpConfig,
    concurrency: usize,
) -> Result<Arc<SmtpTransport>, lettre::transport::smtp::Error> {
    // With a ca_file, its parameters replace the system's below: a system without CA
    // certificates (no ca-certificates package) can still reach a relay it names.
    let builder = match (smtp.tls, &smtp.ca_file) {
        (SmtpTls::None, _) | (_, Some(_)) => SmtpTransport::builder_dangerous(&smtp.host),
        (SmtpTls::Starttls, None) => SmtpTransport::starttls_relay(&smtp.host)?,
        (SmtpTls::Tls, None) => SmtpTransport::relay(&smtp.host)?,
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
    subject_template: Option<Template>,
    body_template: Option<Template>,
    html: bool,
}

/// An e-mail's words: its subject, its plain text, and the HTML alternative if wanted.
struct Words {
    subject: String,
    text: String,
    html: Option<String>,
}

/// A subject is one line of reasonable length, whatever a template printed.
fn one_line(subject: &str) -> String {
    let line = subject
        .split(['\r', '\n'])
        .map(str::trim)
        .find(|l| !l.is_empty());
    format::text::cut(line.unwrap_or(""), 250)
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
            subject_template: config.subject_template.clone(),
            body_template: config.body_template.clone(),
            html: config.html,
        }
    }

    /// Whether anything this channel sends is rendered from a template context.
    fn templated(&self) -> bool {
        self.subject_template.is_some() || self.body_template.is_some() || self.html
    }

    /// The subject and bodies from the templates where the channel has them, else the
    /// built-in ones. `default_text` builds the built-in plain text when needed.
    fn words(
        &self,
        context: &serde_json::Value,
        default_subject: String,
        default_text: impl FnOnce() -> String,
    ) -> Result<Words, TemplateError> {
        let subject = match &self.subject_template {
            Some(template) => Some(one_line(&template.render(context)?)).filter(|s| !s.is_empty()),
            None => None,
        };
        let text = match &self.body_template {
            Some(template) => template.render(context)?,
            None => default_text(),
        };
        let html = self
            .html
            .then(|| format::html::email(context))
            .transpose()?;
        Ok(Words {
            subject: subject.unwrap_or(default_subject),
            text,
            html,
        })
    }

    /// One delivery attempt of `outgoing`: an alert's e-mail, or a digest's.
    pub async fn send(&self, outgoing: &Outgoing) -> Attempt {
        let built = match outgoing {
            Outgoing::Alert { id, payload } if let Some(report) = report::read(payload) => {
                match report.map_err(|e| e.to_string()).and_then(|report| {
                    report
                        .email()
                        .map_err(|e| format!("the template failed: {e}"))
                }) {
                    Ok((subject, text, html)) => self
                        .builder(id, &subject)
                        .multipart(MultiPart::alternative_plain_html(text, html)),
                    Err(error) => return Attempt::Permanent { error },
                }
            }
            Outgoing::Alert { id, payload } => match serde_json::from_str(payload) {
                Ok(event) => match self.alert_message(id, &event).await {
                    Ok(built) => built,
                    Err(error) => return template_failed(error),
                },
                Err(error) => {
                    return Attempt::Permanent {
                        error: format!("the queued alert cannot be read: {error}"),
                    };
                }
            },
            Outgoing::Digest(digest) => {
                // A digest's context holds every member: built only when a template reads it.
                let context = if self.templated() {
                    format::context::digest(digest)
                } else {
                    serde_json::Value::Null
                };
                let default = format!("[sdm-watch] {}", digest.summary());
                match self.words(&context, default, || digest_body(digest)) {
                    Ok(words) => {
                        let message = self.builder(&digest.id, &words.subject);
                        match words.html {
                            Some(html) => message
                                .multipart(MultiPart::alternative_plain_html(words.text, html)),
                            None => message.header(ContentType::TEXT_PLAIN).body(words.text),
                        }
                    }
                    Err(error) => return template_failed(error),
                }
            }
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
    ) -> Result<Result<Message, lettre::error::Error>, TemplateError> {
        let attachment = attachment(event, self.attach_max_bytes).await;
        let context = if self.templated() {
            format::context::alert(event)
        } else {
            serde_json::Value::Null
        };
        let words = self.words(&context, subject(event), || {
            body(id, event, attachment.note.as_deref())
        })?;
        let message = self.builder(id, &words.subject);
        let content = match words.html {
            Some(html) => Content::Multi(MultiPart::alternative_plain_html(words.text, html)),
            None => Content::Single(SinglePart::plain(words.text)),
        };
        Ok(match (content, attachment.csv) {
            (content, Some((name, csv))) => {
                let csv_type = ContentType::parse("text/csv; charset=utf-8")
                    .unwrap_or(ContentType::TEXT_PLAIN);
                let mixed = match content {
                    Content::Multi(alternative) => MultiPart::mixed().multipart(alternative),
                    Content::Single(text) => MultiPart::mixed().singlepart(text),
                };
                message.multipart(mixed.singlepart(Attachment::new(name).body(csv, csv_type)))
            }
            (Content::Multi(alternative), None) => message.multipart(alternative),
            (Content::Single(text), None) => message.singlepart(text),
        })
    }
}

/// A message's content before attachments: the plain text alone, or with its HTML.
enum Content {
    Single(SinglePart),
    Multi(MultiPart),
}

/// A template that fails at delivery kills the alert with the reason; nothing is sent.
fn template_failed(error: TemplateError) -> Attempt {
    Attempt::Permanent {
        error: format!("the template failed: {error}"),
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
        Ok(json) => crate::rows::csv_from_json(&json, crate::rows::Cells::ForPeople),
        Err(error) => Err(crate::rows::RowsError::Io(error)),
    };
    match csv {
        Ok(csv) => {
            let name = format!("{}.csv", event.job().map_or("rows", |job| job.id.as_str()));
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
    format!("[sdm-watch] {}", event.title())
}

/// A digest's plain-text body: a line or two per alert, in the order they were queued.
pub fn digest_body(digest: &Digest) -> String {
    let mut text = format!("{}.\n\n", digest.summary());
    for event in digest.events() {
        let _ = writeln!(text, "- {}", event.headline());
        let Some(job) = event.job() else { continue };
        let project = job
            .project
            .map(|p| format!(", project {p}"))
            .unwrap_or_default();
        let _ = writeln!(text, "  job {}{project}", job.id);
        if let Some(message) = &job.message {
            let _ = writeln!(text, "  error: {message}");
        }
        let _ = writeln!(
            text,
            "  {}",
            event
                .data
                .link
                .as_deref()
                .or(event.url())
                .unwrap_or_default()
        );
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
    let Some(job) = event.job() else {
        return watcher_body(id, event);
    };
    let unknown = "(unknown)";
    let mut text = String::new();
    if event.data.test {
        text.push_str("THIS IS A TEST ALERT from `sdm-watch test-alert`; no job changed.\n\n");
    }
    let previous = event.previous_status();
    let _ = writeln!(text, "{}\n", event.headline());
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
    if let Some(link) = &event.data.link {
        field("Link:", link);
    }
    field("URL:", event.url().unwrap_or_default());
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

/// The plain-text body of a watcher alert: what is wrong (or right again), since when, and
/// the last error.
fn watcher_body(id: &str, event: &AlertEvent) -> String {
    let card = super::format::Card::of(event);
    let mut text = format!("{}\n\n", event.headline());
    for (label, value) in &card.facts {
        let _ = writeln!(text, "{:<18}{value}", format!("{label}:"));
    }
    if let Some(error) = &card.message {
        let _ = writeln!(text, "{:<18}{error}", "Last error:");
    }
    if event.kind == "watcher.failing" {
        text.push_str(
            "\nUntil a cycle succeeds, changes of SDM jobs are not detected and no job alert is sent.\n\
             `sdm-watch state` and the daemon's log say more; /readyz answers 503 meanwhile.\n",
        );
    }
    let _ = writeln!(
        text,
        "\nAlert {id}, sent {} by sdm-watch {}.",
        event.timestamp,
        env!("CARGO_PKG_VERSION")
    );
    text
}
