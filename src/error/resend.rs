//! The resend rule: how far a request got ([`Reach`]) and how safely it can be sent again
//! ([`ResendSafety`]). Defined here, with the error model, which judges every error by it;
//! `route` re-exports both for the attempt loop.

/// How far a request got before it ended: with its [`ResendSafety`], what decides whether
/// it may be sent again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// Answered, or refused for what it asks (a client error from a region, or the
    /// sidecar's own refusal of the request as it stands): sent again, it gets the same.
    Answered,
    /// Certainly not applied: never sent, refused for load, or rejected by a write conflict.
    NotApplied,
    /// Sent, and perhaps applied: no answer, a 5xx, an answer that cannot be trusted, or an
    /// answer the sidecar failed to pass on.
    MaybeApplied,
}

/// Whether a request that may already have been applied can be sent again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResendSafety {
    /// Applying it twice leaves the same state and the same answer as once (reads, plain
    /// puts and deletes, updates that `UpdateExpression::idempotent` accepts, transactions
    /// made only of such writes).
    Safe,
    /// A conditional PutItem: resent with `ReturnValuesOnConditionCheckFailure = ALL_OLD`, so a
    /// condition failure caused by its own first attempt is recognised (`proxy::own_write`).
    Verifiable,
    /// A transaction with a `ClientRequestToken` that is not [`Safe`](Self::Safe): DynamoDB
    /// knows the token only in the region that received it (for 10 minutes), and a
    /// transaction on a global table is transactional only in the region that ran it. Once
    /// an attempt may have been applied, it is resent only to that region.
    SameRegion,
    /// A second application could double a counter, append twice, or meet its own first
    /// attempt and report a false condition failure: once it may have been applied, the
    /// caller gets an error saying so (`ProxyError::AmbiguousWrite`), never a resend.
    Unsafe,
}

impl ResendSafety {
    /// The resend rule: whether a request that got as far as `reach` may be sent again. The
    /// attempt loop moves to another region by it (`AttemptOutcome::should_move`), and
    /// every error the client gets is judged by it (`ProxyError::retryable`).
    pub fn allows_resend(self, reach: Reach) -> bool {
        match reach {
            Reach::Answered => false,
            Reach::NotApplied => true,
            Reach::MaybeApplied => self != Self::Unsafe,
        }
    }

    /// The safety of the request sent again as it is, by anyone but the attempt loop (the
    /// client, after an error): only the loop verifies a [`Verifiable`](Self::Verifiable)
    /// put, and a [`SameRegion`](Self::SameRegion) transaction whose token the sidecar
    /// added comes back with a new token, so only a [`Safe`](Self::Safe) request stays safe.
    #[must_use]
    pub fn resent_as_is(self) -> Self {
        match self {
            Self::Safe => Self::Safe,
            Self::Verifiable | Self::SameRegion | Self::Unsafe => Self::Unsafe,
        }
    }
}
