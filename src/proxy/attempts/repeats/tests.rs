use bytes::Bytes;
use http::HeaderValue;
use serde_json::json;

use super::*;
use crate::plan::Plan;
use crate::upstream::outbound::Outbound;
use crate::wire::{Operation, RequestView};

fn hash(text: &str) -> u64 {
    let mut hasher = foldhash::fast::FixedState::default().build_hasher();
    hash_json(&serde_json::from_str(text).unwrap(), &mut hasher);
    hasher.finish()
}

fn target(operation: &Operation) -> HeaderValue {
    HeaderValue::from_str(&format!("DynamoDB_20120810.{}", operation.name())).unwrap()
}

/// A request forwarded with `sent` as its body; `received` is the client's.
fn forward<'a>(operation: &'a Operation, received: &Bytes, sent: Bytes) -> Forward<'a> {
    Forward {
        operation,
        received: Received {
            target: target(operation),
            body: received.clone(),
        },
        outbound: Outbound {
            target: target(operation),
            content_type: None,
            user_agent: None,
            body: sent,
        },
        verifiable: None,
        pin_token: None,
        region_bodies: &[],
        read: None,
    }
}

/// A request forwarded as the client sent it.
fn as_received<'a>(operation: &'a Operation, body: &'static str) -> Forward<'a> {
    let body = Bytes::from_static(body.as_bytes());
    forward(operation, &body, body.clone())
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
    let operation = Operation::GetItem;
    let poison = as_received(&operation, r#"{"Key":{"a":{"S":"1"},"b":{"S":"2"}}}"#);
    let resent = as_received(&operation, r#"{"Key":{"b":{"S":"2"},"a":{"S":"1"}}}"#);
    let other = as_received(&operation, r#"{"Key":{"a":{"S":"9"}}}"#);
    assert!(repeats.counts("r1", &poison));
    assert!(!repeats.counts("r1", &resent));
    assert!(repeats.counts("r2", &poison), "another region's first");
    assert!(repeats.counts("r1", &other));
    assert!(repeats.counts("r1", &poison));
}

const CONFIG: &str = r#"
[[regions]]
name = "us-east-1"
endpoint = "http://127.0.0.1:1"

[[tables]]
name = "Versioned"
partition_key = "ItemID"
version_attribute = "Version"
"#;

/// The body the sidecar sends for the client's `body`, rewritten as the request path does.
fn rewritten(operation: &Operation, body: &Bytes) -> Bytes {
    let config = crate::config::Config::from_toml_str(CONFIG).unwrap();
    let policies = crate::snapshot::policies(&config, None);
    let view = RequestView::parse(operation.clone(), body).unwrap();
    let mut plan = Plan::build(&view, &policies).unwrap();
    crate::proxy::stages::rewrite_request(&view, &mut plan, body.clone(), None)
        .unwrap()
        .body
}

/// Each of the client's retries of a versioned write is sent with a fresh write id, and a
/// transaction without a token with a fresh token: still the same request.
#[test]
fn what_the_sidecar_adds_does_not_make_a_retry_another_request() {
    let put =
        json!({"TableName": "Versioned", "Item": {"ItemID": {"S": "poison"}, "n": {"N": "1"}}});
    let update = json!({"TableName": "Versioned", "Key": {"ItemID": {"S": "poison"}},
        "UpdateExpression": "SET n = :n", "ExpressionAttributeValues": {":n": {"N": "2"}}});
    let transaction = json!({"TransactItems": [{"Put": {"TableName": "Versioned",
        "Item": {"ItemID": {"S": "poison"}}}}]});
    for (operation, body) in [
        (Operation::PutItem, put),
        (Operation::UpdateItem, update),
        (Operation::TransactWriteItems, transaction),
    ] {
        let body = Bytes::from(body.to_string());
        let (first, retry) = (rewritten(&operation, &body), rewritten(&operation, &body));
        assert_ne!(
            first, retry,
            "{operation:?}: the sidecar adds nothing fresh"
        );
        let repeats = Repeats::default();
        assert!(repeats.counts("r1", &forward(&operation, &body, first)));
        assert!(
            !repeats.counts("r1", &forward(&operation, &body, retry)),
            "{operation:?}: the client's retry counted again"
        );
    }
}
