//! `sdm-watch demo`: the real daemon against the simulated SDM API on loopback, with a
//! webhook receiver that prints each alert as it arrives. No config, no network.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use tokio::sync::mpsc;

use crate::commands::cli::DemoArgs;
use crate::config::{Config, SigningKey};
use crate::daemon;
use crate::domain::Status;
use crate::notify::webhook::sign;
use crate::ops::signals::Control;
use crate::sim::{
    DEFAULT_TOKEN, NewJob, ReceivedWebhook, SimOrganisation, Simulator, WebhookReceiver,
};

/// How often the scripted jobs move on.
const STEP: Duration = Duration::from_secs(3);

pub async fn run(args: DemoArgs, controls: mpsc::Receiver<Control>) -> anyhow::Result<()> {
    if let (Some(api), Some(receiver)) = (args.api, args.receiver) {
        return serve(api, receiver, controls).await;
    }
    let sim = Simulator::start().await?;
    // Two organisations, each with its own token: acme (the simulator's first) and globex.
    let globex = sim.add_organisation("globex", "sim-token-globex-0123456789");
    earlier_jobs(&sim);

    let mut key = [0u8; 24];
    key.iter_mut().for_each(|byte| *byte = fastrand::u8(..));
    let secret = format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    );
    let signing_key = SigningKey::parse(&secret).map_err(anyhow::Error::msg)?;
    let receiver = WebhookReceiver::start_with(Some(Box::new(move |webhook| {
        print_alert(webhook, Some(&signing_key))
    })))
    .await?;

    let dir = TempDir::new()?;
    // The status page on a free loopback port (10187 may be a real daemon's).
    let console = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let config = demo_config(&sim, &globex, &receiver, &secret, &dir, console)?;
    println!(
        "sdm-watch demo: the real daemon, a simulated SDM API and a webhook receiver, all on loopback."
    );
    println!(
        "  SDM API (simulated): {} (organisations acme and globex, a token each)",
        sim.base_url()
    );
    println!("  webhook receiver:    {}", receiver.url("/sdm-watch"));
    println!("  status page:         http://{console}/ (open it in a browser)");
    println!(
        "  state file:          {}",
        dir.path().join("state.db").display()
    );
    println!(
        "Jobs move every {}s; each alert is printed as the receiver got it; a second channel\n\
         gathers done and error alerts into a digest every 15s; a job left pending is reminded\n\
         of every 5s. Ctrl-C stops.\n",
        STEP.as_secs()
    );

    let script = tokio::spawn(script((*sim).clone()));
    let other = tokio::spawn(globex_script(globex));
    let result = daemon::run(config, None, controls).await;
    script.abort();
    other.abort();
    sim.stop().await;
    receiver.stop().await;
    println!("demo stopped.");
    result
}

/// The demo's config: both organisations, fast polling and retries, the state in `dir`,
/// the status page and endpoints on `console`, a channel printing each alert and one
/// gathering digests.
fn demo_config(
    sim: &Simulator,
    globex: &SimOrganisation,
    receiver: &WebhookReceiver,
    secret: &str,
    dir: &TempDir,
    console: SocketAddr,
) -> anyhow::Result<Config> {
    Ok(Config::from_toml(
        &format!(
            r#"
[api]
base_url = "{base}"
[[organisation]]
name = "acme"
token = "{token}"
[[organisation]]
name = "globex"
token = "{globex_token}"
projects = [17]
[poll]
interval = "2s"
lookback = "1d"
remind_pending_every = "5s"
[retry]
initial_interval = "200ms"
max_interval = "2s"
max_elapsed = "20s"
[state]
path = "{state}"
[http]
listen = "{console}"
[[webhook]]
name = "terminal"
url = "{hook}"
secret = "{secret}"
[[webhook]]
name = "digest"
url = "{digest_hook}"
secret = "{secret}"
events = ["done", "error"]
group_wait = "15s"
"#,
            base = sim.base_url(),
            token = sim.token(),
            globex_token = globex.token(),
            state = dir.path().join("state.db").display(),
            hook = receiver.url("/sdm-watch"),
            digest_hook = receiver.url("/digest"),
        ),
        Path::new("(demo)"),
    )?)
}

/// Jobs that finished before sdm-watch started: recorded on the first cycle, not alerted.
fn earlier_jobs(sim: &SimOrganisation) {
    for name in ["Spring catalogue", "Supplier onboarding"] {
        sim.add_job(
            NewJob::new(Status::Done)
                .name(name)
                .project(17)
                .created(time::OffsetDateTime::now_utc() - time::Duration::hours(2)),
        );
    }
}

/// `demo --api ADDR --receiver ADDR`: the simulated API (one organisation, its scripted
/// jobs) and a receiver printing each alert, for a daemon run separately, until SIGTERM or
/// Ctrl-C.
async fn serve(
    api: SocketAddr,
    receiver: SocketAddr,
    mut controls: mpsc::Receiver<Control>,
) -> anyhow::Result<()> {
    let sim = Simulator::start_at(api, DEFAULT_TOKEN)
        .await
        .map_err(|e| anyhow::anyhow!("cannot serve the simulated API on {api}: {e}"))?;
    earlier_jobs(&sim);
    let receiver = WebhookReceiver::start_at_with(
        receiver,
        Some(Box::new(|webhook| print_alert(webhook, None))),
    )
    .await
    .map_err(|e| anyhow::anyhow!("cannot serve the webhook receiver on {receiver}: {e}"))?;
    println!("sdm-watch demo: a simulated SDM API and a webhook receiver, for a daemon you run.");
    println!("  api.base_url = \"{}\"", sim.base_url());
    println!("  api.token    = \"{DEFAULT_TOKEN}\"");
    println!("  webhook url  = \"{}\"", receiver.url("/sdm-watch"));
    println!(
        "Jobs move every {}s; each alert is printed as it arrives.",
        STEP.as_secs()
    );
    let script = tokio::spawn(script((*sim).clone()));
    while let Some(control) = controls.recv().await {
        if matches!(control, Control::Shutdown) {
            break;
        }
    }
    script.abort();
    sim.stop().await;
    receiver.stop().await;
    println!("demo stopped.");
    Ok(())
}

