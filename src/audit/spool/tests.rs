use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use tempfile::TempDir;

use super::frame::FrameError;
use super::state::lock;
use super::{RecordId, Spool, SpoolError, SpoolOptions};

const BIG: u64 = 1 << 30;
/// Segments of the tests that do not rotate: each is zeroed to this size on disk, so it is
/// small to keep the many reopens quick, and far larger than their records.
const SEGMENT: u64 = 64 * 1024;

fn record(n: usize) -> Bytes {
    Bytes::from(format!("{{\"EventId\":\"event-{n:04}\"}}"))
}

/// No byte limit to speak of, segments of `segment_bytes`.
fn options(segment_bytes: u64) -> SpoolOptions {
    SpoolOptions {
        max_bytes: BIG,
        segment_bytes,
        commit_delay: std::time::Duration::ZERO,
    }
}

async fn open(dir: &Path) -> Spool {
    Spool::open_with(dir, options(SEGMENT)).await.unwrap()
}

async fn append_all(spool: &Spool, range: std::ops::Range<usize>) -> Vec<RecordId> {
    let mut ids = Vec::new();
    for n in range {
        ids.push(spool.append(record(n)).await.unwrap());
    }
    ids
}

fn payloads(spool: &Spool) -> Vec<Bytes> {
    spool
        .pending(usize::MAX)
        .into_iter()
        .map(|(_, p)| p)
        .collect()
}

fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.to_string_lossy().contains("spool-"))
        .collect();
    files.sort();
    files
}

/// The one segment holding records, after a single run of appends (the others are zeros).
fn written_segment(dir: &Path) -> PathBuf {
    let mut full = segment_files(dir)
        .into_iter()
        .filter(|path| fs::read(path).unwrap().iter().any(|b| *b != 0));
    let found = full.next().unwrap();
    assert!(full.next().is_none());
    found
}

fn copy_dir(from: &Path) -> TempDir {
    let to = TempDir::new().unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        fs::copy(&path, to.path().join(path.file_name().unwrap())).unwrap();
    }
    to
}

