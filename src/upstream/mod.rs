//! The way out: keep-alive HTTP/1 connections per proxy worker ([`pool`]: hyper's
//! connection-level client, rustls for AWS endpoints, plain HTTP for local ones) that send
//! a signed request to one region and buffer the answer.
//!
//! It knows nothing about routing; it reports *how* an attempt failed, because whether the
//! request may have reached DynamoDB decides whether it is safe to send it again.

pub mod outbound;
mod pool;
pub mod sign;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::connect::HttpConnector;

use pool::Pool;

use crate::config::{Timeouts, TlsRoots};

pub use crate::error::UpstreamError;
/// Upstream answers larger than this are refused: DynamoDB's largest (BatchGetItem, 16 MB
/// of items plus JSON overhead) stays well below it.
use crate::error::upstream::MAX_RESPONSE_BYTES;

/// A region's complete answer.
#[derive(Debug)]
pub struct UpstreamResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub elapsed: Duration,
    /// The region's `x-amz-crc32`, checked against the body as it arrived.
    pub checksum: Option<Checksum>,
}

/// A region's checksum and the bytes it was checked against, so that a reply whose body is
/// still those bytes reuses it instead of hashing them again (`hot_path`: 31 ns for a
/// 1.4 KB item, so about 23 µs for a 1 MB Query page), while any body a step replaced gets
/// a fresh one.
#[derive(Debug, Clone)]
pub struct Checksum {
    checked: Bytes,
    crc32: u32,
}

impl Checksum {
    pub fn new(checked: Bytes, crc32: u32) -> Self {
        Checksum { checked, crc32 }
    }

    /// The checksum, if `body` is the very buffer it was checked against (same bytes by
    /// identity: `checked` holds them, so their memory cannot have been reused).
    pub fn of(&self, body: &Bytes) -> Option<u32> {
        let same = body.as_ptr() == self.checked.as_ptr() && body.len() == self.checked.len();
        same.then_some(self.crc32)
    }
}

/// One attempt's answer, or how it failed.
pub type SendFuture<'a> =
    Pin<Box<dyn Future<Output = Result<UpstreamResponse, UpstreamError>> + Send + 'a>>;

/// What the attempt loop and the probes send through: the connection pools in production,
/// a scripted region in the attempt loop's tests.
pub trait Transport: Send + Sync {
    /// Sends one signed attempt and reads the whole answer, within the attempt timeout and
    /// by `deadline`, whichever comes first: either way the answer is
    /// [`UpstreamError::Timeout`], and the caller tells a spent deadline by the clock.
    fn send(&self, request: Request<Full<Bytes>>, deadline: tokio::time::Instant)
    -> SendFuture<'_>;
}

impl Transport for Upstream {
    fn send(
        &self,
        request: Request<Full<Bytes>>,
        deadline: tokio::time::Instant,
    ) -> SendFuture<'_> {
        Box::pin(Upstream::send(self, request, deadline))
    }
}

/// The connection pools every region shares; cheap to clone.
///
/// One pool per proxy worker (`server::workers`) and one for the main runtime: a pooled
/// connection is served by a task on the runtime that opened it, so a worker that borrowed
/// another's connection would hand every request across cores, and a connection left behind
/// by a worker's runtime would break under the next borrower.
#[derive(Clone)]
pub struct Upstream {
    pools: Arc<[Pool]>,
    attempt_timeout: Duration,
}

impl Upstream {
    pub fn new(timeouts: &Timeouts, roots: TlsRoots) -> Result<Self, rustls::Error> {
        let mut http = HttpConnector::new();
        // The TLS layer wraps this connector, so it must accept https URIs.
        http.enforce_http(false);
        http.set_connect_timeout(Some(timeouts.connect));
        http.set_nodelay(true);
        http.set_keepalive(Some(Duration::from_secs(30)));
        // One crypto provider chosen explicitly: other crates in the tree enable a second one,
        // and rustls refuses to guess between them.
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(root_store(roots)?)
            .with_no_client_auth();
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let pools = (0..=crate::server::workers::count())
            .map(|_| Pool::new(https.clone(), timeouts.upstream_idle))
            .collect();
        Ok(Self {
            pools,
            attempt_timeout: timeouts.attempt,
        })
    }

