//! The poison request: one whose every attempt a region answers with the same server error
//! (a body that trips a bug in the region, say). Its failures are the request's, not the
//! region's: the attempt loop stops resending it once two attempts were answered alike
//! ([`Progress::settle`](super::progress::Progress)), and a region's health counts it once,
//! however often it or its resends (the client's own retries included) come back: ejecting
//! a region takes failures of different requests.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::{Mutex, PoisonError};

use http::StatusCode;

use crate::proxy::Forward;

/// What an error answer says, to tell one repeated: its status and DynamoDB error name.
pub(crate) type ErrorAnswer = (StatusCode, Option<String>);

/// The error answer of a region's reply.
pub(crate) fn error_answer(status: StatusCode, body: &[u8]) -> ErrorAnswer {
    (status, crate::wire::error_name(body))
}

/// Per region, the request whose server error was the last one its health counted.
#[derive(Default)]
pub(crate) struct Repeats {
    last: Mutex<HashMap<String, u64>>,
}

impl Repeats {
    /// Whether a server error of `req` in `region` counts for the region's health: not when
    /// the last one counted there was of the same request (the same operation and body).
    pub(crate) fn counts(&self, region: &str, req: &Forward<'_>) -> bool {
        let fingerprint = fingerprint(req);
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

/// The request as sent, hashed as JSON whose members are in no particular order: an SDK
/// writes a request's `Key` from a hash map, so the same request resent may list its
/// attributes in another order. A fixed seed: it is only compared within the process.
fn fingerprint(req: &Forward<'_>) -> u64 {
    let mut hasher = foldhash::fast::FixedState::default().build_hasher();
    hasher.write(req.outbound.target.as_bytes());
    match serde_json::from_slice::<serde_json::Value>(&req.outbound.body) {
        Ok(body) => hash_json(&body, &mut hasher),
        Err(_) => hasher.write(&req.outbound.body),
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
mod tests {
    use super::*;

    fn hash(text: &str) -> u64 {
        let mut hasher = foldhash::fast::FixedState::default().build_hasher();
        hash_json(&serde_json::from_str(text).unwrap(), &mut hasher);
        hasher.finish()
    }

    #[test]
    fn the_same_request_in_another_member_order_is_the_same() {
        let a = r#"{"TableName":"T","Key":{"a":{"S":"1"},"b":{"S":"2"}}}"#;
        let b = r#"{"Key":{"b":{"S":"2"},"a":{"S":"1"}},"TableName":"T"}"#;
        assert_eq!(hash(a), hash(b));
        assert_ne!(
            hash(a),
            hash(r#"{"TableName":"T","Key":{"a":{"S":"1"},"b":{"S":"3"}}}"#)
        );
        assert_ne!(hash(r#"{"a":["x","y"]}"#), hash(r#"{"a":["y","x"]}"#));
        assert_ne!(hash(r#"{"a":"1"}"#), hash(r#"{"a":1}"#));
    }

    #[test]
    fn a_region_counts_a_request_once_until_another_fails() {
        let repeats = Repeats::default();
        let operation = crate::wire::Operation::GetItem;
        let forward = |body: &'static str| Forward {
            operation: &operation,
            outbound: crate::upstream::outbound::Outbound {
                target: http::HeaderValue::from_static("DynamoDB_20120810.GetItem"),
                content_type: None,
                user_agent: None,
                body: bytes::Bytes::from_static(body.as_bytes()),
            },
            verifiable: None,
            pin_token: None,
            region_bodies: &[],
            read: None,
        };
        let poison = forward(r#"{"Key":{"a":{"S":"1"},"b":{"S":"2"}}}"#);
        let resent = forward(r#"{"Key":{"b":{"S":"2"},"a":{"S":"1"}}}"#);
        let other = forward(r#"{"Key":{"a":{"S":"9"}}}"#);
        assert!(repeats.counts("r1", &poison));
        assert!(!repeats.counts("r1", &resent));
        assert!(repeats.counts("r2", &poison), "another region's first");
        assert!(repeats.counts("r1", &other));
        assert!(repeats.counts("r1", &poison));
    }
}
