//! sdm-watch's test kit, shared by the integration tests (`tests/it`) and the system
//! benchmark (`benches/system.rs`): a world of the simulated API, a webhook receiver and
//! a real SMTP server ([`World`]); configs pointing at a simulator ([`config`]); the real
//! binary, run once ([`cli`]) or as a daemon ([`Daemon`]); free ports ([`ports`]); who
//! holds the leases among replicas ([`leases`]).

pub mod alertmanager;
pub mod browser;
pub mod cli;
pub mod config;
pub mod console;
mod daemon;
pub mod delivered;
pub mod html;
pub mod leases;
pub mod metrics;
pub mod ports;
pub mod postgres;
pub mod process;
pub mod smtp;
mod world;

pub use daemon::Daemon;

/// An HTTP client for the tests, built as sdm-watch builds its own (`roots::client`: the
/// system's roots and the one TLS provider, which reqwest needs installed first).
pub fn http() -> reqwest::Client {
    http_with(|builder| builder)
}

/// `GET url` as JSON; panics if it does not answer with JSON.
pub async fn get_json(url: impl reqwest::IntoUrl) -> serde_json::Value {
    http()
        .get(url)
        .send()
        .await
        .expect("an answer")
        .json()
        .await
        .expect("a JSON body")
}

/// As [`http`], with `configure`'s settings (a timeout, a local address, a root).
pub fn http_with(
    configure: impl Fn(reqwest::ClientBuilder) -> reqwest::ClientBuilder,
) -> reqwest::Client {
    sdm_watch::roots::client(&[], configure).expect("an HTTP client builds")
}
pub use world::{SECRET, World, parts_on, step, wait_for_requests};
