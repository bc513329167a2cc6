//! Hedged reads, the hedge budget, latency demotion and the failback ramp, in simulated time.

use super::*;
use crate::region::{ReadKind, ReadSample};

const SLOW: Duration = Duration::from_millis(400);
/// The config's floor: the hedge delay while the region's p95 is unknown or below it.
const FLOOR: Duration = Duration::from_millis(20);

fn get() -> Value {
    json!({"TableName": "T", "Key": {"k": {"S": "1"}}})
}

fn late() -> Step {
    Step::Late(SLOW, 200, json!({"Item": {}}))
}

/// An eventually consistent GetItem through the attempt loop.
async fn read(proxy: &Proxy) -> Reply {
    let snapshot = proxy.snapshot.load_full();
    let body = get();
    let mut req = forward(&Operation::GetItem, &body, None, None);
    req.read = Some(ReadKind::GetItem);
    proxy
        .forward(&snapshot, &req, ResendSafety::Safe)
        .await
        .unwrap()
}

fn counter(proxy: &Proxy, metric: &prometheus::IntCounterVec) -> u64 {
    let _ = proxy;
    metric.with_label_values(&["us-east-1", "us-west-2"]).get()
}

/// Teaches home a GetItem baseline of 5 ms (slow threshold 55 ms).
fn learn_home(proxy: &Proxy) {
    let snapshot = proxy.snapshot.load_full();
    let home = &snapshot.regions[0];
    for _ in 0..40 {
        let sample = ReadSample::Answered(Duration::from_millis(5));
        proxy.health_log.read(
            &snapshot,
            home,
            ReadKind::GetItem,
            sample,
            tokio::time::Instant::now(),
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_slow_read_is_hedged_after_the_delay_and_the_first_answer_wins() {
    let script = Script::with(&[("home", late())]);
    let proxy = proxy(&script).await;
    let started = tokio::time::Instant::now();
    let reply = read(&proxy).await;
    assert_eq!(reply.region.name, "us-west-2");
    assert_eq!(
        started.elapsed(),
        FLOOR,
        "one hedge delay, then the hedge's answer"
    );
    assert_eq!(script.hosts(), ["home", "second"]);
    assert_eq!(counter(&proxy, &proxy.metrics.hedges), 1);
    assert_eq!(counter(&proxy, &proxy.metrics.hedges_won), 1);

    // A region answering within the delay is never hedged.
    let reply = read(&proxy).await;
    assert_eq!(reply.region.name, "us-east-1");
    assert_eq!(script.hosts(), ["home", "second", "home"]);
    assert_eq!(counter(&proxy, &proxy.metrics.hedges), 1);
}

#[tokio::test(start_paused = true)]
async fn writes_and_strongly_consistent_reads_are_never_hedged() {
    let script = Script::with(&[("home", late()), ("home", late())]);
    let proxy = proxy(&script).await;
    let started = tokio::time::Instant::now();
    let strong = json!({"TableName": "T", "Key": {"k": {"S": "1"}}, "ConsistentRead": true});
    let reply = run(&proxy, &Operation::GetItem, &strong, ResendSafety::Safe)
        .await
        .unwrap();
    assert_eq!(reply.region.name, "us-east-1");
    assert_eq!(started.elapsed(), SLOW, "it waited for its region");
    let put = json!({"TableName": "T", "Item": {"k": {"S": "1"}}});
    let reply = run(&proxy, &Operation::PutItem, &put, ResendSafety::Safe)
        .await
        .unwrap();
    assert_eq!(reply.region.name, "us-east-1");
    assert_eq!(script.hosts(), ["home", "home"]);
    assert_eq!(counter(&proxy, &proxy.metrics.hedges), 0);
}

#[tokio::test(start_paused = true)]
async fn without_budget_a_read_waits_unless_its_region_is_found_failing() {
    let script = Script::with(&[("home", late()), ("home", late())]);
    let proxy = proxy(&script).await;
    let snapshot = proxy.snapshot.load_full();
    while snapshot.hedge_budget.withdraw() {}
    let started = tokio::time::Instant::now();
    let reply = read(&proxy).await;
    assert_eq!(reply.region.name, "us-east-1");
    assert_eq!(started.elapsed(), SLOW, "no budget: no hedge");
    assert_eq!(proxy.metrics.hedge_budget_exhausted.get(), 1);

    // The same wait, but home is demoted meanwhile: the read leaves within a recheck.
    let started = tokio::time::Instant::now();
    let waiting = read(&proxy);
    let demote = async {
        tokio::time::sleep(Duration::from_millis(10)).await;
        let home = &snapshot.regions[0];
        while !home.health.reads.is_demoted() {
            let now = tokio::time::Instant::now();
            home.health.reads.record(
                ReadKind::GetItem,
                ReadSample::Slow,
                now,
                &judge(&snapshot),
                [],
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(home.health.reads.is_demoted());
        started.elapsed()
    };
    let (reply, demoted_after) = tokio::join!(waiting, demote);
    assert_eq!(reply.region.name, "us-west-2");
    assert!(
        started.elapsed() <= demoted_after + Duration::from_millis(10),
        "{:?} after the demotion at {demoted_after:?}",
        started.elapsed()
    );
}

fn judge(snapshot: &Snapshot) -> crate::region::latency::Judge {
    crate::route::health_log::judge(&snapshot.config.routing)
}

#[tokio::test(start_paused = true)]
async fn hedges_lost_by_a_slow_region_demote_it_for_reads_only() {
    let steps: Vec<_> = std::iter::repeat_n(("home", late()), 20).collect();
    let script = Script::with(&steps);
    let proxy = proxy(&script).await;
    learn_home(&proxy);
    let snapshot = proxy.snapshot.load_full();
    let home = &snapshot.regions[0];
    let mut reads = 0;
    while !home.health.reads.is_demoted() {
        let started = tokio::time::Instant::now();
        assert_eq!(read(&proxy).await.region.name, "us-west-2");
        assert_eq!(started.elapsed(), FLOOR);
        // The loser is watched to its slow threshold (55 ms), then dropped.
        tokio::time::sleep(Duration::from_millis(100)).await;
        reads += 1;
        assert!(reads <= 12, "not demoted after {reads} slow reads");
    }
    let before = script.hosts().len();
    let started = tokio::time::Instant::now();
    assert_eq!(read(&proxy).await.region.name, "us-west-2");
    assert_eq!(
        started.elapsed(),
        Duration::ZERO,
        "demoted: straight to the next region"
    );
    assert_eq!(script.hosts()[before..], ["second"]);
    assert!(home.health.is_healthy(), "still healthy for writes");
    let put = json!({"TableName": "T", "Item": {"k": {"S": "1"}}});
    let reply = run(&proxy, &Operation::PutItem, &put, ResendSafety::Safe)
        .await
        .unwrap();
    assert_eq!(
        reply.region.name, "us-east-1",
        "writes never move on latency"
    );
    assert_eq!(
        proxy
            .metrics
            .read_demotions
            .with_label_values(&["us-east-1"])
            .get(),
        1
    );
}

#[tokio::test(start_paused = true)]
async fn a_readmitted_region_ramps_reads_back_and_takes_writes_at_once() {
    let script = Script::default();
    let script = Arc::new(script);
    let proxy = proxy(&script).await;
    let snapshot = proxy.snapshot.load_full();
    let home = &snapshot.regions[0];
    let now = tokio::time::Instant::now();
    while home.health.is_healthy() {
        proxy
            .health_log
            .outcome(home, AttemptOutcome::ConnectError, None, now);
    }
    tokio::time::advance(Duration::from_millis(1)).await;
    let now = tokio::time::Instant::now();
    while !home.health.is_healthy() {
        let elapsed = Some(Duration::from_millis(1));
        proxy
            .health_log
            .outcome(home, AttemptOutcome::Success, elapsed, now);
    }
    assert_eq!(
        proxy.metrics.ramps.with_label_values(&["us-east-1"]).get(),
        1
    );
    let put = json!({"TableName": "T", "Item": {"k": {"S": "1"}}});
    let reply = run(&proxy, &Operation::PutItem, &put, ResendSafety::Safe)
        .await
        .unwrap();
    assert_eq!(
        reply.region.name, "us-east-1",
        "writes move back in one step"
    );
    let ramp = snapshot.config.routing.reads.failback_ramp;
    let mut shares = Vec::new();
    for quarter in 0..4 {
        let mut at_home = 0;
        for _ in 0..400 {
            if read(&proxy).await.region.name == "us-east-1" {
                at_home += 1;
            }
        }
        shares.push(at_home);
        if quarter < 3 {
            tokio::time::advance(ramp / 4).await;
        }
    }
    // Expected 0, 100, 200 and 300 of 400; binomial spreads are about 9 to 10.
    assert!(shares[0] <= 5, "{shares:?}");
    assert!((60..140).contains(&shares[1]), "{shares:?}");
    assert!((160..240).contains(&shares[2]), "{shares:?}");
    assert!((260..340).contains(&shares[3]), "{shares:?}");
    tokio::time::advance(ramp / 4).await;
    for _ in 0..50 {
        assert_eq!(read(&proxy).await.region.name, "us-east-1", "ramp over");
    }
}

/// With the hedge budget spent, reads to a black-holed region count as slow once they wait
/// past its slow threshold; enough of them demote it, and the reads still waiting are then
/// hedged: a silent region costs them a short wait, not the attempt timeout.
#[tokio::test(start_paused = true)]
async fn reads_waiting_without_budget_demote_a_silent_region() {
    let steps: Vec<_> = std::iter::repeat_n(("home", Step::Timeout), 40).collect();
    let script = Script::with(&steps);
    let proxy = Arc::new(proxy(&script).await);
    learn_home(&proxy);
    let snapshot = proxy.snapshot.load_full();
    while snapshot.hedge_budget.withdraw() {}
    let mut reads = Vec::new();
    for _ in 0..16 {
        let proxy = Arc::clone(&proxy);
        reads.push(tokio::spawn(async move {
            let started = tokio::time::Instant::now();
            let reply = read(&proxy).await;
            (reply.region.name.clone(), started.elapsed())
        }));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut waits = Vec::new();
    for read in reads {
        let (region, waited) = read.await.unwrap();
        assert_eq!(region, "us-west-2");
        waits.push(waited);
    }
    assert!(snapshot.regions[0].health.reads.is_demoted());
    assert!(
        waits.iter().all(|w| *w < ATTEMPT),
        "a read waited out the attempt timeout: {waits:?}"
    );
}

/// A demoted region relearns its baseline only while no other region that serves reads
/// answers them far faster: the regions of the snapshot are what it is judged beside.
#[tokio::test(start_paused = true)]
async fn a_demoted_region_is_judged_beside_the_regions_that_serve_reads() {
    let script = Script::with(&[]);
    let proxy = proxy(&script).await;
    let snapshot = proxy.snapshot.load_full();
    let (home, second) = (&snapshot.regions[0], &snapshot.regions[1]);
    let read = |region: &crate::snapshot::Region, ms: Option<u64>| {
        let sample = ms.map_or(ReadSample::Slow, |ms| {
            ReadSample::Answered(Duration::from_millis(ms))
        });
        let now = tokio::time::Instant::now();
        proxy
            .health_log
            .read(&snapshot, region, ReadKind::GetItem, sample, now);
    };
    let demote = async |region: &crate::snapshot::Region| {
        for _ in 0..40 {
            read(region, Some(5));
        }
        while !region.health.reads.is_demoted() {
            read(region, None);
            tokio::time::advance(Duration::from_millis(50)).await;
        }
    };
    demote(home).await;
    tokio::time::advance(crate::region::latency::RELEARN_AFTER).await;
    for _ in 0..10 {
        read(second, Some(5));
        read(home, Some(400));
    }
    assert!(
        home.health.reads.is_demoted(),
        "taken back at 400 ms beside a region answering in 5"
    );
    // That region demoted too: none serving reads is faster, and home's speed is learned.
    demote(second).await;
    for _ in 0..10 {
        read(home, Some(400));
    }
    assert!(
        !home.health.reads.is_demoted(),
        "judged against its new speed"
    );
}
