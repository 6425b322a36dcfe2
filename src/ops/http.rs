//! `/healthz`, `/readyz` and `/metrics` on `http.listen`, and the pages another module
//! serves there (the status page, `/` and `/status.json`).

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::header::HeaderValue;
use hyper::{Request, Response, body::Incoming};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;

use super::auth::{Access, Verdict};
use super::health::Health;
use super::refused::{Refusal, refused};
pub use crate::httpd::TlsServer;
use crate::httpd::{self, Body, Peer, Running, full};

/// A page served on the ops listener.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}

/// A request as the pages see it: who made it (signed in or not), from where, and for a
/// form, its body.
#[derive(Clone, Debug)]
pub struct Visit {
    pub method: String,
    pub path: String,
    /// The signed-in user; `None` when the console has no users (it is read-only then).
    pub user: Option<String>,
    pub peer: IpAddr,
    /// `Origin`, `Sec-Fetch-Site` and `Host`, for telling a request from another site.
    pub origin: Option<String>,
    pub fetch_site: Option<String>,
    pub host: Option<String>,
    /// A POST's body (at most [`MAX_FORM_BYTES`]).
    pub body: Bytes,
}

/// The largest form body read; a larger one is answered 413.
pub const MAX_FORM_BYTES: usize = 16 * 1024;

/// What serves the paths the endpoints here do not: `None` for a path it does not know.
pub type Pages =
    Arc<dyn Fn(Visit) -> Option<Pin<Box<dyn Future<Output = Page> + Send>>> + Send + Sync>;

/// No script, style sheet, font or image from anywhere; inline styles and the page's own
/// inline SVG only; forms post to the console itself. The status page has no script at all.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Binds `listen` and serves the endpoints (over TLS with `tls`) until the returned handle
/// is dropped; with users in `access`, every path it guards needs one of them.
pub async fn start(
    listen: SocketAddr,
    health: Arc<Health>,
    metrics: Option<PrometheusHandle>,
    pages: Option<Pages>,
    access: Arc<Access>,
    tls: Option<TlsServer>,
) -> io::Result<(SocketAddr, Running)> {
    let listener = TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    // Over TLS, browsers are told to keep to HTTPS.
    let hsts = tls.is_some();
    let running = httpd::serve_with(listener, tls, limits(), move |request| {
        let health = health.clone();
        let metrics = metrics.clone();
        let pages = pages.clone();
        let access = access.clone();
        async move {
            let mut answer = async {
                let user = match guard(&access, &request).await {
                    Ok(user) => user,
                    Err(refused) => return refused,
                };
                let path = request.uri().path().to_owned();
                let visit = match visit(request, user).await {
                    Ok(visit) => visit,
                    Err(refused) => return response(refused),
                };
                response(match pages.as_ref().and_then(|pages| pages(visit)) {
                    Some(page) => page.await,
                    None => answer(&path, &health, metrics.as_ref()),
                })
            }
            .await;
            if hsts {
                answer.headers_mut().insert(
                    "strict-transport-security",
                    HeaderValue::from_static("max-age=31536000"),
                );
            }
            Ok(answer)
        }
    });
    Ok((addr, running))
}

/// Open connections at most; fewer when the open-files limit is low, so that half of
/// it stays for the store, the API and the receivers, whatever the listener holds.
const MAX_CONNECTIONS: usize = 256;
/// Open connections from one address at most (the heartbeat, a browser, Prometheus and
/// a load balancer's checks share far fewer); never over a quarter of the total, so that
/// one address cannot hold every connection when the open-files limit is low.
const MAX_PER_ADDRESS: usize = 32;
/// How long a request's headers may take, and a kept-alive connection may stay idle.
const HEADER_READ: Duration = Duration::from_secs(10);
/// How long a form's body may take to arrive.
const BODY_READ: Duration = Duration::from_secs(10);

fn limits() -> httpd::Limits {
    let by_files = super::process::open_files_limit().map_or(MAX_CONNECTIONS, |files| {
        usize::try_from(files.saturating_sub(64) / 2).unwrap_or(MAX_CONNECTIONS)
    });
    let connections = MAX_CONNECTIONS.min(by_files).max(4);
    httpd::Limits {
        header_read: HEADER_READ,
        connections,
        per_address: MAX_PER_ADDRESS.min(connections / 4).max(1),
        on_refused: Some(|address| refused(Refusal::ConnectionRefused, address)),
    }
}

