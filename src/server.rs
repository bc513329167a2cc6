//! Accepting connections: HTTP/1.1 with keep-alive and HTTP/2 (prior knowledge) on one port,
//! for the proxy listener and the admin listener alike, with four guarantees.
//!
//! - **No connection outstays its welcome** ([`connection`]): one that sends no request within
//!   the header timeout, or sits idle past the idle timeout, is closed.
//! - **Descriptors never run out, and silent clients cannot hoard them** ([`limits`]): each
//!   listener holds at most its cap of connections. Past half the cap the header timeout
//!   shortens; at the cap a new connection waits in a lobby until it speaks ([`lobby`]), then
//!   takes the slot of the oldest one that has sent no request, else of the one idle the
//!   longest ([`occupancy`]). Only while no connection may be closed for it (all busy, or
//!   the silent ones younger than 100 ms) does it wait for a slot; refusing it instead would
//!   turn a short wait into an error for a client that did nothing wrong. The admin port has
//!   its own small cap, the same rules and a header timeout of at most
//!   [`ADMIN_HEADER_TIMEOUT`], so `/healthz` answers whatever the proxy port or other admin
//!   connections do.
//! - **Request bodies fit a memory budget** ([`bodies`]), shared by every connection, and
//!   compressed ones are decoded within it.
//!
//! Browsers' CORS preflights are answered as DynamoDB answers them ([`cors`]).
//! - **A drain loses no request** (a Kubernetes SIGTERM): the listener closes; for a short
//!   reuse window, existing connections keep being served, HTTP/1 answers carry
//!   `Connection: close` and HTTP/2 connections get a GOAWAY, so clients move on after an
//!   answer instead of sending into a connection that is being closed. Then whatever is left
//!   (idle connections) is closed, and in-flight requests get until [`DRAIN_TIMEOUT`].
//!
//! [`bind`] widens an unspecified listen address to IPv4 and IPv6.

mod bind;
pub mod bodies;
mod connection;
pub mod cors;
pub mod limits;
pub mod lobby;
pub mod occupancy;
pub mod workers;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;
use prometheus::{IntCounter, IntGauge};
use tokio::net::TcpListener;
use tokio::sync::{Barrier, OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;

pub use bind::bind;
use connection::{Phase, Timeouts};
use lobby::{Acceptor, Admitted, Lobby};
use occupancy::{Counters, Occupancy};

/// How long in-flight requests get to finish once shutdown starts (Kubernetes' default grace
/// period is 30 s).
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(25);

/// How long a draining listener keeps serving requests on its open connections, each HTTP/1
/// answer saying `Connection: close`. A client sending requests in a loop gets its answer
/// and moves on well within it; only connections idle throughout are closed from our side.
/// It ends early once every connection has closed.
pub const REUSE_WINDOW: Duration = Duration::from_secs(2);

/// The admin port's header timeout at most: a probe or a scrape sends its request as soon as
/// it has connected, and the port's few slots must not wait on silent sockets.
pub const ADMIN_HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// The most often the listener logs that it reached its cap.
const CAP_WARNING_EVERY: Duration = Duration::from_mins(1);

/// One listener's rules: its name in logs and metrics, its cap, its timeouts.
#[derive(Clone, Debug)]
pub struct Settings {
    pub name: &'static str,
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    /// Open connections right now (`globalscale_connections_open{listener}`).
    pub open: IntGauge,
    /// Bytes of an HTTP/1 request head or an HTTP/2 header list; past it, 431 (HTTP/1) or a
    /// stream reset (HTTP/2).
    pub max_header_bytes: usize,
    /// Header fields of an HTTP/1 request.
    pub max_headers: usize,
    /// Connections closed at the cap to make room: silent ones, idle ones.
    pub evicted_silent: IntCounter,
    pub evicted_idle: IntCounter,
    /// Connections closed for sending no request head within the header timeout.
    pub header_timeouts: IntCounter,
}

impl Settings {
    /// The listener's connections, for the runtimes serving it to share.
    fn occupancy(&self) -> Arc<Occupancy> {
        let counters = Counters {
            evicted_silent: self.evicted_silent.clone(),
            evicted_idle: self.evicted_idle.clone(),
            header_timeouts: self.header_timeouts.clone(),
        };
        Arc::new(Occupancy::new(
            self.max_connections,
            self.header_timeout,
            counters,
        ))
    }
}

/// Serves `handler` on `listener` until `shutdown` resolves, then drains open connections.
pub async fn serve<H, F>(
    listener: TcpListener,
    settings: Settings,
    handler: H,
    shutdown: impl Future<Output = ()>,
) where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let shared = Shared {
        slots: Arc::new(Semaphore::new(settings.max_connections)),
        runtimes: 1,
        occupancy: settings.occupancy(),
        closed: Arc::new(Barrier::new(1)),
    };
    serve_with(listener, settings, shared, handler, shutdown).await;
}

/// What the runtimes serving one socket share: its slots, its connections, and the barrier
/// where each waits, its listener closed, for the others.
#[derive(Clone)]
struct Shared {
    slots: Arc<Semaphore>,
    /// How many runtimes serve the socket.
    runtimes: usize,
    occupancy: Arc<Occupancy>,
    closed: Arc<Barrier>,
}

