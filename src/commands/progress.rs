//! A progress line on stderr for commands that take a while (`jobs list`, `jobs data`):
//! redrawn in place at most ten times a second while stderr is a terminal, and nothing at
//! all when it is not (a pipe, a file, a cron job's mail).

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

const EVERY: Duration = Duration::from_millis(100);

pub struct Progress {
    shown: bool,
    enabled: bool,
    last: Option<Instant>,
}

impl Progress {
    /// Shows progress when stderr is a terminal.
    pub fn on_stderr() -> Progress {
        Progress {
            shown: false,
            enabled: std::io::stderr().is_terminal(),
            last: None,
        }
    }

    /// Redraws the line with `text()` unless it was drawn less than 100 ms ago.
    pub fn update(&mut self, text: impl FnOnce() -> String) {
        if !self.enabled || self.last.is_some_and(|last| last.elapsed() < EVERY) {
            return;
        }
        self.last = Some(Instant::now());
        self.draw(&text());
    }

    /// Draws the final figures and ends the line.
    pub fn finish(&mut self, text: impl FnOnce() -> String) {
        if self.enabled {
            self.draw(&text());
            let _ = writeln!(std::io::stderr());
            self.shown = false;
        }
    }

    fn draw(&mut self, text: &str) {
        let mut stderr = std::io::stderr().lock();
        // Back to the line's start, the text, and the rest of the old line cleared.
        let _ = write!(stderr, "\r{text}\x1b[K");
        let _ = stderr.flush();
        self.shown = true;
    }
}

impl Drop for Progress {
    /// A line left open (an error cut the work short) is ended, so that the error
    /// message starts on a line of its own.
    fn drop(&mut self) {
        if self.shown {
            let _ = writeln!(std::io::stderr());
        }
    }
}

/// `12.3 MiB`.
pub fn bytes(count: u64) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    if count < 1024 * 1024 {
        format!("{:.1} KiB", count as f64 / 1024.0)
    } else {
        format!("{:.1} MiB", count as f64 / MIB)
    }
}
