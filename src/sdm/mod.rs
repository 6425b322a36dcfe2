//! The Akeneo SDM jobs API: the client, its data model, and retrying within fair use.
//! Knows nothing of storage or alerts.

mod client;
mod decode;
mod error;
mod model;
mod pages;
mod retry;

pub use client::{DataBody, JobFilter, SdmClient};
pub use error::ApiError;
pub use decode::{Skip, detail as decode_detail, page as decode_page, text_of};
pub use model::{Job, JobDetail, Page, ServerClock, job_url, last_copies};
pub use pages::Pages;
pub use retry::{RateLimiter, RetryPolicy, Retryable};
