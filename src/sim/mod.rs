//! A faithful stand-in for the SDM jobs API on loopback, used by the tests, `demo` and the
//! benchmarks: token auth, filters, pagination, DRF-style errors, scriptable jobs and
//! injectable faults, and a log of every request it received.

mod auth;
mod fault;
mod jobs;
mod org;
pub mod receiver;
mod server;
mod state;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use url::Url;

pub use fault::Fault;
pub use jobs::{Jobs, NewJob};
pub use org::SimOrganisation;
pub use receiver::{ReceivedWebhook, Reply, Service, WebhookReceiver};
pub use state::{Order, RowSource, SimJob, generated_row, sim_time};

use org::Org;

/// The token the simulator accepts unless told otherwise.
pub const DEFAULT_TOKEN: &str = "sim-token-0123456789abcdef";

/// A request as the simulator saw it.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    pub at: Instant,
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    /// Whether it carried the right `Authorization: Token ...` (of any organisation).
    pub authorized: bool,
    /// The organisation whose token it carried, if any.
    pub organisation: Option<String>,
    /// Its `User-Agent`: sdm-watch names its replica there.
    pub user_agent: String,
    /// What was answered; 0 when the connection was dropped instead.
    pub status: u16,
}

impl RecordedRequest {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// Runs after each answer is decided and before it is sent, with the request and the jobs:
/// tests use it to change the listing between the pages a client reads.
pub type RequestHook = Box<dyn FnMut(&RecordedRequest, &mut Jobs<'_>) + Send>;

/// Rewrites each successful JSON answer (path, body) before it is sent: how tests model an
/// API that sends the same data in other shapes.
pub type ShapeHook = Box<dyn FnMut(&str, &mut serde_json::Value) + Send>;

/// Everything the server task and the handle share.
struct Shared {
    /// The organisations served, each with its token and jobs; the first is the one a
    /// simulator starts with.
    orgs: Mutex<Vec<Arc<Org>>>,
    faults: Mutex<FaultPlan>,
    requests: Mutex<Vec<RecordedRequest>>,
    /// A pause between the chunks of a data answer, to make downloads slow.
    data_chunk_delay: Mutex<Option<std::time::Duration>>,
    hook: Mutex<Option<RequestHook>>,
    shape: Mutex<Option<ShapeHook>>,
}

#[derive(Debug, Default)]
struct FaultPlan {
    /// Requests whose path and query contain the first part always get the second, before
    /// any other.
    always: Vec<(String, Fault)>,
    /// Applied to the next requests in order, before any random ones.
    queued: VecDeque<Fault>,
    /// With probability `rate`, a request gets a fault drawn from `palette`.
    rate: f64,
    palette: Vec<Fault>,
    rng: Option<fastrand::Rng>,
    /// When set, only requests whose path and query contain this get faults.
    target: Option<String>,
    /// How many faults were applied, for reports.
    applied: u64,
}

impl FaultPlan {
    /// The fault for a request to `target` (its path and query), if any.
    fn next(&mut self, target: &str) -> Option<Fault> {
        let fault = self.pick(target);
        self.applied += u64::from(fault.is_some());
        fault
    }

    fn pick(&mut self, path: &str) -> Option<Fault> {
        if let Some((_, fault)) = self.always.iter().find(|(part, _)| path.contains(part)) {
            return Some(fault.clone());
        }
        if self
            .target
            .as_deref()
            .is_some_and(|target| !path.contains(target))
        {
            return None;
        }
        if let Some(fault) = self.queued.pop_front() {
            return Some(fault);
        }
        let rng = self.rng.as_mut()?;
        if self.palette.is_empty() || rng.f64() >= self.rate {
            return None;
        }
        Some(self.palette[rng.usize(..self.palette.len())].clone())
    }
}

/// A running simulator. Dropping it stops the server and closes its connections. It
/// dereferences to the organisation it started with (its token, its jobs, its clock).
pub struct Simulator {
    addr: SocketAddr,
    shared: Arc<Shared>,
    first: SimOrganisation,
    server: crate::httpd::Running,
}

impl std::ops::Deref for Simulator {
    type Target = SimOrganisation;

    fn deref(&self) -> &SimOrganisation {
        &self.first
    }
}

impl Simulator {
    /// Starts on `127.0.0.1` on a free port, accepting [`DEFAULT_TOKEN`].
    pub async fn start() -> std::io::Result<Self> {
        Self::start_with_token(DEFAULT_TOKEN).await
    }

    pub async fn start_with_token(token: &str) -> std::io::Result<Self> {
        Self::start_at(SocketAddr::from(([127, 0, 0, 1], 0)), token).await
    }

    /// Starts on `addr` (to bring a stopped simulator back on the same port).
    pub async fn start_at(addr: SocketAddr, token: &str) -> std::io::Result<Self> {
        let first = Arc::new(Org::new("default", token));
        let shared = Arc::new(Shared {
            orgs: Mutex::new(vec![first.clone()]),
            faults: Mutex::new(FaultPlan::default()),
            requests: Mutex::new(Vec::new()),
            data_chunk_delay: Mutex::new(None),
            hook: Mutex::new(None),
            shape: Mutex::new(None),
        });
        let (addr, server) = server::start(addr, shared.clone()).await?;
        Ok(Self {
            addr,
            first: SimOrganisation {
                org: first,
                shared: shared.clone(),
            },
            shared,
            server,
        })
    }

    /// Serves one more organisation, named `name` (in recorded requests), answering to
    /// `token` with jobs and a clock of its own.
    pub fn add_organisation(&self, name: &str, token: &str) -> SimOrganisation {
        let org = Arc::new(Org::new(name, token));
        lock(&self.shared.orgs).push(org.clone());
        SimOrganisation {
            org,
            shared: self.shared.clone(),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT/api/v1/`, the value for `api.base_url`.
    pub fn base_url(&self) -> Url {
        Url::parse(&format!("http://{}/api/v1/", self.addr)).expect("a loopback URL parses")
    }

    /// Runs `hook` after every answer is decided (see [`RequestHook`]); `None` removes it.
    pub fn set_request_hook(&self, hook: Option<RequestHook>) {
        *lock(&self.shared.hook) = hook;
    }

    /// Runs `shape` on every successful JSON answer (see [`ShapeHook`]); `None` removes it.
    pub fn set_shape_hook(&self, shape: Option<ShapeHook>) {
        *lock(&self.shared.shape) = shape;
    }

    /// Every request whose path and query contain `part` gets `fault`, until
    /// [`Simulator::clear_always`].
    pub fn fail_always(&self, part: &str, fault: Fault) {
        lock(&self.shared.faults)
            .always
            .push((part.to_owned(), fault));
    }

    pub fn clear_always(&self) {
        lock(&self.shared.faults).always.clear();
    }

    /// Data answers pause this long between chunks (about 64 KiB each), or not at all.
    pub fn set_data_chunk_delay(&self, delay: Option<std::time::Duration>) {
        *lock(&self.shared.data_chunk_delay) = delay;
    }

    /// Faults (queued or random) go only to requests whose path contains `target`, e.g.
    /// `"/data/"`; `None` for all requests.
    pub fn set_fault_target(&self, target: Option<&str>) {
        lock(&self.shared.faults).target = target.map(str::to_owned);
    }

    /// The next requests get these faults, in order.
    pub fn inject(&self, faults: impl IntoIterator<Item = Fault>) {
        lock(&self.shared.faults).queued.extend(faults);
    }

    /// From now on, each request gets a fault from `palette` with probability `rate`.
    pub fn set_fault_rate(&self, rate: f64, palette: Vec<Fault>, seed: u64) {
        let mut plan = lock(&self.shared.faults);
        plan.rate = rate;
        plan.palette = palette;
        plan.rng = Some(fastrand::Rng::with_seed(seed));
    }

    /// How many answers so far had a fault injected.
    pub fn faults_injected(&self) -> u64 {
        lock(&self.shared.faults).applied
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.requests).clone()
    }

    pub fn clear_requests(&self) {
        lock(&self.shared.requests).clear();
    }

    /// Stops answering: the listener closes and open connections are cut.
    pub async fn stop(self) {
        self.server.stop().await;
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking test thread must not take the simulator down with it.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
