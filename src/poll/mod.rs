//! The watch loop: what a cycle lists ([`plan`], pure), what the listings mean against the
//! records ([`tracker`], pure), and the cycle that reads ([`cycle`]), commits (`commit`),
//! looks up particular jobs (`lookup`) and completes alerts that wait for details
//! (`held`).

mod change;
mod commit;
mod cycle;
mod held;
mod lookup;
pub mod plan;
mod remind;
pub mod tracker;
mod watcher;

pub use cycle::{CycleError, CycleSummary, WatchSetup};
pub use watcher::Watcher;
