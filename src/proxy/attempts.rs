//! The attempt loop: candidate regions in order, each attempt signed for its region, sent,
//! classified against the retry-safety table, and either answered or moved on, with a
//! verification resend for conditional puts whose first attempt may have been applied.

use bytes::Bytes;
use http::StatusCode;

use super::own_write;
use super::{Forward, Proxy, Reply};
use crate::config::WriteFailover;
use crate::error::{Ambiguity, AttemptFailure, Failures, InternalError, ProxyError};
use crate::region::ReadSample;
use crate::upstream::UpstreamResponse;
use progress::Progress;

mod hedged;
mod progress;
pub(crate) mod repeats;
use crate::route::retry::classify_response;
use crate::route::{AttemptOutcome, ResendSafety, candidates, read_candidates};
use crate::snapshot::{Region, Snapshot};
use crate::upstream::UpstreamError;
use crate::upstream::outbound::signed_request;
use crate::wire;

impl Proxy {
    /// Tries candidate regions in order until one answers in a way the client should see.
    /// When every candidate failed in a way that allows moving, it starts over from the best
    /// one, within `max_attempts` and the request deadline; the pauses between attempts are
    /// [`backoff_ceiling`]'s, jittered.
    pub(super) async fn forward(
        &self,
        snapshot: &Snapshot,
        req: &Forward<'_>,
        safety: ResendSafety,
    ) -> Result<Reply, ProxyError> {
        let pinned = self.pinned_region(snapshot, req, safety)?;
        let mut progress = Progress::new(snapshot, safety, pinned);
        let budget = &snapshot.retry_budget;
        let hedging = req.read.is_some() && snapshot.config.routing.reads.hedge;
        if req.read.is_some() {
            self.metrics.eventual_reads.inc();
            let percent = snapshot.config.routing.reads.hedge_budget_percent;
            snapshot.hedge_budget.deposit(percent);
        }
        // Each round asks for the candidates again: a region readmitted (or ejected) while
        // this request was failing counts for its next round.
        'rounds: for round in 0u32.. {
            let order = match progress.pinned {
                Some(index) => smallvec::smallvec![index],
                None => self.candidates(snapshot, req),
            };
            if order.is_empty() {
                if round == 0 {
                    return Err(progress.no_region());
                }
                break;
            }
            // Regions a hedge already tried this round, by bit (no allocation per request;
            // a region past the 128th is never skipped, at worst tried twice).
            let mut tried: u128 = 0;
            let was_tried = |tried: u128, i: usize| i < 128 && tried & (1 << i) != 0;
            for (position, &index) in order.iter().enumerate() {
                if progress.attempts_left() == 0 {
                    break 'rounds;
                }
                // Pinned during this round: the rest of its candidates are out.
                if progress.pinned.is_some_and(|pin| pin != index) || was_tried(tried, index) {
                    continue;
                }
                if !progress
                    .admit_next(budget, &self.metrics, position, round)
                    .await
                {
                    break 'rounds;
                }
                let region = &snapshot.regions[index];
                progress.moved_to(region, &self.metrics);
                let next = order[position + 1..]
                    .iter()
                    .find(|&&i| !was_tried(tried, i));
                if let (true, Some(&next), Some(kind)) = (hedging, next, req.read) {
                    let raced = self
                        .hedged(snapshot, req, &mut progress, kind, (index, next))
                        .await?;
                    match raced {
                        hedged::Raced::Reply(reply) => return Ok(*reply),
                        hedged::Raced::Both if next < 128 => tried |= 1 << next,
                        hedged::Raced::Both | hedged::Raced::Alone => {}
                    }
                    continue;
                }
                let current = progress.verifying.as_ref().unwrap_or(req);
                let attempt = self
                    .attempt(snapshot, region, current, safety, progress.deadline)
                    .await?;
                let settled =
                    progress.settle(req, (region, index), attempt, budget, &self.metrics)?;
                if let Some(reply) = settled {
                    return Ok(reply);
                }
            }
        }
        progress.exhausted(snapshot)
    }

    /// One attempt against one region: sign, send, classify, record.
    async fn attempt(
        &self,
        snapshot: &Snapshot,
        region: &Region,
        req: &Forward<'_>,
        safety: ResendSafety,
        deadline: tokio::time::Instant,
    ) -> Result<(AttemptOutcome, Attempt), ProxyError> {
        let upstream_request = sign_for(snapshot, region, req).await?;
        let started = tokio::time::Instant::now();
        let result = snapshot.upstream.send(upstream_request, deadline).await;
        let sent = Sent {
            region,
            started,
            result,
            judged: false,
        };
        self.conclude(snapshot, sent, req, safety, deadline)
    }

    /// What one attempt's result means: classified, recorded, and either an answer, a
    /// failure that allows moving on, or an error for the client.
    fn conclude(
        &self,
        snapshot: &Snapshot,
        Sent {
            region,
            started,
            result,
            judged,
        }: Sent<'_>,
        req: &Forward<'_>,
        safety: ResendSafety,
        deadline: tokio::time::Instant,
    ) -> Result<(AttemptOutcome, Attempt), ProxyError> {
        // The request's deadline, not only this attempt's timeout: nothing is tried after it.
        if matches!(result, Err(UpstreamError::Timeout(_)))
            && tokio::time::Instant::now() >= deadline
        {
            self.record(region, req, AttemptOutcome::Timeout, None, started);
            self.pin(region, req, safety, AttemptOutcome::Timeout);
            return Err(match safety {
                ResendSafety::Safe => {
                    ProxyError::DeadlineExceeded(snapshot.config.timeouts.request)
                }
                ResendSafety::Unsafe | ResendSafety::Verifiable | ResendSafety::SameRegion => {
                    ProxyError::AmbiguousWrite {
                        region: region.name.clone(),
                        cause: Ambiguity::Deadline,
                        safety,
                    }
                }
            });
        }
        let outcome = match &result {
            Ok(response) => classify_response(response.status, &response.body),
            Err(e) => AttemptOutcome::from_error(e),
        };
        let elapsed = result.as_ref().ok().map(|r| r.elapsed);
        self.record(region, req, outcome, elapsed, started);
        let sample = (req.read, elapsed, outcome, judged);
        if let (Some(kind), Some(elapsed), AttemptOutcome::Success, false) = sample {
            // With hedging, an answer the client takes came first: no slow vote (see
            // `ReadSample::Won`); without, its latency alone is judged.
            let sample = if snapshot.config.routing.reads.hedge {
                ReadSample::Won(elapsed)
            } else {
                ReadSample::Answered(elapsed)
            };
            self.health_log
                .read(snapshot, region, kind, sample, started);
        }
        self.pin(region, req, safety, outcome);
        let moves = outcome.should_move(safety);
        let attempt = match result {
            Ok(upstream) => {
                let reply = Reply {
                    region: std::sync::Arc::clone(&region.label),
                    upstream,
                };
                if moves {
                    Attempt::Answered(reply)
                } else {
                    Attempt::Done(reply)
                }
            }
            Err(e) if moves => Attempt::Failed(e),
            Err(e) => {
                return Err(ProxyError::AmbiguousWrite {
                    region: region.name.clone(),
                    cause: Ambiguity::Attempt(e),
                    safety,
                });
            }
        };
        Ok((outcome, attempt))
    }
}

