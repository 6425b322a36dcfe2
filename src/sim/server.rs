//! The simulator's HTTP side: records each request, applies the planned fault, routes the
//! rest to [`super::state`].

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, DATE, HeaderValue};
use hyper::{Request, Response};
use serde_json::json;
use tokio::net::TcpListener;

use super::org::Org;
use super::state::{Answer, RowSource};
use super::{Fault, Jobs, RecordedRequest, Shared, lock};
use crate::httpd::{self, Body, Running, full};

/// Serves the simulated SDM API on `addr` (port 0 for a free one).
pub async fn start(addr: SocketAddr, shared: Arc<Shared>) -> io::Result<(SocketAddr, Running)> {
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let origin = format!("http://{addr}");
    let running = httpd::serve(listener, move |request| {
        answer(shared.clone(), origin.clone(), request)
    });
    Ok((addr, running))
}

async fn answer(
    shared: Arc<Shared>,
    origin: String,
    request: Request<Incoming>,
) -> Result<Response<Body>, io::Error> {
    let at = Instant::now();
    let method = request.method().as_str().to_owned();
    let path = request.uri().path().to_owned();
    let orgs = lock(&shared.orgs).clone();
    if method == "POST" && path == "/api/v1/auth/token/" {
        return token_answer(&orgs, request).await;
    }
    let query = query_of(&request);
    let auth = header(&request, AUTHORIZATION);
    // The organisation whose token the request carries; unknown tokens get the first's
    // clock and hook, and a 401.
    let matched = orgs
        .iter()
        .find(|org| auth == Some(format!("Token {}", lock(&org.token)).as_str()))
        .cloned();
    let authorized = matched.is_some();
    let org = matched.clone().unwrap_or_else(|| orgs[0].clone());
    let has_auth = auth.is_some();
    let user_agent = header(&request, hyper::header::USER_AGENT)
        .unwrap_or_default()
        .to_owned();
    let target = request
        .uri()
        .path_and_query()
        .map_or(path.clone(), |target| target.as_str().to_owned());
    let fault = lock(&shared.faults).next(&target);
    let (mut answer, rows) = match fault.as_ref().and_then(fault_answer) {
        Some(answer) => (answer, None),
        None => match route(&org, &origin, &method, &path, &query, authorized, has_auth) {
            Routed::Json(answer) => (answer, None),
            Routed::Rows(source) => {
                let answer = Answer {
                    status: 200,
                    body: serde_json::Value::Null,
                    headers: Vec::new(),
                };
                (answer, Some(source))
            }
        },
    };
    if answer.status == 200
        && rows.is_none()
        && matches!(fault, None | Some(Fault::Slow(_)))
        && let Some(shape) = lock(&shared.shape).as_mut()
    {
        shape(&path, &mut answer.body);
    }
    let recorded = RecordedRequest {
        at,
        method,
        path,
        query,
        authorized,
        organisation: matched.map(|org| org.name.clone()),
        user_agent,
        status: if fault == Some(Fault::Drop) {
            0
        } else {
            answer.status
        },
    };
    if let Some(hook) = lock(&shared.hook).as_mut() {
        let mut state = lock(&org.state);
        hook(&recorded, &mut Jobs { state: &mut state });
    }
    lock(&shared.requests).push(recorded);
    // The server's clock, which clients may use to place their listing windows.
    let date = httpdate::fmt_http_date(lock(&org.state).now().into());
    // Recorded first, so that a client that gives up on a slow answer still sees it counted.
    if let Some(Fault::Slow(delay)) = &fault {
        tokio::time::sleep(*delay).await;
    }
    let chunk_delay = *lock(&shared.data_chunk_delay);
    send(&answer, fault, rows, &date, chunk_delay)
}

/// `POST auth/token/`: a token for an account's credentials.
async fn token_answer(
    orgs: &[Arc<Org>],
    request: Request<Incoming>,
) -> Result<Response<Body>, io::Error> {
    let body = request
        .into_body()
        .collect()
        .await
        .map_err(io::Error::other)?
        .to_bytes();
    let answer = super::auth::token(orgs, &body);
    let date = httpdate::fmt_http_date(std::time::SystemTime::now());
    respond(&answer, &date, full(Bytes::from(answer.body.to_string())))
}

