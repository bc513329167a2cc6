//! The local durable spool of audit records: an accepted record is on disk (written and
//! fsynced) before [`Spool::append`] resolves, and stays there until the shipper has stored it
//! and called [`Spool::ack`]. Nothing accepted is ever dropped; the worst a crash can do is make
//! the shipper send a record twice, which the audit table's key (the record's EventId) absorbs.
//!
//! On disk, in one directory:
//! - `spool-<first id, 20 digits>.log`: append-only segments of frames (see `frame`), each body
//!   `[u64 append time, unix ms][record]`. A record's id is the segment's first id plus its
//!   index in the segment, so ids need no space on disk and stay monotonic across restarts.
//!   Each segment is pre-zeroed to `segment_bytes` before it becomes active (see `writer`),
//!   so its frames are followed by zeros, which replay reads as the clean end.
//! - `<random>.standby`: the next segment being zeroed; never read, removed at start-up.
//! - `acks.log`: frames whose bodies are lists of acknowledged ids, written before `ack`
//!   returns but fsynced lazily (a lost ack only ships a record again), rewritten (temp file,
//!   fsync, rename) whenever whole segments are deleted.
//!
//! The append time lives in the frame rather than in memory, so the oldest record's age is
//! exact after a restart too (a segment's mtime is its newest append, not its oldest).
//!
//! One writer thread writes the appends queued while it was busy with one `write`; an append
//! ahead of a request ([`Spool::append_now`]) is written by its caller instead, under the same
//! lock. A syncer thread then fsyncs (`sync_data`) everything written since its last fsync at
//! once and answers each waiter: the group commit, whose sizes [`Spool::group_stats`]
//! reports. Writes never wait for an fsync.

mod acks;
mod frame;
mod replay;
mod state;
mod writer;

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::oneshot;

pub use frame::{FrameError, MAX_BODY};
pub use state::{Backlog, GroupStats};

use state::Shared;
use writer::{Handles, Job, Request};

/// Segment size at which the writer starts a new one: small enough that acknowledged space
/// comes back soon, large enough that rotation (a rename and a directory fsync) is rare. Also
/// what each segment takes on disk from its start: it is pre-zeroed to this size.
pub const DEFAULT_SEGMENT_BYTES: u64 = 8 * 1024 * 1024;

/// The group commit's gathering time. An intent's fsync only has to be done when the
/// region's answer is back, which against DynamoDB is milliseconds after the intent was
/// written; fsyncing each intent as it comes costs a device flush per write, each a trip
/// through the hypervisor's block device that takes CPU from every thread (measured in
/// `benches/audit.rs` against a region answering after 2 ms: 1.3 intents per fsync and 360 µs
/// of CPU per audited put, against 7 intents and 270 µs when the syncer gathers 1.5 ms). A
/// write answered sooner does not wait out the delay: it hurries the fsync.
pub const DEFAULT_COMMIT_DELAY: Duration = Duration::from_millis(1);

/// Position of a record in the spool: increasing in append order, never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RecordId(u64);

impl RecordId {
    #[cfg(test)]
    pub(crate) fn for_tests(id: u64) -> Self {
        RecordId(id)
    }

    /// The id as a number, for logs and metrics.
    pub fn get(self) -> u64 {
        self.0
    }

    #[cfg(test)]
    pub(crate) fn from_raw(id: u64) -> Self {
        RecordId(id)
    }
}

impl std::fmt::Display for RecordId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Why the spool refused or lost track of an operation. Every variant is retryable by the
/// client: nothing was accepted.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// Unshipped records fill the spool; the shipper must catch up first.
    #[error("audit spool full: {held} bytes unshipped, limit {limit}")]
    Full { held: u64, limit: u64 },
    /// The record alone is larger than a frame may be.
    #[error("audit record of {len} bytes exceeds the {MAX_BODY}-byte frame limit")]
    TooLarge { len: usize },
    /// The disk refused a read, write or fsync (full, read-only, failing).
    #[error("audit spool {}: {source}", path.display())]
    Io {
        path: PathBuf,
        // Shared: one failed group commit fails every append in the group.
        #[source]
        source: Arc<io::Error>,
    },
    /// The writer thread is gone (the spool is shutting down).
    #[error("audit spool writer stopped")]
    Closed,
}

