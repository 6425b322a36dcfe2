//! The differential test of digests: random histories of alerts queued for two webhook
//! channels, delivery rounds at random times against a receiver that fails at random, and
//! restarts that may turn one channel's grouping on or off. Time is a manual clock shared
//! by the queue and the delivery worker; the receiver is real.
//!
//! Two references, both obviously right: one message per alert (what `group_wait = "0s"`
//! sends), which every alert must reach exactly once whatever the grouping; and a naive
//! model of the windows: at each delivery round, while a channel's oldest waiting alert has
//! waited `group_wait`, it and every alert queued within `group_wait` of it form a window,
//! sent as digests of at most `group_max` in queue order, or as itself when alone; alerts
//! of a channel that stopped grouping go out alone. The worker's messages must equal the
//! model's, channel by channel, and every attempt of one message must carry the same id
//! and the same body.
//!
//! `SDM_WATCH_GROUPING_CASES` sets the number of histories (200); `SDM_WATCH_DIFF_SEED`
//! picks other ones. A failing history is shrunk and printed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{TestCaseError, TestError};
use sdm_watch::daemon::Parts;
use sdm_watch::domain::{Clock, Event, ManualClock};
use sdm_watch::notify::JobSnapshot;
use sdm_watch::notify::alerts::{self, Detected};
use sdm_watch::sim::{Reply, Simulator, WebhookReceiver};
use sdm_watch::store::outbox;
use testkit::config::{config, config_text};

use crate::seeded::{self, env_number};

const CHANNELS: [&str; 2] = ["a", "b"];

#[derive(Clone, Copy, Debug)]
struct Grouping {
    wait_ms: i64,
    max: usize,
}

#[derive(Clone, Debug)]
enum Step {
    /// Alerts for this many new jobs, one per channel each.
    Queue(u8),
    /// The clock moves on this many milliseconds.
    Advance(u32),
    /// One delivery round (`Worker::deliver_due`).
    Deliver,
    /// The receiver answers 503 from now on (true), or 200 (false).
    Fail(bool),
    /// Stop and start again; channel `b` gathers digests after it if `b_grouped`.
    Restart { b_grouped: bool },
}

#[derive(Clone, Debug)]
struct History {
    a: Grouping,
    b: Grouping,
    b_grouped: bool,
    steps: Vec<Step>,
}

fn grouping() -> impl Strategy<Value = Grouping> {
    (1..=20i64, 1..=5usize).prop_map(|(seconds, max)| Grouping {
        wait_ms: seconds * 1000,
        max,
    })
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (1..=4u8).prop_map(Step::Queue),
        2 => (0..=15_000u32).prop_map(Step::Advance),
        // Whole seconds, so that alerts fall exactly on a window's edge.
        2 => (0..=15u32).prop_map(|seconds| Step::Advance(seconds * 1000)),
        3 => Just(Step::Deliver),
        1 => any::<bool>().prop_map(Step::Fail),
        1 => any::<bool>().prop_map(|b_grouped| Step::Restart { b_grouped }),
    ]
}

fn history() -> impl Strategy<Value = History> {
    (
        grouping(),
        grouping(),
        any::<bool>(),
        prop::collection::vec(step(), 1..40),
    )
        .prop_map(|(a, b, b_grouped, steps)| History {
            a,
            b,
            b_grouped,
            steps,
        })
}

/// One message as a receiver sees it: a digest or not, and the jobs it tells of (sorted).
type Sent = (bool, Vec<String>);

/// The naive model of digests.
struct Model {
    groupings: BTreeMap<&'static str, Option<Grouping>>,
    /// Per channel, the alerts waiting for their window: (job, queued at).
    waiting: BTreeMap<&'static str, Vec<(String, i64)>>,
    sent: BTreeMap<&'static str, Vec<Sent>>,
}

impl Model {
    fn queue(&mut self, job: &str, at: i64) {
        for channel in CHANNELS {
            match self.groupings[channel] {
                Some(_) => self
                    .waiting
                    .entry(channel)
                    .or_default()
                    .push((job.into(), at)),
                None => self.sent(channel, false, vec![job.into()]),
            }
        }
    }

