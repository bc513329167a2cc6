//! Read latency of one region, per kind of eventually consistent read, and what the gray
//! failure handling takes from it: the hedge delay (the region's own p95, with a floor), the
//! slow threshold (its p50 times a factor and plus a margin, whichever is larger), the
//! demotion of a region whose reads run past that threshold, and the failback ramp.
//!
//! Each kind keeps its own window (a Scan's 200 ms says nothing about a GetItem's 5 ms). Only
//! reads under the slow threshold enter a window, so a slowdown never becomes the baseline it
//! is judged against. A region demoted for longer than [`RELEARN_AFTER`] forgets its windows,
//! so one that got slower for good is taken back at its new speed, but only once its recent
//! reads are no longer slow (by the same factor and margin) beside another region's that serves
//! reads: a home region that stays slow while its replicas answer fast stays demoted until it
//! recovers, while a slowdown of every region alike (their latency shifting, the sidecar's own
//! host stalling) is still learned.
//!
//! A region is demoted for these reads when more than half of its latest [`VOTES`] reads were
//! slow (still unanswered at the threshold after a hedge won, or waiting there without hedge
//! budget; with hedging off, answered past it; a read answered first is never slow) for at
//! least [`DEMOTE_AFTER`] (a stall of the sidecar's own host makes every read in flight slow
//! at once, and says nothing about the region), and taken back after `readmit_after` reads or
//! probes in a row under it. Writes and strongly consistent
//! reads never look at any of this.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// Samples each window keeps.
const WINDOW: usize = 128;
/// Samples a window needs before its percentiles speak for the region.
const MIN_SAMPLES: usize = 20;
/// The percentiles are recomputed once per this many new samples.
const RECOMPUTE_EVERY: u32 = 8;
/// Reads the demotion looks back over, and how many of them must be slow.
const VOTES: u32 = 10;
const SLOW_TO_DEMOTE: u32 = VOTES / 2 + 1;
/// How long most reads must stay slow before the region is demoted.
pub const DEMOTE_AFTER: Duration = Duration::from_millis(300);
/// A region demoted this long is judged against its new speed, unless it is still slow beside
/// another region.
pub const RELEARN_AFTER: Duration = Duration::from_mins(5);
/// How long a region's latest reads speak for its speed now.
const RECENT: Duration = Duration::from_mins(1);

/// The eventually consistent reads that are hedged, each with its own latency window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadKind {
    GetItem,
    BatchGetItem,
    Query,
    Scan,
    TransactGetItems,
    /// A PartiQL `SELECT` (ExecuteStatement).
    Statement,
}

impl ReadKind {
    pub const ALL: [Self; 6] = [
        Self::GetItem,
        Self::BatchGetItem,
        Self::Query,
        Self::Scan,
        Self::TransactGetItems,
        Self::Statement,
    ];

    fn index(self) -> usize {
        self as usize
    }
}

/// What one read told about the region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadSample {
    /// A usable answer after this long, judged against the threshold on its own (hedging
    /// off, a probe, a hedged read's first attempt answering after its hedge won).
    Answered(Duration),
    /// A usable answer after this long that came first: before any hedge was due, or before
    /// the hedge's. It teaches the baseline but is never a slow vote: the region was not
    /// slower than the alternative, and a stall of the sidecar's own host, which slows every
    /// region alike, must not demote one. (While demoted, it is judged like `Answered`.)
    Won(Duration),
    /// Still unanswered at the slow threshold (a hedge had answered; this attempt was then
    /// cancelled).
    Slow,
}

/// A change of whether the region serves eventually consistent reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadTransition {
    Demoted,
    Restored,
}

/// What the judgement needs from the config.
#[derive(Debug, Clone, Copy)]
pub struct Judge {
    pub factor: f64,
    pub margin: Duration,
    /// Reads or probes in a row under the threshold that take a demoted region back.
    pub readmit_after: u32,
}

impl Judge {
    /// The slow threshold beside reads that take `usual`: `factor` times it, and at least
    /// `margin` more.
    fn threshold(&self, usual: Duration) -> Duration {
        usual.mul_f64(self.factor).max(usual + self.margin)
    }
}

/// The read latency of one region: percentiles cached in atomics for the request path, the
/// windows and votes behind a short lock.
#[derive(Debug)]
pub struct ReadLatency {
    /// p50 and p95 in microseconds per kind; 0 until the window has [`MIN_SAMPLES`].
    p50: [AtomicU32; 6],
    p95: [AtomicU32; 6],
    /// A moving average of the latest answered reads, slow ones included, in microseconds per
    /// kind (0: none), and when it last moved, in milliseconds after `created` (0: never):
    /// what other regions compare their own reads with, without taking this one's lock.
    recent: [AtomicU32; 6],
    recent_at: [AtomicU64; 6],
    demoted: AtomicBool,
    /// When the latest ramp started, in milliseconds after `created` (0: none).
    ramp_from: AtomicU64,
    created: Instant,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    windows: [Window; 6],
    /// The latest reads, newest in bit 0, a set bit for a slow one.
    votes: u32,
    /// Reads under the threshold in a row, while demoted.
    fast_run: u32,
    /// Since when most of the latest reads have been slow.
    slow_since: Option<Instant>,
    demoted_at: Option<Instant>,
    /// The latest demotion or restoration: reads sent before it are old news.
    changed_at: Option<Instant>,
}

