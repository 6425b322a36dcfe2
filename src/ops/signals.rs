//! OS signals become one control stream: SIGTERM/SIGINT stop the daemon, SIGHUP reloads.

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tracing::{info, warn};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    Shutdown,
    Reload,
}

/// Starts listening; the receiver yields a [`Control`] per signal.
pub fn listen() -> mpsc::Receiver<Control> {
    let (sender, receiver) = mpsc::channel(8);
    tokio::spawn(async move {
        let (Ok(mut terminate), Ok(mut hangup)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
        ) else {
            warn!("cannot listen for SIGTERM/SIGHUP; only Ctrl-C will stop sdm-watch");
            let _ = tokio::signal::ctrl_c().await;
            let _ = sender.send(Control::Shutdown).await;
            return;
        };
        loop {
            let control = tokio::select! {
                _ = terminate.recv() => { info!(signal = "SIGTERM", "shutting down"); Control::Shutdown }
                _ = tokio::signal::ctrl_c() => { info!(signal = "SIGINT", "shutting down"); Control::Shutdown }
                _ = hangup.recv() => { info!(signal = "SIGHUP", "reloading the configuration"); Control::Reload }
            };
            if sender.send(control).await.is_err() {
                return;
            }
        }
    });
    receiver
}
