//! The plain PutItem path against the general path it stands in for: whenever it takes a
//! request, it sends what the general path sends (the same JSON, fields and attributes in
//! another order), and it takes none the general path refuses.

use proptest::prelude::*;
use serde_json::{Value, json};

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

[[tables]]
name = "Prefixed"
partition_key = "k"
key_prefix = "{region}#"
"#;

const WRITE_ID: &str = "0f8fad5b-d9cb-469f-a165-70867728950e";

/// The plain path's body (and whether it stored a write id), and the general path's body or
/// its error; `None` for a body the view or the plan refuses, which never reaches either.
type Both = (Option<(Value, bool)>, Result<Value, String>);

fn both(body: &str) -> Option<Both> {
    let config = Config::from_toml_str(CONFIG).unwrap();
    let policies = policies(&config, None);
    let view = RequestView::parse(Operation::PutItem, body.as_bytes()).ok()?;
    let mut plan = Plan::build(&view, &policies).ok()?;
    let fast = request(&view, &plan, || WRITE_ID.to_owned()).map(|put| {
        let sent = serde_json::from_slice(&put.body).expect("the plain path writes JSON");
        (sent, put.write_id.is_some())
    });
    let ctx = RequestCtx {
        idempotency_token: String::new(),
        write_id: WRITE_ID.to_owned(),
    };
    let whole = (|| {
        let mut decoded = Decoded::of(&view, &plan, true).map_err(|e| e.to_string())?;
        rewrite::request(&mut plan, decoded.document_mut(), &ctx).map_err(|e| e.to_string())?;
        let bytes = decoded.to_vec().map_err(|e| e.to_string())?;
        Ok(serde_json::from_slice(&bytes).unwrap())
    })();
    Some((fast, whole))
}

/// Whether the plain path took `body`; when it did, it must send what the general path
/// sends, and store a write id exactly when the general path does.
fn same(body: &str) -> bool {
    match both(body) {
        Some((Some((fast, stored_id)), Ok(whole))) => {
            assert_eq!(fast, whole, "{body}");
            let general_stores = whole["Item"].get("__globalscale_write").is_some();
            assert_eq!(stored_id, general_stores, "{body}");
            true
        }
        Some((Some((fast, _)), Err(e))) => {
            panic!("{body}: {fast} where the general path refused: {e}")
        }
        Some((None, _)) | None => false,
    }
}

#[test]
fn a_put_of_only_an_item_is_sent_as_the_general_path_sends_it() {
    let taken = [
        r#"{"TableName":"Ledger","Item":{"k":{"S":"a"},"x":{"N":"1"}}}"#,
        r#"{"TableName":"Ledger","Item":{"x":{"L":[{"S":"\u00e9"},{"NULL":true}]},"k":{"S":"a\"\\\n"},"Version":{"N":"41"}}}"#,
        r#"{ "Item" : { "Version" : {"N":" 7 "}, "k" : { "S" : "a" } }, "TableName":"Ledger", "ReturnConsumedCapacity":"TOTAL" }"#,
        r#"{"\u0054ableName":"Ledger","Item":{"k":{"S":"a"},"\u0078":{"B":"AAE="}},"ReturnItemCollectionMetrics":"SIZE"}"#,
        r#"{"TableName":"Ledger","Item":{"k":{"S":"a"},"__globalscale_write":{"S":"forged"}}}"#,
        r#"{"TableName":"Versioned","Item":{"k":{"N":"1e2"},"Version":{"N":"0"}}}"#,
        r#"{"TableName":"Prefixed","Item":{"k":{"S":""},"Version":{"N":"3"},"y":{"M":{"a":{"S":"b"}}}}}"#,
        r#"{"TableName":"Ledger","Item":{"k":{"S":"a"},"Version":{"N":"99999999999999999999999999999999999998"}}}"#,
    ];
    for body in taken {
        assert!(same(body), "not taken: {body}");
    }
    let left = [
        // Fields a step reads or a judgement weighs.
        r##"{"TableName":"Ledger","Item":{"k":{"S":"a"}},"ConditionExpression":"attribute_exists(#k)","ExpressionAttributeNames":{"#k":"k"}}"##,
        r#"{"TableName":"Ledger","Item":{"k":{"S":"a"}},"ReturnValues":"ALL_OLD"}"#,
        r#"{"TableName":"Ledger","Item":{"k":{"S":"a"}},"Expected":{"k":{"Exists":false}}}"#,
        r#"{"TableName":"Ledger","TableName":"Ledger","Item":{"k":{"S":"a"}}}"#,
        // Items the general path refuses or reads otherwise.
        r#"{"TableName":"Ledger","Item":{"k":{"N":"1"}}}"#,
        r#"{"TableName":"Ledger","Item":{"k":{"S":"a","N":"1"}}}"#,
        r#"{"TableName":"Ledger","Item":{"k":{"S":"a"},"k":{"S":"b"}}}"#,
        r#"{"TableName":"Ledger","Item":{"x":{"S":"a"}}}"#,
        r#"{"TableName":"Ledger","Item":{"k":{"S":"a"},"Version":{"N":"-1"}}}"#,
        r#"{"TableName":"Ledger","Item":{"k":{"S":"a"},"Version":{"S":"1"}}}"#,
        r#"{"TableName":"Ledger","Item":{"k":{"S":"a"},"Version":{"N":"999999999999999999999999999999999999999"}}}"#,
        // A table without a policy is forwarded as it came.
        r#"{"TableName":"Other","Item":{"k":{"S":"a"}}}"#,
    ];
    for body in left {
        assert!(!same(body), "taken: {body}");
    }
}

/// A JSON value of the kinds an attribute holds, strings with anything in them.
fn value() -> impl Strategy<Value = Value> {
    let text = "[a-z\"\\\\\u{e9}\u{1}/ ]{0,4}";
    let leaf = prop_oneof![
        Just(json!(null)),
        any::<bool>().prop_map(|b| json!(b)),
        any::<i64>().prop_map(|n| json!(n)),
        text.prop_map(|s| json!(s)),
    ];
    leaf.prop_recursive(3, 16, 4, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((text, inner), 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn any_item_is_sent_as_the_general_path_sends_it(
        key in prop::option::of("[a-z\"\\\\\u{e9}#]{0,6}"),
        version in prop::option::of(prop_oneof![
            (0u64..1000).prop_map(|n| json!({"N": n.to_string()})),
            Just(json!({"N": "x"})),
            Just(json!({"S": "1"})),
        ]),
        others in prop::collection::vec(("[a-zk_]{1,3}", "[SNBLM]", value()), 0..4),
        table in prop_oneof![Just("Ledger"), Just("Versioned"), Just("Prefixed")],
        capacity in any::<bool>(),
    ) {
        let mut members: Vec<String> = others
            .iter()
            .map(|(name, kind, value)| format!("{}:{}", json!(name), json!({ kind: value })))
            .collect();
        if let Some(key) = key {
            members.push(format!(r#""k":{{"S":{}}}"#, json!(key)));
        }
        if let Some(version) = version {
            members.push(format!(r#""Version":{version}"#));
        }
        members.rotate_right(others.len() / 2);
        let mut body = format!(r#"{{"Item":{{{}}},"TableName":"{table}""#, members.join(","));
        if capacity {
            body.push_str(r#","ReturnConsumedCapacity":"INDEXES""#);
        }
        body.push('}');
        same(&body);
    }
}
