//! The API client against the simulator: pagination, filters, errors, retries, the origin
//! guard and the rate cap, as a caller sees them.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sdm_watch::domain::Status;
use sdm_watch::sdm::{ApiError, JobFilter};
use sdm_watch::sim::{Fault, NewJob, Order, Simulator};
use time::OffsetDateTime;
use time::macros::datetime;

use testkit::config::{client, client_with, config_text};

/// A second listener that stands in for a foreign host and counts the connections it gets.
async fn foreign_host() -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    let foreign = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = foreign.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let counter = connections.clone();
    tokio::spawn(async move {
        while let Ok((_socket, _)) = foreign.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });
    (addr, connections)
}

fn list_requests(sim: &Simulator) -> usize {
    sim.requests()
        .iter()
        .filter(|r| r.path.ends_with("/jobs/"))
        .count()
}

#[tokio::test]
async fn lists_every_job_across_many_pages_in_any_order() {
    let sim = Simulator::start().await.unwrap();
    let mut rng = fastrand::Rng::with_seed(7);
    let start = datetime!(2026-11-20 00:00 UTC);
    let mut ids = HashSet::new();
    for n in 0..237 {
        let created = start + time::Duration::microseconds(rng.i64(0..600_000_000_000));
        let status = [
            Status::Running,
            Status::Done,
            Status::Error,
            Status::Pending,
        ][n % 4]
            .clone();
        ids.insert(sim.add_job(NewJob::new(status).created(created)));
    }
    let client = client_with(&config_text(&sim, "page_size = 10", ""));
    for order in [Order::NewestFirst, Order::OldestFirst] {
        sim.set_order(order);
        sim.clear_requests();
        let jobs = client.list_jobs(&JobFilter::default()).await.unwrap();
        let seen: HashSet<String> = jobs.iter().map(|job| job.id.clone()).collect();
        assert_eq!(jobs.len(), 237, "{order:?}: every job once");
        assert_eq!(seen, ids, "{order:?}");
        assert_eq!(list_requests(&sim), 24, "{order:?}: 24 pages of 10");
        assert!(
            sim.requests()
                .iter()
                .all(|r| r.param("page_size") == Some("10"))
        );
    }
}

#[tokio::test]
async fn every_filter_reaches_the_server_and_after_is_strict() {
    let sim = Simulator::start().await.unwrap();
    let t = |minute: i64| datetime!(2026-11-28 10:00 UTC) + time::Duration::minutes(minute);
    let early = sim.add_job(NewJob::new(Status::Error).project(17).created(t(0)));
    let boundary = sim.add_job(NewJob::new(Status::Error).project(17).created(t(10)));
    let inside = sim.add_job(NewJob::new(Status::Error).project(17).created(t(20)));
    sim.add_job(NewJob::new(Status::Done).project(17).created(t(20)));
    sim.add_job(NewJob::new(Status::Error).project(18).created(t(20)));
    sim.add_job(NewJob::new(Status::Error).project(17).created(t(40)));
    let client = client(&sim);

    let jobs = client
        .list_jobs(&JobFilter {
            status: Some(Status::Error),
            project: Some(17),
            created_after: Some(t(10)),
            created_before: Some(t(30)),
        })
        .await
        .unwrap();
    let ids: Vec<&str> = jobs.iter().map(|job| job.id.as_str()).collect();
    assert_eq!(
        ids,
        [inside.as_str()],
        "only the job strictly inside the window"
    );
    assert!(!ids.contains(&boundary.as_str()) && !ids.contains(&early.as_str()));

    let request = sim.requests().pop().unwrap();
    assert_eq!(request.param("status"), Some("error"));
    assert_eq!(request.param("project"), Some("17"));
    assert_eq!(
        request.param("created_after"),
        Some("2026-11-28T10:10:00.000000Z")
    );
    assert_eq!(
        request.param("created_before"),
        Some("2026-11-28T10:30:00.000000Z")
    );
    assert!(request.authorized, "the token was sent");
}

