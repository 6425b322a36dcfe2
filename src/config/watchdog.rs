//! `[watchdog]` and `[heartbeat]`: how the watcher tells that it is blind. The watchdog
//! alerts through the channels when no cycle succeeded for `alert_after`; the heartbeat
//! pings a URL outside the daemon (a dead man's switch) after cycles.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use url::Url;

use super::Secret;
use super::error::{ConfigError, Section};
#[cfg(test)]
use super::value::secs;
use super::value::{HumanDuration, human, human_or_zero, secret};

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RawWatchdog {
    pub alert_after: Option<HumanDuration>,
}

/// `alert_after` when the config does not say: 10 minutes, or two intervals if longer (so
/// that a config with a long `poll.interval` keeps loading).
const DEFAULT_ALERT_AFTER: Duration = Duration::from_secs(600);

#[derive(Clone, Debug, Serialize)]
pub struct WatchdogConfig {
    /// No successful cycle for this long: one `watcher.failing` alert. `None`: never.
    #[serde(serialize_with = "human_or_zero")]
    pub alert_after: Option<Duration>,
}

impl WatchdogConfig {
    /// `interval` is `poll.interval`: an outage must last two cycles before it alerts, so
    /// that one failed cycle (a deploy, a blip) is not an incident.
    pub(super) fn parse(
        raw: RawWatchdog,
        interval: Duration,
    ) -> Result<WatchdogConfig, ConfigError> {
        let watchdog = Section::new("watchdog");
        let Some(HumanDuration(alert_after)) = raw.alert_after else {
            return Ok(WatchdogConfig {
                alert_after: Some(DEFAULT_ALERT_AFTER.max(interval.saturating_mul(2))),
            });
        };
        if alert_after.is_zero() {
            return Ok(WatchdogConfig { alert_after: None });
        }
        if alert_after < interval.saturating_mul(2) {
            return Err(watchdog.invalid(
                "alert_after",
                format!(
                    "must be at least two poll.interval ({}), or \"0s\" for never; got {}",
                    humantime::format_duration(interval.saturating_mul(2)),
                    humantime::format_duration(alert_after)
                ),
            ));
        }
        Ok(WatchdogConfig {
            alert_after: Some(alert_after),
        })
    }
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawHeartbeat {
    pub url: Option<Secret>,
    pub url_file: Option<PathBuf>,
    /// Empty turns it off, as SPEC's example writes it: the one secret an empty string is
    /// allowed for (every other is refused empty, by `check` and by the schema alike).
    #[schemars(with = "Option<String>")]
    pub fail_url: Option<Secret>,
    pub every: Option<HumanDuration>,
}

/// Pings after cycles: the URL is a secret (a Healthchecks.io or Uptime Kuma push URL
/// lets anyone who has it report for this daemon).
#[derive(Clone, Debug, Serialize)]
pub struct HeartbeatConfig {
    pub url: Secret,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fail_url: Option<Secret>,
    /// At most one ping of each kind per this.
    #[serde(serialize_with = "human")]
    pub every: Duration,
}

impl HeartbeatConfig {
    pub(super) fn parse(raw: RawHeartbeat) -> Result<Option<HeartbeatConfig>, ConfigError> {
        let heartbeat = Section::new("heartbeat");
        let Some(url) = secret(&heartbeat.key("url"), raw.url, raw.url_file)? else {
            if raw.fail_url.is_some() || raw.every.is_some() {
                let key = if raw.fail_url.is_some() {
                    "fail_url"
                } else {
                    "every"
                };
                return Err(heartbeat.invalid(
                    key,
                    "needs heartbeat.url (or url_file): there is nothing to ping on success",
                ));
            }
            return Ok(None);
        };
        let url = web_url(&heartbeat, "url", url)?;
        let fail_url = raw
            .fail_url
            .filter(|fail| !fail.expose().trim().is_empty())
            .map(|fail| web_url(&heartbeat, "fail_url", fail))
            .transpose()?;
        let every = raw.every.map_or(Duration::from_secs(60), |every| every.0);
        if every.is_zero() {
            return Err(heartbeat.invalid("every", "must be longer than zero"));
        }
        Ok(Some(HeartbeatConfig {
            url,
            fail_url,
            every,
        }))
    }
}

/// An http(s) URL, checked without ever showing it (it is a secret).
fn web_url(section: &Section, key: &str, value: Secret) -> Result<Secret, ConfigError> {
    let text = value.expose().trim();
    match Url::parse(text) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
            Ok(Secret::new(text))
        }
        Ok(url) => Err(section.invalid(
            key,
            format!("must be an http or https URL, not {}:", url.scheme()),
        )),
        Err(e) => Err(section.invalid(key, format!("is not a URL ({e})"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alert_after_is_at_least_two_intervals_or_never() {
        let parse = |after: u64| {
            WatchdogConfig::parse(
                RawWatchdog {
                    alert_after: Some(secs(after)),
                },
                Duration::from_secs(60),
            )
        };
        let default = |interval: u64| {
            WatchdogConfig::parse(RawWatchdog::default(), Duration::from_secs(interval))
                .unwrap()
                .alert_after
        };
        assert_eq!(default(60), Some(Duration::from_secs(600)));
        assert_eq!(default(3600), Some(Duration::from_secs(7200)));
        assert_eq!(parse(0).unwrap().alert_after, None);
        assert_eq!(
            parse(120).unwrap().alert_after,
            Some(Duration::from_secs(120))
        );
        let error = parse(119).unwrap_err().to_string();
        assert!(error.contains("watchdog.alert_after"), "{error}");
    }

    #[test]
    fn the_heartbeat_needs_a_web_url_and_never_shows_it() {
        let raw = |url: Option<&str>, fail: Option<&str>| RawHeartbeat {
            url: url.map(Secret::new),
            url_file: None,
            fail_url: fail.map(Secret::new),
            every: None,
        };
        assert!(HeartbeatConfig::parse(raw(None, None)).unwrap().is_none());
        let error = HeartbeatConfig::parse(raw(None, Some("https://hc/x/fail")))
            .unwrap_err()
            .to_string();
        assert!(error.contains("heartbeat.fail_url"), "{error}");
        let error = HeartbeatConfig::parse(raw(Some("ftp://secret-token@hc/x"), None))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("heartbeat.url") && !error.contains("secret-token"),
            "{error}"
        );
        let ok = HeartbeatConfig::parse(raw(Some("https://hc-ping.com/uuid"), None))
            .unwrap()
            .unwrap();
        assert_eq!(ok.every, Duration::from_secs(60));
    }
}
