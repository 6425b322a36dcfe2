//! The dead man's switch: a GET to `heartbeat.url` after successful cycles (at most one
//! per `heartbeat.every`), to `heartbeat.fail_url` after failed ones, so that a service
//! outside the daemon (Healthchecks.io, an Uptime Kuma push monitor, a plain URL) notices
//! when the pings stop. A ping is sent in the background with a 10 s timeout and never
//! retried (the next ping is the retry): a receiver that is down never delays a cycle.
//! The URLs are secrets: neither they nor errors that would carry them reach the log.

use std::time::Duration;

use tokio::time::Instant;
use tracing::{debug, warn};

use crate::config::HeartbeatConfig;
use crate::telemetry::HEARTBEATS;

const TIMEOUT: Duration = Duration::from_secs(10);

/// When each kind of ping last went out.
#[derive(Default)]
pub struct Heartbeat {
    http: Option<reqwest::Client>,
    last_success: Option<Instant>,
    last_fail: Option<Instant>,
}

impl Heartbeat {
    /// After a cycle: pings `url` (or `fail_url`) unless one went out within `every`; the
    /// ping's task, which `once` waits for before it exits.
    pub fn after_cycle(
        &mut self,
        succeeded: bool,
        config: Option<&HeartbeatConfig>,
    ) -> Option<tokio::task::JoinHandle<()>> {
        let config = config?;
        let (url, last, kind) = if succeeded {
            (Some(&config.url), &mut self.last_success, "success")
        } else {
            (config.fail_url.as_ref(), &mut self.last_fail, "fail")
        };
        let url = url?;
        let now = Instant::now();
        if last.is_some_and(|last| now.duration_since(last) < config.every) {
            return None;
        }
        *last = Some(now);
        if self.http.is_none() {
            let built = crate::roots::client(&[], |builder| {
                builder
                    .user_agent(crate::domain::user_agent())
                    .timeout(TIMEOUT)
            });
            match built {
                Ok(http) => self.http = Some(http),
                Err(error) => {
                    let error = crate::domain::error_chain(&error);
                    warn!(kind, error = %error, "no HTTP client for the heartbeat; the next ping is the retry");
                    return None;
                }
            }
        }
        let http = self.http.clone()?;
        let url = url.expose().to_owned();
        Some(tokio::spawn(async move {
            let outcome = match http.get(&url).send().await {
                Ok(response) if response.status().is_success() => {
                    debug!(kind, "heartbeat ping sent");
                    "ok"
                }
                Ok(response) => {
                    warn!(
                        kind,
                        status = response.status().as_u16(),
                        "the heartbeat receiver refused a ping; the next ping is the retry"
                    );
                    "error"
                }
                Err(error) => {
                    // reqwest names the URL in its errors: it is a secret, so it goes.
                    let error = crate::domain::error_chain(&error.without_url());
                    warn!(kind, error = %error, "a heartbeat ping failed; the next ping is the retry");
                    "error"
                }
            };
            metrics::counter!(HEARTBEATS, "kind" => kind, "outcome" => outcome).increment(1);
        }))
    }
}
