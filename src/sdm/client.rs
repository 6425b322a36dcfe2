//! The HTTP client for the three jobs endpoints: token auth, pagination that stays on the
//! configured origin, status classification, retries and the rate cap.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use reqwest::Response;
use reqwest::header::{AUTHORIZATION, DATE};
use serde::de::DeserializeOwned;
use time::OffsetDateTime;
use url::{Origin, Url};

use super::answer::{DataBody, classify, transport, undecodable};
use super::model::{JobDetail, ServerClock, job_url};
use super::token::Token;
use super::{ApiError, RateLimiter, RetryPolicy, Retryable, decode};
use crate::config::{ApiConfig, RetryConfig};
use crate::domain::time::format_api_time;
use crate::domain::{ProjectId, Row, Status};
use crate::telemetry::{API_REQUEST_SECONDS, API_REQUESTS};

/// The filters of `GET jobs/`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct JobFilter {
    pub status: Option<Status>,
    pub project: Option<ProjectId>,
    pub created_after: Option<OffsetDateTime>,
    pub created_before: Option<OffsetDateTime>,
}

/// The largest JSON answer (a listing page, a job's detail) read whole.
const MAX_ANSWER_BYTES: usize = 32 * 1024 * 1024;

/// Talks to one SDM organisation. Cheap to clone; clones share the connection pool and
/// the rate cap.
#[derive(Clone, Debug)]
pub struct SdmClient {
    http: reqwest::Client,
    /// Ends in `/`; every request URL is built below it.
    pub(super) base: Url,
    /// Only links on this origin are followed, so the token never leaves for another host.
    pub(super) origin: Origin,
    /// `Token <key>`, marked sensitive so that reqwest never prints it; replaced, across
    /// clones, when `api.token_file` holds a new token after the API refused the old one.
    token: Token,
    page_size: u32,
    /// `api.timeout`, for each JSON request as a whole.
    timeout: Duration,
    pub(super) retry: RetryPolicy,
    limiter: RateLimiter,
    /// Requests sent, retries included, across clones.
    requests: Arc<AtomicU64>,
    /// List rows skipped as unreadable, across clones.
    pub(super) rows_skipped: Arc<AtomicU64>,
    /// How many rows a full page of the list endpoint held (0 until one was read): the
    /// server may cap `page_size` below what was asked.
    pub(super) served_page_size: Arc<AtomicU32>,
    /// The last `Date` header received, across clones.
    server_clock: Arc<std::sync::Mutex<Option<ServerClock>>>,
    /// The organisation's name, the `organisation` label of its requests' metrics.
    organisation: Arc<str>,
    /// The last request's failure, if it failed as an API that does not work does (see
    /// [`ApiError::is_outage`]), across clones: the watchdog reads it while a cycle still
    /// retries.
    last_failure: Arc<std::sync::Mutex<Option<Failure>>>,
}

/// A request that failed: why the watcher is blind, and the error.
#[derive(Clone, Debug, PartialEq)]
pub struct Failure {
    pub reason: &'static str,
    pub error: String,
}

/// HTTP clients (connection pools, TLS roots) shared by the organisations that need the
/// same one: the same `ca_file` and `timeout`. A thousand organisations then hold one
/// pool, not a thousand.
#[derive(Default)]
pub struct HttpClients(
    std::collections::HashMap<(Duration, Option<std::path::PathBuf>), reqwest::Client>,
);

impl SdmClient {
    pub fn new(api: &ApiConfig, retry: &RetryConfig) -> Result<Self, ApiError> {
        Self::sharing(api, retry, &mut HttpClients::default())
    }

    /// As [`SdmClient::new`], taking its HTTP client from `clients` when one fits.
    pub fn sharing(
        api: &ApiConfig,
        retry: &RetryConfig,
        clients: &mut HttpClients,
    ) -> Result<Self, ApiError> {
        let key = (api.timeout, api.ca_file.as_ref().map(|ca| ca.path.clone()));
        let http = match clients.0.get(&key) {
            Some(http) => http.clone(),
            None => {
                let http = http_client(api)?;
                clients.0.insert(key, http.clone());
                http
            }
        };
        Self::with_http(api, retry, http)
    }

    fn with_http(
        api: &ApiConfig,
        retry: &RetryConfig,
        http: reqwest::Client,
    ) -> Result<Self, ApiError> {
        let origin = api.base_url.origin();
        let token = Token::new(api.token.expose(), api.token_file.clone()).ok_or_else(|| {
            ApiError::Rejected {
                endpoint: api.base_url.to_string(),
                status: 0,
                detail: "the token cannot be sent in an HTTP header".into(),
            }
        })?;
        Ok(Self {
            http,
            base: api.base_url.clone(),
            origin,
            token,
            page_size: api.page_size,
            timeout: api.timeout,
            retry: RetryPolicy::new(retry.backoff(), retry.max_elapsed),
            limiter: RateLimiter::new(api.max_requests_per_second),
            requests: Arc::new(AtomicU64::new(0)),
            rows_skipped: Arc::new(AtomicU64::new(0)),
            served_page_size: Arc::new(AtomicU32::new(0)),
            server_clock: Arc::new(std::sync::Mutex::new(None)),
            last_failure: Arc::new(std::sync::Mutex::new(None)),
            organisation: Arc::from(crate::domain::DEFAULT_ORGANISATION),
        })
    }

