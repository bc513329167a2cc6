//! Any bytes as the body of any operation: parsed or refused, never a panic.
#![no_main]

use globalscale::wire::{Operation, parse};
use libfuzzer_sys::fuzz_target;

const OPERATIONS: [&str; 8] = [
    "GetItem",
    "PutItem",
    "BatchGetItem",
    "BatchWriteItem",
    "TransactGetItems",
    "TransactWriteItems",
    "Query",
    "Frobnicate",
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let operation = Operation::from_name(OPERATIONS[usize::from(selector) % OPERATIONS.len()]);
    if let Ok(mut request) = parse(operation, body) {
        let ctx = globalscale::rewrite::RequestCtx {
            idempotency_token: "fuzz".into(),
        };
        globalscale::rewrite::apply(&mut request, &ctx);
    }
});
