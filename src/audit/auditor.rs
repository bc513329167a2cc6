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
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::HeaderMap;
use http::header::AUTHORIZATION;
use tokio::sync::Notify;
use ulid::{Generator, Ulid};

use super::chain::store::ChainStore;
use super::intent::{self, Resolved, Settlements};
use super::spool::{RecordId, Spool, SpoolError};
use crate::config::AuditConfig;
use crate::error::ProxyError;

/// A part of an append the caller waits for.
pub type Waiting =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), SpoolError>> + Send>>;

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
    /// How the intents the shipper has not taken yet were settled (see [`intent`]).
    settlements: Mutex<Settlements>,
    /// The places of shipped records in this spool's chain (see [`super::chain`]).
    chain: Arc<ChainStore>,
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
        let options = crate::audit::spool::SpoolOptions {
            commit_delay: config.commit_delay,
            ..crate::audit::spool::SpoolOptions::new(config.max_spool_bytes)
        };
        let spool = Spool::open_with(&dir, options).await?;
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
        // What an earlier run settled and the shipper had not finished with, and the
        // events still spooled.
        let mut settlements = Settlements::default();
        let mut spooled = std::collections::HashSet::new();
        for (_, frame) in spool.pending(usize::MAX) {
            if let Some(frame) = intent::read(&frame) {
                settlements.learn(&frame);
                spooled.extend(intent::events(&frame));
            }
        }
        let chain = Arc::new(ChainStore::open(&dir, &spooled)?);
        Ok(Auditor {
            spool,
            ids: Mutex::new(Generator::new()),
            wake: Notify::new(),
            dir,
            by_token: Mutex::new(TokenIds::default()),
            settlements: Mutex::new(settlements),
            chain,
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

    /// Appends `intents` (intent frames) now: refused at once when one cannot be queued (the
    /// write must not be sent then). The first future resolves once every intent is
    /// written (it outlives the process from then on), the second once every one is durable.
    pub fn intend(&self, intents: Vec<Bytes>) -> Result<(Waiting, Waiting), SpoolError> {
        let appends = intents
            .into_iter()
            .map(|frame| self.spool.append_now(frame))
            .collect::<Result<Vec<_>, _>>()?;
        let (written, durable): (Vec<_>, Vec<_>) =
            appends.into_iter().map(|a| (a.written, a.durable)).unzip();
        let written: Waiting = Box::pin(async move {
            for append in written {
                append.await?;
            }
            Ok(())
        });
        let durable: Waiting = Box::pin(async move {
            let mut result = Ok(());
            for append in durable {
                if let Err(e) = append.await {
                    result = Err(e);
                }
            }
            // A failed group commit has made the spool unwritable already (the writer
            // marks it): writes are refused until a probe succeeds.
            result
        });
        Ok((written, durable))
    }

    /// A write's answer is back and its intents are not durable yet: the group commit fsyncs
    /// now instead of gathering more.
    pub fn hurry(&self) {
        self.spool.hurry();
    }

    /// Settles a write's intents with its final records (accepted or unknown): kept in
    /// memory for the shipper, and appended without waiting for its fsync.
    pub fn settle(&self, finals: &[(String, Bytes)]) {
        if finals.is_empty() {
            return;
        }
        let frame = intent::settled(&finals.iter().map(|(_, r)| r.clone()).collect::<Vec<_>>());
        lock(&self.settlements).settle(finals);
        self.append_unawaited(frame);
    }

    /// Cancels the intents of a write that was refused (or of its items left unprocessed).
    pub fn cancel(&self, events: &[String]) {
        if events.is_empty() {
            return;
        }
        lock(&self.settlements).cancel(events);
        self.append_unawaited(intent::cancelled(events));
    }

    /// Writes a settlement frame, pending at once; the next group commit makes it durable.
    /// Lost, it costs only recovery's judgement of the intent after a crash. One the spool
    /// cannot take leaves the settlement in memory, where the shipper finds it this run.
    fn append_unawaited(&self, frame: Bytes) {
        if let Err(e) = self.spool.append_lazily(frame) {
            tracing::warn!(error = %crate::error::Chain::for_log(&e), "audit spool: settlement not written; a restart would settle its intents by recovery");
        }
        self.wake.notify_one();
    }

    /// The chain the shipper links records into.
    pub fn chain(&self) -> &Arc<ChainStore> {
        &self.chain
    }

    /// Sorts a window of the spool's oldest frames for the shipper.
    pub fn resolve(&self, window: Vec<(RecordId, Bytes)>) -> Resolved {
        intent::resolve(
            window,
            &mut lock(&self.settlements),
            self.spool.first_live(),
        )
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

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
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