#[derive(Debug, Clone)]
struct Window {
    micros: [u32; WINDOW],
    len: usize,
    next: usize,
    fresh: u32,
}

impl Default for Window {
    fn default() -> Self {
        Self {
            micros: [0; WINDOW],
            len: 0,
            next: 0,
            fresh: 0,
        }
    }
}

impl Window {
    fn push(&mut self, sample: Duration) {
        self.micros[self.next] = u32::try_from(sample.as_micros()).unwrap_or(u32::MAX);
        self.next = (self.next + 1) % WINDOW;
        self.len = (self.len + 1).min(WINDOW);
        self.fresh += 1;
    }

    /// p50 and p95 in microseconds, once there are enough samples.
    fn percentiles(&self) -> Option<(u32, u32)> {
        if self.len < MIN_SAMPLES {
            return None;
        }
        // Two selections on a copy on the stack: they run every few reads on the request
        // path, where sorting the window (and allocating its copy) was most of the cost.
        let mut copy = self.micros;
        let window = &mut copy[..self.len];
        let rank = |q: usize| (self.len * q / 100).min(self.len - 1);
        let (below, p95, _) = window.select_nth_unstable(rank(95));
        let p95 = *p95;
        // Every sample under the p95's rank is at most the p95: the p50 is among them.
        let p50 = if rank(50) < rank(95) {
            *below.select_nth_unstable(rank(50)).1
        } else {
            p95
        };
        Some((p50, p95))
    }
}

fn micros(d: u32) -> Duration {
    Duration::from_micros(u64::from(d))
}

impl Default for ReadLatency {
    fn default() -> Self {
        Self::new()
    }
}

impl ReadLatency {
    pub fn new() -> Self {
        Self {
            p50: Default::default(),
            p95: Default::default(),
            recent: Default::default(),
            recent_at: Default::default(),
            demoted: AtomicBool::new(false),
            ramp_from: AtomicU64::new(0),
            created: Instant::now(),
            state: Mutex::new(State::default()),
        }
    }

    /// Whether eventually consistent reads avoid this region for being slow.
    pub fn is_demoted(&self) -> bool {
        self.demoted.load(Ordering::Acquire)
    }

    /// The region's own p50 and p95 for `kind`, once known.
    pub fn percentiles(&self, kind: ReadKind) -> Option<(Duration, Duration)> {
        let p50 = self.p50[kind.index()].load(Ordering::Relaxed);
        let p95 = self.p95[kind.index()].load(Ordering::Relaxed);
        (p50 != 0).then(|| (micros(p50), micros(p95)))
    }

    /// How long a read of `kind` waits for this region before a hedge goes out.
    pub fn hedge_delay(&self, kind: ReadKind, floor: Duration) -> Duration {
        self.percentiles(kind)
            .map_or(floor, |(_, p95)| p95.max(floor))
    }

    /// Past this, a read of `kind` is slow; `None` until the baseline is known.
    pub fn slow_threshold(&self, kind: ReadKind, judge: &Judge) -> Option<Duration> {
        let (p50, _) = self.percentiles(kind)?;
        Some(judge.threshold(p50))
    }

    /// What the latest reads of `kind` took (a moving average), if one answered lately.
    fn recent(&self, kind: ReadKind) -> Option<Duration> {
        self.recent_at(kind, self.millis_now()).map(micros)
    }

    /// The moving average in microseconds, if it moved within [`RECENT`] of `now` (in
    /// milliseconds after `created`).
    fn recent_at(&self, kind: ReadKind, now: u64) -> Option<u32> {
        let at = self.recent_at[kind.index()].load(Ordering::Acquire);
        let average = self.recent[kind.index()].load(Ordering::Relaxed);
        let recent = u64::try_from(RECENT.as_millis()).unwrap_or(u64::MAX);
        (at != 0 && average != 0 && now.saturating_sub(at) < recent).then_some(average)
    }

    /// Whether this region's latest reads are slow beside `other`'s, for some kind both
    /// answered lately.
    fn slow_beside(&self, other: &ReadLatency, judge: &Judge) -> bool {
        ReadKind::ALL.into_iter().any(|kind| {
            matches!(
                (self.recent(kind), other.recent(kind)),
                (Some(mine), Some(theirs)) if mine >= judge.threshold(theirs)
            )
        })
    }

