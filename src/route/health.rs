//! Health of one region: consecutive-failure and consecutive-success counters that report
//! only state changes (so a region is ejected on clear evidence and readmitted only after a
//! run of successes), an error-rate average, and a latency EWMA for the `latency` policy.
//!
//! A region that is ejected again soon after its readmission (it answers probes but fails
//! real traffic, say under sustained throttling) must earn the next readmission with a
//! longer run of successes, doubling each time, so it does not flap.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// Weight of the newest sample in the latency and error-rate averages.
const EWMA_ALPHA: f64 = 0.2;
/// An error rate above this, over enough samples, ejects a region that fails intermittently
/// and so never reaches the consecutive-failure threshold.
const MAX_ERROR_RATE: f64 = 0.5;
const MIN_SAMPLES_FOR_RATE: u32 = 20;
/// An ejection this soon after a readmission counts as flapping.
const FLAP_WINDOW: Duration = Duration::from_secs(30);
/// The longest run of successes a flapping region must show, as a multiple of the base.
const MAX_READMIT_FACTOR: u32 = 16;

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
    state: Mutex<Counters>,
    eject_after: u32,
    readmit_after: u32,
}

#[derive(Debug, Default)]
struct Counters {
    consecutive_failures: u32,
    consecutive_successes: u32,
    error_rate: f64,
    samples: u32,
    latency_micros: Option<f64>,
    /// Successes in a row needed for the next readmission.
    readmit_needed: u32,
    readmitted_at: Option<Instant>,
}

impl RegionHealth {
    pub fn new(eject_after: u32, readmit_after: u32) -> Self {
        Self {
            healthy: AtomicBool::new(true),
            slow_failure: AtomicBool::new(false),
            latency_micros: AtomicU64::new(0),
            state: Mutex::new(Counters {
                readmit_needed: readmit_after,
                ..Counters::default()
            }),
            eject_after,
            readmit_after,
        }
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

    /// A request or probe got a usable answer after `latency`.
    pub fn record_success(&self, latency: Duration) -> Option<Transition> {
        let mut c = self.lock();
        self.slow_failure.store(false, Ordering::Relaxed);
        c.consecutive_failures = 0;
        c.consecutive_successes = c.consecutive_successes.saturating_add(1);
        c.error_rate *= 1.0 - EWMA_ALPHA;
        c.samples = c.samples.saturating_add(1);
        #[allow(clippy::cast_precision_loss)] // microseconds of one request fit an f64 exactly
        let sample = latency.as_micros() as f64;
        let avg = c
            .latency_micros
            .map_or(sample, |avg| avg + EWMA_ALPHA * (sample - avg));
        c.latency_micros = Some(avg);
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // non-negative, small
        self.latency_micros.store(avg as u64, Ordering::Relaxed);
        if !self.is_healthy() && c.consecutive_successes >= c.readmit_needed {
            c.error_rate = 0.0;
            c.samples = 0;
            c.readmitted_at = Some(Instant::now());
            self.healthy.store(true, Ordering::Release);
            return Some(Transition::Readmitted);
        }
        None
    }

    /// A request or probe failed in a way that speaks about the region, not the request;
    /// `slow` when it took a timeout to find out.
    pub fn record_failure(&self, slow: bool) -> Option<Transition> {
        let mut c = self.lock();
        self.slow_failure.store(slow, Ordering::Relaxed);
        c.consecutive_successes = 0;
        c.consecutive_failures = c.consecutive_failures.saturating_add(1);
        c.error_rate = c.error_rate * (1.0 - EWMA_ALPHA) + EWMA_ALPHA;
        c.samples = c.samples.saturating_add(1);
        let failing = c.consecutive_failures >= self.eject_after
            || (c.samples >= MIN_SAMPLES_FOR_RATE && c.error_rate > MAX_ERROR_RATE);
        if self.is_healthy() && failing {
            let flapping = c.readmitted_at.is_some_and(|at| at.elapsed() < FLAP_WINDOW);
            c.readmit_needed = if flapping {
                (c.readmit_needed * 2).min(self.readmit_after * MAX_READMIT_FACTOR)
            } else {
                self.readmit_after
            };
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
        assert_eq!(h.record_failure(false), None);
        assert_eq!(h.record_failure(false), None);
        h.record_success(MS); // the run is broken
        assert_eq!(h.record_failure(false), None);
        assert_eq!(h.record_failure(false), None);
        assert_eq!(h.record_failure(false), Some(Transition::Ejected));
        assert!(!h.is_healthy());
        assert_eq!(h.record_failure(false), None, "only the change is reported");
    }

    #[test]
    fn readmits_after_a_run_of_successes() {
        let h = RegionHealth::new(1, 3);
        h.record_failure(false);
        assert_eq!(h.record_success(MS), None);
        h.record_failure(false); // a failure in between restarts the run
        assert_eq!(h.record_success(MS), None);
        assert_eq!(h.record_success(MS), None);
        assert_eq!(h.record_success(MS), Some(Transition::Readmitted));
        assert!(h.is_healthy());
    }

    #[tokio::test(start_paused = true)]
    async fn a_flapping_region_needs_longer_runs_to_come_back() {
        let h = RegionHealth::new(1, 2);
        let readmit = |h: &RegionHealth| {
            let mut n = 0;
            while h.record_success(MS) != Some(Transition::Readmitted) {
                n += 1;
            }
            n + 1
        };
        h.record_failure(false);
        assert_eq!(readmit(&h), 2);
        h.record_failure(false); // ejected again at once: flapping
        assert_eq!(readmit(&h), 4);
        h.record_failure(false);
        assert_eq!(readmit(&h), 8);
        // Stable for a while: the next ejection is a new incident, not flapping.
        tokio::time::advance(FLAP_WINDOW * 2).await;
        h.record_failure(false);
        assert_eq!(readmit(&h), 2);
    }

    #[test]
    fn intermittent_failures_eject_by_error_rate() {
        let h = RegionHealth::new(5, 2);
        let mut ejected = false;
        for _ in 0..40 {
            ejected |= h.record_failure(false) == Some(Transition::Ejected);
            ejected |= h.record_failure(false) == Some(Transition::Ejected);
            h.record_success(MS);
        }
        assert!(ejected, "two failures in three must eject");
    }

    #[test]
    fn remembers_whether_the_last_failure_was_slow() {
        let h = RegionHealth::new(3, 2);
        h.record_failure(true);
        assert!(h.fails_slowly());
        h.record_failure(false);
        assert!(!h.fails_slowly());
    }

    #[test]
    fn latency_is_a_moving_average() {
        let h = RegionHealth::new(3, 2);
        h.record_success(Duration::from_millis(10));
        assert_eq!(h.latency(), Duration::from_millis(10));
        h.record_success(Duration::from_millis(110));
        assert_eq!(h.latency(), Duration::from_millis(30));
    }
}
