//! What the attempt loop knows of one request so far: attempts left, the answers and
//! failures seen, the region a transaction is pinned to, whether an attempt may have been
//! applied (and so every later one is the verification request), the retry budget spent.
//! The loop in `forward` only walks regions; each decision between attempts is a method here.

use tokio::time::Instant;

use super::{Attempt, exhausted, jittered, verification, verified};
use crate::error::{AttemptFailure, Failures, ProxyError};
use crate::metrics::Metrics;
use crate::proxy::{Forward, Reply};
use crate::route::retry::backoff_ceiling;
use crate::route::{AttemptOutcome, ResendSafety, RetryBudget};
use crate::snapshot::{Region, Snapshot};

pub(super) struct Progress<'a> {
    pub(super) deadline: Instant,
    safety: ResendSafety,
    attempts_left: u32,
    /// The last answer that allowed moving on (a throttle, a 5xx): the client gets it if
    /// nothing better comes.
    last_response: Option<Reply>,
    failures: Vec<AttemptFailure>,
    /// The region of the previous attempt, to count failovers.
    previous: Option<&'a str>,
    /// Once an attempt of a verifiable write may have been applied, every later attempt is
    /// this verification request.
    pub(super) verifying: Option<Forward<'a>>,
    error_answers: u32,
    last_outcome: Option<AttemptOutcome>,
    /// Whether any attempt may have been applied (not only refused or throttled).
    maybe_applied: bool,
    /// Tokens this request's retries took from the shared budget.
    spent: u32,
    /// The last server error a region answered: a second one alike ends the request with
    /// it (the poison rule, [`super::repeats`]).
    server_error: Option<super::repeats::ErrorAnswer>,
    /// A transaction that may have been applied somewhere goes nowhere else.
    pub(super) pinned: Option<usize>,
}

impl<'a> Progress<'a> {
    pub(super) fn new(snapshot: &Snapshot, safety: ResendSafety, pinned: Option<usize>) -> Self {
        Self {
            deadline: Instant::now() + snapshot.config.timeouts.request,
            safety,
            attempts_left: snapshot.config.routing.max_attempts,
            last_response: None,
            failures: Vec::new(),
            previous: None,
            verifying: None,
            error_answers: 0,
            last_outcome: None,
            maybe_applied: false,
            spent: 0,
            server_error: None,
            pinned,
        }
    }

    /// Whether another attempt may go at the region at `position` of round `round`: it
    /// fits the deadline after its pause, and the retry budget pays for it (every attempt
    /// but the request's first). Sleeps the pause; takes one of the attempts left.
    pub(super) async fn admit_next(
        &mut self,
        budget: &RetryBudget,
        metrics: &Metrics,
        position: usize,
        round: u32,
    ) -> bool {
        if let Some(outcome) = self.last_outcome {
            let new_round = if position == 0 { round } else { 0 };
            let pause = jittered(backoff_ceiling(self.error_answers, new_round));
            if Instant::now() + pause >= self.deadline {
                return false;
            }
            let cost = RetryBudget::cost(outcome);
            if !budget.withdraw(cost) {
                metrics.retry_budget_exhausted.inc();
                return false;
            }
            self.spent += cost;
            if !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
        }
        self.attempts_left -= 1;
        true
    }

    pub(super) fn attempts_left(&self) -> u32 {
        self.attempts_left
    }

    /// A hedge takes one of the attempts left: `max_attempts` bounds a request's load with
    /// hedges too. The hedge budget, not the retry budget, pays for it.
    pub(super) fn take_hedge(&mut self) -> bool {
        if self.attempts_left == 0 {
            return false;
        }
        self.attempts_left -= 1;
        true
    }

    /// Counts a move from the previous attempt's region to `region`.
    pub(super) fn moved_to(&mut self, region: &'a Region, metrics: &Metrics) {
        if let Some(from) = self.previous.filter(|from| *from != region.name) {
            metrics
                .failovers
                .with_label_values(&[from, &region.name])
                .inc();
        }
        self.previous = Some(&region.name);
    }

    /// Takes in one attempt's result: the reply the client gets, or `None` to go on.
    pub(super) fn settle(
        &mut self,
        req: &Forward<'a>,
        (region, index): (&Region, usize),
        (outcome, result): (AttemptOutcome, Attempt),
        budget: &RetryBudget,
        metrics: &Metrics,
    ) -> Result<Option<Reply>, ProxyError> {
        let safety = self.safety;
        if let Attempt::Done(_) = result {
            budget.answered(self.spent);
        }
        match result {
            Attempt::Done(reply) if self.verifying.is_some() => {
                return verified(reply, req.verifiable, metrics, safety).map(Some);
            }
            Attempt::Done(reply) => return Ok(Some(reply)),
            Attempt::Answered(reply) if outcome == AttemptOutcome::ServerError => {
                let answer =
                    super::repeats::error_answer(reply.upstream.status, &reply.upstream.body);
                if self.server_error.as_ref() == Some(&answer) {
                    // Answered alike twice: the request's fault, and resending it will not
                    // change the answer. The client gets it now, and its resend is paid back
                    // to the retry budget, as the regions' health does not count it either:
                    // else every poison request would drain a little of every client's
                    // retries and failover.
                    metrics.poison_requests.inc();
                    budget.answered(self.spent);
                    return Ok(Some(reply));
                }
                self.server_error = Some(answer);
                let failure = AttemptFailure::answered(region, reply.upstream.status);
                self.failures.push(failure);
                self.last_response = Some(reply);
            }
            Attempt::Answered(reply) => {
                let failure = AttemptFailure::answered(region, reply.upstream.status);
                self.failures.push(failure);
                self.last_response = Some(reply);
            }
            // A region's own answer (throttling, 5xx) says more than a later connection
            // failure, so an earlier answer is kept.
            Attempt::Failed(e) => self.failures.push(AttemptFailure::failed(region, e)),
        }
        if outcome.is_error_answer() {
            self.error_answers += 1;
        }
        let same_region = (safety == ResendSafety::SameRegion && !outcome.not_applied())
            || outcome == AttemptOutcome::WriteConflict;
        if same_region {
            self.pinned.get_or_insert(index);
        }
        self.last_outcome = Some(outcome);
        self.maybe_applied |= !outcome.not_applied();
        if self.verifying.is_none() && !outcome.not_applied() {
            self.verifying = verification(req).map_err(|e| e.after_send(&region.name, safety))?;
        }
        Ok(None)
    }

    /// Out of attempts: the last region's own answer if there was one (a throttle or 5xx
    /// the SDK retries), else a 503; a pinned transaction never answered may have run.
    pub(super) fn exhausted(self, snapshot: &Snapshot) -> Result<Reply, ProxyError> {
        let (pinned, failures) = (self.pinned, self.failures);
        let (maybe_applied, safety) = (self.maybe_applied, self.safety);
        self.last_response.ok_or_else(|| {
            let pinned = pinned.map(|index| snapshot.regions[index].name.as_str());
            exhausted(pinned, failures, maybe_applied, safety)
        })
    }

    /// The error of a request no region could take in its first round.
    pub(super) fn no_region(&self) -> ProxyError {
        ProxyError::NoRegionAvailable {
            failures: Failures::default(),
            maybe_applied: false,
            safety: self.safety,
        }
    }
}
