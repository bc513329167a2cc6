//! Any bytes as a region's answer to a GetItem, PutItem, Query or Scan on a prefixed and
//! versioned table: the restore that splices the raw bytes either declines (the decoding path
//! takes the answer) or agrees with the decoding path, as JSON and as an error, wherever the
//! decoding path can read the answer at all; and it never panics.
#![no_main]

use std::sync::OnceLock;

use globalscale::config::Config;
use globalscale::plan::Plan;
use globalscale::rewrite;
use globalscale::snapshot::policies;
use globalscale::wire::{Operation, RequestView};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const CONFIG: &str = r#"
[[regions]]
name = "us-east-1"
endpoint = "http://127.0.0.1:8001"

[[tables]]
name = "Ledger"
partition_key = "k"
key_prefix = "{region}#"
version_attribute = "Version"
"#;

fn plans() -> &'static Vec<Plan> {
    static PLANS: OnceLock<Vec<Plan>> = OnceLock::new();
    PLANS.get_or_init(|| {
        let config = Config::from_toml_str(CONFIG).expect("config");
        let policies = policies(&config, None);
        let body = br#"{"TableName":"Ledger","Key":{"k":{"S":"a"}},"Item":{"k":{"S":"a"}},"KeyConditionExpression":"k = :k","ExpressionAttributeValues":{":k":{"S":"a"}}}"#;
        ["GetItem", "PutItem", "Query", "Scan"]
            .into_iter()
            .filter_map(|name| {
                let view = RequestView::parse(Operation::from_name(name), body).ok()?;
                Plan::build(&view, &policies).ok()
            })
            .collect()
    })
}

fuzz_target!(|data: &[u8]| {
    for plan in plans() {
        let Some(raw) = rewrite::raw_answer::restore(plan, data) else {
            continue;
        };
        // JSON the decoding path cannot hold (a number past f64, say) it passes through as it
        // came; there is nothing to compare the raw path with.
        let Ok(Value::Object(mut decoded)) = serde_json::from_slice::<Value>(data) else {
            continue;
        };
        let decoded = rewrite::restore(plan, &mut decoded).map(|()| Value::Object(decoded));
        match (raw, decoded) {
            (Ok(bytes), Ok(expected)) => {
                let got: Value = serde_json::from_slice(&bytes).expect("the raw path wrote JSON");
                assert_eq!(got, expected);
            }
            (Err(_), Err(_)) => {}
            (raw, decoded) => panic!("raw {:?} but decoded {:?}", raw.map(|_| ()), decoded.map(|_| ())),
        }
    }
});
