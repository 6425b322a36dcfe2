//! `/healthz`, `/readyz` and `/metrics` on `http.listen`, and the pages another module
//! serves there (the status page, `/` and `/status.json`).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use hyper::{Request, Response, body::Incoming};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;

use super::health::Health;
use crate::httpd::{self, Body, Running, full};

/// A page served on the ops listener.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}

/// What serves the paths the endpoints here do not: `None` for a path it does not know.
pub type Pages =
    Arc<dyn Fn(&str) -> Option<Pin<Box<dyn Future<Output = Page> + Send>>> + Send + Sync>;

/// No script, style sheet, font or image from anywhere; inline styles and the page's own
/// inline SVG only. The status page has no script at all.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Binds `listen` and serves the endpoints until the returned handle is dropped.
pub async fn start(
    listen: SocketAddr,
    health: Arc<Health>,
    metrics: Option<PrometheusHandle>,
    pages: Option<Pages>,
) -> io::Result<(SocketAddr, Running)> {
    let listener = TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let running = httpd::serve(listener, move |request| {
        let health = health.clone();
        let metrics = metrics.clone();
        let page = pages.as_ref().and_then(|pages| pages(request.uri().path()));
        async move {
            let answer = match page {
                Some(page) => page.await,
                None => answer(&request, &health, metrics.as_ref()),
            };
            Ok(response(answer))
        }
    });
    Ok((addr, running))
}

fn answer(
    request: &Request<Incoming>,
    health: &Health,
    metrics: Option<&PrometheusHandle>,
) -> Page {
    let page = |status, content_type, body: String| Page {
        status,
        content_type,
        body,
    };
    match request.uri().path() {
        "/healthz" => page(200, "text/plain", "ok\n".to_owned()),
        "/readyz" => match health.readiness() {
            Ok(()) => page(200, "text/plain", ready(&health.role())),
            Err(reason) => page(503, "text/plain", format!("not ready: {reason}\n")),
        },
        "/metrics" => match metrics {
            Some(handle) => page(200, "text/plain; version=0.0.4", handle.render()),
            None => page(503, "text/plain", "metrics are not available\n".to_owned()),
        },
        _ => page(
            404,
            "text/plain",
            "not found: try /, /status.json, /healthz, /readyz or /metrics\n".to_owned(),
        ),
    }
}

/// `/readyz`'s body: `ready`, and among replicas which part this one plays.
fn ready(role: &super::health::Role) -> String {
    use super::health::Role;
    match role {
        Role::Alone => "ready\n".to_owned(),
        Role::Leader { replica } => format!("ready: leader ({replica})\n"),
        Role::Standby { replica, leader } => format!(
            "ready: standby ({replica}); leader: {}\n",
            leader.as_deref().unwrap_or("none yet")
        ),
    }
}

fn response(page: Page) -> Response<Body> {
    let mut builder = Response::builder()
        .status(page.status)
        .header("content-type", page.content_type)
        .header("x-content-type-options", "nosniff")
        .header("cache-control", "no-store");
    if page.content_type.starts_with("text/html") {
        builder = builder
            .header("content-security-policy", CONTENT_SECURITY_POLICY)
            .header("referrer-policy", "no-referrer")
            .header("x-frame-options", "DENY");
    }
    builder
        .body(full(Bytes::from(page.body)))
        .unwrap_or_else(|_| Response::new(full(Bytes::new())))
}
