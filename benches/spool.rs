//! The audit spool's durable appends: records per second and the fsync group sizes group
//! commit reached, at several numbers of concurrent writers, on this machine's disk.
//! Printed, never asserted.
//!
//! `cargo bench --bench spool`

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use globalscale::audit::spool::Spool;

/// About the size of an audit record with a 1 KB item image.
const RECORD: usize = 1_400;
const RECORDS_PER_RUN: usize = 4_000;

fn main() {
    // `cargo test --all-targets` runs benches without `--bench`: a smoke run then.
    let records = if std::env::args().any(|a| a == "--bench") {
        RECORDS_PER_RUN
    } else {
        128
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!("writers  records/s  fsyncs  records/fsync  largest group");
    for writers in [1usize, 8, 32, 128] {
        runtime.block_on(run(writers, records));
    }
}

async fn run(writers: usize, records: usize) {
    let dir = tempfile::tempdir().unwrap();
    let spool = Arc::new(Spool::open(dir.path(), 1 << 30).await.unwrap());
    let record = Bytes::from(vec![b'x'; RECORD]);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..writers {
        let (spool, record) = (Arc::clone(&spool), record.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..records / writers {
                spool.append(record.clone()).await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let elapsed = started.elapsed();
    let stats = spool.group_stats();
    #[allow(clippy::cast_precision_loss)]
    let (rate, per_fsync) = (
        stats.records as f64 / elapsed.as_secs_f64(),
        stats.records as f64 / stats.fsyncs.max(1) as f64,
    );
    println!(
        "{writers:>7}  {rate:>9.0}  {:>6}  {per_fsync:>13.1}  {:>13}",
        stats.fsyncs, stats.largest_group
    );
}
