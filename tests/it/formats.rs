//! Alerts where teams read them (issue 14): Slack, Teams, Google Chat and Discord
//! messages checked field by field against each service's documented shape and limits;
//! hostile job names in every format; templates; `[links] job`; HTML e-mail parsed back
//! as MIME and HTML by Python's own parsers; real receivers answering as the services do.

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};
use time::OffsetDateTime;

use sdm_watch::config::{Config, WebhookConfig};
use sdm_watch::domain::{Event, Status};
use sdm_watch::notify::format::{self, discord, google_chat, slack, teams};
use sdm_watch::notify::incident::{Step, alertmanager, pagerduty};
use sdm_watch::notify::{AlertEvent, Digest, JobSnapshot, Message};
use sdm_watch::sim::{NewJob, Reply, Service, WebhookReceiver};
use sdm_watch::store::outbox::Alert;
use testkit::browser::screenshot as screenshot_of;
use testkit::cli::{sdm_watch, stdout};
use testkit::{World, step};

const HOSTILE: [&str; 5] = [
    "<script>alert(1)</script>",
    r#""}],"x":{""#,
    "*bold* _it_ <@everyone> @here [x](https://evil.example) &amp; `code` <!channel>",
    "[Open job](https://evil.example)",
    "- *urgent*\n1. **now** ~~x~~ # h > q | t ![i](https://evil.example/i.png)",
];

/// Every character that opens Markdown in an Adaptive Card text: none may stand unescaped.
fn teams_markup_is_escaped(text: &str) -> bool {
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            chars.next();
        } else if matches!(
            c,
            '*' | '_' | '[' | ']' | '(' | ')' | '~' | '`' | '#' | '<' | '>' | '!'
        ) {
            return false;
        }
    }
    true
}
const LINK: &str = "https://app.example.com/projects/{project}/jobs/{id}";

fn job(id: &str, name: &str, status: &str, message: Option<String>) -> JobSnapshot {
    JobSnapshot {
        id: id.into(),
        name: Some(name.into()),
        status: status.into(),
        creation_date: Some("2026-11-28T10:01:00.123456Z".into()),
        completion_date: (status != "pending").then(|| "2026-11-28T10:14:57.12Z".into()),
        project: Some(17),
        step: Some(json!({"id": 3})),
        message,
    }
}

fn event(job: JobSnapshot, previous: &str) -> AlertEvent {
    let url = format!("https://sdm.example/api/v1/jobs/{}/", job.id);
    let link = format!("https://app.example.com/projects/17/jobs/{}", job.id);
    let mut event = AlertEvent::new(
        job,
        Some(previous.into()),
        url,
        time::macros::datetime!(2026-11-28 10:15:02 UTC),
    );
    event.data.link = Some(link);
    event
}

fn done() -> AlertEvent {
    let mut event = event(job("job-done", "Supplier feed", "done", None), "running");
    event.data.output = Some(
        json!({"format_id": 3, "rows": 1200, "columns": ["sku", "price"], "file": "/tmp/job-done.json"}),
    );
    event
}

/// An error with a message far over every service's limit, by a job named `name`.
fn error_named(name: &str) -> AlertEvent {
    let message = format!(
        "Column 'sku' missing. {}",
        "Row 17 has no sku. ".repeat(400)
    );
    event(job("job-error", name, "error", Some(message)), "running")
}

fn error() -> AlertEvent {
    error_named("Supplier feed")
}

fn pending() -> AlertEvent {
    event(
        job("job-pending", "Weekly prices", "pending", None),
        "running",
    )
}

fn alert_message(event: &AlertEvent) -> Message {
    Message::Alert {
        id: "msg_1".into(),
        payload: event.to_json(),
    }
}

/// A digest of `count` alerts: errors (with long messages), done and pending, in turn.
fn digest(count: usize) -> Message {
    let members: Vec<Alert> = (0..count)
        .map(|i| {
            let (mut event, status) = match i % 3 {
                0 => (error(), Status::Error),
                1 => (done(), Status::Done),
                _ => (pending(), Status::Pending),
            };
            let job = event.job_mut().unwrap();
            job.id = format!("job-{i}");
            job.name = Some(format!("Feed {i}"));
            Alert::new(
                format!("msg_{i}"),
                "chat",
                "default",
                &format!("job-{i}"),
                Event::from(status),
                event.to_json(),
                0,
            )
        })
        .collect();
    Message::Digest(Digest::new("dgst_1", 1_795_861_200_000, &members))
}

fn hook(format: &str, extra: &str) -> WebhookConfig {
    let text = format!(
        "[api]\ntoken = \"t\"\n[links]\njob = \"{LINK}\"\n[[webhook]]\nname = \"chat\"\nurl = \"https://hooks.example/x\"\nformat = \"{format}\"\n{extra}"
    );
    let config = Config::from_toml(&text, Path::new("formats.toml")).unwrap();
    config.webhooks[0].clone()
}

fn render(format: &str, message: &Message) -> Value {
    let rendered = format::webhook_body(&hook(format, ""), message).unwrap();
    assert_eq!(rendered.content_type, "application/json");
    serde_json::from_str(&rendered.body).unwrap_or_else(|e| panic!("{format}: {e}"))
}

