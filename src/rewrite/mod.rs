//! Pure rewrite steps: each a request half over the decoded request and a restore half over
//! the decoded final answer, with no I/O, no clock and no randomness inside (what they need
//! comes in through [`RequestCtx`] and the [`Plan`]), so each is tested alone. The one
//! exception is sealing a position at another namespace's item
//! ([`key_prefix::position`]), whose nonce and process-wide key are drawn where they are
//! used; the sealing itself is pure and tested with a fixed key and nonce.
//!
//! The steps, in order: a single-item write whose audit records travel with it runs as a
//! transaction ([`single_as_transaction`]), so does a versioned or atomically audited
//! BatchWriteItem ([`batch_as_transaction`]), transactions get a `ClientRequestToken` ([`idempotency`]),
//! partition keys get their region prefix ([`key_prefix`]), and versioned writes their version
//! check ([`optimistic_lock`]); last, DynamoDB's limits are checked on what will be sent
//! ([`limits`]). The restore halves run in reverse.

pub mod batch_as_transaction;
mod decoded;
mod expressions;
pub mod idempotency;
pub mod key_prefix;
pub mod limits;
pub mod optimistic_lock;
pub mod plain_get;
pub mod plain_put;
pub mod raw_answer;
mod raw_body;
pub mod single_as_transaction;

pub use crate::error::RewriteError;
pub use decoded::Decoded;
use serde_json::{Map, Value};

use crate::error::ProxyError;
use crate::expr::Expressions;
use crate::plan::Plan;

/// What the steps may know about the request beyond its body and plan.
#[derive(Debug, Clone)]
pub struct RequestCtx {
    /// A fresh token for `ClientRequestToken`, used only if the client sent none.
    pub idempotency_token: String,
    /// A fresh id that versioned writes store beside their version.
    pub write_id: String,
}

impl From<RewriteError> for ProxyError {
    fn from(err: RewriteError) -> Self {
        match err {
            RewriteError::Refused(message) => ProxyError::Validation(message),
            RewriteError::ForeignItem { .. } | RewriteError::Unsealable { .. } => {
                crate::error::InternalError::Rewrite(err).into()
            }
        }
    }
}

/// Runs every step's request half, in order, over the body and the expressions the plan
/// parsed; the expressions a step changed are printed into the body before the limits are
/// checked on what will be sent, and the plan keeps them as sent.
pub fn request(
    plan: &mut Plan,
    body: &mut Map<String, Value>,
    ctx: &RequestCtx,
) -> Result<(), RewriteError> {
    let mut expressions = std::mem::take(&mut plan.expressions);
    let result = steps(plan, &mut expressions, body, ctx);
    plan.expressions = expressions;
    result
}

fn steps(
    plan: &Plan,
    expressions: &mut Expressions,
    body: &mut Map<String, Value>,
    ctx: &RequestCtx,
) -> Result<(), RewriteError> {
    single_as_transaction::request(plan, body)?;
    batch_as_transaction::request(plan, body)?;
    idempotency::apply(&plan.operation, body, ctx);
    key_prefix::request(plan, expressions, body)?;
    optimistic_lock::request(plan, expressions, body, ctx)?;
    expressions.write_changed(body);
    limits::check(body)
}

/// Runs every step's restore half on the final answer (success or error body), in reverse.
pub fn restore(plan: &Plan, body: &mut Map<String, Value>) -> Result<(), RewriteError> {
    optimistic_lock::restore(plan, body);
    key_prefix::restore(plan, body)?;
    batch_as_transaction::restore(plan, body);
    single_as_transaction::restore(plan, body);
    Ok(())
}

#[cfg(test)]
mod tests;
