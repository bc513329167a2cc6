//! One client connection from accept to close, whatever its protocol: hyper-util's auto
//! builder serves it, and a watchdog beside it closes it when it has no business being open.
//!
//! hyper's own `header_read_timeout` cannot be that watchdog: it starts only once the auto
//! builder has seen that a connection is HTTP/1, so a silent socket, a partial HTTP/2 preface
//! or HTTP/2 without a stream stayed open forever (and it restarts between keep-alive
//! requests, so it would also cut idle HTTP/1 connections at the header timeout). Instead
//! the service counts requests in flight per connection, and the watchdog reads the count
//! when its timer fires, not when it changes: a request neither wakes the watchdog nor moves
//! its timer (which cost a wake-up, a timer removed and one inserted per request), and each
//! time the timer fires it is set again to the exact time the next rule below would act:
//!
//! - no request yet, the header timeout after accept: dropped (nothing is owed to it); the
//!   timeout shortens as the listener fills up ([`super::occupancy`]), so while no request
//!   has come the watchdog looks again at least every [`HEADER_FLOOR`];
//! - chosen to make room at the listener's cap: dropped when no request has come, else
//!   told to close;
//! - nothing in flight, [`Timeouts::idle`] after the last answer: told to close (HTTP/1
//!   closes, HTTP/2 gets a GOAWAY);
//! - told to close and still open [`CLOSE_GRACE`] after its last answer: dropped.
//!
//! When the listener drains ([`Phase`]), HTTP/1 answers carry `Connection: close`, so each
//! client learns the connection is done from an answer instead of finding it closed under a
//! request it just sent; HTTP/2 connections get a GOAWAY at once.

use std::convert::Infallible;
use std::pin::{Pin, pin};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONNECTION, HeaderValue};
use http::{Request, Response, Version};
use http_body::{Body, Frame, SizeHint};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;

use super::occupancy::{HEADER_FLOOR, Ticket};

/// How long a connection told to close may take to finish once nothing is in flight: long
/// enough to flush an answer and for an HTTP/2 peer to answer the GOAWAY's ping, short
/// enough that a peer which never reads cannot keep its descriptor.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// Where the listener is in its life; every connection watches it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Phase {
    Serving,
    /// Shutdown started: HTTP/1 answers say `Connection: close`, HTTP/2 gets a GOAWAY.
    Draining,
    /// The reuse window is over: every connection closes once its requests are answered.
    Closing,
}

/// The watchdog's deadlines (the `[server]` config section).
#[derive(Clone, Copy, Debug)]
pub(super) struct Timeouts {
    pub(super) header: Duration,
    pub(super) idle: Duration,
}

/// What the service reports about one connection.
#[derive(Debug)]
pub(super) struct Activity {
    state: Mutex<State>,
}

#[derive(Clone, Copy, Debug)]
pub(super) struct State {
    pub(super) in_flight: usize,
    /// A request head has arrived (the header timeout no longer applies).
    pub(super) served: bool,
    /// It sent bytes before it was given its slot (waited in the lobby).
    pub(super) spoke: bool,
    /// The client speaks HTTP/2 (known from its first request).
    h2: bool,
    /// Accept, or the end of the last answer.
    pub(super) idle_since: Instant,
}

impl Activity {
    pub(super) fn new(spoke: bool) -> Self {
        Self {
            state: Mutex::new(State {
                in_flight: 0,
                served: false,
                spoke,
                h2: false,
                idle_since: Instant::now(),
            }),
        }
    }

    pub(super) fn snapshot(&self) -> State {
        *self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn update(&self, f: impl FnOnce(&mut State)) {
        f(&mut self.state.lock().unwrap_or_else(PoisonError::into_inner));
    }

    pub(super) fn begin(self: &Arc<Self>, version: Version) -> InFlight {
        self.update(|s| {
            s.in_flight += 1;
            s.served = true;
            s.h2 |= version == Version::HTTP_2;
        });
        InFlight(Arc::clone(self))
    }
}

/// One request from its head to the end of its answer (or its cancellation).
#[derive(Debug)]
pub(super) struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.update(|s| {
            s.in_flight -= 1;
            if s.in_flight == 0 {
                s.idle_since = Instant::now();
            }
        });
    }
}

