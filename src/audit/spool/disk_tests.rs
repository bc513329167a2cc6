//! The spool on a disk that refuses: a failed write, fsync or segment preparation makes it
//! unwritable, and only a probe that makes a segment and writes and fsyncs in it makes it
//! writable again; start-up on such a disk opens an unwritable spool instead of failing.
//! Faults come from a name taken by a directory (a rename fails), a path under a regular file
//! (nothing can be created), and [`super::writer::FAIL_STANDBY`] (zeroing fails as on a full
//! disk), so every test runs anywhere, as any user.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use tempfile::TempDir;

use super::writer::{FAIL_STANDBY, FAIL_SYNC, STANDBY_SUFFIX, frame_len, segment_path};
use super::{Spool, SpoolError, SpoolOptions};

fn record(n: usize) -> Bytes {
    Bytes::from(format!("{{\"EventId\":\"event-{n:04}\"}}"))
}

/// Segments of two records.
async fn small_segments(dir: &Path) -> Spool {
    let options = SpoolOptions {
        max_bytes: 1 << 30,
        segment_bytes: frame_len(record(0).len()) * 2,
        commit_delay: std::time::Duration::ZERO,
    };
    Spool::open_with(dir, options).await.unwrap()
}

fn payloads(spool: &Spool) -> Vec<Bytes> {
    spool
        .pending(usize::MAX)
        .into_iter()
        .map(|(_, p)| p)
        .collect()
}

/// Polls (up to a minute: zeroing is an fsync a busy disk can hold up) until `done`.
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..6000 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("never: {what}");
}

fn zeroed_standby(dir: &Path, bytes: u64) -> Option<PathBuf> {
    let found = fs::read_dir(dir).unwrap().map(|e| e.unwrap().path());
    found
        .filter(|p| p.to_string_lossy().ends_with(STANDBY_SUFFIX))
        .find(|p| fs::metadata(p).is_ok_and(|m| m.len() == bytes))
}

#[tokio::test]
async fn a_failed_commit_refuses_until_a_probe_makes_a_segment_and_fsyncs_in_it() {
    let dir = TempDir::new().unwrap();
    let spool = small_segments(dir.path()).await;
    let first = spool.append(record(0)).await.unwrap();
    spool.append(record(1)).await.unwrap();
    // The next segment cannot be made: its name is taken by a directory that is not empty.
    let next = segment_path(dir.path(), first.get() + 2);
    fs::create_dir(&next).unwrap();
    fs::write(next.join("occupied"), b"x").unwrap();
    let failed = spool.append_admitted(record(2)).await;
    assert!(matches!(failed, Err(SpoolError::Io { .. })), "{failed:?}");
    assert!(!spool.writable());

    // The disk is nearly full: a segment's worth of zeros no longer fits, a small file
    // does. The old probe wrote and fsynced 4 KB like this and let writes back in; the
    // spool's own probe needs a segment and the next one zeroed, so it refuses.
    fs::write(dir.path().join(FAIL_STANDBY), b"").unwrap();
    fs::write(dir.path().join(".probe"), [0u8; 4096]).unwrap();
    assert!(spool.probe().await.is_err());
    assert!(!spool.writable());

    fs::remove_file(dir.path().join(FAIL_STANDBY)).unwrap();
    fs::remove_dir_all(&next).unwrap();
    spool.probe().await.unwrap();
    assert!(spool.writable());
    spool.append(record(3)).await.unwrap();
    drop(spool);
    let spool = small_segments(dir.path()).await;
    assert!(spool.open_report().unwritable.is_none());
    assert_eq!(payloads(&spool), vec![record(0), record(1), record(3)]);
}

