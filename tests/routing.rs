//! Multi-region routing with faults injected for real, under continuous SDK load: a killed
//! DynamoDB Local process, a black hole, 500s and throttling, a slow region under the
//! `latency` policy, fail back, and a config reload on SIGHUP.
//!
//! Timings are printed (for the issue's targets), never asserted.

#![allow(clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use support::{
    DynamoLocal, Load, Mode, RawRequest, RegionFixture, Sidecar, SidecarConfig, SidecarProcess,
    TABLE, create_global_catalog, metric, sdk_client, served_by,
};

/// Fast health settings so faults are noticed within a test's patience, probes timing out
/// after `probe_timeout_ms`.
///
/// Routing by health alone: hedges and latency demotion (tests/gray_failures.rs) would let a
/// read that a loaded machine slows down be answered by another region, which is right for
/// the application and wrong for these assertions about where requests are routed.
fn config_with_probe_timeout(probe_timeout_ms: u64) -> SidecarConfig {
    SidecarConfig::new().timeouts(500, 2_000, 10_000).section(&format!(
        "[routing]\nprobe_interval_ms = 200\nprobe_timeout_ms = {probe_timeout_ms}\neject_after_failures = 3\nreadmit_after_successes = 2\nfailback_ramp_ms = 1000\n\
         hedge_reads = false\ndemote_latency_margin_ms = 60000"
    ))
}

fn config() -> SidecarConfig {
    config_with_probe_timeout(600)
}

