//! The writer thread: the only code that appends to segments. It blocks on the queue, takes
//! everything queued behind the first request, writes the group with one `write`, tells the
//! waiters it is written, and hands it to the *syncer* thread, which fsyncs everything
//! written since its last fsync at once and answers the waiters. Writes never wait for an
//! fsync: a write ahead of its request (an intent) waits only for its `write`, while the
//! fsync of the groups before it goes on. Dedicated threads rather than tasks, because both
//! are blocking file I/O from start to finish.
//!
//! Segments are pre-zeroed: written full of zeros to `segment_bytes` and fsynced before they
//! become active, so a group is written over blocks the file already has and its fdatasync
//! commits no size or extent change (on ext4 that skips a journal commit: about 130 µs
//! instead of 150–200 µs per group). `set_len` or `fallocate` would not do: their unwritten
//! extents still change metadata on the first write. A helper thread zeroes the next segment,
//! the *standby*, while the active one fills, so a rotation is a rename and a directory fsync.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use super::frame;
use super::state::{Shared, lock, sync_dir};
use super::{RecordId, SpoolError};

/// Requests written in one group at most, so one commit's latency stays bounded.
const MAX_GROUP: usize = 4096;

/// What the writer thread is asked to do.
#[derive(Debug)]
pub(super) enum Job {
    Append(Request),
    /// Prove the spool can take records again: see [`Writer::probe`].
    Probe(oneshot::Sender<Result<(), SpoolError>>),
}

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

/// In tests: while a file of this name is in the spool directory, standbys fail as on a
/// full disk.
#[cfg(test)]
pub(super) const FAIL_STANDBY: &str = "fail-standby";

/// In tests: while a file of this name is in the spool directory, fsyncs fail as on a
/// dying disk.
#[cfg(test)]
pub(super) const FAIL_SYNC: &str = "fail-sync";

/// What standby files end with. Not a segment's name, so replay never reads one.
pub(super) const STANDBY_SUFFIX: &str = ".standby";

