//! Running as a service: logging setup.

pub mod logging;
