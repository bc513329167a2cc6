//! Gray failures' figures, printed, never asserted: eventually consistent GetItem from four SDK
//! readers through the sidecar (default settings but a 2 s failback ramp) in front of three
//! regions on one DynamoDB Local, the home region behind the tests' fault front: healthy,
//! 400 ms late, recovered, black-holed (connections accepted, nothing answered), recovered.
//! Per phase: reads, failures, p50 and p99, reads each region served, hedges.
//!
//! `cargo bench --bench gray_failures` runs 10 s phases (`cargo test --bench gray_failures
//! -- --bench` the same with the debug build); `tests/gray_failures.rs` asserts the
//! correctness side of the same scenario. Record what it prints in `benches/README.md`.

#![allow(clippy::expect_used, clippy::unwrap_used)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::Duration;

fn main() {
    // `cargo test --all-targets` runs benches without `--bench`: a smoke run then.
    let full = std::env::args().any(|a| a == "--bench");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let window = Duration::from_secs(if full { 10 } else { 1 });
    let scenario = runtime.block_on(support::scenario(window, 2_000));
    scenario.print_figures();
}