#[tokio::test]
async fn a_refused_token_is_a_clear_error_and_is_not_retried() {
    let sim = Simulator::start_with_token("the-right-token")
        .await
        .unwrap();
    let text = config_text(&sim, "", "").replace("the-right-token", "a-wrong-token-123");
    let error = client_with(&text)
        .list_jobs(&JobFilter::default())
        .await
        .unwrap_err();
    assert!(
        matches!(error, ApiError::Unauthorized { status: 401, .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(message.contains("Invalid token."), "{message}");
    assert!(
        !message.contains("a-wrong-token-123"),
        "the token leaked: {message}"
    );
    assert_eq!(sim.requests().len(), 1, "a 401 is never retried");
}

#[tokio::test]
async fn rate_limited_calls_wait_at_least_retry_after() {
    let sim = Simulator::start().await.unwrap();
    sim.add_job(NewJob::new(Status::Running));
    sim.inject([Fault::RateLimited {
        retry_after_secs: 1,
    }]);
    // Retry-After is honoured up to retry.max_interval (2 s here); beyond, see extremes.rs.
    let text = config_text(&sim, "", "").replace(
        "max_interval = \"200ms\"",
        "max_interval = \"2s\"\nmultiplier = 1.0",
    );
    let jobs = client_with(&text)
        .list_jobs(&JobFilter::default())
        .await
        .unwrap();
    assert_eq!(jobs.len(), 1);
    let requests = sim.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].status, 429);
    let waited = requests[1].at - requests[0].at;
    // The retry policy alone would have waited about 50 ms (initial_interval, no growth).
    assert!(waited >= Duration::from_secs(1), "retried after {waited:?}");
}

#[tokio::test]
async fn server_errors_and_broken_answers_are_retried_until_success() {
    let sim = Simulator::start().await.unwrap();
    let id = sim.add_job(NewJob::new(Status::Error).message("Column 'sku' missing"));
    sim.inject([
        Fault::Status(503),
        Fault::Status(500),
        Fault::Truncated,
        Fault::NotJson,
        Fault::Drop,
        Fault::Status(408),
        Fault::Slow(Duration::from_secs(3)),
    ]);
    let detail = client(&sim).job(&id).await.unwrap();
    assert_eq!(detail.status, Status::Error);
    assert_eq!(detail.message.as_deref(), Some("Column 'sku' missing"));
    assert_eq!(sim.requests().len(), 8, "seven failures, then the answer");
}

#[tokio::test]
async fn gives_up_after_max_elapsed_with_the_last_error() {
    let sim = Simulator::start().await.unwrap();
    sim.set_fault_rate(1.0, vec![Fault::NotJson], 1);
    let text = config_text(&sim, "", "").replace("max_elapsed = \"5s\"", "max_elapsed = \"1s\"");
    let started = Instant::now();
    let error = client_with(&text)
        .list_jobs(&JobFilter::default())
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    assert!(matches!(error, ApiError::GaveUp { .. }), "{error:?}");
    assert!(
        matches!(error.root(), ApiError::Undecodable { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("could not be read"), "{error}");
    // Gave up near max_elapsed (1 s), not at the 5 s default or never: slack for a busy host.
    assert!(elapsed < Duration::from_secs(4), "took {elapsed:?}");
    assert!(sim.requests().len() >= 4, "retried several times first");
}

#[tokio::test]
async fn a_next_link_to_another_origin_is_refused_and_gets_no_token() {
    let sim = Simulator::start().await.unwrap();
    for _ in 0..30 {
        sim.add_job(NewJob::new(Status::Done));
    }
    let (foreign_addr, connections) = foreign_host().await;
    sim.set_next_origin(Some(&format!("http://{foreign_addr}")));

    let error = client_with(&config_text(&sim, "page_size = 10", ""))
        .list_jobs(&JobFilter::default())
        .await
        .unwrap_err();
    assert!(matches!(error, ApiError::ForeignOrigin { .. }), "{error:?}");
    assert!(
        error.to_string().contains(&foreign_addr.to_string()),
        "{error}"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        connections.load(Ordering::SeqCst),
        0,
        "nothing was sent to the foreign host"
    );
    assert_eq!(sim.requests().len(), 1, "and it was not retried");
}

#[tokio::test]
async fn output_rows_of_done_jobs_and_a_clear_error_otherwise() {
    let sim = Simulator::start().await.unwrap();
    let rows = vec![
        serde_json::json!({"sku": "A1", "price": "3.10"})
            .as_object()
            .cloned()
            .unwrap(),
        serde_json::json!({"sku": "B2"})
            .as_object()
            .cloned()
            .unwrap(),
    ];
    let done = sim.add_job(NewJob::new(Status::Done).rows(rows.clone()));
    let running = sim.add_job(NewJob::new(Status::Running));
    let client = client(&sim);
    assert_eq!(client.job_data(&done, 3).await.unwrap(), rows);
    assert_eq!(
        sim.requests()[0].path,
        format!("/api/v1/jobs/{done}/data/3/")
    );

    let error = client.job_data(&running, 3).await.unwrap_err();
    assert!(
        matches!(error, ApiError::Rejected { status: 400, .. }),
        "{error:?}"
    );
    let error = client.job("no-such-job").await.unwrap_err();
    assert!(matches!(error, ApiError::NotFound { .. }), "{error:?}");
    assert_eq!(sim.requests().len(), 3, "4xx answers are not retried");
}

#[tokio::test]
async fn concurrent_calls_share_the_rate_cap() {
    let sim = Simulator::start().await.unwrap();
    let id = sim.add_job(NewJob::new(Status::Running));
    let text = config_text(&sim, "", "").replace(
        "max_requests_per_second = 10",
        "max_requests_per_second = 5",
    );
    let client = client_with(&text);
    let calls = (0..11).map(|_| {
        let client = client.clone();
        let id = id.clone();
        tokio::spawn(async move { client.job(&id).await })
    });
    for call in calls.collect::<Vec<_>>() {
        call.await.unwrap().unwrap();
    }
    let times: Vec<Instant> = sim.requests().iter().map(|r| r.at).collect();
    let span = *times.iter().max().unwrap() - *times.iter().min().unwrap();
    // 11 requests at 5/s need 10 gaps of 200 ms; allow for timer granularity.
    assert!(
        span >= Duration::from_millis(1_950),
        "11 requests in {span:?}"
    );
}

#[tokio::test]
async fn dates_from_the_api_keep_their_text_and_parse() {
    let sim = Simulator::start().await.unwrap();
    let created: OffsetDateTime = datetime!(2022-04-14 08:48:37.12 UTC);
    sim.add_job(NewJob::new(Status::Done).created(created));
    let jobs = client(&sim).list_jobs(&JobFilter::default()).await.unwrap();
    assert_eq!(
        jobs[0].creation_date.as_deref(),
        Some("2022-04-14T08:48:37.12Z")
    );
    assert_eq!(jobs[0].created_at(), Some(created));
    assert!(jobs[0].completion_date.is_some());
}

#[tokio::test]
async fn the_simulator_paginates_like_drf() {
    let sim = Simulator::start().await.unwrap();
    for _ in 0..60 {
        sim.add_job(NewJob::new(Status::Done));
    }
    sim.set_max_page_size(50);
    let http = testkit::http();
    let get = |query: &str| {
        let url = format!("{}jobs/{query}", sim.base_url());
        let request = http
            .get(url)
            .header("authorization", format!("Token {}", sim.token()));
        async move {
            let response = request.send().await.unwrap();
            (
                response.status().as_u16(),
                response.json::<serde_json::Value>().await.unwrap(),
            )
        }
    };
    let (status, first) = get("").await;
    assert_eq!(status, 200);
    assert_eq!(first["count"], 60);
    assert_eq!(
        first["results"].as_array().unwrap().len(),
        25,
        "default page size"
    );
    assert_eq!(first["previous"], serde_json::Value::Null);
    let next = first["next"].as_str().unwrap();
    assert!(
        next.starts_with(&format!("http://{}/api/v1/jobs/", sim.addr())) && next.contains("page=2"),
        "{next}"
    );
    let (_, capped) = get("?page_size=1000").await;
    assert_eq!(
        capped["results"].as_array().unwrap().len(),
        50,
        "page size capped"
    );
    let (_, last) = get("?page=3").await;
    assert_eq!(last["results"].as_array().unwrap().len(), 10);
    assert_eq!(last["next"], serde_json::Value::Null);
    assert!(last["previous"].as_str().unwrap().contains("page=2"));
    let (status, past) = get("?page=4").await;
    assert_eq!(
        (status, past["detail"].as_str()),
        (404, Some("Invalid page."))
    );
    let (status, bad) = get("?created_after=yesterday").await;
    assert_eq!(status, 400);
    assert!(bad["created_after"].is_array(), "{bad}");
    let response = http
        .get(format!("{}jobs/", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
    assert_eq!(response.headers()["www-authenticate"], "Token");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        body["detail"],
        "Authentication credentials were not provided."
    );
}

#[tokio::test]
async fn redirects_are_followed_on_our_origin_only_and_never_carry_the_token_away() {
    let sim = Simulator::start().await.unwrap();
    sim.add_job(NewJob::new(Status::Done));
    let (foreign_addr, connections) = foreign_host().await;
    let client = client(&sim);

    // On our own origin a redirect is followed, with the token.
    sim.inject([Fault::Redirect(format!(
        "{}jobs/?page_size=100",
        sim.base_url()
    ))]);
    assert_eq!(
        client.list_jobs(&JobFilter::default()).await.unwrap().len(),
        1
    );
    let requests = sim.requests();
    assert_eq!(requests.len(), 2);
    assert!(requests.iter().all(|r| r.authorized));

    // To another origin it is refused before anything is sent there.
    sim.clear_requests();
    sim.inject([Fault::Redirect(format!("http://{foreign_addr}/steal"))]);
    let error = client.list_jobs(&JobFilter::default()).await.unwrap_err();
    assert!(matches!(error, ApiError::ForeignOrigin { .. }), "{error:?}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        connections.load(Ordering::SeqCst),
        0,
        "the foreign host was never contacted"
    );
    assert_eq!(sim.requests().len(), 1, "and it was not retried");
}

#[tokio::test]
async fn a_token_rotated_in_its_file_is_used_after_a_401_without_a_new_client() {
    let sim = Simulator::start().await.unwrap();
    sim.add_job(NewJob::new(Status::Running));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, format!("{}\n", sim.token())).unwrap();
    let text = config_text(&sim, "", "").replace(
        &format!("token = \"{}\"", sim.token()),
        &format!("token_file = \"{}\"", file.display()),
    );
    let client = client_with(&text);
    assert_eq!(
        client.list_jobs(&JobFilter::default()).await.unwrap().len(),
        1
    );

    // Revoked: the file still holds the old token, so the 401 stands (read once more, no loop).
    sim.set_token("rotated-token-0001");
    let before = sim.requests().len();
    let error = client.list_jobs(&JobFilter::default()).await.unwrap_err();
    assert!(
        matches!(error.root(), ApiError::Unauthorized { .. }),
        "{error}"
    );
    assert_eq!(
        sim.requests().len() - before,
        1,
        "no second try with the same token"
    );

    // Rotated: the next 401 reads the file again and the same request goes through.
    std::fs::write(&file, "rotated-token-0001").unwrap();
    let before = sim.requests().len();
    assert_eq!(
        client.list_jobs(&JobFilter::default()).await.unwrap().len(),
        1
    );
    let requests = sim.requests();
    let statuses: Vec<u16> = requests[before..].iter().map(|r| r.status).collect();
    assert_eq!(statuses, [401, 200], "one refusal, then the new token");
    // Clones share the new token: no 401 this time.
    let before = sim.requests().len();
    client
        .clone()
        .list_jobs(&JobFilter::default())
        .await
        .unwrap();
    assert!(sim.requests()[before..].iter().all(|r| r.status == 200));
}
