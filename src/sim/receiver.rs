//! A webhook receiver on loopback: records every request, answers as scripted (success,
//! an error status, `Retry-After`, or no answer at all). Used by tests, `demo` and benchmarks.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Request, Response};
use tokio::net::TcpListener;
use tokio::sync::Notify;

use super::lock;
use crate::httpd::{self, Body, Running, full};

/// How the receiver answers one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply {
    Status(u16),
    /// A status with `Retry-After: <seconds>`.
    StatusRetryAfter(u16, u64),
    /// Never answers (the client's timeout decides).
    Hang,
    /// This status, after a pause (a slow receiver).
    After(Duration, u16),
    /// As a chat service's incoming webhook answers: its success (Slack `200 ok`, Teams
    /// `202`, Google Chat `200` with the message, Discord `204`) for a body of its shape,
    /// and its `400` for a body it would refuse.
    Like(Service),
}

/// A chat service whose webhook answers the receiver imitates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    Slack,
    Teams,
    GoogleChat,
    Discord,
    /// PagerDuty's Events API v2: `202` with the `dedup_key` for a valid event, `400`
    /// with `errors` for an invalid one.
    PagerDuty,
}

impl Service {
    /// The status and body the service answers to `body`; a refusal names the problem.
    pub fn answer(self, body: &[u8]) -> (u16, String) {
        let refuse = |problem: &str| (400, problem.to_owned());
        let Ok(message) = serde_json::from_slice::<serde_json::Value>(body) else {
            return refuse("invalid_payload");
        };
        let chars = |value: &serde_json::Value| value.as_str().map_or(0, |s| s.chars().count());
        match self {
            Service::PagerDuty => pagerduty(&message),
            Service::Slack => {
                let blocks = message["blocks"].as_array().cloned().unwrap_or_default();
                if !message["text"].is_string() && blocks.is_empty() {
                    return refuse("no_text");
                }
                let too_long = blocks.iter().any(|block| match block["type"].as_str() {
                    Some("header") => chars(&block["text"]["text"]) > 150,
                    Some("section") => {
                        chars(&block["text"]["text"]) > 3000
                            || block["fields"].as_array().is_some_and(|fields| {
                                fields.len() > 10 || fields.iter().any(|f| chars(&f["text"]) > 2000)
                            })
                    }
                    _ => false,
                });
                if blocks.len() > 50 || too_long {
                    return refuse("invalid_blocks");
                }
                (200, "ok".to_owned())
            }
            Service::Teams => {
                let attachment = &message["attachments"][0];
                if message["type"] != "message"
                    || attachment["contentType"] != "application/vnd.microsoft.card.adaptive"
                    || attachment["content"]["type"] != "AdaptiveCard"
                    || body.len() > 28 * 1024
                {
                    return refuse("Bad Request");
                }
                (202, String::new())
            }
            Service::GoogleChat => {
                if (!message["text"].is_string() && !message["cardsV2"].is_array())
                    || body.len() > 32_000
                    || chars(&message["text"]) > 4096
                {
                    return refuse(
                        "{\"error\": {\"code\": 400, \"status\": \"INVALID_ARGUMENT\"}}",
                    );
                }
                (200, message.to_string())
            }
            Service::Discord => {
                let embeds = message["embeds"].as_array().cloned().unwrap_or_default();
                let embed_total: usize = embeds
                    .iter()
                    .map(|embed| {
                        chars(&embed["title"])
                            + chars(&embed["description"])
                            + chars(&embed["footer"]["text"])
                            + embed["fields"].as_array().map_or(0, |fields| {
                                fields
                                    .iter()
                                    .map(|f| chars(&f["name"]) + chars(&f["value"]))
                                    .sum()
                            })
                    })
                    .sum();
                if chars(&message["content"]) > 2000
                    || embeds.len() > 10
                    || embed_total > 6000
                    || (chars(&message["content"]) == 0 && embeds.is_empty())
                {
                    return refuse("{\"code\": 50035, \"message\": \"Invalid Form Body\"}");
                }
                (204, String::new())
            }
        }
    }
}

/// As the Events API v2 answers `event`, checking what its documentation says it checks.
fn pagerduty(event: &serde_json::Value) -> (u16, String) {
    let chars = |value: &serde_json::Value| value.as_str().map_or(0, |s| s.chars().count());
    let mut errors = Vec::new();
    if chars(&event["routing_key"]) != 32 {
        errors.push("Length of 'routing_key' is incorrect (should be 32 characters)");
    }
    let action = event["event_action"].as_str().unwrap_or_default();
    if !matches!(action, "trigger" | "acknowledge" | "resolve") {
        errors.push("'event_action' is invalid (must be one of: trigger, acknowledge, resolve)");
    }
    if action != "trigger" && chars(&event["dedup_key"]) == 0 {
        errors.push("'dedup_key' is missing and is required");
    }
    if chars(&event["dedup_key"]) > 255 {
        errors.push("'dedup_key' is too long (maximum is 255 characters)");
    }
    if action == "trigger" {
        let payload = &event["payload"];
        if chars(&payload["summary"]) == 0 || chars(&payload["summary"]) > 1024 {
            errors.push("'payload.summary' is missing or longer than 1024 characters");
        }
        if chars(&payload["source"]) == 0 {
            errors.push("'payload.source' is missing or blank");
        }
        let severity = payload["severity"].as_str().unwrap_or_default();
        if !matches!(severity, "critical" | "error" | "warning" | "info") {
            errors.push(
                "'payload.severity' is invalid (must be one of: critical, error, warning, info)",
            );
        }
    }
    if !errors.is_empty() {
        let body = serde_json::json!({
            "status": "invalid event",
            "message": "Event object is invalid",
            "errors": errors,
        });
        return (400, body.to_string());
    }
    let dedup_key = event["dedup_key"]
        .as_str()
        .unwrap_or("generated-by-pagerduty");
    let body = serde_json::json!({
        "status": "success",
        "message": "Event processed",
        "dedup_key": dedup_key,
    });
    (202, body.to_string())
}

