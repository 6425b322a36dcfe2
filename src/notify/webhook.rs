//! Webhook delivery, signed per the Standard Webhooks spec: `webhook-id`,
//! `webhook-timestamp` and `webhook-signature: v1,<base64 HMAC-SHA256>`.

use std::time::Duration;

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::format::{self, Rendered};
use super::http::{self, Post};
use super::{Attempt, Message, incident};
use crate::config::{CaFile, SigningKey, WebhookConfig, WebhookFormat};

/// `v1,<signature>` of `<id>.<timestamp>.<body>` with `key`.
pub fn sign(key: &SigningKey, id: &str, timestamp: i64, body: &str) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key.bytes())
        .expect("HMAC takes a key of any length");
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body.as_bytes());
    let signature = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    format!("v1,{signature}")
}

/// Posts alerts to one receiver.
#[derive(Clone, Debug)]
pub struct WebhookSender {
    http: reqwest::Client,
    config: std::sync::Arc<WebhookConfig>,
    /// sdm-watch's status page (`[links] status_page`), which PagerDuty links to.
    status_page: Option<url::Url>,
}

impl WebhookSender {
    pub fn new(
        http: reqwest::Client,
        config: WebhookConfig,
        status_page: Option<url::Url>,
    ) -> Self {
        Self {
            http,
            config: std::sync::Arc::new(config),
            status_page,
        }
    }

    pub fn config(&self) -> &WebhookConfig {
        &self.config
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// One delivery attempt of `message`, in the channel's `format`. A message that
    /// cannot be rendered is not sent at all: the attempt fails for good with the reason.
    pub async fn send(&self, message: &Message) -> Attempt {
        match self.config.format {
            WebhookFormat::Alertmanager => {
                return incident::alertmanager::send(&self.http, &self.config, message).await;
            }
            WebhookFormat::Pagerduty => {
                let status_page = self.status_page.as_ref();
                return incident::pagerduty::send(&self.http, &self.config, status_page, message)
                    .await;
            }
            _ => {}
        }
        let id = message.id();
        let Rendered { content_type, body } = match format::webhook_body(&self.config, message) {
            Ok(rendered) => rendered,
            Err(error) => {
                return Attempt::Permanent {
                    error: error.to_string(),
                };
            }
        };
        let timestamp = time::OffsetDateTime::now_utc().unix_timestamp();
        let mut headers = vec![
            ("webhook-id", id.to_owned()),
            ("webhook-timestamp", timestamp.to_string()),
        ];
        if let Some(key) = &self.config.secret {
            headers.push(("webhook-signature", sign(key, id, timestamp, &body)));
        }
        let post = Post {
            url: self.config.url.clone(),
            content_type: &content_type,
            headers,
            body,
            explain: None,
        };
        http::post(&self.http, &self.config, post).await
    }
}

/// The HTTP client all webhooks share: no redirects (a receiver that moved should be
/// reconfigured, and a POST must not silently turn into a GET). Each channel bounds its
/// own attempts with its `timeout`.
pub fn http_client(ca_file: Option<&CaFile>) -> reqwest::Result<reqwest::Client> {
    let extra = ca_file.map_or(&[][..], |ca_file| &ca_file.certificates[..]);
    crate::roots::client(extra, |builder| {
        builder
            // Which replica posted, as the API client says too.
            .user_agent(crate::domain::user_agent())
            .connect_timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_the_standard_webhooks_test_vector() {
        let key = SigningKey::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(
            sign(
                &key,
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                r#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }
}