#[tokio::test]
async fn a_segment_that_cannot_be_prepared_refuses_writes_while_the_active_one_has_room() {
    let dir = TempDir::new().unwrap();
    let spool = small_segments(dir.path()).await;
    let bytes = frame_len(record(0).len()) * 2;
    eventually("the standby zeroed", || {
        zeroed_standby(dir.path(), bytes).is_some()
    })
    .await;
    // The disk fills: the next standby, started when the segment rotates, cannot be zeroed.
    fs::write(dir.path().join(FAIL_STANDBY), b"").unwrap();
    spool.append(record(0)).await.unwrap();
    spool.append(record(1)).await.unwrap();
    spool.append(record(2)).await.unwrap();
    eventually("the spool refuses", || !spool.writable()).await;
    // The write admitted before still gets its record: the active segment has room.
    spool.append_admitted(record(3)).await.unwrap();
    assert!(spool.probe().await.is_err());
    assert!(!spool.writable());

    fs::remove_file(dir.path().join(FAIL_STANDBY)).unwrap();
    spool.probe().await.unwrap();
    assert!(spool.writable());
    spool.append(record(4)).await.unwrap();
    assert_eq!(payloads(&spool), (0..5).map(record).collect::<Vec<_>>());
}

#[tokio::test]
async fn start_up_on_a_full_disk_opens_an_unwritable_spool_with_its_records() {
    let dir = TempDir::new().unwrap();
    let spool = small_segments(dir.path()).await;
    spool.append(record(0)).await.unwrap();
    drop(spool);
    fs::write(dir.path().join(FAIL_STANDBY), b"").unwrap();

    let spool = small_segments(dir.path()).await;
    assert!(spool.open_report().unwritable.is_some());
    assert!(!spool.writable());
    // What was spooled before still ships.
    assert_eq!(payloads(&spool), vec![record(0)]);
    let refused = spool.append_admitted(record(1)).await;
    assert!(matches!(refused, Err(SpoolError::Io { .. })), "{refused:?}");

    fs::remove_file(dir.path().join(FAIL_STANDBY)).unwrap();
    spool.probe().await.unwrap();
    spool.append(record(2)).await.unwrap();
    drop(spool);
    let spool = small_segments(dir.path()).await;
    assert_eq!(payloads(&spool), vec![record(0), record(2)]);
}

#[tokio::test]
async fn a_spool_dir_that_cannot_be_created_opens_unwritable_and_recovers() {
    let root = TempDir::new().unwrap();
    let blocker = root.path().join("not-a-dir");
    fs::write(&blocker, b"a file where the spool's parent should be").unwrap();
    let dir = blocker.join("spool");

    let spool = small_segments(&dir).await;
    assert!(spool.open_report().unwritable.is_some());
    assert!(!spool.writable());
    assert_eq!(spool.backlog().records, 0);
    assert!(spool.probe().await.is_err());

    fs::remove_file(&blocker).unwrap();
    spool.probe().await.unwrap();
    assert!(spool.writable());
    let id = spool.append(record(0)).await.unwrap();
    spool.ack(&[id]).await.unwrap();
    spool.append(record(1)).await.unwrap();
    drop(spool);
    assert_eq!(payloads(&small_segments(&dir).await), vec![record(1)]);
}

/// An fsync that fails (the syncer's, after the group was written and its waiters told so)
/// fails that group's appends, makes the spool unwritable, and costs that segment: nothing
/// written to it after the failure counts, and replay finds none of the failed group.
#[tokio::test]
async fn a_failed_fsync_fails_its_group_and_abandons_the_segment() {
    let dir = TempDir::new().unwrap();
    let options = SpoolOptions {
        max_bytes: 1 << 30,
        segment_bytes: frame_len(record(0).len()) * 16,
        commit_delay: std::time::Duration::ZERO,
    };
    let spool = Spool::open_with(dir.path(), options).await.unwrap();
    spool.append(record(0)).await.unwrap();
    fs::write(dir.path().join(FAIL_SYNC), b"").unwrap();
    let appending = spool.append_now(record(1)).unwrap();
    appending.written.await.unwrap();
    let failed = appending.durable.await;
    assert!(matches!(failed, Err(SpoolError::Io { .. })), "{failed:?}");
    assert!(!spool.writable());

    fs::remove_file(dir.path().join(FAIL_SYNC)).unwrap();
    spool.probe().await.unwrap();
    assert!(spool.writable());
    spool.append(record(2)).await.unwrap();
    assert_eq!(payloads(&spool), vec![record(0), record(2)]);
    drop(spool);
    let spool = Spool::open_with(dir.path(), options).await.unwrap();
    assert_eq!(payloads(&spool), vec![record(0), record(2)]);
}
