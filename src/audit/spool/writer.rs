//! The writer thread: the only code that appends to segments. It blocks on the queue, takes
//! everything queued behind the first request, writes the group with one `write`, fsyncs once,
//! and answers every waiter. A dedicated thread rather than a task, because each group is
//! blocking file I/O from start to finish.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use super::frame;
use super::state::{Shared, sync_dir};
use super::{RecordId, SpoolError};

/// Requests written in one group at most, so one commit's latency stays bounded.
const MAX_GROUP: usize = 4096;

#[derive(Debug)]
pub(super) struct Request {
    pub(super) record: Bytes,
    /// Bytes counted against `max_bytes` by `append`.
    pub(super) reserved: u64,
    pub(super) done: oneshot::Sender<Result<RecordId, SpoolError>>,
}

/// Bytes a record takes on disk: header, append time, record.
pub(super) fn frame_len(record: usize) -> u64 {
    (frame::HEADER + frame::MIN_BODY + record) as u64
}

pub(super) fn unix_ms() -> u64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
}

pub(super) fn segment_path(dir: &Path, base: u64) -> PathBuf {
    dir.join(format!("spool-{base:020}.log"))
}

#[derive(Debug)]
pub(super) struct Writer {
    pub(super) shared: Arc<Shared>,
    pub(super) segment_bytes: u64,
    /// The active segment, its first id and its valid length.
    pub(super) file: File,
    pub(super) path: PathBuf,
    pub(super) base: u64,
    pub(super) len: u64,
    /// Id the next record gets.
    pub(super) next_id: u64,
    /// Set after a failed write or fsync: whatever the kernel kept of that segment is
    /// unknown, so the next group goes to a fresh one.
    pub(super) broken: bool,
}

impl Writer {
    /// Starts the thread; it ends when the last queue sender (the `Spool`) is dropped.
    pub(super) fn spawn(self) -> Result<mpsc::UnboundedSender<Request>, SpoolError> {
        let (queue, requests) = mpsc::unbounded_channel();
        let dir = self.shared.dir.clone();
        std::thread::Builder::new()
            .name("audit-spool".into())
            .spawn(move || self.run(requests))
            .map_err(|source| SpoolError::io(&dir, source))?;
        Ok(queue)
    }

    fn run(mut self, mut requests: mpsc::UnboundedReceiver<Request>) {
        while let Some(first) = requests.blocking_recv() {
            #[cfg(test)]
            drop(super::state::lock(&self.shared.gate));
            let mut group = vec![first];
            while group.len() < MAX_GROUP {
                match requests.try_recv() {
                    Ok(request) => group.push(request),
                    Err(_) => break,
                }
            }
            self.commit(group);
        }
    }

    fn commit(&mut self, group: Vec<Request>) {
        let unix_ms = unix_ms();
        let count = group.len() as u64;
        match self.write(&group, unix_ms) {
            Ok(()) => {
                let first = self.next_id;
                self.next_id += count;
                let records = group.iter().map(|r| (r.record.clone(), r.reserved));
                self.shared.commit(self.base, first, unix_ms, records);
                for (request, id) in group.into_iter().zip(first..) {
                    // A waiter that went away still has its record spooled: nothing to undo.
                    let _ = request.done.send(Ok(RecordId(id)));
                }
            }
            Err(error) => {
                // The group's ids are spent: if some frames did reach the old segment, replay
                // numbers them with these ids, so the next segment must start past them.
                self.next_id += count;
                self.broken = true;
                tracing::warn!(%error, records = count, "audit spool: group commit failed");
                for request in group {
                    self.shared.release(request.reserved);
                    let _ = request.done.send(Err(clone_error(&error)));
                }
            }
        }
    }

    fn write(&mut self, group: &[Request], unix_ms: u64) -> Result<(), SpoolError> {
        if self.broken || self.len >= self.segment_bytes {
            self.rotate()?;
        }
        let stamp = unix_ms.to_le_bytes();
        let size: u64 = group.iter().map(|r| r.reserved).sum();
        let mut buf = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        for request in group {
            frame::encode(&mut buf, &[&stamp, &request.record]);
        }
        let written = self
            .file
            .write_all(&buf)
            .and_then(|()| self.file.sync_data());
        if let Err(source) = written {
            // Cut the partial group off so nothing valid-looking follows the last good frame;
            // if this fails too, the segment is abandoned and replay cuts it.
            let _ = self.file.set_len(self.len);
            return Err(SpoolError::io(&self.path, source));
        }
        self.len += buf.len() as u64;
        Ok(())
    }

    /// Starts a new segment at `next_id` and makes its directory entry durable.
    pub(super) fn rotate(&mut self) -> Result<(), SpoolError> {
        let path = segment_path(&self.shared.dir, self.next_id);
        self.file = create_segment(&path)?;
        sync_dir(&self.shared.dir)?;
        self.shared.rotated(self.next_id, path.clone());
        self.path = path;
        self.base = self.next_id;
        self.len = 0;
        self.broken = false;
        Ok(())
    }
}

pub(super) fn create_segment(path: &Path) -> Result<File, SpoolError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|source| SpoolError::io(path, source))
}

fn clone_error(error: &SpoolError) -> SpoolError {
    match error {
        SpoolError::Io { path, source } => SpoolError::Io {
            path: path.clone(),
            source: Arc::clone(source),
        },
        SpoolError::Full { held, limit } => SpoolError::Full {
            held: *held,
            limit: *limit,
        },
        SpoolError::TooLarge { len } => SpoolError::TooLarge { len: *len },
        SpoolError::Closed => SpoolError::Closed,
    }
}