    /// This client, counting its requests as organisation `name`'s.
    pub fn for_organisation(mut self, name: &str) -> SdmClient {
        self.organisation = Arc::from(name);
        self
    }

    /// A clone (same connections, rate cap and counters) whose calls give up after
    /// `max_elapsed` of retrying: for per-job calls that must not hold up a cycle.
    pub fn with_max_elapsed(&self, max_elapsed: Duration) -> SdmClient {
        SdmClient {
            retry: self.retry.with_max_elapsed(max_elapsed),
            ..self.clone()
        }
    }

    /// Rows in a full page of the list endpoint: `api.page_size`, or less where the
    /// server capped it.
    pub fn effective_page_size(&self) -> u32 {
        match self.served_page_size.load(Ordering::Relaxed) {
            0 => self.page_size,
            served => served.min(self.page_size),
        }
    }

    /// The last `Date` the server sent, if any answer carried one.
    pub fn server_clock(&self) -> Option<ServerClock> {
        *self
            .server_clock
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn base_url(&self) -> &Url {
        &self.base
    }

    /// The page size asked of the list endpoint (`api.page_size`).
    pub fn page_size(&self) -> u32 {
        self.page_size
    }

    /// List rows skipped so far (no usable `id` or `status`) by this client and its clones.
    pub fn rows_skipped(&self) -> u64 {
        self.rows_skipped.load(Ordering::Relaxed)
    }

    /// Requests sent so far by this client and its clones, retries included.
    /// How the last request failed, while the last request failed (see `last_failure`).
    pub fn last_failure(&self) -> Option<Failure> {
        self.last_failure
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    pub fn requests_sent(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// `GET jobs/{id}/`.
    pub async fn job(&self, id: &str) -> Result<JobDetail, ApiError> {
        let url = self.job_url(id, &[]);
        self.retry
            .run("job detail", || async {
                let (endpoint, body) = self.get_body("detail", url.clone()).await?;
                decode::detail(&body).map_err(|reason| undecodable(endpoint, reason, &body))
            })
            .await
    }

    /// `GET jobs/{id}/data/{format_id}/`: a done job's output rows.
    pub async fn job_data(&self, id: &str, format_id: u32) -> Result<Vec<Row>, ApiError> {
        let url = self.job_url(id, &["data", &format_id.to_string()]);
        self.retry
            .run("job data", || self.get_json("data", url.clone()))
            .await
    }

    pub(super) fn list_url(&self, filter: &JobFilter) -> Url {
        let mut url = self.job_url_base();
        {
            let mut query = url.query_pairs_mut();
            if let Some(status) = &filter.status {
                query.append_pair("status", status.as_str());
            }
            if let Some(project) = filter.project {
                query.append_pair("project", &project.to_string());
            }
            if let Some(after) = filter.created_after {
                query.append_pair("created_after", &format_api_time(after));
            }
            if let Some(before) = filter.created_before {
                query.append_pair("created_before", &format_api_time(before));
            }
            query.append_pair("page_size", &self.page_size.to_string());
        }
        url
    }

    fn job_url_base(&self) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().push("jobs").push("");
        }
        url
    }

    fn job_url(&self, id: &str, rest: &[&str]) -> Url {
        job_url(&self.base, id, rest)
    }

    /// Streams a done job's output into `consume`, which may write it wherever it likes;
    /// the download is retried as a whole, so `consume` must start afresh each time.
    pub async fn job_data_with<T, E, F, Fut>(
        &self,
        id: &str,
        format_id: u32,
        consume: F,
    ) -> Result<T, E>
    where
        E: Retryable + From<ApiError>,
        F: Fn(DataBody) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let url = self.job_url(id, &["data", &format_id.to_string()]);
        let consume = &consume;
        let url = &url;
        self.retry
            .run("job data", move || async move {
                let response = self.send("data", url.clone()).await.map_err(E::from)?;
                consume(DataBody {
                    response,
                    endpoint: url.path().to_owned(),
                })
                .await
            })
            .await
    }

    /// One request, no retry, decoded as JSON.
    async fn get_json<T: DeserializeOwned>(
        &self,
        kind: &'static str,
        url: Url,
    ) -> Result<T, ApiError> {
        let (endpoint, body) = self.get_body(kind, url).await?;
        serde_json::from_slice(&body).map_err(|e| undecodable(endpoint, e.to_string(), &body))
    }

