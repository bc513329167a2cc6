//! Where the shipper's CPU work runs: resolving a window of spooled frames and linking records
//! into the chain (parsing, hashing, writing `chain.json` down). That work comes in bursts of
//! milliseconds, a whole window at a time; on tokio's blocking pool it competed as an equal
//! with the threads that serve requests, and on a two-core host a burst landing beside a write
//! in flight added its length to the write's answer (measured: the audited PutItem's added
//! p50 moved with the shipper's rounds, not with the spool's fsync). Here it runs on one thread
//! of its own at a lower scheduling priority ([`NICE`]), so a request's thread that wakes
//! takes the CPU first, and the shipper uses what is left.
//!
//! Nothing here can starve the trail for good: under CFS a niced thread still gets its
//! weighted share (nice 10 weighs about a tenth of a request thread), and the spool's
//! `max_spool_bytes` turns a shipper that falls behind a saturated host into backpressure
//! (retryable 503s for audited writes), as it does for an unreachable audit table.

use std::sync::OnceLock;
use std::sync::mpsc;

/// The background thread's niceness: a tenth of a normal thread's CPU weight under CFS
/// when both want the CPU, all of it when the request threads are idle.
pub const NICE: i32 = 10;

type Job = Box<dyn FnOnce() + Send>;

/// The queue to the background thread; `None` when the thread could not be started, and the
/// work then runs on tokio's blocking pool as before.
fn queue() -> Option<&'static mpsc::Sender<Job>> {
    static QUEUE: OnceLock<Option<mpsc::Sender<Job>>> = OnceLock::new();
    QUEUE
        .get_or_init(|| {
            let (sender, jobs) = mpsc::channel::<Job>();
            let started = std::thread::Builder::new()
                .name("audit-background".into())
                .spawn(move || {
                    lower_priority();
                    for job in jobs {
                        job();
                    }
                });
            match started {
                Ok(_) => Some(sender),
                Err(error) => {
                    tracing::warn!(%error, "audit: no background thread; the shipper's work runs on the blocking pool");
                    None
                }
            }
        })
        .as_ref()
}

/// Runs `work` on the background thread and waits for its result; `None` only if the work
/// panicked.
pub async fn run<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let Some(queue) = queue() else {
        return tokio::task::spawn_blocking(work).await.ok();
    };
    let (done, result) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        // A panic drops `done`, which the waiter reads as `None`; the thread goes on.
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
        if let Ok(value) = outcome {
            let _ = done.send(value);
        }
    });
    if let Err(mpsc::SendError(job)) = queue.send(job) {
        // The thread is gone (it cannot be, short of a panic escaping it): run here instead.
        return tokio::task::spawn_blocking(job)
            .await
            .ok()
            .and(result.await.ok());
    }
    result.await.ok()
}

/// Best effort: a thread that cannot lower its priority still works, at the normal one.
fn lower_priority() {
    // On Linux the nice value is per thread: PRIO_PROCESS with a thread id sets this one.
    #[cfg(target_os = "linux")]
    if let Err(error) = rustix::process::setpriority_process(Some(rustix::thread::gettid()), NICE) {
        tracing::warn!(%error, "audit: the background thread keeps the normal priority");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn work_runs_and_answers_and_a_panic_is_none() {
        assert_eq!(run(|| 6 * 7).await, Some(42));
        assert_eq!(run(|| -> u8 { panic!("boom") }).await, None);
        assert_eq!(run(|| "after").await, Some("after"), "the thread goes on");
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn the_thread_runs_niced() {
        let nice =
            run(|| rustix::process::getpriority_process(Some(rustix::thread::gettid())).ok()).await;
        assert_eq!(nice, Some(Some(NICE)));
    }
}
