use super::*;

const MS: Duration = Duration::from_millis(1);
const JUDGE: Judge = Judge {
    factor: 3.0,
    margin: Duration::from_millis(50),
    readmit_after: 2,
};

fn learned(ms: u64) -> ReadLatency {
    let r = ReadLatency::new();
    for i in 0..WINDOW as u64 {
        // 5..=9 ms around `ms`: p50 `ms`, p95 `ms` + 2.
        let sample = (ms + i % 5).saturating_sub(2);
        r.record(
            ReadKind::GetItem,
            ReadSample::Answered(Duration::from_millis(sample)),
            Instant::now(),
            &JUDGE,
            [],
        );
    }
    r
}

#[test]
fn percentiles_give_the_hedge_delay_and_the_slow_threshold() {
    let r = ReadLatency::new();
    assert_eq!(
        r.hedge_delay(ReadKind::GetItem, 20 * MS),
        20 * MS,
        "unknown: the floor"
    );
    assert_eq!(r.slow_threshold(ReadKind::GetItem, &JUDGE), None);
    let r = learned(7);
    assert_eq!(r.percentiles(ReadKind::GetItem), Some((7 * MS, 9 * MS)));
    assert_eq!(r.hedge_delay(ReadKind::GetItem, 2 * MS), 9 * MS);
    assert_eq!(r.hedge_delay(ReadKind::GetItem, 20 * MS), 20 * MS);
    // The margin dominates a fast baseline, the factor a slow one.
    assert_eq!(r.slow_threshold(ReadKind::GetItem, &JUDGE), Some(57 * MS));
    let slow_scans = ReadLatency::new();
    for _ in 0..MIN_SAMPLES {
        let sample = ReadSample::Answered(200 * MS);
        slow_scans.record(ReadKind::Scan, sample, Instant::now(), &JUDGE, []);
    }
    assert_eq!(
        slow_scans.slow_threshold(ReadKind::Scan, &JUDGE),
        Some(600 * MS)
    );
    assert_eq!(
        slow_scans.percentiles(ReadKind::GetItem),
        None,
        "kinds apart"
    );
}

#[tokio::test(start_paused = true)]
async fn most_reads_slow_demote_and_a_run_under_the_threshold_restores() {
    let r = learned(7);
    // Occasional slow reads are a tail, not a slowdown.
    for i in 0..100 {
        let sample = if i % 4 == 0 { 400 * MS } else { 7 * MS };
        let t = r.record(
            ReadKind::GetItem,
            ReadSample::Answered(sample),
            Instant::now(),
            &JUDGE,
            [],
        );
        assert_eq!(t, None);
    }
    let mut transitions = Vec::new();
    for _ in 0..VOTES {
        transitions.push(r.record(
            ReadKind::GetItem,
            ReadSample::Slow,
            Instant::now(),
            &JUDGE,
            [],
        ));
    }
    assert!(
        !transitions.contains(&Some(ReadTransition::Demoted)),
        "a burst of slow reads at one instant is a stall, not yet a slow region"
    );
    tokio::time::advance(DEMOTE_AFTER).await;
    let t = r.record(
        ReadKind::GetItem,
        ReadSample::Slow,
        Instant::now(),
        &JUDGE,
        [],
    );
    assert_eq!(t, Some(ReadTransition::Demoted), "slow for long enough");
    assert!(r.is_demoted());
    assert_eq!(
        r.percentiles(ReadKind::GetItem),
        Some((7 * MS, 9 * MS)),
        "slow reads never enter the baseline"
    );
    let probe = Instant::now();
    tokio::time::advance(MS).await;
    assert_eq!(
        r.record(
            ReadKind::GetItem,
            ReadSample::Answered(8 * MS),
            probe,
            &JUDGE,
            [],
        ),
        None
    );
    assert_eq!(
        r.record(
            ReadKind::GetItem,
            ReadSample::Answered(400 * MS),
            probe,
            &JUDGE,
            [],
        ),
        None,
        "a slow one breaks the run"
    );
    assert_eq!(
        r.record(
            ReadKind::GetItem,
            ReadSample::Answered(8 * MS),
            probe,
            &JUDGE,
            [],
        ),
        None
    );
    assert_eq!(
        r.record(
            ReadKind::GetItem,
            ReadSample::Answered(8 * MS),
            probe,
            &JUDGE,
            [],
        ),
        Some(ReadTransition::Restored)
    );
    assert!(!r.is_demoted());
    assert_eq!(r.ramp_share(10_000 * MS), 0.0, "the ramp starts");
    // Reads sent before the restoration are old news.
    assert_eq!(
        r.record(ReadKind::GetItem, ReadSample::Slow, probe, &JUDGE, []),
        None
    );
}