fn chars(value: &Value) -> usize {
    value.as_str().map_or(0, |s| s.chars().count())
}

fn text(value: &Value) -> &str {
    value
        .as_str()
        .unwrap_or_else(|| panic!("not a string: {value}"))
}

/// Slack's mrkdwn, read back: its three entities decoded.
fn slack_unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn html_unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// Discord's markdown, read back: backslash escapes removed.
fn discord_unescape(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            out.extend(chars.next());
        } else {
            out.push(c);
        }
    }
    out
}

// ---- Slack -------------------------------------------------------------------------

fn slack_blocks_within_limits(body: &Value) -> &Vec<Value> {
    assert!(chars(&body["text"]) > 0 && chars(&body["text"]) <= 3000);
    let blocks = body["blocks"].as_array().unwrap();
    assert!(blocks.len() <= slack::MAX_BLOCKS, "{} blocks", blocks.len());
    for block in blocks {
        match text(&block["type"]) {
            "header" => {
                assert_eq!(block["text"]["type"], "plain_text");
                assert!(chars(&block["text"]["text"]) <= 150);
            }
            "section" => {
                if let Some(fields) = block["fields"].as_array() {
                    assert!(fields.len() <= 10);
                    for field in fields {
                        assert_eq!(field["type"], "mrkdwn");
                        assert!(chars(&field["text"]) <= 2000);
                    }
                } else {
                    assert!(chars(&block["text"]["text"]) <= 3000);
                    assert!(chars(&block["text"]["text"]) > 0);
                }
            }
            "actions" => {
                for element in block["elements"].as_array().unwrap() {
                    assert_eq!(element["type"], "button");
                    assert!(chars(&element["url"]) <= 3000);
                }
            }
            "context" => assert!(!block["elements"].as_array().unwrap().is_empty()),
            other => panic!("unexpected block {other}"),
        }
    }
    blocks
}

#[test]
fn slack_messages_follow_block_kit_and_its_limits() {
    let body = render("slack", &alert_message(&done()));
    let blocks = slack_blocks_within_limits(&body);
    assert_eq!(blocks[0]["type"], "header");
    assert_eq!(blocks[0]["text"]["text"], "\u{2705} done: Supplier feed");
    assert_eq!(
        body["text"], "\u{2705} [sdm-watch] done: Supplier feed",
        "the notification text"
    );
    let fields: Vec<&str> = blocks[2]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| text(&f["text"]))
        .collect();
    for expected in [
        "*Project*\n17",
        "*Status*\ndone",
        "*Previous status*\nrunning",
        "*Created*\n2026-11-28T10:01:00.123456Z",
        "*Completed*\n2026-11-28T10:14:57.12Z",
        "*Job id*\njob-done",
        "*Output*\n1200 rows, 2 columns",
    ] {
        assert!(fields.contains(&expected), "{expected} in {fields:?}");
    }
    let button = &blocks[3]["elements"][0];
    assert_eq!(
        button["url"],
        "https://app.example.com/projects/17/jobs/job-done"
    );
    assert!(button.get("style").is_none(), "only errors are red");

    let body = render("slack", &alert_message(&error()));
    let blocks = slack_blocks_within_limits(&body);
    assert_eq!(blocks[0]["text"]["text"], "\u{274c} error: Supplier feed");
    let error_section = blocks
        .iter()
        .find(|b| {
            b["text"]["text"]
                .as_str()
                .is_some_and(|t| t.contains("Error message"))
        })
        .expect("the error has a section of its own");
    let message = text(&error_section["text"]["text"]);
    assert!(message.chars().count() <= 3000 && message.ends_with("..."));
    assert!(message.contains("Column 'sku' missing."));
    assert_eq!(
        blocks.iter().find(|b| b["type"] == "actions").unwrap()["elements"][0]["style"],
        "danger"
    );

    let body = render("slack", &alert_message(&pending()));
    assert_eq!(
        slack_blocks_within_limits(&body)[0]["text"]["text"],
        "\u{23f3} pending: Weekly prices"
    );

    let body = render("slack", &digest(120));
    let blocks = slack_blocks_within_limits(&body);
    assert_eq!(blocks.len(), 50, "a digest fills Slack's 50 blocks");
    assert_eq!(
        blocks[0]["text"]["text"],
        "sdm-watch: 120 jobs: 40 done, 40 error, 40 pending"
    );
    assert_eq!(blocks[48]["elements"][0]["text"], "and 73 more");
    assert!(text(&blocks[1]["text"]["text"]).contains("*error: Feed 0 (project 17)*"));
    let small = render("slack", &digest(3));
    assert_eq!(
        small["blocks"].as_array().unwrap().len(),
        5,
        "no 'and N more'"
    );
}

// ---- Microsoft Teams -----------------------------------------------------------------

