//! A small HTTP/1.1 server on hyper, shared by the ops endpoints and the simulator: one
//! handler function, connections cut when it stops.

use std::convert::Infallible;
use std::io;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

pub type Body = BoxBody<Bytes, io::Error>;

/// The client's address, in every request's extensions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Peer(pub std::net::SocketAddr);

/// The server task; dropping it stops the server.
pub struct Running {
    shutdown: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl Running {
    pub async fn stop(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

/// The TLS configuration a listener serves with, replaced in place (a certificate renewed
/// and SIGHUP sent): each new connection takes the current one.
pub type TlsServer = Arc<RwLock<Arc<rustls::ServerConfig>>>;

/// How long a client may take over its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves HTTP/1.1 on `listener` with `handler` until the returned [`Running`] is stopped
/// or dropped; stopping also cuts open connections. A handler error drops the connection.
pub fn serve<F, Fut>(listener: TcpListener, handler: F) -> Running
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<Response<Body>, io::Error>> + Send + 'static,
{
    serve_with(listener, None, handler)
}

/// As [`serve`], over TLS when `tls` is given.
pub fn serve_with<F, Fut>(listener: TcpListener, tls: Option<TlsServer>, handler: F) -> Running
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<Response<Body>, io::Error>> + Send + 'static,
{
    let (shutdown, stopped) = watch::channel(false);
    let task = tokio::spawn(accept(listener, tls, handler, stopped));
    Running {
        shutdown,
        task: Some(task),
    }
}

async fn accept<F, Fut>(
    listener: TcpListener,
    tls: Option<TlsServer>,
    handler: F,
    mut stopped: watch::Receiver<bool>,
) where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<Response<Body>, io::Error>> + Send + 'static,
{
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = stopped.changed() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => {
                let Ok((stream, peer)) = accepted else {
                    // Out of file descriptors or similar: give the system a moment.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let handler = handler.clone();
                let mut stop = stopped.clone();
                let tls = tls
                    .as_ref()
                    .map(|tls| tls.read().unwrap_or_else(|e| e.into_inner()).clone());
                connections.spawn(async move {
                    // Each request carries the address it came from (`Peer`).
                    let service = service_fn(move |mut request: Request<Incoming>| {
                        request.extensions_mut().insert(Peer(peer));
                        handler(request)
                    });
                    let served = async move {
                        match tls {
                            None => {
                                let _ = http1::Builder::new()
                                    .serve_connection(TokioIo::new(stream), service)
                                    .await;
                            }
                            Some(config) => {
                                let acceptor = tokio_rustls::TlsAcceptor::from(config);
                                let handshake =
                                    tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream));
                                // A client that fails its handshake is simply let go.
                                if let Ok(Ok(stream)) = handshake.await {
                                    let _ = http1::Builder::new()
                                        .serve_connection(TokioIo::new(stream), service)
                                        .await;
                                }
                            }
                        }
                    };
                    tokio::select! {
                        _ = served => {}
                        _ = stop.changed() => {}
                    }
                });
            }
        }
    }
    connections.shutdown().await;
}

pub fn full(bytes: Bytes) -> Body {
    Full::new(bytes)
        .map_err(|never: Infallible| match never {})
        .boxed()
}
