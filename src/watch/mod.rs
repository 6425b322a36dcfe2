//! The watch loop: what a cycle lists ([`plan`], pure), what the listings mean against the
//! records ([`tracker`], pure), and the cycle that reads, looks up and commits ([`cycle`],
//! with [`lookup`] for particular jobs and [`held`] for alerts that wait for details).

mod cycle;
mod held;
mod lookup;
pub mod plan;
pub mod tracker;

pub use cycle::{CycleError, CycleSummary, WatchSetup, Watcher, last_copies};
