//! What an answer of the API means: success, or the [`ApiError`] its status says (one
//! place classifies, as Vector's retry logic does), and the body of a data answer as it
//! arrives.

use reqwest::header::{LOCATION, RETRY_AFTER};
use reqwest::{Response, StatusCode};
use url::{Origin, Url};

use super::ApiError;

/// Success passes through; every other answer becomes the error it means. A redirect is
/// refused, named as foreign when it leads off `origin`.
pub(super) async fn classify(
    base: &Url,
    origin: &Origin,
    endpoint: &str,
    response: Response,
) -> Result<Response, ApiError> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let endpoint = endpoint.to_owned();
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(crate::domain::retry_after);
    if status.is_redirection() {
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|location| base.join(location).ok());
        return Err(match location {
            Some(url) if url.origin() != *origin => ApiError::ForeignOrigin {
                url: url.to_string(),
                origin: origin.ascii_serialization(),
            },
            _ => ApiError::Rejected {
                endpoint,
                status: status.as_u16(),
                detail: "too many redirects".into(),
            },
        });
    }
    let code = status.as_u16();
    let detail = detail(response).await;
    Err(match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => ApiError::Unauthorized {
            endpoint,
            status: code,
            detail,
        },
        StatusCode::NOT_FOUND => ApiError::NotFound { endpoint, detail },
        StatusCode::TOO_MANY_REQUESTS => ApiError::RateLimited {
            endpoint,
            retry_after,
        },
        StatusCode::REQUEST_TIMEOUT => ApiError::Server {
            endpoint,
            status: code,
            retry_after,
        },
        _ if status.is_server_error() => ApiError::Server {
            endpoint,
            status: code,
            retry_after,
        },
        _ => ApiError::Rejected {
            endpoint,
            status: code,
            detail,
        },
    })
}

/// A data answer being received.
pub struct DataBody {
    pub(super) response: Response,
    pub(super) endpoint: String,
}

impl DataBody {
    /// The next piece of the body; `None` at its end.
    pub async fn chunk(&mut self) -> Result<Option<bytes::Bytes>, ApiError> {
        self.response
            .chunk()
            .await
            .map_err(|e| transport(&self.endpoint, &e))
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }
}

/// The `detail` of a DRF error body, else the start of the body; escaped, since it goes
/// into log lines and `watcher.failing`.
async fn detail(response: Response) -> String {
    crate::domain::text::escaped(&raw_detail(response).await).into_owned()
}

async fn raw_detail(response: Response) -> String {
    let body = response.bytes().await.unwrap_or_default();
    #[derive(serde::Deserialize)]
    struct Detail {
        detail: serde_json::Value,
    }
    match serde_json::from_slice::<Detail>(&body) {
        Ok(parsed) => {
            super::decode::text_of(&parsed.detail).unwrap_or_else(|| "no details given".into())
        }
        Err(_) if body.is_empty() => "no details given".into(),
        Err(_) => preview(&body),
    }
}

pub(super) fn transport(endpoint: &str, error: &reqwest::Error) -> ApiError {
    let reason = if error.is_timeout() {
        format!("timed out ({})", crate::domain::error_chain(error))
    } else {
        crate::domain::error_chain(error)
    };
    ApiError::Transport {
        endpoint: endpoint.to_owned(),
        reason,
    }
}

/// An answer that is not the shape expected: transient (the next answer may be right).
pub(super) fn undecodable(
    endpoint: String,
    reason: impl std::fmt::Display,
    body: &[u8],
) -> ApiError {
    ApiError::Undecodable {
        endpoint,
        reason: format!("{reason} (body starts {:?})", preview(body)),
    }
}

fn preview(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(120)]);
    text.into_owned()
}