/// A request as received.
#[derive(Clone, Debug)]
pub struct ReceivedWebhook {
    pub at: Instant,
    pub path: String,
    /// Lower-case header names.
    pub headers: HashMap<String, String>,
    pub body: String,
    /// The status answered; 0 when the receiver hung.
    pub answered: u16,
}

impl ReceivedWebhook {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

type Callback = Box<dyn Fn(&ReceivedWebhook) + Send + Sync>;

struct Shared {
    received: Mutex<Vec<ReceivedWebhook>>,
    planned: Mutex<VecDeque<Reply>>,
    default: Mutex<Reply>,
    arrived: Notify,
    on_receive: Option<Callback>,
}

pub struct WebhookReceiver {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: Running,
}

impl WebhookReceiver {
    pub async fn start() -> io::Result<Self> {
        Self::start_with(None).await
    }

    /// Starts with `on_receive` called for every request (the demo prints them).
    pub async fn start_with(on_receive: Option<Callback>) -> io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        Self::serve_on(listener, on_receive)
    }

    /// Starts on a given address (to bring a receiver back where it was).
    pub async fn start_at(addr: SocketAddr) -> io::Result<Self> {
        Self::start_at_with(addr, None).await
    }

    /// Starts on `addr` with `on_receive` called for every request (`demo --receiver`).
    pub async fn start_at_with(addr: SocketAddr, on_receive: Option<Callback>) -> io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        Self::serve_on(listener, on_receive)
    }

    fn serve_on(listener: TcpListener, on_receive: Option<Callback>) -> io::Result<Self> {
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            received: Mutex::new(Vec::new()),
            planned: Mutex::new(VecDeque::new()),
            default: Mutex::new(Reply::Status(200)),
            arrived: Notify::new(),
            on_receive,
        });
        let handler_shared = shared.clone();
        let server = httpd::serve(listener, move |request| {
            receive(handler_shared.clone(), request)
        });
        Ok(Self {
            addr,
            shared,
            server,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT<path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The next requests get these replies, in order; then the default.
    pub fn reply_next(&self, replies: impl IntoIterator<Item = Reply>) {
        lock(&self.shared.planned).extend(replies);
    }

    pub fn set_default(&self, reply: Reply) {
        *lock(&self.shared.default) = reply;
    }

    /// Every request so far, failed ones included.
    pub fn received(&self) -> Vec<ReceivedWebhook> {
        lock(&self.shared.received).clone()
    }

    /// The requests answered with 2xx.
    pub fn delivered(&self) -> Vec<ReceivedWebhook> {
        self.received()
            .into_iter()
            .filter(|r| (200..300).contains(&r.answered))
            .collect()
    }

    /// Waits until at least `count` requests were answered with 2xx, or `timeout` passed;
    /// returns them either way.
    pub async fn wait_for_delivered(
        &self,
        count: usize,
        timeout: Duration,
    ) -> Vec<ReceivedWebhook> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let arrived = self.shared.arrived.notified();
            let delivered = self.delivered();
            if delivered.len() >= count {
                return delivered;
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                return self.delivered();
            }
        }
    }

    pub async fn stop(self) {
        self.server.stop().await;
    }
}

async fn receive(
    shared: Arc<Shared>,
    request: Request<Incoming>,
) -> Result<Response<Body>, io::Error> {
    let at = Instant::now();
    let path = request.uri().path().to_owned();
    let headers = request
        .headers()
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = request
        .into_body()
        .collect()
        .await
        .map(|collected| collected.to_bytes())
        .unwrap_or_default();
    let reply = lock(&shared.planned)
        .pop_front()
        .unwrap_or(*lock(&shared.default));
    let received = ReceivedWebhook {
        at,
        path,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
        answered: match reply {
            Reply::Status(status)
            | Reply::StatusRetryAfter(status, _)
            | Reply::After(_, status) => status,
            Reply::Hang => 0,
            Reply::Like(service) => service.answer(&body).0,
        },
    };
    if let Some(callback) = &shared.on_receive {
        callback(&received);
    }
    lock(&shared.received).push(received);
    shared.arrived.notify_waiters();
    let mut answer = Bytes::from_static(b"");
    let (status, retry_after) = match reply {
        Reply::Like(service) => {
            let (status, text) = service.answer(&body);
            answer = Bytes::from(text);
            (status, None)
        }
        Reply::Status(status) => (status, None),
        Reply::StatusRetryAfter(status, seconds) => (status, Some(seconds)),
        Reply::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            (504, None)
        }
        Reply::After(pause, status) => {
            tokio::time::sleep(pause).await;
            (status, None)
        }
    };
    let mut response = Response::builder().status(status);
    if let Some(seconds) = retry_after {
        response = response.header("retry-after", seconds.to_string());
    }
    response.body(full(answer)).map_err(io::Error::other)
}
