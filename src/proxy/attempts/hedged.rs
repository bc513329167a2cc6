//! A hedged attempt: an eventually consistent read sent to its region and, if that region
//! has not answered after the hedge delay (its own p95 for the operation, with a floor), to
//! the next candidate as well; the first usable answer wins and the other attempt is
//! cancelled.
//!
//! A first attempt that loses to its hedge is not dropped at once: it is watched (in a task
//! of its own, the client already answered) until it answers or reaches its region's slow
//! threshold, then dropped. Its answer is a real latency sample; reaching the threshold is
//! a slow read. That is how a slow or silent region is demoted within a few reads while
//! hedges hide it, and it adds no load: the request had already been sent.
//!
//! When the hedge budget is empty the read waits for its region, except that one whose region
//! meanwhile was demoted or ejected is hedged anyway: the budget keeps a healthy fleet from
//! doubling its reads, not a read from leaving a region known to be failing.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::{Progress, Sent};
use crate::error::ProxyError;
use crate::proxy::{Forward, Proxy, Reply};
use crate::region::{ReadKind, ReadSample};
use crate::route::retry::classify_response;
use crate::route::{AttemptOutcome, ResendSafety};
use crate::snapshot::{Region, Snapshot};
use crate::upstream::{UpstreamError, UpstreamResponse};

/// How often a read waiting past its hedge delay, without budget, looks at its region again.
const RECHECK: Duration = Duration::from_millis(10);

/// An attempt's answer as a future that owns what it needs, so it can outlive the request.
type Owned = Pin<Box<dyn Future<Output = Result<UpstreamResponse, UpstreamError>> + Send>>;

/// A first attempt waiting for its hedge to be due.
#[derive(Clone, Copy)]
struct Waiting<'r> {
    region: &'r Region,
    kind: ReadKind,
    started: Instant,
    hedge_at: Instant,
}

/// How a hedged attempt ended.
pub(super) enum Raced {
    /// The client's answer.
    Reply(Box<Reply>),
    /// The first region ended before a hedge was sent, without an answer for the client.
    Alone,
    /// Both regions tried, neither answer for the client.
    Both,
}

