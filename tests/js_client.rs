//! The JavaScript SDK v3 (`@aws-sdk/client-dynamodb`, pinned in tests/clients/js) through the
//! sidecar, with the SDK's default retries and checksums: the data-plane calls a Node service
//! makes, their pagination, batches, transactions and typed errors, against DynamoDB Local.
//!
//! The scenario itself is `tests/clients/js/scenario.mjs`; this side starts the region and the
//! sidecar, creates the table and judges the step lines. Needs `node` and the install that
//! `scripts/test` makes; without them the test fails and says so.

mod support;

use serde_json::Value;
use support::{
    DynamoLocal, Sidecar, SidecarConfig, TABLE, create_global_catalog, passed_steps,
    run_js_scenario, sdk_client,
};

/// Every step of scenario.mjs, in order: a step dropped from the script fails here.
const STEPS: &[&str] = &[
    "put",
    "get",
    "paginated_query",
    "conditional_put_fails",
    "batch_write_get",
    "transact_write_get",
    "transact_write_cancelled",
    "delete_then_get",
    "done",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_sdk_v3_scenario_through_sidecar() {
    let ddb = DynamoLocal::single().await;
    let config = SidecarConfig::new().region("us-east-1", &ddb.endpoint(0));
    let sidecar = Sidecar::start(&config).await;
    create_global_catalog(&sdk_client(&sidecar.endpoint())).await;
    run_and_judge(&sidecar).await;
    sidecar.stop().await;
}

/// The same scenario on a table with region-prefixed keys: the SDK sees plain keys
/// everywhere (its own checks in scenario.mjs), and every item it left is stored prefixed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_sdk_v3_scenario_on_a_prefixed_table() {
    let ddb = DynamoLocal::single().await;
    let direct = sdk_client(&ddb.endpoint(0));
    create_global_catalog(&direct).await;
    let config = SidecarConfig::new()
        .region("us-east-1", &ddb.endpoint(0))
        .table_line("key_prefix = \"{region}#\"");
    let sidecar = Sidecar::start(&config).await;
    run_and_judge(&sidecar).await;
    let stored = direct
        .scan()
        .table_name(TABLE)
        .send()
        .await
        .expect("Scan on DynamoDB Local");
    assert!(stored.count > 0, "the scenario left no item");
    for item in stored.items() {
        let Some(aws_sdk_dynamodb::types::AttributeValue::S(id)) = item.get("ItemID") else {
            panic!("ItemID {item:?}");
        };
        assert!(id.starts_with("us-east-1#"), "stored unprefixed: {id}");
    }
    sidecar.stop().await;
}

async fn run_and_judge(sidecar: &Sidecar) {
    let output = run_js_scenario(&sidecar.endpoint(), TABLE, &[]).await;
    println!("{}", String::from_utf8_lossy(&output.stdout));
    eprintln!("{}", String::from_utf8_lossy(&output.stderr));
    let steps = passed_steps(&output);

    let names: Vec<&str> = steps.iter().filter_map(|s| s["step"].as_str()).collect();
    assert_eq!(names, STEPS);
    // One healthy region: an SDK retry would mean the sidecar answered with something the SDK
    // took for throttling or a fault.
    for step in &steps[..steps.len() - 1] {
        assert_eq!(step["retries"], Value::from(0), "the SDK retried: {step}");
    }
}
