//! Health of one region: consecutive-failure and consecutive-success counters that report
//! only state changes (so a region is ejected on clear evidence and readmitted only after a
//! run of successes), the error rate of the latest outcomes, and a latency EWMA for the
//! `latency` policy.
//!
//! Evidence has two strengths. A region that cannot be reached (refused or broken
//! connections, timeouts) is ejected after `eject_after` such failures in a row: every try
//! of it costs a connect or a whole timeout. An error answer (HTTP 5xx, throttling) is
//! weaker: it costs the request in flight a millisecond before it moves on, and DynamoDB
//! answers short bursts of 500s; sending the home region's traffic across the world for
//! a burst would cost more than the burst. So error answers eject only once the region has
//! been failing (`eject_after` failures in a row, or more than half of the latest
//! 20 outcomes) for 1 s without a break.
//!
//! A region that is ejected again soon after its readmission (it answers probes but fails
//! real traffic, say under sustained throttling) must earn the next readmission with a
//! longer run of successes, doubling each time, so it does not flap.
//!
//! Only attempts sent after the latest ejection or readmission speak for the region's
//! current state: under concurrency, the successes of requests already in flight when a
//! region was ejected would otherwise readmit it within milliseconds.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// Weight of the newest sample in the latency average.
const EWMA_ALPHA: f64 = 0.2;
/// How many of the latest outcomes the error rate is taken over; it is judged only once that
/// many have been seen since the region was (re)admitted.
const RATE_WINDOW: u32 = 20;
/// More failures than this among the latest [`RATE_WINDOW`] outcomes eject a region that fails
/// intermittently and so never reaches a consecutive-failure threshold.
const MAX_FAILURES_IN_WINDOW: u32 = RATE_WINDOW / 2;
/// How long a region must keep failing with error answers before it is ejected.
const ERROR_EJECT_AFTER: Duration = Duration::from_secs(1);
/// An ejection this soon after a readmission counts as flapping.
const FLAP_WINDOW: Duration = Duration::from_secs(30);
/// The longest run of successes a flapping region must show, as a multiple of the base.
const MAX_READMIT_FACTOR: u32 = 16;

/// How an attempt or probe failed, as evidence against the region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The connection was refused or broke: the region (or its endpoint) is not serving.
    Unreachable,
    /// No answer within the timeout: a black hole, and every try costs a whole timeout.
    Timeout,
    /// The region answered with a 5xx or a throttle: it is there, but failing this request.
    ErrorAnswer,
}

/// A change of a region's state, reported once when it happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Ejected,
    Readmitted,
}

/// Shared health of one region: lock-free reads on the hot path, a short lock on updates.
#[derive(Debug)]
pub struct RegionHealth {
    healthy: AtomicBool,
    /// Whether the latest failure took a timeout to notice (a black hole), as opposed to a
    /// refused connection or an error answer, which cost a request almost nothing.
    slow_failure: AtomicBool,
    latency_micros: AtomicU64,
    /// When live traffic last had an outcome here, in milliseconds after `created` (0: never).
    last_live_millis: AtomicU64,
    created: Instant,
    state: Mutex<Counters>,
    eject_after: u32,
    readmit_after: u32,
    /// Eventually consistent reads' latency: hedge delays, demotion, the failback ramp.
    pub reads: super::ReadLatency,
}

#[derive(Debug, Default)]
struct Counters {
    /// Failures of any kind in a row.
    consecutive_failures: u32,
    /// Unreachable or timed-out attempts in a row (error answers do not break the run).
    consecutive_unreachable: u32,
    consecutive_successes: u32,
    /// The latest outcomes, newest in bit 0, a set bit for a failure.
    recent_failures: u32,
    /// Outcomes seen since the last (re)admission, capped at [`RATE_WINDOW`].
    samples: u32,
    /// Since when the region has been failing without a break (see the module comment).
    failing_since: Option<Instant>,
    latency_micros: Option<f64>,
    /// Successes in a row needed for the next readmission.
    readmit_needed: u32,
    readmitted_at: Option<Instant>,
    /// The latest ejection or readmission: attempts sent before it are old news.
    changed_at: Option<Instant>,
}

impl Counters {
    fn push_outcome(&mut self, failed: bool) {
        self.recent_failures = (self.recent_failures << 1) | u32::from(failed);
        self.samples = (self.samples + 1).min(RATE_WINDOW);
    }

