//! Several organisations in one `sdm-watch run` process against one simulator serving two
//! (a token each): the same job id in both is two jobs, alerts name their organisation and
//! follow a channel's `organisations`, a token refused for one organisation gives that
//! organisation's `watcher.failing` and nothing else, and the commands take `--org`.

use std::path::PathBuf;
use std::time::Duration;

use sdm_watch::domain::Status;
use sdm_watch::sim::{NewJob, ReceivedWebhook, SimOrganisation};
use testkit::cli::{sdm_watch, stderr, stdout};
use testkit::{Daemon, World};

const GLOBEX_TOKEN: &str = "sim-token-globex-0123456789";

/// `acme` is the simulator's first organisation, `globex` the second; `ops` and the
/// e-mail channel take both, `globex-only` only globex's alerts.
fn config(w: &World) -> String {
    let channels = format!(
        r#"{standard}
[[webhook]]
name = "globex-only"
url = "{url}"
organisations = ["globex"]

[[organisation]]
name = "acme"
token = "{acme}"

[[organisation]]
name = "globex"
token = "{GLOBEX_TOKEN}"

[watchdog]
alert_after = "3s"
"#,
        standard = w.standard_channels(),
        url = w.hook.url("/globex"),
        acme = w.sim.token(),
    );
    // [api] keeps its base_url and limits, not its token: each organisation has its own.
    w.config("", "1h", &channels)
        .replacen(&format!("token = \"{}\"\n", w.sim.token()), "", 1)
}

fn at<'a>(hooks: &'a [ReceivedWebhook], path: &str) -> Vec<&'a ReceivedWebhook> {
    hooks.iter().filter(|h| h.path == path).collect()
}

