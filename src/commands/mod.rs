//! What each subcommand does, over the library's modules; `main.rs` only dispatches here.

pub mod check;
pub mod jobs;
