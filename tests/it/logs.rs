//! The log and metrics seen from inside (issue 33): with several organisations, whose job
//! ids may be the same, every JSON line about a job, a request to the API or a delivery
//! names its organisation, as a field of its own or of the span it happened in; each API
//! request's round trip is on its debug line and in a histogram.

use std::time::Duration;

use sdm_watch::domain::Status;
use sdm_watch::sim::{NewJob, Simulator, WebhookReceiver};
use serde_json::Value;
use testkit::Daemon;

/// The organisation a JSON log line names: its own field, or its span's.
fn organisation(line: &Value) -> Option<&str> {
    line["organisation"]
        .as_str()
        .or_else(|| line["span"]["organisation"].as_str())
}

/// Whether a line is about a job, an API request or a delivery: what an operator greps for
/// an organisation's trouble.
fn about_an_organisation_s_work(line: &Value) -> bool {
    let message = line["message"].as_str().unwrap_or_default();
    [
        "job_id",
        "alert_id",
        "url",
        "endpoint",
        "jobs_seen",
        "round_trip_ms",
    ]
    .iter()
    .any(|field| !line[*field].is_null())
        || ["job", "page", "request", "alert", "cycle", "digest"]
            .iter()
            .any(|word| message.contains(word))
}

#[tokio::test]
async fn every_line_about_an_organisation_s_work_names_it() {
    let sim = Simulator::start().await.unwrap();
    let globex = sim.add_organisation("globex", "sim-token-globex-0123456789");
    let hook = WebhookReceiver::start().await.unwrap();
    // The same id in both organisations: only the organisation tells the lines apart.
    sim.add_job_with_id("job-1", NewJob::new(Status::Running));
    globex.add_job_with_id("job-1", NewJob::new(Status::Running));
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    let listen = format!("127.0.0.1:{}", testkit::ports::free());
    std::fs::write(
        &config,
        format!(
            "[api]\nbase_url = \"{base}\"\n[poll]\ninterval = \"1s\"\n\
             [state]\npath = \"{state}\"\n[http]\nlisten = \"{listen}\"\n[log]\nformat = \"json\"\n\
             [[organisation]]\nname = \"acme\"\ntoken = \"{acme}\"\n\
             [[organisation]]\nname = \"globex\"\ntoken = \"{globex}\"\n\
             [[webhook]]\nname = \"ops\"\nurl = \"{hook}\"\n",
            base = sim.base_url(),
            state = dir.path().join("state.db").display(),
            acme = sim.token(),
            globex = globex.token(),
            hook = hook.url("/ops"),
        ),
    )
    .unwrap();
    let daemon = Daemon::start(&config, &[("SDM_WATCH_LOG", "debug")]);
    daemon.wait_for_log("poll cycle done", 2).await;
    sim.set_status("job-1", Status::Error, Some("bad row"));
    globex.set_status("job-1", Status::Done, None);
    hook.wait_for_delivered(2, Duration::from_secs(15)).await;
    let metrics = testkit::metrics::scrape(&listen).await;
    for name in ["acme", "globex"] {
        let count = metrics
            .lines()
            .find(|line| {
                line.starts_with("sdm_watch_api_request_duration_seconds_count{")
                    && line.contains(&format!("organisation=\"{name}\""))
                    && line.contains("endpoint=\"list\"")
                    && line.contains("code=\"200\"")
            })
            .unwrap_or_else(|| panic!("no request histogram of {name}:\n{metrics}"));
        let count: f64 = count.rsplit(' ').next().unwrap().parse().unwrap();
        assert!(count >= 2.0, "{count}");
    }
    let lines = daemon.stop().await;

    let parsed: Vec<Value> = lines
        .iter()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    let about: Vec<&Value> = parsed
        .iter()
        .filter(|line| about_an_organisation_s_work(line))
        .collect();
    let unnamed: Vec<&&Value> = about
        .iter()
        .filter(|line| organisation(line).is_none())
        .collect();
    assert!(
        unnamed.is_empty(),
        "{} of {} lines about an organisation's work do not name it:\n{}",
        unnamed.len(),
        about.len(),
        unnamed
            .iter()
            .map(|line| line.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    );
    let request = about
        .iter()
        .find(|line| line["message"] == "API request")
        .expect("a debug line per API request");
    assert!(request["round_trip_ms"].is_u64(), "{request}");
    // Both organisations' work was logged, with their own names.
    for name in ["acme", "globex"] {
        for kind in [
            "API request",
            "read a page of jobs",
            "job changed status",
            "alert delivered",
        ] {
            assert!(
                about.iter().any(|line| organisation(line) == Some(name)
                    && line["message"].as_str().unwrap_or_default().contains(kind)),
                "no {kind:?} line of {name}"
            );
        }
    }
}