/// The signed request for `region`: its own body when the request names its region.
async fn sign_for(
    snapshot: &Snapshot,
    region: &Region,
    req: &Forward<'_>,
) -> Result<http::Request<http_body_util::Full<Bytes>>, ProxyError> {
    let own_body = req
        .region_bodies
        .iter()
        .find(|(name, _)| *name == region.name);
    let outbound = own_body.map(|(_, body)| req.outbound.with_body(body.clone()));
    let outbound = outbound.as_ref().unwrap_or(&req.outbound);
    signed_request(&snapshot.signer, region, outbound).await
}

/// One attempt sent: where, when, and how it ended.
struct Sent<'r> {
    region: &'r Region,
    started: tokio::time::Instant,
    result: Result<UpstreamResponse, UpstreamError>,
    /// An eventually consistent read already counted slow while it waited: its latency is
    /// not judged again.
    judged: bool,
}

impl Proxy {
    /// The regions to try in order: the healthy ones by the routing policy; for a write
    /// under `write_failover = "manual"`, the write region alone, healthy or not, so that a
    /// write never moves without an operator's decision.
    fn candidates(&self, snapshot: &Snapshot, req: &Forward<'_>) -> crate::route::PerRegion<usize> {
        let manual = snapshot.config.routing.write_failover == WriteFailover::Manual;
        if manual && !req.operation.is_read() && req.read.is_none() {
            let write_region = self.write_region();
            if let Some(index) = snapshot.regions.iter().position(|r| r.name == write_region) {
                return smallvec::smallvec![index];
            }
        }
        let (views, policy) = (snapshot.region_views(), snapshot.config.routing.policy);
        if req.read.is_some() {
            return read_candidates(&views, policy, fastrand::f64);
        }
        candidates(&views, policy)
    }