/// Checks `document` with `tests/it/py/formats.py CHECK` (a schema validation); panics
/// with what it printed, saying what `document` failed to be.
pub fn python_check(check: &str, document: &Value, what: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("document.json");
    std::fs::write(&path, document.to_string()).unwrap();
    let output = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/it/py/formats.py"
        ))
        .arg(check)
        .arg(&path)
        .output()
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "not {what}: {document}\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Validates the card against the official Adaptive Card 1.4 schema.
fn valid_adaptive_card(card: &Value) {
    python_check("card", card, "a valid Adaptive Card 1.4");
}

fn teams_card(body: &Value) -> &Value {
    assert_eq!(body["type"], "message");
    let attachments = body["attachments"].as_array().unwrap();
    assert_eq!(attachments.len(), 1);
    assert_eq!(
        attachments[0]["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    let card = &attachments[0]["content"];
    assert_eq!(card["type"], "AdaptiveCard");
    assert_eq!(card["version"], "1.4");
    assert!(body.to_string().len() <= 28 * 1024, "Teams' 28 KB");
    valid_adaptive_card(card);
    card
}

fn facts(card: &Value) -> Vec<(String, String)> {
    card["body"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["type"] == "FactSet")
        .flat_map(|b| b["facts"].as_array().unwrap().clone())
        .map(|f| (text(&f["title"]).to_owned(), text(&f["value"]).to_owned()))
        .collect()
}

#[test]
fn teams_messages_carry_one_valid_adaptive_card() {
    let body = render("teams", &alert_message(&done()));
    let card = teams_card(&body);
    assert_eq!(card["body"][0]["text"], "\u{2705} done: Supplier feed");
    assert_eq!(card["body"][0]["color"], "Good");
    let shown = facts(card);
    for (title, value) in [
        ("Project", "17"),
        ("Status", "done"),
        ("Previous status", "running"),
        ("Job id", "job-done"),
        ("Output", "1200 rows, 2 columns"),
    ] {
        assert!(
            shown.contains(&(title.into(), value.into())),
            "{title} {value} in {shown:?}"
        );
    }
    assert_eq!(card["actions"][0]["type"], "Action.OpenUrl");
    assert_eq!(
        card["actions"][0]["url"],
        "https://app.example.com/projects/17/jobs/job-done"
    );

    let body = render("teams", &alert_message(&error()));
    let card = teams_card(&body);
    assert_eq!(card["body"][0]["color"], "Attention", "errors are styled");
    let message = card["body"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| {
            b["text"]
                .as_str()
                .is_some_and(|t| t.starts_with("Column 'sku'"))
        })
        .expect("the error message");
    assert_eq!(message["color"], "Attention");
    assert!(chars(&message["text"]) <= teams::MAX_TEXT);
    assert!(text(&message["text"]).ends_with("..."));

    let body = render("teams", &alert_message(&pending()));
    assert_eq!(teams_card(&body)["body"][0]["color"], "Warning");

    let body = render("teams", &digest(120));
    let card = teams_card(&body);
    assert_eq!(
        card["body"][0]["text"],
        "sdm-watch: 120 jobs: 40 done, 40 error, 40 pending"
    );
    assert_eq!(card["body"][0]["color"], "Attention");
    let listed = facts(card).len();
    assert!((10..=teams::MAX_DIGEST_ITEMS).contains(&listed), "{listed}");
    let more = format!("and {} more", 120 - listed);
    assert!(
        card["body"]
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["text"] == more.as_str()),
        "{more}"
    );
}

// ---- Google Chat ---------------------------------------------------------------------

fn chat_widgets(body: &Value) -> &Vec<Value> {
    assert!(chars(&body["text"]) <= google_chat::MAX_TEXT);
    assert!(body.to_string().len() <= google_chat::MAX_MESSAGE_BYTES);
    let card = &body["cardsV2"][0];
    assert!(card["cardId"].is_string());
    assert!(card["card"]["header"]["title"].is_string());
    card["card"]["sections"][0]["widgets"].as_array().unwrap()
}

#[test]
fn google_chat_messages_have_text_and_a_card() {
    let body = render("google_chat", &alert_message(&done()));
    assert_eq!(body["text"], "\u{2705} [sdm-watch] done: Supplier feed");
    let widgets = chat_widgets(&body);
    let decorated: Vec<(&str, &str)> = widgets
        .iter()
        .filter_map(|w| w.get("decoratedText"))
        .map(|d| (text(&d["topLabel"]), text(&d["text"])))
        .collect();
    assert!(decorated.contains(&("Project", "17")));
    assert!(decorated.contains(&("Previous status", "running")));
    let button = widgets
        .iter()
        .find_map(|w| w.get("buttonList"))
        .expect("a button");
    assert_eq!(
        button["buttons"][0]["onClick"]["openLink"]["url"],
        "https://app.example.com/projects/17/jobs/job-done"
    );

    let body = render("google_chat", &alert_message(&error()));
    let error = chat_widgets(&body)
        .iter()
        .filter_map(|w| w["textParagraph"]["text"].as_str())
        .find(|t| t.contains("Error message"))
        .expect("the error message");
    assert!(
        error.starts_with("<font color=\"#d93025\">"),
        "errors are red"
    );
    assert!(error.contains("...</font>"));

    let body = render("google_chat", &digest(120));
    let widgets = chat_widgets(&body);
    let last = text(&widgets.last().unwrap()["textParagraph"]["text"]);
    assert_eq!(last, format!("and {} more", 120 - (widgets.len() - 1)));
    assert!(widgets.len() - 1 <= google_chat::MAX_DIGEST_ITEMS);
}

// ---- Discord -------------------------------------------------------------------------

fn discord_embed(body: &Value) -> &Value {
    assert!(chars(&body["content"]) <= discord::MAX_CONTENT);
    assert_eq!(
        body["allowed_mentions"],
        json!({"parse": []}),
        "nobody is pinged"
    );
    let embeds = body["embeds"].as_array().unwrap();
    assert_eq!(embeds.len(), 1);
    let embed = &embeds[0];
    assert!(chars(&embed["title"]) <= discord::MAX_TITLE);
    assert!(chars(&embed["description"]) <= discord::MAX_DESCRIPTION);
    let fields = embed["fields"].as_array().unwrap();
    assert!(fields.len() <= discord::MAX_FIELDS);
    for field in fields {
        assert!(chars(&field["name"]) <= discord::MAX_FIELD_NAME && chars(&field["name"]) > 0);
        assert!(chars(&field["value"]) <= discord::MAX_FIELD_VALUE && chars(&field["value"]) > 0);
    }
    assert!(chars(&embed["footer"]["text"]) <= discord::MAX_FOOTER);
    assert!(discord::embed_chars(embed) <= discord::MAX_EMBED_TOTAL);
    embed
}

#[test]
fn discord_messages_stay_within_embed_limits_and_colour_by_status() {
    let body = render("discord", &alert_message(&done()));
    let embed = discord_embed(&body);
    assert_eq!(embed["color"], 0x2E_B6_7D);
    assert_eq!(embed["title"], "\u{2705} done: Supplier feed");
    assert_eq!(
        embed["url"],
        "https://app.example.com/projects/17/jobs/job-done"
    );
    assert!(
        embed["fields"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["name"] == "Project" && f["value"] == "17")
    );

    let body = render("discord", &alert_message(&error()));
    let embed = discord_embed(&body);
    assert_eq!(embed["color"], 0xD9_30_25, "errors are red");
    let message = embed["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "Error message")
        .unwrap();
    assert_eq!(chars(&message["value"]), 1024);
    assert!(text(&message["value"]).ends_with("..."));

    let body = render("discord", &alert_message(&pending()));
    assert_eq!(discord_embed(&body)["color"], 0xEC_B2_2E);

    let body = render("discord", &digest(120));
    let embed = discord_embed(&body);
    let fields = embed["fields"].as_array().unwrap();
    let listed = fields.len() - 1;
    assert_eq!(
        fields.last().unwrap()["value"],
        format!("and {} more", 120 - listed)
    );
}

#[test]
fn a_digest_is_coloured_by_its_gravest_alert_even_one_past_the_listed_ones() {
    let mut members: Vec<Alert> = (0..40)
        .map(|i| {
            let event = done();
            Alert::new(
                format!("msg_{i}"),
                "chat",
                "default",
                "job-done",
                Event::from(Status::Done),
                event.to_json(),
                0,
            )
        })
        .collect();
    members.push(Alert::new(
        "msg_last".into(),
        "chat",
        "default",
        "job-error",
        Event::from(Status::Error),
        error().to_json(),
        0,
    ));
    let message = Message::Digest(Digest::new("dgst_1", 1_795_861_200_000, &members));
    let discord = render("discord", &message);
    assert!(
        discord["embeds"][0]["fields"].as_array().unwrap().len() < 41,
        "not all listed"
    );
    assert_eq!(discord["embeds"][0]["color"], 0xD9_30_25);
    let teams = render("teams", &message);
    assert_eq!(
        teams["attachments"][0]["content"]["body"][0]["color"],
        "Attention"
    );
}

// ---- hostile names, standard and templates ---------------------------------------------

#[test]
fn hostile_job_names_show_as_text_in_every_format() {
    for (name, resolution) in HOSTILE
        .iter()
        .flat_map(|name| [(*name, false), (*name, true)])
    {
        // A failure, and its resolution: the end of an incident shows names as safely.
        let mut event = error_named(name);
        let (what, mark) = if resolution {
            event.kind = "job.resolved".into();
            event.data.condition = Some("error".into());
            event.data.resolves = Some("msg_0".into());
            ("resolved", "\u{2705}")
        } else {
            ("error", "\u{274c}")
        };
        let message = alert_message(&event);
        let title = format!("{what}: {name}");

        let slack = render("slack", &message);
        assert_eq!(
            slack["blocks"][0]["text"]["text"],
            format!("{mark} {title}")
        );
        assert_eq!(
            slack_unescape(text(&slack["text"])),
            format!("{mark} [sdm-watch] {title}")
        );
        let headline = text(&slack["blocks"][1]["text"]["text"]);
        assert!(
            !headline.contains('<') && !headline.contains('>'),
            "{headline}"
        );
        assert!(slack_unescape(headline).contains(name));

        let card = render("teams", &message);
        let body = &card["attachments"][0]["content"]["body"];
        let shown = text(&body[0]["text"]);
        assert_eq!(discord_unescape(shown), format!("{mark} {title}"));
        assert!(teams_markup_is_escaped(shown), "{shown}");
        let headline = text(&body[1]["text"]);
        assert!(discord_unescape(headline).contains(name), "{headline}");
        assert!(teams_markup_is_escaped(headline), "{headline}");
        for fact in facts(teams_card(&card)) {
            assert!(teams_markup_is_escaped(&fact.1), "{fact:?}");
        }

        let chat = render("google_chat", &message);
        assert!(!text(&chat["text"]).contains('<'));
        assert_eq!(
            html_unescape(text(&chat["text"])),
            format!("{mark} [sdm-watch] {title}")
        );
        let paragraph =
            text(&chat["cardsV2"][0]["card"]["sections"][0]["widgets"][0]["textParagraph"]["text"]);
        assert!(!paragraph.contains('<'), "{paragraph}");
        assert!(html_unescape(paragraph).contains(name));

        let discord = render("discord", &message);
        assert_eq!(
            discord_unescape(text(&discord["content"])),
            format!("{mark} [sdm-watch] {title}").replace("[sdm-watch]", "**[sdm-watch]**")
        );

        let template = hook(
            "template",
            r#"body_template = '{"name": {{ job.name }}, "link": {{ link }}}'"#,
        );
        let body = format::webhook_body(&template, &message).unwrap().body;
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["name"], name);
        assert_eq!(
            body["link"],
            "https://app.example.com/projects/17/jobs/job-error"
        );

        let standard = render("standard", &message);
        assert_eq!(standard["data"]["job"]["name"], name);

        // Incident tools: the name in the summary as it is, never in a label.
        let incident = Step::read(&event.to_json()).unwrap();
        let pd = pagerduty::event(&incident, "0123456789abcdef0123456789abcdef", None);
        if resolution {
            assert_eq!(pd["event_action"], "resolve");
        } else {
            assert!(text(&pd["payload"]["summary"]).contains(name));
        }
        let epoch = OffsetDateTime::UNIX_EPOCH;
        let am = alertmanager::alert(&incident, epoch, epoch);
        assert!(text(&am["annotations"]["summary"]).contains(name), "{am}");
        for (_, value) in am["labels"].as_object().unwrap() {
            assert!(!value.as_str().unwrap().contains(name), "{am}");
        }
    }
}

/// The watcher's own alerts, failing and recovered, in every format: what and why, in the
/// right colour, with no job.
#[test]
fn watcher_alerts_show_in_every_format() {
    use sdm_watch::notify::payload::WatcherFacts;
    let at = time::macros::datetime!(2026-11-28 10:15:02 UTC);
    let outage = WatcherFacts {
        since: "2026-11-28T10:02:00Z".into(),
        failing_for_seconds: Some(780),
        reason: Some("token_refused".into()),
        last_error: Some("the API refused the token (401 at /api/v1/jobs/): Invalid token.".into()),
        down_for_seconds: None,
        watching: "https://sdm.example/api/v1/".into(),
    };
    let failing = AlertEvent::watcher("failing", outage.clone(), at);
    let recovered = AlertEvent::watcher(
        "recovered",
        WatcherFacts {
            failing_for_seconds: None,
            reason: None,
            last_error: None,
            down_for_seconds: Some(900),
            ..outage
        },
        at,
    );
    for (event, bad) in [(&failing, true), (&recovered, false)] {
        let message = alert_message(event);
        let standard = render("standard", &message);
        assert_eq!(standard["type"], event.kind.as_str());
        assert!(standard["data"].get("job").is_none(), "{standard}");
        assert_eq!(standard["data"]["since"], "2026-11-28T10:02:00Z");

        let slack = render("slack", &message);
        let all = slack.to_string();
        assert!(
            all.contains(if bad { "failing" } else { "recovered" }),
            "{all}"
        );
        assert!(!all.contains("Previous status"), "no job facts: {all}");

        let card = render("teams", &message);
        let body = &card["attachments"][0]["content"]["body"];
        assert_eq!(body[0]["color"], if bad { "Attention" } else { "Good" });
        let shown: Vec<(String, String)> = facts(teams_card(&card));
        assert!(shown.iter().any(|(label, _)| label == "Since"), "{shown:?}");
        if bad {
            assert!(
                shown
                    .iter()
                    .any(|(label, value)| label == "Reason" && value.contains("token")),
                "{shown:?}"
            );
            assert!(
                card.to_string().contains("Invalid token."),
                "the last error is shown"
            );
        }

        let chat = render("google_chat", &message);
        assert!(text(&chat["text"]).contains("sdm-watch"), "{chat}");

        let discord = render("discord", &message);
        let colour = discord["embeds"][0]["color"].as_u64().unwrap();
        assert_eq!(
            colour,
            u64::from(if bad {
                format::colour(sdm_watch::notify::payload::Tone::Bad)
            } else {
                format::colour(sdm_watch::notify::payload::Tone::Good)
            })
        );

        let template = hook(
            "template",
            r#"body_template = '{"what": {{ type }}, "reason": {% if watcher %}{{ watcher.reason }}{% else %}null{% endif %}, "job": {{ job.name }}}'"#,
        );
        let body = format::webhook_body(&template, &message).unwrap().body;
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["what"], event.kind.as_str());
        assert_eq!(body["job"], "sdm-watch");
        if bad {
            assert_eq!(body["reason"], "token_refused");
        }

        let subject = sdm_watch::notify::email::subject(event);
        assert!(subject.starts_with("[sdm-watch] "), "{subject}");
        assert!(
            subject.contains(if bad { "failing" } else { "recovered" }),
            "{subject}"
        );
        let text = sdm_watch::notify::email::body("msg_1", event, None);
        assert!(text.contains("2026-11-28T10:02:00Z"), "{text}");
        if bad {
            assert!(
                text.contains("token_refused") && text.contains("Invalid token."),
                "{text}"
            );
        } else {
            assert!(text.contains("15m"), "down for 900 s: {text}");
        }
    }
}

