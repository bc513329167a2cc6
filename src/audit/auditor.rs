//! The audit trail's running state, shared by the request path and the shipper: the spool,
//! the event id generator, and whether the spool can take records at all.
//!
//! Admission happens before a write is sent: a full spool, or one whose disk refused a write,
//! an fsync or the next segment, turns writes to audited tables away with a retryable 503,
//! since a write that happened cannot be taken back once its record is refused; only the
//! spool's own probe (a segment made, a write and its fsync in it) lets them in again. A
//! write admitted while there was room always gets its append ([`Spool::append_admitted`]).

pub use crate::error::Unavailable;
use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::HeaderMap;
use http::header::AUTHORIZATION;
use tokio::sync::Notify;
use ulid::{Generator, Ulid};

use super::spool::{Spool, SpoolError};
use crate::config::AuditConfig;
use crate::error::ProxyError;

/// The principal of a request that carries no SigV4 signature.
pub const ANONYMOUS: &str = "anonymous";

pub struct Auditor {
    spool: Spool,
    ids: Mutex<Generator>,
    /// Wakes the shipper when records arrive.
    wake: Notify,
    dir: PathBuf,
    /// Event ids of atomic records by the client's `ClientRequestToken`: a resend of the
    /// transaction must carry the same records, or DynamoDB refuses it as another one.
    by_token: Mutex<TokenIds>,
}

/// How long DynamoDB remembers a `ClientRequestToken`.
const TOKEN_MEMORY: Duration = Duration::from_mins(10);
/// Tokens remembered at most; the oldest go first. An SDK resends within seconds.
const MAX_TOKENS: usize = 50_000;

#[derive(Default)]
struct TokenIds {
    ids: HashMap<String, Vec<Ulid>>,
    order: VecDeque<(Instant, String)>,
}

impl std::fmt::Debug for Auditor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auditor")
            .field("dir", &self.dir)
            .field("failing", &self.failing())
            .finish_non_exhaustive()
    }
}

impl Auditor {
    /// Opens the spool in `spool_dir`, creating the directory, and reports what an earlier
    /// run left (records to ship, torn tails cut off).
    pub async fn open(config: &AuditConfig) -> Result<Auditor, SpoolError> {
        let dir = config.spool_dir.clone();
        let spool = Spool::open(&dir, config.max_spool_bytes).await?;
        let report = spool.open_report();
        tracing::info!(
            dir = %dir.display(),
            records = report.records,
            segments = report.segments,
            torn_tails = report.skipped.len(),
            corrupt_records = report.records_lost(),
            "audit spool open"
        );
        if let Some(error) = &report.unwritable {
            tracing::error!(
                dir = %dir.display(),
                error,
                "audit spool cannot be written: serving reads and unaudited tables; writes to audited tables get a retryable 503 until it can"
            );
        }
        if !report.corrupt.is_empty() {
            tracing::error!(
                dir = %dir.display(),
                records = report.records_lost(),
                gaps = report.corrupt.len(),
                "audit spool: damaged records skipped at start-up (lost); the records around them ship"
            );
        }
        Ok(Auditor {
            spool,
            ids: Mutex::new(Generator::new()),
            wake: Notify::new(),
            dir,
            by_token: Mutex::new(TokenIds::default()),
        })
    }

    pub fn spool(&self) -> &Spool {
        &self.spool
    }

    /// The spool directory (the quarantine file lives there too).
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// Whether a write to an audited table may be sent now.
    pub fn admit(&self) -> Result<(), ProxyError> {
        if self.failing() {
            return Err(Unavailable::SpoolFailing {
                dir: self.dir.clone(),
            }
            .into());
        }
        self.spool
            .has_room()
            .map_err(|e| Unavailable::SpoolFull(Box::new(e)).into())
    }

    /// A new event id, later than every one before it in this process.
    pub fn next_id(&self) -> Ulid {
        let mut ids = self
            .ids
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Overflow needs 2^80 ids in one millisecond; a fresh random one is still unique.
        ids.generate().unwrap_or_else(|_| Ulid::new())
    }

