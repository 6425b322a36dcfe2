//! The world a test runs in, and the one step most watch tests take.

use sdm_watch::daemon::Parts;
use sdm_watch::sim::{Simulator, WebhookReceiver};

use crate::config::{config, config_text};
use crate::smtp::SmtpSink;

/// The webhook secret of [`World::standard_channels`]: the Standard Webhooks test vector's.
pub const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// A simulated SDM API, a webhook receiver, a real SMTP server and a directory for state,
/// all on loopback and private to one test.
pub struct World {
    pub sim: Simulator,
    pub hook: WebhookReceiver,
    pub smtp: SmtpSink,
    pub dir: tempfile::TempDir,
}

impl World {
    pub async fn start() -> World {
        World {
            sim: Simulator::start().await.unwrap(),
            hook: WebhookReceiver::start().await.unwrap(),
            smtp: SmtpSink::start(),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// The config file of replicas on the PostgreSQL at `url`: interval 1 s, lease 2 s,
    /// page size 10, the webhook `ops` (timeout 2 s), and `more` (TOML tables).
    pub fn replica_config(&self, url: &str, more: &str) -> std::path::PathBuf {
        let text = config_text(
            &self.sim,
            "page_size = 10",
            &format!(
                "\n[poll]\ninterval = \"1s\"\n[state]\nurl = \"{url}\"\nlease = \"2s\"\n{more}\n\
                 [[webhook]]\nname = \"ops\"\nurl = \"{hook}\"\ntimeout = \"2s\"\n",
                hook = self.hook.url("/ops"),
            ),
        );
        let path = self.dir.path().join("replica.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    /// A webhook `ops` and an e-mail `oncall`, both for every notify_on status.
    pub fn config(&self, poll: &str, max_age: &str, channels: &str) -> String {
        config_text(
            &self.sim,
            "",
            &format!(
                r#"
[poll]
interval = "1s"
{poll}
[state]
path = "{state}"
[delivery]
max_age = "{max_age}"
[smtp]
host = "127.0.0.1"
port = {port}
tls = "none"
from = "sdm-watch <sdm-watch@example.com>"
{channels}
"#,
                state = self.dir.path().join("state.db").display(),
                port = self.smtp.addr.port(),
            ),
        )
    }

    pub fn standard_channels(&self) -> String {
        format!(
            r#"
[[webhook]]
name = "ops"
url = "{}"
secret = "{SECRET}"
headers = {{ "X-Team" = "data" }}

[[email]]
name = "oncall"
to = ["oncall@example.com", "lead@example.com"]
"#,
            self.hook.url("/ops")
        )
    }

    /// One webhook channel, `ops`, on the receiver's `/ops`.
    pub fn ops_hook(&self) -> String {
        format!(
            "[[webhook]]\nname = \"ops\"\nurl = \"{}\"\n",
            self.hook.url("/ops")
        )
    }

    /// [`World::standard_channels`] with an hour's `max_age`.
    pub fn standard(&self) -> String {
        self.config("", "1h", &self.standard_channels())
    }

    pub async fn parts(&self, text: &str) -> Parts {
        Parts::build(config(text))
            .await
            .expect("daemon parts build")
    }
}

/// The daemon's parts for `text`, reading the time from `clock` (a test's manual clock;
/// called again, a restart on the same store).
pub async fn parts_on(text: &str, clock: &sdm_watch::domain::ManualClock) -> Parts {
    Parts::build_with_clock(config(text), std::sync::Arc::new(clock.clone()))
        .await
        .expect("daemon parts build")
}

/// One cycle, then every due delivery.
pub async fn step(parts: &Parts) {
    parts.watcher().cycle().await.expect("cycle succeeds");
    parts
        .worker
        .deliver_due()
        .await
        .expect("deliveries recorded");
}

/// Waits until the simulator has answered `count` requests (a cycle's listings are three),
/// for at most 30 s: how a test knows that a cycle has read the API without sleeping.
pub async fn wait_for_requests(sim: &Simulator, count: usize) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    while sim.requests().len() < count {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the simulator answered {} of {count} requests within 30 s",
            sim.requests().len()
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}
