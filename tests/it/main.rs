//! One integration-test binary: the SDM simulator for the API, real processes for the CLI.

mod api;
mod architecture;
mod chaos;
mod cli;
mod config;
mod console;
mod crash;
mod detection;
mod differential;
mod disk_full;
mod extremes;
mod formats;
mod grouping;
mod noise;
mod ops;
mod organisations;
mod outage;
mod output;
mod properties;
mod replicas;
mod seeded;
mod sharing;
mod store;
mod tls;
mod watch;
mod watchdog;
