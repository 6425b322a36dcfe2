//! A small HTTP/1.1 server on hyper, shared by the ops endpoints and the simulator: one
//! handler function, connections cut when it stops, slow and surplus connections cut
//! within [`Limits`].

use std::collections::HashMap;
use std::convert::Infallible;
use std::io;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
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

/// What peers may hold of a server: a listener that anyone on the network can reach must
/// not be taken down by slow or silent connections.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// A request's headers must arrive whole within this; the clock also runs while a
    /// kept-alive connection waits for its next request, so an idle one is closed then.
    pub header_read: Duration,
    /// Open connections at most, and from one client address; one more is closed at once.
    pub connections: usize,
    pub per_address: usize,
    /// Told of each connection closed for being over a cap (a metric, a log line).
    pub on_refused: Option<fn(IpAddr)>,
}

impl Limits {
    /// For the simulator and test receivers: generous, never in a test's way.
    pub const LENIENT: Limits = Limits {
        header_read: Duration::from_secs(30),
        connections: 4096,
        per_address: 4096,
        on_refused: None,
    };
}

/// Serves HTTP/1.1 on `listener` with `handler` until the returned [`Running`] is stopped
/// or dropped; stopping also cuts open connections. A handler error drops the connection.
pub fn serve<F, Fut>(listener: TcpListener, handler: F) -> Running
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<Response<Body>, io::Error>> + Send + 'static,
{
    serve_with(listener, None, Limits::LENIENT, handler)
}

/// As [`serve`], over TLS when `tls` is given, within `limits`.
pub fn serve_with<F, Fut>(
    listener: TcpListener,
    tls: Option<TlsServer>,
    limits: Limits,
    handler: F,
) -> Running
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<Response<Body>, io::Error>> + Send + 'static,
{
    let (shutdown, stopped) = watch::channel(false);
    let server = Server {
        tls,
        limits,
        open: Arc::new(Mutex::new(Open::default())),
    };
    let task = tokio::spawn(server.accept(listener, handler, stopped));
    Running {
        shutdown,
        task: Some(task),
    }
}

/// The connections open now, in all and per client address.
#[derive(Default)]
struct Open {
    total: usize,
    by_address: HashMap<IpAddr, usize>,
}

/// A connection counted in [`Open`] until it is dropped.
struct Counted {
    open: Arc<Mutex<Open>>,
    address: IpAddr,
}

impl Drop for Counted {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.total = open.total.saturating_sub(1);
        if let Some(count) = open.by_address.get_mut(&self.address) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.by_address.remove(&self.address);
            }
        }
    }
}

struct Server {
    tls: Option<TlsServer>,
    limits: Limits,
    open: Arc<Mutex<Open>>,
}

impl Server {
    /// Counts a new connection from `address`, or `None` when it is over a cap.
    fn admit(&self, address: IpAddr) -> Option<Counted> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let from_there = open.by_address.get(&address).copied().unwrap_or(0);
        if open.total >= self.limits.connections || from_there >= self.limits.per_address {
            return None;
        }
        open.total += 1;
        open.by_address.insert(address, from_there + 1);
        Some(Counted {
            open: self.open.clone(),
            address,
        })
    }

    async fn accept<F, Fut>(
        self,
        listener: TcpListener,
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
                    let Some(counted) = self.admit(peer.ip()) else {
                        // Closed at once: its descriptor is free again.
                        drop(stream);
                        if let Some(tell) = self.limits.on_refused {
                            tell(peer.ip());
                        }
                        continue;
                    };
                    let tls = self
                        .tls
                        .as_ref()
                        .map(|tls| tls.read().unwrap_or_else(|e| e.into_inner()).clone());
                    let served = serve_connection(stream, peer, tls, self.limits, handler.clone());
                    let mut stop = stopped.clone();
                    connections.spawn(async move {
                        let _counted = counted;
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
}

/// Serves one connection (over TLS with `tls`) until it closes.
async fn serve_connection<F, Fut>(
    stream: tokio::net::TcpStream,
    peer: std::net::SocketAddr,
    tls: Option<Arc<rustls::ServerConfig>>,
    limits: Limits,
    handler: F,
) where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<Response<Body>, io::Error>> + Send + 'static,
{
    // Each request carries the address it came from (`Peer`).
    let service = service_fn(move |mut request: Request<Incoming>| {
        request.extensions_mut().insert(Peer(peer));
        handler(request)
    });
    // Without a timer hyper drops its header-read timeout: a slow client would hold the
    // connection for good.
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read);
    match tls {
        None => {
            let _ = builder
                .serve_connection(TokioIo::new(stream), service)
                .await;
        }
        Some(config) => {
            let acceptor = tokio_rustls::TlsAcceptor::from(config);
            let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream));
            // A client that fails its handshake is simply let go.
            if let Ok(Ok(stream)) = handshake.await {
                let _ = builder
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            }
        }
    }
}

pub fn full(bytes: Bytes) -> Body {
    Full::new(bytes)
        .map_err(|never: Infallible| match never {})
        .boxed()
}