impl SpoolError {
    pub(crate) fn io(path: &Path, source: io::Error) -> Self {
        SpoolError::Io {
            path: path.to_path_buf(),
            source: Arc::new(source),
        }
    }
}

/// Sizes the spool works with.
#[derive(Debug, Clone, Copy)]
pub struct SpoolOptions {
    /// Unshipped bytes (frames included) at which appends are refused with [`SpoolError::Full`].
    /// This counts records, not disk: each live segment takes `segment_bytes` on disk from
    /// the start (pre-zeroed), and the standby as much again, so the spool's files can take
    /// up to `max_bytes` plus two segments (and a segment more per partly acked one).
    pub max_bytes: u64,
    /// Segment size past which the writer rotates to a new segment.
    pub segment_bytes: u64,
    /// How long the syncer lets a group commit gather appends before its fsync, unless a
    /// write whose answer is back waits for it ([`Spool::hurry`]). See
    /// [`DEFAULT_COMMIT_DELAY`].
    pub commit_delay: Duration,
}

impl SpoolOptions {
    pub fn new(max_bytes: u64) -> Self {
        SpoolOptions {
            max_bytes,
            segment_bytes: DEFAULT_SEGMENT_BYTES,
            commit_delay: DEFAULT_COMMIT_DELAY,
        }
    }
}

type Pending<T> = std::pin::Pin<Box<dyn Future<Output = Result<T, SpoolError>> + Send>>;

/// An append under way ([`Spool::append_now`]).
pub struct Appending {
    /// Resolves once the record is written (in the page cache).
    pub written: Pending<()>,
    /// Resolves once it is fsynced.
    pub durable: Pending<RecordId>,
}

/// What start-up found on disk.
#[derive(Debug, Clone, Default)]
pub struct OpenReport {
    /// Segments holding unshipped records after replay.
    pub segments: usize,
    /// Unshipped records replayed.
    pub records: usize,
    /// Torn or corrupt tails cut off, one per file.
    pub skipped: Vec<Skipped>,
    /// Damaged records skipped between valid ones: each costs that record only.
    pub corrupt: Vec<Corrupt>,
    /// Why no segment could be made (a full or read-only disk): the spool started
    /// unwritable, refusing records until [`Spool::probe`] succeeds.
    pub unwritable: Option<String>,
}

impl OpenReport {
    /// Records lost to damage between valid frames, counting a gap of unknown size as one.
    /// A torn tail loses none: its group was never fsynced, so no write waited on it.
    pub fn records_lost(&self) -> u64 {
        self.corrupt.iter().map(|c| c.records.unwrap_or(1)).sum()
    }
}

/// Damaged bytes between two valid frames of a segment, found at start-up and skipped.
/// The segment is left as it is; the same damage is found again if the process restarts
/// before the segment's records have shipped and it is deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Corrupt {
    pub file: PathBuf,
    pub offset: u64,
    pub bytes: u64,
    /// Records lost: `Some(1)` when the damaged frame's length was intact, `None` when the
    /// damage hides how many frames it covered (at least one).
    pub records: Option<u64>,
    pub error: FrameError,
}

/// A file cut at its first bad frame on open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub file: PathBuf,
    /// Where the file now ends.
    pub offset: u64,
    /// Bytes written past `offset` and lost with the cut: up to the last non-zero byte, since
    /// the zeros after it are a pre-zeroed segment's unwritten space (a torn write's own
    /// trailing zeros cannot be told from them).
    pub dropped_bytes: u64,
    pub error: FrameError,
}

