//! What the spool knows in memory, shared by the writer thread, the shipper's calls and the
//! metrics: unshipped records (kept in memory, bounded by `max_bytes`, so `pending` never reads
//! disk), the live segments and the acknowledged ids that still need remembering.
//!
//! Lock order: `acks` before `state`. The writer takes only `state`, and only after its fsync,
//! so an append never waits on an ack's write or the other way round.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;

use super::acks::AckLog;
use super::{RecordId, SpoolError, age};

/// Unshipped records, for `globalscale_audit_backlog`, `globalscale_audit_oldest_seconds` and
/// `globalscale_audit_spool_bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backlog {
    pub records: usize,
    /// Bytes on disk of those records, frames included.
    pub bytes: u64,
    /// Time since the oldest was appended; zero when there is none.
    pub oldest_age: Duration,
    /// What `max_spool_bytes` is checked against: `bytes` plus appends queued for the writer.
    pub held: u64,
}

/// Group commit so far: `records / fsyncs` is the mean group size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GroupStats {
    pub fsyncs: u64,
    pub records: u64,
    pub largest_group: u64,
}

#[derive(Debug)]
pub(super) struct Entry {
    pub(super) payload: Bytes,
    pub(super) unix_ms: u64,
    /// Frame bytes on disk.
    pub(super) size: u64,
}

#[derive(Debug)]
pub(super) struct Segment {
    pub(super) path: PathBuf,
    /// Records written to it (the next id in it is `base + count`).
    pub(super) count: u64,
    pub(super) acked: u64,
}

#[derive(Debug, Default)]
pub(super) struct State {
    pub(super) unacked: BTreeMap<u64, Entry>,
    /// Live segments by first id.
    pub(super) segments: BTreeMap<u64, Segment>,
    /// Acknowledged ids in live segments: what `acks.log` must keep saying.
    pub(super) acked: BTreeSet<u64>,
    /// First id of the segment the writer appends to; never reclaimed.
    pub(super) active: u64,
    /// Bytes of unshipped records plus those queued for the writer.
    pub(super) held: u64,
    /// Bytes of unshipped records on disk.
    pub(super) stored: u64,
    /// Unacknowledged frames that are records (not settlements): the backlog, counted as
    /// they come and go because the shipper asks for it every few milliseconds.
    pub(super) records: usize,
}

/// Whether a frame is a record of its own: a write's settlement (`S`, `C`: see
/// `audit::intent`) is not; its records are counted by their intents.
fn is_record(payload: &[u8]) -> bool {
    !matches!(payload.first(), Some(b'S' | b'C'))
}

impl State {
    /// Adds a frame read back or just committed to what is waiting to ship.
    pub(super) fn hold(&mut self, id: u64, entry: Entry) {
        self.stored += entry.size;
        self.records += usize::from(is_record(&entry.payload));
        if let Some(replaced) = self.unacked.insert(id, entry) {
            self.stored -= replaced.size;
            self.records -= usize::from(is_record(&replaced.payload));
        }
    }

    fn mark_acked(&mut self, ids: &[u64]) {
        for &id in ids {
            let Some(entry) = self.unacked.remove(&id) else {
                continue;
            };
            self.held -= entry.size;
            self.stored -= entry.size;
            self.records -= usize::from(is_record(&entry.payload));
            self.acked.insert(id);
            if let Some((_, segment)) = self.segments.range_mut(..=id).next_back() {
                segment.acked += 1;
            }
        }
    }

    /// Segments other than the active one whose every record is acknowledged.
    pub(super) fn finished(&self) -> Vec<(u64, PathBuf)> {
        let done = self
            .segments
            .iter()
            .filter(|(base, segment)| **base != self.active && segment.acked == segment.count);
        done.map(|(base, segment)| (*base, segment.path.clone()))
            .collect()
    }

    pub(super) fn forget_segment(&mut self, base: u64) {
        if let Some(segment) = self.segments.remove(&base) {
            let ids = base..base + segment.count;
            self.acked.retain(|id| !ids.contains(id));
        }
    }
}

