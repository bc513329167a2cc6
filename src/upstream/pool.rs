//! Keep-alive connections to the regions, one set per proxy worker, driven by hyper's
//! connection-level HTTP/1 client.
//!
//! hyper-util's pooled client (`client::legacy`) did the same job at about a twentieth of
//! the CPU of a GetItem: per request it hashed the pool key (the authority one byte at a
//! time through SipHash, some fifty hash writes), raced a pool checkout against a lazily
//! built connect future, and wrapped the connection to return it on drop. Here a worker's
//! idle connections sit in a short list per endpoint (a sidecar talks to a handful), and a
//! request takes the last one put back.
//!
//! What the pooled client also did, and this keeps: a connection found closed when a
//! request is handed to it (the region closed it while idle) gives the request back unsent
//! (`try_send_request`), and the request goes on a fresh connection, so a region's idle
//! timeout never turns into an error or an ambiguous write; idle connections older than
//! the idle timeout (`[upstream] idle_timeout_ms`) are not reused; at most [`MAX_IDLE`] wait
//! per endpoint.
//!
//! And what it did not: a sweep in the background closes connections idle past the idle
//! timeout even when no request comes to find them, so a quiet worker does not hold
//! descriptors (and the regions' connection slots) for connections it will never reuse.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::HOST;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderValue, Request, Response, Uri};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::client::legacy::connect::HttpConnector;
use tower_service::Service;

use super::UpstreamError;
use crate::error::Chain;

/// How often the sweep looks at most, and at least: a connection outlives its idle timeout
/// by at most one period.
const SWEEP_PERIOD: (Duration, Duration) = (Duration::from_millis(50), Duration::from_secs(5));

/// Idle connections the sweeps have closed, in every pool of the process.
static SWEPT: AtomicU64 = AtomicU64::new(0);

/// Idle connections to regions closed by the background sweep since start.
pub(super) fn swept() -> u64 {
    SWEPT.load(Ordering::Relaxed)
}

/// The most idle connections kept per endpoint and worker.
const MAX_IDLE: usize = 64;

type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

/// One connection's sending half, with when it was last put back.
struct Idle {
    sender: SendRequest<Full<Bytes>>,
    since: Instant,
}

/// Where a connection goes: what the pool is keyed on.
type Origin = (Scheme, Authority);

/// The idle connections of one endpoint.
struct Endpoint {
    origin: Origin,
    idle: Vec<Idle>,
}

/// One worker's connections (the pool of [`super::Upstream`] has one per worker, and one
/// for the main runtime).
pub(super) struct Pool {
    connector: Connector,
    /// Shared with the sweep, which holds it weakly: dropping the pool ends the sweep.
    endpoints: Arc<Mutex<Vec<Endpoint>>>,
    idle_timeout: Duration,
    /// The sweep runs on the runtime of the first connection put back: the one whose
    /// tasks serve this pool's connections.
    sweeping: AtomicBool,
}

impl Pool {
    pub(super) fn new(connector: Connector, idle_timeout: Duration) -> Self {
        Self {
            connector,
            endpoints: Arc::new(Mutex::new(Vec::new())),
            idle_timeout,
            sweeping: AtomicBool::new(false),
        }
    }

    /// Sends `request` (whose URI is absolute: the region's endpoint) on an idle
    /// connection to its endpoint, or a new one, and returns the answer's head and body.
    /// The connection goes back to the pool once the caller has read the body and calls
    /// [`Pool::put_back`] with the returned sender.
    pub(super) async fn send(
        &self,
        request: Request<Full<Bytes>>,
    ) -> Result<(Response<Incoming>, Returned), UpstreamError> {
        let origin = origin(request.uri())?;
        let mut request = origin_form(request, &origin.1);
        loop {
            let (mut sender, reused) = match self.take(&origin) {
                Some(sender) => (sender, true),
                None => (self.connect(&origin).await?, false),
            };
            if let Err(error) = sender.ready().await {
                // Closed before anything was handed to it: a reused one may have been
                // closed by the region while idle; a new one has no excuse.
                if reused {
                    continue;
                }
                return Err(UpstreamError::connect(error));
            }
            match sender.try_send_request(request).await {
                Ok(response) => {
                    return Ok((response, Returned { sender, origin }));
                }
                Err(mut error) => match error.take_message() {
                    // Never written: the connection closed under it.
                    Some(unsent) if reused => request = unsent,
                    Some(_) => {
                        return Err(UpstreamError::connect(error.into_error()));
                    }
                    None => {
                        return Err(UpstreamError::transport(error.into_error()));
                    }
                },
            }
        }
    }

