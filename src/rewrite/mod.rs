//! Pure rewrite steps: each a request half over the decoded request and a restore half over
//! the decoded final answer, with no I/O, no clock and no randomness inside (what they need
//! comes in through [`RequestCtx`] and the [`Plan`]), so each is tested alone.
//!
//! The steps, in order: a `ClientRequestToken` for transactions ([`idempotency`]), then
//! region-prefixed partition keys ([`key_prefix`]). Optimistic locking slots in after them.

pub mod idempotency;
pub mod key_prefix;

use serde_json::{Map, Value};

use crate::error::ProxyError;
use crate::plan::Plan;

/// What the steps may know about the request beyond its body and plan.
#[derive(Debug, Clone)]
pub struct RequestCtx {
    /// A fresh token for `ClientRequestToken`, used only if the client sent none.
    pub idempotency_token: String,
}

/// Why a step could not rewrite a request or an answer.
#[derive(Debug, thiserror::Error)]
pub enum RewriteError {
    /// The request asks for something the step cannot do safely: DynamoDB's
    /// `ValidationException`, saying why.
    #[error("{0}")]
    Refused(String),
    /// An answer holds an item of another namespace: never shown to the client.
    #[error("table {table}: the answer holds an item outside this sidecar's key prefix")]
    ForeignItem { table: String },
}

impl From<RewriteError> for ProxyError {
    fn from(err: RewriteError) -> Self {
        match err {
            RewriteError::Refused(message) => ProxyError::Validation(message),
            RewriteError::ForeignItem { .. } => ProxyError::Internal(err.to_string()),
        }
    }
}

/// Runs every step's request half, in order.
pub fn request(
    plan: &Plan,
    body: &mut Map<String, Value>,
    ctx: &RequestCtx,
) -> Result<(), RewriteError> {
    idempotency::apply(&plan.operation, body, ctx);
    key_prefix::request(plan, body)
}

/// Runs every step's restore half on the final answer (success or error body), in reverse.
pub fn restore(plan: &Plan, body: &mut Map<String, Value>) -> Result<(), RewriteError> {
    key_prefix::restore(plan, body)
}

#[cfg(test)]
mod tests;