#[derive(Debug)]
pub(super) struct Shared {
    pub(super) dir: PathBuf,
    pub(super) max_bytes: u64,
    pub(super) state: Mutex<State>,
    pub(super) acks: Mutex<AckLog>,
    fsyncs: AtomicU64,
    records: AtomicU64,
    largest_group: AtomicU64,
    /// Set by the syncer when an fsync failed, taken by the writer, which then rotates.
    sync_failure: AtomicBool,
    /// Whether the spool can take records: cleared by any failed write, fsync or segment
    /// preparation, set again only by a probe that made a segment and wrote and fsynced in
    /// it ([`super::Spool::probe`]), never by a write elsewhere on the disk.
    writable: AtomicBool,
    /// Held by a test to make appends queue up behind the writer deterministically.
    #[cfg(test)]
    pub(super) gate: Mutex<()>,
}

/// Locks `mutex`, taking the data even if a panic poisoned it: every update under these locks
/// is applied whole or not at all, so a poisoned state is still consistent.
pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Fsyncs a directory, making file creations, renames and deletions in it durable.
pub(super) fn sync_dir(dir: &Path) -> Result<(), SpoolError> {
    fs::File::open(dir)
        .and_then(|handle| handle.sync_all())
        .map_err(|source| SpoolError::io(dir, source))
}

impl Shared {
    pub(super) fn new(dir: PathBuf, max_bytes: u64, state: State, acks: AckLog) -> Self {
        Shared {
            dir,
            max_bytes,
            state: Mutex::new(state),
            acks: Mutex::new(acks),
            fsyncs: AtomicU64::new(0),
            records: AtomicU64::new(0),
            largest_group: AtomicU64::new(0),
            sync_failure: AtomicBool::new(false),
            writable: AtomicBool::new(true),
            #[cfg(test)]
            gate: Mutex::new(()),
        }
    }

    pub(super) fn writable(&self) -> bool {
        self.writable.load(Ordering::Acquire)
    }

    /// After a failed write, fsync or segment preparation: refuse until a probe succeeds.
    pub(super) fn mark_unwritable(&self, why: &SpoolError) {
        if self.writable.swap(false, Ordering::AcqRel) {
            tracing::error!(dir = %self.dir.display(), error = %crate::error::Chain::for_log(why), "audit spool unwritable: refusing writes to audited tables until a write and its fsync succeed");
        }
    }

    /// After a probe made a segment and wrote and fsynced in it.
    pub(super) fn mark_writable(&self) {
        if !self.writable.swap(true, Ordering::AcqRel) {
            tracing::info!(dir = %self.dir.display(), "audit spool writable again: writes to audited tables resume");
        }
    }

    /// Counts `size` against `max_bytes` before the record is queued, so the limit also holds
    /// for appends not yet written.
    pub(super) fn reserve(&self, size: u64) -> Result<(), SpoolError> {
        let mut state = lock(&self.state);
        self.room(&state)?;
        state.held += size;
        Ok(())
    }

    pub(super) fn reserve_past_limit(&self, size: u64) {
        lock(&self.state).held += size;
    }

    pub(super) fn has_room(&self) -> Result<(), SpoolError> {
        self.room(&lock(&self.state))
    }

    fn room(&self, state: &State) -> Result<(), SpoolError> {
        if state.held >= self.max_bytes {
            return Err(SpoolError::Full {
                held: state.held,
                limit: self.max_bytes,
            });
        }
        Ok(())
    }

    pub(super) fn release(&self, size: u64) {
        let mut state = lock(&self.state);
        state.held = state.held.saturating_sub(size);
    }

    /// The writer wrote ids up to `end` (not included) into the segment starting at
    /// `segment`: counted at once, before their fsync, so the segment is not taken for
    /// finished (and deleted) while a group in it still waits for the syncer.
    pub(super) fn wrote(&self, segment: u64, end: u64) {
        if let Some(written) = lock(&self.state).segments.get_mut(&segment) {
            written.count = end - segment;
        }
    }

    /// The fsync of the group starting at `first` failed: it and everything after it in that
    /// segment will never be acknowledged.
    pub(super) fn unwrote(&self, segment: u64, first: u64) {
        if let Some(written) = lock(&self.state).segments.get_mut(&segment) {
            written.count = written.count.min(first - segment);
        }
    }