    /// One request, no retry: the endpoint's path and the whole body.
    pub(super) async fn get_body(
        &self,
        kind: &'static str,
        url: Url,
    ) -> Result<(String, bytes::Bytes), ApiError> {
        let endpoint = url.path().to_owned();
        let mut response = self.send(kind, url).await?;
        // Read by chunks up to a bound: a listing page or a detail is kilobytes, so an
        // answer past MAX_ANSWER_BYTES is broken (or hostile) and must not exhaust memory.
        let mut body = bytes::BytesMut::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| transport(&endpoint, &e))?
        {
            if body.len().saturating_add(chunk.len()) > MAX_ANSWER_BYTES {
                return Err(ApiError::Undecodable {
                    endpoint,
                    reason: format!(
                        "the answer is over {} MiB, far more than a page of jobs or a job's detail",
                        MAX_ANSWER_BYTES / (1024 * 1024)
                    ),
                });
            }
            body.extend_from_slice(&chunk);
        }
        Ok((endpoint, body.freeze()))
    }

    /// One request (see [`SdmClient::send_once`]); when the API refuses the token and
    /// `api.token_file` now holds another, once more with that one.
    async fn send(&self, kind: &'static str, url: Url) -> Result<Response, ApiError> {
        let sent = match self.send_once(kind, url.clone()).await {
            Err(ApiError::Unauthorized { .. }) if self.token.reload().await => {
                self.send_once(kind, url).await
            }
            other => other,
        };
        let failure = sent
            .as_ref()
            .err()
            .filter(|e| e.is_outage())
            .map(|e| Failure {
                reason: e.outage_reason(),
                error: e.to_string(),
            });
        *self
            .last_failure
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = failure;
        sent
    }

    /// One request: waits for a slot under the rate cap, sends, counts, classifies.
    /// `kind` (list, detail, data) labels the request metric.
    async fn send_once(&self, kind: &'static str, url: Url) -> Result<Response, ApiError> {
        let endpoint = url.path().to_owned();
        self.limiter.acquire().await;
        self.requests.fetch_add(1, Ordering::Relaxed);
        let mut request = self
            .http
            .get(url)
            .header(AUTHORIZATION, self.token.header());
        if kind != "data" {
            request = request.timeout(self.timeout);
        }
        let started = std::time::Instant::now();
        let sent = request.send().await;
        let round_trip = started.elapsed();
        let code = match &sent {
            Ok(response) => response.status().as_u16().to_string(),
            Err(_) => "error".to_owned(),
        };
        tracing::debug!(
            endpoint = kind,
            url = %crate::domain::text::escaped(&endpoint),
            code = %code,
            round_trip_ms = u64::try_from(round_trip.as_millis()).unwrap_or(u64::MAX),
            "API request"
        );
        let org = self.organisation.to_string();
        metrics::histogram!(API_REQUEST_SECONDS, "endpoint" => kind, "code" => code.clone(), "organisation" => org.clone())
            .record(round_trip.as_secs_f64());
        metrics::counter!(API_REQUESTS, "endpoint" => kind, "code" => code, "organisation" => org)
            .increment(1);
        let response = sent.map_err(|e| transport(&endpoint, &e))?;
        self.note_date(&response);
        let result = classify(&self.base, &self.origin, &endpoint, response).await;
        if let Err(ApiError::RateLimited {
            retry_after: Some(wait),
            ..
        }) = &result
        {
            // The server asked this client, not this call, to wait: no request of any
            // kind goes out before then (at most `retry.max_interval`).
            self.limiter.defer(self.retry.cap(*wait)).await;
        }
        result
    }

    fn note_date(&self, response: &Response) {
        let Some(date) = response
            .headers()
            .get(DATE)
            .and_then(|value| value.to_str().ok())
            .and_then(|text| httpdate::parse_http_date(text).ok())
        else {
            return;
        };
        let clock = ServerClock {
            date: OffsetDateTime::from(date),
            received: tokio::time::Instant::now(),
        };
        *self
            .server_clock
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(clock);
    }
}

/// The HTTP client of `api`: its TLS roots and timeouts; redirects stay on the origin the
/// request was sent to (always an API's base origin: the client sends nothing elsewhere),
/// so the token never leaves it.
fn http_client(api: &ApiConfig) -> Result<reqwest::Client, ApiError> {
    let extra = api
        .ca_file
        .as_ref()
        .map_or(&[][..], |ca_file| &ca_file.certificates[..]);
    // api.timeout bounds a whole JSON answer (set per request) but, for output data, only
    // each wait for more bytes: a large download may take longer than one timeout.
    crate::roots::client(extra, |builder| {
        builder
            .user_agent(crate::domain::user_agent())
            .read_timeout(api.timeout)
            .connect_timeout(api.timeout.min(Duration::from_secs(10)))
            .redirect(reqwest::redirect::Policy::custom(|attempt| {
                let first = attempt.previous().first().map(Url::origin);
                if first == Some(attempt.url().origin()) && attempt.previous().len() < 5 {
                    attempt.follow()
                } else {
                    attempt.stop()
                }
            }))
    })
    .map_err(|e| ApiError::Transport {
        endpoint: api.base_url.to_string(),
        reason: format!(
            "cannot build the HTTP client: {}",
            crate::domain::error_chain(&e)
        ),
    })
}
