//! systemd's notification protocol (`Type=notify`): ready, status, stopping, watchdog.
//! Every call is a no-op when not run by systemd.

use std::time::Duration;

use sd_notify::NotifyState;
use tracing::debug;

pub fn ready() {
    send(&[NotifyState::Ready]);
}

pub fn status(text: &str) {
    send(&[NotifyState::Status(text)]);
}

pub fn stopping() {
    send(&[NotifyState::Stopping]);
}

/// With `WatchdogSec` set, pings systemd at half the period for as long as the runtime
/// runs; a wedged runtime stops the pings and systemd restarts the service.
pub fn spawn_watchdog() {
    let Some(period) = sd_notify::watchdog_enabled() else {
        return;
    };
    let every = (period / 2).max(Duration::from_millis(100));
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(every);
        loop {
            ticker.tick().await;
            send(&[NotifyState::Watchdog]);
        }
    });
}

fn send(states: &[NotifyState<'_>]) {
    if let Err(error) = sd_notify::notify(states) {
        debug!(error = %error, "cannot notify systemd");
    }
}
