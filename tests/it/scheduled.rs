//! Scheduled reports (issue 25) on a manual clock: a slot is sent once, to a standard
//! webhook (the report as JSON), a Slack channel (a summary within Slack's limits) and an
//! e-mail (plain and HTML parts); a restart and a second process sharing the store send it
//! no second time; a slot missed by less than 6 h is sent at start, by more is skipped.

use std::time::Duration;

use sdm_watch::domain::{ManualClock, Status};
use sdm_watch::sim::NewJob;
use testkit::{World, parts_on, step};
use time::OffsetDateTime;

use crate::formats::parse_mail;

#[tokio::test]
async fn a_daily_report_goes_out_once_per_slot_to_every_channel() {
    let w = World::start().await;
    let jobs: Vec<String> = (0..4)
        .map(|i| {
            w.sim.add_job(
                NewJob::new(Status::Running)
                    .project(17)
                    .name(format!("Feed {i}")),
            )
        })
        .collect();
    w.sim.add_job(
        NewJob::new(Status::Pending)
            .project(18)
            .name("<script>alert(1)</script>"),
    );
    // Due in 30 minutes, every day (UTC, so that the test does not depend on the date).
    let due = OffsetDateTime::now_utc() + time::Duration::minutes(30);
    let channels = format!(
        r#"
[[webhook]]
name = "ops"
url = "{}"
[[webhook]]
name = "chat"
url = "{}"
format = "slack"
[[email]]
name = "oncall"
to = ["oncall@example.com"]
[[report]]
name = "daily"
schedule = "daily {:02}:{:02}"
since = "7d"
channels = ["ops", "chat", "oncall"]
"#,
        w.hook.url("/ops"),
        w.hook.url("/chat"),
        due.hour(),
        due.minute()
    );
    let text = w.config("", "1h", &channels);
    let clock = ManualClock::new();
    let build = async || parts_on(&text, &clock).await;
    let reports_at = |path: &str| {
        w.hook
            .received()
            .into_iter()
            .filter(|h| h.path == path && h.json()["type"] == "report")
            .collect::<Vec<_>>()
    };
    let report_mails = || {
        w.smtp
            .mails()
            .into_iter()
            .filter(|m| {
                m.header("subject")
                    .is_some_and(|s| s.contains("Report daily"))
            })
            .collect::<Vec<_>>()
    };

    let parts = build().await;
    step(&parts).await;
    for job in &jobs[..3] {
        w.sim.set_status(job, Status::Done, None);
    }
    w.sim.set_status(
        &jobs[3],
        Status::Error,
        Some("Column 'sku' missing in row 17"),
    );
    step(&parts).await;

    // At start, yesterday's slot is over 6 h late: skipped, not sent.
    let reporter = parts.worker.reporter();
    let ticked = reporter.tick().await.unwrap();
    assert_eq!(ticked.sent, []);
    assert_eq!(ticked.skipped.len(), 1, "{ticked:?}");
    assert_eq!(
        reporter.tick().await.unwrap(),
        Default::default(),
        "decided once"
    );

    clock.advance(Duration::from_secs(31 * 60));
    let ticked = reporter.tick().await.unwrap();
    assert_eq!(ticked.sent.len(), 1, "today's slot: {ticked:?}");
    step(&parts).await;
    let ops = reports_at("/ops");
    assert_eq!(ops.len(), 1);
    let body = ops[0].json();
    assert_eq!(body["data"]["name"], "daily");
    let line = body["data"]["projects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["project"] == 17)
        .unwrap()
        .clone();
    assert_eq!(
        (line["done"].as_u64(), line["error"].as_u64()),
        (Some(3), Some(1))
    );
    assert_eq!(
        body["data"]["signatures"][0]["signature"],
        "Column '*' missing in row <n>"
    );
    assert_eq!(body["data"]["waiting"].as_array().unwrap().len(), 1);

    let chat = reports_at("/chat");
    assert_eq!(
        chat.len(),
        0,
        "Slack receives its own shape, not the report's JSON"
    );
    let slack: Vec<_> = w
        .hook
        .received()
        .into_iter()
        .filter(|h| h.path == "/chat")
        .collect();
    let slack = slack.last().unwrap().json();
    let header = slack["blocks"][0]["text"]["text"].as_str().unwrap();
    assert!(
        header.contains("Report daily: 4 jobs finished, 1 in error"),
        "{header}"
    );
    assert!(slack["blocks"].as_array().unwrap().len() <= 50);

    let mails = w.smtp.wait_for(2, Duration::from_secs(10)).await;
    assert!(mails.len() >= 2);
    let mails = report_mails();
    assert_eq!(mails.len(), 1);
    let html = mails[0].html().expect("an HTML part");
    testkit::html::validate(&html, testkit::html::Kind::Email, "the report's e-mail");
    let mail = parse_mail(&mails[0].data);
    assert_eq!(mail["content_type"], "multipart/alternative");
    let plain = mail["parts"][0]["text"].as_str().unwrap();
    assert!(plain.contains("PROJECT"), "the table: {plain}");
    assert!(plain.contains("Column '*' missing in row <n>"), "{plain}");
    let texts: Vec<&str> = mail["html"]["text"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t.as_str())
        .collect();
    assert!(
        texts.contains(&"<script>alert(1)</script>"),
        "a name stays text: {texts:?}"
    );
    let tags: Vec<&str> = mail["html"]["tags"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t.as_str())
        .collect();
    assert!(!tags.contains(&"script"), "{tags:?}");

    // Neither a second look, nor a restart, nor a second process sends it again; the
    // next day's slot is sent by exactly one of two processes sharing the store.
    assert_eq!(reporter.tick().await.unwrap(), Default::default());
    drop(parts);
    let (one, two) = (build().await, build().await);
    assert_eq!(
        one.worker.reporter().tick().await.unwrap(),
        Default::default()
    );
    clock.advance(Duration::from_secs(24 * 3600));
    let (a, b) = (one.worker.reporter(), two.worker.reporter());
    let (a, b) = tokio::join!(a.tick(), b.tick());
    assert_eq!(
        a.unwrap().sent.len() + b.unwrap().sent.len(),
        1,
        "one of the two sends the slot"
    );

    // Down over the next slot: back 5 h after it, it is sent; 7 h after the one after, not.
    clock.advance(Duration::from_secs(29 * 3600));
    assert_eq!(one.worker.reporter().tick().await.unwrap().sent.len(), 1);
    clock.advance(Duration::from_secs(26 * 3600));
    let ticked = one.worker.reporter().tick().await.unwrap();
    assert_eq!((ticked.sent.len(), ticked.skipped.len()), (0, 1));
}

/// Ticks `reporter` every 15 minutes of `clock` from now until `until`, returning each slot
/// sent with the time it was sent at.
async fn tick_until(
    reporter: &sdm_watch::notify::scheduled::Reporter,
    clock: &ManualClock,
    until: OffsetDateTime,
) -> Vec<(String, String, OffsetDateTime)> {
    let mut sent = Vec::new();
    let now = |clock: &ManualClock| {
        use sdm_watch::domain::Clock;
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(clock.now_ms()) * 1_000_000).unwrap()
    };
    while now(clock) < until {
        for (report, slot) in reporter.tick().await.unwrap().sent {
            sent.push((report, slot, now(clock)));
        }
        clock.advance(Duration::from_secs(15 * 60));
    }
    sent
}

