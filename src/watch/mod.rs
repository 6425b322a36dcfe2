//! The watch loop: the scheduler runs poll cycles, the tracker turns what they see into
//! recorded states and queued alerts.

mod scheduler;
pub mod tracker;

pub use scheduler::{CycleError, CycleSummary, WINDOW_MARGIN, WatchSetup, Watcher};