/// Removes standby files an earlier run (or an earlier spool in this process) left: one may
/// be half zeroed, and a fresh one costs only a background write.
pub(super) fn remove_standbys(dir: &Path) -> Result<(), SpoolError> {
    let io = |source| SpoolError::io(dir, source);
    for entry in fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        let standby = path
            .file_name()
            .and_then(|name| name.to_str())
            .is_some_and(|name| name.ends_with(STANDBY_SUFFIX));
        if standby {
            match fs::remove_file(&path) {
                Err(error) if error.kind() != io::ErrorKind::NotFound => {
                    return Err(SpoolError::io(&path, error));
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// The next segment, zeroed ahead of its use.
#[derive(Debug)]
pub(super) enum Standby {
    Preparing(PathBuf, JoinHandle<io::Result<File>>),
    Ready(PathBuf, File),
    Failed(PathBuf, io::Error),
}

impl Standby {
    /// Starts zeroing a new standby file of `bytes` in the spool's directory on a helper
    /// thread. Its name is random: a helper of an earlier spool on this directory may still be
    /// writing its own. A helper that fails (a full disk) makes the spool unwritable at once,
    /// while the active segment still has room for the writes already admitted.
    pub(super) fn start(shared: &Arc<Shared>, bytes: u64) -> Standby {
        let path = shared
            .dir
            .join(format!("{:016x}{STANDBY_SUFFIX}", fastrand::u64(..)));
        let target = path.clone();
        let watcher = Arc::clone(shared);
        let helper = std::thread::Builder::new()
            .name("audit-spool-standby".into())
            .spawn(move || {
                let zeroed = zeroed(&target, bytes);
                if let Err(error) = &zeroed {
                    let error =
                        SpoolError::io(&target, io::Error::new(error.kind(), error.to_string()));
                    watcher.mark_unwritable(&error);
                }
                zeroed
            });
        match helper {
            Ok(helper) => Standby::Preparing(path, helper),
            // No thread to spare: the rotation tries again with a new one.
            Err(error) => Standby::Failed(path, error),
        }
    }

    /// Waits for the zeroes to be durable (long done, unless segments fill faster than the
    /// disk writes zeroes).
    fn ready(self) -> Result<(PathBuf, File), SpoolError> {
        match self {
            Standby::Ready(path, file) => Ok((path, file)),
            Standby::Failed(path, source) => Err(SpoolError::io(&path, source)),
            Standby::Preparing(path, helper) => match helper.join() {
                Ok(Ok(file)) => Ok((path, file)),
                Ok(Err(source)) => Err(SpoolError::io(&path, source)),
                Err(_) => Err(SpoolError::io(
                    &path,
                    io::Error::other("standby helper panicked"),
                )),
            },
        }
    }

    /// Renames the standby to the segment starting at `base` and makes the name durable.
    /// On failure the standby stays for the next try if it was zeroed; one that could not be
    /// zeroed is gone, and the next rotation or probe starts another.
    pub(super) fn activate(
        self,
        shared: &Arc<Shared>,
        base: u64,
        bytes: u64,
    ) -> Result<(File, PathBuf), (SpoolError, Option<Standby>)> {
        let dir = &shared.dir;
        let (standby, file) = match self.ready() {
            Ok(ready) => ready,
            // Started again by the next rotation or probe, not now: the disk just refused.
            Err(error) => return Err((error, None)),
        };
        let path = segment_path(dir, base);
        if let Err(source) = fs::rename(&standby, &path) {
            return Err((
                SpoolError::io(&path, source),
                Some(Standby::Ready(standby, file)),
            ));
        }
        if let Err(error) = sync_dir(dir) {
            // The name may or may not survive a crash: an empty segment either way, which
            // replay reads as no records.
            return Err((error, Some(Standby::start(shared, bytes))));
        }
        Ok((file, path))
    }
}

/// Creates `path` holding `bytes` zeroes, written and fsynced; on failure removes what was
/// written, so a full disk gets its space back rather than keep a partial standby.
fn zeroed(path: &Path, bytes: u64) -> io::Result<File> {
    let made = write_zeros(path, bytes);
    if made.is_err() {
        let _ = fs::remove_file(path);
    }
    made
}

fn write_zeros(path: &Path, bytes: u64) -> io::Result<File> {
    const CHUNK: usize = 1 << 20;
    #[cfg(test)]
    if path.with_file_name(FAIL_STANDBY).exists() {
        return Err(io::Error::from_raw_os_error(libc::ENOSPC));
    }
    let zeros = vec![0u8; CHUNK];
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    let mut left = bytes;
    while left > 0 {
        let n = usize::try_from(left).map_or(CHUNK, |left| left.min(CHUNK));
        file.write_all(&zeros[..n])?;
        left -= n as u64;
    }
    file.sync_all()?;
    Ok(file)
}

#[derive(Debug)]
pub(super) struct Writer {
    pub(super) shared: Arc<Shared>,
    pub(super) segment_bytes: u64,
    /// The syncer's gathering time ([`super::SpoolOptions::commit_delay`]).
    pub(super) commit_delay: std::time::Duration,
    /// The active segment, its first id and its valid length. No segment when none could be
    /// made (a full disk at start-up): the next group or probe makes one. Shared with the
    /// syncer, which may still fsync a segment the writer has rotated away from.
    pub(super) file: Option<Arc<File>>,
    pub(super) path: PathBuf,
    pub(super) base: u64,
    pub(super) len: u64,
    /// Id the next record gets.
    pub(super) next_id: u64,
    /// Set after a failed write or fsync: whatever the kernel kept of that segment is
    /// unknown, so the next group goes to a fresh one.
    pub(super) broken: bool,
    /// The next segment; `None` only while a rotation holds it.
    pub(super) standby: Option<Standby>,
}

impl Writer {
    /// Starts the writer and syncer threads; the writer ends when the last queue sender (the
    /// `Spool`) is dropped, the syncer after it. The writer itself is shared: an append that
    /// must be written before its caller goes on is written by the caller
    /// ([`Handles::write_now`]).
    pub(super) fn spawn(self) -> Result<Handles, SpoolError> {
        let (queue, requests) = mpsc::unbounded_channel();
        let (to_sync, written) = std::sync::mpsc::channel();
        let dir = self.shared.dir.clone();
        let syncer = Syncer {
            shared: Arc::clone(&self.shared),
            failed: None,
            commit_delay: self.commit_delay,
        };
        std::thread::Builder::new()
            .name("audit-spool-sync".into())
            .spawn(move || syncer.run(&written))
            .map_err(|source| SpoolError::io(&dir, source))?;
        let writer = Arc::new(Mutex::new(self));
        let handles = Handles {
            queue,
            writer: Arc::clone(&writer),
            to_sync: to_sync.clone(),
        };
        std::thread::Builder::new()
            .name("audit-spool".into())
            .spawn(move || run(&writer, requests, &to_sync))
            .map_err(|source| SpoolError::io(&dir, source))?;
        Ok(handles)
    }

    /// Writes a group; what then waits for its fsync, or `None` when the write failed (its
    /// waiters have their error).
    fn commit(&mut self, group: Vec<Request>) -> Option<Written> {
        let unix_ms = unix_ms();
        let count = group.len() as u64;
        let offset = self.len;
        match self.write(&group, unix_ms) {
            Ok(file) => {
                let first = self.next_id;
                self.next_id += count;
                self.shared.wrote(self.base, self.next_id);
                Some(Written {
                    file,
                    segment: self.base,
                    path: self.path.clone(),
                    offset,
                    first,
                    unix_ms,
                    group,
                })
            }
            Err(error) => {
                // The group's ids are spent: if some frames did reach the old segment, replay
                // numbers them with these ids, so the next segment must start past them.
                self.next_id += count;
                self.broken = true;
                self.shared.mark_unwritable(&error);
                tracing::warn!(error = %crate::error::Chain::for_log(&error), records = count, "audit spool: group commit failed");
                fail(&self.shared, group, &error);
                None
            }
        }
    }

    /// Writes a group at the segment's valid end (in the kernel's page cache it outlives the
    /// process, not the machine); the file it went to, for the syncer.
    fn write(&mut self, group: &[Request], unix_ms: u64) -> Result<Arc<File>, SpoolError> {
        // A failed fsync (the syncer's) leaves the segment's contents unknown too.
        let sync_failed = self.shared.take_sync_failure();
        if self.broken || sync_failed || self.file.is_none() || self.len >= self.segment_bytes {
            self.rotate()?;
        }
        let file = Arc::clone(self.file.as_ref().ok_or(SpoolError::Closed)?);
        let stamp = unix_ms.to_le_bytes();
        let size: u64 = group.iter().map(|r| r.reserved).sum();
        let mut buf = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        for request in group {
            frame::encode(&mut buf, &[&stamp, &request.record]);
        }
        // At the valid end rather than appended: the file is longer than its frames. A group
        // running past the zeroes extends the file, which only costs that group's fsync more.
        if let Err(source) = file.write_all_at(&buf, self.len) {
            // Cut the partial group off so nothing valid-looking follows the last good frame
            // (the zeroes after it go too: the segment is abandoned, `broken` rotates); if the
            // cut fails as well, replay cuts the segment at its first bad frame.
            let _ = file.set_len(self.len);
            return Err(SpoolError::io(&self.path, source));
        }
        self.len += buf.len() as u64;
        Ok(file)
    }

    /// Makes the standby the segment starting at `next_id`, and starts zeroing the next.
    pub(super) fn rotate(&mut self) -> Result<(), SpoolError> {
        let standby = match self.standby.take() {
            Some(standby) => standby,
            None => Standby::start(&self.shared, self.segment_bytes),
        };
        let (file, path) = match standby.activate(&self.shared, self.next_id, self.segment_bytes) {
            Ok(active) => active,
            Err((error, standby)) => {
                self.standby = standby;
                return Err(error);
            }
        };
        self.standby = Some(Standby::start(&self.shared, self.segment_bytes));
        self.file = Some(Arc::new(file));
        self.shared.rotated(self.next_id, path.clone());
        self.path = path;
        self.base = self.next_id;
        self.len = 0;
        self.broken = false;
        Ok(())
    }

    /// Whether the spool can take records again, proven the way an append needs it: a
    /// segment to write in (made now if the last one broke), the next one zeroed behind it,
    /// and a write and its fsync in the segment where the next frame goes (zeros over its
    /// zeros, which replay reads as the clean end). Only this makes the spool writable
    /// again: a small file written elsewhere says nothing of a segment's worth of space.
    fn probe(&mut self) -> Result<(), SpoolError> {
        let proven = self.try_probe();
        match &proven {
            Ok(()) => self.shared.mark_writable(),
            Err(error) => self.shared.mark_unwritable(error),
        }
        proven
    }

    fn try_probe(&mut self) -> Result<(), SpoolError> {
        let dir = &self.shared.dir;
        fs::create_dir_all(dir).map_err(|source| SpoolError::io(dir, source))?;
        if self.broken || self.file.is_none() || self.len >= self.segment_bytes {
            self.rotate()?;
        }
        let standby = match self.standby.take() {
            Some(standby) => standby,
            None => Standby::start(&self.shared, self.segment_bytes),
        };
        let (path, ready) = standby.ready()?;
        self.standby = Some(Standby::Ready(path, ready));
        let file = self.file.as_ref().ok_or(SpoolError::Closed)?;
        let written = file
            .write_all_at(&[0; frame::HEADER], self.len)
            .and_then(|()| file.sync_data());
        written.map_err(|source| {
            self.broken = true;
            SpoolError::io(&self.path, source)
        })
    }
}

/// What the spool holds of its writer: the queue to its thread, the writer itself for
/// appends written by their caller, and the syncer's queue.
#[derive(Debug)]
pub(super) struct Handles {
    pub(super) queue: mpsc::UnboundedSender<Job>,
    writer: Arc<Mutex<Writer>>,
    to_sync: std::sync::mpsc::Sender<ToSync>,
}

impl Handles {
    /// Writes `request` now, on the caller's thread, and hands it to the syncer: a write
    /// ahead of a request waits only for its own `write` (a few microseconds into the page
    /// cache), not for two thread hand-offs. The fsync still groups with every other append.
    /// `false` when the write failed (the request has been answered with the error).
    pub(super) fn write_now(&self, request: Request) -> bool {
        let mut writer = lock(&self.writer);
        match writer.commit(vec![request]) {
            Some(written) => {
                // Sent under the lock, so the syncer sees groups in id order.
                let _ = self.to_sync.send(ToSync::Written(written));
                true
            }
            None => false,
        }
    }

    /// Asks the syncer to stop gathering: a waiter's answer is back. Sent after the waiter's
    /// own group (the channel keeps order), so the fsync it starts covers that group.
    pub(super) fn hurry(&self) {
        let _ = self.to_sync.send(ToSync::Hurry);
    }
}

impl Handles {
    /// Writes `request` now and makes it pending at once, with no fsync of its own: a later
    /// group's fsync carries it (an fsync covers the whole file). For a write's settlement,
    /// which outlives the process from its `write` on and whose loss to a power cut costs
    /// only recovery's judgement of the intent (see `audit::intent`). No thread is woken.
    pub(super) fn write_lazily(&self, request: Request) -> bool {
        let mut writer = lock(&self.writer);
        match writer.commit(vec![request]) {
            Some(written) => {
                written.complete(&writer.shared);
                true
            }
            None => false,
        }
    }
}

/// The writer thread: takes every append queued behind the first, writes them as one group
/// and hands the group to the syncer.
fn run(
    writer: &Mutex<Writer>,
    mut jobs: mpsc::UnboundedReceiver<Job>,
    to_sync: &std::sync::mpsc::Sender<ToSync>,
) {
    let mut next = None;
    while let Some(job) = next.take().or_else(|| jobs.blocking_recv()) {
        #[cfg(test)]
        {
            let shared = Arc::clone(&lock(writer).shared);
            drop(lock(&shared.gate));
        }
        let first = match job {
            Job::Append(request) => request,
            Job::Probe(done) => {
                let _ = done.send(lock(writer).probe());
                continue;
            }
        };
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match jobs.try_recv() {
                Ok(Job::Append(request)) => group.push(request),
                Ok(probe) => {
                    next = Some(probe);
                    break;
                }
                Err(_) => break,
            }
        }
        let mut writer = lock(writer);
        if let Some(written) = writer.commit(group) {
            // Sent under the lock, so the syncer sees groups in id order.
            let _ = to_sync.send(ToSync::Written(written));
        }
    }
}

/// Answers a group that will not be durable with `error`, giving back its bytes.
fn fail(shared: &Shared, group: Vec<Request>, error: &SpoolError) {
    for request in group {
        shared.release(request.reserved);
        let _ = request.done.send(Err(clone_error(error)));
    }
}

/// What the syncer is told.
#[derive(Debug)]
pub(super) enum ToSync {
    /// A group written, to fsync.
    Written(Written),
    /// A waiter's answer is back: fsync what is gathered now.
    Hurry,
}

/// A group written, waiting for its fsync.
#[derive(Debug)]
pub(super) struct Written {
    file: Arc<File>,
    /// The segment's first id and path.
    segment: u64,
    path: PathBuf,
    /// Where the group starts in the segment.
    offset: u64,
    /// The group's first id.
    first: u64,
    unix_ms: u64,
    group: Vec<Request>,
}

impl Written {
    /// Makes the group pending for the shipper and answers its waiters.
    fn complete(self, shared: &Shared) {
        let entries = self.group.iter().map(|r| (r.record.clone(), r.reserved));
        shared.commit(self.first, self.unix_ms, entries);
        for (request, id) in self.group.into_iter().zip(self.first..) {
            // A waiter that went away still has its record spooled: nothing to undo.
            let _ = request.done.send(Ok(RecordId(id)));
        }
    }
}

/// The syncer thread: fsyncs what the writer has written, one fsync for every group written
/// since the last (group commit across groups), then makes them visible to the shipper and
/// answers their waiters. It lets a group commit gather for up to `commit_delay` after its
/// first group, unless a waiter hurries it: an intent's fsync need only be done by the time
/// its write's answer is back, so against a region that takes milliseconds one fsync covers
/// the intents of many writes, and a write answered sooner starts the fsync itself.
struct Syncer {
    shared: Arc<Shared>,
    /// A segment whose fsync failed, and why: after a failed fsync the kernel may have
    /// dropped the dirty pages and report the next fsync clean, so nothing written to that
    /// file counts as durable any more.
    failed: Option<(Arc<File>, SpoolError)>,
    commit_delay: std::time::Duration,
}

impl Syncer {
    fn run(mut self, inbox: &std::sync::mpsc::Receiver<ToSync>) {
        while let Ok(message) = inbox.recv() {
            // A hurry with nothing gathered: its group was in the last fsync.
            let ToSync::Written(first) = message else {
                continue;
            };
            let batch = self.gather(first, inbox);
            // Groups of one segment share its fsync; a rotation starts another run.
            let mut runs: Vec<Vec<Written>> = Vec::new();
            for group in batch {
                match runs.last_mut() {
                    Some(run) if Arc::ptr_eq(&run[0].file, &group.file) => run.push(group),
                    _ => runs.push(vec![group]),
                }
            }
            for run in runs {
                self.sync(run);
            }
        }
    }

    /// `first` and the groups written after it until the commit delay is up, a waiter
    /// hurries, or the writers are gone.
    fn gather(&self, first: Written, inbox: &std::sync::mpsc::Receiver<ToSync>) -> Vec<Written> {
        use std::sync::mpsc::RecvTimeoutError;
        let deadline = std::time::Instant::now() + self.commit_delay;
        let mut batch = vec![first];
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let message = if left.is_zero() {
                inbox.try_recv().map_err(|_| RecvTimeoutError::Timeout)
            } else {
                inbox.recv_timeout(left)
            };
            match message {
                Ok(ToSync::Written(written)) => batch.push(written),
                Ok(ToSync::Hurry) | Err(_) => break,
            }
        }
        // Whatever is written by now shares this fsync, hurried or not.
        for message in inbox.try_iter() {
            if let ToSync::Written(written) = message {
                batch.push(written);
            }
        }
        batch
    }

    fn sync(&mut self, run: Vec<Written>) {
        let file = Arc::clone(&run[0].file);
        let poisoned = match &self.failed {
            Some((failed, error)) if Arc::ptr_eq(failed, &file) => Some(clone_error(error)),
            _ => None,
        };
        let error = poisoned.or_else(|| {
            #[cfg(test)]
            let synced = if self.shared.dir.join(FAIL_SYNC).exists() {
                Err(io::Error::from_raw_os_error(libc::EIO))
            } else {
                file.sync_data()
            };
            #[cfg(not(test))]
            let synced = file.sync_data();
            let source = synced.err()?;
            // Cut what the failed fsync covered, so replay finds none of it (the segment is
            // abandoned: the writer rotates away from it).
            let _ = file.set_len(run[0].offset);
            Some(SpoolError::io(&run[0].path, source))
        });
        if let Some(error) = error {
            self.shared.mark_unwritable(&error);
            self.shared.sync_failed();
            let records: usize = run.iter().map(|w| w.group.len()).sum();
            tracing::warn!(error = %crate::error::Chain::for_log(&error), records, "audit spool: group commit failed");
            for written in run {
                self.shared.unwrote(written.segment, written.first);
                fail(&self.shared, written.group, &error);
            }
            self.failed = Some((file, error));
            return;
        }
        // Counted before the waiters hear of it, so a waiter reading the group stats sees
        // the fsync that answered it.
        let records: usize = run.iter().map(|w| w.group.len()).sum();
        self.shared.synced(records as u64);
        for written in run {
            written.complete(&self.shared);
        }
    }
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
