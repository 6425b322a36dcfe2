//! `[api]`: where the SDM API is, the token, and how hard to use it.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use url::Url;

use super::Secret;
use super::error::{ConfigError, Section};
use super::value::{CaFile, HumanDuration, human, positive, secret, secret_path, secs};

#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RawApi {
    pub base_url: String,
    pub token: Option<Secret>,
    pub token_file: Option<PathBuf>,
    pub timeout: HumanDuration,
    pub ca_file: Option<PathBuf>,
    pub page_size: i64,
    pub max_requests_per_second: f64,
}

impl Default for RawApi {
    fn default() -> Self {
        Self {
            base_url: "https://sdm.akeneo.cloud/api/v1/".into(),
            token: None,
            token_file: None,
            timeout: secs(30),
            ca_file: None,
            page_size: 100,
            max_requests_per_second: 5.0,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct ApiConfig {
    /// Always ends in `/`, so that `jobs/` joins below it.
    pub base_url: Url,
    pub token: Secret,
    /// Where the token came from, if a file: read again when the API refuses the token, so
    /// that a rotated token is used without a restart.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
    #[serde(serialize_with = "human")]
    pub timeout: Duration,
    /// Extra trusted roots for the API's TLS certificate, besides the system's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<CaFile>,
    pub page_size: u32,
    pub max_requests_per_second: f64,
    /// Why the token was not read, when the config was loaded for a command that never
    /// calls the API ([`ApiToken::IfReadable`]); `token` is then a placeholder.
    #[serde(skip)]
    pub token_unread: Option<String>,
}

/// Whether loading the config needs each organisation's API token. Commands that never
/// call the API (`check`, `state`, `alerts`, `healthcheck`, ...) load it `IfReadable`, so
/// that they work from a shell where the token is the service's alone (a systemd
/// credential, a file only root reads).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApiToken {
    Required,
    IfReadable,
}

impl ApiConfig {
    pub(super) fn parse(raw: RawApi, need: ApiToken) -> Result<ApiConfig, ConfigError> {
        Self::parse_in(&Section::new("api"), raw, need)
    }

    /// As [`ApiConfig::parse`], naming the keys of `api` in errors (an organisation's own
    /// keys are named in its table).
    pub(super) fn parse_in(
        api: &Section,
        mut raw: RawApi,
        need: ApiToken,
    ) -> Result<ApiConfig, ConfigError> {
        let (token, token_file, token_unread) = match token(api, &mut raw) {
            Ok((token, file)) => (token, file, None),
            Err(error) if need == ApiToken::IfReadable => {
                (Secret::new("unread"), None, Some(error.to_string()))
            }
            Err(error) => return Err(error),
        };
        let page_size = match u32::try_from(raw.page_size) {
            Ok(n @ 1..=1000) => n,
            _ => {
                return Err(api.invalid(
                    "page_size",
                    format!("must be between 1 and 1000, got {}", raw.page_size),
                ));
            }
        };
        let rate = raw.max_requests_per_second;
        if !(rate > 0.0 && rate <= 10.0) {
            return Err(api.invalid(
                "max_requests_per_second",
                format!("must be above 0 and at most 10 (the API's fair-use limit), got {rate}"),
            ));
        }
        Ok(ApiConfig {
            base_url: base_url(api, &raw.base_url)?,
            token,
            token_file,
            timeout: positive(&api.key("timeout"), raw.timeout.0)?,
            ca_file: raw
                .ca_file
                .map(|path| CaFile::load(&api.key("ca_file"), path))
                .transpose()?,
            page_size,
            max_requests_per_second: rate,
            token_unread,
        })
    }
}

/// The token (trimmed, checked) and the file it came from, if one.
fn token(api: &Section, raw: &mut RawApi) -> Result<(Secret, Option<PathBuf>), ConfigError> {
    let token_file = match &raw.token_file {
        Some(path) => Some(secret_path(&api.key("token_file"), path)?),
        None => None,
    };
    let token =
        secret(&api.key("token"), raw.token.take(), raw.token_file.take())?.ok_or_else(|| {
            api.invalid(
                "token",
                format!(
                    "missing: set {}, {}{}",
                    api.key("token"),
                    api.key("token_file"),
                    if api.key("token") == "api.token" {
                        " or SDM_WATCH_API__TOKEN"
                    } else {
                        ""
                    }
                ),
            )
        })?;
    if token
        .expose()
        .chars()
        .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(api.invalid("token", "contains spaces or control characters"));
    }
    Ok((token, token_file))
}

fn base_url(api: &Section, text: &str) -> Result<Url, ConfigError> {
    let problem = |why: &str| api.invalid("base_url", format!("{text:?} {why}"));
    let mut url = Url::parse(text).map_err(|e| problem(&format!("is not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") || !url.has_host() {
        return Err(problem("is not an http(s) URL"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(problem("must not have a query or fragment"));
    }
    if !url.path().ends_with('/') {
        // Without it, joining "jobs/" would replace the last path segment.
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A host name in Unicode is read in its ASCII form (IDNA), with the backend that
    /// Cargo.toml pins `idna_adapter` to.
    #[test]
    fn a_base_url_with_a_unicode_host_is_read_in_its_ascii_form() {
        let url = base_url(&Section::new("api"), "https://bücher.example/api/v1").unwrap();
        assert_eq!(url.as_str(), "https://xn--bcher-kva.example/api/v1/");
    }
}
