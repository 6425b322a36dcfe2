//! Discord webhooks: `content` (at most 2,000 characters) and one embed coloured by tone.
//! Embed limits, from Discord's "Embed Limits": title 256 characters, description 4,096,
//! at most 25 fields of name 256 and value 1,024, footer 2,048, and 6,000 characters over
//! all of them. Values are escaped for Discord's markdown, and `allowed_mentions` is
//! empty so that no name can ping anyone. Discord answers `204 No Content`.

use serde_json::{Value, json};

use super::text::{self, cut, fit};
use super::{Card, and_more, colour, mark};
use crate::notify::Digest;

pub const MAX_CONTENT: usize = 2000;
pub const MAX_TITLE: usize = 256;
pub const MAX_DESCRIPTION: usize = 4096;
pub const MAX_FIELDS: usize = 25;
pub const MAX_FIELD_NAME: usize = 256;
pub const MAX_FIELD_VALUE: usize = 1024;
pub const MAX_FOOTER: usize = 2048;
pub const MAX_EMBED_TOTAL: usize = 6000;

/// The characters an embed counts towards its 6,000.
pub fn embed_chars(embed: &Value) -> usize {
    let count = |value: &Value| value.as_str().map_or(0, |s| s.chars().count());
    let fields: usize = embed["fields"]
        .as_array()
        .map(|fields| {
            fields
                .iter()
                .map(|field| count(&field["name"]) + count(&field["value"]))
                .sum()
        })
        .unwrap_or(0);
    count(&embed["title"])
        + count(&embed["description"])
        + count(&embed["footer"]["text"])
        + count(&embed["author"]["name"])
        + fields
}

fn field(name: &str, value: &str, inline: bool) -> Value {
    json!({
        "name": fit(name, MAX_FIELD_NAME, text::discord),
        "value": fit(value, MAX_FIELD_VALUE, text::discord),
        "inline": inline,
    })
}

/// The message: `prefix` (ours, markdown allowed) then `text` escaped, and the embed.
fn message(prefix: &str, text: &str, embed: Value) -> Value {
    let room = MAX_CONTENT - prefix.chars().count();
    json!({
        "content": format!("{prefix}{}", fit(text, room, text::discord)),
        "embeds": [embed],
        "allowed_mentions": {"parse": []},
    })
}

pub fn alert(card: &Card) -> Value {
    let mut fields: Vec<Value> = card
        .facts
        .iter()
        .map(|(label, value)| field(label, value, true))
        .collect();
    if let Some(error) = &card.message {
        fields.push(field("Error message", error, false));
    }
    fields.truncate(MAX_FIELDS);
    let what = if card.test { "test alert" } else { "detected" };
    let mut embed = json!({
        "title": cut(&format!("{} {}", mark(card.tone), card.title), MAX_TITLE),
        "description": fit(&card.headline, 1500, text::discord),
        "color": colour(card.tone),
        "fields": fields,
        "footer": {"text": cut(&format!("sdm-watch {what}"), MAX_FOOTER)},
        "timestamp": card.timestamp,
    });
    if let Some(link) = &card.link {
        embed["url"] = json!(link);
    }
    message(
        &format!("{} **[sdm-watch]** ", mark(card.tone)),
        &card.title,
        embed,
    )
}

pub fn digest(digest: &Digest) -> Value {
    let total = digest.len();
    let summary = digest.summary();
    let title = cut(&format!("sdm-watch: {summary}"), MAX_TITLE);
    let footer = format!("sdm-watch digest {}", digest.timestamp());
    // Room for the title, the footer, and an "and N more" field.
    let mut used = title.chars().count() + footer.chars().count() + 40;
    let mut fields = Vec::new();
    for event in digest.events().take(MAX_FIELDS - 1) {
        let card = Card::of(&event);
        let mut value = card.one_line();
        if let Some(error) = &card.message {
            value.push_str(&format!(": {}", cut(error, 300)));
        }
        let mut item = field(
            &format!("{} {}", mark(card.tone), event.what()),
            &value,
            false,
        );
        if let Some(link) = card.link.as_deref().filter(|l| l.len() <= 500) {
            let with_link = format!(
                "{}\n[Open job]({link})",
                item["value"].as_str().unwrap_or("")
            );
            if with_link.chars().count() <= MAX_FIELD_VALUE {
                item["value"] = json!(with_link);
            }
        }
        let chars = embed_chars(&json!({"fields": [item.clone()]}));
        if used + chars > MAX_EMBED_TOTAL {
            break;
        }
        used += chars;
        fields.push(item);
    }
    let shown = fields.len();
    if total > shown {
        fields.push(field("\u{2026}", &and_more(total - shown), false));
    }
    let embed = json!({
        "title": title,
        "color": colour(digest.tone()),
        "fields": fields,
        "footer": {"text": footer},
        "timestamp": digest.timestamp(),
    });
    message("**[sdm-watch]** ", &summary, embed)
}