    fn deliver(&mut self, now: i64) {
        for channel in CHANNELS {
            let mut waiting = self.waiting.remove(channel).unwrap_or_default();
            match self.groupings[channel] {
                None => {
                    for (job, _) in waiting.drain(..) {
                        self.sent(channel, false, vec![job]);
                    }
                }
                Some(grouping) => {
                    while let Some(&(_, first)) = waiting.first() {
                        if first + grouping.wait_ms > now {
                            break;
                        }
                        let closes = first + grouping.wait_ms;
                        let inside = waiting.iter().filter(|(_, at)| *at <= closes).count();
                        let window: Vec<String> =
                            waiting.drain(..inside).map(|(job, _)| job).collect();
                        if window.len() == 1 {
                            self.sent(channel, false, window);
                        } else {
                            for chunk in window.chunks(grouping.max) {
                                self.sent(channel, true, chunk.to_vec());
                            }
                        }
                    }
                }
            }
            self.waiting.insert(channel, waiting);
        }
    }

    fn sent(&mut self, channel: &'static str, digest: bool, mut jobs: Vec<String>) {
        jobs.sort();
        self.sent.entry(channel).or_default().push((digest, jobs));
    }
}

fn config_for(
    sim: &Simulator,
    hook: &WebhookReceiver,
    case: u64,
    state: &std::path::Path,
    groupings: &BTreeMap<&'static str, Option<Grouping>>,
) -> String {
    let mut channels = String::new();
    for channel in CHANNELS {
        channels.push_str(&format!(
            "[[webhook]]\nname = \"{channel}\"\nurl = \"{}\"\n",
            hook.url(&format!("/case{case}/{channel}"))
        ));
        if let Some(grouping) = groupings[channel] {
            channels.push_str(&format!(
                "group_wait = \"{}ms\"\ngroup_max = {}\n",
                grouping.wait_ms, grouping.max
            ));
        }
    }
    config_text(
        sim,
        "",
        &format!(
            "[state]\npath = \"{}\"\n[delivery]\nmax_age = \"30d\"\n{channels}",
            state.display()
        ),
    )
}

async fn queue(parts: &Parts, text: &str, clock: &ManualClock, job: &str) {
    let now = clock.now();
    let detected = Detected {
        job: JobSnapshot {
            id: job.into(),
            name: Some(format!("Feed {job}")),
            status: "done".into(),
            creation_date: None,
            completion_date: None,
            project: Some(17),
            step: None,
            message: None,
        },
        event: Event::parse("done"),
        previous: None,
        url: format!("https://sdm.example/jobs/{job}/"),
        output: None,
        reminder: None,
        at: now,
    };
    let queued = alerts::build(&detected, "default", &config(text), &[], clock.now_ms());
    parts
        .store
        .run(move |conn| {
            conn.transaction(|tx| {
                for alert in &queued {
                    outbox::insert(tx, alert)?;
                }
                Ok(())
            })
        })
        .await
        .unwrap();
}

