//! The Akeneo SDM jobs API: the client, its data model, and retrying within fair use.
//! Knows nothing of storage or alerts.

mod client;
mod error;
mod model;
mod pages;
mod retry;

pub use client::{DataBody, JobFilter, SdmClient};
pub use error::ApiError;
pub use model::{Job, JobDetail, Page, job_url, last_copies};
pub use pages::{Pages, ServerClock};
pub use retry::{RateLimiter, RetryPolicy, Retryable};
