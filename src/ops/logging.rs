//! Log setup: text or JSON lines on stderr, level from `SDM_WATCH_LOG`, else `RUST_LOG`,
//! else `info`.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber. A bad level directive falls back to `info` with a warning
/// rather than stopping the daemon.
pub fn init(format: LogFormat) {
    let directive = std::env::var("SDM_WATCH_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info".into());
    let (filter, bad_directive) = match EnvFilter::try_new(&directive) {
        Ok(filter) => (filter, None),
        Err(error) => (EnvFilter::new("info"), Some(error)),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours only for a person at a terminal, not for journald or a log file.
        .with_ansi(std::io::stderr().is_terminal());
    let installed = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
    };
    if installed.is_ok()
        && let Some(error) = bad_directive
    {
        tracing::warn!(directive = %directive, error = %error, "ignoring the log level; using info");
    }
}