#[tokio::test]
async fn appends_replay_after_reopen() {
    let dir = TempDir::new().unwrap();
    let spool = open(dir.path()).await;
    let ids = append_all(&spool, 0..5).await;
    assert!(ids.windows(2).all(|pair| pair[0] < pair[1]));
    drop(spool);

    let spool = open(dir.path()).await;
    assert_eq!(spool.open_report().records, 5);
    assert!(spool.open_report().skipped.is_empty());
    let pending = spool.pending(usize::MAX);
    assert_eq!(pending.iter().map(|(id, _)| *id).collect::<Vec<_>>(), ids);
    assert_eq!(payloads(&spool), (0..5).map(record).collect::<Vec<_>>());
    let next = spool.append(record(5)).await.unwrap();
    assert!(next > ids[4]);
    assert_eq!(spool.pending(2).len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_share_fsyncs() {
    let dir = TempDir::new().unwrap();
    let spool = Arc::new(open(dir.path()).await);
    let mut tasks = tokio::task::JoinSet::new();
    {
        // The writer waits here after taking its first request; `append` queues at call
        // time, so all 200 are queued before it goes on and the groups do not depend on
        // scheduling.
        let _gate = lock(&spool.shared.gate);
        for n in 0..200 {
            tasks.spawn(spool.append(record(n)));
        }
    }
    let mut ids = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        ids.push(joined.unwrap().unwrap());
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 200);
    let stats = spool.group_stats();
    assert_eq!(stats.records, 200);
    assert!(stats.fsyncs < stats.records, "{stats:?}");
    assert!(stats.largest_group >= 199, "{stats:?}");
    drop(tasks);
    let spool = Arc::into_inner(spool).unwrap();
    drop(spool);
    assert_eq!(open(dir.path()).await.pending(usize::MAX).len(), 200);
}

/// Intents written one by one (as requests write them) share one fsync while the commit
/// delay gathers them, and a waiter whose answer is back ends the gathering: nothing waits
/// out the delay (a minute here, so a pass cannot be the delay running out).
#[tokio::test]
async fn the_group_commit_gathers_until_a_waiter_hurries_it() {
    let dir = TempDir::new().unwrap();
    let options = SpoolOptions {
        commit_delay: std::time::Duration::from_mins(1),
        ..options(SEGMENT)
    };
    let spool = Spool::open_with(dir.path(), options).await.unwrap();
    let mut durable = Vec::new();
    for n in 0..5 {
        let appending = spool.append_now(record(n)).unwrap();
        appending.written.await.unwrap();
        durable.push(appending.durable);
    }
    for waiting in &mut durable {
        let ready =
            std::future::poll_fn(|cx| std::task::Poll::Ready(waiting.as_mut().poll(cx).is_ready()))
                .await;
        assert!(
            !ready,
            "no fsync before the delay is up or a waiter hurries"
        );
    }
    assert_eq!(spool.group_stats().fsyncs, 0);
    spool.hurry();
    for waiting in durable {
        waiting.await.unwrap();
    }
    let stats = spool.group_stats();
    assert_eq!((stats.fsyncs, stats.records), (1, 5), "{stats:?}");
    // A hurry with nothing gathered is a no-op; the next intent still waits for one.
    spool.hurry();
    let appending = spool.append_now(record(5)).unwrap();
    appending.written.await.unwrap();
    spool.hurry();
    appending.durable.await.unwrap();
    assert_eq!(spool.group_stats().fsyncs, 2);
}

#[tokio::test]
async fn acks_survive_reopen() {
    let dir = TempDir::new().unwrap();
    let spool = open(dir.path()).await;
    let ids = append_all(&spool, 0..6).await;
    spool.ack(&[ids[0], ids[1], ids[3]]).await.unwrap();
    let expected: Vec<RecordId> = vec![ids[2], ids[4], ids[5]];
    let pending = |spool: &Spool| -> Vec<RecordId> {
        spool
            .pending(usize::MAX)
            .into_iter()
            .map(|(id, _)| id)
            .collect()
    };
    assert_eq!(pending(&spool), expected);
    drop(spool);

    let spool = open(dir.path()).await;
    assert_eq!(pending(&spool), expected);
    assert_eq!(spool.backlog().records, 3);
    // Acking an already acked id is harmless.
    spool.ack(&[ids[0], ids[2]]).await.unwrap();
    drop(spool);
    let spool = open(dir.path()).await;
    assert_eq!(pending(&spool), vec![ids[4], ids[5]]);
}

#[tokio::test]
async fn an_ack_lost_in_a_crash_only_ships_the_record_again() {
    let dir = TempDir::new().unwrap();
    let spool = open(dir.path()).await;
    let ids = append_all(&spool, 0..3).await;
    let acks = dir.path().join("acks.log");
    let before = fs::read(&acks).unwrap();
    spool.ack(&ids[..2]).await.unwrap();
    let after = fs::read(&acks).unwrap();
    assert!(after.len() > before.len(), "the ack is written at once");
    drop(spool);
    // A power cut before the lazy fsync: none, or part, of the ack's frame reached the disk.
    for kept in [
        before.len(),
        before.len() + (after.len() - before.len()) / 2,
    ] {
        let crashed = copy_dir(dir.path());
        fs::write(crashed.path().join("acks.log"), &after[..kept]).unwrap();
        let spool = open(crashed.path()).await;
        assert_eq!(payloads(&spool), vec![record(0), record(1), record(2)]);
    }
}

/// A group torn by a power cut: into a pre-zeroed segment (`extended` false) what was not
/// written is still zeros; past the zeros, the file ends where the write stopped.
fn tear(segment: &Path, cut: u64, extended: bool) {
    let file = fs::OpenOptions::new().write(true).open(segment).unwrap();
    let len = file.metadata().unwrap().len();
    file.set_len(cut).unwrap();
    if !extended {
        file.set_len(len).unwrap();
    }
}

#[tokio::test]
async fn torn_tail_at_every_offset_keeps_earlier_records() {
    let pristine = TempDir::new().unwrap();
    let spool = open(pristine.path()).await;
    append_all(&spool, 0..3).await;
    drop(spool);
    let file = written_segment(pristine.path());
    let frame = super::writer::frame_len(record(2).len());
    let end = 3 * frame;
    let last_start = end - frame;
    let pristine_bytes = fs::read(&file).unwrap();

    for (cut, extended) in (last_start..end).flat_map(|cut| [(cut, false), (cut, true)]) {
        let dir = copy_dir(pristine.path());
        let segment = dir.path().join(file.file_name().unwrap());
        tear(&segment, cut, extended);

        let spool = open(dir.path()).await;
        let at = format!("cut at {cut}, extended {extended}");
        assert_eq!(payloads(&spool), vec![record(0), record(1)], "{at}");
        let skipped = &spool.open_report().skipped;
        if cut == last_start {
            // Nothing of the third frame was written: a clean end, zeros or not.
            assert!(skipped.is_empty(), "{at}: {skipped:?}");
        } else {
            // A torn frame is reported even with zeros after it (its crc fails).
            assert_eq!(skipped.len(), 1, "{at}");
            assert_eq!(skipped[0].offset, last_start);
            // What of the third frame was written, not the segment's zeros after it.
            let written = &pristine_bytes
                [usize::try_from(last_start).unwrap()..usize::try_from(cut).unwrap()];
            let lost = written.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
            assert_eq!(skipped[0].dropped_bytes, lost as u64, "{at}");
            assert!(lost > 0 && lost as u64 <= cut - last_start, "{at}");
        }
        assert_eq!(fs::metadata(&segment).unwrap().len(), last_start, "{at}");
        spool.append(record(9)).await.unwrap();
        drop(spool);
        let spool = open(dir.path()).await;
        assert!(spool.open_report().skipped.is_empty(), "{at}");
        assert_eq!(payloads(&spool), vec![record(0), record(1), record(9)]);
    }
}

#[tokio::test]
async fn a_pre_zeroed_segment_replays_its_records_and_gives_its_zeros_back() {
    let dir = TempDir::new().unwrap();
    let spool = open(dir.path()).await;
    append_all(&spool, 0..3).await;
    drop(spool);
    let file = written_segment(dir.path());
    let bytes = fs::read(&file).unwrap();
    let frames = usize::try_from(3 * super::writer::frame_len(record(0).len())).unwrap();
    assert_eq!(bytes.len() as u64, SEGMENT, "zeroed to its size before use");
    assert!(bytes[frames..].iter().all(|b| *b == 0));

    let spool = open(dir.path()).await;
    assert!(spool.open_report().skipped.is_empty());
    assert_eq!(payloads(&spool), (0..3).map(record).collect::<Vec<_>>());
    assert_eq!(fs::metadata(&file).unwrap().len(), frames as u64);
}

/// Spools three records, lets `damage` change the segment's bytes, and reopens.
async fn reopen_damaged(damage: impl FnOnce(&mut Vec<u8>, u64)) -> (TempDir, Spool) {
    let dir = TempDir::new().unwrap();
    let spool = open(dir.path()).await;
    append_all(&spool, 0..3).await;
    drop(spool);
    let file = written_segment(dir.path());
    let mut bytes = fs::read(&file).unwrap();
    damage(&mut bytes, super::writer::frame_len(record(0).len()));
    fs::write(&file, bytes).unwrap();
    let spool = open(dir.path()).await;
    (dir, spool)
}

#[tokio::test]
async fn a_flipped_payload_byte_costs_that_record_only() {
    let (dir, spool) = reopen_damaged(|bytes, frame| {
        let in_second_payload = usize::try_from(frame).unwrap() + 20;
        bytes[in_second_payload] ^= 0x40;
    })
    .await;
    assert_eq!(payloads(&spool), vec![record(0), record(2)]);
    let report = spool.open_report();
    assert!(report.skipped.is_empty(), "{report:?}");
    assert_eq!(report.corrupt.len(), 1);
    assert!(matches!(
        report.corrupt[0].error,
        FrameError::CrcMismatch { .. }
    ));
    assert_eq!(report.corrupt[0].records, Some(1));
    assert_eq!(report.records_lost(), 1);
    spool.append(record(7)).await.unwrap();
    drop(spool);
    assert_eq!(
        payloads(&open(dir.path()).await),
        vec![record(0), record(2), record(7)]
    );
}

#[tokio::test]
async fn garbage_length_is_cut() {
    let (dir, spool) = reopen_damaged(|bytes, frame| {
        let third = usize::try_from(frame * 2).unwrap();
        bytes[third..third + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    })
    .await;
    assert_eq!(payloads(&spool), vec![record(0), record(1)]);
    let skipped = &spool.open_report().skipped;
    assert_eq!(
        skipped[0].error,
        FrameError::BadLength { declared: u32::MAX }
    );
    spool.append(record(8)).await.unwrap();
    drop(spool);
    let spool = open(dir.path()).await;
    assert_eq!(payloads(&spool), vec![record(0), record(1), record(8)]);
}

#[tokio::test]
async fn garbage_after_valid_records_in_the_ack_log_is_cut() {
    let dir = TempDir::new().unwrap();
    let spool = open(dir.path()).await;
    let ids = append_all(&spool, 0..3).await;
    spool.ack(&ids[..1]).await.unwrap();
    drop(spool);
    let acks = dir.path().join("acks.log");
    let mut bytes = fs::read(&acks).unwrap();
    bytes.extend_from_slice(&[0xde, 0xad, 0xbe]);
    fs::write(&acks, bytes).unwrap();

    let spool = open(dir.path()).await;
    assert_eq!(spool.open_report().skipped.len(), 1);
    assert_eq!(payloads(&spool), vec![record(1), record(2)]);
}

#[tokio::test]
async fn full_refuses_until_acked() {
    let dir = TempDir::new().unwrap();
    let frame = super::writer::frame_len(record(0).len());
    let spool = Spool::open(dir.path(), frame * 3).await.unwrap();
    let ids = append_all(&spool, 0..3).await;
    let refused = spool.append(record(3)).await;
    assert!(
        matches!(refused, Err(SpoolError::Full { .. })),
        "{refused:?}"
    );
    assert_eq!(spool.backlog().records, 3);
    assert_eq!(spool.backlog().bytes, frame * 3);
    // The refused append left nothing counted against the limit.
    assert_eq!(spool.backlog().held, frame * 3);
    assert_eq!(spool.limit(), frame * 3);

    spool.ack(&ids[..1]).await.unwrap();
    assert_eq!(spool.backlog().held, frame * 2);
    spool.append(record(3)).await.unwrap();
    assert_eq!(payloads(&spool), (1..4).map(record).collect::<Vec<_>>());
}

#[tokio::test]
async fn too_large_is_refused() {
    let dir = TempDir::new().unwrap();
    let spool = open(dir.path()).await;
    let huge = Bytes::from(vec![b'x'; super::MAX_BODY]);
    let refused = spool.append(huge).await;
    assert!(
        matches!(refused, Err(SpoolError::TooLarge { .. })),
        "{refused:?}"
    );
}

#[tokio::test]
async fn segments_rotate_and_are_deleted_once_acked() {
    let dir = TempDir::new().unwrap();
    let frame = super::writer::frame_len(record(0).len());
    let options = options(frame * 2);
    let spool = Spool::open_with(dir.path(), options).await.unwrap();
    let ids = append_all(&spool, 0..9).await;
    assert_eq!(segment_files(dir.path()).len(), 5);

    spool.ack(&ids[..4]).await.unwrap();
    assert_eq!(segment_files(dir.path()).len(), 3);
    drop(spool);

    let spool = Spool::open_with(dir.path(), options).await.unwrap();
    assert_eq!(payloads(&spool), (4..9).map(record).collect::<Vec<_>>());
    let rest: Vec<RecordId> = spool
        .pending(usize::MAX)
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    spool.ack(&rest).await.unwrap();
    // Only the active segment is left.
    assert_eq!(segment_files(dir.path()).len(), 1);
    drop(spool);
    let spool = Spool::open_with(dir.path(), options).await.unwrap();
    assert_eq!(spool.backlog().records, 0);
    let next = spool.append(record(9)).await.unwrap();
    assert!(next > ids[8]);
}

#[tokio::test]
async fn write_error_fails_the_append_and_spares_earlier_records() {
    let dir = TempDir::new().unwrap();
    let frame = super::writer::frame_len(record(0).len());
    let options = options(frame);
    let spool = Spool::open_with(dir.path(), options).await.unwrap();
    let first = spool.append(record(0)).await.unwrap();
    // The next segment cannot be made: its name is taken by a directory that is not empty,
    // so renaming the standby onto it fails.
    let next = super::writer::segment_path(dir.path(), first.get() + 1);
    fs::create_dir(&next).unwrap();
    fs::write(next.join("occupied"), b"x").unwrap();

    let failed = spool.append(record(1)).await;
    assert!(matches!(failed, Err(SpoolError::Io { .. })), "{failed:?}");
    fs::remove_dir_all(&next).unwrap();
    spool.append(record(2)).await.unwrap();
    assert_eq!(payloads(&spool), vec![record(0), record(2)]);
    drop(spool);

    let spool = Spool::open_with(dir.path(), options).await.unwrap();
    assert!(spool.open_report().skipped.is_empty());
    assert_eq!(payloads(&spool), vec![record(0), record(2)]);
}

fn standbys(dir: &Path) -> Vec<PathBuf> {
    let is_standby = |path: &PathBuf| {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        name.ends_with(super::writer::STANDBY_SUFFIX)
    };
    let found = fs::read_dir(dir).unwrap().map(|e| e.unwrap().path());
    found.filter(is_standby).collect()
}

/// The standby the helper zeroed: there, and as long as a segment.
async fn zeroed_standby(dir: &Path, bytes: u64) -> PathBuf {
    // A minute: zeroing is an fsync, which a busy disk can hold up for seconds.
    for _ in 0..6000 {
        if let [standby] = standbys(dir).as_slice()
            && fs::metadata(standby).is_ok_and(|m| m.len() == bytes)
        {
            return standby.clone();
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("no zeroed standby in {}", dir.display());
}

#[tokio::test]
async fn rotation_renames_the_standby_and_zeroes_the_next() {
    use std::os::unix::fs::MetadataExt;
    let dir = TempDir::new().unwrap();
    let frame = super::writer::frame_len(record(0).len());
    let options = options(frame * 2);
    let spool = Spool::open_with(dir.path(), options).await.unwrap();
    let standby = zeroed_standby(dir.path(), frame * 2).await;
    let inode = fs::metadata(&standby).unwrap().ino();
    let ids = append_all(&spool, 0..3).await;
    // The third record filled the first segment and went to the standby, renamed.
    let third = super::writer::segment_path(dir.path(), ids[2].get());
    let third = fs::metadata(third).unwrap();
    assert_eq!(third.ino(), inode);
    assert_eq!(third.len(), frame * 2);
    assert!(!standby.exists());
    zeroed_standby(dir.path(), frame * 2).await;
}

#[tokio::test]
async fn a_leftover_standby_is_not_a_segment() {
    let pristine = TempDir::new().unwrap();
    let spool = open(pristine.path()).await;
    append_all(&spool, 0..3).await;
    drop(spool);
    // A crash while a standby was being zeroed; even holding valid frames it is not read.
    let dir = TempDir::new().unwrap();
    let leftover = dir
        .path()
        .join(format!("0123456789abcdef{}", super::writer::STANDBY_SUFFIX));
    fs::copy(written_segment(pristine.path()), &leftover).unwrap();

    let spool = open(dir.path()).await;
    assert_eq!(spool.open_report().records, 0);
    assert!(spool.open_report().skipped.is_empty());
    assert!(!leftover.exists());
    spool.append(record(5)).await.unwrap();
    assert_eq!(payloads(&spool), vec![record(5)]);
}

#[tokio::test]
async fn backlog_reports_unshipped_records() {
    let dir = TempDir::new().unwrap();
    let spool = open(dir.path()).await;
    assert_eq!(spool.backlog().records, 0);
    let ids = append_all(&spool, 0..2).await;
    let frame = super::writer::frame_len(record(0).len());
    assert_eq!(spool.backlog().bytes, frame * 2);
    spool.ack(&ids).await.unwrap();
    assert_eq!(spool.backlog().records, 0);
    assert_eq!(spool.backlog().bytes, 0);
}

#[tokio::test]
async fn ids_acked_in_a_cut_tail_are_not_reused() {
    let dir = TempDir::new().unwrap();
    let spool = open(dir.path()).await;
    let ids = append_all(&spool, 0..3).await;
    spool.ack(&ids[2..]).await.unwrap();
    drop(spool);
    let file = written_segment(dir.path());
    let mut bytes = fs::read(&file).unwrap();
    let frame = usize::try_from(super::writer::frame_len(record(0).len())).unwrap();
    bytes[frame + 20] ^= 0x01;
    fs::write(&file, bytes).unwrap();

    let spool = open(dir.path()).await;
    assert_eq!(payloads(&spool), vec![record(0)]);
    // Were id 2 handed out again, the old ack would hide the new record.
    let fresh = append_all(&spool, 7..9).await;
    assert!(fresh[0] > ids[2]);
    drop(spool);
    let spool = open(dir.path()).await;
    assert_eq!(payloads(&spool), vec![record(0), record(7), record(8)]);
}

/// Thirty records in one segment, written in separate groups; the segment and frame length.
async fn thirty(dir: &Path) -> (Spool, Vec<RecordId>, PathBuf, usize) {
    let spool = open(dir).await;
    let ids = append_all(&spool, 0..30).await;
    let file = written_segment(dir);
    let frame = usize::try_from(super::writer::frame_len(record(0).len())).unwrap();
    (spool, ids, file, frame)
}

fn damage(file: &Path, change: impl FnOnce(&mut Vec<u8>)) {
    let mut bytes = fs::read(file).unwrap();
    change(&mut bytes);
    fs::write(file, bytes).unwrap();
}

#[tokio::test]
async fn one_flipped_byte_in_record_6_of_30_loses_that_record_and_ships_the_other_29() {
    let dir = TempDir::new().unwrap();
    let (spool, ids, file, frame) = thirty(dir.path()).await;
    // Acks before and after the damage stay true: the damaged frame's length is intact.
    spool.ack(&[ids[1], ids[20]]).await.unwrap();
    drop(spool);
    damage(&file, |bytes| bytes[5 * frame + 24] ^= 0x01);

    let spool = open(dir.path()).await;
    let expected: Vec<Bytes> = (0..30)
        .filter(|n| ![1, 5, 20].contains(n))
        .map(record)
        .collect();
    assert_eq!(payloads(&spool), expected);
    let pending: Vec<RecordId> = spool
        .pending(usize::MAX)
        .iter()
        .map(|(id, _)| *id)
        .collect();
    assert!(pending.contains(&ids[6]) && pending.contains(&ids[29]));
    assert_eq!(spool.open_report().records_lost(), 1);
    assert_eq!(spool.open_report().corrupt[0].offset, 5 * frame as u64);
    // Not cut: the frames behind the damage are still in the file (only its zeros went).
    assert_eq!(fs::metadata(&file).unwrap().len(), 30 * frame as u64);
    // Every surviving record shipped: the segment goes, damage and all.
    spool.ack(&pending).await.unwrap();
    drop(spool);
    let spool = open(dir.path()).await;
    assert_eq!(spool.backlog().records, 0);
    assert!(spool.open_report().corrupt.is_empty());
    assert!(!file.exists());
}

#[tokio::test]
async fn a_damaged_length_is_skipped_and_acks_after_it_are_not_trusted() {
    let dir = TempDir::new().unwrap();
    let (spool, ids, file, frame) = thirty(dir.path()).await;
    spool.ack(&[ids[2], ids[12]]).await.unwrap();
    drop(spool);
    // Record 6's length and a stretch after it: how many frames the damage covers is lost.
    damage(&file, |bytes| {
        bytes[5 * frame..5 * frame + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        bytes[6 * frame + 3] ^= 0xff;
    });
    let spool = open(dir.path()).await;
    let report = spool.open_report();
    assert_eq!(report.corrupt.len(), 1, "{report:?}");
    assert_eq!(report.corrupt[0].records, None);
    assert_eq!(report.corrupt[0].bytes, 2 * frame as u64);
    // Before the damage the ack holds; after it, record 12 ships again rather than risk
    // taking another record's ack for its own.
    let mut expected: Vec<usize> = (0..30).filter(|n| ![2, 5, 6].contains(n)).collect();
    expected.sort_unstable();
    assert_eq!(
        payloads(&spool),
        expected.into_iter().map(record).collect::<Vec<_>>()
    );
    // New ids stay past every acknowledged one, so no old ack can hide a new record.
    let fresh = spool.append(record(99)).await.unwrap();
    assert!(fresh > ids[12]);
    drop(spool);
    let spool = open(dir.path()).await;
    assert_eq!(payloads(&spool).last(), Some(&record(99)));
    assert_eq!(spool.backlog().records, 28);
}

#[tokio::test]
async fn a_zeroed_block_in_the_middle_is_skipped_not_taken_for_the_end() {
    let dir = TempDir::new().unwrap();
    let (spool, _, file, frame) = thirty(dir.path()).await;
    drop(spool);
    // A lost sector: zeros over frames 6 to 9 and part of 10.
    damage(&file, |bytes| bytes[5 * frame..9 * frame + 7].fill(0));
    let spool = open(dir.path()).await;
    let expected: Vec<Bytes> = (0..5).chain(10..30).map(record).collect();
    assert_eq!(payloads(&spool), expected);
    assert_eq!(spool.open_report().corrupt.len(), 1);
}
