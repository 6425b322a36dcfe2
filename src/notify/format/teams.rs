//! Microsoft Teams through a Workflows webhook: a `message` with one Adaptive Card 1.4
//! attachment. The card has the title (coloured by tone: `Attention` for errors), the
//! headline, a `FactSet`, the error message in `Attention`, and an `Action.OpenUrl` to the
//! job's page. Teams refuses messages over 28 KB: texts are cut and a digest lists as many
//! jobs as fit in 24 KB (at most 50), then "and N more". Teams answers `202 Accepted`.

use serde_json::{Value, json};

use super::text::{cut, fit, teams};
use super::{Card, and_more, mark};
use crate::notify::Digest;
use crate::notify::payload::Tone;

/// Teams' limit on a message is 28 KB; the card stays well under it.
pub const MAX_CARD_BYTES: usize = 24_000;
pub const MAX_TEXT: usize = 2000;
pub const MAX_FACT: usize = 500;
pub const MAX_DIGEST_ITEMS: usize = 50;

fn colour(tone: Tone) -> &'static str {
    match tone {
        Tone::Good => "Good",
        Tone::Bad => "Attention",
        Tone::Waiting => "Warning",
        Tone::Info => "Accent",
    }
}

/// Card texts render a Markdown subset: every text is escaped to show as written.
fn shown(text: &str, max: usize) -> String {
    fit(text, max, teams)
}

fn text_block(text: &str) -> Value {
    json!({"type": "TextBlock", "text": shown(text, MAX_TEXT), "wrap": true})
}

fn subtle(text: &str) -> Value {
    json!({"type": "TextBlock", "text": shown(text, MAX_TEXT), "wrap": true, "isSubtle": true, "size": "Small"})
}

fn title(text: &str, tone: Tone) -> Value {
    json!({"type": "TextBlock", "text": shown(text, MAX_TEXT), "wrap": true, "size": "Large", "weight": "Bolder", "color": colour(tone)})
}

fn fact(title: &str, value: &str) -> Value {
    json!({"title": shown(title, MAX_FACT), "value": shown(value, MAX_FACT)})
}

/// The Workflows message around `card`.
fn message(body: Vec<Value>, actions: Vec<Value>) -> Value {
    let mut card = json!({
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
    });
    if !actions.is_empty() {
        card["actions"] = json!(actions);
    }
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": card,
        }],
    })
}

fn open(link: Option<&str>) -> Vec<Value> {
    link.map(|url| json!({"type": "Action.OpenUrl", "title": "Open job", "url": url}))
        .into_iter()
        .collect()
}

pub fn alert(card: &Card) -> Value {
    let facts: Vec<Value> = card
        .facts
        .iter()
        .map(|(label, value)| fact(label, value))
        .collect();
    let mut body = vec![
        title(&format!("{} {}", mark(card.tone), card.title), card.tone),
        text_block(&card.headline),
        json!({"type": "FactSet", "facts": facts}),
    ];
    if let Some(error) = &card.message {
        body.push(json!({"type": "TextBlock", "text": "Error message", "wrap": true, "weight": "Bolder", "color": "Attention"}));
        body.push(json!({"type": "TextBlock", "text": shown(error, MAX_TEXT), "wrap": true, "color": "Attention"}));
    }
    let what = if card.test { "test alert" } else { "detected" };
    body.push(subtle(&format!("sdm-watch {what} {}", card.timestamp)));
    message(body, open(card.link.as_deref()))
}

pub fn digest(digest: &Digest) -> Value {
    let total = digest.len();
    let mut facts = Vec::new();
    let mut size = 2_000; // the card around the facts, generously
    for event in digest.events().take(MAX_DIGEST_ITEMS) {
        let card = Card::of(&event);
        let mut value = card.one_line();
        if let Some(error) = &card.message {
            value.push_str(&format!(": {}", cut(error, 200)));
        }
        // The job's texts escaped; the link is ours, written as Markdown after them.
        let link = card
            .link
            .as_deref()
            .filter(|l| l.len() <= 400)
            .map(|link| format!(" [Open job]({})", link.replace(')', "%29")));
        let budget = MAX_FACT * 2 - link.as_ref().map_or(0, String::len);
        let mut value = shown(&value, budget);
        value.push_str(link.as_deref().unwrap_or_default());
        let item =
            json!({"title": format!("{} {}", mark(card.tone), event.what()), "value": value});
        size += item.to_string().len();
        if size > MAX_CARD_BYTES {
            break;
        }
        facts.push(item);
    }
    let shown = facts.len();
    let mut body = vec![
        title(&format!("sdm-watch: {}", digest.summary()), digest.tone()),
        json!({"type": "FactSet", "facts": facts}),
    ];
    if total > shown {
        body.push(text_block(&and_more(total - shown)));
    }
    body.push(subtle(&format!("sdm-watch digest {}", digest.timestamp())));
    message(body, Vec::new())
}
