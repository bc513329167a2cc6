//! The hot pieces of the request path one at a time, each beside what it replaced where it
//! replaced something: SigV4 of an outbound request (the direct signer with its cached key
//! against `aws-sigv4`'s general signer), the restore of a 1.4 KB GetItem answer on a
//! prefixed, versioned table (spliced raw against decoded and encoded), the answer's crc32,
//! and expression parsing.
//!
//! `cargo bench --bench hot_path`. The target for SigV4 is at most 4 µs per request.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::hint::black_box;
use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use globalscale::config::Config;
use globalscale::plan::Plan;
use globalscale::rewrite;
use globalscale::snapshot::policies;
use globalscale::upstream::sign::{Signer, sign_request};
use globalscale::wire::{self, Operation, RequestView};
use http::Request;
use http_body_util::Full;
use serde_json::{Value, json};

const CONFIG: &str = r#"
[[regions]]
name = "us-east-1"
endpoint = "http://127.0.0.1:8001"

[[tables]]
name = "Bench"
partition_key = "ItemID"
sort_key = "Category"
key_prefix = "{region}#"
version_attribute = "Version"
"#;

/// The outbound GetItem the attempt loop signs.
fn outbound(body: &Bytes) -> Request<Full<Bytes>> {
    Request::post("http://127.0.0.1:8001/")
        .header("host", "127.0.0.1:8001")
        .header("x-amz-target", "DynamoDB_20120810.GetItem")
        .header("content-type", "application/x-amz-json-1.0")
        .header("user-agent", "aws-sdk-rust/1.3 os/linux lang/rust/1.95")
        .body(Full::new(body.clone()))
        .unwrap()
}

/// A GetItem answer of about 1.4 KB as a region stores the item: prefixed key, version,
/// write id.
fn get_item_answer() -> Vec<u8> {
    let mut item = serde_json::Map::new();
    item.insert("ItemID".into(), json!({"S": "us-east-1#item-1"}));
    item.insert("Category".into(), json!({"S": "c"}));
    item.insert("Version".into(), json!({"N": "3"}));
    item.insert(
        globalscale::config::WRITE_ID_ATTRIBUTE.into(),
        json!({"S": "0b6f3a3e-7d4e-4c41-9d1e-1f2a3b4c5d6e"}),
    );
    for i in 0..30 {
        item.insert(
            format!("Attribute{i:02}"),
            json!({"S": format!("value-{i:02}-{}", "x".repeat(20))}),
        );
    }
    serde_json::to_vec(&json!({ "Item": item })).unwrap()
}

fn signing(c: &mut Criterion) {
    let body = Bytes::from_static(
        br#"{"TableName":"Bench","Key":{"ItemID":{"S":"us-east-1#item-1"},"Category":{"S":"c"}}}"#,
    );
    let creds = Credentials::from_keys("AKIDBENCH", "bench-secret", None);
    let signer = Signer::new(SharedCredentialsProvider::new(creds.clone()));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    c.bench_function("sigv4/direct, cached key (the sidecar's)", |b| {
        b.iter(|| {
            let mut request = outbound(&body);
            runtime
                .block_on(signer.sign(&mut request, &body, "us-east-1"))
                .unwrap();
            black_box(request)
        });
    });
    c.bench_function("sigv4/aws-sigv4 general signer (before)", |b| {
        b.iter(|| {
            let mut request = outbound(&body);
            sign_request(&mut request, &body, &creds, "us-east-1", SystemTime::now()).unwrap();
            black_box(request)
        });
    });
    c.bench_function("sigv4/building the unsigned request alone", |b| {
        b.iter(|| black_box(outbound(&body)));
    });
}

fn restore(c: &mut Criterion) {
    let config = Config::from_toml_str(CONFIG).unwrap();
    let policies = policies(&config, None);
    let request =
        json!({"TableName": "Bench", "Key": {"ItemID": {"S": "item-1"}, "Category": {"S": "c"}}})
            .to_string();
    let view = RequestView::parse(Operation::GetItem, request.as_bytes()).unwrap();
    let plan = Plan::build(&view, &policies).unwrap();
    let answer = get_item_answer();
    c.bench_function("restore/GetItem 1.4 KB spliced raw (the sidecar's)", |b| {
        b.iter(|| {
            black_box(
                rewrite::raw_answer::restore(&plan, &answer)
                    .unwrap()
                    .unwrap(),
            )
        });
    });
    c.bench_function("restore/GetItem 1.4 KB decoded and encoded (before)", |b| {
        b.iter(|| {
            let Value::Object(mut body) = serde_json::from_slice(&answer).unwrap() else {
                unreachable!()
            };
            rewrite::restore(&plan, &mut body).unwrap();
            black_box(serde_json::to_vec(&body).unwrap())
        });
    });
    c.bench_function("crc32/1.4 KB answer", |b| {
        b.iter(|| black_box(wire::crc32(black_box(&answer))));
    });
}

fn expressions(c: &mut Criterion) {
    let condition =
        "attribute_not_exists(#v) OR (#v = :v AND begins_with(#k, :p)) AND size(#l) < :n";
    c.bench_function("expr/condition of 4 clauses", |b| {
        b.iter(|| black_box(globalscale::expr::parse_condition(black_box(condition)).unwrap()));
    });
    let update = "SET #a = :a, #b = if_not_exists(#b, :zero) + :one REMOVE #c ADD #d :s";
    c.bench_function("expr/update of 4 actions", |b| {
        b.iter(|| black_box(globalscale::expr::parse_update(black_box(update)).unwrap()));
    });
}

criterion_group!(benches, signing, restore, expressions);
criterion_main!(benches);