#[tokio::test]
async fn daily_slots_across_daylight_saving_changes_are_sent_once_each() {
    let w = World::start().await;
    let channels = format!(
        r#"
[[webhook]]
name = "ops"
url = "{}"
[[report]]
name = "paris"
schedule = "daily 02:30"
timezone = "Europe/Paris"
channels = ["ops"]
[[report]]
name = "new-york"
schedule = "daily 02:30"
timezone = "America/New_York"
channels = ["ops"]
"#,
        w.hook.url("/ops")
    );
    let text = w.config("", "1h", &channels);
    let clock = ManualClock::new();
    let parts = parts_on(&text, &clock).await;
    let reporter = parts.worker.reporter();
    let at = |text: &str| {
        OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).unwrap()
    };
    let jump_to = |target: OffsetDateTime| {
        use sdm_watch::domain::Clock;
        let now = i128::from(clock.now_ms()) * 1_000_000;
        let ahead = (target.unix_timestamp_nanos() - now).max(0);
        clock.advance(Duration::from_nanos(u64::try_from(ahead).unwrap()));
    };
    // (report, the change's day, when its 02:30 falls that day, the days around it)
    let changes = [
        (
            "new-york",
            "2027-03-14",
            "2027-03-14T07:30:00Z",
            "2027-03-12T12:00:00Z",
        ), // spring: 03:30 EDT
        (
            "paris",
            "2027-03-28",
            "2027-03-28T01:30:00Z",
            "2027-03-26T12:00:00Z",
        ), // spring: 03:30 CEST
        (
            "paris",
            "2027-10-31",
            "2027-10-31T00:30:00Z",
            "2027-10-29T12:00:00Z",
        ), // fall: first 02:30, CEST
        (
            "new-york",
            "2027-11-07",
            "2027-11-07T07:30:00Z",
            "2027-11-05T12:00:00Z",
        ), // fall: 02:30 EST, once
    ];
    for (report, day, expected, from) in changes {
        jump_to(at(from));
        reporter.tick().await.unwrap(); // the slot before the jump: decided (skipped)
        let sent = tick_until(&reporter, &clock, at(from) + time::Duration::days(4)).await;
        let mine: Vec<&(String, String, OffsetDateTime)> =
            sent.iter().filter(|(r, ..)| r == report).collect();
        let days: Vec<&str> = mine.iter().map(|(_, slot, _)| slot.as_str()).collect();
        let mut unique = days.clone();
        unique.dedup();
        assert_eq!(days, unique, "{report}: one send per day: {days:?}");
        assert_eq!(days.len(), 4, "{report}: four days, four slots: {days:?}");
        let (_, _, when) = mine.iter().find(|(_, slot, _)| slot == day).unwrap();
        let expected = at(expected);
        assert!(
            *when >= expected && *when < expected + time::Duration::minutes(15),
            "{report} on {day}: sent at {when}, due at {expected}"
        );
    }
}
