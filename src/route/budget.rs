//! The retry budget: one bucket of tokens shared by every request, so that when regions fail
//! everywhere at once the sidecar does not multiply the load on them by `max_attempts`.
//!
//! It follows the AWS SDKs' standard retry quota, which DynamoDB users already know: a retry
//! after an error answer costs 5 tokens, after a timeout or a broken connection 10; a request
//! that ends with an answer gives back what its retries cost, or 1 token when it needed none.
//! So retries that work (a failover to a healthy region) pay for themselves and never drain
//! the bucket; only retries that keep failing do. Moving on after a refused connection is free:
//! nothing reached the failed region, so it adds no load there.

use std::sync::atomic::{AtomicU32, Ordering};

use super::AttemptOutcome;

/// The AWS SDKs' default quota (the config's default).
pub use crate::config::DEFAULT_RETRY_BUDGET as DEFAULT_CAPACITY;
const ERROR_ANSWER_COST: u32 = 5;
const TIMEOUT_COST: u32 = 10;
const NO_RETRY_REFILL: u32 = 1;

/// The shared bucket. Lock-free: every request touches it.
#[derive(Debug)]
pub struct RetryBudget {
    capacity: AtomicU32,
    tokens: AtomicU32,
}

impl RetryBudget {
    /// A full bucket of `capacity` tokens.
    pub fn new(capacity: u32) -> Self {
        Self {
            capacity: AtomicU32::new(capacity),
            tokens: AtomicU32::new(capacity),
        }
    }

    /// What retrying after `outcome` costs.
    pub fn cost(outcome: AttemptOutcome) -> u32 {
        match outcome {
            // A refused connection sent nothing: the failed region saw no load.
            AttemptOutcome::Success
            | AttemptOutcome::ClientError
            | AttemptOutcome::ConnectError => 0,
            AttemptOutcome::Throttled
            | AttemptOutcome::ServerError
            | AttemptOutcome::CorruptAnswer
            | AttemptOutcome::WriteConflict => ERROR_ANSWER_COST,
            AttemptOutcome::Timeout | AttemptOutcome::TransportError => TIMEOUT_COST,
        }
    }

    /// Takes `cost` tokens if the bucket holds them; `false` means: do not retry.
    pub fn withdraw(&self, cost: u32) -> bool {
        cost == 0
            || self
                .tokens
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| t.checked_sub(cost))
                .is_ok()
    }

    /// A request ended with an answer from a region: its retries' cost (`spent`) comes back,
    /// or one token when it needed none. Never above the capacity.
    pub fn answered(&self, spent: u32) {
        let refill = if spent == 0 { NO_RETRY_REFILL } else { spent };
        let capacity = self.capacity.load(Ordering::Acquire);
        // The closure always returns Some, so this cannot fail.
        let _ = self
            .tokens
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| {
                Some(t.saturating_add(refill).min(capacity))
            });
    }

    /// A reloaded config's capacity; tokens above it are dropped.
    pub fn resize(&self, capacity: u32) {
        self.capacity.store(capacity, Ordering::Release);
        let _ = self
            .tokens
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| {
                Some(t.min(capacity))
            });
    }

    /// Tokens left, for the gauge.
    pub fn tokens(&self) -> u32 {
        self.tokens.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_that_keep_failing_drain_the_bucket_and_then_are_refused() {
        let budget = RetryBudget::new(20);
        let cost = RetryBudget::cost(AttemptOutcome::ServerError);
        for _ in 0..4 {
            assert!(budget.withdraw(cost));
        }
        assert_eq!(budget.tokens(), 0);
        assert!(!budget.withdraw(cost), "an empty bucket refuses");
        assert_eq!(budget.tokens(), 0, "a refusal takes nothing");
    }

    #[test]
    fn a_retry_that_works_pays_for_itself() {
        let budget = RetryBudget::new(20);
        let cost = RetryBudget::cost(AttemptOutcome::Timeout);
        assert!(budget.withdraw(cost));
        assert_eq!(budget.tokens(), 10);
        budget.answered(cost);
        assert_eq!(budget.tokens(), 20);
    }

    #[test]
    fn answers_without_retries_refill_one_token_up_to_the_capacity() {
        let budget = RetryBudget::new(10);
        assert!(budget.withdraw(5));
        budget.answered(0);
        assert_eq!(budget.tokens(), 6);
        for _ in 0..10 {
            budget.answered(0);
        }
        assert_eq!(budget.tokens(), 10);
    }

    #[test]
    fn moving_on_from_a_refused_connection_is_free_even_when_empty() {
        let budget = RetryBudget::new(0);
        assert!(budget.withdraw(RetryBudget::cost(AttemptOutcome::ConnectError)));
        assert!(!budget.withdraw(RetryBudget::cost(AttemptOutcome::Throttled)));
    }

    #[test]
    fn a_smaller_capacity_drops_the_tokens_above_it() {
        let budget = RetryBudget::new(500);
        budget.resize(50);
        assert_eq!(budget.tokens(), 50);
        budget.answered(0);
        assert_eq!(budget.tokens(), 50);
        budget.resize(100);
        budget.answered(0);
        assert_eq!(budget.tokens(), 51, "a larger capacity fills up over time");
    }
}
