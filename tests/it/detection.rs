//! Detection, case by case: the fourteen ways issue 11 found version 1 missing or
//! mis-telling a transition, each against the simulator serving the article's shapes
//! (list rows without `project`; a detail with only `status`, `step` and `message`).
//! `differential.rs` checks the same guarantee over random histories.

use std::collections::HashSet;
use std::time::Duration;

use sdm_watch::daemon::Parts;
use sdm_watch::domain::Status;
use sdm_watch::sim::{Fault, NewJob, ReceivedWebhook};

use testkit::cli::{sdm_watch, stderr, stdout};
use testkit::{World, step};

/// A world whose API answers in the article's shapes.
async fn article_world() -> World {
    let w = World::start().await;
    w.sim.set_list_project(false);
    w
}

fn minutes_ago(minutes: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc() - time::Duration::minutes(minutes)
}

/// (job id, type, previous status) of every webhook received, in order.
fn told(hooks: &[ReceivedWebhook]) -> Vec<(String, String, Option<String>)> {
    hooks
        .iter()
        .map(|hook| {
            let body = hook.json();
            (
                body["data"]["job"]["id"].as_str().unwrap().to_owned(),
                body["type"].as_str().unwrap().to_owned(),
                body["data"]["previous_status"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

fn tuple(id: &str, kind: &str, previous: Option<&str>) -> (String, String, Option<String>) {
    (id.to_owned(), kind.to_owned(), previous.map(str::to_owned))
}

async fn cycle_requests(parts: &Parts) -> u64 {
    parts
        .watcher()
        .cycle()
        .await
        .expect("cycle succeeds")
        .requests
}

#[tokio::test]
async fn case_01_an_old_finished_job_run_again_alerts_when_it_fails() {
    let w = article_world().await;
    let job = w
        .sim
        .add_job(NewJob::new(Status::Done).created(minutes_ago(60)));
    let parts = w.parts(&w.config("", "1h", &w.ops_hook())).await;
    step(&parts).await;
    w.sim.set_status(&job, Status::Running, None);
    for _ in 0..3 {
        step(&parts).await;
    }
    w.sim
        .set_status(&job, Status::Error, Some("Column 'sku' missing"));
    step(&parts).await;
    let hooks = w.hook.received();
    assert_eq!(told(&hooks), [tuple(&job, "job.error", Some("running"))]);
    assert_eq!(
        hooks[0].json()["data"]["job"]["message"],
        "Column 'sku' missing"
    );
}

#[tokio::test]
async fn case_02_a_job_listed_five_minutes_after_its_creation_date_is_tracked() {
    let w = article_world().await;
    // The simulator's clock runs a day behind, and moves a minute per cycle.
    w.sim.advance(-time::Duration::days(1));
    let parts = w.parts(&w.config("", "1h", &w.ops_hook())).await;
    step(&parts).await;
    let job = w
        .sim
        .add_job(NewJob::new(Status::Running).visible_after(Duration::from_secs(5 * 60)));
    for _ in 0..7 {
        w.sim.advance(time::Duration::minutes(1));
        step(&parts).await;
    }
    w.sim.set_status(&job, Status::Done, None);
    w.sim.advance(time::Duration::minutes(1));
    step(&parts).await;
    assert_eq!(
        told(&w.hook.received()),
        [tuple(&job, "job.done", Some("running"))]
    );
}

#[tokio::test]
async fn case_03_a_deletion_between_pages_hides_no_job_that_moved_up() {
    let w = article_world().await;
    // Jobs from before the lookback that are run again: only the running listing shows
    // them, newest first, two to a page.
    let old: Vec<String> = (0..5)
        .map(|i| {
            w.sim
                .add_job(NewJob::new(Status::Done).created(minutes_ago(180 + i)))
        })
        .collect();
    let text = w.config("", "1h", &w.ops_hook()).replace(
        "max_requests_per_second = 10",
        "max_requests_per_second = 10\npage_size = 2",
    );
    let parts = w.parts(&text).await;
    step(&parts).await;
    for id in &old {
        w.sim.set_status(id, Status::Running, None);
    }
    // Right after the first page of the running listing, its newest job is deleted: the
    // third job moves onto page 1, already read.
    let newest = old[0].clone();
    w.sim.set_request_hook(Some(Box::new(move |request, jobs| {
        if request.param("status") == Some("running") && request.param("page").is_none() {
            jobs.remove(&newest);
        }
    })));
    step(&parts).await;
    w.sim.set_request_hook(None);
    let slid = &old[2];
    w.sim.set_status(slid, Status::Done, None);
    step(&parts).await;
    assert_eq!(
        told(&w.hook.received()),
        [tuple(slid, "job.done", Some("running"))]
    );
}

#[tokio::test]
async fn case_04_a_creation_date_in_the_future_hides_no_later_job() {
    let w = article_world().await;
    let parts = w.parts(&w.config("", "1h", &w.ops_hook())).await;
    step(&parts).await;
    let ahead = w.sim.add_job(
        NewJob::new(Status::Done)
            .created(time::OffsetDateTime::now_utc() + time::Duration::minutes(5)),
    );
    step(&parts).await;
    let later = w.sim.add_job(NewJob::new(Status::Error).message("broken"));
    step(&parts).await;
    assert_eq!(
        told(&w.hook.received()),
        [
            tuple(&ahead, "job.done", None),
            tuple(&later, "job.error", None)
        ]
    );
}

#[tokio::test]
async fn case_05_a_channel_s_projects_match_when_rows_carry_no_project() {
    let w = article_world().await;
    let in_17 = w.sim.add_job(NewJob::new(Status::Running).project(17));
    let in_18 = w.sim.add_job(NewJob::new(Status::Running).project(18));
    let channels = format!(
        "{}[[webhook]]\nname = \"team-17\"\nurl = \"{}\"\nprojects = [17]\n",
        w.ops_hook(),
        w.hook.url("/team-17")
    );
    let parts = w.parts(&w.config("", "1h", &channels)).await;
    step(&parts).await;
    w.sim.set_status(&in_17, Status::Done, None);
    w.sim.set_status(&in_18, Status::Done, None);
    step(&parts).await;
    let hooks = w.hook.received();
    let team: Vec<_> = hooks.iter().filter(|h| h.path == "/team-17").collect();
    assert_eq!(team.len(), 1, "only project 17's job");
    assert_eq!(team[0].json()["data"]["job"]["id"], in_17.as_str());
    assert_eq!(team[0].json()["data"]["job"]["project"], 17);
    assert_eq!(hooks.iter().filter(|h| h.path == "/ops").count(), 2);
}

#[tokio::test]
async fn case_06_output_projects_fetch_rows_when_rows_carry_no_project() {
    let w = article_world().await;
    let in_17 = w
        .sim
        .add_job(NewJob::new(Status::Running).project(17).generated_rows(3));
    let in_18 = w
        .sim
        .add_job(NewJob::new(Status::Running).project(18).generated_rows(3));
    let output = format!(
        "[output]\ndir = \"{}\"\nprojects = {{ \"17\" = 5 }}\n",
        w.dir.path().join("out").display()
    );
    let parts = w
        .parts(&w.config("", "1h", &format!("{}{output}", w.ops_hook())))
        .await;
    step(&parts).await;
    w.sim.set_status(&in_17, Status::Done, None);
    w.sim.set_status(&in_18, Status::Done, None);
    step(&parts).await;
    let fetched: Vec<String> = w
        .sim
        .requests()
        .iter()
        .filter(|r| r.path.contains("/data/"))
        .map(|r| r.path.clone())
        .collect();
    assert_eq!(fetched, [format!("/api/v1/jobs/{in_17}/data/5/")]);
    assert!(
        w.dir
            .path()
            .join("out")
            .join(format!("{in_17}.json"))
            .exists()
    );
    let done_17 = w
        .hook
        .received()
        .into_iter()
        .find(|h| h.json()["data"]["job"]["id"] == in_17.as_str())
        .unwrap();
    assert_eq!(done_17.json()["data"]["output"]["rows"], 3);
}

#[tokio::test]
async fn case_07_poll_projects_changed_across_a_restart() {
    let w = article_world().await;
    let in_17 = w.sim.add_job(NewJob::new(Status::Running).project(17));
    let in_99 = w.sim.add_job(NewJob::new(Status::Running).project(99));
    {
        let parts = w.parts(&w.config("", "1h", &w.ops_hook())).await;
        step(&parts).await;
    }
    let text = w.config("projects = [17]", "1h", &w.ops_hook());
    let parts = w.parts(&text).await;
    step(&parts).await;
    w.sim.set_status(&in_17, Status::Done, None);
    w.sim.set_status(&in_99, Status::Done, None);
    step(&parts).await;
    step(&parts).await;
    assert_eq!(
        told(&w.hook.received()),
        [tuple(&in_17, "job.done", Some("running"))]
    );
    let output = sdm_watch(&text, &["state", "--json"], &[]).await;
    let state: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    let statuses: Vec<(String, u64)> = state["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["status"].as_str().unwrap().to_owned(),
                c["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(statuses, [("done".to_owned(), 2)], "no job left running");
}

#[tokio::test]
async fn case_08_a_first_cycle_that_fails_on_page_3_records_every_job_silently() {
    let w = article_world().await;
    let jobs: Vec<String> = (0..15)
        .map(|i| {
            w.sim
                .add_job(NewJob::new(Status::Running).created(minutes_ago(30 + i)))
        })
        .collect();
    let text = w
        .config("", "1h", &w.ops_hook())
        .replace(
            "max_requests_per_second = 10",
            "max_requests_per_second = 10\npage_size = 5",
        )
        .replace("max_elapsed = \"5s\"", "max_elapsed = \"300ms\"");
    let parts = w.parts(&text).await;
    w.sim.fail_always("page=3", Fault::Status(503));
    assert!(
        parts.watcher().cycle().await.is_err(),
        "page 3 never answers"
    );
    w.sim.clear_always();
    // Ten jobs finish before the retry: five that page 1 showed, five on page 3.
    for id in jobs[..5].iter().chain(&jobs[10..]) {
        w.sim.set_status(id, Status::Done, None);
    }
    step(&parts).await;
    step(&parts).await;
    assert!(
        w.hook.received().is_empty(),
        "{:?}",
        told(&w.hook.received())
    );
    w.sim.set_status(&jobs[7], Status::Done, None);
    step(&parts).await;
    assert_eq!(
        told(&w.hook.received()),
        [tuple(&jobs[7], "job.done", Some("running"))]
    );
}

#[tokio::test]
async fn case_09_a_job_pending_since_before_the_lookback_is_recorded_silently() {
    let w = article_world().await;
    let pending = w
        .sim
        .add_job(NewJob::new(Status::Pending).created(minutes_ago(63)));
    let parts = w
        .parts(&w.config("lookback = \"1h\"", "1h", &w.ops_hook()))
        .await;
    step(&parts).await;
    step(&parts).await;
    assert!(w.hook.received().is_empty());
    w.sim.set_status(&pending, Status::Done, None);
    step(&parts).await;
    assert_eq!(
        told(&w.hook.received()),
        [tuple(&pending, "job.done", Some("pending"))]
    );
}

#[tokio::test]
async fn case_10_a_long_job_found_finished_by_its_date_carries_its_completion_date() {
    let w = article_world().await;
    let long = w
        .sim
        .add_job(NewJob::new(Status::Running).created(minutes_ago(45)));
    let parts = w.parts(&w.config("", "1h", &w.ops_hook())).await;
    step(&parts).await;
    step(&parts).await;
    w.sim.clear_requests();
    w.sim.set_status(&long, Status::Done, None);
    step(&parts).await;
    let hooks = w.hook.received();
    assert_eq!(told(&hooks), [tuple(&long, "job.done", Some("running"))]);
    let completion = hooks[0].json()["data"]["job"]["completion_date"].clone();
    assert!(completion.is_string(), "{completion}");
    assert!(
        w.sim.requests().iter().all(|r| r.path.ends_with("/jobs/")),
        "found by a listing of its creation date, not its detail"
    );
}

#[tokio::test]
async fn case_11_a_running_listing_that_shrinks_while_paged_does_not_fail_the_cycle() {
    let w = article_world().await;
    let old: Vec<String> = (0..150)
        .map(|i| {
            w.sim
                .add_job(NewJob::new(Status::Running).created(minutes_ago(600 + i)))
        })
        .collect();
    let text = w.config("", "1h", &w.ops_hook());
    let parts = w.parts(&text).await;
    step(&parts).await;
    // 60 finish right after the first page of the running listing is read: page 2 is
    // then past the end.
    let finishing: Vec<String> = old[..60].to_vec();
    let mut done = false;
    w.sim.set_request_hook(Some(Box::new(move |request, jobs| {
        if !done && request.param("status") == Some("running") {
            for id in &finishing {
                jobs.set_status(id, Status::Done, None);
            }
            done = true;
        }
    })));
    let summary = parts.watcher().cycle().await.expect("the cycle succeeds");
    assert!(
        w.sim
            .requests()
            .iter()
            .any(|r| r.status == 404 && r.param("page") == Some("2")),
        "page 2 was past the end"
    );
    assert_eq!(
        summary.alerts_queued, 60,
        "every finished job alerted in this cycle"
    );
    parts.worker.deliver_due().await.unwrap();
    let alerted: HashSet<String> = told(&w.hook.received()).into_iter().map(|t| t.0).collect();
    assert_eq!(alerted, old[..60].iter().cloned().collect());
}

#[tokio::test]
async fn case_12_jobs_in_unknown_statuses_cost_no_request() {
    let w = article_world().await;
    for i in 0..10 {
        w.sim.add_job(
            NewJob::new(Status::Other("cancelled".into())).created(minutes_ago(100 + i * 500)),
        );
    }
    let parts = w.parts(&w.config("", "1h", &w.ops_hook())).await;
    step(&parts).await;
    for _ in 0..3 {
        assert_eq!(
            cycle_requests(&parts).await,
            3,
            "running, pending, new jobs"
        );
    }
}

#[tokio::test]
async fn case_13_a_job_whose_detail_always_fails_holds_up_no_one() {
    let w = article_world().await;
    let cancelled = w
        .sim
        .add_job(NewJob::new(Status::Other("cancelled".into())).created(minutes_ago(30)));
    let failing = w.sim.add_job(NewJob::new(Status::Running));
    let done = w.sim.add_job(NewJob::new(Status::Running));
    w.sim
        .fail_always(&format!("/jobs/{cancelled}/"), Fault::Status(500));
    w.sim
        .fail_always(&format!("/jobs/{failing}/"), Fault::Status(500));
    // A long retry budget: a cycle that waited on the failing detail would take 30 s.
    let text = w
        .config("", "1h", &w.ops_hook())
        .replace("max_elapsed = \"5s\"", "max_elapsed = \"30s\"");
    let parts = w.parts(&text).await;
    step(&parts).await;
    w.sim.set_status(&failing, Status::Error, Some("broken"));
    w.sim.set_status(&done, Status::Done, None);
    let started = std::time::Instant::now();
    let summary = parts.watcher().cycle().await.unwrap();
    // Not held up by the failing detail's 30 s budget (slack for a busy host).
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "the cycle took {:?}",
        started.elapsed()
    );
    assert_eq!(summary.alerts_queued, 1, "the done job's alert went out");
    assert_eq!(summary.alerts_held, 1, "the error waits for its message");
    parts.worker.deliver_due().await.unwrap();
    assert_eq!(
        told(&w.hook.received()),
        [tuple(&done, "job.done", Some("running"))]
    );
    // The wait is visible, once per job in the log, and costs nothing while it backs off.
    let output = sdm_watch(&text, &["state"], &[]).await;
    let report = stdout(&output);
    assert!(
        report.contains("alerts waiting for details: 1"),
        "{report}{}",
        stderr(&output)
    );
    assert!(
        report.contains(&failing) && report.contains("500"),
        "{report}"
    );
    assert!(
        !w.sim.requests().iter().any(|r| r.path.contains(&cancelled)),
        "a job in a status sdm-watch does not know is not polled"
    );
}

#[tokio::test]
async fn case_14_two_jobs_finishing_among_a_thousand_of_one_second_cost_a_request_each() {
    let w = article_world().await;
    let second = time::OffsetDateTime::now_utc() - time::Duration::days(2);
    for i in 0..1000 {
        let at = second + time::Duration::microseconds(i * 997);
        w.sim.add_job(NewJob::new(Status::Done).created(at));
    }
    let a = w.sim.add_job(
        NewJob::new(Status::Running).created(second + time::Duration::microseconds(250_001)),
    );
    let b = w.sim.add_job(
        NewJob::new(Status::Running).created(second + time::Duration::microseconds(750_001)),
    );
    let page_size = |size: u32| {
        w.config("", "1h", &w.ops_hook()).replace(
            "max_requests_per_second = 10",
            &format!("max_requests_per_second = 10\npage_size = {size}"),
        )
    };
    // The history is recorded with big pages; the cycles that follow use the default.
    step(&w.parts(&page_size(1000)).await).await;
    let parts = w.parts(&page_size(100)).await;
    step(&parts).await;
    w.sim.set_status(&a, Status::Done, None);
    w.sim.set_status(&b, Status::Done, None);
    // Running, pending, new jobs, and a listing of each one's creation date.
    assert_eq!(cycle_requests(&parts).await, 5);
    assert_eq!(w.hook.received().len(), 0);
    parts.worker.deliver_due().await.unwrap();
    assert_eq!(w.hook.received().len(), 2);
}
