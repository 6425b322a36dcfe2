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

pub use super::card::Card;
use super::payload::Tone;
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
