//! Accepting at the cap: a connection accepted while every slot is taken waits in a small
//! lobby until it sends its first bytes, and only then takes a slot, closing a silent one
//! for it ([`super::occupancy`]). A client that connects to send a request (a probe, an SDK)
//! speaks at once and is served at once; a client that connects to send nothing waits in
//! the lobby, holding no slot, until it is dropped: after [`LOBBY_TIMEOUT`], or as the
//! oldest when the lobby is full.
//!
//! Leaving such connections in the kernel's backlog instead put a probe behind every silent
//! connection queued before it, each waiting for a slot to come free: with 200 silent
//! clients against the admin port's 64 slots, `/healthz` took a quarter of a second.

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use prometheus::IntCounter;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, TryAcquireError, mpsc};
use tokio::task::{AbortHandle, JoinSet};

use super::Shared;

/// How long a connection accepted at the cap may wait to say something: as long as the
/// header timeout at the cap.
pub const LOBBY_TIMEOUT: Duration = super::occupancy::HEADER_FLOOR;

/// Connections waiting in one listener's lobbies at most, shared among the runtimes that
/// serve it (each holds a descriptor: the reserve of `limits` has room for one listener's
/// worth per port).
pub const LOBBY_SIZE: usize = 64;

/// How long the listener waits, at the cap, for a connection it chose to close to free its
/// slot before choosing another: long enough for an HTTP/2 client to finish its GOAWAY.
const EVICTION_WAIT: Duration = Duration::from_secs(6);

/// How often the listener looks again, at the cap with no connection it may close, for one
/// (nothing wakes it when a request ends).
const FULL_RETRY: Duration = Duration::from_millis(50);

/// A connection with its slot.
pub(super) struct Admitted {
    pub(super) stream: TcpStream,
    pub(super) permit: OwnedSemaphorePermit,
    /// It sent bytes before it was given its slot (from the lobby).
    pub(super) spoke: bool,
}

/// The listener's accepting side, run as a task of its own that hands each admitted
/// connection to the serving loop.
pub(super) struct Acceptor {
    pub(super) listener: TcpListener,
    pub(super) shared: Shared,
    pub(super) lobby: Lobby,
}

impl Acceptor {
    /// Accepts until the serving loop stops listening (drops its receiver) or this task is
    /// aborted, which closes the listener.
    pub(super) async fn run(mut self, admitted: mpsc::Sender<Admitted>, name: &'static str) {
        loop {
            match self.next().await {
                Ok(connection) => {
                    if admitted.send(connection).await.is_err() {
                        return;
                    }
                }
                Err(e) => {
                    // Below the cap this should not happen; back off instead of spinning.
                    tracing::warn!(listener = name, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    /// The next connection with a slot: one accepted below the cap, or one from the lobby
    /// that has spoken.
    async fn next(&mut self) -> io::Result<Admitted> {
        loop {
            tokio::select! {
                accepted = self.listener.accept() => {
                    let (stream, _peer) = accepted?;
                    match Arc::clone(&self.shared.slots).try_acquire_owned() {
                        Ok(permit) => return Ok(Admitted { stream, permit, spoke: false }),
                        Err(TryAcquireError::NoPermits) => self.lobby.wait(stream),
                        Err(closed) => return Err(io::Error::other(closed)),
                    }
                }
                Some(stream) = self.lobby.next_spoken() => {
                    let permit = make_room(&self.shared).await?;
                    return Ok(Admitted { stream, permit, spoke: true });
                }
            }
        }
    }
}

/// Connections accepted at the cap, each waiting (in a task of its own) to be readable.
pub(super) struct Lobby {
    size: usize,
    waiting: JoinSet<Option<TcpStream>>,
    /// Oldest first, to drop the oldest when full.
    order: VecDeque<AbortHandle>,
    /// Dropped for being the oldest when the lobby was full.
    evicted: IntCounter,
    /// Dropped for saying nothing within [`LOBBY_TIMEOUT`].
    timed_out: IntCounter,
}

impl Lobby {
    /// A lobby of one of `runtimes` serving a listener.
    pub(super) fn new(runtimes: usize, evicted: IntCounter, timed_out: IntCounter) -> Self {
        Self {
            size: (LOBBY_SIZE / runtimes.max(1)).max(1),
            waiting: JoinSet::new(),
            order: VecDeque::new(),
            evicted,
            timed_out,
        }
    }

    /// Lets `stream` wait for its first bytes, dropping the oldest waiting when full.
    fn wait(&mut self, stream: TcpStream) {
        while self.order.front().is_some_and(AbortHandle::is_finished) {
            self.order.pop_front();
        }
        if self.order.len() >= self.size
            && let Some(oldest) = self.order.pop_front()
        {
            oldest.abort();
            self.evicted.inc();
        }
        let timed_out = self.timed_out.clone();
        let handle = self.waiting.spawn(async move {
            let mut first = [0u8; 1];
            // Bytes, not readiness, earn a slot: a closed connection is readable too.
            match tokio::time::timeout(LOBBY_TIMEOUT, stream.peek(&mut first)).await {
                Ok(Ok(n)) if n > 0 => Some(stream),
                Ok(_) => None,
                Err(_) => {
                    timed_out.inc();
                    None
                }
            }
        });
        self.order.push_back(handle);
    }

    /// The next waiting connection that has spoken; `None` once none waits.
    async fn next_spoken(&mut self) -> Option<TcpStream> {
        while let Some(done) = self.waiting.join_next().await {
            if let Ok(Some(stream)) = done {
                return Some(stream);
            }
        }
        None
    }
}

/// A slot for a connection at the cap: closes a silent or idle connection and waits for its
/// slot; while there is none it may close, looks again every [`FULL_RETRY`].
async fn make_room(shared: &Shared) -> io::Result<OwnedSemaphorePermit> {
    loop {
        let wait = if shared.occupancy.evict_one().is_some() {
            EVICTION_WAIT
        } else {
            FULL_RETRY
        };
        let freed = Arc::clone(&shared.slots).acquire_owned();
        if let Ok(permit) = tokio::time::timeout(wait, freed).await {
            return permit.map_err(io::Error::other);
        }
    }
}