#[test]
fn standard_is_the_queued_payload_byte_for_byte() {
    for message in [alert_message(&done()), alert_message(&error()), digest(5)] {
        let rendered = format::webhook_body(&hook("standard", ""), &message).unwrap();
        assert_eq!(rendered.body, message.body());
    }
    let mut event = done();
    event.data.link = None;
    assert!(
        !event.to_json().contains("\"link\""),
        "without [links] the payload is as before"
    );
}

#[test]
fn templates_render_alerts_and_digests_with_their_content_type() {
    let hook = hook(
        "template",
        "content_type = \"text/plain; charset=utf-8\"\ngroup_wait = \"10s\"\nbody_template = '''\n{% if type == \"digest\" %}{{ counts.error }} failed of {{ alerts | length }}{% else %}{{ event }}: {{ job.name }} ({{ job.project }}) {{ link }}{% endif %}'''",
    );
    let alert = format::webhook_body(&hook, &alert_message(&error())).unwrap();
    assert_eq!(alert.content_type, "text/plain; charset=utf-8");
    assert_eq!(
        alert.body,
        "error: Supplier feed (17) https://app.example.com/projects/17/jobs/job-error"
    );
    let digest = format::webhook_body(&hook, &digest(9)).unwrap();
    assert_eq!(digest.body, "3 failed of 9");
}

