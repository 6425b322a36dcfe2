//! The Akeneo SDM jobs API: the client, its data model, and retrying within fair use.
//! Knows nothing of storage or alerts.

mod answer;
mod client;
mod decode;
mod error;
mod model;
mod pages;
mod retry;
mod token;

pub use answer::DataBody;
pub use client::{Failure, HttpClients, JobFilter, SdmClient};
pub use decode::{Skip, detail as decode_detail, page as decode_page, text_of};
pub use error::ApiError;
pub use model::{Job, JobDetail, Page, ServerClock, job_url, last_copies};
pub use pages::Pages;
pub use retry::{RateLimiter, RetryPolicy, Retryable};
