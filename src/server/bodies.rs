//! Request bodies in memory: one budget of bytes shared by every connection of the proxy
//! listener, and the read that reserves from it before it buffers.
//!
//! A body is read whole before its signature can be checked, so without a budget any client
//! that can connect (no credentials needed) can make the sidecar hold 16 MiB per connection:
//! sixty connections took RSS from 18 MB to 766 MB in 1.4 s. Here a body reserves its bytes
//! before they are read: all of them at once when `Content-Length` says how many, else as
//! the chunks arrive (doubling, so a chunked body costs a few reservations, not one per
//! chunk). The buffer is allocated to exactly what was reserved, so the budget counts what
//! the allocator holds, not an estimate. A request that would pass the budget gets a
//! retryable 503 at once ([`ProxyError::BodyMemory`]) and nothing more of its body is read;
//! the reservation is released when the request is done ([`Held`] is dropped).
//!
//! When the body's signature will be checked, its SHA-256 is computed as the chunks
//! arrive: hashing 16 MiB at once held a proxy worker, and every request on it, for tens of
//! milliseconds (most of a second in a debug build).
//!
//! Large bodies (over [`LARGE_BODY`]) together may hold only half the budget (never less
//! than one request of DynamoDB's largest size): a flood of 16 MiB bodies then leaves at
//! least half to ordinary requests, which are a few KiB, so a well-behaved client's GetItem
//! is not refused because someone else's bodies filled the budget. Half, not more, because
//! the allocator gives a freed 16 MiB buffer back to the system a little later, while the
//! next one is already allocated: under such a flood RSS is the bodies held plus about as
//! much again on its way back (`tests/floods.rs`, `benches/README.md`).
//!
//! Envoy's overload manager refuses new requests by heap size; a reservation ahead of the
//! read does the same without sampling the heap, and without letting one burst overshoot it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::HeaderMap;
use http::header::CONTENT_LENGTH;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use prometheus::IntCounter;

use crate::error::{BodyError, ProxyError};
use crate::wire::MAX_REQUEST_BYTES;

pub mod encoding;

/// A body that trickles in slower than this is refused rather than held open forever.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The first reservation of a body of unknown length: most DynamoDB requests fit.
const FIRST_CHUNKED_RESERVATION: usize = 16 * 1024;

/// A body past this is large: a BatchWriteItem of 25 items of 40 KB, far beyond the usual
/// single-item request of a few KiB.
pub const LARGE_BODY: usize = 1 << 20;

/// The bytes every request body in memory may hold together; cheap to clone.
#[derive(Clone, Debug)]
pub struct BodyBudget {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    limit: usize,
    held: AtomicUsize,
    /// `globalscale_body_memory_refusals_total`.
    refused: IntCounter,
}

/// A request's body, read whole; its bytes stay reserved while this lives.
#[derive(Debug)]
pub struct Body {
    pub bytes: Bytes,
    /// The SHA-256 of `bytes` in lowercase hex, when it was asked for.
    pub sha256: Option<String>,
    _held: Held,
}

impl Body {
    /// The SHA-256 of the body in lowercase hex (computed now if it was not as it came).
    pub fn payload_hash(&self) -> std::borrow::Cow<'_, str> {
        match &self.sha256 {
            Some(hash) => std::borrow::Cow::Borrowed(hash),
            None => std::borrow::Cow::Owned(crate::digest::sha256_hex(&self.bytes)),
        }
    }
}

/// Bytes reserved for one request's body, released on drop.
#[derive(Debug)]
pub struct Held {
    inner: Arc<Inner>,
    bytes: usize,
}

impl BodyBudget {
    /// A budget of `limit` bytes; each refusal counts on `refused`.
    pub fn new(limit: usize, refused: IntCounter) -> Self {
        Self {
            inner: Arc::new(Inner {
                limit,
                held: AtomicUsize::new(0),
                refused,
            }),
        }
    }

