//! What a webhook sends, by its `format`: SPEC's standard JSON, a chat service's message
//! (Slack, Microsoft Teams, Google Chat, Discord), or the operator's template; and the
//! HTML part of e-mails. Every native format shows the same facts of an alert (a
//! [`Card`]), keeps to its service's documented limits, cuts long texts with "..." and
//! ends a long digest with "and N more".

pub mod context;
pub mod discord;
pub mod google_chat;
pub mod html;
pub mod slack;
pub mod teams;
pub mod text;

use serde_json::Value;

use super::payload::{About, AlertEvent, Tone, WatcherFacts};
use super::{Digest, Message};
use crate::config::{WebhookConfig, WebhookFormat};
use crate::template::TemplateError;

/// A body ready to send.
#[derive(Clone, Debug, PartialEq)]
pub struct Rendered {
    pub content_type: String,
    pub body: String,
}

/// Why a message could not be rendered: the alert is dead with this reason, and nothing
/// was sent.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("the queued alert cannot be read: {0}")]
    Payload(#[from] serde_json::Error),
    #[error("the template failed: {0}")]
    Template(#[from] TemplateError),
    #[error("format = \"template\" without a body_template")]
    NoTemplate,
    #[error("{0} neither opens nor ends an incident, so an incident tool cannot take it")]
    NotAnIncident(String),
    #[error("an incident tool takes alerts one by one, not digests")]
    Digest,
    #[error("a report cannot go to a webhook of format {0:?}")]
    Report(WebhookFormat),
}

const JSON: &str = "application/json";

/// The body `config`'s webhook sends for `message`.
pub fn webhook_body(config: &WebhookConfig, message: &Message) -> Result<Rendered, RenderError> {
    let json = |body: Value| Rendered {
        content_type: JSON.to_owned(),
        body: body.to_string(),
    };
    let native = |alert: fn(&Card) -> Value, digest: fn(&Digest) -> Value| {
        Ok::<_, RenderError>(json(match message {
            Message::Alert { payload, .. } => match crate::notify::report::read(payload) {
                Some(report) => alert(&report?.card()),
                None => alert(&Card::of(&serde_json::from_str(payload)?)),
            },
            Message::Digest(d) => digest(d),
        }))
    };
    if let Message::Alert { payload, .. } = message
        && crate::notify::report::read(payload).is_some()
        && matches!(
            config.format,
            WebhookFormat::Alertmanager | WebhookFormat::Pagerduty | WebhookFormat::Template
        )
    {
        // The configuration refuses reports to these; a reload may have changed a format.
        return Err(RenderError::Report(config.format));
    }
    match config.format {
        WebhookFormat::Standard => Ok(Rendered {
            content_type: JSON.to_owned(),
            body: message.body().into_owned(),
        }),
        WebhookFormat::Slack => native(slack::alert, slack::digest),
        WebhookFormat::Teams => native(teams::alert, teams::digest),
        WebhookFormat::GoogleChat => native(google_chat::alert, google_chat::digest),
        WebhookFormat::Discord => native(discord::alert, discord::digest),
        WebhookFormat::Alertmanager | WebhookFormat::Pagerduty => {
            // Their senders build their own bodies (see `notify::incident`).
            Ok(json(match message {
                Message::Alert { payload, .. } => {
                    serde_json::from_str::<Value>(payload).map_err(RenderError::Payload)?
                }
                Message::Digest(_) => return Err(RenderError::Digest),
            }))
        }
        WebhookFormat::Template => {
            // The configuration refuses `format = "template"` without one.
            let template = config.template.as_ref().ok_or(RenderError::NoTemplate)?;
            let body = template.template.render(&message_context(message)?)?;
            Ok(Rendered {
                content_type: template.content_type.clone(),
                body,
            })
        }
    }
}

/// The template context of `message`.
pub fn message_context(message: &Message) -> Result<Value, RenderError> {
    Ok(match message {
        Message::Alert { payload, .. } => context::alert(&serde_json::from_str(payload)?),
        Message::Digest(digest) => context::digest(digest),
    })
}

/// What every chat format shows of one alert.
#[derive(Clone, Debug, PartialEq)]
pub struct Card {
    /// `error: Supplier feed`.
    pub title: String,
    /// `Job "Supplier feed" is now error (was running).`
    pub headline: String,
    pub tone: Tone,
    /// Label and value, in the order shown.
    pub facts: Vec<(&'static str, String)>,
    /// The job's error message.
    pub message: Option<String>,
    /// The job's page for people (`[links] job`).
    pub link: Option<String>,
    /// When the change was detected.
    pub timestamp: String,
    pub test: bool,
}

impl Card {
    pub fn of(event: &AlertEvent) -> Card {
        let data = &event.data;
        let job = match &data.about {
            About::Job { job, .. } => job,
            About::Watcher(facts) => return Card::of_watcher(event, facts),
        };
        let or = |value: Option<&str>, none: &str| value.unwrap_or(none).to_owned();
        let mut facts = vec![
            (
                "Project",
                job.project
                    .map_or_else(|| "unknown".to_owned(), |p| p.to_string()),
            ),
            ("Status", job.status.clone()),
            ("Previous status", or(event.previous_status(), "(none)")),
            ("Created", or(job.creation_date.as_deref(), "unknown")),
            ("Completed", or(job.completion_date.as_deref(), "-")),
            ("Job id", job.id.clone()),
        ];
        if let Some(output) = data.output.as_ref().filter(|o| !o.is_null()) {
            let columns = output["columns"].as_array().map_or(0, Vec::len);
            facts.push((
                "Output",
                format!("{} rows, {columns} columns", output["rows"]),
            ));
        }
        if let Some(error) = &data.output_error {
            facts.push(("Output", format!("could not be fetched: {error}")));
        }
        if let Some(since) = &data.pending_since {
            facts.push(("Pending since", since.clone()));
        }
        if let Some(since) = &data.running_since {
            facts.push(("Running since", since.clone()));
        }
        Card {
            title: event.title(),
            headline: event.headline(),
            tone: event.tone(),
            facts,
            message: job.message.clone(),
            link: data.link.clone(),
            timestamp: event.timestamp.clone(),
            test: data.test,
        }
    }

    /// The watcher's outage: since when, for how long, why; the last error as the message.
    fn of_watcher(event: &AlertEvent, facts: &WatcherFacts) -> Card {
        let seconds =
            |s: u64| humantime::format_duration(std::time::Duration::from_secs(s)).to_string();
        let mut shown = vec![
            ("Watching", facts.watching.clone()),
            ("Since", facts.since.clone()),
        ];
        if let Some(s) = facts.failing_for_seconds {
            shown.push(("Failing for", seconds(s)));
        }
        if let Some(s) = facts.down_for_seconds {
            shown.push(("Down for", seconds(s)));
        }
        if let Some(reason) = &facts.reason {
            shown.push(("Reason", reason.clone()));
        }
        Card {
            title: event.title(),
            headline: event.headline(),
            tone: event.tone(),
            facts: shown,
            message: facts.last_error.clone(),
            link: None,
            timestamp: event.timestamp.clone(),
            test: false,
        }
    }

    /// A digest's line for this alert: title, project, and the error if any.
    pub fn one_line(&self) -> String {
        let project = self
            .facts
            .iter()
            .find(|(label, _)| *label == "Project")
            .map(|(_, p)| p.as_str())
            .unwrap_or("unknown");
        format!("{} (project {project})", self.title)
    }
}

/// "and 3 more".
pub fn and_more(count: usize) -> String {
    format!("and {count} more")
}

/// An emoji that says the tone where colours cannot.
pub fn mark(tone: Tone) -> &'static str {
    match tone {
        Tone::Good => "\u{2705}",
        Tone::Bad => "\u{274c}",
        Tone::Waiting => "\u{23f3}",
        Tone::Info => "\u{2139}\u{fe0f}",
    }
}

/// A colour per tone, as RGB.
pub fn colour(tone: Tone) -> u32 {
    match tone {
        Tone::Good => 0x2E_B6_7D,
        Tone::Bad => 0xD9_30_25,
        Tone::Waiting => 0xEC_B2_2E,
        Tone::Info => 0x1D_9B_D1,
    }
}
