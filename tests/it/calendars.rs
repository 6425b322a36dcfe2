//! Time windows (issue 25) on a manual clock: a channel `active_during` a window holds
//! the alerts that come while it is closed (across a restart: the store keeps them) and
//! sends them as one digest when it opens, once; a channel `muted_during` an open window
//! records its alerts silenced. Daylight saving and the calendar's edges are the unit tests
//! of `domain::calendar`.

use std::time::Duration;

use sdm_watch::domain::{ManualClock, Status};
use sdm_watch::sim::NewJob;
use testkit::cli::{sdm_watch, stdout};
use testkit::{World, parts_on, step};
use time::OffsetDateTime;

/// `HH:MM` of `at` (UTC).
fn hh_mm(at: OffsetDateTime) -> String {
    format!("{:02}:{:02}", at.hour(), at.minute())
}

#[tokio::test]
async fn alerts_held_outside_a_window_go_out_as_one_digest_when_it_opens() {
    let w = World::start().await;
    let jobs: Vec<String> = (0..300)
        .map(|i| {
            w.sim
                .add_job(NewJob::new(Status::Running).name(format!("Feed {i}")))
        })
        .collect();
    let now = OffsetDateTime::now_utc();
    // "office" opens two hours from now for an hour, every day; "now" is open for the
    // next hour (both in UTC, so that the test does not depend on the date).
    let opens = now + time::Duration::hours(2);
    let office = format!(
        "{}-{}",
        hh_mm(opens),
        hh_mm(opens + time::Duration::hours(1))
    );
    let now_window = format!(
        "{}-{}",
        hh_mm(now - time::Duration::minutes(1)),
        hh_mm(now + time::Duration::hours(1))
    );
    let channels = format!(
        r#"
[[time_window]]
name = "office"
weekdays = ["mon-sun"]
times = ["{office}"]
timezone = "UTC"

[[time_window]]
name = "quiet"
weekdays = ["mon-sun"]
times = ["{now_window}"]

[[webhook]]
name = "office"
url = "{}"
active_during = ["office"]

[[webhook]]
name = "night"
url = "{}"
muted_during = ["quiet"]
"#,
        w.hook.url("/office"),
        w.hook.url("/night")
    );
    let text = w.config("", "1h", &channels);
    let clock = ManualClock::new();
    let build = async || parts_on(&text, &clock).await;
    let at = |path: &str| {
        w.hook
            .received()
            .into_iter()
            .filter(|h| h.path == path)
            .collect::<Vec<_>>()
    };

    let parts = build().await;
    step(&parts).await; // the first cycle records silently
    for job in &jobs {
        w.sim.set_status(job, Status::Done, None);
    }
    step(&parts).await;
    step(&parts).await;
    assert!(at("/office").is_empty(), "held while the window is closed");
    assert!(at("/night").is_empty(), "muted while its window is open");

    // A restart inside the closed slot: the held alerts are in the store.
    drop(parts);
    let parts = build().await;
    clock.advance(Duration::from_secs(3600));
    step(&parts).await;
    assert!(at("/office").is_empty(), "still closed an hour later");

    clock.advance(Duration::from_secs(3600 + 60)); // the window is open
    step(&parts).await;
    step(&parts).await;
    let office = at("/office");
    if office.is_empty() {
        let listed = sdm_watch(&text, &["alerts", "list", "--json", "--limit", "3"], &[]).await;
        eprintln!("DEBUG {}", stdout(&listed));
    }
    assert_eq!(office.len(), 1, "one digest, not {} messages", office.len());
    let digest = office[0].json();
    assert_eq!(digest["type"], "digest");
    let mut told: Vec<String> = digest["data"]["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|alert| alert["job"]["id"].as_str().unwrap().to_owned())
        .collect();
    told.sort();
    let mut expected = jobs.clone();
    expected.sort();
    assert_eq!(told, expected, "every held alert, once");
    assert!(at("/night").is_empty(), "a muted alert is never sent");
    drop(parts);

    // The muted alerts are recorded silenced, by the window.
    let listed = sdm_watch(
        &text,
        &[
            "alerts", "list", "--state", "silenced", "--json", "--limit", "1000",
        ],
        &[],
    )
    .await;
    let silenced = stdout(&listed);
    assert_eq!(
        silenced.matches("muted_during:quiet").count(),
        300,
        "{}",
        &silenced[..silenced.len().min(2000)]
    );
}