#[tokio::test(start_paused = true)]
async fn reads_answered_first_are_never_slow_votes() {
    let r = learned(7);
    for _ in 0..100 {
        let sample = ReadSample::Won(400 * MS);
        assert_eq!(
            r.record(ReadKind::GetItem, sample, Instant::now(), &JUDGE, []),
            None
        );
        tokio::time::advance(10 * MS).await;
    }
    assert!(!r.is_demoted(), "a stall slowing every region alike");
    assert_eq!(r.percentiles(ReadKind::GetItem), Some((7 * MS, 9 * MS)));
}

#[tokio::test(start_paused = true)]
async fn the_ramp_rises_over_its_duration() {
    let r = ReadLatency::new();
    let ramp = Duration::from_secs(10);
    assert_eq!(r.ramp_share(ramp), 1.0, "no ramp before a readmission");
    tokio::time::advance(Duration::from_secs(3)).await;
    r.start_ramp();
    assert_eq!(r.ramp_share(ramp), 0.0);
    assert_eq!(r.ramp_share(Duration::ZERO), 1.0, "a zero ramp is one step");
    tokio::time::advance(Duration::from_millis(2_500)).await;
    assert!((r.ramp_share(ramp) - 0.25).abs() < 1e-9);
    tokio::time::advance(Duration::from_millis(7_500)).await;
    assert_eq!(r.ramp_share(ramp), 1.0);
}

/// Demotes `r`: most of its latest reads slow for long enough.
async fn demote(r: &ReadLatency) {
    for _ in 0..VOTES {
        let sample = ReadSample::Slow;
        r.record(ReadKind::GetItem, sample, Instant::now(), &JUDGE, []);
        tokio::time::advance(DEMOTE_AFTER / 4).await;
    }
    assert!(r.is_demoted());
}

/// A GetItem of `r` answered after `ms`, judged beside `others`.
fn answered<'o>(
    r: &ReadLatency,
    ms: u64,
    others: impl IntoIterator<Item = &'o ReadLatency>,
) -> Option<ReadTransition> {
    let sample = ReadSample::Answered(Duration::from_millis(ms));
    r.record(ReadKind::GetItem, sample, Instant::now(), &JUDGE, others)
}

#[tokio::test(start_paused = true)]
async fn a_region_slow_for_good_alike_with_the_others_is_relearned() {
    // Every region's reads 300 ms now (their latency shifted, or the sidecar's host
    // is slow): home, demoted, is judged against its new speed after a while.
    let (home, replica) = (learned(7), learned(7));
    demote(&home).await;
    tokio::time::advance(RELEARN_AFTER).await;
    for _ in 0..4 {
        answered(&replica, 300, []);
    }
    assert_eq!(replica.recent(ReadKind::GetItem), Some(300 * MS));
    assert_eq!(answered(&home, 300, [&replica]), None);
    assert_eq!(
        answered(&home, 300, [&replica]),
        Some(ReadTransition::Restored),
        "judged against its new speed"
    );

    // Likewise beside no other region, or one that read nothing lately.
    let (alone, idle) = (learned(7), learned(7));
    demote(&alone).await;
    tokio::time::advance(RELEARN_AFTER).await;
    assert_eq!(idle.recent(ReadKind::GetItem), None, "its reads are old");
    assert_eq!(answered(&alone, 300, [&idle]), None);
    assert_eq!(
        answered(&alone, 300, []),
        Some(ReadTransition::Restored),
        "judged against its new speed"
    );
}

#[tokio::test(start_paused = true)]
async fn a_region_slow_beside_a_fast_one_stays_demoted_until_it_recovers() {
    let (home, replica) = (learned(7), learned(7));
    demote(&home).await;
    // Long past the relearning, home answers in 400 ms, the replica in 7.
    for _ in 0..10 {
        tokio::time::advance(RELEARN_AFTER / 2).await;
        answered(&replica, 7, []);
        assert_eq!(
            answered(&home, 400, [&replica]),
            None,
            "taken back at 400 ms"
        );
    }
    assert!(home.is_demoted());
    assert_eq!(
        home.percentiles(ReadKind::GetItem),
        Some((7 * MS, 9 * MS)),
        "its baseline kept"
    );
    // Recovered: the usual run under its threshold takes it back.
    assert_eq!(answered(&home, 8, [&replica]), None);
    assert_eq!(
        answered(&home, 8, [&replica]),
        Some(ReadTransition::Restored)
    );
}

proptest::proptest! {
    /// The selections give what sorting the window gives, however full it is and whatever
    /// it holds (repeats included).
    #[test]
    fn percentiles_are_the_sorted_windows(
        samples in proptest::collection::vec(0u32..50, 0..(2 * WINDOW)),
    ) {
        let mut window = Window::default();
        for &sample in &samples {
            window.push(Duration::from_micros(u64::from(sample)));
        }
        let expected = (window.len >= MIN_SAMPLES).then(|| {
            let mut sorted = window.micros[..window.len].to_vec();
            sorted.sort_unstable();
            let at = |q: usize| sorted[(window.len * q / 100).min(window.len - 1)];
            (at(50), at(95))
        });
        proptest::prop_assert_eq!(window.percentiles(), expected);
    }
}
