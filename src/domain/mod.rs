//! The words every other module speaks, and nothing else: a job's status, project and
//! output rows, what an alert is about (an event), the clock and the date formats,
//! `Retry-After`, an error's causes on one line. A leaf: it imports nothing of the crate, so that every module may import it.

pub mod calendar;
pub mod clock;
mod event;
pub mod schedule;
pub mod stats;
mod status;
pub mod text;
pub mod time;

use std::time::Duration;

pub use clock::{Clock, ManualClock, SystemClock};
pub use event::Event;
pub use status::Status;

/// A project id. The API shows integers; a numeric string is accepted too.
pub type ProjectId = i64;

/// The name of the organisation `[api]` describes when the config has no
/// `[[organisation]]` table. Its state keeps the keys it had before organisations existed,
/// so a table with this name takes that state over.
pub const DEFAULT_ORGANISATION: &str = "default";

/// The `User-Agent` of the API client and the webhooks: the version, and which replica
/// sent the request.
pub fn user_agent() -> String {
    format!(
        "sdm-watch/{} (replica {})",
        env!("CARGO_PKG_VERSION"),
        replica_id()
    )
}

/// This process's name among replicas (the lease holder, the claims, the API client's
/// `User-Agent`): the host, the process id and a random part, so that two processes on one
/// host (or one restarted) never pass for each other. The same for the process's life.
pub fn replica_id() -> &'static str {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(new_replica_id)
}

fn new_replica_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "sdm-watch".into());
    let random = uuid::Uuid::now_v7().simple().to_string();
    format!("{host}-{}-{}", std::process::id(), &random[24..])
}

/// One output row: column name to value, with empty columns left out by the API.
pub type Row = serde_json::Map<String, serde_json::Value>;

/// `Retry-After` as seconds or as an HTTP date (RFC 9110): how long from now.
pub fn retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(std::time::SystemTime::now())
            .unwrap_or_default(),
    )
}

/// An error and its causes on one line, the way operators read them in a log.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(retry_after(" 0 "), Some(Duration::ZERO));
        let later = std::time::SystemTime::now() + Duration::from_secs(120);
        let waited = retry_after(&httpdate::fmt_http_date(later)).unwrap();
        assert!(waited > Duration::from_secs(100) && waited <= Duration::from_secs(120));
        let earlier = std::time::SystemTime::now() - Duration::from_secs(120);
        assert_eq!(
            retry_after(&httpdate::fmt_http_date(earlier)),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after("soon"), None);
    }
}
