//! Any SDK, any language: an application gains failover, optimistic locking, region-prefixed
//! keys and the audit trail by changing only its endpoint. Four clients run the one scenario of
//! `tests/clients/scenario.json` through the sidecar, each with its SDK's defaults (retries on):
//! the Rust SDK (`aws-sdk-dynamodb`, in-process), boto3, the AWS CLI and the JavaScript SDK v3,
//! each pinned (`Cargo.lock`, `tests/clients/python/requirements.txt`,
//! `tests/clients/js/package-lock.json`).
//!
//! Each test starts three regions (DynamoDB Local processes sharing one store: a global table
//! without lag) and the sidecar in front of them, managing `GlobalCatalog` with `key_prefix`,
//! `version_attribute` and `audit`. The client runs the scenario twice: healthy (it creates the
//! table), then again with the home region killed while the client waits at the scenario's pause
//! point, in the middle of a paginated query. Both runs must pass every step, so zero errors;
//! the clients themselves check the prefix stored in a region, the versions and the audit
//! records (read from a region: the sidecar refuses its audit table, which they check too), and
//! this side checks the stored keys and the failover once more from outside.

// A client that cannot do what the scenario says has nothing better to do than fail the test.
#![allow(clippy::expect_used)]

mod support;

#[path = "clients/rust/scenario.rs"]
mod rust_client;

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::Value;
use support::{
    DynamoLocal, ProcessClient, ScenarioEnv, Sidecar, SidecarConfig, TABLE, audit_section,
    create_audit_table, metric, run_process_client, scenario_definition, scenario_steps,
    sdk_client,
};

/// The regions, home first: node `i` of the cluster is `REGIONS[i]`.
const REGIONS: [&str; 3] = ["us-east-1", "us-west-2", "eu-central-1"];
const HOME: &str = REGIONS[0];
/// The region that serves once home is killed (the next in order), and whose own endpoint the
/// clients read to see what is stored.
const FAILOVER: &str = REGIONS[1];

