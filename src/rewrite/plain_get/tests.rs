//! The plain GetItem path against the whole decoding it stands in for: whenever it takes a
//! request, it sends what the whole decoding sends (the same JSON; fields and attributes
//! in the order they came rather than sorted), and it takes none the whole decoding
//! refuses.

use std::fmt::Write as _;

use proptest::prelude::*;
use serde_json::json;

use super::request;
use crate::config::Config;
use crate::plan::Plan;
use crate::rewrite::{self, Decoded, RequestCtx};
use crate::snapshot::policies;
use crate::wire::{Operation, RequestView};

const CONFIG: &str = r#"
[[regions]]
name = "us-east-1"
endpoint = "http://127.0.0.1:8001"

[[tables]]
name = "Ledger"
partition_key = "k"
key_prefix = "{region}#"
version_attribute = "Version"

[[tables]]
name = "Versioned"
partition_key = "k"
version_attribute = "Version"
"#;

/// The plain path's body, and the whole decoding's body or its error.
type Both = (Option<Vec<u8>>, Result<Vec<u8>, String>);

/// Both bodies for `body`; `None` for a body
/// the view or the plan refuses, which never reaches either.
fn both(body: &str) -> Option<Both> {
    let config = Config::from_toml_str(CONFIG).unwrap();
    let policies = policies(&config, None);
    let view = RequestView::parse(Operation::GetItem, body.as_bytes()).ok()?;
    let mut plan = Plan::build(&view, &policies).ok()?;
    let fast = request(&view, &plan);
    let ctx = RequestCtx {
        idempotency_token: String::new(),
        write_id: String::new(),
    };
    let whole = (|| {
        let mut decoded = Decoded::of(&view, &plan, true).map_err(|e| e.to_string())?;
        rewrite::request(&mut plan, decoded.document_mut(), &ctx).map_err(|e| e.to_string())?;
        decoded.to_vec().map_err(|e| e.to_string())
    })();
    Some((fast, whole))
}

fn same(body: &str) -> bool {
    match both(body) {
        Some((Some(fast), Ok(whole))) => {
            let read = |bytes: &[u8]| serde_json::from_slice::<serde_json::Value>(bytes).unwrap();
            assert_eq!(read(&fast), read(&whole), "{body}");
            true
        }
        Some((Some(fast), Err(e))) => {
            panic!("{body}: {fast:?} where the whole decoding refused: {e}")
        }
        Some((None, _)) | None => false,
    }
}

#[test]
fn a_plain_get_item_is_sent_as_the_whole_decoding_sends_it() {
    let taken = [
        r#"{"TableName":"Ledger","Key":{"k":{"S":"a"}}}"#,
        r#"{ "Key" : { "s" : {"N":"1.50"}, "k" : { "S" : "a\u00e9\n\"" } }, "TableName":"Ledger", "ConsistentRead": true }"#,
        r#"{"TableName":"Led\u0067er","Key":{"k":{"S":"a"},"s":{"B":"AAE="}},"ReturnConsumedCapacity":"TOTAL"}"#,
        r#"{"TableName":"Versioned","Key":{"k":{"N":"1e2"},"s":{"N":"-0"}}}"#,
        r#"{"TableName":"Other","Key":{"k":{"S":"a"}}}"#,
        r#"{"TableName":"Ledger","Key":{"k":{"S":"a"},"z":{"L":[1,2.5,null,true,{"b":[],"a":{}}]}}}"#,
        r#"{"TableName":"Ledger","Key":{"z":{"S":"b"},"k":{"S":"a"},"\u007a2":{"N":"1"}}}"#,
    ];
    for body in taken {
        assert!(same(body), "not taken: {body}");
    }
    let left = [
        r#"{"TableName":"Ledger","Key":{"k":{"S":"a"}},"ProjectionExpression":"k"}"#,
        r#"{"TableName":"Ledger","Key":{"k":{"N":"1"}}}"#,
        r#"{"TableName":"Ledger","Key":{"k":{"S":"a","N":"1"}}}"#,
        r#"{"TableName":"Ledger","Key":{"s":{"S":"a"}}}"#,
        r#"{"TableName":"Ledger","Key":[]}"#,
        r#"{"TableName":"Ledger","TableName":"Ledger","Key":{"k":{"S":"a"}}}"#,
        r#"{"TableName":"Ledger","Key":{"k":{"$serde_json::private::RawValue":"{}"}}}"#,
        r#"{"TableName":"Ledger","Key":{"k":{"S":"a"},"k":{"S":"b"}}}"#,
        r#"{"TableName":"Ledger","Key":{"k":{"S":"a","S":"b"}}}"#,
        r#"{"TableName":"Versioned","Key":{"k":{"N":"1e2"},"k":{"N":"-0"}}}"#,
    ];
    for body in left {
        assert!(!same(body), "taken: {body}");
    }
}

/// A JSON value of the kinds a key holds, names and strings with anything in them. No
/// floating-point numbers: the plain path forwards a number as the client wrote it, where
/// the whole decoding reads and prints it again (serde_json's reading is not exact to the
/// last bit), and DynamoDB's own numbers are strings anyway.
fn value() -> impl Strategy<Value = serde_json::Value> {
    let text = "[a-z\"\\\\\u{e9}\u{1}/ ]{0,4}";
    let leaf = prop_oneof![
        Just(json!(null)),
        any::<bool>().prop_map(|b| json!(b)),
        any::<i64>().prop_map(|n| json!(n)),
        text.prop_map(|s| json!(s)),
    ];
    leaf.prop_recursive(3, 16, 4, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
            prop::collection::vec((text, inner), 0..4)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn any_key_is_sent_as_the_whole_decoding_sends_it(
        key in "[a-z\"\\\\\u{e9}#]{0,6}",
        others in prop::collection::vec(("[a-zk]{1,3}", "[SNBLM]", value()), 0..3),
        table in prop_oneof![Just("Ledger"), Just("Versioned")],
        consistent in any::<Option<bool>>(),
        escaped_name in any::<bool>(),
    ) {
        let mut members: Vec<String> = others
            .iter()
            .map(|(name, kind, value)| format!("{}:{}", json!(name), json!({ kind: value })))
            .collect();
        members.push(format!(r#""k":{{"S":{}}}"#, json!(key)));
        members.rotate_right(others.len() / 2);
        let name = if escaped_name { r#""\u0054ableName""# } else { r#""TableName""# };
        let mut body = format!(r#"{{"Key":{{{}}},{name}:"{table}""#, members.join(","));
        if let Some(consistent) = consistent {
            let _ = write!(body, r#", "ConsistentRead" : {consistent}"#);
        }
        body.push('}');
        same(&body);
    }
}