/// An answer's body that keeps its request counted as in flight until hyper has sent it
/// (or dropped it).
#[derive(Debug)]
pub(super) struct TrackedBody {
    inner: Full<Bytes>,
    _in_flight: InFlight,
}

impl Body for TrackedBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Serves `stream` with `handler` until the client closes it, the watchdog does, or the
/// listener's drain ends it. `ticket` is the connection's place among the listener's.
pub(super) async fn serve<H, F>(
    stream: TcpStream,
    builder: Arc<auto::Builder<TokioExecutor>>,
    handler: H,
    mut phase: watch::Receiver<Phase>,
    timeouts: Timeouts,
    ticket: Ticket,
    listener: &'static str,
) where
    H: Fn(Request<Incoming>) -> F + Send + Sync + 'static,
    F: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let _ = stream.set_nodelay(true);
    let service = service(Arc::clone(&ticket.activity), phase.clone(), handler);
    let mut conn = pin!(builder.serve_connection(TokioIo::new(stream), service));
    let mut dog = Watchdog {
        ticket,
        timeouts,
        told_at: None,
        listener,
    };
    loop {
        let state = dog.ticket.activity.snapshot();
        let mut verdict = Verdict::Wait;
        if dog.told_at.is_none() && should_close(state, *phase.borrow_and_update()) {
            verdict = Verdict::Close;
        } else {
            let due = next_look(state, dog.told_at, dog.timeouts(), Instant::now());
            tokio::select! {
                biased;
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(listener, error = %crate::error::Chain::for_log(&*e), "connection ended with an error");
                    }
                    return;
                }
                Ok(()) = phase.changed() => {}
                () = dog.ticket.evict.notified() => verdict = dog.evicted(),
                () = tokio::time::sleep_until(due) => verdict = dog.looked(),
            }
        }
        match verdict {
            Verdict::Wait => {}
            Verdict::Close => {
                conn.as_mut().graceful_shutdown();
                dog.told_at = Some(Instant::now());
            }
            Verdict::Drop => return,
        }
    }
}

/// What the watchdog decided.
enum Verdict {
    Wait,
    /// Tell the connection to close: HTTP/1 closes once its answers are sent, HTTP/2 gets a
    /// GOAWAY.
    Close,
    /// Drop it now: nothing is owed to it.
    Drop,
}

/// The rules one connection is held to, and when it was told to close.
struct Watchdog {
    ticket: Ticket,
    timeouts: Timeouts,
    told_at: Option<Instant>,
    listener: &'static str,
}

impl Watchdog {
    /// The timeouts with the header timeout as it is now, for how full the listener is.
    fn timeouts(&self) -> Timeouts {
        Timeouts {
            header: self.ticket.header_timeout().min(self.timeouts.header),
            ..self.timeouts
        }
    }

    /// Chosen to make room at the listener's cap.
    fn evicted(&self) -> Verdict {
        let state = self.ticket.activity.snapshot();
        let listener = self.listener;
        if state.in_flight == 0 && !state.served {
            tracing::debug!(listener, "silent at the cap; dropped to make room");
            return Verdict::Drop;
        }
        tracing::debug!(listener, "idle at the cap; closing to make room");
        if self.told_at.is_some() {
            Verdict::Wait
        } else {
            Verdict::Close
        }
    }

    /// The timer fired: what the rule that applies says now.
    fn looked(&self) -> Verdict {
        // Requests came and went since the timer was set: look again.
        let state = self.ticket.activity.snapshot();
        let now = Instant::now();
        let listener = self.listener;
        if state.in_flight > 0 || deadline(state, self.told_at, self.timeouts(), now) > now {
            return Verdict::Wait;
        }
        if self.told_at.is_some() {
            tracing::debug!(listener, "told to close and still open; dropping");
            return Verdict::Drop;
        }
        if !state.served {
            self.ticket.timed_out();
            tracing::debug!(listener, "no request within the header timeout; dropping");
            return Verdict::Drop;
        }
        tracing::debug!(listener, "idle; closing");
        Verdict::Close
    }
}

