//! `acks.log`: the acknowledged ids, so a record shipped before a restart is not pending after
//! it. Each `ack` appends one frame of ids, written at once (a killed process loses none) but
//! fsynced lazily, at most every [`SYNC_EVERY`]: an ack lost to a power cut only ships its
//! record again, which the audit table absorbs. Whenever segments are deleted the log is
//! rewritten (and fsynced) with only the ids of live segments, so it stays about one segment's
//! acks long.

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::frame::{self, MAX_BODY};
use super::replay::{Read, read_cut};
use super::state::sync_dir;
use super::{Skipped, SpoolError};

const FILE: &str = "acks.log";
const TEMP: &str = "acks.log.tmp";
/// Longest time an ack stays written but not fsynced, if acks keep coming.
pub(super) const SYNC_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub(super) struct AckLog {
    path: PathBuf,
    /// `None` until it could be opened.
    file: Option<File>,
    /// Length of the valid log: where a failed append is cut back to.
    len: u64,
    /// When the log was last fsynced.
    synced: Instant,
}

impl AckLog {
    /// Opens or creates the log, returning the ids it holds and the tail cut off, if any.
    pub(super) fn open(dir: &Path) -> Result<(AckLog, BTreeSet<u64>, Option<Skipped>), SpoolError> {
        let path = dir.join(FILE);
        // A temp file is a rewrite that never reached its rename: the old log is still whole.
        // Left in place if it cannot go (a read-only disk): the next rewrite replaces it.
        if let Err(error) = fs::remove_file(dir.join(TEMP))
            && error.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(%error, "audit spool: {TEMP} not removed");
        }
        // A damaged ack costs at most shipping its records again: cut at the first bad frame.
        let read = if path.exists() {
            read_cut(&path, None)?
        } else {
            Read::default()
        };
        let skipped = read.skipped;
        let mut ids = BTreeSet::new();
        for (_, body) in &read.bodies {
            let count = body.len() / 8;
            ids.extend((0..count).filter_map(|at| frame::read_u64(body, at * 8)));
        }
        // Opened for appending when it can be (not on a read-only disk, say): the first ack
        // tries again.
        let file = open_append(&path).ok();
        let len = file
            .as_ref()
            .and_then(|file| file.metadata().ok())
            .map_or(0, |meta| meta.len());
        let log = AckLog {
            path,
            file,
            len,
            synced: Instant::now(),
        };
        Ok((log, ids, skipped))
    }

    /// The log of a spool whose directory could not be created: nothing to read, opened at
    /// the first ack.
    pub(super) fn detached(dir: &Path) -> AckLog {
        AckLog {
            path: dir.join(FILE),
            file: None,
            len: 0,
            synced: Instant::now(),
        }
    }

    /// Appends `ids`, fsyncing only if the last fsync is [`SYNC_EVERY`] old. On failure the
    /// partial frame is cut off (best effort: if that fails too, replay cuts it, losing only
    /// acks, so records are shipped again).
    pub(super) fn append(&mut self, ids: &[u64]) -> Result<(), SpoolError> {
        let buf = encode(ids.iter().copied());
        let sync = self.synced.elapsed() >= SYNC_EVERY;
        if self.file.is_none() {
            self.file = Some(open_append(&self.path)?);
        }
        let Some(file) = self.file.as_mut() else {
            return Err(SpoolError::Closed);
        };
        let written = file.write_all(&buf).and_then(|()| {
            if sync {
                file.sync_data()?;
                self.synced = Instant::now();
            }
            Ok(())
        });
        if let Err(source) = written {
            let _ = file.set_len(self.len);
            return Err(SpoolError::io(&self.path, source));
        }
        self.len += buf.len() as u64;
        Ok(())
    }

    /// Replaces the log with one holding exactly `ids`: temp file, fsync, rename, fsync dir,
    /// so a crash leaves either the old log or the new one.
    pub(super) fn rewrite(&mut self, ids: &BTreeSet<u64>) -> Result<(), SpoolError> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let temp = dir.join(TEMP);
        let buf = encode(ids.iter().copied());
        let staged = File::create(&temp)
            .and_then(|mut file| file.write_all(&buf).and_then(|()| file.sync_data()));
        staged.map_err(|source| SpoolError::io(&temp, source))?;
        fs::rename(&temp, &self.path).map_err(|source| SpoolError::io(&self.path, source))?;
        sync_dir(dir)?;
        self.file = Some(open_append(&self.path)?);
        self.len = buf.len() as u64;
        self.synced = Instant::now();
        Ok(())
    }
}

/// Frames `ids`, as many frames as the body limit needs.
fn encode(ids: impl Iterator<Item = u64>) -> Vec<u8> {
    let ids: Vec<u8> = ids.flat_map(u64::to_le_bytes).collect();
    let mut buf = Vec::with_capacity(ids.len() + frame::HEADER);
    for chunk in ids.chunks(MAX_BODY - MAX_BODY % 8) {
        frame::encode(&mut buf, &[chunk]);
    }
    buf
}

fn open_append(path: &Path) -> Result<File, SpoolError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|source| SpoolError::io(path, source))
}
