//! Writes meeting a region that applies them and answers late, or answers with something it
//! did not send: only what lands on the same item twice is resent, a transaction stays in the
//! region that may have run it (for this request and for the client's own retries with the
//! same token), and a corrupted answer never reaches the client.

#![allow(clippy::expect_used)]

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{
    DynamoLocal, Mode, RawRequest, RegionFixture, Sidecar, SidecarConfig, TABLE,
    create_global_catalog,
};

/// Home applies what it receives and never answers (or lies, per test); the second region is
/// healthy. Probes are rare and ejection needs many failures, so every request meets home.
struct Setup {
    _ddb: DynamoLocal,
    home: RegionFixture,
    second: RegionFixture,
    sidecar: Sidecar,
    direct: std::net::SocketAddr,
}

async fn setup() -> Setup {
    let ddb = DynamoLocal::single().await;
    let home = RegionFixture::start(&ddb.endpoint(0)).await;
    let second = RegionFixture::start(&ddb.endpoint(0)).await;
    create_global_catalog(&support::sdk_client(&ddb.endpoint(0))).await;
    let sidecar = Sidecar::start(
        &SidecarConfig::new()
            // 2 s per attempt: a hanging region costs that much, and a loaded CI machine
            // never makes a live region look like one (it did at 500 ms).
            .timeouts(500, 2_000, 20_000)
            .section("[routing]\neject_after_failures = 100\nprobe_interval_ms = 600000")
            .region("us-east-1", &home.endpoint())
            .region("us-west-2", &second.endpoint()),
    )
    .await;
    // The key schema is learned before any fault is injected.
    home.wait_for("DescribeTable", |r| r.operation() == Some("DescribeTable"))
        .await;
    let direct = std::net::SocketAddr::from(([127, 0, 0, 1], ddb.port(0)));
    Setup {
        _ddb: ddb,
        home,
        second,
        sidecar,
        direct,
    }
}

fn key(id: &str) -> Value {
    json!({"ItemID": {"S": id}, "Category": {"S": "x"}})
}

/// Sends straight to DynamoDB Local, bypassing every fixture.
async fn direct(setup: &Setup, operation: &str, body: &Value) -> Value {
    let response = RawRequest::new(operation, body.to_string())
        .send(setup.direct)
        .await;
    assert_eq!(response.status, 200, "{operation}: {}", response.text());
    response.json()
}

/// Polls the item until `expected` holds, so a write the home region applies after its
/// attempt timed out is seen; panics with the last state after a generous wait.
async fn wait_item(setup: &Setup, id: &str, expected: impl Fn(&Value) -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let answer = direct(
            setup,
            "GetItem",
            &json!({"TableName": TABLE, "Key": key(id), "ConsistentRead": true}),
        )
        .await;
        let item = answer.get("Item").cloned().unwrap_or(Value::Null);
        if expected(&item) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "item {id} never reached the expected state: {item}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn update(setup: &Setup, id: &str, expression: &str, values: Option<Value>) -> u16 {
    let mut body = json!({"TableName": TABLE, "Key": key(id), "UpdateExpression": expression});
    if let Some(values) = values {
        body["ExpressionAttributeValues"] = values;
    }
    let response = RawRequest::new("UpdateItem", body.to_string())
        .send(setup.sidecar.listen_addr())
        .await;
    if response.status != 200 {
        assert_eq!(response.status, 500, "{}", response.text());
        assert!(
            response.error_type().ends_with("InternalServerError"),
            "a retryable error: {}",
            response.text()
        );
    }
    response.status
}

