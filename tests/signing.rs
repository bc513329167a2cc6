//! What a region receives is signed by the sidecar, for that region: the client's signature,
//! keys and session token never leave the sidecar. Every recorded request is re-verified by
//! botocore (`tests/support/verify_sigv4.py`), not by the sidecar's own signer.

// Helpers here panic like the tests they serve: a failed expectation is a failed test.
#![allow(clippy::expect_used)]

mod support;

use aws_sdk_dynamodb::Client;
use support::{
    CLIENT_ACCESS_KEY_ID, DynamoLocal, Mode, Recorded, RegionFixture, SIDECAR_ACCESS_KEY_ID,
    Sidecar, SidecarConfig, TABLE, create_global_catalog, item, sdk_client, sdk_client_with,
    verify_signatures,
};

/// Two regions in front of one DynamoDB Local store, so data written in one is read in the other.
async fn two_regions() -> (DynamoLocal, RegionFixture, RegionFixture) {
    let ddb = DynamoLocal::single().await;
    let home = RegionFixture::start(&ddb.endpoint(0)).await;
    let second = RegionFixture::start(&ddb.endpoint(0)).await;
    (ddb, home, second)
}

fn config(home: &RegionFixture, second: &RegionFixture) -> SidecarConfig {
    SidecarConfig::new()
        .region("us-east-1", &home.endpoint())
        .region("us-west-2", &second.endpoint())
}

async fn put_and_get(client: &Client, item_id: &str) {
    let written = item(item_id, "signed", &[("Note", "re-signed by the sidecar")]);
    client
        .put_item()
        .table_name(TABLE)
        .set_item(Some(written.clone()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("PutItem {item_id}: {e:?}"));
    let read = client
        .get_item()
        .table_name(TABLE)
        .set_key(Some(item(item_id, "signed", &[])))
        .consistent_read(true)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GetItem {item_id}: {e:?}"));
    assert_eq!(read.item(), Some(&written));
}

/// The Authorization of every recorded request names the sidecar's key and `region`; the
/// client's key id appears in no header.
fn assert_sidecar_credential(records: &[Recorded], region: &str) {
    let scope_prefix = format!("AWS4-HMAC-SHA256 Credential={SIDECAR_ACCESS_KEY_ID}/");
    let scope_suffix = format!("/{region}/dynamodb/aws4_request");
    for record in records {
        let authorization = record
            .header("authorization")
            .unwrap_or_else(|| panic!("{:?} arrived unsigned: {record:?}", record.operation()));
        let credential = authorization.split(',').next().unwrap_or_default();
        assert!(
            credential.starts_with(&scope_prefix) && credential.ends_with(&scope_suffix),
            "{:?} signed with {authorization:?}, wanted {scope_prefix}…{scope_suffix}",
            record.operation()
        );
        for (name, value) in &record.headers {
            assert!(
                !value.contains(CLIENT_ACCESS_KEY_ID),
                "the client's key id leaked in {name}: {value}"
            );
        }
    }
}

/// The client's requests for `operation`, leaving out the sidecar's own (its health probes
/// are GetItems too, sent with its own user agent).
fn with_operation<'a>(records: &'a [Recorded], operation: &str) -> Vec<&'a Recorded> {
    records
        .iter()
        .filter(|r| r.operation() == Some(operation))
        .filter(|r| {
            !r.header("user-agent")
                .is_some_and(|agent| agent.starts_with("globalscale/"))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_resigned_for_the_region_that_serves_them() {
    let (ddb, home, second) = two_regions().await;
    let sidecar = Sidecar::start(&config(&home, &second)).await;
    let client = sdk_client(&sidecar.endpoint());

    create_global_catalog(&client).await;
    put_and_get(&client, "home-1").await;
    let at_home = home.take_recorded();
    for operation in ["CreateTable", "PutItem", "GetItem"] {
        assert_eq!(
            with_operation(&at_home, operation).len(),
            1,
            "home region should have served {operation} once: {:?}",
            at_home.iter().map(Recorded::operation).collect::<Vec<_>>()
        );
    }
    assert!(
        with_operation(&second.take_recorded(), "PutItem").is_empty(),
        "the second region got a write while home was healthy"
    );
    assert_sidecar_credential(&at_home, "us-east-1");
    verify_signatures(&at_home, "us-east-1", None);

    home.set_mode(Mode::Refuse).await;
    // A probe may have reached home between the take above and the refusal.
    home.take_recorded();
    put_and_get(&client, "failover-1").await;
    let at_second = second.take_recorded();
    assert!(
        with_operation(&at_second, "PutItem").len() == 1
            && with_operation(&at_second, "GetItem").len() == 1,
        "the second region should have served the write and the read: {:?}",
        at_second
            .iter()
            .map(Recorded::operation)
            .collect::<Vec<_>>()
    );
    assert_sidecar_credential(&at_second, "us-west-2");
    verify_signatures(&at_second, "us-west-2", None);
    assert_eq!(
        home.received(),
        0,
        "a refusing region cannot have received anything"
    );

    // Both writes are in the one store: the global table saw both regions' writes.
    let direct = sdk_client(&ddb.endpoint(0));
    let count = direct
        .scan()
        .table_name(TABLE)
        .send()
        .await
        .expect("Scan on DynamoDB Local")
        .count();
    assert_eq!(count, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_tokens_are_the_sidecars_not_the_clients() {
    let (_ddb, home, second) = two_regions().await;
    let client_token = "client-session-token-never-forwarded";

    let without_token = Sidecar::start(&config(&home, &second)).await;
    let client = sdk_client_with(&without_token.endpoint(), Some(client_token), |b| b);
    create_global_catalog(&client).await;
    put_and_get(&client, "token-1").await;
    let recorded = home.take_recorded();
    assert!(!with_operation(&recorded, "PutItem").is_empty());
    for record in &recorded {
        assert_eq!(
            record.header("x-amz-security-token"),
            None,
            "the client's session token was forwarded"
        );
        assert!(
            record
                .headers
                .iter()
                .all(|(_, v)| !v.contains(client_token)),
            "the client's session token leaked: {record:?}"
        );
    }
    verify_signatures(&recorded, "us-east-1", None);
    without_token.stop().await;
    // Its probes may have reached home after the take above.
    home.take_recorded();

    let sidecar_token = "sidecar-session-token";
    let with_token = Sidecar::start(&config(&home, &second).session_token(sidecar_token)).await;
    let client = sdk_client_with(&with_token.endpoint(), Some(client_token), |b| b);
    put_and_get(&client, "token-2").await;
    let recorded = home.take_recorded();
    assert!(!with_operation(&recorded, "PutItem").is_empty());
    for record in &recorded {
        assert_eq!(record.header("x-amz-security-token"), Some(sidecar_token));
    }
    verify_signatures(&recorded, "us-east-1", Some(sidecar_token));
    with_token.stop().await;
}
