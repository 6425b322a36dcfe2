//! Log setup: text or JSON lines on stderr, level from `SDM_WATCH_LOG`, else `RUST_LOG`,
//! else `info`. One event is one line, whatever its fields hold: a newline or carriage
//! return inside one (a receiver's answer, an API message) is written escaped, so that no
//! text from outside can forge a log line (tracing escapes terminal sequences itself).

use std::io::{IsTerminal, Write};

use tracing_subscriber::Layer as _;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::config::LogFormat;

/// Installs the global subscriber. The level is a directive of targets and levels
/// (`debug`, `info,sdm_watch=debug,hyper=warn`); a bad one falls back to `info` with a
/// warning rather than stopping the daemon.
pub fn init(format: LogFormat) {
    let directive = std::env::var("SDM_WATCH_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info".into());
    let (filter, bad_directive) = match directive.parse::<Targets>() {
        Ok(filter) => (filter, None),
        Err(error) => (Targets::new().with_default(LevelFilter::INFO), Some(error)),
    };
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(|| OneLine(std::io::stderr()))
        // Colours only for a person at a terminal, not for journald or a log file.
        .with_ansi(std::io::stderr().is_terminal());
    let installed = match format {
        LogFormat::Text => tracing_subscriber::registry()
            .with(layer.with_filter(filter))
            .try_init(),
        // The span an event happens in (an organisation's poll loop, a delivery) comes as
        // `span`, so that every line of it names the organisation without each call
        // passing it.
        LogFormat::Json => tracing_subscriber::registry()
            .with(
                layer
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_filter(filter),
            )
            .try_init(),
    };
    if installed.is_ok()
        && let Some(error) = bad_directive
    {
        tracing::warn!(directive = %directive, error = %error, "ignoring the log level; using info");
    }
}

/// Writes each event (formatted whole, then written at once) with every line break but
/// the last escaped.
struct OneLine<W>(W);

impl<W: Write> Write for OneLine<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write_all(&one_line(buf))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

fn one_line(buf: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let body = buf.strip_suffix(b"\n").unwrap_or(buf);
    if !body.iter().any(|b| *b == b'\n' || *b == b'\r') {
        return std::borrow::Cow::Borrowed(buf);
    }
    let mut out = Vec::with_capacity(buf.len() + 8);
    for byte in body {
        match byte {
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            other => out.push(*other),
        }
    }
    if body.len() < buf.len() {
        out.push(b'\n');
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_event_stays_one_line() {
        assert_eq!(&*super::one_line(b"plain\n"), b"plain\n");
        assert_eq!(
            &*super::one_line(b"error=answered 400: x\r\nFAKE ERROR forged\n"),
            b"error=answered 400: x\\r\\nFAKE ERROR forged\n"
        );
    }
}
