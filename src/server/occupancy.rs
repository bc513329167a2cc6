//! Who holds a listener's slots, and what that costs a client that sends nothing: the open
//! connections in the order they were accepted, a header timeout that shortens as the
//! listener fills up, and, at the cap, the eviction of a connection with nothing in flight
//! to make room for a new one.
//!
//! A cap alone let 100 silent sockets make a signed GetItem wait more than 10 s (they were
//! dropped only at the 30 s header timeout, and reopened at once), and 64 of them stop the
//! admin port's `/healthz`. As Envoy's overload manager scales its timeouts down as a
//! resource fills (its `reduce_timeouts` action), the header timeout here is the configured
//! one up to half the cap and then falls linearly to [`HEADER_FLOOR`] at the cap
//! ([`scaled_header_timeout`]). And at the cap, a new connection is not left waiting while
//! a silent one holds a slot: the oldest connection that has sent no request is closed for
//! it, else the one idle the longest between requests (told to close: HTTP/1 closes, HTTP/2
//! gets a GOAWAY). Only when every connection has a request in flight or is younger than
//! [`EVICTABLE_AFTER`] does a new one wait.
//! Silent connections go first because a well-behaved client sends its request as soon as
//! it has connected, while its idle keep-alive connections are the ones it will reuse.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use prometheus::IntCounter;
use tokio::sync::Notify;

use super::connection::Activity;

/// The shortest the header timeout gets, at the cap: a client on the same host or pod
/// sends its request head within a millisecond of connecting; one second leaves room for a
/// paused process or a busy node.
pub const HEADER_FLOOR: Duration = Duration::from_secs(1);

/// A connection accepted less than this ago is never closed to make room: time for a client
/// to send the request head it connected for, even from a busy host. It also bounds how
/// fast silent connections are turned over at the cap (the cap per this: 640/s for the
/// admin port), so a flood of them waits in the backlog, where a probe waits behind them
/// (`benches/floods.rs` measures how long); a longer one would protect slower clients and
/// make every client wait longer.
pub const EVICTABLE_AFTER: Duration = Duration::from_millis(100);

/// Below this share of the cap the header timeout is the configured one.
const SCALE_FROM: f64 = 0.5;

/// What a connection closed to make room was doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Evicted {
    /// No request yet.
    Silent,
    /// Between requests.
    Idle,
}

/// The header timeout for a listener holding `open` of `max` connections: `full` up to
/// half the cap, then falling linearly to `floor` at the cap (never above `full`).
pub fn scaled_header_timeout(full: Duration, floor: Duration, open: usize, max: usize) -> Duration {
    let floor = floor.min(full);
    #[allow(clippy::cast_precision_loss)] // connection counts are far below 2^52
    let occupancy = open as f64 / max.max(1) as f64;
    if occupancy <= SCALE_FROM {
        return full;
    }
    let left = ((1.0 - occupancy) / (1.0 - SCALE_FROM)).clamp(0.0, 1.0);
    floor + full.saturating_sub(floor).mul_f64(left)
}

/// One listener's connections, shared by the runtimes serving it.
pub(super) struct Occupancy {
    max: usize,
    header_full: Duration,
    open: AtomicUsize,
    next_id: AtomicU64,
    /// By accept order: the first silent one found is the oldest.
    members: Mutex<BTreeMap<u64, Member>>,
    evicted_silent: IntCounter,
    evicted_idle: IntCounter,
    header_timeouts: IntCounter,
}

/// The counters of one listener's limits.
pub(super) struct Counters {
    pub(super) evicted_silent: IntCounter,
    pub(super) evicted_idle: IntCounter,
    pub(super) header_timeouts: IntCounter,
}

struct Member {
    activity: Arc<Activity>,
    evict: Arc<Notify>,
}

/// A connection's place among the listener's; leaves it on drop.
pub(super) struct Ticket {
    id: u64,
    occupancy: Arc<Occupancy>,
    pub(super) activity: Arc<Activity>,
    /// Notified when the connection is chosen to make room.
    pub(super) evict: Arc<Notify>,
}

impl Occupancy {
    pub(super) fn new(max: usize, header_full: Duration, counters: Counters) -> Self {
        Self {
            max,
            header_full,
            open: AtomicUsize::new(0),
            next_id: AtomicU64::new(0),
            members: Mutex::new(BTreeMap::new()),
            evicted_silent: counters.evicted_silent,
            evicted_idle: counters.evicted_idle,
            header_timeouts: counters.header_timeouts,
        }
    }

    /// Registers a connection just accepted; `spoke` when it sent bytes before it was given
    /// its slot (it is not taken for silent then).
    pub(super) fn join(self: &Arc<Self>, spoke: bool) -> Ticket {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let activity = Arc::new(Activity::new(spoke));
        let evict = Arc::new(Notify::new());
        let member = Member {
            activity: Arc::clone(&activity),
            evict: Arc::clone(&evict),
        };
        self.lock().insert(id, member);
        self.open.fetch_add(1, Ordering::AcqRel);
        Ticket {
            id,
            occupancy: Arc::clone(self),
            activity,
            evict,
        }
    }

    /// The header timeout now, for how full the listener is.
    pub(super) fn header_timeout(&self) -> Duration {
        let open = self.open.load(Ordering::Acquire);
        scaled_header_timeout(self.header_full, HEADER_FLOOR, open, self.max)
    }