    /// Idle connections to regions closed by the background sweep since start, in every
    /// pool (`globalscale_upstream_idle_closed_total`).
    pub fn idle_closed() -> u64 {
        pool::swept()
    }

    /// This thread's pool: its worker's, or the main runtime's (the last).
    fn pool(&self) -> &Pool {
        let last = self.pools.len() - 1;
        let index = crate::server::workers::current().map_or(last, |i| i.min(last));
        &self.pools[index]
    }

    /// Sends one attempt and reads the whole answer, within the attempt timeout and by
    /// `deadline`. One timer for both: each timer a request arms on an idle worker wakes
    /// the worker's driver once more (an eventfd write and an extra `epoll_wait`).
    pub async fn send(
        &self,
        request: Request<Full<Bytes>>,
        deadline: tokio::time::Instant,
    ) -> Result<UpstreamResponse, UpstreamError> {
        let started = Instant::now();
        let limit = deadline.min(tokio::time::Instant::from_std(started) + self.attempt_timeout);
        let pool = self.pool();
        let attempt = async {
            let (response, connection) = pool.send(request).await?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, MAX_RESPONSE_BYTES)
                .collect()
                .await
                .map_err(|e| {
                    if e.is::<http_body_util::LengthLimitError>() {
                        UpstreamError::ResponseTooLarge
                    } else {
                        UpstreamError::transport(e)
                    }
                })?
                .to_bytes();
            pool.put_back(connection);
            Ok(Response::from_parts(parts, body))
        };
        let response = tokio::time::timeout_at(limit, attempt)
            .await
            .map_err(|_| UpstreamError::Timeout(self.attempt_timeout))??;
        let (parts, body) = response.into_parts();
        let checksum = crate::wire::check_answer(parts.status, &parts.headers, &body)
            .map_err(UpstreamError::Corrupt)?
            .map(|crc32| Checksum::new(body.clone(), crc32));
        Ok(UpstreamResponse {
            status: parts.status,
            headers: parts.headers,
            body,
            elapsed: started.elapsed(),
            checksum,
        })
    }
}

/// The certificate authorities upstream TLS trusts. A system store that cannot be read is
/// an error only when it is the sole source: with the built-in roots beside it, the sidecar
/// still reaches AWS's public endpoints, and says what it could not load.
fn root_store(roots: TlsRoots) -> Result<rustls::RootCertStore, rustls::Error> {
    let mut store = rustls::RootCertStore::empty();
    if roots != TlsRoots::System {
        store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    if roots != TlsRoots::Webpki {
        let native = rustls_native_certs::load_native_certs();
        for error in &native.errors {
            tracing::warn!(%error, "cannot load a certificate from the system store");
        }
        let (added, ignored) = store.add_parsable_certificates(native.certs);
        tracing::debug!(added, ignored, "system certificate authorities");
        if roots == TlsRoots::System && added == 0 {
            return Err(rustls::Error::General(
                "upstream.tls_roots = \"system\", but the system store holds no usable certificate (set SSL_CERT_FILE?)".into(),
            ));
        }
    }
    Ok(store)
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::Checksum;

    #[test]
    fn a_checksum_is_reused_only_for_the_buffer_it_was_checked_against() {
        let body = Bytes::from_static(b"{\"Item\":{}}");
        let checksum = Checksum::new(body.clone(), 7);
        assert_eq!(checksum.of(&body), Some(7));
        assert_eq!(checksum.of(&body.clone()), Some(7));
        // Equal bytes elsewhere, as a step that rebuilt the body unchanged would make them:
        // hashed again rather than trusted on content.
        assert_eq!(checksum.of(&Bytes::copy_from_slice(&body)), None);
        assert_eq!(checksum.of(&body.slice(1..)), None);
        assert_eq!(checksum.of(&body.slice(..body.len() - 1)), None);
    }
}