/// The durable spool. Cheap to share behind an `Arc`; all methods take `&self`.
#[derive(Debug)]
pub struct Spool {
    shared: Arc<Shared>,
    writer: Handles,
    report: OpenReport,
    /// The first id this process appends: anything before it an earlier run left.
    first_live: RecordId,
}

impl Spool {
    /// Opens or creates the spool in `dir` with default segment size.
    pub async fn open(dir: impl Into<PathBuf>, max_bytes: u64) -> Result<Spool, SpoolError> {
        Spool::open_with(dir, SpoolOptions::new(max_bytes)).await
    }

    /// Opens or creates the spool in `dir`, replaying what earlier runs left.
    pub async fn open_with(
        dir: impl Into<PathBuf>,
        options: SpoolOptions,
    ) -> Result<Spool, SpoolError> {
        let dir = dir.into();
        // Replay reads and truncates files: blocking work, done once at start-up.
        let (shared, writer, report) =
            tokio::task::spawn_blocking(move || replay::open(&dir, options))
                .await
                .map_err(|_| SpoolError::Closed)??;
        let first_live = RecordId(state::lock(&shared.state).active);
        let writer = writer.spawn()?;
        Ok(Spool {
            shared,
            writer,
            report,
            first_live,
        })
    }

    /// The first id this process appends: a record before it was left by an earlier run.
    pub fn first_live(&self) -> RecordId {
        self.first_live
    }

    /// What start-up found: replayed records and any tails cut off.
    pub fn open_report(&self) -> &OpenReport {
        &self.report
    }

    /// Queues `record`; the future resolves once it is written and fsynced.
    ///
    /// Refuses at once, before queueing, when the spool is full or the record too large. The
    /// record is queued when this is called, not when the future is first polled, and the
    /// future borrows nothing, so it can be spawned.
    pub fn append(
        &self,
        record: Bytes,
    ) -> impl Future<Output = Result<RecordId, SpoolError>> + Send + use<> {
        let queued = self.enqueue(record, true);
        async move { queued?.await.map_err(|_| SpoolError::Closed)? }
    }

    /// Like [`Spool::append`], but past `max_bytes` too: for the record of a write that was
    /// admitted while there was room ([`Spool::has_room`]) and has happened since, which must
    /// not be refused. The overshoot is bounded by the writes in flight at once.
    pub fn append_admitted(
        &self,
        record: Bytes,
    ) -> impl Future<Output = Result<RecordId, SpoolError>> + Send + use<> {
        let queued = self.enqueue(record, false);
        async move { queued?.await.map_err(|_| SpoolError::Closed)? }
    }

    /// Like [`Spool::append_admitted`], but refusing at once what cannot be queued (a record
    /// too large, a stopped writer), so the caller learns it before it acts; and with a
    /// second future, resolved once the record is written (before its fsync): from then on
    /// it outlives the process, if not the machine.
    pub fn append_now(&self, record: Bytes) -> Result<Appending, SpoolError> {
        let reserved = self.reserve(&record, false)?;
        let (done, mut answer) = oneshot::channel();
        let request = Request {
            record,
            reserved,
            done,
        };
        if !self.writer.write_now(request) {
            return Err(match answer.try_recv() {
                Ok(Err(error)) => error,
                _ => SpoolError::Closed,
            });
        }
        Ok(Appending {
            written: Box::pin(std::future::ready(Ok(()))),
            durable: Box::pin(async move { answer.await.map_err(|_| SpoolError::Closed)? }),
        })
    }

    /// Writes `record` now, past `max_bytes` like [`Spool::append_admitted`], with no fsync of
    /// its own: pending at once, durable with the next append's fsync. For what may be lost
    /// to a power cut (not to a crash): a write's settlement.
    pub fn append_lazily(&self, record: Bytes) -> Result<RecordId, SpoolError> {
        let reserved = self.reserve(&record, false)?;
        let (done, mut answer) = oneshot::channel();
        let request = Request {
            record,
            reserved,
            done,
        };
        self.writer.write_lazily(request);
        match answer.try_recv() {
            Ok(result) => result,
            Err(_) => Err(SpoolError::Closed),
        }
    }