/// When the watchdog looks next: at the [`deadline`], and while no request has come, at
/// least every [`HEADER_FLOOR`], since a listener filling up shortens the header timeout
/// without waking anyone.
fn next_look(state: State, told_at: Option<Instant>, timeouts: Timeouts, now: Instant) -> Instant {
    let due = deadline(state, told_at, timeouts, now);
    if state.served || told_at.is_some() {
        due
    } else {
        due.min(now + HEADER_FLOOR)
    }
}

/// The handler, counting each request in flight on `activity` until its answer is sent,
/// and adding `Connection: close` to HTTP/1 answers once the listener drains.
fn service<H, F>(
    activity: Arc<Activity>,
    phase: watch::Receiver<Phase>,
    handler: H,
) -> impl hyper::service::Service<
    Request<Incoming>,
    Response = Response<TrackedBody>,
    Error = Infallible,
    Future = impl Future<Output = Result<Response<TrackedBody>, Infallible>> + Send,
> + Send
+ Sync
+ 'static
where
    H: Fn(Request<Incoming>) -> F + Send + Sync + 'static,
    F: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    hyper::service::service_fn(move |request: Request<Incoming>| {
        let in_flight = activity.begin(request.version());
        let http1 = request.version() < Version::HTTP_2;
        let phase = phase.clone();
        let answer = handler(request);
        async move {
            let mut response = answer.await;
            // Checked when the answer is ready, so a request in flight when the drain
            // starts is told as well.
            if http1 && *phase.borrow() != Phase::Serving {
                response
                    .headers_mut()
                    .insert(CONNECTION, HeaderValue::from_static("close"));
            }
            Ok(response.map(|inner| TrackedBody {
                inner,
                _in_flight: in_flight,
            }))
        }
    })
}

/// Whether the drain asks this connection to close now. An HTTP/1 connection is left open
/// while draining: its next answer says `Connection: close`, where closing it now could
/// cut a request the client is sending at this moment.
fn should_close(state: State, phase: Phase) -> bool {
    match phase {
        Phase::Serving => false,
        Phase::Draining => state.h2,
        Phase::Closing => true,
    }
}

/// When the watchdog looks next, as of `now`: when the rule that applies would act, if
/// nothing changes first. With a request in flight no rule applies (its own deadlines
/// belong to the proxy), so the watchdog only looks again one idle timeout later (or one
/// close grace, once told to close), since the end of a request does not wake it.
fn deadline(state: State, told_at: Option<Instant>, timeouts: Timeouts, now: Instant) -> Instant {
    if state.in_flight > 0 {
        now + if told_at.is_some() {
            CLOSE_GRACE
        } else {
            timeouts.idle
        }
    } else if let Some(told_at) = told_at {
        state.idle_since.max(told_at) + CLOSE_GRACE
    } else if state.served {
        state.idle_since + timeouts.idle
    } else {
        state.idle_since + timeouts.header
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUTS: Timeouts = Timeouts {
        header: Duration::from_secs(10),
        idle: Duration::from_mins(1),
    };

    fn state(in_flight: usize, served: bool, idle_since: Instant) -> State {
        State {
            in_flight,
            served,
            spoke: false,
            h2: false,
            idle_since,
        }
    }

    #[test]
    fn the_watchdog_looks_when_the_rule_that_applies_would_act() {
        let accepted = Instant::now();
        let now = accepted + Duration::from_secs(3);
        let fresh = state(0, false, accepted);
        assert_eq!(
            deadline(fresh, None, TIMEOUTS, now),
            accepted + TIMEOUTS.header
        );
        let idle = state(0, true, accepted + Duration::from_secs(1));
        assert_eq!(
            deadline(idle, None, TIMEOUTS, now),
            accepted + Duration::from_secs(1) + TIMEOUTS.idle
        );
        let told = accepted + Duration::from_secs(2);
        assert_eq!(
            deadline(idle, Some(told), TIMEOUTS, now),
            told + CLOSE_GRACE
        );
    }

    #[test]
    fn a_request_in_flight_only_moves_the_next_look() {
        let accepted = Instant::now();
        let now = accepted + Duration::from_secs(3);
        let busy = state(2, true, accepted);
        assert_eq!(deadline(busy, None, TIMEOUTS, now), now + TIMEOUTS.idle);
        assert_eq!(
            deadline(busy, Some(accepted), TIMEOUTS, now),
            now + CLOSE_GRACE
        );
    }
}