impl Proxy {
    /// The attempt at `primary`, hedged to `hedge` when due.
    pub(super) async fn hedged<'a>(
        &self,
        snapshot: &'a Snapshot,
        req: &Forward<'a>,
        progress: &mut Progress<'a>,
        kind: ReadKind,
        (primary, hedge): (usize, usize),
    ) -> Result<Raced, ProxyError> {
        let region = &snapshot.regions[primary];
        let floor = snapshot.config.routing.reads.hedge_min_delay;
        let delay = region.health.reads.hedge_delay(kind, floor);
        let request = super::sign_for(snapshot, region, req).await?;
        let started = Instant::now();
        let upstream = Arc::clone(&snapshot.upstream);
        let deadline = progress.deadline;
        let mut first: Owned = Box::pin(async move { upstream.send(request, deadline).await });
        let waited = Waiting {
            region,
            kind,
            started,
            hedge_at: started + delay,
        };
        let (result, judged) = self
            .until_hedge(snapshot, progress, &waited, &mut first)
            .await;
        if let Some(result) = result {
            let sent = Sent {
                region,
                started,
                result,
                judged,
            };
            let attempt = self.conclude(snapshot, sent, req, ResendSafety::Safe, deadline)?;
            let settled = progress.settle(
                req,
                (region, primary),
                attempt,
                &snapshot.retry_budget,
                &self.metrics,
            )?;
            return Ok(settled.map_or(Raced::Alone, |reply| Raced::Reply(Box::new(reply))));
        }
        let second_region = &snapshot.regions[hedge];
        self.metrics
            .hedges
            .with_label_values(&[&region.name, &second_region.name])
            .inc();
        let request = super::sign_for(snapshot, second_region, req).await?;
        let second_started = Instant::now();
        let mut second = snapshot.upstream.send(request, deadline);
        let (mut first_pending, mut second_pending) = (true, true);
        while first_pending || second_pending {
            let (hedge_answered, result) = tokio::select! {
                result = &mut first, if first_pending => (false, result),
                result = &mut second, if second_pending => (true, result),
            };
            let sent = if hedge_answered {
                second_pending = false;
                Sent {
                    region: second_region,
                    started: second_started,
                    result,
                    judged: false,
                }
            } else {
                first_pending = false;
                Sent {
                    region,
                    started,
                    result,
                    judged,
                }
            };
            let index = if hedge_answered { hedge } else { primary };
            let sent_region = sent.region;
            let attempt = self.conclude(snapshot, sent, req, ResendSafety::Safe, deadline)?;
            let settled = progress.settle(
                req,
                (sent_region, index),
                attempt,
                &snapshot.retry_budget,
                &self.metrics,
            )?;
            let Some(reply) = settled else { continue };
            if hedge_answered {
                self.metrics
                    .hedges_won
                    .with_label_values(&[&region.name, &second_region.name])
                    .inc();
                if first_pending && judged {
                    // Already counted slow while it waited for budget.
                    self.health_log.cancelled(region, req.operation.label());
                } else if first_pending {
                    self.watch_loser(snapshot, first, region, kind, started, req);
                }
            } else if second_pending {
                self.health_log
                    .cancelled(second_region, req.operation.label());
            }
            return Ok(Raced::Reply(Box::new(reply)));
        }
        Ok(Raced::Both)
    }

    /// Waits for the first attempt until the hedge is due and paid for: its result if it
    /// ends first, `None` when the hedge should go; and whether the read was counted slow.
    /// Without budget the wait goes on, unless the region is found demoted or ejected
    /// meanwhile; a read still waiting at its region's slow threshold counts as slow, so
    /// reads that cannot be hedged still demote a slow or silent region.
    async fn until_hedge(
        &self,
        snapshot: &Snapshot,
        progress: &mut Progress<'_>,
        waiting: &Waiting<'_>,
        first: &mut Owned,
    ) -> (Option<Result<UpstreamResponse, UpstreamError>>, bool) {
        let Waiting {
            region,
            kind,
            started,
            mut hedge_at,
        } = *waiting;
        if progress.attempts_left() == 0 {
            return (Some(first.await), false);
        }
        let routing = &snapshot.config.routing;
        let slow_at = region
            .health
            .reads
            .slow_threshold(kind, &crate::route::health_log::judge(routing))
            .map(|threshold| started + threshold);
        let (mut refused, mut judged) = (false, false);
        loop {
            tokio::select! {
                biased;
                result = &mut *first => return (Some(result), judged),
                () = tokio::time::sleep_until(hedge_at) => {}
            }
            if !judged && slow_at.is_some_and(|at| Instant::now() >= at) {
                judged = true;
                self.health_log
                    .read(snapshot, region, kind, ReadSample::Slow, started);
            }
            let failing = !region.health.serves_reads();
            if (failing || snapshot.hedge_budget.withdraw()) && progress.take_hedge() {
                return (None, judged);
            }
            if !refused {
                refused = true;
                self.metrics.hedge_budget_exhausted.inc();
            }
            hedge_at = Instant::now() + RECHECK;
        }
    }

    /// Watches a first attempt that lost to its hedge until its region's slow threshold,
    /// then drops it; what it showed feeds the region's read latency.
    fn watch_loser(
        &self,
        snapshot: &Snapshot,
        attempt: Owned,
        region: &Region,
        kind: ReadKind,
        started: Instant,
        req: &Forward<'_>,
    ) {
        let judge = crate::route::health_log::judge(&snapshot.config.routing);
        let operation = req.operation.label();
        let Some(threshold) = region.health.reads.slow_threshold(kind, &judge) else {
            self.health_log.cancelled(region, operation);
            return;
        };
        let (log, region) = (Arc::clone(&self.health_log), region.clone());
        // The other regions, for the judgement of a demoted one: the current snapshot's.
        let snapshot = self.snapshot.load_full();
        tokio::spawn(async move {
            if let Ok(result) = tokio::time::timeout_at(started + threshold, attempt).await {
                let outcome = match &result {
                    Ok(response) => classify_response(response.status, &response.body),
                    Err(e) => AttemptOutcome::from_error(e),
                };
                let elapsed = result.as_ref().ok().map(|r| r.elapsed);
                log.attempt(&region, operation, outcome, elapsed, started);
                if let (Some(elapsed), AttemptOutcome::Success) = (elapsed, outcome) {
                    let sample = ReadSample::Answered(elapsed);
                    log.read(&snapshot, &region, kind, sample, started);
                }
            } else {
                log.cancelled(&region, operation);
                log.read(&snapshot, &region, kind, ReadSample::Slow, started);
            }
        });
    }
}
