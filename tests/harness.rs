//! The harness tested on its own, without the sidecar, so that a green test elsewhere means the
//! sidecar behaved and not that a fixture or the verifier could not tell.

// Helpers here panic like the tests they serve: a failed expectation is a failed test.
#![allow(clippy::expect_used)]

mod support;

use std::time::Duration;

use aws_sdk_dynamodb::config::retry::RetryConfig;
use support::{
    CLIENT_ACCESS_KEY_ID, CLIENT_SECRET, DynamoLocal, Keys, Mode, RawRequest, RegionFixture,
    check_signatures, sdk_client, sdk_client_with,
};

/// The verifier accepts what the AWS SDK signs and rejects a wrong region, a wrong secret, a
/// tampered body and a forbidden key id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verifier_accepts_sdk_signatures_and_catches_tampering() {
    let fixture = RegionFixture::start("http://127.0.0.1:9").await;
    fixture.set_mode(Mode::Status(500)).await;
    let client = sdk_client_with(&fixture.endpoint(), Some("client-token"), |b| {
        b.retry_config(RetryConfig::disabled())
    });
    let put = client
        .put_item()
        .table_name(support::TABLE)
        .set_item(Some(support::item("a", "b", &[("Note", "signed")])))
        .send()
        .await;
    assert!(put.is_err(), "a 500 fixture cannot have stored the item");
    let recorded = fixture.take_recorded();
    assert_eq!(recorded.len(), 1, "retries are disabled: {recorded:?}");
    assert_eq!(fixture.served(), 1);

    let keys = Keys {
        access_key_id: CLIENT_ACCESS_KEY_ID,
        secret_access_key: CLIENT_SECRET,
        session_token: Some("client-token"),
    };
    let report = check_signatures(&recorded, "us-east-1", keys, &[]).expect("SDK signature");
    assert!(report.contains("1 verified, 0 failed"), "{report}");

    let wrong_region = check_signatures(&recorded, "us-west-2", keys, &[]);
    assert!(
        wrong_region.is_err(),
        "region not checked: {wrong_region:?}"
    );
    let wrong_secret = Keys {
        secret_access_key: "not-the-secret",
        ..keys
    };
    let wrong = check_signatures(&recorded, "us-east-1", wrong_secret, &[]);
    assert!(wrong.is_err(), "secret not checked: {wrong:?}");
    let no_token = Keys {
        session_token: None,
        ..keys
    };
    let wrong = check_signatures(&recorded, "us-east-1", no_token, &[]);
    assert!(wrong.is_err(), "session token not checked: {wrong:?}");
    let forbidden = check_signatures(&recorded, "us-east-1", keys, &[CLIENT_ACCESS_KEY_ID]);
    assert!(
        forbidden.is_err(),
        "forbidden key id not found: {forbidden:?}"
    );

    let mut tampered = recorded.clone();
    tampered[0].body = bytes::Bytes::from(tampered[0].body.to_vec().repeat(2));
    let wrong = check_signatures(&tampered, "us-east-1", keys, &[]);
    assert!(wrong.is_err(), "body not checked: {wrong:?}");
    let wrong = check_signatures(&[], "us-east-1", keys, &[]);
    assert!(wrong.is_err(), "an empty record set must not verify");
}

/// DynamoDB Local nodes share one store, die and come back on their port; the fixture records,
/// refuses, listens again, and injects errors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamo_local_cluster_and_fixture_modes() {
    let mut ddb = DynamoLocal::cluster(2).await;
    let fixture = RegionFixture::start(&ddb.endpoint(0)).await;
    let via_fixture = sdk_client_with(&fixture.endpoint(), None, |b| {
        b.retry_config(RetryConfig::disabled())
    });
    support::create_global_catalog(&via_fixture).await;
    assert_eq!(fixture.recorded_op("CreateTable").len(), 1);

    let node1 = sdk_client(&ddb.endpoint(1));
    let tables = node1
        .list_tables()
        .send()
        .await
        .expect("ListTables on node 1");
    assert_eq!(tables.table_names(), [support::TABLE], "store not shared");

    fixture.set_mode(Mode::Throttle).await;
    let throttled = RawRequest::new("ListTables", "{}")
        .send(fixture.addr())
        .await;
    assert_eq!(throttled.status, 400);
    assert!(throttled.error_type().ends_with("#ThrottlingException"));
    fixture.set_mode(Mode::Status(500)).await;
    let failed = RawRequest::new("ListTables", "{}")
        .send(fixture.addr())
        .await;
    assert_eq!(failed.status, 500);
    assert!(failed.error_type().ends_with("#InternalServerError"));

    fixture.set_mode(Mode::Refuse).await;
    let refused = RawRequest::new("ListTables", "{}")
        .try_send(fixture.addr())
        .await;
    assert!(refused.is_err(), "a refusing fixture answered: {refused:?}");
    fixture
        .set_mode(Mode::Delay(Duration::from_millis(50)))
        .await;
    let delayed = RawRequest::new("ListTables", "{}")
        .send(fixture.addr())
        .await;
    assert_eq!(delayed.status, 200, "{}", delayed.text());

    ddb.kill(0);
    let down = RawRequest::new("ListTables", "{}")
        .try_send(fixture.addr())
        .await;
    assert_eq!(
        down.map(|r| r.status),
        Ok(502),
        "fixture in front of a dead node"
    );
    ddb.restart(0).await;
    let back = sdk_client(&ddb.endpoint(0));
    let tables = back
        .list_tables()
        .send()
        .await
        .expect("ListTables after restart");
    assert_eq!(
        tables.table_names(),
        [support::TABLE],
        "store lost on restart"
    );
}
