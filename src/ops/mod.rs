//! Running as a service: logging, signals, health and metrics endpoints, systemd.

pub mod auth;
pub mod health;
pub mod http;
pub mod logging;
pub mod signals;
pub mod systemd;