/// The request as pages see it; its body read, up to [`MAX_FORM_BYTES`] (413 beyond) and
/// within [`BODY_READ`] (408 beyond).
async fn visit(request: Request<Incoming>, user: Option<String>) -> Result<Visit, Page> {
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    };
    let (origin, fetch_site, host) = (header("origin"), header("sec-fetch-site"), header("host"));
    let peer = request
        .extensions()
        .get::<Peer>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |peer| peer.0.ip());
    let method = request.method().as_str().to_owned();
    let path = request.uri().path().to_owned();
    let reading = http_body_util::Limited::new(request.into_body(), MAX_FORM_BYTES).collect();
    let body = tokio::time::timeout(BODY_READ, reading)
        .await
        .map_err(|_| Page {
            status: 408,
            content_type: "text/plain; charset=utf-8",
            body: "the request's body came too slowly\n".to_owned(),
        })?
        .map_err(|_| Page {
            status: 413,
            content_type: "text/plain; charset=utf-8",
            body: format!("the request is larger than {MAX_FORM_BYTES} bytes\n"),
        })?
        .to_bytes();
    Ok(Visit {
        method,
        path,
        user,
        peer,
        origin,
        fetch_site,
        host,
        body,
    })
}

/// Who the request is from: the signed-in user (`None` for a console without users or a
/// path left open), or the answer for a request the console's users do not let through:
/// 401 asking for Basic credentials, or 429 for an address that failed too often.
async fn guard(
    access: &Access,
    request: &Request<Incoming>,
) -> Result<Option<String>, Response<Body>> {
    if !access.guards(request.uri().path()) {
        return Ok(None);
    }
    let peer = request
        .extensions()
        .get::<Peer>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |peer| peer.0.ip());
    let authorization = request
        .headers()
        .get("authorization")
        .and_then(|value| value.to_str().ok());
    let text = |status, body: &str| Page {
        status,
        content_type: "text/plain; charset=utf-8",
        body: body.to_owned(),
    };
    match access.judge(peer, authorization).await {
        Verdict::Open => Ok(None),
        Verdict::User(user) => Ok(Some(user)),
        Verdict::Refused { .. } => {
            let mut refused = response(text(401, "sign in: this console needs a user\n"));
            refused.headers_mut().insert(
                "www-authenticate",
                HeaderValue::from_static("Basic realm=\"sdm-watch\", charset=\"UTF-8\""),
            );
            Err(refused)
        }
        Verdict::Limited { retry_after } => {
            let mut limited = response(text(
                429,
                "too many sign-in tries from this address or at this name: try again later\n",
            ));
            if let Ok(value) = HeaderValue::from_str(&retry_after.as_secs().max(1).to_string()) {
                limited.headers_mut().insert("retry-after", value);
            }
            Err(limited)
        }
        Verdict::Busy => {
            let mut busy = response(text(503, "too many sign-ins at once: try again\n"));
            busy.headers_mut()
                .insert("retry-after", HeaderValue::from_static("1"));
            Err(busy)
        }
    }
}

fn answer(path: &str, health: &Health, metrics: Option<&PrometheusHandle>) -> Page {
    let page = |status, content_type, body: String| Page {
        status,
        content_type,
        body,
    };
    match path {
        "/healthz" => page(200, "text/plain", "ok\n".to_owned()),
        "/readyz" => match health.readiness() {
            Ok(()) => page(200, "text/plain", ready(&health.role())),
            Err(reason) => page(503, "text/plain", format!("not ready: {reason}\n")),
        },
        "/metrics" => match metrics {
            Some(handle) => page(
                200,
                "text/plain; version=0.0.4",
                handle.render() + &super::process::exposition(),
            ),
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

/// Every answer, whatever its type, carries the security headers.
fn response(page: Page) -> Response<Body> {
    Response::builder()
        .status(page.status)
        .header("content-type", page.content_type)
        .header("x-content-type-options", "nosniff")
        .header("cache-control", "no-store")
        .header("content-security-policy", CONTENT_SECURITY_POLICY)
        .header("referrer-policy", "no-referrer")
        .header("x-frame-options", "DENY")
        .body(full(Bytes::from(page.body)))
        .unwrap_or_else(|_| Response::new(full(Bytes::new())))
}