    /// Chooses a connection with nothing in flight to close for a new one and tells it;
    /// `None` when there is none. In order: the oldest that has sent nothing, then the
    /// oldest with a request head still incomplete (each at least [`EVICTABLE_AFTER`] old),
    /// then, only when no connection is waiting for its first request at all, the one idle
    /// the longest: a keep-alive connection of a client that did nothing wrong goes last.
    /// A chosen connection leaves the list at once, so it is never chosen twice.
    pub(super) fn evict_one(&self) -> Option<Evicted> {
        let mut members = self.lock();
        let (id, kind) = choose(&members, tokio::time::Instant::now())?;
        let member = members.remove(&id)?;
        drop(members);
        member.evict.notify_one();
        match kind {
            Evicted::Silent => self.evicted_silent.inc(),
            Evicted::Idle => self.evicted_idle.inc(),
        }
        Some(kind)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Member>> {
        self.members.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// [`Occupancy::evict_one`]'s choice among `members` as of `now`.
fn choose(members: &BTreeMap<u64, Member>, now: tokio::time::Instant) -> Option<(u64, Evicted)> {
    let mut partial = None;
    let mut waiting = false;
    let mut idle: Option<(u64, tokio::time::Instant)> = None;
    for (&id, member) in members {
        let state = member.activity.snapshot();
        if state.in_flight > 0 {
            continue;
        }
        if !state.served {
            waiting = true;
            // Until served, `idle_since` is when it was accepted.
            if now.saturating_duration_since(state.idle_since) < EVICTABLE_AFTER {
                continue;
            }
            if !state.spoke {
                return Some((id, Evicted::Silent));
            }
            partial = partial.or(Some(id));
        } else if idle.is_none_or(|(_, since)| state.idle_since < since) {
            idle = Some((id, state.idle_since));
        }
    }
    if let Some(id) = partial {
        return Some((id, Evicted::Silent));
    }
    if waiting {
        return None;
    }
    idle.map(|(id, _)| (id, Evicted::Idle))
}

impl Ticket {
    /// The header timeout now, for how full the listener is.
    pub(super) fn header_timeout(&self) -> Duration {
        self.occupancy.header_timeout()
    }

    /// Counts the connection's close for sending no request head in time.
    pub(super) fn timed_out(&self) {
        self.occupancy.header_timeouts.inc();
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.occupancy.lock().remove(&self.id);
        self.occupancy.open.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: Duration = Duration::from_secs(30);

    #[test]
    fn the_header_timeout_is_full_to_half_the_cap_then_falls_to_the_floor() {
        let at = |open| scaled_header_timeout(FULL, HEADER_FLOOR, open, 100);
        assert_eq!(at(0), FULL);
        assert_eq!(at(50), FULL);
        assert_eq!(at(75), Duration::from_millis(15_500));
        assert_eq!(at(100), HEADER_FLOOR);
        assert_eq!(
            at(250),
            HEADER_FLOOR,
            "over the cap (one waiting per runtime)"
        );
        let shorter = Duration::from_millis(200);
        assert_eq!(
            scaled_header_timeout(shorter, HEADER_FLOOR, 100, 100),
            shorter
        );
    }

    fn occupancy(max: usize) -> Arc<Occupancy> {
        let counter = |n: &str| IntCounter::new(n, n).unwrap();
        let counters = Counters {
            evicted_silent: counter("silent"),
            evicted_idle: counter("idle"),
            header_timeouts: counter("timeouts"),
        };
        Arc::new(Occupancy::new(max, FULL, counters))
    }

    #[tokio::test(start_paused = true)]
    async fn eviction_takes_silent_then_partial_then_idle_never_a_busy_one() {
        let occupancy = occupancy(5);
        let busy = occupancy.join(false);
        let _in_flight = busy.activity.begin(http::Version::HTTP_11);
        let idle_long = occupancy.join(false);
        drop(idle_long.activity.begin(http::Version::HTTP_11));
        tokio::time::advance(Duration::from_secs(1)).await;
        let idle_short = occupancy.join(false);
        drop(idle_short.activity.begin(http::Version::HTTP_11));
        let partial = occupancy.join(true);
        let silent = occupancy.join(false);
        assert_eq!(occupancy.header_timeout(), HEADER_FLOOR, "at the cap");

        tokio::time::advance(EVICTABLE_AFTER / 2).await;
        assert_eq!(
            occupancy.evict_one(),
            None,
            "the young are spared, and the idle wait while someone may still speak"
        );
        tokio::time::advance(EVICTABLE_AFTER).await;
        let told = |ticket: &Ticket| {
            let notified = ticket.evict.notified();
            tokio::pin!(notified);
            notified.enable()
        };
        assert_eq!(occupancy.evict_one(), Some(Evicted::Silent));
        assert!(told(&silent), "the one that sent nothing goes first");
        assert_eq!(occupancy.evict_one(), Some(Evicted::Silent));
        assert!(told(&partial), "then the one that sent part of a head");
        assert_eq!(occupancy.evict_one(), Some(Evicted::Idle));
        assert!(told(&idle_long), "then the longest idle");
        assert_eq!(occupancy.evict_one(), Some(Evicted::Idle));
        assert!(told(&idle_short));
        assert_eq!(occupancy.evict_one(), None, "only a busy one is left");
        drop(silent);
        assert_eq!(occupancy.open.load(Ordering::Acquire), 4);
    }
}
