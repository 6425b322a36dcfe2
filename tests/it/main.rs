//! One integration-test binary: the SDM simulator for the API, real processes for the CLI.

mod api;
mod chaos;
mod cli;
mod config;
mod crash;
mod detection;
mod differential;
mod disk_full;
mod helpers;
mod ops;
mod outage;
mod output;
mod properties;
mod smtp;
mod tls;
mod watch;
