//! Running as a service: logging, signals, health and metrics endpoints, systemd.

pub mod auth;
pub mod health;
pub mod http;
pub mod limiter;
pub mod logging;
pub mod process;
pub mod refused;
pub mod signals;
pub mod systemd;