    /// The proxy's budget: `[server] max_body_memory_bytes`, counted in `metrics`.
    pub fn from_config(config: &crate::config::Config, metrics: &crate::metrics::Metrics) -> Self {
        let limit = config.server.max_body_memory_bytes;
        metrics
            .body_memory_limit_bytes
            .set(i64::try_from(limit).unwrap_or(i64::MAX));
        Self::new(limit, metrics.body_memory_refusals.clone())
    }

    /// The budget, in bytes.
    pub fn limit(&self) -> usize {
        self.inner.limit
    }

    /// Bytes held by bodies right now.
    pub fn held(&self) -> usize {
        self.inner.held.load(Ordering::Relaxed)
    }

    /// Reserves `bytes`, or refuses when the budget would be passed.
    pub fn reserve(&self, bytes: usize) -> Result<Held, ProxyError> {
        let mut held = Held {
            inner: Arc::clone(&self.inner),
            bytes: 0,
        };
        held.grow_to(bytes)?;
        Ok(held)
    }

    /// Reads `body` whole under the budget: refused over DynamoDB's size limit before it
    /// is buffered, with a 503 past the budget, with a `ValidationException` when it
    /// trickles past [`BODY_READ_TIMEOUT`]; hashed on the way when `hash`.
    pub async fn read(
        &self,
        headers: &HeaderMap,
        body: Incoming,
        hash: bool,
    ) -> Result<Body, ProxyError> {
        let declared = declared_length(headers)?;
        let mut held = self.reserve(declared.unwrap_or(0))?;
        let mut hasher = hash.then(crate::digest::sha256_context);
        let collect = collect(body, declared, &mut held, hasher.as_mut());
        match tokio::time::timeout(BODY_READ_TIMEOUT, collect).await {
            Ok(bytes) => Ok(Body {
                bytes: bytes?,
                sha256: hasher.map(|h| hex::encode(h.finish())),
                _held: held,
            }),
            Err(_) => Err(ProxyError::BodyTooSlow(BODY_READ_TIMEOUT)),
        }
    }
}

impl BodyBudget {
    /// The body as its `Content-Encoding` says to decode it (itself when it has none): called
    /// once its signature, over the bytes as sent, was checked. The decoded bytes are
    /// reserved from the budget as they are produced, and held to DynamoDB's size limit
    /// (a bomb gets the 413 an oversized body gets); the encoded ones are released after.
    /// Inflating up to 16 MiB takes tens of milliseconds, so it runs off the proxy's
    /// workers, as the body hash is kept off them.
    pub async fn decode(&self, headers: &HeaderMap, body: Body) -> Result<Body, ProxyError> {
        let codings = encoding::codings(headers)?;
        if codings.is_empty() {
            return Ok(body);
        }
        let mut current = body;
        // The last coding applied is the first undone.
        for coding in codings.into_iter().rev() {
            let mut held = self.reserve(0)?;
            let input = current.bytes.clone();
            let decoded = tokio::task::spawn_blocking(move || {
                let bytes =
                    encoding::decode(coding, &input, MAX_REQUEST_BYTES, &mut |n| held.grow_to(n))?;
                held.shrink_to(bytes.capacity());
                Ok::<_, ProxyError>((bytes, held))
            })
            .await
            .map_err(crate::error::InternalError::DecodeTask)?;
            let (bytes, held) = decoded?;
            current = Body {
                bytes: Bytes::from(bytes),
                sha256: current.sha256.take(),
                _held: held,
            };
        }
        Ok(current)
    }
}