/// globex: an import every few steps, one in three failing.
async fn globex_script(org: SimOrganisation) {
    let mut round = 0u32;
    loop {
        round += 1;
        let import = org.add_job(
            NewJob::new(Status::Running)
                .name(format!("Globex import #{round}"))
                .project(17),
        );
        tokio::time::sleep(STEP * 3).await;
        if round.is_multiple_of(3) {
            org.set_status(&import, Status::Error, Some("Unknown unit 'kgs' in row 12"));
        } else {
            org.set_status(&import, Status::Done, None);
        }
        tokio::time::sleep(STEP * 2).await;
    }
}

/// Jobs appearing and moving through running, done, error and pending, over and over.
async fn script(sim: SimOrganisation) {
    let mut round = 0u32;
    loop {
        round += 1;
        let feed = sim.add_job(
            NewJob::new(Status::Running)
                .name(format!("Supplier feed #{round}"))
                .project(17),
        );
        tokio::time::sleep(STEP).await;
        sim.set_status(&feed, Status::Done, None);
        let prices = sim.add_job(
            NewJob::new(Status::Running)
                .name(format!("Price list #{round}"))
                .project(18),
        );
        tokio::time::sleep(STEP).await;
        sim.set_status(
            &prices,
            Status::Error,
            Some("Column 'sku' missing in row 214"),
        );
        let catalog = sim.add_job(
            NewJob::new(Status::Running)
                .name(format!("Catalogue #{round}"))
                .project(17),
        );
        tokio::time::sleep(STEP).await;
        // Waiting for someone long enough to be reminded of, twice.
        sim.set_status(&catalog, Status::Pending, None);
        tokio::time::sleep(STEP * 4).await;
        sim.set_status(&catalog, Status::Running, None);
        tokio::time::sleep(STEP).await;
        sim.set_status(&catalog, Status::Done, None);
        tokio::time::sleep(STEP).await;
    }
}

/// A digest as received: its counts, then a line per alert.
fn print_digest(id: &str, body: &serde_json::Value, verified: &str) {
    let mut out = std::io::stdout().lock();
    let alerts = body["data"]["alerts"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "\n>>> digest {id} ({} alerts: {}), signature {verified}",
        alerts.len(),
        body["data"]["counts"],
    );
    for alert in alerts {
        let _ = writeln!(
            out,
            "    {} {:?} -> {}",
            alert["type"].as_str().unwrap_or("?"),
            alert["job"]["name"].as_str().unwrap_or("?"),
            alert["job"]["status"].as_str().unwrap_or("?"),
        );
    }
}

/// Prints an alert or digest as received; its signature checked against `key` if given.
fn print_alert(webhook: &ReceivedWebhook, key: Option<&SigningKey>) {
    let id = webhook.header("webhook-id").unwrap_or("?");
    let signed = (
        webhook
            .header("webhook-timestamp")
            .and_then(|t| t.parse::<i64>().ok()),
        webhook.header("webhook-signature"),
    );
    let verified = match (key, signed) {
        (None, _) => "not checked",
        (Some(key), (Some(timestamp), Some(signature)))
            if sign(key, id, timestamp, &webhook.body) == signature =>
        {
            "verified"
        }
        (Some(_), _) => "INVALID",
    };
    let body = webhook.json();
    if body["type"] == "digest" {
        print_digest(id, &body, verified);
        return;
    }
    let job = &body["data"]["job"];
    let data = &body["data"];
    let mut line = format!(
        "[{}] {} {:?} ({}): ",
        data["organisation"].as_str().unwrap_or("?"),
        body["type"].as_str().unwrap_or("?"),
        job["name"].as_str().unwrap_or("?"),
        job["id"].as_str().unwrap_or("?"),
    );
    if let Some(number) = data["reminder"].as_u64() {
        line.push_str(&format!(
            "still pending (reminder {number}, pending since {})",
            data["pending_since"].as_str().unwrap_or("?")
        ));
    } else if let Some(seconds) = data["running_for_seconds"].as_u64() {
        line.push_str(&format!(
            "still running after {seconds} s (since {})",
            data["running_since"].as_str().unwrap_or("?")
        ));
    } else {
        line.push_str(&format!(
            "{} -> {}",
            data["previous_status"].as_str().unwrap_or("(new)"),
            job["status"].as_str().unwrap_or("?"),
        ));
        if let Some(message) = job["message"].as_str() {
            line.push_str(&format!(": {message}"));
        }
    }
    let pretty = serde_json::to_string_pretty(&body).unwrap_or_default();
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "\n>>> {line}\n    webhook-id {id}, signature {}\n{}",
        verified,
        pretty
            .lines()
            .map(|l| format!("    {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// A private directory for the demo's state file, removed at the end.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> std::io::Result<Self> {
        let path = std::env::temp_dir().join(format!(
            "sdm-watch-demo-{}-{}",
            std::process::id(),
            fastrand::u32(..)
        ));
        std::fs::create_dir_all(&path)?;
        Ok(Self(path))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
