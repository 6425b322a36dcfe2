//! Running as a service: logging setup and signals.

pub mod logging;
pub mod signals;