impl Held {
    /// Grows the reservation to `bytes` (never shrinks it).
    fn grow_to(&mut self, bytes: usize) -> Result<(), ProxyError> {
        let more = bytes.saturating_sub(self.bytes);
        if more == 0 {
            return Ok(());
        }
        let limit = if bytes > LARGE_BODY {
            large_ceiling(self.inner.limit)
        } else {
            self.inner.limit
        };
        let reserved = self
            .inner
            .held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                held.checked_add(more).filter(|total| *total <= limit)
            });
        if reserved.is_err() {
            self.inner.refused.inc();
            return Err(ProxyError::BodyMemory {
                limit: self.inner.limit,
            });
        }
        self.bytes = bytes;
        Ok(())
    }

    /// Gives back what is reserved beyond `bytes`.
    fn shrink_to(&mut self, bytes: usize) {
        let less = self.bytes.saturating_sub(bytes);
        self.inner.held.fetch_sub(less, Ordering::AcqRel);
        self.bytes -= less;
    }

    /// The bytes reserved.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.inner.held.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

/// What large bodies may hold together: half the budget, but always room for one request
/// of DynamoDB's largest size.
fn large_ceiling(limit: usize) -> usize {
    (limit / 2).max(MAX_REQUEST_BYTES).min(limit)
}

/// `Content-Length`, refused when it passes DynamoDB's limit.
fn declared_length(headers: &HeaderMap) -> Result<Option<usize>, ProxyError> {
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(len) if len > MAX_REQUEST_BYTES as u64 => Err(ProxyError::BodyTooLarge {
            limit: MAX_REQUEST_BYTES,
        }),
        Some(len) => Ok(usize::try_from(len).ok()),
        None => Ok(None),
    }
}

/// Reads the body's data frames into one buffer of exactly the reserved size, growing the
/// reservation first whenever the next chunk would not fit.
async fn collect(
    mut body: Incoming,
    declared: Option<usize>,
    held: &mut Held,
    mut hasher: Option<&mut ring::digest::Context>,
) -> Result<Bytes, ProxyError> {
    let mut buffer: Vec<u8> = Vec::with_capacity(held.bytes());
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| BodyError::Unreadable(Box::new(e)))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let needed = buffer.len() + data.len();
        if needed > MAX_REQUEST_BYTES {
            return Err(ProxyError::BodyTooLarge {
                limit: MAX_REQUEST_BYTES,
            });
        }
        if needed > buffer.capacity() {
            let target = next_reservation(needed, held.bytes(), declared);
            // While the buffer moves, the old one and the new one are both allocated.
            held.grow_to(target + buffer.capacity())?;
            buffer.reserve_exact(target - buffer.len());
            held.shrink_to(target);
        }
        if let Some(hasher) = hasher.as_deref_mut() {
            hasher.update(&data);
        }
        buffer.extend_from_slice(&data);
    }
    Ok(Bytes::from(buffer))
}

