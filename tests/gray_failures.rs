//! Gray failures under read load, through the fault front before the home region: a region
//! answering 400 ms late, then one that accepts requests and never answers. Eventually
//! consistent reads are hedged, the slow or silent region is demoted for reads (writes stay),
//! no read fails, and reads come back home once it recovers. Writers counting on their own
//! items meanwhile (with and without a condition on the count) find no write applied twice,
//! no success lost and no refusal of a write that was applied.
//!
//! Latencies are printed (the figures; `benches/gray_failures.rs` runs the same
//! scenario for longer), never asserted.

#![allow(clippy::expect_used)]

mod support;

use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_silent_home_regions_cost_no_read_and_reads_come_back() {
    let scenario = support::scenario_with_writers(Duration::from_secs(3), 2_000, 2).await;
    scenario.print_figures();
    for phase in &scenario.phases {
        assert!(
            phase.reads.errors.is_empty(),
            "{}: reads failed: {:?}",
            phase.name,
            phase.reads.errors
        );
        assert!(!phase.reads.latencies.is_empty(), "{}: no read", phase.name);
    }
    for name in ["home 400 ms slow", "home black-holed"] {
        let phase = scenario.phase(name);
        assert!(
            phase.home_left,
            "{name}: home was neither demoted nor ejected"
        );
        assert!(phase.counts.hedges >= 1.0, "{name}: no read was hedged");
        let (home, elsewhere) = (
            phase.counts.reads[0],
            phase.counts.reads[1] + phase.counts.reads[2],
        );
        assert!(
            elsewhere > home,
            "{name}: reads stayed home ({home} home, {elsewhere} elsewhere)"
        );
    }
    // The write goes home, slow or not; only its attempt timeout (by the retry rules) could
    // move it, which a 400 ms region meets only on a machine far slower than this test's.
    assert!(scenario.write_sent_home, "a write moved on latency");
    if scenario.write_while_slow != "us-east-1" {
        println!("the write timed out at home and moved by the retry rules");
    }
    // Each write was counted by its answer: a success once, an ambiguous one (a 5xx, no
    // answer) at most once, a refusal never.
    for (name, tallies) in &scenario.writes {
        assert_eq!(tallies.len(), 2, "{name}: writers");
        for tally in tallies {
            assert!(
                tally.consistent(),
                "{name}: {} (a write applied twice, or a success lost)",
                tally.summary()
            );
        }
        let succeeded: u64 = tallies.iter().map(|t| t.succeeded).sum();
        assert!(succeeded > 0, "{name}: no write succeeded");
    }
    for name in ["slow: recovery", "black hole: recovery"] {
        let phase = scenario.phase(name);
        assert!(
            phase.counts.reads[0] > 0.0,
            "{name}: reads never came back home"
        );
    }
}