    /// `count` event ids for the transaction with `token`: the same ones for every resend
    /// within ten minutes.
    pub fn ids_for_token(&self, token: &str, count: usize) -> Vec<Ulid> {
        let mut known = self
            .by_token
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        while let Some((at, oldest)) = known.order.front() {
            if now.duration_since(*at) < TOKEN_MEMORY && known.order.len() < MAX_TOKENS {
                break;
            }
            let oldest = oldest.clone();
            known.ids.remove(&oldest);
            known.order.pop_front();
        }
        if let Some(ids) = known.ids.get(token).filter(|ids| ids.len() == count) {
            return ids.clone();
        }
        let ids: Vec<Ulid> = (0..count).map(|_| self.next_id()).collect();
        if known.ids.insert(token.to_owned(), ids.clone()).is_none() {
            known.order.push_back((now, token.to_owned()));
        }
        ids
    }

    /// Makes `records` durable; they share fsyncs with every other append in flight.
    pub async fn keep(&self, records: &[Bytes]) -> Result<(), SpoolError> {
        // All queued before the first is awaited, so they share one group commit.
        let appends: Vec<_> = records
            .iter()
            .map(|r| self.spool.append_admitted(r.clone()))
            .collect();
        let mut result = Ok(());
        for append in appends {
            if let Err(e) = append.await {
                result = Err(e);
            }
        }
        // A failed append has made the spool unwritable already (the writer marks it), so
        // writes are refused from now until a probe succeeds.
        if result.is_ok() {
            self.wake.notify_one();
        }
        result
    }

    /// Resolves when records were appended since the last call (or at once if a wake-up was
    /// missed).
    pub async fn appended(&self) {
        self.wake.notified().await;
    }

    /// Whether the spool refuses records (its disk refused a write, an fsync or a segment).
    pub fn failing(&self) -> bool {
        !self.spool.writable()
    }

    /// While failing: asks the spool's writer to make a segment and write and fsync in it,
    /// which lets writes in again if it works. A write elsewhere on the disk would not do: a
    /// few free kilobytes are not the segment's worth an admitted write may need.
    pub async fn probe_disk(&self) -> bool {
        self.spool.probe().await.is_ok()
    }
}

/// An access key id is at most this long (IAM's limit); a longer claim is cut.
const MAX_KEY_ID: usize = 128;

/// Who a request without a checked signature claims to be: the access key id in its SigV4
/// `Authorization` header, unverified, so kept to what an access key id can hold (letters
/// and digits, at most 128): a claim cannot write a tab, a newline or a forged name into a
/// record. Its record says it is claimed (`PrincipalVerified` false).
pub fn principal(headers: &HeaderMap) -> String {
    let claimed: String = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split("Credential=").nth(1))
        .and_then(|c| c.split('/').next())
        .unwrap_or_default()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(MAX_KEY_ID)
        .collect();
    if claimed.is_empty() {
        ANONYMOUS.to_owned()
    } else {
        claimed
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    #[test]
    fn the_principal_is_the_signature_access_key_id() {
        let mut headers = HeaderMap::new();
        assert_eq!(principal(&headers), ANONYMOUS);
        headers.insert(
            AUTHORIZATION,
            HeaderValue::from_static(
                "AWS4-HMAC-SHA256 Credential=AKIDCLIENT/20261126/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=ab",
            ),
        );
        assert_eq!(principal(&headers), "AKIDCLIENT");
        headers.insert(
            AUTHORIZATION,
            HeaderValue::from_static(
                "AWS4-HMAC-SHA256 Credential=catalog-app\tadmin/20261126/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=ab",
            ),
        );
        assert_eq!(principal(&headers), "catalogappadmin");
        headers.insert(
            AUTHORIZATION,
            HeaderValue::from_static("AWS4-HMAC-SHA256 Credential=\t-/x, Signature=ab"),
        );
        assert_eq!(principal(&headers), ANONYMOUS);
    }
}