#[derive(Clone, Copy, Debug)]
enum Client {
    Rust,
    Process(ProcessClient),
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_sdk() {
    matrix(Client::Rust).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_boto3() {
    matrix(Client::Process(ProcessClient::Python)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_cli() {
    matrix(Client::Process(ProcessClient::Cli)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn javascript_sdk_v3() {
    matrix(Client::Process(ProcessClient::Js)).await;
}

/// How a run went, for the judge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Run {
    Healthy,
    HomeKilled,
}

async fn matrix(client: Client) {
    let definition = scenario_definition();
    let mut ddb = DynamoLocal::cluster(REGIONS.len()).await;
    // The audit table is the sidecar's infrastructure (terraform/ creates it); the client's
    // table is the client's to create, through the sidecar.
    create_audit_table(&sdk_client(&ddb.endpoint(0))).await;
    let spool = tempfile::tempdir().expect("spool dir");
    let mut config = SidecarConfig::new()
        .table_line("key_prefix = \"{region}#\"")
        .table_line("version_attribute = \"Version\"")
        .table_line("audit = true")
        .section(&audit_section(spool.path(), "images = \"new_and_old\""));
    for (i, name) in REGIONS.iter().enumerate() {
        config = config.region(name, &ddb.endpoint(i));
    }
    let sidecar = Sidecar::start(&config).await;
    let env = |pause_at: Option<&str>| ScenarioEnv {
        endpoint: sidecar.endpoint(),
        region_endpoint: ddb.endpoint(1),
        home_region: HOME.to_owned(),
        run_id: uuid::Uuid::new_v4().simple().to_string(),
        pause_at: pause_at.map(str::to_owned),
    };
    let (healthy_env, killed_env) = (env(None), env(definition["pause_point"].as_str()));

    let healthy = run(client, &definition, &healthy_env, &mut |_| {}).await;
    judge(client, &definition, Run::Healthy, &healthy);

    let mut killed_at = Vec::new();
    let killed = run(client, &definition, &killed_env, &mut |point| {
        ddb.kill(0);
        killed_at.push(point.to_owned());
    })
    .await;
    judge(client, &definition, Run::HomeKilled, &killed);
    assert_eq!(
        killed_at,
        [definition["pause_point"].as_str().expect("pause_point")],
        "{client:?}: the home region was to be killed once, at the pause point"
    );

    assert_stored_prefixed(&ddb.endpoint(1)).await;
    let failovers = metric(
        sidecar.admin_addr(),
        "globalscale_failovers_total",
        &[("from", HOME), ("to", FAILOVER)],
    )
    .await;
    assert!(
        failovers.is_some_and(|n| n >= 1.0),
        "{client:?}: globalscale_failovers_total{{from={HOME},to={FAILOVER}}} is {failovers:?}"
    );
    sidecar.stop().await;
}

/// Runs the scenario with `client`; its step lines (panicking with the client's output when the
/// process failed in a way the lines do not show).
async fn run(
    client: Client,
    definition: &Value,
    env: &ScenarioEnv,
    on_pause: &mut dyn FnMut(&str),
) -> Vec<Value> {
    match client {
        Client::Rust => {
            let rust_env = rust_client::Env {
                endpoint: env.endpoint.clone(),
                region_endpoint: env.region_endpoint.clone(),
                home_region: env.home_region.clone(),
                run_id: env.run_id.clone(),
            };
            let pause_at = env.pause_at.clone();
            let mut pause = |point: &str| {
                if pause_at.as_deref() == Some(point) {
                    on_pause(point);
                }
            };
            let steps = rust_client::run(definition, &rust_env, &mut pause).await;
            for step in &steps {
                println!("{step}");
            }
            steps
        }
        Client::Process(process) => {
            let output = run_process_client(process, env, on_pause).await;
            println!("{}", output.shown());
            let status = output.status.expect("exit status");
            let failed = output.steps.iter().any(|s| s["ok"] != true);
            assert!(
                status.success() || failed,
                "{process:?} exited with {status} and no failed step\n{}",
                output.shown()
            );
            output.steps
        }
    }
}

/// Every step of the definition passed, in order; in a healthy run no SDK retried (a retry would
/// mean the sidecar answered with something an SDK takes for a fault). The audit trail names the
/// region that served each write: home, until it was killed.
fn judge(client: Client, definition: &Value, run: Run, steps: &[Value]) {
    let shown = || {
        steps
            .iter()
            .map(Value::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    };
    for step in steps {
        assert_eq!(
            step["ok"],
            true,
            "{client:?}, {run:?} run: step failed: {step}\n{}",
            shown()
        );
    }
    let names: Vec<&str> = steps.iter().filter_map(|s| s["step"].as_str()).collect();
    let mut expected = scenario_steps(definition);
    expected.push("done".to_owned());
    assert_eq!(
        names,
        expected,
        "{client:?}, {run:?} run: steps\n{}",
        shown()
    );

    let step = |name: &str| {
        steps
            .iter()
            .find(|s| s["step"] == name)
            .unwrap_or_else(|| panic!("no step {name}"))
    };
    assert_eq!(
        step("create_table_if_missing")["created"],
        run == Run::Healthy,
        "{client:?}, {run:?} run: the first run creates the table, the second finds it"
    );
    let regions = &step("audit_history")["regions"];
    let expected_regions = match run {
        Run::Healthy => [HOME, HOME, HOME],
        // Put and update before the pause point, the delete after home was killed.
        Run::HomeKilled => [HOME, HOME, FAILOVER],
    };
    assert_eq!(
        regions,
        &serde_json::json!(expected_regions),
        "{client:?}, {run:?} run: regions of the item's audit records"
    );
    // The audit trail is the sidecar's alone: read from a region, refused through the sidecar.
    assert_eq!(
        step("audit_refused")["error"],
        "AccessDeniedException",
        "{client:?}, {run:?} run: a Query of the audit table through the sidecar"
    );
    if run == Run::Healthy {
        for step in steps {
            // The CLI says nothing of its retries (null).
            if let Some(retries) = step["retries"].as_u64() {
                assert_eq!(retries, 0, "{client:?}: the SDK retried: {step}");
            }
        }
    }
    let retries: u64 = steps.iter().filter_map(|s| s["retries"].as_u64()).sum();
    println!("{client:?}, {run:?} run: every step passed; SDK retries: {retries}");
}

/// Read straight from a live region, bypassing the sidecar: every item the clients left is
/// stored under the home region's prefix, and carries a version.
async fn assert_stored_prefixed(region_endpoint: &str) {
    let direct = sdk_client(region_endpoint);
    let mut start = None;
    let mut count = 0;
    loop {
        let page = direct
            .scan()
            .table_name(TABLE)
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await
            .expect("Scan of the region");
        for item in page.items() {
            let Some(AttributeValue::S(id)) = item.get("ItemID") else {
                panic!("ItemID {item:?}");
            };
            assert!(
                id.starts_with(&format!("{HOME}#")),
                "stored unprefixed: {id}"
            );
            assert!(
                matches!(item.get("Version"), Some(AttributeValue::N(_))),
                "stored without a Version: {item:?}"
            );
            count += 1;
        }
        start = page.last_evaluated_key;
        if start.is_none() {
            break;
        }
    }
    assert!(count > 0, "the clients left no item");
}
