//! Start-up: read back what earlier runs left, cut torn or corrupt tails, drop what was
//! acknowledged, and start a fresh active segment. Never a panic on what is found on disk:
//! a bad frame is reported and cut, and start-up goes on.

use std::collections::BTreeSet;
use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use super::acks::AckLog;
use super::frame;
use super::state::{Entry, Segment, Shared, State, lock};
use super::writer::{Standby, Writer, remove_standbys, segment_path};
use super::{Corrupt, OpenReport, Skipped, SpoolError, SpoolOptions};

/// What [`read_cut`] found in one file.
#[derive(Debug, Default)]
pub(super) struct Read {
    /// Valid bodies with their slot (index among the file's frames, skipped ones counted).
    pub(super) bodies: Vec<(u64, Bytes)>,
    /// The torn or corrupt tail cut off.
    pub(super) skipped: Option<Skipped>,
    /// Damaged frames skipped between valid ones.
    pub(super) gaps: Vec<frame::Gap>,
    /// Slots in the file, valid frames and gaps.
    pub(super) slots: u64,
}

/// Reads every valid frame body of `path`, truncating the file at a bad tail so later
/// appends are never hidden behind garbage. With `resync`, a bad frame that valid frames
/// follow costs only itself: it is reported and skipped, and the file left as it is (nothing
/// is appended to an old segment, so nothing hides behind it). A clean end followed by zeros
/// (a pre-zeroed segment) is cut too, without a report: nothing is appended to a file after
/// a restart, so its unwritten zeros are only disk space to give back.
pub(super) fn read_cut(path: &Path, resync: Option<frame::Resync>) -> Result<Read, SpoolError> {
    let io = |source| SpoolError::io(path, source);
    let buf = Bytes::from(fs::read(path).map_err(io)?);
    let split = frame::split(&buf, resync);
    for gap in &split.gaps {
        tracing::warn!(
            file = %path.display(),
            offset = gap.offset,
            bytes = gap.len,
            records = gap.frames.map_or_else(|| "unknown, at least 1".to_owned(), |n| n.to_string()),
            error = %gap.error,
            "audit spool: skipping a corrupt record; resynchronised on the next valid frame"
        );
    }
    let mut read = Read {
        bodies: split
            .bodies
            .into_iter()
            .map(|(slot, range)| (slot, buf.slice(range)))
            .collect(),
        skipped: None,
        gaps: split.gaps,
        slots: split.slots,
    };
    let Some(error) = split.error else {
        if split.valid_len < buf.len() {
            cut(path, split.valid_len as u64);
        }
        return Ok(read);
    };
    let written = buf[split.valid_len..]
        .iter()
        .rposition(|byte| *byte != 0)
        .map_or(0, |last| last + 1);
    let skipped = Skipped {
        file: path.to_path_buf(),
        offset: split.valid_len as u64,
        dropped_bytes: written as u64,
        error,
    };
    tracing::warn!(
        file = %path.display(),
        offset = skipped.offset,
        dropped_bytes = skipped.dropped_bytes,
        error = %skipped.error,
        "audit spool: cutting a torn or corrupt tail"
    );
    cut(path, skipped.offset);
    read.skipped = Some(skipped);
    Ok(read)
}

/// Whether a segment frame's body looks like one the writer made: an append time between
/// 2020 and 2100 (unix ms) and a record that is a JSON object, or an intent, a settlement
/// or a cancellation (`I`, `S`, `C`, see `audit::intent`). What [`frame::split`] resyncs on.
fn segment_body(body: &[u8]) -> bool {
    const FROM_2020: u64 = 1_577_836_800_000;
    const TO_2100: u64 = 4_102_444_800_000;
    frame::read_u64(body, 0).is_some_and(|ms| (FROM_2020..TO_2100).contains(&ms))
        && matches!(body.get(frame::MIN_BODY), Some(b'{' | b'I' | b'S' | b'C'))
}

/// Truncates `path` to `len`. Best effort: nothing is appended to an old segment, so a cut
/// that fails (a read-only disk) hides nothing; in `acks.log` it can only hide acks appended
/// after it, whose records then ship again.
fn cut(path: &Path, len: u64) {
    let cut = OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|file| file.set_len(len).and_then(|()| file.sync_data()));
    if let Err(source) = cut {
        let error = SpoolError::io(path, source);
        tracing::warn!(error = %crate::error::Chain::for_log(&error), "audit spool: file not cut");
    }
}

/// Segment files in `dir` with their first id, oldest first.
fn segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, SpoolError> {
    let io = |source| SpoolError::io(dir, source);
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        let name = path
            .file_name()
            .and_then(|name| name.to_str())
            .unwrap_or("");
        let base = name
            .strip_prefix("spool-")
            .and_then(|rest| rest.strip_suffix(".log"));
        if let Some(base) = base.and_then(|digits| digits.parse::<u64>().ok()) {
            found.push((base, path));
        }
    }
    found.sort_unstable();
    Ok(found)
}