    /// Whether an attempt sent at `started` predates the latest change of state.
    fn stale(&self, started: Instant) -> bool {
        self.changed_at.is_some_and(|changed| started < changed)
    }

    fn rate_too_high(&self) -> bool {
        let failures = (self.recent_failures & ((1 << RATE_WINDOW) - 1)).count_ones();
        self.samples >= RATE_WINDOW && failures > MAX_FAILURES_IN_WINDOW
    }
}

impl RegionHealth {
    pub fn new(eject_after: u32, readmit_after: u32) -> Self {
        Self {
            healthy: AtomicBool::new(true),
            slow_failure: AtomicBool::new(false),
            latency_micros: AtomicU64::new(0),
            last_live_millis: AtomicU64::new(0),
            created: Instant::now(),
            state: Mutex::new(Counters {
                readmit_needed: readmit_after,
                ..Counters::default()
            }),
            eject_after,
            readmit_after,
            reads: super::ReadLatency::new(),
        }
    }

    /// Whether eventually consistent reads should go here first: healthy and not demoted
    /// for slowness.
    pub fn serves_reads(&self) -> bool {
        self.is_healthy() && !self.reads.is_demoted()
    }

    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Acquire)
    }

    /// Whether the latest failure was a timeout: such a region is not worth a last-resort try.
    pub fn fails_slowly(&self) -> bool {
        self.slow_failure.load(Ordering::Relaxed)
    }

    /// The latency average; zero until the first sample.
    pub fn latency(&self) -> Duration {
        Duration::from_micros(self.latency_micros.load(Ordering::Relaxed))
    }

    /// Live traffic had an outcome here, so a probe would add nothing.
    pub fn note_live_outcome(&self) {
        let millis = u64::try_from(self.created.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_live_millis
            .store(millis.max(1), Ordering::Relaxed);
    }

    /// Whether live traffic had an outcome here within `window`.
    pub fn live_within(&self, window: Duration) -> bool {
        let last = self.last_live_millis.load(Ordering::Relaxed);
        let now = u64::try_from(self.created.elapsed().as_millis()).unwrap_or(u64::MAX);
        let window = u64::try_from(window.as_millis()).unwrap_or(u64::MAX);
        last != 0 && now.saturating_sub(last) <= window
    }

    /// A request or probe sent at `started` got a usable answer after `latency`.
    pub fn record_success(&self, latency: Duration, started: Instant) -> Option<Transition> {
        let mut c = self.lock();
        if c.stale(started) {
            return None;
        }
        self.slow_failure.store(false, Ordering::Relaxed);
        c.consecutive_failures = 0;
        c.consecutive_unreachable = 0;
        c.consecutive_successes = c.consecutive_successes.saturating_add(1);
        c.push_outcome(false);
        if !c.rate_too_high() {
            c.failing_since = None;
        }
        #[allow(clippy::cast_precision_loss)] // microseconds of one request fit an f64 exactly
        let sample = latency.as_micros() as f64;
        let avg = c
            .latency_micros
            .map_or(sample, |avg| avg + EWMA_ALPHA * (sample - avg));
        c.latency_micros = Some(avg);
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // non-negative, small
        self.latency_micros.store(avg as u64, Ordering::Relaxed);
        if !self.is_healthy() && c.consecutive_successes >= c.readmit_needed {
            c.recent_failures = 0;
            c.samples = 0;
            c.failing_since = None;
            let now = Instant::now();
            c.readmitted_at = Some(now);
            c.changed_at = Some(now);
            self.healthy.store(true, Ordering::Release);
            self.reads.start_ramp();
            return Some(Transition::Readmitted);
        }
        None
    }

    /// A request or probe sent at `started` failed in a way that speaks about the region,
    /// not the request.
    pub fn record_failure(&self, failure: Failure, started: Instant) -> Option<Transition> {
        let mut c = self.lock();
        if c.stale(started) {
            return None;
        }
        self.slow_failure
            .store(failure == Failure::Timeout, Ordering::Relaxed);
        c.consecutive_successes = 0;
        c.consecutive_failures = c.consecutive_failures.saturating_add(1);
        if failure != Failure::ErrorAnswer {
            c.consecutive_unreachable = c.consecutive_unreachable.saturating_add(1);
        }
        c.push_outcome(true);
        let now = Instant::now();
        if c.consecutive_failures >= self.eject_after || c.rate_too_high() {
            c.failing_since.get_or_insert(now);
        }
        let failing_long = c
            .failing_since
            .is_some_and(|since| now.duration_since(since) >= ERROR_EJECT_AFTER);
        if self.is_healthy() && (c.consecutive_unreachable >= self.eject_after || failing_long) {
            let flapping = c.readmitted_at.is_some_and(|at| at.elapsed() < FLAP_WINDOW);
            c.readmit_needed = if flapping {
                (c.readmit_needed * 2).min(self.readmit_after * MAX_READMIT_FACTOR)
            } else {
                self.readmit_after
            };
            c.changed_at = Some(now);
            c.consecutive_successes = 0;
            self.healthy.store(false, Ordering::Release);
            return Some(Transition::Ejected);
        }
        None
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counters> {
        // A panic while holding this lock leaves plain counters behind: still usable.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn ejects_after_consecutive_failures_only() {
        let h = RegionHealth::new(3, 2);
        assert_eq!(h.record_failure(Failure::Unreachable, Instant::now()), None);
        assert_eq!(h.record_failure(Failure::Unreachable, Instant::now()), None);
        h.record_success(MS, Instant::now()); // the run is broken
        assert_eq!(h.record_failure(Failure::Unreachable, Instant::now()), None);
        assert_eq!(h.record_failure(Failure::Unreachable, Instant::now()), None);
        assert_eq!(
            h.record_failure(Failure::Unreachable, Instant::now()),
            Some(Transition::Ejected)
        );
        assert!(!h.is_healthy());
        assert_eq!(
            h.record_failure(Failure::Unreachable, Instant::now()),
            None,
            "only the change is reported"
        );
    }

    #[test]
    fn readmits_after_a_run_of_successes() {
        let h = RegionHealth::new(1, 3);
        h.record_failure(Failure::Unreachable, Instant::now());
        assert_eq!(h.record_success(MS, Instant::now()), None);
        h.record_failure(Failure::Unreachable, Instant::now()); // a failure in between restarts the run
        assert_eq!(h.record_success(MS, Instant::now()), None);
        assert_eq!(h.record_success(MS, Instant::now()), None);
        assert_eq!(
            h.record_success(MS, Instant::now()),
            Some(Transition::Readmitted)
        );
        assert!(h.is_healthy());
    }

    #[tokio::test(start_paused = true)]
    async fn a_flapping_region_needs_longer_runs_to_come_back() {
        let h = RegionHealth::new(1, 2);
        let readmit = |h: &RegionHealth| {
            let mut n = 0;
            while h.record_success(MS, Instant::now()) != Some(Transition::Readmitted) {
                n += 1;
            }
            n + 1
        };
        h.record_failure(Failure::Unreachable, Instant::now());
        assert_eq!(readmit(&h), 2);
        h.record_failure(Failure::Unreachable, Instant::now()); // ejected again at once: flapping
        assert_eq!(readmit(&h), 4);
        h.record_failure(Failure::Unreachable, Instant::now());
        assert_eq!(readmit(&h), 8);
        // Stable for a while: the next ejection is a new incident, not flapping.
        tokio::time::advance(FLAP_WINDOW * 2).await;
        h.record_failure(Failure::Unreachable, Instant::now());
        assert_eq!(readmit(&h), 2);
    }

    /// Records `failure`s, one every `every`, until the region is ejected; how long that took.
    async fn time_to_eject(h: &RegionHealth, pattern: &[bool], every: Duration) -> Duration {
        let started = Instant::now();
        for &failed in pattern.iter().cycle().take(100_000) {
            if failed {
                if h.record_failure(Failure::ErrorAnswer, Instant::now())
                    == Some(Transition::Ejected)
                {
                    return started.elapsed();
                }
            } else {
                h.record_success(MS, Instant::now());
            }
            tokio::time::advance(every).await;
        }
        panic!("never ejected");
    }

    #[tokio::test(start_paused = true)]
    async fn error_answers_eject_once_they_last() {
        // A region answering nothing but 500s under heavy traffic: ejected after 1 s.
        let h = RegionHealth::new(3, 2);
        let took = time_to_eject(&h, &[true], MS).await;
        assert!(
            took >= ERROR_EJECT_AFTER && took < ERROR_EJECT_AFTER + 5 * MS,
            "{took:?}"
        );

        // Seen only by probes a second apart: the run of three, then one more second.
        let h = RegionHealth::new(3, 2);
        let second = Duration::from_secs(1);
        let took = time_to_eject(&h, &[true], second).await;
        assert_eq!(took, 3 * second);

        // Two failures in three never make a run, but the rate does.
        let h = RegionHealth::new(5, 2);
        let took = time_to_eject(&h, &[true, true, false], MS).await;
        assert!(took < ERROR_EJECT_AFTER + 50 * MS, "{took:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn bursts_and_occasional_error_answers_do_not_eject() {
        let h = RegionHealth::new(3, 2);
        for _ in 0..200 {
            assert_eq!(h.record_failure(Failure::ErrorAnswer, Instant::now()), None);
            h.record_success(MS, Instant::now());
            h.record_success(MS, Instant::now());
            h.record_success(MS, Instant::now());
            tokio::time::advance(MS).await;
        }
        // Bursts of 500s, each shorter than a second, with answers in between.
        for _ in 0..20 {
            for _ in 0..100 {
                assert_eq!(h.record_failure(Failure::ErrorAnswer, Instant::now()), None);
                tokio::time::advance(5 * MS).await;
            }
            for _ in 0..RATE_WINDOW {
                h.record_success(MS, Instant::now());
            }
        }
        assert!(h.is_healthy());
    }

    #[tokio::test(start_paused = true)]
    async fn unreachable_attempts_eject_at_once() {
        let h = RegionHealth::new(3, 2);
        h.record_failure(Failure::ErrorAnswer, Instant::now());
        h.record_failure(Failure::Unreachable, Instant::now());
        h.record_failure(Failure::ErrorAnswer, Instant::now());
        h.record_failure(Failure::Unreachable, Instant::now());
        assert_eq!(
            h.record_failure(Failure::Timeout, Instant::now()),
            Some(Transition::Ejected),
            "error answers in between do not break a run of unreachable attempts"
        );
    }

    /// Requests in flight when a region was ejected answer afterwards; a region that fails
    /// every fourth request would otherwise be readmitted by them within milliseconds.
    #[tokio::test(start_paused = true)]
    async fn only_attempts_sent_after_a_change_count_for_the_next_one() {
        let h = RegionHealth::new(1, 2);
        let in_flight = Instant::now();
        tokio::time::advance(MS).await;
        assert_eq!(
            h.record_failure(Failure::Unreachable, Instant::now()),
            Some(Transition::Ejected)
        );
        tokio::time::advance(MS).await;
        for _ in 0..100 {
            assert_eq!(h.record_success(MS, in_flight), None);
        }
        assert!(!h.is_healthy(), "successes of older attempts readmitted it");
        let probe = Instant::now();
        h.record_success(MS, probe);
        assert_eq!(h.record_success(MS, probe), Some(Transition::Readmitted));
        // Failures of attempts sent before the readmission are old news too.
        assert_eq!(h.record_failure(Failure::Unreachable, in_flight), None);
        assert!(h.is_healthy());
    }

    #[test]
    fn remembers_whether_the_last_failure_was_slow() {
        let h = RegionHealth::new(3, 2);
        h.record_failure(Failure::Timeout, Instant::now());
        assert!(h.fails_slowly());
        h.record_failure(Failure::Unreachable, Instant::now());
        assert!(!h.fails_slowly());
        h.record_failure(Failure::Timeout, Instant::now());
        h.record_success(MS, Instant::now());
        assert!(!h.fails_slowly());
    }

    #[tokio::test(start_paused = true)]
    async fn knows_whether_live_traffic_answered_lately() {
        let h = RegionHealth::new(3, 2);
        assert!(!h.live_within(Duration::from_secs(1)));
        tokio::time::advance(Duration::from_secs(5)).await;
        h.note_live_outcome();
        assert!(h.live_within(Duration::from_secs(1)));
        tokio::time::advance(Duration::from_millis(1_500)).await;
        assert!(!h.live_within(Duration::from_secs(1)));
    }

    #[test]
    fn latency_is_a_moving_average() {
        let h = RegionHealth::new(3, 2);
        h.record_success(Duration::from_millis(10), Instant::now());
        assert_eq!(h.latency(), Duration::from_millis(10));
        h.record_success(Duration::from_millis(110), Instant::now());
        assert_eq!(h.latency(), Duration::from_millis(30));
    }
}