    /// Puts a connection whose answer has been read in full back for the next request.
    pub(super) fn put_back(&self, returned: Returned) {
        if returned.sender.is_closed() {
            return;
        }
        let mut endpoints = self
            .endpoints
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let at = endpoints
            .iter()
            .position(|e| e.origin == returned.origin)
            .unwrap_or_else(|| {
                endpoints.push(Endpoint {
                    origin: returned.origin,
                    idle: Vec::new(),
                });
                endpoints.len() - 1
            });
        let endpoint = &mut endpoints[at];
        if endpoint.idle.len() < MAX_IDLE {
            endpoint.idle.push(Idle {
                sender: returned.sender,
                since: Instant::now(),
            });
        }
        drop(endpoints);
        self.start_sweep();
    }

    /// Starts the background sweep once, on this thread's runtime.
    fn start_sweep(&self) {
        if self.sweeping.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.sweeping.store(false, Ordering::Release);
            return;
        };
        let period = (self.idle_timeout / 2).clamp(SWEEP_PERIOD.0, SWEEP_PERIOD.1);
        runtime.spawn(sweep(
            Arc::downgrade(&self.endpoints),
            self.idle_timeout,
            period,
        ));
    }

    /// The most recently returned idle connection to the endpoint that is still open and
    /// young enough; older or closed ones met on the way are dropped (which closes them).
    fn take(&self, origin: &Origin) -> Option<SendRequest<Full<Bytes>>> {
        let mut endpoints = self
            .endpoints
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let endpoint = endpoints.iter_mut().find(|e| e.origin == *origin)?;
        while let Some(idle) = endpoint.idle.pop() {
            if idle.since.elapsed() < self.idle_timeout && !idle.sender.is_closed() {
                return Some(idle.sender);
            }
        }
        None
    }

    /// A new connection to the endpoint, its task spawned on this thread's runtime (a
    /// worker's connections are served by the worker).
    async fn connect(
        &self,
        (scheme, authority): &Origin,
    ) -> Result<SendRequest<Full<Bytes>>, UpstreamError> {
        let uri = Uri::builder()
            .scheme(scheme.clone())
            .authority(authority.clone())
            .path_and_query("/")
            .build()
            .map_err(UpstreamError::connect)?;
        let stream = self
            .connector
            .clone()
            .call(uri)
            .await
            .map_err(UpstreamError::connect)?;
        // Flattened writes, as the server's (`server::builder` says why); over TLS, rustls
        // copies every write into its records anyway.
        let (sender, connection) = http1::Builder::new()
            .writev(false)
            .handshake(stream)
            .await
            .map_err(UpstreamError::connect)?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(error = %Chain::for_log(&error), "upstream connection ended");
            }
        });
        Ok(sender)
    }
}

/// Every `period`, closes the idle connections older than `idle_timeout` (dropping a
/// sender closes its connection once nothing is in flight on it), until the pool is gone.
async fn sweep(endpoints: Weak<Mutex<Vec<Endpoint>>>, idle_timeout: Duration, period: Duration) {
    loop {
        tokio::time::sleep(period).await;
        let Some(endpoints) = endpoints.upgrade() else {
            return;
        };
        let closed = close_expired(&endpoints, idle_timeout, Instant::now());
        if closed > 0 {
            SWEPT.fetch_add(closed, Ordering::Relaxed);
            tracing::debug!(closed, "idle upstream connections closed");
        }
    }
}

/// Drops the idle connections older than `idle_timeout` as of `now`, and those already
/// closed; returns how many.
fn close_expired(endpoints: &Mutex<Vec<Endpoint>>, idle_timeout: Duration, now: Instant) -> u64 {
    let mut endpoints = endpoints.lock().unwrap_or_else(PoisonError::into_inner);
    let mut closed = 0;
    for endpoint in endpoints.iter_mut() {
        let before = endpoint.idle.len();
        endpoint.idle.retain(|idle| {
            now.saturating_duration_since(idle.since) < idle_timeout && !idle.sender.is_closed()
        });
        closed += (before - endpoint.idle.len()) as u64;
    }
    closed
}

/// A connection lent to one request, to give back with [`Pool::put_back`] once its answer
/// is read; dropped instead (an error, a timeout), it closes.
pub(super) struct Returned {
    sender: SendRequest<Full<Bytes>>,
    origin: Origin,
}

/// The endpoint a request is addressed to.
fn origin(uri: &Uri) -> Result<Origin, UpstreamError> {
    match (uri.scheme(), uri.authority()) {
        (Some(scheme), Some(authority)) => Ok((scheme.clone(), authority.clone())),
        _ => Err(UpstreamError::NotAbsolute(Box::new(uri.clone()))),
    }
}

/// The request with its URI in origin form (`/path?query`), as an HTTP/1 request line to
/// an origin server has it; the endpoint travels in the `Host` header (the signed one the
/// request carries, or its authority).
fn origin_form(mut request: Request<Full<Bytes>>, authority: &Authority) -> Request<Full<Bytes>> {
    let path = request
        .uri()
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    *request.uri_mut() = Uri::from(path);
    if !request.headers().contains_key(HOST)
        && let Ok(host) = HeaderValue::from_str(authority.as_str())
    {
        request.headers_mut().insert(HOST, host);
    }
    request
}

#[cfg(test)]
mod tests;