    fn millis_now(&self) -> u64 {
        u64::try_from(self.created.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Moves the average of the latest reads of `kind` a quarter of the way to `latency`;
    /// an average no longer recent starts over from it.
    fn note_recent(&self, kind: ReadKind, latency: Duration) {
        let now = self.millis_now().max(1);
        let sample = u32::try_from(latency.as_micros())
            .unwrap_or(u32::MAX)
            .max(1);
        let average = match self.recent_at(kind, now) {
            Some(average) => {
                let moved = (i64::from(sample) - i64::from(average)) / 4;
                u32::try_from(i64::from(average) + moved).unwrap_or(sample)
            }
            None => sample,
        };
        self.recent[kind.index()].store(average.max(1), Ordering::Relaxed);
        self.recent_at[kind.index()].store(now, Ordering::Release);
    }

    /// Starts the failback ramp now.
    pub fn start_ramp(&self) {
        self.ramp_from
            .store(self.millis_now().max(1), Ordering::Release);
    }

    /// The share of eventually consistent reads the region takes now: rising from 0 to 1
    /// over `ramp` after the latest readmission or restoration, 1 otherwise.
    pub fn ramp_share(&self, ramp: Duration) -> f64 {
        let from = self.ramp_from.load(Ordering::Acquire);
        if from == 0 || ramp.is_zero() {
            return 1.0;
        }
        let done = self.millis_now().saturating_sub(from);
        let ramp = u64::try_from(ramp.as_millis()).unwrap_or(u64::MAX);
        if done >= ramp {
            return 1.0;
        }
        #[allow(clippy::cast_precision_loss)] // milliseconds below ten minutes
        let share = done as f64 / ramp as f64;
        share
    }

    /// One read of `kind` sent at `started`: its sample feeds the window and the votes.
    /// `others` are the other regions that serve reads, read only when a demoted region is
    /// due to relearn its baseline.
    pub fn record<'o>(
        &self,
        kind: ReadKind,
        sample: ReadSample,
        started: Instant,
        judge: &Judge,
        others: impl IntoIterator<Item = &'o ReadLatency>,
    ) -> Option<ReadTransition> {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let latency = match sample {
            ReadSample::Slow => None,
            ReadSample::Answered(latency) | ReadSample::Won(latency) => Some(latency),
        };
        if let Some(latency) = latency {
            self.note_recent(kind, latency);
        }
        if state.changed_at.is_some_and(|changed| started < changed) {
            return None;
        }
        let now = Instant::now();
        let relearn = state
            .demoted_at
            .is_some_and(|at| now.duration_since(at) >= RELEARN_AFTER)
            && latency.is_some()
            // Still slow beside a region that serves reads: the region has not recovered,
            // and its new speed is no baseline to judge it by.
            && !others.into_iter().any(|other| self.slow_beside(other, judge));
        if relearn {
            state.windows[kind.index()] = Window::default();
            self.p50[kind.index()].store(0, Ordering::Relaxed);
            state.demoted_at = Some(now);
        }
        let threshold = self.slow_threshold(kind, judge);
        let past = latency.is_none_or(|l| threshold.is_some_and(|t| l >= t));
        if let (Some(latency), false) = (latency, past) {
            self.learn(&mut state, kind, latency);
        }
        let slow = past && !matches!(sample, ReadSample::Won(_));
        if self.is_demoted() {
            state.fast_run = if past { 0 } else { state.fast_run + 1 };
            if state.fast_run < judge.readmit_after {
                return None;
            }
            state.fast_run = 0;
            state.votes = 0;
            state.demoted_at = None;
            state.changed_at = Some(now);
            self.demoted.store(false, Ordering::Release);
            self.start_ramp();
            return Some(ReadTransition::Restored);
        }
        // Only a known baseline judges a read; until then nothing is a vote.
        if threshold.is_none() && sample != ReadSample::Slow {
            return None;
        }
        state.votes = (state.votes << 1) | u32::from(slow);
        if (state.votes & ((1 << VOTES) - 1)).count_ones() < SLOW_TO_DEMOTE {
            state.slow_since = None;
            return None;
        }
        let since = *state.slow_since.get_or_insert(now);
        if now.duration_since(since) < DEMOTE_AFTER {
            return None;
        }
        state.slow_since = None;
        state.votes = 0;
        state.fast_run = 0;
        state.demoted_at = Some(now);
        state.changed_at = Some(now);
        self.demoted.store(true, Ordering::Release);
        Some(ReadTransition::Demoted)
    }

    fn learn(&self, state: &mut State, kind: ReadKind, latency: Duration) {
        let window = &mut state.windows[kind.index()];
        window.push(latency);
        let due = window.fresh >= RECOMPUTE_EVERY || window.len == MIN_SAMPLES;
        if !due {
            return;
        }
        window.fresh = 0;
        if let Some((p50, p95)) = window.percentiles() {
            self.p50[kind.index()].store(p50.max(1), Ordering::Relaxed);
            self.p95[kind.index()].store(p95.max(1), Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
#[allow(clippy::float_cmp)] // the shares compared are returned as these exact constants
mod tests;
