//! What each subcommand does, over the library's modules; `main.rs` only dispatches here.

pub mod check;
pub mod demo;
pub mod healthcheck;
pub mod jobs;
pub mod once;
pub mod run;
pub mod state;
pub mod test_alert;