/// Loads one segment's unacknowledged records into `state`; returns the id after its last.
///
/// A record's id is the segment's base plus its slot. After a gap whose frame count is known
/// (one), later slots are exact. After one whose count is not, later slots may be short of
/// the ids those records were acknowledged under, so their acks are not trusted: they ship
/// again (the audit table absorbs a record stored twice) rather than be taken for another
/// record's ack. Short slots stay within the segment's own ids, never the next segment's.
fn load_segment(
    state: &mut State,
    acked: &BTreeSet<u64>,
    base: u64,
    path: PathBuf,
    report: &mut OpenReport,
) -> Result<u64, SpoolError> {
    let read = read_cut(&path, Some(segment_body))?;
    report.skipped.extend(read.skipped);
    let uncertain = read
        .gaps
        .iter()
        .filter(|g| g.frames.is_none())
        .map(|g| g.slot)
        .min();
    report.corrupt.extend(read.gaps.iter().map(|gap| Corrupt {
        file: path.clone(),
        offset: gap.offset as u64,
        bytes: gap.len as u64,
        records: gap.frames,
        error: gap.error.clone(),
    }));
    let mut segment = Segment {
        path,
        count: read.slots,
        // A skipped frame is done with: nothing of it can ship.
        acked: read.gaps.len() as u64,
    };
    for (slot, body) in read.bodies {
        let id = base + slot;
        let trusted = uncertain.is_none_or(|from| slot < from);
        if trusted && acked.contains(&id) {
            segment.acked += 1;
            state.acked.insert(id);
            continue;
        }
        // `split` guarantees the eight-byte append time.
        let unix_ms = frame::read_u64(&body, 0).unwrap_or_default();
        let size = (frame::HEADER + body.len()) as u64;
        let payload = body.slice(frame::MIN_BODY..);
        state.hold(
            id,
            Entry {
                payload,
                unix_ms,
                size,
            },
        );
    }
    let end = base + segment.count;
    state.segments.insert(base, segment);
    Ok(end)
}

/// Opens the spool in `dir`: replay, reclaim, and a writer ready on a new segment. A disk
/// that cannot be written (full, read-only, the directory impossible to create) fails none of
/// it: what can be read is replayed, and the spool starts unwritable (see
/// [`OpenReport::unwritable`]) until a probe can make a segment. Only a read failing stops it.
pub(super) fn open(
    dir: &Path,
    options: SpoolOptions,
) -> Result<(Arc<Shared>, Writer, OpenReport), SpoolError> {
    let mut report = OpenReport::default();
    let (state, acks, next_id) = match fs::create_dir_all(dir) {
        Ok(()) => replay(dir, &mut report)?,
        // Nothing can have been spooled where there is no directory.
        Err(source) => {
            let error = SpoolError::io(dir, source);
            tracing::error!(error = %crate::error::Chain::for_log(&error), "audit spool directory cannot be created");
            (State::default(), AckLog::detached(dir), 0)
        }
    };
    let shared = Arc::new(Shared::new(
        dir.to_path_buf(),
        options.max_bytes,
        state,
        acks,
    ));
    if let Err(error) = tidy(&shared) {
        // The old log is still whole: it only remembers ids it no longer needs to.
        tracing::warn!(error = %crate::error::Chain::for_log(&error), "audit spool: finished segments not reclaimed at start-up");
    }
    let (writer, unwritable) = new_writer(&shared, options, next_id);
    report.unwritable = unwritable.map(|e| crate::error::Chain::for_log(&e).to_string());
    Ok((shared, writer, report))
}

/// Deletes finished segments and rewrites the ack log: always, so ids of segments deleted
/// before a crash leave the log now.
fn tidy(shared: &Shared) -> Result<(), SpoolError> {
    let mut acks = lock(&shared.acks);
    shared.reclaim(&mut acks)?;
    let live = lock(&shared.state).acked.clone();
    acks.rewrite(&live)
}

/// Reads what earlier runs left in `dir`: the state, the ack log and the next id.
fn replay(dir: &Path, report: &mut OpenReport) -> Result<(State, AckLog, u64), SpoolError> {
    if let Err(error) = remove_standbys(dir) {
        tracing::warn!(error = %crate::error::Chain::for_log(&error), "audit spool: old standby files not removed");
    }
    let (acks, acked, ack_skip) = AckLog::open(dir)?;
    report.skipped.extend(ack_skip);
    let mut state = State::default();
    // Past every id ever acknowledged too: were a corrupt segment cut short, its ids must not
    // be handed to new records that the old acks would then hide.
    let mut next_id = acked.last().map_or(0, |last| last + 1);
    for (base, path) in segments(dir)? {
        next_id = next_id.max(load_segment(&mut state, &acked, base, path, report)?);
    }
    state.held = state.stored;
    // Every old segment is finished with once a fresh one is active; fully acked and empty
    // ones are deleted by the reclaim that follows.
    state.active = next_id;
    report.segments = state
        .segments
        .values()
        .filter(|s| s.acked < s.count)
        .count();
    report.records = state.unacked.len();
    Ok((state, acks, next_id))
}

/// A writer on a fresh segment at `base`, zeroed before it is used (start-up waits for it
/// this once), with the next one zeroing behind it; or, when the disk refuses the segment, a
/// writer without one and the error: the spool is then unwritable until a probe succeeds.
fn new_writer(
    shared: &Arc<Shared>,
    options: SpoolOptions,
    base: u64,
) -> (Writer, Option<SpoolError>) {
    let bytes = options.segment_bytes;
    let (file, path, error) = match Standby::start(shared, bytes).activate(shared, base, bytes) {
        Ok((file, path)) => {
            shared.rotated(base, path.clone());
            (Some(Arc::new(file)), path, None)
        }
        Err((error, _)) => {
            shared.mark_unwritable(&error);
            (None, segment_path(&shared.dir, base), Some(error))
        }
    };
    let writer = Writer {
        shared: Arc::clone(shared),
        segment_bytes: bytes,
        commit_delay: options.commit_delay,
        // On a disk that just refused a segment, the probe starts the next one.
        standby: file.is_some().then(|| Standby::start(shared, bytes)),
        file,
        path,
        base,
        len: 0,
        next_id: base,
        broken: false,
    };
    (writer, error)
}