/// The request's query string, decoded.
fn query_of(request: &Request<Incoming>) -> Vec<(String, String)> {
    request
        .uri()
        .query()
        .map(|query| {
            url::form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default()
}

fn header(request: &Request<Incoming>, name: hyper::header::HeaderName) -> Option<&str> {
    request
        .headers()
        .get(name)
        .and_then(|value| value.to_str().ok())
}

/// The answer a planned fault gives instead of the API's (`None`: the fault is in how
/// the API's answer is sent, or it is dropped).
fn fault_answer(fault: &Fault) -> Option<Answer> {
    match fault {
        Fault::Status(status) => Some(Answer {
            status: *status,
            body: json!({ "detail": "Simulated failure." }),
            headers: Vec::new(),
        }),
        Fault::Redirect(location) => Some(Answer {
            status: 302,
            body: json!({ "detail": "Moved." }),
            headers: vec![("location", location.clone())],
        }),
        Fault::RateLimited { retry_after_secs } => Some(Answer {
            status: 429,
            body: json!({
                "detail": format!("Request was throttled. Expected available in {retry_after_secs} seconds.")
            }),
            headers: vec![("retry-after", retry_after_secs.to_string())],
        }),
        _ => None,
    }
}

/// `answer` sent as `fault` says: whole, streamed rows, cut short, not JSON, or dropped.
fn send(
    answer: &Answer,
    fault: Option<Fault>,
    rows: Option<RowSource>,
    date: &str,
    chunk_delay: Option<Duration>,
) -> Result<Response<Body>, io::Error> {
    match (fault, rows) {
        (Some(Fault::Drop), _) => Err(io::Error::other("simulated dropped connection")),
        (Some(Fault::Truncated), Some(source)) => {
            let fail_after = source.len() / 2;
            respond(
                answer,
                date,
                RowsBody::new(source, chunk_delay, Some(fail_after)).boxed(),
            )
        }
        (Some(Fault::NotJson), _) => Ok(Response::builder()
            .status(200)
            .header(DATE, date)
            .header(CONTENT_TYPE, "text/html")
            .body(full(Bytes::from_static(
                b"<html><body><h1>502 Bad Gateway</h1></body></html>",
            )))
            .map_err(io::Error::other)?),
        (Some(Fault::Truncated), None) => {
            let body = Bytes::from(answer.body.to_string());
            let promised = body.len() as u64;
            let half = body.slice(..body.len() / 2);
            respond(
                answer,
                date,
                Truncated {
                    chunk: Some(half),
                    promised,
                }
                .boxed(),
            )
        }
        (None | Some(Fault::Slow(_)), Some(source)) => respond(
            answer,
            date,
            RowsBody::new(source, chunk_delay, None).boxed(),
        ),
        _ => respond(answer, date, full(Bytes::from(answer.body.to_string()))),
    }
}

/// What a request routes to: a JSON answer, or rows to stream.
enum Routed {
    Json(Answer),
    Rows(RowSource),
}

fn route(
    org: &Org,
    origin: &str,
    method: &str,
    path: &str,
    query: &[(String, String)],
    authorized: bool,
    has_auth: bool,
) -> Routed {
    let unauthorized = |detail: &str| Answer {
        status: 401,
        body: json!({ "detail": detail }),
        headers: vec![("www-authenticate", "Token".to_owned())],
    };
    if !has_auth {
        return Routed::Json(unauthorized(
            "Authentication credentials were not provided.",
        ));
    }
    if !authorized {
        return Routed::Json(unauthorized("Invalid token."));
    }
    let not_found = Answer {
        status: 404,
        body: json!({ "detail": "Not found." }),
        headers: Vec::new(),
    };
    let Some(rest) = path.strip_prefix("/api/v1/") else {
        return Routed::Json(not_found);
    };
    if method != "GET" {
        return Routed::Json(Answer {
            status: 405,
            body: json!({ "detail": format!("Method \"{method}\" not allowed.") }),
            headers: Vec::new(),
        });
    }
    let segments: Vec<&str> = rest.split('/').collect();
    let state = lock(&org.state);
    match segments.as_slice() {
        ["jobs", ""] => Routed::Json(state.list(origin, path, query)),
        ["jobs", id, ""] => Routed::Json(state.detail(id)),
        ["jobs", id, "data", format, ""] if format.parse::<u32>().is_ok() => match state.data(id) {
            Ok(source) => Routed::Rows(source),
            Err(answer) => Routed::Json(answer),
        },
        _ => Routed::Json(not_found),
    }
}

fn respond(answer: &Answer, date: &str, body: Body) -> Result<Response<Body>, io::Error> {
    let mut response = Response::builder()
        .status(answer.status)
        .header(DATE, date)
        .header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    for (name, value) in &answer.headers {
        response = response.header(*name, value);
    }
    response.body(body).map_err(io::Error::other)
}

/// A body that promises `promised` bytes, sends `chunk`, then fails, which makes hyper
/// cut the connection mid-body.
struct Truncated {
    chunk: Option<Bytes>,
    promised: u64,
}

impl hyper::body::Body for Truncated {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        Poll::Ready(Some(match self.chunk.take() {
            Some(chunk) => Ok(Frame::data(chunk)),
            None => Err(io::Error::other("simulated truncated body")),
        }))
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.promised)
    }
}

/// Streams a JSON array of rows in chunks of about 64 KiB, made as they are sent, with an
/// optional pause between chunks and an optional failure after some rows (truncation).
struct RowsBody {
    source: RowSource,
    next: usize,
    opened: bool,
    closed: bool,
    delay: Option<Duration>,
    pause: Option<Pin<Box<tokio::time::Sleep>>>,
    fail_after: Option<usize>,
}

impl RowsBody {
    fn new(source: RowSource, delay: Option<Duration>, fail_after: Option<usize>) -> Self {
        Self {
            source,
            next: 0,
            opened: false,
            closed: false,
            delay,
            pause: None,
            fail_after,
        }
    }
}

impl hyper::body::Body for RowsBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        if self.closed {
            return Poll::Ready(None);
        }
        if let Some(pause) = self.pause.as_mut() {
            if pause.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.pause = None;
        }
        if self.fail_after.is_some_and(|limit| self.next >= limit) && self.opened {
            self.closed = true;
            return Poll::Ready(Some(Err(io::Error::other("simulated truncated body"))));
        }
        let mut chunk = String::with_capacity(70 * 1024);
        if !self.opened {
            chunk.push('[');
            self.opened = true;
        }
        let total = self.source.len();
        while self.next < total && chunk.len() < 64 * 1024 {
            if self.fail_after.is_some_and(|limit| self.next >= limit) {
                break;
            }
            if self.next > 0 {
                chunk.push(',');
            }
            let row = self.source.row(self.next);
            chunk.push_str(&row);
            self.next += 1;
        }
        if self.next >= total {
            chunk.push(']');
            self.closed = true;
        } else if let Some(delay) = self.delay {
            self.pause = Some(Box::pin(tokio::time::sleep(delay)));
        }
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(chunk)))))
    }
}