    /// The region an earlier attempt of this transaction (this request's, or an earlier
    /// request's with the same token) may have been applied in.
    fn pinned_region(
        &self,
        snapshot: &Snapshot,
        req: &Forward<'_>,
        safety: ResendSafety,
    ) -> Result<Option<usize>, ProxyError> {
        let Some(region) = req.pin_token.and_then(|token| self.pins.region_of(token)) else {
            return Ok(None);
        };
        match snapshot.regions.iter().position(|r| r.name == region) {
            Some(index) => Ok(Some(index)),
            // The only region that knows the token was removed from the config: sending
            // the transaction anywhere else could apply it twice.
            None => Err(ProxyError::AmbiguousWrite {
                region,
                cause: Ambiguity::RegionRemoved,
                safety,
            }),
        }
    }

    /// Remembers where a token-carrying transaction may have been applied.
    fn pin(
        &self,
        region: &Region,
        req: &Forward<'_>,
        safety: ResendSafety,
        outcome: AttemptOutcome,
    ) {
        if safety == ResendSafety::SameRegion
            && !outcome.not_applied()
            && let Some(token) = req.pin_token
        {
            self.pins.pin(token, &region.name);
        }
    }
}

/// The error of a request out of attempts with no answer to show.
fn exhausted(
    pinned: Option<&str>,
    failures: Vec<AttemptFailure>,
    maybe_applied: bool,
    safety: ResendSafety,
) -> ProxyError {
    match pinned {
        Some(region) => ProxyError::AmbiguousWrite {
            region: region.to_owned(),
            cause: Ambiguity::OutOfAttempts(Failures(failures)),
            safety,
        },
        None => ProxyError::NoRegionAvailable {
            failures: Failures(failures),
            maybe_applied,
            safety,
        },
    }
}

/// Between half of `ceiling` and all of it, so requests that failed together do not come
/// back together.
fn jittered(ceiling: std::time::Duration) -> std::time::Duration {
    let half = ceiling / 2;
    let spread = u64::try_from(half.as_micros()).unwrap_or(u64::MAX);
    half + std::time::Duration::from_micros(fastrand::u64(0..=spread))
}

/// The verification request for a verifiable write, or `None` for any other.
fn verification<'a>(req: &Forward<'a>) -> Result<Option<Forward<'a>>, ProxyError> {
    let Some((sent, _)) = req.verifiable else {
        return Ok(None);
    };
    let request = sent.document().ok_or_else(unreadable_sent)?;
    let body = serde_json::to_vec(&own_write::verification_request(&request))
        .map_err(InternalError::Encode)?;
    Ok(Some(Forward {
        operation: req.operation,
        received: req.received.clone(),
        outbound: req.outbound.with_body(Bytes::from(body)),
        verifiable: req.verifiable,
        pin_token: req.pin_token,
        region_bodies: req.region_bodies,
        read: req.read,
    }))
}

fn unreadable_sent() -> ProxyError {
    InternalError::UnreadableSent.into()
}

/// The answer to a verification request, as the client should see it: a condition failure
/// caused by the write's own first attempt becomes the success it was.
/// Counted in `globalscale_write_verifications_total{verdict}`.
fn verified(
    mut reply: Reply,
    verifiable: Option<(own_write::Sent<'_>, &own_write::Mark)>,
    metrics: &crate::metrics::Metrics,
    safety: ResendSafety,
) -> Result<Reply, ProxyError> {
    let Some((sent, mark)) = verifiable else {
        return Ok(reply);
    };
    let request = sent
        .document()
        .ok_or_else(|| unreadable_sent().after_send(&reply.region, safety))?;
    let failed_condition = reply.upstream.status == StatusCode::BAD_REQUEST
        && wire::is_condition_failure(&reply.upstream.body);
    let (verdict, result) = if failed_condition {
        match own_write::judge(&request, mark, &reply.upstream.body) {
            own_write::Verdict::OwnWrite(body) => {
                tracing::info!(region = %reply.region, "a conditional write's first attempt had been applied; answering its success");
                reply.upstream.status = StatusCode::OK;
                reply.upstream.body = Bytes::from(body);
                ("own_write", Ok(reply))
            }
            own_write::Verdict::ConditionFailed(body) => {
                reply.upstream.body = Bytes::from(body);
                ("condition_failed", Ok(reply))
            }
            own_write::Verdict::Unknown => (
                "unknown",
                Err(ProxyError::AmbiguousWrite {
                    region: reply.region.name.clone(),
                    cause: Ambiguity::Unverified,
                    safety,
                }),
            ),
        }
    } else {
        ("answered", Ok(reply))
    };
    metrics
        .write_verifications
        .with_label_values(&[verdict])
        .inc();
    result
}

/// How one attempt ended, for the attempt loop.
enum Attempt {
    /// The client gets this answer.
    Done(Reply),
    /// An answer that allows moving on (throttling, 5xx), kept in case nothing better comes.
    Answered(Reply),
    /// No answer, and moving on is safe.
    Failed(UpstreamError),
}

#[cfg(test)]
mod tests;
