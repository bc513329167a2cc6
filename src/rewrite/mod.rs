//! Pure rewrite steps over a parsed request: no I/O, no clock, no randomness inside (what
//! they need comes in through [`RequestCtx`]), so each is tested alone.
//!
//! Today's step makes transactional writes safe to resend; region-prefixed keys and
//! optimistic locking slot in here as further steps.

pub mod idempotency;
pub mod own_write;

use crate::wire::ParsedRequest;

/// What the steps may know about the request beyond its body.
#[derive(Debug, Clone)]
pub struct RequestCtx {
    /// A fresh token for `ClientRequestToken`, used only if the client sent none.
    pub idempotency_token: String,
}

/// Runs every step in order; returns whether the body changed (so it must be serialized
/// again rather than forwarded byte for byte).
pub fn apply(request: &mut ParsedRequest, ctx: &RequestCtx) -> bool {
    idempotency::apply(request, ctx)
}
