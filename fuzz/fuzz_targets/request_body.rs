//! Any bytes as the body of any operation, on a prefixed and versioned table and on one
//! without a policy:
//! viewed, planned, rewritten and its answer restored, or refused, never a panic. A request
//! decoded lean (`rewrite::Decoded`) is sent as the same JSON as one decoded whole.
#![no_main]

use std::sync::OnceLock;

use globalscale::config::Config;
use globalscale::plan::Plan;
use globalscale::rewrite::{self, RequestCtx};
use globalscale::snapshot::{Policies, policies};
use globalscale::wire::{Operation, RequestView};
use libfuzzer_sys::fuzz_target;

const OPERATIONS: [&str; 12] = [
    "GetItem",
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "BatchGetItem",
    "BatchWriteItem",
    "TransactGetItems",
    "TransactWriteItems",
    "Query",
    "Scan",
    "ExecuteStatement",
    "Frobnicate",
];

const CONFIG: &str = r#"
[[regions]]
name = "us-east-1"
endpoint = "http://127.0.0.1:8001"

[[tables]]
name = "GlobalCatalog"
partition_key = "ItemID"
key_prefix = "{region}#"
version_attribute = "Version"
"#;

fn policies_once() -> &'static Policies {
    static POLICIES: OnceLock<Policies> = OnceLock::new();
    POLICIES.get_or_init(|| policies(&Config::from_toml_str(CONFIG).unwrap(), None))
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let operation = Operation::from_name(OPERATIONS[usize::from(selector) % OPERATIONS.len()]);
    let Ok(view) = RequestView::parse(operation, body) else {
        return;
    };
    // Each run edits its plan's expressions: the lean run gets a plan of its own.
    let (Ok(mut plan), Ok(mut lean_plan)) = (
        Plan::build(&view, policies_once()),
        Plan::build(&view, policies_once()),
    ) else {
        return;
    };
    let Ok(mut document) = view.to_map() else {
        return;
    };
    let ctx = RequestCtx {
        idempotency_token: "fuzz".into(),
        write_id: "fuzz".into(),
    };
    let whole = rewrite::request(&mut plan, &mut document, &ctx);
    if let Ok(mut decoded) = rewrite::Decoded::of(&view, &plan, true) {
        let lean = rewrite::request(&mut lean_plan, decoded.document_mut(), &ctx);
        assert_eq!(lean.is_ok(), whole.is_ok(), "lean and whole disagree on refusing");
        // A JSON float is decoded with serde_json's best-effort precision: the whole path may
        // change its last digit, the lean path passes held ones through untouched.
        let floats = document.values().any(has_float);
        if lean.is_ok() && matches!(decoded, rewrite::Decoded::Lean(_)) && !floats {
            let sent: serde_json::Value = serde_json::from_slice(&decoded.to_vec().unwrap()).unwrap();
            assert_eq!(sent, serde_json::Value::Object(document.clone()));
        }
    }
    if whole.is_ok() {
        // The same bytes as an answer: restoring never panics either.
        let mut answer = document;
        let _ = rewrite::restore(&plan, &mut answer);
    }
});

fn has_float(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::Number(n) => n.is_f64(),
        serde_json::Value::Array(items) => items.iter().any(has_float),
        serde_json::Value::Object(map) => map.values().any(has_float),
        _ => false,
    }
}