/// The (type, organisation, job id) of each delivery to `path`, sorted.
fn seen(hooks: &[ReceivedWebhook], path: &str) -> Vec<(String, String, String)> {
    let mut seen: Vec<_> = at(hooks, path)
        .iter()
        .map(|h| {
            let body = h.json();
            (
                body["type"].as_str().unwrap_or_default().to_owned(),
                body["data"]["organisation"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                body["data"]["job"]["id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect();
    seen.sort();
    seen
}

/// Waits until `done` holds for what the receiver got.
async fn wait_until(
    w: &World,
    what: &str,
    done: impl Fn(&[ReceivedWebhook]) -> bool,
) -> Vec<ReceivedWebhook> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let delivered = w.hook.delivered();
        if done(&delivered) {
            return delivered;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not within 30 s: {what}; /ops got {:?}",
            seen(&delivered, "/ops")
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn triple(kind: &str, org: &str, job: &str) -> (String, String, String) {
    (kind.to_owned(), org.to_owned(), job.to_owned())
}

async fn two_organisations() -> (World, SimOrganisation, PathBuf) {
    let w = World::start().await;
    let globex = w.sim.add_organisation("globex", GLOBEX_TOKEN);
    // The same id in both organisations: two jobs.
    w.sim
        .add_job_with_id("job-1", NewJob::new(Status::Running).name("Acme feed"));
    globex.add_job_with_id("job-1", NewJob::new(Status::Running).name("Globex feed"));
    let path = w.dir.path().join("config.toml");
    let port = testkit::ports::free();
    let text = config(&w).replace("listen = \"\"", &format!("listen = \"127.0.0.1:{port}\""));
    std::fs::write(&path, text).unwrap();
    (w, globex, path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn organisations_are_watched_apart_and_named_everywhere() {
    let (w, globex, path) = two_organisations().await;
    let daemon = Daemon::start(&path, &[]);
    daemon.wait_for_log("poll cycle done", 2).await;
    assert!(
        !w.sim.own_requests().is_empty() && !globex.own_requests().is_empty(),
        "each organisation is polled with its own token"
    );

    w.sim
        .set_status("job-1", Status::Error, Some("Column 'sku' missing"));
    globex.set_status("job-1", Status::Done, None);
    let delivered = wait_until(&w, "both job-1 alerts on /ops", |hooks| {
        seen(hooks, "/ops").len() >= 2 && !at(hooks, "/globex").is_empty()
    })
    .await;
    assert_eq!(
        seen(&delivered, "/ops"),
        [
            triple("job.done", "globex", "job-1"),
            triple("job.error", "acme", "job-1")
        ],
        "one alert per organisation's job, each naming its organisation"
    );
    assert_eq!(
        seen(&delivered, "/globex"),
        [triple("job.done", "globex", "job-1")],
        "organisations = [\"globex\"] keeps only globex's alerts"
    );
    let mails = w.smtp.wait_for(2, Duration::from_secs(20)).await;
    let mut subjects: Vec<String> = mails
        .iter()
        .map(|mail| mail.header("subject").unwrap_or_default())
        .collect();
    subjects.sort();
    assert_eq!(
        subjects,
        [
            "[sdm-watch] acme: error: Acme feed",
            "[sdm-watch] globex: done: Globex feed"
        ]
    );

    // acme's token is revoked: acme's watcher.failing, while globex goes on alerting.
    w.sim.set_token("sim-token-acme-revoked");
    globex.add_job_with_id("job-2", NewJob::new(Status::Running).name("Globex prices"));
    daemon.wait_for_log("job changed status", 3).await;
    globex.set_status("job-2", Status::Error, Some("Unknown unit 'kgs'"));
    let delivered = wait_until(&w, "acme's watcher.failing and globex's job-2", |hooks| {
        let ops = seen(hooks, "/ops");
        ops.iter().any(|(kind, _, _)| kind == "watcher.failing")
            && ops.contains(&triple("job.error", "globex", "job-2"))
    })
    .await;
    let failing: Vec<_> = at(&delivered, "/ops")
        .into_iter()
        .map(|h| h.json())
        .filter(|body| body["type"] == "watcher.failing")
        .collect();
    assert_eq!(failing.len(), 1, "{failing:?}");
    assert_eq!(failing[0]["data"]["organisation"], "acme");
    assert_eq!(failing[0]["data"]["reason"], "token_refused");
    assert!(
        at(&delivered, "/globex")
            .iter()
            .all(|h| h.json()["type"] != "watcher.failing"),
        "globex-only never hears of acme's outage"
    );

    // The status page: a section per organisation, acme's outage in it.
    let text = std::fs::read_to_string(&path).unwrap();
    let listen = text
        .lines()
        .find_map(|line| line.strip_prefix("listen = \""))
        .and_then(|rest| rest.strip_suffix('"'))
        .unwrap()
        .to_owned();
    let status = testkit::get_json(format!("http://{listen}/status.json")).await;
    let orgs = status["organisations"].as_array().expect("a section each");
    let names: Vec<&str> = orgs.iter().filter_map(|o| o["name"].as_str()).collect();
    assert_eq!(names, ["acme", "globex"], "{status}");
    assert_eq!(orgs[0]["failing_reason"], "token_refused", "{status}");
    assert!(orgs[1]["failing_since"].is_null(), "{status}");
    assert_eq!(orgs[1]["jobs"]["by_status"]["error"], 1, "{status}");
    let page = testkit::http()
        .get(format!("http://{listen}/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("id=\"org-acme\"") && page.contains("id=\"org-globex\""),
        "{page}"
    );
    assert!(status["ready"] == false, "acme does not poll: not ready");

    // The commands take --org.
    let acme = stdout(&sdm_watch(&text, &["state", "--org", "acme"], &[]).await);
    assert!(
        acme.contains("WATCHER FAILING (organisation acme)") && acme.contains("token_refused"),
        "{acme}"
    );
    let globex_state = stdout(&sdm_watch(&text, &["state", "--org", "globex"], &[]).await);
    assert!(!globex_state.contains("WATCHER FAILING"), "{globex_state}");
    assert!(
        globex_state.contains("organisation globex: tracked jobs: 2"),
        "{globex_state}"
    );
    let ambiguous = sdm_watch(&text, &["jobs", "list"], &[]).await;
    assert_eq!(ambiguous.status.code(), Some(2), "{}", stderr(&ambiguous));
    assert!(
        stderr(&ambiguous).contains("--org"),
        "{}",
        stderr(&ambiguous)
    );
    let listed = sdm_watch(&text, &["jobs", "list", "--org", "globex", "--json"], &[]).await;
    assert_eq!(listed.status.code(), Some(0), "{}", stderr(&listed));
    let jobs: serde_json::Value = serde_json::from_str(&stdout(&listed)).unwrap();
    let mut names: Vec<&str> = jobs
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|job| job["name"].as_str())
        .collect();
    names.sort();
    assert_eq!(names, ["Globex feed", "Globex prices"]);
    let unknown = sdm_watch(&text, &["state", "--org", "initech"], &[]).await;
    assert_eq!(unknown.status.code(), Some(2), "{}", stderr(&unknown));
    let alerts =
        stdout(&sdm_watch(&text, &["alerts", "list", "--org", "globex", "--json"], &[]).await);
    let alerts: serde_json::Value = serde_json::from_str(&alerts).unwrap();
    assert!(
        alerts
            .as_array()
            .unwrap()
            .iter()
            .all(|alert| alert["organisation"] == "globex"),
        "{alerts}"
    );
    daemon.stop().await;
}
