//! sdm-watch: watches Akeneo Supplier Data Manager jobs and alerts when they finish, fail
//! or wait for someone.

pub mod backoff; // exponential backoff with jitter, for API calls and deliveries
pub mod commands; // what each subcommand does, over the modules below
pub mod config; // typed configuration: file, environment, secrets, validation
pub mod daemon; // wiring for `run` and `once`
pub mod httpd; // a small HTTP/1.1 server for the ops endpoints and the simulator
pub mod notify; // channels, webhook and e-mail senders, the delivery worker
pub mod ops; // logging, signals, health and metrics endpoints, systemd
pub mod output; // output data of done jobs: download, save, summarise, expire
pub mod rows; // output rows: column union and CSV
pub mod sdm; // the SDM jobs API client
pub mod sim; // a simulated SDM API and webhook receiver for tests, `demo` and benchmarks
pub mod store; // SQLite: tracked jobs and the alert outbox
pub mod watch; // poll cycles and transitions

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
