//! The poison request: one whose every attempt a region answers with the same server error
//! (a body that trips a bug in the region, say). Its failures are the request's, not the
//! region's: the attempt loop stops resending it once two attempts were answered alike
//! ([`Progress::settle`](super::progress::Progress)), and a region's health counts it once,
//! however often it or its resends (the client's own retries included) come back: ejecting
//! a region takes failures of different requests.
//!
//! A request is known by what the client sent, not by what the sidecar sends: the sidecar
//! puts a fresh write id into every versioned write and a fresh `ClientRequestToken` into a
//! transaction without one, so the body as sent differs between two retries of the client's.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::{Mutex, PoisonError};

use bytes::Bytes;
use http::{HeaderValue, StatusCode};

use crate::proxy::Forward;

/// What an error answer says, to tell one repeated: its status and DynamoDB error name.
pub(crate) type ErrorAnswer = (StatusCode, Option<String>);

/// The error answer of a region's reply.
pub(crate) fn error_answer(status: StatusCode, body: &[u8]) -> ErrorAnswer {
    (status, crate::wire::error_name(body))
}

/// A request as the client sent it: its `X-Amz-Target` and its body (decoded, before any
/// rewrite). Every attempt and resend of one request carries the same one.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub(crate) target: HeaderValue,
    pub(crate) body: Bytes,
}

/// Per region, the request whose server error was the last one its health counted.
#[derive(Default)]
pub(crate) struct Repeats {
    last: Mutex<HashMap<String, u64>>,
}

impl Repeats {
    /// Whether a server error of `req` in `region` counts for the region's health: not when
    /// the last one counted there was of the same request (the same operation and body, as
    /// the client sent them).
    pub(crate) fn counts(&self, region: &str, req: &Forward<'_>) -> bool {
        let fingerprint = fingerprint(&req.received);
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        match last.get_mut(region) {
            Some(previous) if *previous == fingerprint => false,
            Some(previous) => {
                *previous = fingerprint;
                true
            }
            None => {
                last.insert(region.to_owned(), fingerprint);
                true
            }
        }
    }
}

/// The client's request, hashed as JSON whose members are in no particular order: an SDK
/// writes a request's `Key` from a hash map, so the same request retried may list its
/// attributes in another order. A fixed seed: it is only compared within the process.
fn fingerprint(req: &Received) -> u64 {
    let mut hasher = foldhash::fast::FixedState::default().build_hasher();
    hasher.write(req.target.as_bytes());
    match serde_json::from_slice::<serde_json::Value>(&req.body) {
        Ok(body) => hash_json(&body, &mut hasher),
        Err(_) => hasher.write(&req.body),
    }
    hasher.finish()
}

fn hash_json(value: &serde_json::Value, hasher: &mut impl Hasher) {
    use serde_json::Value;
    match value {
        Value::Object(members) => {
            hasher.write_u8(b'{');
            let mut names: Vec<&String> = members.keys().collect();
            names.sort_unstable();
            for name in names {
                name.hash(hasher);
                hash_json(&members[name], hasher);
            }
        }
        Value::Array(items) => {
            hasher.write_u8(b'[');
            hasher.write_usize(items.len());
            for item in items {
                hash_json(item, hasher);
            }
        }
        Value::String(text) => {
            hasher.write_u8(b's');
            text.hash(hasher);
        }
        other => other.to_string().hash(hasher),
    }
}

#[cfg(test)]
mod tests;