/// [`serve`], with the listener's cap held in `shared.slots`, which several runtimes
/// serving the same socket share, as they share `shared.closed`: each waits there, its
/// listener closed, until every one has closed it, before its drain tells clients to
/// reconnect. A client sent away while another copy still listened would be queued by the
/// kernel and then reset.
async fn serve_with<H, F>(
    listener: TcpListener,
    settings: Settings,
    shared: Shared,
    handler: H,
    shutdown: impl Future<Output = ()>,
) where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let builder = Arc::new(builder(&settings));
    let timeouts = Timeouts {
        header: settings.header_timeout,
        idle: settings.idle_timeout,
    };
    let name = settings.name;
    let (phase, _) = watch::channel(Phase::Serving);
    let mut connections = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    let mut cap_warning = CapWarning::default();
    // Accepting runs beside the loop: at the cap it holds connections it is making room
    // for, which nothing the loop does may drop.
    let (admitted_tx, mut admitted) = tokio::sync::mpsc::channel(1);
    let lobby = Lobby::new(
        shared.runtimes,
        settings.evicted_silent.clone(),
        settings.header_timeouts.clone(),
    );
    let acceptor = Acceptor {
        listener,
        shared: shared.clone(),
        lobby,
    };
    let acceptor = tokio::spawn(acceptor.run(admitted_tx, name));
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(ended) = connections.join_next() => {
                if let Err(e) = ended && e.is_panic() {
                    tracing::error!(listener = name, error = %e, "connection task panicked");
                }
            }
            Some(Admitted { stream, permit, spoke }) = admitted.recv() => {
                let slot = Slot::take(permit, settings.open.clone());
                if shared.slots.available_permits() == 0 {
                    cap_warning.reached(name, settings.max_connections);
                }
                let (builder, handler) = (Arc::clone(&builder), handler.clone());
                let phase = phase.subscribe();
                let ticket = shared.occupancy.join(spoke);
                let conn = connection::serve(stream, builder, handler, phase, timeouts, ticket, name);
                connections.spawn(async move {
                    conn.await;
                    drop(slot);
                });
            }
        }
    }
    // The listener closes with the acceptor, and the lobby with it.
    acceptor.abort();
    let _ = acceptor.await;
    drop(admitted);
    shared.closed.wait().await;
    drain(&phase, connections, name).await;
}

fn builder(settings: &Settings) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // The connection watchdog enforces the header and idle timeouts for both protocols;
    // hyper's HTTP/1 header timeout would also restart between keep-alive requests and cut
    // idle connections at the header timeout instead of the idle timeout.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(None)
        // One buffer and one write per answer instead of a two-part `writev`: the head and a
        // DynamoDB-sized body copied together cost less than the vectored write's extra
        // iovec (in the load rig, five alternating runs: GetItem closed loop +3 % req/s in
        // the median, -1.5 to +4.7 %, and 3-6 % less CPU per request at 1k req/s); a 400 KB
        // body pays one memcpy.
        .writev(false)
        .max_headers(settings.max_headers)
        .max_buf_size(settings.max_header_bytes);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(settings.max_header_bytes).unwrap_or(u32::MAX));
    builder
}

/// The log line that says a listener reached its cap: once a minute at most, since under a
/// flood the listener reaches it many times a second.
#[derive(Default)]
struct CapWarning {
    last: Option<tokio::time::Instant>,
}

impl CapWarning {
    fn reached(&mut self, listener: &'static str, max: usize) {
        if self.last.is_some_and(|at| at.elapsed() < CAP_WARNING_EVERY) {
            return;
        }
        self.last = Some(tokio::time::Instant::now());
        tracing::warn!(
            listener,
            max,
            "connection cap reached; new connections take the slots of silent or idle ones"
        );
    }
}

/// One of the listener's slots, held by a connection for its whole life.
struct Slot {
    _permit: OwnedSemaphorePermit,
    open: IntGauge,
}

impl Slot {
    fn take(permit: OwnedSemaphorePermit, open: IntGauge) -> Self {
        open.inc();
        Self {
            _permit: permit,
            open,
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.open.dec();
    }
}

/// The drain after the listener closed: the reuse window, then closing what is left, then
/// dropping what is still open at [`DRAIN_TIMEOUT`].
async fn drain(phase: &watch::Sender<Phase>, mut connections: JoinSet<()>, name: &'static str) {
    let deadline = tokio::time::Instant::now() + DRAIN_TIMEOUT;
    let open = connections.len();
    phase.send_replace(Phase::Draining);
    tracing::info!(
        listener = name,
        open,
        "draining: answers now close their connection"
    );
    let all_closed = async |connections: &mut JoinSet<()>| {
        while connections.join_next().await.is_some() {}
    };
    if tokio::time::timeout(REUSE_WINDOW, all_closed(&mut connections))
        .await
        .is_ok()
    {
        tracing::info!(listener = name, "drained");
        return;
    }
    phase.send_replace(Phase::Closing);
    tracing::info!(
        listener = name,
        open = connections.len(),
        "reuse window over: closing the remaining connections"
    );
    if tokio::time::timeout_at(deadline, all_closed(&mut connections))
        .await
        .is_ok()
    {
        tracing::info!(listener = name, "drained");
    } else {
        tracing::warn!(
            listener = name,
            open = connections.len(),
            "drain timeout reached; closing remaining connections"
        );
        connections.shutdown().await;
    }
}

#[cfg(test)]
mod tests;