async fn run(
    sim: &Simulator,
    hook: &WebhookReceiver,
    case: u64,
    history: &History,
) -> Result<(), String> {
    let dir = tempfile::tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .unwrap();
    let state = dir.path().join("state.db");
    let clock = ManualClock::new();
    let mut model = Model {
        groupings: BTreeMap::from([
            ("a", Some(history.a)),
            ("b", history.b_grouped.then_some(history.b)),
        ]),
        waiting: BTreeMap::new(),
        sent: BTreeMap::new(),
    };
    let build = async |groupings: &BTreeMap<&'static str, Option<Grouping>>| {
        let text = config_for(sim, hook, case, &state, groupings);
        let parts = Parts::build_with_clock(config(&text), Arc::new(clock.clone()))
            .await
            .unwrap();
        (text, parts)
    };
    hook.set_default(Reply::Status(200));
    let (mut text, mut parts) = build(&model.groupings).await;
    let mut jobs = 0;
    for step in &history.steps {
        match step {
            Step::Queue(count) => {
                for _ in 0..*count {
                    jobs += 1;
                    let job = format!("job-{jobs}");
                    queue(&parts, &text, &clock, &job).await;
                    model.queue(&job, clock.now_ms());
                }
            }
            Step::Advance(ms) => clock.advance(Duration::from_millis(u64::from(*ms))),
            Step::Deliver => {
                parts
                    .worker
                    .deliver_due()
                    .await
                    .map_err(|e| e.to_string())?;
                model.deliver(clock.now_ms());
            }
            Step::Fail(fail) => hook.set_default(Reply::Status(if *fail { 503 } else { 200 })),
            Step::Restart { b_grouped } => {
                drop(parts);
                model.groupings.insert("b", b_grouped.then_some(history.b));
                (text, parts) = build(&model.groupings).await;
            }
        }
    }
    // Then the receiver recovers and time passes: everything goes out.
    hook.set_default(Reply::Status(200));
    clock.advance(Duration::from_secs(24 * 3600));
    model.deliver(clock.now_ms());
    for _ in 0..20 {
        parts
            .worker
            .deliver_due()
            .await
            .map_err(|e| e.to_string())?;
        clock.advance(Duration::from_secs(1));
    }

    for channel in CHANNELS {
        let path = format!("/case{case}/{channel}");
        let received: Vec<_> = hook
            .received()
            .into_iter()
            .filter(|r| r.path == path)
            .collect();
        let mut by_id: BTreeMap<String, Vec<_>> = BTreeMap::new();
        for request in received {
            let id = request.header("webhook-id").unwrap_or_default().to_owned();
            by_id.entry(id).or_default().push(request);
        }
        let mut sent: Vec<Sent> = Vec::new();
        for (id, attempts) in &by_id {
            if attempts.iter().any(|a| a.body != attempts[0].body) {
                return Err(format!("{channel}: {id} was sent with different bodies"));
            }
            let delivered = attempts
                .iter()
                .filter(|a| (200..300).contains(&a.answered))
                .count();
            if delivered != 1 {
                return Err(format!("{channel}: {id} delivered {delivered} times"));
            }
            let body = attempts[0].json();
            let digest = body["type"] == "digest";
            let mut jobs: Vec<String> = if digest {
                body["data"]["alerts"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|item| item["job"]["id"].as_str().unwrap_or("?").to_owned())
                    .collect()
            } else {
                vec![body["data"]["job"]["id"].as_str().unwrap_or("?").to_owned()]
            };
            jobs.sort();
            sent.push((digest, jobs));
        }
        sent.sort();
        let mut want = model.sent.remove(channel).unwrap_or_default();
        want.sort();
        // The first reference: every alert reaches the receiver exactly once.
        let mut told: Vec<&String> = sent.iter().flat_map(|(_, jobs)| jobs).collect();
        told.sort();
        let all: Vec<String> = (1..=jobs).map(|n| format!("job-{n}")).collect();
        let mut all: Vec<&String> = all.iter().collect();
        all.sort();
        if told != all {
            return Err(format!(
                "{channel}: the jobs told differ from those queued: told {told:?}, queued {all:?}"
            ));
        }
        // The second: the digests are the model's windows.
        if sent != want {
            return Err(format!(
                "{channel}: digests differ from the model's windows:\n  sent  {sent:?}\n  model {want:?}"
            ));
        }
    }
    Ok(())
}

#[test]
fn digests_tell_every_alert_once_in_the_windows_of_a_naive_model() {
    let cases: u32 = env_number("SDM_WATCH_GROUPING_CASES").unwrap_or(200);
    let seed: u64 = env_number("SDM_WATCH_DIFF_SEED").unwrap_or(13);
    let mut runner = seeded::runner(cases, seed, 2048);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (sim, hook) = runtime.block_on(async {
        (
            Simulator::start().await.unwrap(),
            WebhookReceiver::start().await.unwrap(),
        )
    });
    let case = std::sync::atomic::AtomicU64::new(0);
    let result = runner.run(&history(), |history| {
        let case = case.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        runtime
            .block_on(run(&sim, &hook, case, &history))
            .map_err(TestCaseError::fail)
    });
    match result {
        Ok(()) => println!("grouping (seed {seed}): {cases} histories pass"),
        Err(TestError::Fail(reason, history)) => {
            panic!("the digests and the reference differ: {reason}\nminimal history: {history:#?}")
        }
        Err(error) => panic!("{error}"),
    }
}