// ---- through the daemon, to receivers that answer as the services do ----------------------

async fn service(reply: Service) -> WebhookReceiver {
    let receiver = WebhookReceiver::start().await.unwrap();
    receiver.set_default(Reply::Like(reply));
    receiver
}

#[tokio::test]
async fn every_format_is_delivered_to_a_receiver_that_answers_like_its_service() {
    let w = World::start().await;
    let slack = service(Service::Slack).await;
    let teams = service(Service::Teams).await;
    let chat = service(Service::GoogleChat).await;
    let discord = service(Service::Discord).await;
    let channels = format!(
        r#"
[links]
job = "{LINK}"
[[webhook]]
name = "slack"
url = "{}"
format = "slack"
secret = "{}"
[[webhook]]
name = "teams"
url = "{}"
format = "teams"
[[webhook]]
name = "chat"
url = "{}"
format = "google_chat"
[[webhook]]
name = "discord"
url = "{}"
format = "discord"
"#,
        slack.url("/services/T/B/X"),
        testkit::SECRET,
        teams.url("/workflows/x"),
        chat.url("/v1/spaces/x/messages"),
        discord.url("/api/webhooks/1/x"),
    );
    let hostile = w
        .sim
        .add_job(NewJob::new(Status::Running).project(17).name(HOSTILE[0]));
    let parts = w.parts(&w.config("", "1h", &channels)).await;
    step(&parts).await;
    w.sim.set_status(&hostile, Status::Error, Some(HOSTILE[1]));
    step(&parts).await;

    for (name, receiver, status) in [
        ("slack", &slack, 200),
        ("teams", &teams, 202),
        ("chat", &chat, 200),
        ("discord", &discord, 204),
    ] {
        let received = receiver.received();
        assert_eq!(received.len(), 1, "{name}: one message");
        assert_eq!(received[0].answered, status, "{name}: {}", received[0].body);
        assert_eq!(
            received[0].header("content-type"),
            Some("application/json"),
            "{name}"
        );
        assert!(
            received[0].body.contains("projects/17/jobs/"),
            "{name}: the link"
        );
    }
    let signed = &slack.received()[0];
    assert!(
        signed
            .header("webhook-signature")
            .is_some_and(|s| s.starts_with("v1,"))
    );
    assert!(
        signed
            .header("webhook-id")
            .is_some_and(|id| id.starts_with("msg_"))
    );
    assert_eq!(
        slack.received()[0].json()["blocks"][0]["text"]["text"],
        format!("\u{274c} error: {}", HOSTILE[0])
    );
    valid_adaptive_card(&teams.received()[0].json()["attachments"][0]["content"]);
}

