//! What can go wrong fetching a done job's rows, and which of it is worth another try.

use std::path::PathBuf;
use std::time::Duration;

use crate::rows::RowsError;
use crate::sdm::{ApiError, Retryable};

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error(transparent)]
    Api(#[from] ApiError),
    /// What came is not a JSON array of rows (a truncated or odd answer): worth another try.
    #[error("the rows from {endpoint} cannot be read: {source}")]
    Unreadable { endpoint: String, source: RowsError },
    /// The rows came but cannot be kept here (a full disk, permissions): not retried.
    #[error("cannot save the rows to {}: {source}", path.display())]
    Save {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("gave up after {attempts} attempts over {}s: {last}", elapsed.as_secs())]
    GaveUp {
        attempts: u32,
        elapsed: Duration,
        /// Named in the message, so not also a `source` (it would print twice).
        last: Box<OutputError>,
    },
}

impl Retryable for OutputError {
    fn is_retryable(&self) -> bool {
        match self {
            OutputError::Api(error) => error.is_retryable(),
            OutputError::Unreadable { .. } => true,
            OutputError::Save { .. } | OutputError::GaveUp { .. } => false,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            OutputError::Api(error) => error.retry_after(),
            _ => None,
        }
    }

    fn gave_up(self, attempts: u32, elapsed: Duration) -> Self {
        OutputError::GaveUp {
            attempts,
            elapsed,
            last: Box::new(self),
        }
    }
}