/// Polls until `served_by` answers `region`; returns how long that took.
async fn wait_served_by(
    addr: std::net::SocketAddr,
    admin: std::net::SocketAddr,
    region: &str,
) -> Duration {
    let started = Instant::now();
    loop {
        if served_by(addr).await == region {
            return started.elapsed();
        }
        if started.elapsed() > Duration::from_mins(1) {
            let metrics = support::get(admin, "/metrics").await.text();
            let health: Vec<&str> = metrics
                .lines()
                .filter(|l| l.contains("region_healthy") || l.contains("probes_total"))
                .collect();
            panic!("{region} never served; {health:#?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wait_metric(admin: std::net::SocketAddr, name: &str, labels: &[(&str, &str)], value: f64) {
    let started = Instant::now();
    while metric(admin, name, labels).await != Some(value) {
        assert!(
            started.elapsed() < Duration::from_mins(1),
            "{name}{labels:?} never {value}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the sidecar has learned the table's key schema with its one DescribeTable at
/// start, so that call does not land among the faults a test injects next.
async fn wait_schema_learned(admin: std::net::SocketAddr) {
    wait_metric(
        admin,
        "globalscale_upstream_requests_total",
        &[
            ("region", "us-east-1"),
            ("operation", "DescribeTable"),
            ("outcome", "success"),
        ],
        1.0,
    )
    .await;
}

/// Waits until `globalscale_region_healthy{region}` reads 0.
async fn wait_ejected(admin: std::net::SocketAddr, region: &str) {
    wait_metric(
        admin,
        "globalscale_region_healthy",
        &[("region", region)],
        0.0,
    )
    .await;
}

/// The `reason` labels of every `globalscale_region_ejections_total` series for `region`,
/// with their counts.
async fn ejections(admin: std::net::SocketAddr, region: &str) -> Vec<String> {
    let text = support::get(admin, "/metrics").await.text();
    let needle = format!("region=\"{region}\"");
    text.lines()
        .filter(|l| l.starts_with("globalscale_region_ejections_total{") && l.contains(&needle))
        // Every reason is exported at zero from the start; only the ones that happened count.
        .filter(|l| !l.ends_with(" 0"))
        .map(str::to_owned)
        .collect()
}

/// Probes must neither disturb live traffic nor be disturbed by it: on DynamoDB Local's shared
/// store a probe that reads a table takes a lock that fails concurrent writes, and fails
/// itself, which ejected healthy regions. (The store is in WAL mode, so reads in one process
/// no longer fail on another's writes: this load sees no upstream 500 at all, against 20 to 90
/// in the rollback-journal mode, one of which once outlasted all six attempts on CI. Processes
/// writing at once can still collide, so ejections are printed, not asserted.)
///
/// The probes get 5 s instead of the other tests' 600 ms: what is checked is that no probe
/// is refused or answered with an error, and a timeout of 600 ms also caught the JVMs of
/// the tests running beside this one stalling a region on a clean 2-core CI machine (once
/// in a run, on a probe of a region without traffic).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_of_a_healthy_cluster_under_load_never_fail_and_traffic_stays_home() {
    let ddb = DynamoLocal::cluster(3).await;
    let regions = ["us-east-1", "us-west-2", "eu-central-1"];
    let mut cfg = config_with_probe_timeout(5_000);
    for (i, name) in regions.iter().enumerate() {
        cfg = cfg.region(name, &ddb.endpoint(i));
    }
    let sidecar = Sidecar::start(&cfg).await;
    // Set-up, straight to the store: under a loaded CI a CreateTable can outlast the
    // short attempt timeouts these tests route with.
    create_global_catalog(&sdk_client(&ddb.endpoint(0))).await;
    let (addr, admin) = (sidecar.listen_addr(), sidecar.admin_addr());

    // Several probe rounds under steady reads and writes.
    let load = Load::start(&sidecar.endpoint(), 3);
    load.wait_for(1_500).await;
    let report = load.stop().await;
    report.assert_no_errors("");
    let mut ejected = Vec::new();
    for region in regions {
        let probes_ok = metric(
            admin,
            "globalscale_probes_total",
            &[("region", region), ("outcome", "success")],
        )
        .await
        .unwrap_or(0.0);
        // Home carries the traffic, whose answers stand in for its probes.
        if region != "us-east-1" {
            assert!(probes_ok >= 1.0, "{region} was never probed");
        }
        for outcome in ["server_error", "throttled", "timeout", "connect_error"] {
            // Exported at zero from the start.
            assert_eq!(
                metric(
                    admin,
                    "globalscale_probes_total",
                    &[("region", region), ("outcome", outcome)]
                )
                .await,
                Some(0.0),
                "a probe of {region} failed: {outcome}"
            );
        }
        ejected.extend(ejections(admin, region).await);
    }
    wait_served_by(addr, admin, "us-east-1").await;
    let server_errors = support::metric_sum(
        &support::get(admin, "/metrics").await.text(),
        "globalscale_upstream_requests_total",
        &[("outcome", "server_error")],
    )
    .unwrap_or(0.0);
    println!(
        "steady load: {} requests, no probe failed; upstream 500s: {server_errors}; ejections: {ejected:?}",
        report.ok
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_region_costs_no_request_and_traffic_comes_home() {
    let mut ddb = DynamoLocal::cluster(2).await;
    let sidecar = Sidecar::start(
        &config()
            .region("us-east-1", &ddb.endpoint(0))
            .region("us-west-2", &ddb.endpoint(1)),
    )
    .await;
    // Set-up, straight to the store: under a loaded CI a CreateTable can outlast the
    // short attempt timeouts these tests route with.
    create_global_catalog(&sdk_client(&ddb.endpoint(0))).await;
    let (addr, admin) = (sidecar.listen_addr(), sidecar.admin_addr());
    assert_eq!(served_by(addr).await, "us-east-1", "traffic starts at home");

    let load = Load::start(&sidecar.endpoint(), 2);
    load.wait_for(200).await;
    ddb.kill(0);
    load.wait_for(300).await;
    wait_ejected(admin, "us-east-1").await;
    assert_eq!(served_by(addr).await, "us-west-2");
    assert!(
        !ejections(admin, "us-east-1").await.is_empty(),
        "the ejection is counted"
    );
    assert!(
        metric(
            admin,
            "globalscale_failovers_total",
            &[("from", "us-east-1"), ("to", "us-west-2")]
        )
        .await
        .unwrap_or(0.0)
            >= 1.0,
        "the failover is counted"
    );

    // Reviving a region under write load fails in DynamoDB Local itself (its start-up meets the
    // other process's lock); the fail back below runs under load again.
    let paused = load.pause().await;
    ddb.restart(0).await;
    drop(paused);
    let back = wait_served_by(addr, admin, "us-east-1").await;
    println!("fail back: home served again {back:?} after its process answered");
    // Reads come back over the failback ramp; then all of them are home.
    wait_metric(
        admin,
        "globalscale_region_read_share",
        &[("region", "us-east-1")],
        1.0,
    )
    .await;
    load.wait_for(200).await;
    let report = load.stop().await;
    report.assert_no_errors("");
    // No flapping: once home, traffic stays home.
    for _ in 0..20 {
        assert_eq!(served_by(addr).await, "us-east-1");
    }
    println!("killed region: {} requests, 0 errors", report.ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_black_hole_costs_one_attempt_timeout_and_is_ejected() {
    let ddb = DynamoLocal::single().await;
    let home = RegionFixture::start(&ddb.endpoint(0)).await;
    let sidecar = Sidecar::start(
        &config()
            .timeouts(500, 500, 10_000)
            .region("us-east-1", &home.endpoint())
            .region("us-west-2", &ddb.endpoint(0)),
    )
    .await;
    // Set-up, straight to the store: under a loaded CI a CreateTable can outlast the
    // short attempt timeouts these tests route with.
    create_global_catalog(&sdk_client(&ddb.endpoint(0))).await;
    let (addr, admin) = (sidecar.listen_addr(), sidecar.admin_addr());

    let load = Load::start(&sidecar.endpoint(), 1);
    load.wait_for(50).await;
    home.set_mode(Mode::BlackHole).await;
    let started = Instant::now();
    wait_ejected(admin, "us-east-1").await;
    println!(
        "black hole: home ejected {:?} after it stopped answering",
        started.elapsed()
    );
    load.wait_for(100).await;
    let mut timeouts = 0.0;
    for operation in ["GetItem", "PutItem"] {
        let labels = [
            ("region", "us-east-1"),
            ("operation", operation),
            ("outcome", "timeout"),
        ];
        timeouts += metric(admin, "globalscale_upstream_requests_total", &labels)
            .await
            .unwrap_or(0.0);
    }
    assert!(
        timeouts >= 1.0,
        "live requests met the black hole and timed out"
    );
    assert_eq!(served_by(addr).await, "us-west-2");

    home.set_mode(Mode::Forward).await;
    wait_served_by(addr, admin, "us-east-1").await;
    let report = load.stop().await;
    report.assert_no_errors("");
}

/// When every region fails, retries stop multiplying the load once the shared retry budget
/// is spent: each request then gets one attempt and the region's own retryable answer. Answers
/// refill the budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_everywhere_spends_the_retry_budget_instead_of_multiplying_load() {
    let ddb = DynamoLocal::single().await;
    let home = RegionFixture::start(&ddb.endpoint(0)).await;
    let second = RegionFixture::start(&ddb.endpoint(0)).await;
    create_global_catalog(&sdk_client(&ddb.endpoint(0))).await;
    // 50 tokens: ten retries after error answers (5 each); max_attempts 6 is 5 retries.
    let sidecar = Sidecar::start(
        &SidecarConfig::new()
            .timeouts(500, 500, 10_000)
            .section("[routing]\nprobe_interval_ms = 600000\nmax_attempts = 6\nretry_budget = 50")
            .region("us-east-1", &home.endpoint())
            .region("us-west-2", &second.endpoint()),
    )
    .await;
    let admin = sidecar.admin_addr();
    wait_schema_learned(admin).await;
    let tokens = || metric(admin, "globalscale_retry_budget_tokens", &[]);
    assert_eq!(tokens().await, Some(50.0));

    // Each region fails its own way: one answer repeated everywhere would be a poison
    // request, ended after two attempts whatever the budget (tests/transparency.rs).
    home.set_mode(Mode::Status(500)).await;
    second.set_mode(Mode::Status(503)).await;
    let get = format!(
        r#"{{"TableName":"{TABLE}","Key":{{"ItemID":{{"S":"b"}},"Category":{{"S":"x"}}}}}}"#
    );
    let requests = 30;
    for _ in 0..requests {
        let response = RawRequest::new("GetItem", get.clone())
            .send(sidecar.listen_addr())
            .await;
        assert!([500, 503].contains(&response.status), "{}", response.text());
    }
    let mut attempts = 0.0;
    for region in ["us-east-1", "us-west-2"] {
        let labels = [
            ("region", region),
            ("operation", "GetItem"),
            ("outcome", "server_error"),
        ];
        attempts += metric(admin, "globalscale_upstream_requests_total", &labels)
            .await
            .unwrap_or(0.0);
    }
    // Two requests take five retries each; the other 28 are refused their first retry.
    assert!(
        (attempts - f64::from(requests + 10)).abs() < 0.5,
        "upstream attempts: {attempts}"
    );
    assert_eq!(tokens().await, Some(0.0));
    assert_eq!(
        metric(admin, "globalscale_retry_budget_exhausted_total", &[]).await,
        Some(f64::from(requests - 2))
    );

    home.set_mode(Mode::Forward).await;
    second.set_mode(Mode::Forward).await;
    for _ in 0..7 {
        let response = RawRequest::new("GetItem", get.clone())
            .send(sidecar.listen_addr())
            .await;
        assert_eq!(response.status, 200, "{}", response.text());
    }
    assert_eq!(
        tokens().await,
        Some(7.0),
        "each answer without a retry refills one token"
    );
}

/// A sidecar in front of `home` and `second` that keeps sending to the home region even while
/// it fails (probes are rare and ejection needs many failures), so every request meets it.
/// Its reads are not hedged: what reaches `second` here is what the retry rules moved there
/// (hedging has its own tests, `tests/gray_failures.rs`).
async fn stubborn_sidecar(home: &RegionFixture, second: &RegionFixture) -> Sidecar {
    Sidecar::start(
        &SidecarConfig::new()
            // 2 s per attempt: a hanging region costs that much, and a loaded CI machine
            // never makes a live region look like one (it did at 500 ms).
            .timeouts(500, 2_000, 20_000)
            .section("[routing]\neject_after_failures = 100\nprobe_interval_ms = 600000\nhedge_reads = false")
            .region("us-east-1", &home.endpoint())
            .region("us-west-2", &second.endpoint()),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_and_throttling_move_safe_requests_and_never_double_a_write() {
    let ddb = DynamoLocal::single().await;
    let home = RegionFixture::start(&ddb.endpoint(0)).await;
    let second = RegionFixture::start(&ddb.endpoint(0)).await;
    create_global_catalog(&sdk_client(&ddb.endpoint(0))).await;

    for (mode, outcome) in [
        (Mode::Status(500), "server_error"),
        (Mode::Throttle, "throttled"),
    ] {
        let sidecar = stubborn_sidecar(&home, &second).await;
        home.set_mode(mode.clone()).await;
        let load = Load::start(&sidecar.endpoint(), 1);
        load.wait_for(100).await;
        // Error answers that last eject the region (after 1 s of them).
        wait_ejected(sidecar.admin_addr(), "us-east-1").await;
        load.wait_for(50).await;
        let report = load.stop().await;
        report.assert_no_errors(&format!("{mode:?}"));
        let labels = [
            ("region", "us-east-1"),
            ("operation", "PutItem"),
            ("outcome", outcome),
        ];
        let moved = metric(
            sidecar.admin_addr(),
            "globalscale_upstream_requests_total",
            &labels,
        )
        .await;
        assert!(
            moved.unwrap_or(0.0) >= 1.0,
            "{outcome} attempts are counted"
        );
        assert_eq!(served_by(sidecar.listen_addr()).await, "us-west-2");
    }

    // A counter increment that may have been applied is not sent again: the client gets the
    // region's retryable 500 and the second region never sees the request.
    let sidecar = stubborn_sidecar(&home, &second).await;
    home.set_mode(Mode::Status(500)).await;
    second.take_recorded();
    let add = format!(
        r#"{{"TableName":"{TABLE}","Key":{{"ItemID":{{"S":"c"}},"Category":{{"S":"x"}}}},"UpdateExpression":"ADD n :one","ExpressionAttributeValues":{{":one":{{"N":"1"}}}}}}"#
    );
    let response = RawRequest::new("UpdateItem", add)
        .send(sidecar.listen_addr())
        .await;
    assert_eq!(response.status, 500, "{}", response.text());
    assert!(
        second.recorded_op("UpdateItem").is_empty(),
        "ADD was resent"
    );

    // A conditional write the sidecar cannot verify (it must return the old item) whose first
    // attempt got no answer is not resent either: the client gets a retryable error, never a
    // false ConditionalCheckFailedException.
    home.set_mode(Mode::BlackHole).await;
    let conditional = format!(
        r#"{{"TableName":"{TABLE}","Item":{{"ItemID":{{"S":"cond"}},"Category":{{"S":"x"}}}},"ConditionExpression":"attribute_not_exists(ItemID)","ReturnValues":"ALL_OLD"}}"#
    );
    let response = RawRequest::new("PutItem", conditional)
        .send(sidecar.listen_addr())
        .await;
    assert_eq!(response.status, 500, "{}", response.text());
    assert!(
        response.error_type().ends_with("InternalServerError"),
        "{}",
        response.text()
    );
    assert!(
        second.recorded_op("PutItem").is_empty(),
        "the conditional put was resent"
    );

    // Client errors come back at once and are never retried elsewhere.
    home.set_mode(Mode::Forward).await;
    second.take_recorded();
    let missing = r#"{"TableName":"NoSuchTable","Key":{"k":{"S":"1"}}}"#;
    let response = RawRequest::new("GetItem", missing)
        .send(sidecar.listen_addr())
        .await;
    assert_eq!(response.status, 400);
    assert!(response.error_type().ends_with("ResourceNotFoundException"));
    assert!(
        second.recorded().is_empty(),
        "a client error moved to another region"
    );
}

/// A conditional put whose first attempt was applied but never answered is resent, and the
/// sidecar recognises its own item in the condition failure: the client gets the success
/// its write earned. A real condition failure still comes back as one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conditional_put_meeting_its_own_first_attempt_is_a_success() {
    let ddb = DynamoLocal::single().await;
    let home = RegionFixture::start(&ddb.endpoint(0)).await;
    let second = RegionFixture::start(&ddb.endpoint(0)).await;
    let client = sdk_client(&ddb.endpoint(0));
    create_global_catalog(&client).await;
    let sidecar = stubborn_sidecar(&home, &second).await;
    home.set_mode(Mode::ApplyThenHang).await;

    let create = |id: &str, name: &str| {
        format!(
            r#"{{"TableName":"{TABLE}","Item":{{"ItemID":{{"S":"{id}"}},"Category":{{"S":"x"}},"Name":{{"S":"{name}"}},"Price":{{"N":"1.50"}}}},"ConditionExpression":"attribute_not_exists(ItemID)"}}"#
        )
    };
    let response = RawRequest::new("PutItem", create("fresh", "mine"))
        .send(sidecar.listen_addr())
        .await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(
        home.recorded_op("PutItem").len(),
        1,
        "the first attempt reached home"
    );
    let resent = second.recorded_op("PutItem");
    assert_eq!(resent.len(), 1, "the put was resent to the second region");
    assert!(
        String::from_utf8_lossy(&resent[0].body).contains("ReturnValuesOnConditionCheckFailure"),
        "the resend asks for the current item"
    );
    let stored = client
        .get_item()
        .table_name(TABLE)
        .key(
            "ItemID",
            aws_sdk_dynamodb::types::AttributeValue::S("fresh".into()),
        )
        .key(
            "Category",
            aws_sdk_dynamodb::types::AttributeValue::S("x".into()),
        )
        .send()
        .await
        .expect("GetItem");
    assert!(stored.item().is_some(), "the item was written once");
    assert_eq!(
        metric(
            sidecar.admin_addr(),
            "globalscale_write_verifications_total",
            &[("verdict", "own_write")]
        )
        .await,
        Some(1.0)
    );

    // Someone else's item under the key: the condition failure is real, and the item the
    // client did not ask for is not in it.
    client
        .put_item()
        .table_name(TABLE)
        .set_item(Some(support::item("taken", "x", &[("Name", "theirs")])))
        .send()
        .await
        .expect("PutItem");
    let response = RawRequest::new("PutItem", create("taken", "mine"))
        .send(sidecar.listen_addr())
        .await;
    assert_eq!(response.status, 400, "{}", response.text());
    assert!(
        response
            .error_type()
            .ends_with("ConditionalCheckFailedException")
    );
    assert!(response.json().get("Item").is_none(), "{}", response.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_latency_policy_prefers_the_faster_region() {
    let ddb = DynamoLocal::single().await;
    let home = RegionFixture::start(&ddb.endpoint(0)).await;
    let sidecar = Sidecar::start(
        &SidecarConfig::new()
            .timeouts(500, 2_000, 10_000)
            .section("[routing]\npolicy = \"latency\"\nprobe_interval_ms = 100")
            .region("us-east-1", &home.endpoint())
            .region("us-west-2", &ddb.endpoint(0)),
    )
    .await;
    // Set-up, straight to the store: under a loaded CI a CreateTable can outlast the
    // short attempt timeouts these tests route with.
    create_global_catalog(&sdk_client(&ddb.endpoint(0))).await;
    let (addr, admin) = (sidecar.listen_addr(), sidecar.admin_addr());
    home.set_mode(Mode::Delay(Duration::from_millis(80))).await;
    // Probes measure both regions; the latency averages settle within a few rounds.
    wait_served_by(addr, admin, "us-west-2").await;
    let mut by_second = 0;
    for _ in 0..20 {
        if served_by(addr).await == "us-west-2" {
            by_second += 1;
        }
    }
    assert_eq!(by_second, 20, "the slow home region still took traffic");
    home.set_mode(Mode::Forward).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_swaps_the_region_list_under_load_without_a_failed_request() {
    let ddb = DynamoLocal::cluster(2).await;
    let base = || config().timeouts(500, 5_000, 10_000);
    let process = SidecarProcess::start(base().region("us-east-1", &ddb.endpoint(0))).await;
    create_global_catalog(&sdk_client(&process.endpoint())).await;
    let (addr, admin) = (process.listen_addr(), process.admin_addr());
    assert_eq!(served_by(addr).await, "us-east-1");

    let load = Load::start(&process.endpoint(), 2);
    load.wait_for(100).await;
    process.rewrite_config(
        base()
            .region("eu-central-1", &ddb.endpoint(1))
            .region("us-east-1", &ddb.endpoint(0)),
    );
    process.signal("HUP");
    wait_served_by(addr, admin, "eu-central-1").await;
    load.wait_for(100).await;

    // A broken file is refused; the running config stays.
    process.write_raw_config("listen = \"nowhere\"\n");
    process.signal("HUP");
    wait_metric(
        admin,
        "globalscale_config_reloads_total",
        &[("result", "failure")],
        1.0,
    )
    .await;
    assert_eq!(served_by(addr).await, "eu-central-1");
    load.wait_for(100).await;

    let report = load.stop().await;
    report.assert_no_errors("");
    assert_eq!(
        metric(
            admin,
            "globalscale_config_reloads_total",
            &[("result", "success")]
        )
        .await,
        Some(1.0)
    );
    assert_eq!(
        metric(
            admin,
            "globalscale_region_healthy",
            &[("region", "eu-central-1")]
        )
        .await,
        Some(1.0)
    );
}