/// How much to reserve for `needed` bytes when `reserved` are not enough: double, so a
/// chunked body grows in a few steps, but never past DynamoDB's limit; a body longer than
/// its `Content-Length` is cut off by hyper, so `declared` only matters as the start.
fn next_reservation(needed: usize, reserved: usize, declared: Option<usize>) -> usize {
    let doubled = reserved
        .saturating_mul(2)
        .max(FIRST_CHUNKED_RESERVATION)
        .max(declared.unwrap_or(0));
    doubled.max(needed).min(MAX_REQUEST_BYTES.max(needed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(limit: usize) -> BodyBudget {
        BodyBudget::new(limit, IntCounter::new("refused", "refused").unwrap())
    }

    #[test]
    fn reservations_are_refused_past_the_budget_and_released_on_drop() {
        let budget = budget(100);
        let first = budget.reserve(60).unwrap();
        assert!(matches!(
            budget.reserve(41),
            Err(ProxyError::BodyMemory { limit: 100 })
        ));
        assert_eq!(budget.inner.refused.get(), 1);
        let second = budget.reserve(40).unwrap();
        assert_eq!(budget.held(), 100);
        drop(first);
        assert_eq!(budget.held(), 40);
        drop(second);
        assert_eq!(budget.held(), 0);
    }

    #[test]
    fn large_bodies_leave_half_the_budget_to_ordinary_ones() {
        let budget = budget(64 << 20);
        let large: Vec<Held> = (0..2).map(|_| budget.reserve(16 << 20).unwrap()).collect();
        assert!(budget.reserve(16 << 20).is_err(), "a third large body");
        assert!(budget.reserve(LARGE_BODY + 1).is_err());
        let small: Vec<Held> = (0..32)
            .map(|_| budget.reserve(LARGE_BODY).unwrap())
            .collect();
        assert!(budget.reserve(1).is_err(), "the whole budget is held");
        drop((large, small));
        assert_eq!(budget.held(), 0);
        // The smallest budget still serves one request of the largest size.
        let smallest = self::budget(MAX_REQUEST_BYTES);
        assert!(smallest.reserve(MAX_REQUEST_BYTES).is_ok());
    }

    #[test]
    fn a_growing_reservation_keeps_what_it_had_when_refused() {
        let budget = budget(100);
        let mut held = budget.reserve(10).unwrap();
        held.grow_to(80).unwrap();
        assert!(held.grow_to(120).is_err());
        assert_eq!((held.bytes(), budget.held()), (80, 80));
        held.shrink_to(30);
        assert_eq!((held.bytes(), budget.held()), (30, 30));
        drop(held);
        assert_eq!(budget.held(), 0);
    }

    #[test]
    fn a_refusal_is_a_retryable_503() {
        let error = budget(1).reserve(2).unwrap_err();
        assert!(error.retryable(), "{error}");
        let response = crate::wire::error_response(&error, "id");
        assert_eq!(response.status(), http::StatusCode::SERVICE_UNAVAILABLE);
    }

    fn gzipped(budget: &BodyBudget, plain: &[u8]) -> (Body, HeaderMap) {
        use std::io::Write as _;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(plain).unwrap();
        let bytes = Bytes::from(encoder.finish().unwrap());
        let body = Body {
            _held: budget.reserve(bytes.len()).unwrap(),
            bytes,
            sha256: Some("hash of the bytes as sent".into()),
        };
        let mut headers = HeaderMap::new();
        headers.insert(http::header::CONTENT_ENCODING, "gzip".parse().unwrap());
        (body, headers)
    }

    #[tokio::test]
    async fn a_decoded_body_holds_its_own_bytes_and_keeps_the_signed_hash() {
        let budget = budget(64 << 20);
        let (body, headers) = gzipped(&budget, &vec![b'a'; 1 << 20]);
        let decoded = budget.decode(&headers, body).await.unwrap();
        assert_eq!(decoded.bytes.len(), 1 << 20);
        assert_eq!(decoded.payload_hash(), "hash of the bytes as sent");
        // The encoded bytes were released; the decoded ones are held.
        assert!(
            budget.held() >= 1 << 20 && budget.held() < 2 << 20,
            "{}",
            budget.held()
        );
        drop(decoded);
        assert_eq!(budget.held(), 0);
        // Past the budget, a retryable 503, and nothing stays reserved.
        let small = self::budget(MAX_REQUEST_BYTES);
        let (body, headers) = gzipped(&small, &vec![b'a'; MAX_REQUEST_BYTES]);
        let _other = small.reserve(MAX_REQUEST_BYTES / 2).unwrap();
        assert!(matches!(
            small.decode(&headers, body).await,
            Err(ProxyError::BodyMemory { .. })
        ));
        assert_eq!(small.held(), MAX_REQUEST_BYTES / 2);
    }

    #[test]
    fn chunked_bodies_grow_by_doubling_within_the_limit() {
        assert_eq!(next_reservation(10, 0, None), FIRST_CHUNKED_RESERVATION);
        assert_eq!(next_reservation(20_000, 16_384, None), 32_768);
        assert_eq!(next_reservation(100_000, 32_768, None), 100_000);
        assert_eq!(
            next_reservation(MAX_REQUEST_BYTES, MAX_REQUEST_BYTES - 1, None),
            MAX_REQUEST_BYTES
        );
        assert_eq!(next_reservation(5, 0, Some(50)), FIRST_CHUNKED_RESERVATION);
    }
}