#[tokio::test]
async fn a_service_that_refuses_the_body_makes_the_alert_dead_and_says_why() {
    // A receiver that answers like Slack refuses a body that is not Slack's shape: the
    // standard body sent to a Slack URL is what users hit without `format = "slack"`.
    let w = World::start().await;
    let slack = service(Service::Slack).await;
    let job = w.sim.add_job(NewJob::new(Status::Running).project(17));
    let config = w.config(
        "",
        "1h",
        &format!(
            "[[webhook]]\nname = \"slack\"\nurl = \"{}\"\n",
            slack.url("/s")
        ),
    );
    let parts = w.parts(&config).await;
    step(&parts).await;
    w.sim.set_status(&job, Status::Done, None);
    step(&parts).await;
    assert_eq!(slack.received().len(), 1, "a 400 is not retried");
    assert_eq!(slack.received()[0].answered, 400);
    let listed = stdout(
        &sdm_watch(
            &config,
            &["alerts", "list", "--state", "dead", "--json"],
            &[],
        )
        .await,
    );
    assert!(listed.contains("the receiver answered 400"), "{listed}");
}

#[tokio::test]
async fn a_template_that_fails_at_delivery_kills_the_alert_with_the_reason_and_sends_nothing() {
    let w = World::start().await;
    // `job.project + 1` works for the sample (project 17) and fails for a job without one.
    let channels = format!(
        "[[webhook]]\nname = \"ops\"\nurl = \"{}\"\nevents = [\"error\"]\nformat = \"template\"\nbody_template = '{{\"next\": {{{{ job.project + 1 }}}}}}'\n",
        w.hook.url("/ops")
    );
    let config = w.config("", "1h", &channels);
    let job = w.sim.add_job(NewJob::new(Status::Running));
    let parts = w.parts(&config).await;
    step(&parts).await;
    w.sim.set_status(&job, Status::Error, Some("boom"));
    step(&parts).await;
    assert!(w.hook.received().is_empty(), "no half-sent body");
    let listed = sdm_watch(
        &config,
        &["alerts", "list", "--state", "dead", "--json"],
        &[],
    )
    .await;
    let listed = stdout(&listed);
    assert!(listed.contains("the template failed"), "{listed}");
}

