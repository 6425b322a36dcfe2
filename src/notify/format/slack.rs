//! Slack incoming webhooks: `text` (the notification, and the fallback where blocks are
//! not shown) and Block Kit `blocks`. Limits, from Slack's Block Kit reference: 50 blocks
//! a message; a section's text 3,000 characters; at most 10 fields of 2,000; a header
//! 150 (plain text); a button's URL 3,000. Values are escaped for mrkdwn (`&`, `<`, `>`,
//! Slack's "Escaping text"); Slack answers `200 ok`.

use serde_json::{Value, json};

use super::text::{self, fit};
use super::{Card, and_more, mark};
use crate::notify::Digest;
use crate::notify::payload::Tone;

pub const MAX_BLOCKS: usize = 50;
pub const MAX_TEXT: usize = 3000;
pub const MAX_FIELD: usize = 2000;
pub const MAX_FIELDS: usize = 10;
pub const MAX_HEADER: usize = 150;
pub const MAX_URL: usize = 3000;

fn mrkdwn(text: String) -> Value {
    json!({"type": "mrkdwn", "text": text})
}

fn header(text: &str) -> Value {
    json!({"type": "header", "text": {"type": "plain_text", "text": text::cut(text, MAX_HEADER), "emoji": true}})
}

fn footer(text: &str) -> Value {
    json!({"type": "context", "elements": [mrkdwn(fit(text, MAX_TEXT, text::slack))]})
}

fn button(link: &str, tone: Tone) -> Option<Value> {
    if link.chars().count() > MAX_URL {
        return None;
    }
    let mut button = json!({
        "type": "button",
        "text": {"type": "plain_text", "text": "Open job"},
        "url": link,
    });
    if tone == Tone::Bad {
        button["style"] = json!("danger");
    }
    Some(button)
}

/// One alert: a header with its mark, the headline, the facts as fields, the error in a
/// section of its own, a button to the job's page, and when it was detected.
pub fn alert(card: &Card) -> Value {
    let title = format!("{} {}", mark(card.tone), card.title);
    let fields: Vec<Value> = card
        .facts
        .iter()
        .take(MAX_FIELDS)
        .map(|(label, value)| {
            let label = format!("*{label}*\n");
            let room = MAX_FIELD - label.chars().count();
            mrkdwn(format!("{label}{}", fit(value, room, text::slack)))
        })
        .collect();
    let mut blocks = vec![
        header(&title),
        json!({"type": "section", "text": mrkdwn(fit(&card.headline, MAX_TEXT, text::slack))}),
        json!({"type": "section", "fields": fields}),
    ];
    if let Some(message) = &card.message {
        let label = ":rotating_light: *Error message*\n";
        let room = MAX_TEXT - label.chars().count();
        blocks.push(json!({"type": "section", "text": mrkdwn(format!("{label}{}", fit(message, room, text::slack)))}));
    }
    if let Some(button) = card
        .link
        .as_deref()
        .and_then(|link| button(link, card.tone))
    {
        blocks.push(json!({"type": "actions", "elements": [button]}));
    }
    let what = if card.test { "test alert" } else { "detected" };
    blocks.push(footer(&format!("sdm-watch {what} {}", card.timestamp)));
    json!({
        "text": fit(&format!("{} [sdm-watch] {}", mark(card.tone), card.title), MAX_TEXT, text::slack),
        "blocks": blocks,
    })
}

/// A digest: a header with the counts, a section per alert (its line, error and link),
/// as many as 50 blocks allow, then "and N more".
pub fn digest(digest: &Digest) -> Value {
    let summary = digest.summary();
    let total = digest.len();
    // The header and the footer, and "and N more" when not every alert fits.
    let room = if total + 2 <= MAX_BLOCKS {
        total
    } else {
        MAX_BLOCKS - 3
    };
    let mut blocks = vec![header(&format!("sdm-watch: {summary}"))];
    for event in digest.events().take(room) {
        let card = Card::of(&event);
        let mut line = format!(
            "{} *{}*",
            mark(card.tone),
            fit(&card.one_line(), 500, text::slack)
        );
        if let Some(message) = &card.message {
            line.push_str(&format!("\n>{}", fit(message, 1000, text::slack)));
        }
        if let Some(link) = card.link.as_deref().filter(|l| l.len() <= 1000) {
            line.push_str(&format!("\n<{}|Open job>", text::slack(link)));
        }
        blocks.push(json!({"type": "section", "text": mrkdwn(line)}));
    }
    if total > room {
        blocks.push(footer(&and_more(total - room)));
    }
    blocks.push(footer(&format!("sdm-watch digest {}", digest.timestamp())));
    json!({
        "text": fit(&format!("[sdm-watch] {summary}"), MAX_TEXT, text::slack),
        "blocks": blocks,
    })
}
