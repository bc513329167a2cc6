//! The request path's own CPU cost, without the network: view + plan + rewrite + serialize
//! for GetItem, PutItem, Scan and Query bodies of about 1.4 KB, on a table without a policy
//! (forwarded as the bytes it came in) and on a prefixed table (decoded, rewritten and
//! serialized again), beside what the path before the lazy view paid for every request: a
//! whole `serde_json::Value` document.
//!
//! `cargo bench --bench request_path`

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::hint::black_box;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use globalscale::config::Config;
use globalscale::plan::Plan;
use globalscale::proxy::stages::rewrite_request;
use globalscale::snapshot::policies;
use globalscale::wire::{Operation, RequestView};
use serde_json::json;

const CONFIG: &str = r#"
[[regions]]
name = "us-east-1"
endpoint = "http://127.0.0.1:8001"

[[tables]]
name = "Plain"
partition_key = "ItemID"
sort_key = "Category"

[[tables]]
name = "Prefixed"
partition_key = "ItemID"
sort_key = "Category"
key_prefix = "{region}#"
"#;

/// Attribute names and values that bring a body to about 1.4 KB, as real requests carry.
fn padding(n: usize) -> serde_json::Map<String, serde_json::Value> {
    (0..n)
        .map(|i| {
            (
                format!("Attribute{i:02}"),
                json!({"S": format!("value-{i:02}-{}", "x".repeat(20))}),
            )
        })
        .collect()
}

fn bodies(table: &str) -> Vec<(&'static str, Operation, Vec<u8>)> {
    let key = json!({"ItemID": {"S": "item-000123"}, "Category": {"S": "books"}});
    let names: serde_json::Map<_, _> = (0..40)
        .map(|i| (format!("#a{i:02}"), json!(format!("Attribute{i:02}"))))
        .collect();
    let projection = (0..40)
        .map(|i| format!("#a{i:02}"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut item = padding(30);
    item.insert("ItemID".into(), json!({"S": "item-000123"}));
    item.insert("Category".into(), json!({"S": "books"}));
    let mut values = padding(20)
        .into_iter()
        .map(|(k, v)| (format!(":{k}"), v))
        .collect::<serde_json::Map<_, _>>();
    // A Scan on a prefixed table gets the namespace filter merged into the client's.
    let scan_values = values.clone();
    values.insert(":id".into(), json!({"S": "item-000123"}));
    let filter = (0..20)
        .map(|i| format!("Attribute{i:02} <> :Attribute{i:02}"))
        .collect::<Vec<_>>()
        .join(" AND ");
    vec![
        (
            "GetItem",
            Operation::GetItem,
            json!({"TableName": table, "Key": key, "ProjectionExpression": projection,
                   "ExpressionAttributeNames": names, "ConsistentRead": true})
            .to_string()
            .into_bytes(),
        ),
        (
            "PutItem",
            Operation::PutItem,
            json!({"TableName": table, "Item": item, "ReturnValues": "NONE"})
                .to_string()
                .into_bytes(),
        ),
        (
            "Scan",
            Operation::Scan,
            json!({"TableName": table, "FilterExpression": filter,
                   "ExpressionAttributeValues": scan_values, "Limit": 25})
            .to_string()
            .into_bytes(),
        ),
        (
            "Query",
            Operation::Query,
            json!({"TableName": table, "KeyConditionExpression": "ItemID = :id",
                   "FilterExpression": filter, "ExpressionAttributeValues": values, "Limit": 25})
            .to_string()
            .into_bytes(),
        ),
    ]
}

fn request_path(c: &mut Criterion) {
    let config = Config::from_toml_str(CONFIG).unwrap();
    let policies = policies(&config, None);
    for table in ["Plain", "Prefixed"] {
        for (name, op, body) in bodies(table) {
            let bytes = Bytes::from(body);
            println!("{name} on {table}: {} bytes", bytes.len());
            c.bench_function(&format!("{name}/{table}"), |b| {
                b.iter(|| {
                    let view = RequestView::parse(op.clone(), &bytes).unwrap();
                    let mut plan = Plan::build(&view, &policies).unwrap();
                    let outgoing = rewrite_request(&view, &mut plan, bytes.clone(), None).unwrap();
                    black_box(outgoing.body.len())
                });
            });
            if table == "Plain" {
                c.bench_function(&format!("{name}/whole document (before the view)"), |b| {
                    b.iter(|| {
                        let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
                        black_box(value.as_object().map(serde_json::Map::len))
                    });
                });
            }
        }
    }
}

criterion_group!(benches, request_path);
criterion_main!(benches);