// ---- e-mail ----------------------------------------------------------------------------

/// The e-mail as Python's `email` and `html.parser` read it.
pub(crate) fn parse_mail(data: &str) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mail.eml");
    std::fs::write(&path, data).unwrap();
    let output = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/it/py/formats.py"
        ))
        .arg("mail")
        .arg(&path)
        .output()
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[tokio::test]
async fn html_e_mail_has_both_parts_and_shows_hostile_names_as_text() {
    let w = World::start().await;
    let channels = format!(
        "[links]\njob = \"{LINK}\"\n[[email]]\nname = \"oncall\"\nto = [\"oncall@example.com\"]\nhtml = true\nsubject_template = \"{{{{ event | upper }}}} in project {{{{ job.project }}}}: {{{{ job.name }}}}\"\n"
    );
    let job = w
        .sim
        .add_job(NewJob::new(Status::Running).project(17).name(HOSTILE[0]));
    let parts = w.parts(&w.config("", "1h", &channels)).await;
    step(&parts).await;
    w.sim
        .set_status(&job, Status::Error, Some("<b>Column</b> 'sku' missing"));
    step(&parts).await;
    let mails = w.smtp.wait_for(1, std::time::Duration::from_secs(10)).await;
    assert_eq!(mails.len(), 1);
    let html = mails[0].html().expect("an HTML part");
    testkit::html::validate(&html, testkit::html::Kind::Email, "an alert's HTML e-mail");
    let mail = parse_mail(&mails[0].data);
    assert_eq!(mail["content_type"], "multipart/alternative");
    assert_eq!(
        mail["subject"],
        format!("ERROR in project 17: {}", HOSTILE[0])
    );
    let types: Vec<&str> = mail["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| text(&p["content_type"]))
        .collect();
    assert_eq!(types, ["text/plain", "text/html"]);
    let plain = text(&mail["parts"][0]["text"]);
    assert!(
        plain.contains(&format!("Name:             {}", HOSTILE[0])),
        "{plain}"
    );
    let html = &mail["html"];
    let tags: Vec<&str> = html["tags"].as_array().unwrap().iter().map(text).collect();
    assert!(
        !tags.contains(&"script") && !tags.contains(&"b"),
        "{tags:?}"
    );
    assert!(
        !tags.contains(&"img") && !tags.contains(&"link"),
        "no external assets"
    );
    let texts: Vec<&str> = html["text"].as_array().unwrap().iter().map(text).collect();
    assert!(texts.contains(&HOSTILE[0]), "the name as text: {texts:?}");
    assert!(texts.contains(&"<b>Column</b> 'sku' missing"), "{texts:?}");
    let links: Vec<&str> = html["attrs"]["a.href"]
        .as_array()
        .unwrap()
        .iter()
        .map(text)
        .collect();
    assert!(
        links
            .iter()
            .any(|l| l.starts_with("https://app.example.com/projects/17/jobs/")),
        "{links:?}"
    );
    let styles = html["attrs"]["td.style"].as_array().unwrap();
    assert!(
        styles.iter().any(|s| text(s).contains("color:#d93025")),
        "the error is red"
    );

    // As a mail client shows it: the HTML part rendered by a real browser.
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    let page = target.join("email.html");
    std::fs::write(&page, text(&mail["parts"][1]["text"])).unwrap();
    let screenshot = target.join("email-screenshot.png");
    screenshot_of(&format!("file://{}", page.display()), &screenshot, 10_000);
}

#[tokio::test]
async fn an_e_mail_body_template_is_the_text_part() {
    let w = World::start().await;
    let channels = "[[email]]\nname = \"oncall\"\nto = [\"oncall@example.com\"]\nbody_template = \"\"\"{{ headline }}\nproject {{ job.project }}: {{ job.message }}\n\"\"\"\n";
    let job = w
        .sim
        .add_job(NewJob::new(Status::Running).project(17).name("Feed"));
    let parts = w.parts(&w.config("", "1h", channels)).await;
    step(&parts).await;
    w.sim
        .set_status(&job, Status::Error, Some("Column 'sku' missing"));
    step(&parts).await;
    let mails = w.smtp.wait_for(1, std::time::Duration::from_secs(10)).await;
    let mail = parse_mail(&mails[0].data);
    assert_eq!(
        mail["content_type"], "text/plain",
        "no HTML part without html = true"
    );
    assert_eq!(
        text(&mail["parts"][0]["text"])
            .replace("\r\n", "\n")
            .trim_end(),
        "Job \"Feed\" is now error (was running).\nproject 17: Column 'sku' missing"
    );
    assert_eq!(
        mail["subject"], "[sdm-watch] error: Feed",
        "the default subject"
    );
}

#[tokio::test]
async fn test_alert_sends_each_channel_s_format() {
    let w = World::start().await;
    let slack = service(Service::Slack).await;
    let discord = service(Service::Discord).await;
    let config = w.config(
        "",
        "1h",
        &format!(
            "[[webhook]]\nname = \"slack\"\nurl = \"{}\"\nformat = \"slack\"\n[[webhook]]\nname = \"discord\"\nurl = \"{}\"\nformat = \"discord\"\n",
            slack.url("/s"),
            discord.url("/d")
        ),
    );
    let output = sdm_watch(&config, &["test-alert"], &[]).await;
    assert!(output.status.success(), "{}", stdout(&output));
    let slack = slack.received();
    assert_eq!(slack[0].answered, 200);
    assert_eq!(
        slack[0].json()["blocks"][0]["text"]["text"],
        "\u{2139}\u{fe0f} TEST: sdm-watch test alert (not a real job)"
    );
    let discord = discord.received();
    assert_eq!(discord[0].answered, 204);
    assert!(text(&discord[0].json()["content"]).contains("TEST"));
}

#[test]
fn the_docs_format_and_template_examples_load() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/delivery.md")).unwrap();
    let start = readme.find("## Alerts where teams read them").unwrap();
    let end = readme[start + 1..]
        .find("\n## ")
        .map_or(readme.len(), |at| at + start + 1);
    let blocks: Vec<&str> = readme[start..end]
        .split("```toml\n")
        .skip(1)
        .map(|block| block.split("```").next().unwrap())
        .collect();
    assert!(blocks.len() >= 6, "{} examples", blocks.len());
    for block in blocks {
        let text = format!(
            "[api]\ntoken = \"t\"\n[smtp]\nhost = \"mail\"\nfrom = \"a@b.example\"\n{block}"
        );
        if let Err(error) = Config::from_toml(&text, Path::new("docs/delivery.md")) {
            panic!("docs/delivery.md's example does not load: {error}\n{block}");
        }
    }
}

