//! Google Chat incoming webhooks: `text` (the line a notification shows) and a `cardsV2`
//! card: a header, the facts as `decoratedText` widgets, the error message in red, and a
//! button that opens the job's page. Google Chat formats card text as a subset of HTML,
//! so every value there is HTML-escaped; in `text`, where `<...>` makes links and
//! mentions, `&`, `<` and `>` are escaped the same way. Limits: a message is at most
//! 32,000 bytes and its text 4,096 characters; a digest lists as many jobs as fit in
//! 28,000 bytes (at most 50), then "and N more".

use serde_json::{Value, json};

use super::text::{self, cut, fit};
use super::{Card, and_more, mark};
use crate::notify::Digest;

pub const MAX_TEXT: usize = 4096;
pub const MAX_MESSAGE_BYTES: usize = 32_000;
pub const MAX_DIGEST_BYTES: usize = 28_000;
pub const MAX_DIGEST_ITEMS: usize = 50;
/// A widget's text, ours: long values are cut well before the message limit.
pub const MAX_WIDGET_TEXT: usize = 2000;
const RED: &str = "#d93025";

fn paragraph(html: String) -> Value {
    json!({"textParagraph": {"text": html}})
}

fn message(text: &str, card_id: &str, header: Value, widgets: Vec<Value>) -> Value {
    json!({
        "text": fit(text, MAX_TEXT, text::slack),
        "cardsV2": [{
            "cardId": card_id,
            "card": {"header": header, "sections": [{"widgets": widgets}]},
        }],
    })
}

fn button(link: &str) -> Value {
    json!({"buttonList": {"buttons": [{"text": "Open job", "onClick": {"openLink": {"url": link}}}]}})
}

pub fn alert(card: &Card) -> Value {
    let mut widgets = vec![paragraph(fit(&card.headline, MAX_WIDGET_TEXT, text::html))];
    for (label, value) in &card.facts {
        widgets.push(json!({"decoratedText": {"topLabel": label, "text": fit(value, MAX_WIDGET_TEXT, text::html)}}));
    }
    if let Some(error) = &card.message {
        widgets.push(paragraph(format!(
            "<font color=\"{RED}\"><b>Error message</b><br>{}</font>",
            fit(error, MAX_WIDGET_TEXT, text::html)
        )));
    }
    if let Some(link) = &card.link {
        widgets.push(button(link));
    }
    let what = if card.test { "test alert" } else { "detected" };
    let header = json!({
        "title": cut(&format!("{} {}", mark(card.tone), card.title), 200),
        "subtitle": format!("sdm-watch {what} {}", card.timestamp),
    });
    message(
        &format!("{} [sdm-watch] {}", mark(card.tone), card.title),
        "sdm-watch-alert",
        header,
        widgets,
    )
}

pub fn digest(digest: &Digest) -> Value {
    let total = digest.len();
    let mut widgets = Vec::new();
    let mut size = 2_000; // the message around the widgets, generously
    for event in digest.events().take(MAX_DIGEST_ITEMS) {
        let card = Card::of(&event);
        let mut html = format!(
            "{} <b>{}</b>",
            mark(card.tone),
            fit(&card.one_line(), 500, text::html)
        );
        if let Some(error) = &card.message {
            html.push_str(&format!(
                "<br><font color=\"{RED}\">{}</font>",
                fit(error, 500, text::html)
            ));
        }
        if let Some(link) = card.link.as_deref().filter(|l| l.len() <= 1000) {
            html.push_str(&format!(
                "<br><a href=\"{}\">Open job</a>",
                text::html(link)
            ));
        }
        let widget = paragraph(html);
        size += widget.to_string().len();
        if size > MAX_DIGEST_BYTES {
            break;
        }
        widgets.push(widget);
    }
    let shown = widgets.len();
    if total > shown {
        widgets.push(paragraph(and_more(total - shown)));
    }
    let summary = digest.summary();
    let header = json!({
        "title": cut(&format!("sdm-watch: {summary}"), 200),
        "subtitle": format!("digest {}", digest.timestamp()),
    });
    message(
        &format!("[sdm-watch] {summary}"),
        "sdm-watch-digest",
        header,
        widgets,
    )
}
