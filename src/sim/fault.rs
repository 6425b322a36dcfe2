//! Faults the simulator can inject into its answers, one request at a time.

use std::time::Duration;

/// What goes wrong with one answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status (5xx, 408, ...) and a DRF-style body.
    Status(u16),
    /// 429 with `Retry-After: <seconds>`.
    RateLimited { retry_after_secs: u64 },
    /// Headers promise the full body, half of it is sent, then the connection closes.
    Truncated,
    /// 200 with an HTML body, as a proxy in front of the API might send.
    NotJson,
    /// The connection closes without an answer.
    Drop,
    /// The right answer, after this long.
    Slow(Duration),
    /// `302 Found` to this URL, as a misconfigured proxy or a hostile server might send.
    Redirect(String),
}

impl Fault {
    /// A mix of every kind, for chaos runs; `slow` is how long a slow answer takes.
    pub fn palette(slow: Duration) -> Vec<Fault> {
        vec![
            Fault::Status(500),
            Fault::Status(502),
            Fault::Status(503),
            Fault::RateLimited {
                retry_after_secs: 1,
            },
            Fault::Truncated,
            Fault::NotJson,
            Fault::Drop,
            Fault::Slow(slow),
        ]
    }
}
