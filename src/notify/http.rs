//! One POST to a receiver and what its answer means: the channel's timeout, authentication
//! (basic or bearer) and extra headers, then delivered (2xx), worth trying again (a network
//! failure, 408, 429 with its `Retry-After`, 5xx) or refused for good (any other status).
//! Webhooks of every format and the incident tools share it.

use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};

use super::Attempt;
use crate::config::{Auth, WebhookConfig};

/// What a request carries besides the channel's own settings.
pub struct Post<'a> {
    pub url: url::Url,
    pub content_type: &'a str,
    /// Headers of this request (a Standard Webhooks id, timestamp and signature).
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
    /// Reads a refusal's body into its reason, when the receiver says one; `None`: the
    /// status alone says it, and the body is not read.
    pub explain: Option<fn(&str) -> Option<String>>,
}

/// How much of a refusal's body is read for its reason.
const REASON_BYTES: usize = 16 * 1024;

pub async fn post(http: &reqwest::Client, config: &WebhookConfig, post: Post<'_>) -> Attempt {
    let mut request = http
        .post(post.url)
        .timeout(config.timeout)
        .header(CONTENT_TYPE, post.content_type);
    for (name, value) in post.headers {
        request = request.header(name, value);
    }
    match &config.auth {
        Some(Auth::Basic { username, password }) => {
            request = request.basic_auth(username, Some(password.expose()));
        }
        Some(Auth::Bearer(token)) => request = request.bearer_auth(token.expose()),
        None => {}
    }
    for (name, value) in &config.headers {
        request = request.header(name.as_str(), value.as_str());
    }
    let response = match request.body(post.body).send().await {
        Ok(response) => response,
        Err(error) => {
            // Without the URL: webhook URLs often carry a token in their path.
            return Attempt::Retry {
                error: format!(
                    "request failed: {}",
                    crate::domain::error_chain(&error.without_url())
                ),
                retry_after: None,
            };
        }
    };
    let status = response.status();
    if status.is_success() {
        return Attempt::Delivered;
    }
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(crate::domain::retry_after);
    let reason = match post.explain {
        Some(explain) => explain(&head(response).await),
        None => None,
    };
    let error = match reason {
        // The receiver's words, escaped: they reach log lines and `alerts list`.
        Some(reason) => format!(
            "the receiver answered {status}: {}",
            crate::domain::text::escaped(&reason)
        ),
        None => format!("the receiver answered {status}"),
    };
    if status.as_u16() == 408 || status.as_u16() == 429 || status.is_server_error() {
        Attempt::Retry { error, retry_after }
    } else {
        Attempt::Permanent { error }
    }
}

/// The start of a body, at most [`REASON_BYTES`]: a receiver's error page may be huge.
async fn head(mut response: reqwest::Response) -> String {
    let mut bytes = Vec::new();
    while bytes.len() < REASON_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            _ => break,
        }
    }
    bytes.truncate(REASON_BYTES);
    String::from_utf8_lossy(&bytes).into_owned()
}
