//! `write_failover = "manual"`: with the home region down, reads move and writes stay (the
//! client gets the region's error or a retryable 503, and nothing is written elsewhere) until
//! an operator moves them with `POST /admin/write-region`, which needs the admin token; and
//! `/status` says where writes go and why the sidecar left home.

#![allow(clippy::expect_used)]

mod support;

use http::Method;
use serde_json::json;
use support::{
    DynamoLocal, Mode, RawRequest, RegionFixture, Sidecar, SidecarConfig, TABLE, admin_request,
    create_global_catalog, get, metric, sdk_client,
};

const TOKEN: &str = "a-long-enough-admin-token";

fn key(id: &str) -> serde_json::Value {
    json!({"ItemID": {"S": id}, "Category": {"S": "x"}})
}

fn put(id: &str) -> RawRequest {
    RawRequest::new(
        "PutItem",
        json!({"TableName": TABLE, "Item": key(id)}).to_string(),
    )
}

fn get_item(id: &str) -> RawRequest {
    let body = json!({"TableName": TABLE, "Key": key(id), "ConsistentRead": true});
    RawRequest::new("GetItem", body.to_string())
}

async fn move_writes(sidecar: &Sidecar, region: &str, token: Option<&str>) -> u16 {
    let bearer = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = bearer
        .iter()
        .map(|b| ("authorization", b.as_str()))
        .collect();
    let body = json!({ "region": region }).to_string();
    admin_request(
        sidecar.admin_addr(),
        Method::POST,
        "/admin/write-region",
        &headers,
        &body,
    )
    .await
    .status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_stay_home_until_an_operator_moves_them() {
    let ddb = DynamoLocal::cluster(2).await;
    create_global_catalog(&sdk_client(&ddb.endpoint(0))).await;
    let home = RegionFixture::start(&ddb.endpoint(0)).await;
    let second = RegionFixture::start(&ddb.endpoint(1)).await;
    let config = SidecarConfig::new()
        .timeouts(300, 1_000, 4_000)
        .region("us-east-1", &home.endpoint())
        .region("us-west-2", &second.endpoint())
        .section(
            "[routing]\nwrite_failover = \"manual\"\neject_after_failures = 1\nprobe_interval_ms = 200",
        )
        .section(&format!("[admin]\ntoken = {TOKEN:?}"));
    let sidecar = Sidecar::start(&config).await;
    let addr = sidecar.listen_addr();
    assert_eq!(put("before").send(addr).await.status, 200);

    home.set_mode(Mode::Refuse).await;
    let read = get_item("before").send(addr).await;
    assert_eq!(read.status, 200, "reads move: {}", read.text());
    assert_eq!(read.header("x-globalscale-region"), Some("us-west-2"));
    let write = put("while-down").send(addr).await;
    assert_eq!(write.status, 503, "writes stay home: {}", write.text());
    assert!(
        second.recorded_op("PutItem").is_empty(),
        "no write reached us-west-2"
    );
    let status = get(sidecar.admin_addr(), "/status").await;
    assert!(status.text().contains("us-east-1"));
    let status = admin_request(
        sidecar.admin_addr(),
        Method::GET,
        "/status",
        &[("accept", "application/json")],
        "",
    )
    .await
    .json();
    assert_eq!(status["write_region"], "us-east-1");
    assert_eq!(status["writes_to"], "us-east-1");
    assert_eq!(status["write_failover"], "manual");
    assert_eq!(status["serving_region"], "us-west-2");
    assert_eq!(status["events"][0]["event"], "ejected");
    assert_eq!(status["events"][0]["region"], "us-east-1");

    assert_eq!(move_writes(&sidecar, "us-west-2", None).await, 401);
    assert_eq!(
        move_writes(&sidecar, "us-west-2", Some("wrong-token-wrong-token")).await,
        401
    );
    assert_eq!(move_writes(&sidecar, "eu-north-9", Some(TOKEN)).await, 400);
    assert_eq!(move_writes(&sidecar, "us-west-2", Some(TOKEN)).await, 200);
    let write = put("moved").send(addr).await;
    assert_eq!(write.status, 200, "{}", write.text());
    assert_eq!(write.header("x-globalscale-region"), Some("us-west-2"));
    let admin = sidecar.admin_addr();
    let moved = metric(
        admin,
        "globalscale_write_region",
        &[("region", "us-west-2")],
    )
    .await;
    assert_eq!(moved, Some(1.0));
    let left = metric(
        admin,
        "globalscale_write_region",
        &[("region", "us-east-1")],
    )
    .await;
    assert_eq!(left, Some(0.0));

    // And back, once home is up again.
    home.set_mode(Mode::Forward).await;
    assert_eq!(move_writes(&sidecar, "us-east-1", Some(TOKEN)).await, 200);
    let write = put("home-again").send(addr).await;
    assert_eq!(write.status, 200, "{}", write.text());
    assert_eq!(write.header("x-globalscale-region"), Some("us-east-1"));
    sidecar.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_token_the_action_does_not_exist() {
    let ddb = DynamoLocal::single().await;
    let sidecar = Sidecar::start(&SidecarConfig::new().region("us-east-1", &ddb.endpoint(0))).await;
    assert_eq!(move_writes(&sidecar, "us-east-1", Some(TOKEN)).await, 404);
    sidecar.stop().await;
}