    /// Makes a fsynced group visible to `pending`; ids run from `first` in `records` order.
    pub(super) fn commit<I>(&self, first: u64, unix_ms: u64, records: I)
    where
        I: Iterator<Item = (Bytes, u64)>,
    {
        let mut state = lock(&self.state);
        for ((payload, size), id) in records.zip(first..) {
            let entry = Entry {
                payload,
                unix_ms,
                size,
            };
            state.hold(id, entry);
        }
    }

    /// Counts one fsync that made `records` durable.
    pub(super) fn synced(&self, records: u64) {
        self.fsyncs.fetch_add(1, Ordering::Relaxed);
        self.records.fetch_add(records, Ordering::Relaxed);
        self.largest_group.fetch_max(records, Ordering::Relaxed);
    }

    /// Tells the writer an fsync failed: its segment is to be abandoned.
    pub(super) fn sync_failed(&self) {
        self.sync_failure.store(true, Ordering::Release);
    }

    /// Whether an fsync failed since the last call.
    pub(super) fn take_sync_failure(&self) -> bool {
        self.sync_failure.swap(false, Ordering::AcqRel)
    }

    /// Records a new active segment the writer has created.
    pub(super) fn rotated(&self, base: u64, path: PathBuf) {
        let mut state = lock(&self.state);
        let segment = Segment {
            path,
            count: 0,
            acked: 0,
        };
        state.segments.insert(base, segment);
        state.active = base;
    }

    pub(super) fn pending(&self, max: usize) -> Vec<(RecordId, Bytes)> {
        let state = lock(&self.state);
        let oldest = state.unacked.iter().take(max);
        oldest
            .map(|(id, entry)| (RecordId(*id), entry.payload.clone()))
            .collect()
    }

    pub(super) fn ack(&self, ids: &[u64]) -> Result<(), SpoolError> {
        let mut acks = lock(&self.acks);
        let fresh: Vec<u64> = {
            let state = lock(&self.state);
            let known = ids.iter().filter(|id| state.unacked.contains_key(id));
            known.copied().collect()
        };
        if fresh.is_empty() {
            return Ok(());
        }
        // Written first: an ack only in memory would be lost by a restart, and the record
        // shipped again, which is allowed; dropping it from memory first gains nothing.
        acks.append(&fresh)?;
        lock(&self.state).mark_acked(&fresh);
        self.reclaim(&mut acks)
    }

    /// Deletes finished segments, then rewrites `acks.log` without their ids. A crash between
    /// the two leaves ids of deleted segments in the log, which replay ignores.
    pub(super) fn reclaim(&self, acks: &mut AckLog) -> Result<(), SpoolError> {
        let finished = lock(&self.state).finished();
        if finished.is_empty() {
            return Ok(());
        }
        let mut removed = Vec::new();
        for (base, path) in finished {
            match fs::remove_file(&path) {
                Ok(()) => removed.push(base),
                Err(error) if error.kind() == io::ErrorKind::NotFound => removed.push(base),
                // Kept with its acks, so it is retried at the next ack and not reshipped.
                Err(error) => {
                    tracing::warn!(path = %path.display(), %error, "audit spool: segment not deleted");
                }
            }
        }
        sync_dir(&self.dir)?;
        let live = {
            let mut state = lock(&self.state);
            for base in removed {
                state.forget_segment(base);
            }
            state.acked.clone()
        };
        acks.rewrite(&live)
    }

    pub(super) fn backlog(&self) -> Backlog {
        let state = lock(&self.state);
        let oldest = state.unacked.values().next();
        Backlog {
            records: state.records,
            bytes: state.stored,
            oldest_age: oldest.map_or(Duration::ZERO, |entry| age(entry.unix_ms)),
            held: state.held,
        }
    }

    pub(super) fn group_stats(&self) -> GroupStats {
        GroupStats {
            fsyncs: self.fsyncs.load(Ordering::Relaxed),
            records: self.records.load(Ordering::Relaxed),
            largest_group: self.largest_group.load(Ordering::Relaxed),
        }
    }
}
