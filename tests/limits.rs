//! Limits that keep one client from hurting the others: requests past `[limits]
//! max_in_flight` get a 503 at once while the others are served, a client trickling its body
//! holds no place among them, and an oversized request head is refused.

#![allow(clippy::expect_used)]

mod support;

use std::time::Duration;

use serde_json::json;
use support::{
    DynamoLocal, Mode, RawRequest, RegionFixture, Sidecar, SidecarConfig, TABLE,
    create_global_catalog, metric, sdk_client,
};
use tokio::io::AsyncWriteExt;

async fn setup(max_in_flight: u32) -> (DynamoLocal, RegionFixture, Sidecar) {
    let ddb = DynamoLocal::single().await;
    create_global_catalog(&sdk_client(&ddb.endpoint(0))).await;
    let region = RegionFixture::start(&ddb.endpoint(0)).await;
    let config = SidecarConfig::new()
        .region("us-east-1", &region.endpoint())
        .section(&format!("[limits]\nmax_in_flight = {max_in_flight}"))
        .section("[routing]\nprobe_interval_ms = 600000");
    let sidecar = Sidecar::start(&config).await;
    (ddb, region, sidecar)
}

fn get_item(id: &str) -> RawRequest {
    let body = json!({"TableName": TABLE, "Key": {"ItemID": {"S": id}, "Category": {"S": "x"}}});
    RawRequest::new("GetItem", body.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_past_max_in_flight_get_a_503_at_once_while_the_others_are_served() {
    let (_ddb, region, sidecar) = setup(2).await;
    let addr = sidecar.listen_addr();
    region.set_mode(Mode::Delay(Duration::from_secs(3))).await;
    let slow: Vec<_> = (0..2)
        .map(|i| tokio::spawn(async move { get_item(&format!("slow{i}")).send(addr).await }))
        .collect();
    // Both slow requests have reached the region: they hold the two places.
    for key in ["slow0", "slow1"] {
        region
            .wait_for(key, |r| String::from_utf8_lossy(&r.body).contains(key))
            .await;
    }
    let shed = get_item("third").send(addr).await;
    assert_eq!(shed.status, 503, "{}", shed.text());
    assert!(
        shed.error_type().ends_with("ServiceUnavailable"),
        "{}",
        shed.text()
    );
    assert!(
        slow.iter().all(|s| !s.is_finished()),
        "the 503 came while the others were still being served"
    );
    for answer in slow {
        assert_eq!(answer.await.expect("slow request").status, 200);
    }
    let shed = metric(sidecar.admin_addr(), "globalscale_requests_shed_total", &[]).await;
    assert_eq!(shed, Some(1.0));
    region.set_mode(Mode::Forward).await;
    assert_eq!(get_item("after").send(addr).await.status, 200);
    sidecar.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_trickling_its_body_stalls_no_one() {
    let (_ddb, _region, sidecar) = setup(1).await;
    let addr = sidecar.listen_addr();
    let mut slow = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "POST / HTTP/1.1\r\nhost: {addr}\r\nx-amz-target: DynamoDB_20120810.GetItem\r\n\
         content-type: application/x-amz-json-1.0\r\ncontent-length: 200\r\n\r\n{{\"TableName\""
    );
    slow.write_all(head.as_bytes()).await.expect("write");
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The only place in flight is free: the trickling client holds a connection only.
    for i in 0..3 {
        assert_eq!(get_item(&format!("k{i}")).send(addr).await.status, 200);
    }
    drop(slow);
    sidecar.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_request_head_is_refused() {
    let (_ddb, _region, sidecar) = setup(8).await;
    let mut request = get_item("k");
    for i in 0..100 {
        request = request.header(&format!("x-padding-{i}"), "p");
    }
    let refused = request.try_send(sidecar.listen_addr()).await;
    match refused {
        Ok(response) => assert_eq!(response.status, 431, "{}", response.text()),
        // hyper may close the connection right after its 431.
        Err(e) => assert!(!e.is_empty()),
    }
    let huge = get_item("k").header("x-big", &"b".repeat(64 * 1024));
    if let Ok(response) = huge.try_send(sidecar.listen_addr()).await {
        assert_eq!(response.status, 431, "{}", response.text());
    }
    assert_eq!(get_item("k").send(sidecar.listen_addr()).await.status, 200);
    sidecar.stop().await;
}
