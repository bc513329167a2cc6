//! The `globalscale` binary as an operator runs it: health, readiness and metrics on the admin
//! port, signals, graceful drain, refusing bad configs, and a DynamoDB-shaped 503 when no region
//! can be reached.

// Helpers here panic like the tests they serve: a failed expectation is a failed test.
#![allow(clippy::expect_used)]

mod support;

use std::time::Duration;

use aws_sdk_dynamodb::config::retry::RetryConfig;
use support::{
    DynamoLocal, HANG, Mode, RawRequest, RegionFixture, SidecarConfig, SidecarProcess,
    create_global_catalog, get, sdk_client, sdk_client_with,
};

/// Polls `path` on `admin` until it answers `status`; panics after [`HANG`].
async fn wait_for_status(admin: std::net::SocketAddr, path: &str, status: u16) {
    let deadline = tokio::time::Instant::now() + HANG;
    loop {
        let response = get(admin, path).await;
        if response.status == status {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{path} still {} (wanted {status}): {}",
            response.status,
            response.text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The admin port's plain answers say what they are: `text/plain; charset=utf-8`, whatever
/// their status.
async fn assert_plain_text(admin: std::net::SocketAddr, path: &str) {
    let response = get(admin, path).await;
    assert_eq!(
        response.header("content-type"),
        Some("text/plain; charset=utf-8"),
        "Content-Type of {path} (status {}, body {:?})",
        response.status,
        response.text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_endpoints_signals_and_clean_exit() {
    let ddb = DynamoLocal::single().await;
    // Ready means the managed table answered a signed request (tests/readiness.rs).
    create_global_catalog(&sdk_client(&ddb.endpoint(0))).await;
    let mut process =
        SidecarProcess::start(SidecarConfig::new().region("us-east-1", &ddb.endpoint(0))).await;
    let admin = process.admin_addr();

    assert_eq!(get(admin, "/healthz").await.status, 200);
    wait_for_status(admin, "/readyz", 200).await;
    for path in ["/healthz", "/readyz", "/no-such-page"] {
        assert_plain_text(admin, path).await;
    }

    let client = sdk_client(&process.endpoint());
    client
        .list_tables()
        .send()
        .await
        .expect("ListTables through the binary");

    let metrics = get(admin, "/metrics").await;
    assert_eq!(metrics.status, 200);
    assert!(
        metrics
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/plain")),
        "metrics content-type {:?}",
        metrics.header("content-type")
    );
    let requests = support::metric_sum(&metrics.text(), "globalscale_requests_total", &[]);
    assert!(
        requests.is_some_and(|n| n >= 1.0),
        "globalscale_requests_total is {requests:?} after a request:\n{}",
        metrics.text()
    );

    // SIGHUP (log rotation, reload) must not take the sidecar down.
    process.signal("HUP");
    client
        .list_tables()
        .send()
        .await
        .expect("ListTables after SIGHUP");
    assert_eq!(get(admin, "/healthz").await.status, 200, "after SIGHUP");

    process.signal("TERM");
    let status = process.wait_exit().await;
    assert_eq!(
        status.code(),
        Some(0),
        "exit after SIGTERM: {status}; stderr:\n{}",
        process.stderr()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_the_in_flight_request_finish() {
    let ddb = DynamoLocal::single().await;
    let region = RegionFixture::start(&ddb.endpoint(0)).await;
    let mut process =
        SidecarProcess::start(SidecarConfig::new().region("us-east-1", &region.endpoint())).await;

    region.set_mode(Mode::Delay(Duration::from_secs(2))).await;
    let marker = "drainMarker";
    let request = RawRequest::new(
        "ListTables",
        format!(r#"{{"ExclusiveStartTableName":"{marker}"}}"#),
    );
    let addr = process.listen_addr();
    let in_flight = tokio::spawn(async move { request.send(addr).await });
    region
        .wait_for("the in-flight ListTables", |r| {
            r.body.windows(marker.len()).any(|w| w == marker.as_bytes())
        })
        .await;

    process.signal("TERM");
    let response = in_flight.await.expect("in-flight request task");
    assert_eq!(
        response.status,
        200,
        "the request in flight at SIGTERM: {}",
        response.text()
    );
    assert!(
        response.json().get("TableNames").is_some(),
        "{}",
        response.text()
    );
    let status = process.wait_exit().await;
    assert_eq!(
        status.code(),
        Some(0),
        "exit after draining: {status}; stderr:\n{}",
        process.stderr()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_config_keys_stop_the_binary() {
    let base = SidecarConfig::new().region("us-east-1", "http://127.0.0.1:9");
    let cases = [
        ("bogus_knob", base.clone().top_level("bogus_knob = 1")),
        ("colour", base.clone().table_line("colour = \"blue\"")),
    ];
    for (key, config) in cases {
        let text = config.to_toml();
        let error = globalscale::config::Config::from_toml_str(&text)
            .expect_err("Config::from_toml_str accepted an unknown key");
        assert!(error.to_string().contains(key), "library error: {error}");

        let (status, stderr) = SidecarProcess::run_to_exit(&text).await;
        assert!(
            !status.success(),
            "started with unknown key {key}: {status}"
        );
        assert!(
            stderr.contains(key),
            "stderr does not name {key}:\n{stderr}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_prefix_on_a_number_partition_key_is_refused_at_start() {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    };
    let ddb = DynamoLocal::single().await;
    sdk_client(&ddb.endpoint(0))
        .create_table()
        .table_name("NumberKeyed")
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("Id")
                .attribute_type(ScalarAttributeType::N)
                .build()
                .expect("attribute"),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("Id")
                .key_type(KeyType::Hash)
                .build()
                .expect("key"),
        )
        .send()
        .await
        .expect("CreateTable");
    let config = SidecarConfig::new()
        .region("us-east-1", &ddb.endpoint(0))
        .section("[[tables]]\nname = \"NumberKeyed\"\npartition_key = \"Id\"\nkey_prefix = \"{region}#\"");
    let (status, stderr) = SidecarProcess::run_to_exit(&config.to_toml()).await;
    assert!(
        !status.success(),
        "started with a prefix on a number key: {status}"
    );
    assert!(
        stderr.contains("NumberKeyed") && stderr.contains("string"),
        "stderr does not say why:\n{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_regions_refusing_gives_a_dynamodb_shaped_503() {
    let home = RegionFixture::start("http://127.0.0.1:9").await;
    let second = RegionFixture::start("http://127.0.0.1:9").await;
    home.set_mode(Mode::Refuse).await;
    second.set_mode(Mode::Refuse).await;
    let config = SidecarConfig::new()
        .region("us-east-1", &home.endpoint())
        .region("us-west-2", &second.endpoint());
    let process = SidecarProcess::start(config).await;

    let response = RawRequest::new("ListTables", "{}")
        .send(process.listen_addr())
        .await;
    assert_eq!(response.status, 503, "{}", response.text());
    let kind = response.error_type();
    assert!(kind.contains("Unavailable"), "__type {kind:?}");
    if let Some(crc) = response.header("x-amz-crc32") {
        assert_eq!(
            crc.parse::<u32>().ok(),
            Some(crc32fast::hash(&response.body))
        );
    }

    let client = sdk_client_with(&process.endpoint(), None, |b| {
        b.retry_config(RetryConfig::disabled())
    });
    let error = client
        .list_tables()
        .send()
        .await
        .expect_err("no region can answer");
    let status = error.raw_response().map(|r| r.status().as_u16());
    assert_eq!(status, Some(503), "the SDK saw {error:?}");

    wait_for_status(process.admin_addr(), "/readyz", 503).await;
    assert_plain_text(process.admin_addr(), "/readyz").await;
    assert_eq!(get(process.admin_addr(), "/healthz").await.status, 200);
}
