//! What can go wrong talking to the SDM API, and which of it is worth retrying.

use std::time::Duration;

/// One failed API call. Messages name the endpoint and the status; they never carry the
/// token (it travels only in a header, which no message includes).
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("the API refused the token ({status} at {endpoint}): {detail}")]
    Unauthorized {
        endpoint: String,
        status: u16,
        detail: String,
    },
    #[error("not found: {endpoint} ({detail})")]
    NotFound { endpoint: String, detail: String },
    #[error("rate limited by the API at {endpoint} (429{})", retry_after.map(|d| format!(", Retry-After {}s", d.as_secs())).unwrap_or_default())]
    RateLimited {
        endpoint: String,
        retry_after: Option<Duration>,
    },
    #[error("the API answered {status} at {endpoint}")]
    Server {
        endpoint: String,
        status: u16,
        retry_after: Option<Duration>,
    },
    #[error("the API rejected the request ({status} at {endpoint}): {detail}")]
    Rejected {
        endpoint: String,
        status: u16,
        detail: String,
    },
    #[error("request to {endpoint} failed: {reason}")]
    Transport { endpoint: String, reason: String },
    #[error("the API's answer from {endpoint} could not be read: {reason}")]
    Undecodable { endpoint: String, reason: String },
    #[error(
        "refused to follow a link to {url}: it is not on the origin of api.base_url ({origin})"
    )]
    ForeignOrigin { url: String, origin: String },
    #[error("pagination from {endpoint} went wrong: {reason}")]
    Pagination { endpoint: String, reason: String },
    #[error("gave up after {attempts} attempts over {}s: {last}", elapsed.as_secs())]
    GaveUp {
        attempts: u32,
        elapsed: Duration,
        /// Named in the message, so not also a `source` (it would print twice).
        last: Box<ApiError>,
    },
}

impl ApiError {
    /// 408, 429, 5xx, transport errors and unreadable bodies are worth another try; a
    /// refused token, a missing job or a bad request will fail the same way again.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ApiError::RateLimited { .. }
                | ApiError::Server { .. }
                | ApiError::Transport { .. }
                | ApiError::Undecodable { .. }
        )
    }

    /// The earliest moment the server allowed us back, if it said.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ApiError::RateLimited { retry_after, .. } | ApiError::Server { retry_after, .. } => {
                *retry_after
            }
            _ => None,
        }
    }

    /// Why a watcher failing with this error is blind, the `reason` of `watcher.failing`.
    pub fn outage_reason(&self) -> &'static str {
        match self.root() {
            ApiError::Unauthorized { .. } => "token_refused",
            ApiError::Transport { .. } => "api_unreachable",
            ApiError::RateLimited { .. } => "rate_limited",
            _ => "api_errors",
        }
    }

    /// Whether the API is failing when a call ends so (a missing job, a request the API
    /// rejects, are answers of an API that works).
    pub fn is_outage(&self) -> bool {
        self.is_retryable() || matches!(self.root(), ApiError::Unauthorized { .. })
    }

    /// The last error behind a `GaveUp`, or this one.
    pub fn root(&self) -> &ApiError {
        match self {
            ApiError::GaveUp { last, .. } => last.root(),
            other => other,
        }
    }
}

impl super::Retryable for ApiError {
    fn is_retryable(&self) -> bool {
        ApiError::is_retryable(self)
    }

    fn retry_after(&self) -> Option<Duration> {
        ApiError::retry_after(self)
    }

    fn gave_up(self, attempts: u32, elapsed: Duration) -> Self {
        ApiError::GaveUp {
            attempts,
            elapsed,
            last: Box::new(self),
        }
    }
}
