//! Attacks leave a trace: every refused sign-in, lock-out, busy answer, refused form and
//! refused connection is counted in `sdm_watch_http_refused_total{reason}`, and logged
//! with its address, at most one line per address a minute (a flood must not flood the
//! journal too).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use tokio::time::Instant;
use tracing::warn;

use crate::telemetry::HTTP_REFUSED;

/// Why a request or a connection was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// A wrong name or password (401).
    SignInFailed,
    /// Too many tries from the address or at the name (429).
    LockedOut,
    /// Too many passwords being checked at once (503).
    Busy,
    /// A form post refused: another site's, a bad, expired or replayed token (403).
    CsrfRefused,
    /// A connection over the listener's caps, closed at once.
    ConnectionRefused,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::SignInFailed => "sign_in_failed",
            Refusal::LockedOut => "locked_out",
            Refusal::Busy => "busy",
            Refusal::CsrfRefused => "csrf_refused",
            Refusal::ConnectionRefused => "connection_refused",
        }
    }
}

/// At most one log line per address per this.
const LOG_EVERY: Duration = Duration::from_secs(60);
/// Addresses remembered for spacing log lines; past it, lines older than a minute go, and
/// while none has, a new address is not logged (it is still counted).
const LOGGED_ADDRESSES: usize = 10_000;

/// Counts `reason` and logs it with `address`, spaced per address.
pub fn refused(reason: Refusal, address: IpAddr) {
    metrics::counter!(HTTP_REFUSED, "reason" => reason.as_str()).increment(1);
    static LOGGED: OnceLock<Mutex<HashMap<IpAddr, Instant>>> = OnceLock::new();
    let mut logged = LOGGED
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if should_log(&mut logged, address, Instant::now()) {
        warn!(%address, reason = reason.as_str(), "refused a request to the console (further refusals from this address are counted, not logged, for a minute)");
    }
}

fn should_log(logged: &mut HashMap<IpAddr, Instant>, address: IpAddr, now: Instant) -> bool {
    if let Some(last) = logged.get(&address)
        && now.saturating_duration_since(*last) < LOG_EVERY
    {
        return false;
    }
    if !logged.contains_key(&address) && logged.len() >= LOGGED_ADDRESSES {
        logged.retain(|_, last| now.saturating_duration_since(*last) < LOG_EVERY);
        if logged.len() >= LOGGED_ADDRESSES {
            return false;
        }
    }
    logged.insert(address, now);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn one_line_per_address_a_minute_and_a_bounded_table() {
        let mut logged = HashMap::new();
        let here: IpAddr = "192.0.2.1".parse().unwrap();
        let there: IpAddr = "192.0.2.2".parse().unwrap();
        let now = Instant::now();
        assert!(should_log(&mut logged, here, now));
        assert!(!should_log(
            &mut logged,
            here,
            now + Duration::from_secs(59)
        ));
        assert!(should_log(&mut logged, there, now));
        assert!(should_log(&mut logged, here, now + LOG_EVERY));
        for n in 0..LOGGED_ADDRESSES as u32 {
            should_log(&mut logged, IpAddr::from((n + 1000).to_be_bytes()), now);
        }
        assert!(logged.len() <= LOGGED_ADDRESSES);
        let fresh: IpAddr = "198.51.100.1".parse().unwrap();
        assert!(!should_log(&mut logged, fresh, now), "full of recent lines");
        assert!(
            should_log(&mut logged, fresh, now + LOG_EVERY),
            "old lines make room"
        );
    }
}