#[tokio::test]
async fn a_digest_s_html_e_mail_is_valid_html() {
    let w = World::start().await;
    let channels = "[[email]]\nname = \"oncall\"\nto = [\"oncall@example.com\"]\nhtml = true\ngroup_wait = \"10s\"\n";
    let jobs: Vec<String> = (0..3)
        .map(|i| {
            w.sim.add_job(
                NewJob::new(Status::Running)
                    .project(17)
                    .name(format!("<b>Feed {i}</b>")),
            )
        })
        .collect();
    let clock = sdm_watch::domain::ManualClock::new();
    let parts = testkit::parts_on(&w.config("", "1h", channels), &clock).await;
    step(&parts).await;
    for job in &jobs {
        w.sim
            .set_status(job, Status::Error, Some("Column 'sku' missing"));
    }
    step(&parts).await;
    clock.advance(std::time::Duration::from_secs(11));
    step(&parts).await;
    let mails = w.smtp.wait_for(1, std::time::Duration::from_secs(10)).await;
    assert_eq!(mails.len(), 1, "one digest");
    let html = mails[0].html().expect("an HTML part");
    assert!(html.contains("&lt;b&gt;Feed 0&lt;&#x2f;b&gt;"), "{html}");
    testkit::html::validate(&html, testkit::html::Kind::Email, "a digest's HTML e-mail");
}