    /// Whether an [`Spool::append`] now would be accepted, size permitting.
    pub fn has_room(&self) -> Result<(), SpoolError> {
        self.shared.has_room()
    }

    /// Tells the syncer a write whose answer is back waits for its intents' fsync: the group
    /// commit stops gathering and fsyncs now.
    pub fn hurry(&self) {
        self.writer.hurry();
    }

    fn enqueue(
        &self,
        record: Bytes,
        limited: bool,
    ) -> Result<oneshot::Receiver<Result<RecordId, SpoolError>>, SpoolError> {
        let reserved = self.reserve(&record, limited)?;
        let (done, answer) = oneshot::channel();
        let request = Request {
            record,
            reserved,
            done,
        };
        if self.writer.queue.send(Job::Append(request)).is_err() {
            self.shared.release(reserved);
            return Err(SpoolError::Closed);
        }
        Ok(answer)
    }

    /// Counts `record` against `max_bytes` (`limited`) or past it; refuses one too large.
    fn reserve(&self, record: &Bytes, limited: bool) -> Result<u64, SpoolError> {
        if record.len() > MAX_BODY - frame::MIN_BODY {
            return Err(SpoolError::TooLarge { len: record.len() });
        }
        let reserved = writer::frame_len(record.len());
        if limited {
            self.shared.reserve(reserved)?;
        } else {
            self.shared.reserve_past_limit(reserved);
        }
        Ok(reserved)
    }

    /// Whether the spool can take records: false from a failed write, fsync or segment
    /// preparation (a full or read-only disk) until [`Spool::probe`] succeeds.
    pub fn writable(&self) -> bool {
        self.shared.writable()
    }

    /// Proves the spool can take records again, on the writer thread, the way an append
    /// needs it: a segment made (and the next one zeroed), a write in it and its fsync. Makes
    /// the spool writable if it succeeds, unwritable if not.
    pub async fn probe(&self) -> Result<(), SpoolError> {
        let (done, answer) = oneshot::channel();
        self.writer
            .queue
            .send(Job::Probe(done))
            .map_err(|_| SpoolError::Closed)?;
        answer.await.map_err(|_| SpoolError::Closed)?
    }

    /// The oldest unacknowledged records, at most `max`, in append order.
    pub fn pending(&self, max: usize) -> Vec<(RecordId, Bytes)> {
        self.shared.pending(max)
    }

    /// Marks `ids` shipped: an acknowledged record is not pending after a restart of the
    /// process. The ack is fsynced lazily, so after a power cut it may be lost and the record
    /// pending (shipped again) but never lost. Unknown or already acknowledged ids are ignored.
    pub async fn ack(&self, ids: &[RecordId]) -> Result<(), SpoolError> {
        let ids: Vec<u64> = ids.iter().map(|id| id.0).collect();
        let shared = Arc::clone(&self.shared);
        tokio::task::spawn_blocking(move || shared.ack(&ids))
            .await
            .map_err(|_| SpoolError::Closed)?
    }

    /// Unshipped records, their bytes, the age of the oldest and how full the spool is.
    pub fn backlog(&self) -> Backlog {
        self.shared.backlog()
    }

    /// `max_spool_bytes`: at [`Backlog::held`] of this, writes to audited tables are refused.
    pub fn limit(&self) -> u64 {
        self.shared.max_bytes
    }

    /// Fsyncs and records committed so far, and the largest group: the group commit's effect.
    pub fn group_stats(&self) -> GroupStats {
        self.shared.group_stats()
    }
}

/// How long ago `unix_ms` was, zero if the clock went backwards.
fn age(unix_ms: u64) -> Duration {
    Duration::from_millis(writer::unix_ms().saturating_sub(unix_ms))
}

#[cfg(test)]
mod disk_tests;
#[cfg(test)]
mod tests;