fn numbers(item: &Value, attribute: &str) -> Vec<String> {
    item[attribute]["L"]
        .as_array()
        .map(|l| {
            l.iter()
                .map(|n| n["N"].as_str().unwrap_or("").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Each update shape of the resend rule, with the home region applying it and never
/// answering: the shapes that change an item again when applied twice are not resent (the
/// client gets a retryable 500 and the item shows one application); the others move to the
/// second region and succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_updates_that_land_on_the_same_item_twice_are_resent() {
    let setup = setup().await;
    let mut item = key("u");
    item["l"] = json!({"L": [{"N": "1"}, {"N": "2"}, {"N": "3"}, {"N": "4"}]});
    item["a"] = json!({"S": "A"});
    item["b"] = json!({"S": "B"});
    item["n"] = json!({"N": "0"});
    direct(
        &setup,
        "PutItem",
        &json!({"TableName": TABLE, "Item": item}),
    )
    .await;
    setup.home.set_mode(Mode::ApplyThenHang).await;

    // REMOVE l[0] twice on [1,2,3,4] would leave [3,4].
    assert_eq!(update(&setup, "u", "REMOVE l[0]", None).await, 500);
    wait_item(&setup, "u", |i| numbers(i, "l") == ["2", "3", "4"]).await;
    // A swap applied twice undoes itself.
    assert_eq!(update(&setup, "u", "SET a = b, b = a", None).await, 500);
    wait_item(&setup, "u", |i| i["a"]["S"] == "B" && i["b"]["S"] == "A").await;
    // A counter applied twice counts twice.
    let one = json!({":one": {"N": "1"}});
    assert_eq!(
        update(&setup, "u", "ADD n :one", Some(one.clone())).await,
        500
    );
    assert_eq!(
        update(&setup, "u", "SET n = n + :one", Some(one)).await,
        500
    );
    wait_item(&setup, "u", |i| i["n"]["N"] == "2").await;
    // Beyond the end of a list, SET appends.
    let v = json!({":v": {"N": "9"}});
    assert_eq!(update(&setup, "u", "SET l[7] = :v", Some(v)).await, 500);
    wait_item(&setup, "u", |i| numbers(i, "l") == ["2", "3", "4", "9"]).await;
    assert!(
        setup.second.recorded_op("UpdateItem").is_empty(),
        "a non-idempotent update was resent"
    );

    // Constants, if_not_exists of the same path, map removals and set unions are resent.
    for (expression, values) in [
        ("SET a = :v", json!({":v": {"S": "set"}})),
        (
            "SET c = if_not_exists(c, :v)",
            json!({":v": {"S": "first"}}),
        ),
        ("REMOVE b", json!(null)),
        ("ADD s :s", json!({":s": {"SS": ["x", "y"]}})),
        ("DELETE s :s", json!({":s": {"SS": ["x"]}})),
    ] {
        let values = (!values.is_null()).then_some(values);
        assert_eq!(
            update(&setup, "u", expression, values).await,
            200,
            "{expression}"
        );
    }
    assert_eq!(setup.second.recorded_op("UpdateItem").len(), 5);
    wait_item(&setup, "u", |i| {
        i["a"]["S"] == "set"
            && i["c"]["S"] == "first"
            && i.get("b").is_none()
            && i["s"]["SS"] == json!(["y"])
    })
    .await;
}

fn transaction(token: &str, action: &Value) -> String {
    json!({"TransactItems": [action], "ClientRequestToken": token}).to_string()
}

fn tokens_of(fixture: &RegionFixture) -> Vec<String> {
    fixture
        .recorded_op("TransactWriteItems")
        .iter()
        .map(|r| {
            let body: Value = serde_json::from_slice(&r.body).expect("JSON");
            body["ClientRequestToken"].as_str().unwrap_or("").to_owned()
        })
        .collect()
}

/// A transaction that is not idempotent stays in the region that may have run it: its
/// token is known there only. The client's own retry with the same token goes there too,
/// and fails rather than run elsewhere while that region is down. A transaction of idempotent
/// writes moves like any safe request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_stays_where_its_token_is_known() {
    let setup = setup().await;
    let addr = setup.sidecar.listen_addr();
    setup.home.set_mode(Mode::ApplyThenHang).await;
    let count = json!({"Update": {"TableName": TABLE, "Key": key("t"),
        "UpdateExpression": "ADD n :one", "ExpressionAttributeValues": {":one": {"N": "1"}}}});

    let response = RawRequest::new("TransactWriteItems", transaction("token-1", &count))
        .send(addr)
        .await;
    assert_eq!(
        response.status,
        500,
        "{} home {:?} second {:?}",
        response.text(),
        tokens_of(&setup.home),
        tokens_of(&setup.second)
    );
    assert!(
        tokens_of(&setup.second).is_empty(),
        "moved to a region that does not know the token"
    );
    let at_home = tokens_of(&setup.home);
    assert!(!at_home.is_empty());
    assert!(at_home.iter().all(|t| t == "token-1"), "{at_home:?}");

    // The SDK retries with the same token while home is down: nowhere else will do.
    setup.home.set_mode(Mode::Refuse).await;
    let response = RawRequest::new("TransactWriteItems", transaction("token-1", &count))
        .send(addr)
        .await;
    assert!(response.status >= 500, "{}", response.text());
    assert!(
        tokens_of(&setup.second).is_empty(),
        "a retry moved to a region that does not know the token"
    );

    // Home is back: the retry reaches it.
    setup.home.set_mode(Mode::Forward).await;
    let before = setup.home.recorded_op("TransactWriteItems").len();
    let response = RawRequest::new("TransactWriteItems", transaction("token-1", &count))
        .send(addr)
        .await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(
        setup.home.recorded_op("TransactWriteItems").len(),
        before + 1
    );
    assert!(tokens_of(&setup.second).is_empty());

    // Idempotent writes only: moved on from a home that applies and hangs.
    setup.home.set_mode(Mode::ApplyThenHang).await;
    let put = json!({"Put": {"TableName": TABLE, "Item": key("t2")}});
    let response = RawRequest::new("TransactWriteItems", transaction("token-2", &put))
        .send(addr)
        .await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(tokens_of(&setup.second), ["token-2"]);
}

/// A region whose answer fails its checksum, or whose 200 is not JSON, failed the attempt:
/// a read moves to the next region, a write that is not safe to resend gets a retryable 500,
/// and the client never sees the corrupted answer with a fresh checksum on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_answer_is_a_failed_attempt() {
    let setup = setup().await;
    let addr = setup.sidecar.listen_addr();
    direct(
        &setup,
        "PutItem",
        &json!({"TableName": TABLE, "Item": key("c")}),
    )
    .await;
    let get = json!({"TableName": TABLE, "Key": key("c")}).to_string();
    for mode in [Mode::CorruptChecksum, Mode::NotJson] {
        setup.home.set_mode(mode.clone()).await;
        let response = RawRequest::new("GetItem", get.clone()).send(addr).await;
        assert_eq!(response.status, 200, "{mode:?}: {}", response.text());
        assert_eq!(
            response.header("x-globalscale-region"),
            Some("us-west-2"),
            "{mode:?}"
        );
        assert_eq!(response.json()["Item"]["ItemID"]["S"], "c", "{mode:?}");
        let crc = response.header("x-amz-crc32").expect("x-amz-crc32");
        assert_eq!(crc, crc32fast::hash(&response.body).to_string());

        setup.second.take_recorded();
        let status = update(&setup, "c", "ADD n :one", Some(json!({":one": {"N": "1"}}))).await;
        assert_eq!(status, 500, "{mode:?}");
        assert!(
            setup.second.recorded_op("UpdateItem").is_empty(),
            "{mode:?}: resent"
        );
    }
    // Each ADD was applied once, by home.
    wait_item(&setup, "c", |i| i["n"]["N"] == "2").await;
    let corrupt = support::metric_sum(
        &support::get(setup.sidecar.admin_addr(), "/metrics")
            .await
            .text(),
        "globalscale_upstream_requests_total",
        &[("region", "us-east-1"), ("outcome", "corrupt_answer")],
    );
    assert_eq!(corrupt, Some(4.0));
}
