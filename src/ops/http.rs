//! `/healthz`, `/readyz` and `/metrics` on `http.listen`.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use hyper::{Request, Response, body::Incoming};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;

use super::health::Health;
use crate::httpd::{self, Body, Running, full};

/// Binds `listen` and serves the endpoints until the returned handle is dropped.
pub async fn start(
    listen: SocketAddr,
    health: Arc<Health>,
    metrics: Option<PrometheusHandle>,
) -> io::Result<(SocketAddr, Running)> {
    let listener = TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let running = httpd::serve(listener, move |request| {
        let health = health.clone();
        let metrics = metrics.clone();
        async move { Ok(answer(&request, &health, metrics.as_ref())) }
    });
    Ok((addr, running))
}

fn answer(
    request: &Request<Incoming>,
    health: &Health,
    metrics: Option<&PrometheusHandle>,
) -> Response<Body> {
    let (status, content_type, body) = match request.uri().path() {
        "/healthz" => (200, "text/plain", "ok\n".to_owned()),
        "/readyz" => match health.readiness() {
            Ok(()) => (200, "text/plain", "ready\n".to_owned()),
            Err(reason) => (503, "text/plain", format!("not ready: {reason}\n")),
        },
        "/metrics" => match metrics {
            Some(handle) => (200, "text/plain; version=0.0.4", handle.render()),
            None => (503, "text/plain", "metrics are not available\n".to_owned()),
        },
        _ => (
            404,
            "text/plain",
            "not found: try /healthz, /readyz or /metrics\n".to_owned(),
        ),
    };
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(full(Bytes::from(body)))
        .unwrap_or_else(|_| Response::new(full(Bytes::new())))
}
