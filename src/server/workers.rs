//! The proxy listener served by single-threaded runtimes (one per two cores by default),
//! each accepting from the same socket and keeping its connections, its requests and its
//! own upstream pool (see `upstream::Upstream`) to itself.
//!
//! With one work-stealing runtime, a request's task, the client connection's task and the
//! pooled upstream connection's task were handed between the two cores on most requests:
//! a futex wake-up and a context switch each, about a fifth of the sidecar's CPU under load
//! and the bulk of the latency it added over nginx. Here a request never leaves the thread
//! that accepted its connection, as in nginx's one process per core. The admin port, the
//! prober, the audit shipper and reloads stay on the main runtime.

use std::cell::Cell;
use std::future::Future;
use std::io;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use tokio::net::TcpListener;
use tokio::sync::{Barrier, Semaphore, oneshot, watch};

use super::{Settings, Shared, serve_with};

/// Overrides the number of proxy workers (default: half the CPUs this process may use).
pub const WORKERS_ENV: &str = "GLOBALSCALE_WORKERS";

/// The most workers the sidecar starts, whatever the host has: a sidecar shares its node.
const MAX_WORKERS: usize = 16;

thread_local! {
    static INDEX: Cell<Option<usize>> = const { Cell::new(None) };
}

/// How many proxy workers serve the listener: `GLOBALSCALE_WORKERS`, else half the CPUs
/// this process may use (its cgroup quota included), rounded up, at most [`MAX_WORKERS`].
///
/// Half, because a sidecar shares its CPUs with the application it serves, and because a
/// worker with more connections wakes up less often per request. Measured on 2 cores
/// (`benches/load`'s canned region, GetItem): one worker took 0.039-0.040 vCPU per 1k
/// req/s at 5k req/s open loop against 0.049-0.052 with two, and the same closed-loop
/// throughput (about 34k req/s); the load generator and the region had the other core.
/// Where one worker is not enough, `GLOBALSCALE_WORKERS` sets the number.
pub fn count() -> usize {
    static COUNT: OnceLock<usize> = OnceLock::new();
    *COUNT.get_or_init(|| {
        let configured = std::env::var(WORKERS_ENV)
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok());
        let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        configured.unwrap_or(cpus.div_ceil(2)).clamp(1, MAX_WORKERS)
    })
}

/// The proxy worker running on this thread, if it is one.
pub fn current() -> Option<usize> {
    INDEX.get()
}

/// Serves `handler` on `listener` with [`count`] workers until `shutdown` resolves; each
/// drains its own connections, and this returns once all have.
pub async fn serve<H, F>(
    listener: TcpListener,
    settings: Settings,
    handler: H,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()>
where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let listener = listener.into_std()?;
    let shared = Shared {
        slots: Arc::new(Semaphore::new(settings.max_connections)),
        runtimes: count(),
        occupancy: settings.occupancy(),
        closed: Arc::new(Barrier::new(count())),
    };
    let (stop, stopped) = watch::channel(false);
    let mut done = Vec::new();
    for index in 0..count() {
        // Built here, so that a runtime or a socket that cannot be had fails the start
        // instead of leaving a worker missing.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let listener = {
            let _entered = runtime.enter();
            TcpListener::from_std(listener.try_clone()?)?
        };
        let (settings, handler) = (settings.clone(), handler.clone());
        let shared = shared.clone();
        let mut stopped = stopped.clone();
        let (finished, finish) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name(format!("globalscale-proxy-{index}"))
            .spawn(move || {
                INDEX.set(Some(index));
                runtime.block_on(serve_with(
                    listener,
                    settings,
                    shared,
                    handler,
                    async move {
                        // A dropped sender (the app's future was dropped) stops the worker too.
                        let _ = stopped.wait_for(|stop| *stop).await;
                    },
                ));
                let _ = finished.send(());
            })?;
        done.push(finish);
    }
    // The workers hold the socket now: it must close when their copies do, so that a
    // client connecting during the drain is refused instead of queued and then reset.
    drop(listener);
    shutdown.await;
    stop.send_replace(true);
    for finish in done {
        let _ = finish.await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn there_is_always_a_worker_and_never_too_many() {
        assert!((1..=MAX_WORKERS).contains(&count()));
        assert_eq!(current(), None, "a test thread is not a proxy worker");
    }
}
