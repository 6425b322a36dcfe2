//! A listing read page by page: following `next` on the configured origin only, ending at
//! a page past the end, and telling whether the listing shrank while it was read.

use std::collections::HashSet;
use std::sync::atomic::Ordering;

use tracing::{debug, warn};
use url::Url;

use super::answer::undecodable;
use super::client::{JobFilter, SdmClient};
use super::model::{Job, Page, last_copies};
use super::{ApiError, decode};

/// A listing stops here even if the server keeps offering pages.
const MAX_PAGES: usize = 100_000;

impl SdmClient {
    /// Every job matching `filter`, across all pages. A job that shows up on two pages
    /// (the listing shifted while we read it) is returned once, as last seen.
    pub async fn list_jobs(&self, filter: &JobFilter) -> Result<Vec<Job>, ApiError> {
        let mut jobs: Vec<Job> = Vec::new();
        self.for_each_page(filter, |page| jobs.extend(page)).await?;
        Ok(last_copies(jobs))
    }

    /// Calls `on_page` with each page's jobs, following `next` on our own origin only.
    pub async fn for_each_page(
        &self,
        filter: &JobFilter,
        mut on_page: impl FnMut(Vec<Job>),
    ) -> Result<usize, ApiError> {
        let mut pages = self.pages(filter);
        while let Some(jobs) = pages.next_page().await? {
            on_page(jobs);
        }
        Ok(pages.read())
    }

    /// The listing for `filter`, to be read one page at a time, so that a caller holds
    /// no more than a page however long the listing.
    pub fn pages(&self, filter: &JobFilter) -> Pages<'_> {
        Pages::new(self, self.list_url(filter))
    }
}

/// A listing read page by page; see [`SdmClient::pages`].
pub struct Pages<'a> {
    client: &'a SdmClient,
    /// The page to read next; `None` once the last was read.
    next: Option<Url>,
    visited: HashSet<Url>,
    /// The `count` of the last page read.
    count: Option<u64>,
    /// A page reported a smaller `count` than the one before, or a page past the end
    /// answered 404: jobs left the listing while it was read, so the rows after them moved
    /// up and one may have slipped onto a page already read.
    shrank: bool,
}

impl<'a> Pages<'a> {
    pub(super) fn new(client: &'a SdmClient, first: Url) -> Self {
        Pages {
            client,
            next: Some(first),
            visited: HashSet::new(),
            count: None,
            shrank: false,
        }
    }

    /// The next page's jobs, or `None` after the last page. Follows `next` on the
    /// configured origin only, and refuses a link back to a page already read. A page past
    /// the end (`404`, the listing shrank while it was read) ends the listing.
    pub async fn next_page(&mut self) -> Result<Option<Vec<Job>>, ApiError> {
        let Some(url) = self.next.take() else {
            return Ok(None);
        };
        if self.visited.len() >= MAX_PAGES || !self.visited.insert(url.clone()) {
            return Err(ApiError::Pagination {
                endpoint: url.path().to_owned(),
                reason: format!(
                    "the next link leads back to a page already read, or past {MAX_PAGES} pages"
                ),
            });
        }
        let client = self.client;
        let page: Page = match client
            .retry
            .run("list jobs", || async {
                let (endpoint, body) = client.get_body("list", url.clone()).await?;
                decode::page(&body).map_err(|reason| undecodable(endpoint, reason, &body))
            })
            .await
        {
            Ok(page) => page,
            Err(ApiError::NotFound { detail, .. }) if self.visited.len() > 1 => {
                debug!(url = %url, detail = %detail, "a page past the end: the listing shrank while it was read");
                self.shrank = true;
                return Ok(None);
            }
            Err(error) => return Err(error),
        };
        debug!(url = %url, jobs = page.results.len(), count = ?page.count, "read a page of jobs");
        client
            .rows_skipped
            .fetch_add(u64::from(page.skipped), Ordering::Relaxed);
        if let Some(count) = page.count {
            self.shrank |= self.count.is_some_and(|before| count < before);
            self.count = Some(count);
        }
        if let Some(next) = page.next.filter(|next| !next.is_empty()) {
            let served = page.results.len().saturating_add(page.skipped as usize);
            if served > 0 {
                client
                    .served_page_size
                    .store(u32::try_from(served).unwrap_or(u32::MAX), Ordering::Relaxed);
            }
            let next_url = client.base.join(&next).map_err(|e| ApiError::Pagination {
                endpoint: url.path().to_owned(),
                reason: format!("the next link {next:?} is not a URL ({e})"),
            })?;
            if next_url.origin() != client.origin {
                let error = ApiError::ForeignOrigin {
                    url: next_url.to_string(),
                    origin: client.origin.ascii_serialization(),
                };
                warn!(error = %error, "refused a pagination link");
                return Err(error);
            }
            self.next = Some(next_url);
        }
        Ok(Some(page.results))
    }

    /// Pages read so far.
    pub fn read(&self) -> usize {
        self.visited.len()
    }

    /// Whether jobs left the listing while it was read (see [`Pages::next_page`]): a job
    /// that was in it throughout may have been skipped, and a caller that must see every
    /// one reads the listing again.
    pub fn shrank(&self) -> bool {
        self.shrank
    }
}
