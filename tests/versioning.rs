//! Optimistic locking end to end, with the Rust SDK and boto3 through the sidecar and
//! DynamoDB Local read directly: versions stored and checked for every write kind, exactly one
//! winner among racing writers, conflicts as the SDK's typed errors, batches run as
//! transactions, and versioned writes whose first attempt landed unanswered recognised
//! rather than applied twice.

#![allow(clippy::expect_used)]

mod support;

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Put, PutRequest, ReturnValue, TransactWriteItem, Update,
    WriteRequest,
};
use support::{
    DynamoLocal, Mode, RegionFixture, Sidecar, SidecarConfig, TABLE, create_global_catalog, item,
    metric, sdk_client,
};

type Item = HashMap<String, AttributeValue>;

const WRITE_ID: &str = "__globalscale_write";

async fn versioned_sidecar(ddb: &DynamoLocal, prefix: bool) -> Sidecar {
    let mut config = SidecarConfig::new()
        .region("us-east-1", &ddb.endpoint(0))
        .table_line("version_attribute = \"Version\"");
    if prefix {
        config = config.table_line("key_prefix = \"{region}#\"");
    }
    Sidecar::start(&config).await
}

fn n(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn key(id: &str) -> Item {
    item(id, "x", &[])
}

async fn get(client: &Client, id: &str) -> Item {
    client
        .get_item()
        .table_name(TABLE)
        .set_key(Some(key(id)))
        .consistent_read(true)
        .send()
        .await
        .expect("GetItem")
        .item
        .expect("the item")
}

async fn put_with(client: &Client, id: &str, version: Option<u64>) -> Result<(), String> {
    let mut item = item(id, "x", &[("Name", "n")]);
    if let Some(version) = version {
        item.insert("Version".into(), n(version));
    }
    client
        .put_item()
        .table_name(TABLE)
        .set_item(Some(item))
        .send()
        .await
        .map(|_| ())
        .map_err(|e| {
            let e = e.into_service_error();
            assert!(e.is_conditional_check_failed_exception(), "{e:?}");
            "conflict".to_owned()
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_write_checks_and_increments_the_version() {
    let ddb = DynamoLocal::single().await;
    let direct = sdk_client(&ddb.endpoint(0));
    create_global_catalog(&direct).await;
    let sidecar = versioned_sidecar(&ddb, false).await;
    let client = sdk_client(&sidecar.endpoint());

    put_with(&client, "a", None).await.expect("a new item");
    assert_eq!(get(&client, "a").await["Version"], n(1));
    assert_eq!(
        put_with(&client, "a", None).await,
        Err("conflict".into()),
        "it exists"
    );
    put_with(&client, "a", Some(1))
        .await
        .expect("the version read");
    assert_eq!(
        put_with(&client, "a", Some(1)).await,
        Err("conflict".into()),
        "stale"
    );
    assert_eq!(get(&client, "a").await["Version"], n(2));

    // Updates increment; one that names the version it read is checked.
    client
        .update_item()
        .table_name(TABLE)
        .set_key(Some(key("a")))
        .update_expression("SET Price = :p")
        .expression_attribute_values(":p", n(10))
        .send()
        .await
        .expect("UpdateItem");
    let stale = client
        .update_item()
        .table_name(TABLE)
        .set_key(Some(key("a")))
        .update_expression("SET Price = :p, Version = :read")
        .expression_attribute_values(":p", n(11))
        .expression_attribute_values(":read", n(2))
        .send()
        .await
        .expect_err("version 2 is stale");
    assert!(
        stale
            .into_service_error()
            .is_conditional_check_failed_exception()
    );
    let fresh = client
        .update_item()
        .table_name(TABLE)
        .set_key(Some(key("a")))
        .update_expression("SET Price = :p, Version = :read")
        .condition_expression("Price = :old")
        .expression_attribute_values(":p", n(12))
        .expression_attribute_values(":read", n(3))
        .expression_attribute_values(":old", n(10))
        .return_values(ReturnValue::AllNew)
        .send()
        .await
        .expect("both conditions hold");
    let attributes = fresh.attributes.expect("ALL_NEW");
    assert_eq!(attributes["Version"], n(4));
    assert!(!attributes.contains_key(WRITE_ID), "the write id leaked");
    let failing_own_condition = client
        .update_item()
        .table_name(TABLE)
        .set_key(Some(key("a")))
        .update_expression("SET Price = :p, Version = :read")
        .condition_expression("Price = :old")
        .expression_attribute_values(":p", n(13))
        .expression_attribute_values(":read", n(4))
        .expression_attribute_values(":old", n(999))
        .send()
        .await
        .expect_err("the client's own condition fails");
    assert!(
        failing_own_condition
            .into_service_error()
            .is_conditional_check_failed_exception()
    );

    deletes_storage_and_refusals(&client, &direct).await;
}

/// Deletes keep the client's version condition; the write id is stored but never shown; a
/// version that is no number is refused.
async fn deletes_storage_and_refusals(client: &Client, direct: &Client) {
    // Deletes: the client's condition on the version holds.
    let stale_delete = client
        .delete_item()
        .table_name(TABLE)
        .set_key(Some(key("a")))
        .condition_expression("Version = :v")
        .expression_attribute_values(":v", n(1))
        .send()
        .await
        .expect_err("stale");
    assert!(
        stale_delete
            .into_service_error()
            .is_conditional_check_failed_exception()
    );

    // Storage holds the write id; clients never see it.
    let stored = direct
        .get_item()
        .table_name(TABLE)
        .set_key(Some(key("a")))
        .send()
        .await
        .expect("direct")
        .item
        .expect("stored");
    assert!(stored.contains_key(WRITE_ID));
    assert!(!get(client, "a").await.contains_key(WRITE_ID));
    let scanned = client.scan().table_name(TABLE).send().await.expect("Scan");
    assert!(scanned.items().iter().all(|i| !i.contains_key(WRITE_ID)));

    // Not a number: refused before it reaches DynamoDB.
    let mut bad = key("b");
    bad.insert("Version".into(), AttributeValue::S("one".into()));
    let refused = client
        .put_item()
        .table_name(TABLE)
        .set_item(Some(bad))
        .send()
        .await
        .expect_err("not a number");
    assert_eq!(
        refused.into_service_error().meta().code(),
        Some("ValidationException")
    );
}

/// Writers that all read version 1 race to write: exactly one wins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn among_racing_writers_exactly_one_wins() {
    let ddb = DynamoLocal::single().await;
    create_global_catalog(&sdk_client(&ddb.endpoint(0))).await;
    let sidecar = versioned_sidecar(&ddb, true).await;
    let client = sdk_client(&sidecar.endpoint());
    put_with(&client, "race", None).await.expect("created");
    let writers = 8;
    let mut tasks = Vec::new();
    for writer in 0..writers {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            client
                .update_item()
                .table_name(TABLE)
                .set_key(Some(key("race")))
                .update_expression("SET Winner = :w, Version = :read")
                .expression_attribute_values(":w", n(writer))
                .expression_attribute_values(":read", n(1))
                .send()
                .await
                .map_err(|e| {
                    e.into_service_error()
                        .is_conditional_check_failed_exception()
                })
        }));
    }
    let mut won = 0;
    let mut conflicts = 0;
    for task in tasks {
        match task.await.expect("writer") {
            Ok(_) => won += 1,
            Err(true) => conflicts += 1,
            Err(false) => panic!("a writer failed otherwise"),
        }
    }
    assert_eq!((won, conflicts), (1, writers - 1));
    assert_eq!(get(&client, "race").await["Version"], n(2));
    let counted = metric(
        sidecar.admin_addr(),
        "globalscale_version_conflicts_total",
        &[("table", TABLE)],
    )
    .await;
    assert_eq!(
        counted,
        Some(f64::from(u32::try_from(writers).unwrap() - 1))
    );
}

/// Transactions check per action, batches run as transactions; and client placeholders named
/// like the sidecar's own do not collide.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_batches_and_colliding_placeholders() {
    let ddb = DynamoLocal::single().await;
    create_global_catalog(&sdk_client(&ddb.endpoint(0))).await;
    let sidecar = versioned_sidecar(&ddb, true).await;
    let client = sdk_client(&sidecar.endpoint());

    batches_run_as_transactions(&client).await;
    let mut versioned_b1 = key("b1");
    versioned_b1.insert("Version".into(), n(1));
    let transaction = client
        .transact_write_items()
        .transact_items(
            TransactWriteItem::builder()
                .put(
                    Put::builder()
                        .table_name(TABLE)
                        .set_item(Some(versioned_b1))
                        .build()
                        .expect("put"),
                )
                .build(),
        )
        .transact_items(
            TransactWriteItem::builder()
                .update(
                    Update::builder()
                        .table_name(TABLE)
                        .set_key(Some(key("b2")))
                        .update_expression("SET #gs0 = :gs0")
                        .expression_attribute_names("#gs0", "Colour")
                        .expression_attribute_values(":gs0", AttributeValue::S("red".into()))
                        .build()
                        .expect("update"),
                )
                .build(),
        )
        .transact_items(
            TransactWriteItem::builder()
                .condition_check(
                    ConditionCheck::builder()
                        .table_name(TABLE)
                        .set_key(Some(key("b3")))
                        .condition_expression("Version = :v")
                        .expression_attribute_values(":v", n(1))
                        .build()
                        .expect("check"),
                )
                .build(),
        )
        .send()
        .await;
    assert!(transaction.is_ok(), "{transaction:?}");
    let b2 = get(&client, "b2").await;
    assert_eq!(b2["Version"], n(2));
    assert_eq!(b2["Colour"], AttributeValue::S("red".into()));
    assert_eq!(get(&client, "b1").await["Version"], n(2));

    // The same put again holds a stale version: the transaction's own cancellation reason.
    let mut stale = key("b1");
    stale.insert("Version".into(), n(1));
    let cancelled = client
        .transact_write_items()
        .transact_items(
            TransactWriteItem::builder()
                .put(
                    Put::builder()
                        .table_name(TABLE)
                        .set_item(Some(stale))
                        .build()
                        .expect("put"),
                )
                .build(),
        )
        .send()
        .await
        .expect_err("stale");
    let cancelled = cancelled.into_service_error();
    let aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(e) = cancelled else {
        panic!("{cancelled:?}");
    };
    assert_eq!(
        e.cancellation_reasons()[0].code(),
        Some("ConditionalCheckFailed")
    );
}

/// A versioned batch runs as one transaction: all or nothing.
async fn batches_run_as_transactions(client: &Client) {
    let batch = |ids: &[&str]| {
        ids.iter()
            .map(|id| {
                WriteRequest::builder()
                    .put_request(
                        PutRequest::builder()
                            .set_item(Some(key(id)))
                            .build()
                            .expect("put"),
                    )
                    .build()
            })
            .collect::<Vec<_>>()
    };
    let written = client
        .batch_write_item()
        .request_items(TABLE, batch(&["b1", "b2", "b3"]))
        .send()
        .await
        .expect("BatchWriteItem");
    assert!(written.unprocessed_items().is_none_or(HashMap::is_empty));
    assert_eq!(get(client, "b2").await["Version"], n(1));
    let again = client
        .batch_write_item()
        .request_items(TABLE, batch(&["b3", "b4"]))
        .send()
        .await
        .expect_err("b3 exists: the whole batch is refused");
    assert_eq!(
        again.into_service_error().meta().code(),
        Some("TransactionCanceledException")
    );
    let b4 = client
        .get_item()
        .table_name(TABLE)
        .set_key(Some(key("b4")))
        .send()
        .await
        .expect("GetItem");
    assert!(b4.item.is_none(), "a refused batch wrote nothing");
}

/// Three answers that were wrong: a version named through `#V` is the version read, as
/// `Version` is; a batch of 26 is refused in DynamoDB's words although the transaction it
/// runs as would take it; versions go past 2^64, as far as DynamoDB's numbers go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn named_versions_full_batches_and_versions_past_u64() {
    let ddb = DynamoLocal::single().await;
    let direct = sdk_client(&ddb.endpoint(0));
    create_global_catalog(&direct).await;
    let sidecar = versioned_sidecar(&ddb, false).await;
    let client = sdk_client(&sidecar.endpoint());

    put_with(&client, "named", None).await.expect("a new item");
    let update_named = |read: u64| {
        client
            .update_item()
            .table_name(TABLE)
            .set_key(Some(key("named")))
            .update_expression("SET Price = :p, #V = :read")
            .expression_attribute_names("#V", "Version")
            .expression_attribute_values(":p", n(1))
            .expression_attribute_values(":read", n(read))
            .send()
    };
    let stale = update_named(0).await.expect_err("version 0 is stale");
    assert!(
        stale
            .into_service_error()
            .is_conditional_check_failed_exception()
    );
    update_named(1)
        .await
        .expect("the version read, named through #V");
    assert_eq!(get(&client, "named").await["Version"], n(2));

    let batch = |count: usize| {
        (0..count)
            .map(|i| {
                let put = PutRequest::builder().set_item(Some(key(&format!("m{i}"))));
                WriteRequest::builder()
                    .put_request(put.build().expect("put"))
                    .build()
            })
            .collect::<Vec<_>>()
    };
    let own_words = direct
        .batch_write_item()
        .request_items(TABLE, batch(26))
        .send()
        .await
        .expect_err("DynamoDB's own limit")
        .into_service_error();
    let refused = client
        .batch_write_item()
        .request_items(TABLE, batch(26))
        .send()
        .await
        .expect_err("26 requests are one too many")
        .into_service_error();
    assert_eq!(refused.meta().code(), Some("ValidationException"));
    assert_eq!(refused.meta().message(), own_words.meta().message());
    assert_eq!(
        refused.meta().message(),
        Some("Too many items requested for the BatchWriteItem call")
    );
    let full = client.batch_write_item().request_items(TABLE, batch(25));
    full.send().await.expect("25 requests fit");
    versions_past_u64(&client, &direct).await;
}

/// An item whose version passes 2^64 through UpdateItem is still written with a version
/// check; only a version DynamoDB could not store is refused.
async fn versions_past_u64(client: &Client, direct: &Client) {
    let version = |text: &str| AttributeValue::N(text.to_owned());
    let mut planted = key("big");
    planted.insert("Version".into(), n(u64::MAX - 1));
    let plant = direct.put_item().table_name(TABLE).set_item(Some(planted));
    plant.send().await.expect("plant");
    for _ in 0..2 {
        let update = client
            .update_item()
            .table_name(TABLE)
            .set_key(Some(key("big")))
            .update_expression("SET Price = :p")
            .expression_attribute_values(":p", n(1));
        update.send().await.expect("UpdateItem");
    }
    let past = "18446744073709551616";
    assert_eq!(get(client, "big").await["Version"], version(past));
    let mut read = key("big");
    read.insert("Version".into(), version(past));
    let put = client.put_item().table_name(TABLE).set_item(Some(read));
    put.send()
        .await
        .expect("a put of the version read, past 2^64");
    assert_eq!(
        get(client, "big").await["Version"],
        version("18446744073709551617")
    );
    let checked = client
        .update_item()
        .table_name(TABLE)
        .set_key(Some(key("big")))
        .update_expression("SET Version = :read")
        .expression_attribute_values(":read", version("18446744073709551617"))
        .send();
    checked
        .await
        .expect("an update of the version read, past 2^64");
    assert_eq!(
        get(client, "big").await["Version"],
        version("18446744073709551618")
    );

    // 10^38 is as far as `+ 1` goes in DynamoDB: a put of it has no next version to store.
    let largest = format!("1{}", "0".repeat(38));
    let mut at_the_end = key("end");
    at_the_end.insert("Version".into(), version(&largest));
    let plant = direct
        .put_item()
        .table_name(TABLE)
        .set_item(Some(at_the_end.clone()));
    plant.send().await.expect("plant");
    let refused = client
        .put_item()
        .table_name(TABLE)
        .set_item(Some(at_the_end))
        .send()
        .await
        .expect_err("no next version")
        .into_service_error();
    assert_eq!(refused.meta().code(), Some("ValidationException"));
    let message = refused.meta().message().unwrap_or_default();
    assert!(message.contains("at its largest"), "{message}");
}

/// A versioned write whose first attempt landed but was never answered is resent to the next
/// region, recognised by its write id, and answered as the success it was: stored once, never
/// a conflict with itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_versioned_write_meeting_its_own_first_attempt_is_a_success() {
    let ddb = DynamoLocal::single().await;
    create_global_catalog(&sdk_client(&ddb.endpoint(0))).await;
    let home = RegionFixture::start(&ddb.endpoint(0)).await;
    let second = RegionFixture::start(&ddb.endpoint(0)).await;
    let sidecar = Sidecar::start(
        &SidecarConfig::new()
            // 2 s per attempt: a hanging region costs that much, and a loaded CI machine
            // never makes a live region look like one (it did at 500 ms).
            .timeouts(500, 2_000, 20_000)
            .section("[routing]\neject_after_failures = 100\nprobe_interval_ms = 600000")
            .region("us-east-1", &home.endpoint())
            .region("us-west-2", &second.endpoint())
            .table_line("key_prefix = \"{region}#\"")
            .table_line("version_attribute = \"Version\""),
    )
    .await;
    home.wait_for("DescribeTable", |r| r.operation() == Some("DescribeTable"))
        .await;
    let client = support::sdk_client_with(&sidecar.endpoint(), None, |b| {
        b.retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
    });
    home.set_mode(Mode::ApplyThenHang).await;

    put_with(&client, "amb", None)
        .await
        .expect("a new item, first attempt unanswered");
    let updated = client
        .update_item()
        .table_name(TABLE)
        .set_key(Some(key("amb")))
        .update_expression("SET Price = :p")
        .expression_attribute_values(":p", n(5))
        .return_values(ReturnValue::AllNew)
        .send()
        .await
        .expect("an update, first attempt unanswered");
    let attributes = updated.attributes.expect("ALL_NEW");
    assert_eq!(attributes["Version"], n(2), "applied once");
    assert!(!attributes.contains_key(WRITE_ID));
    let removed = client
        .delete_item()
        .table_name(TABLE)
        .set_key(Some(key("amb")))
        .condition_expression("Version = :v")
        .expression_attribute_values(":v", n(2))
        .send()
        .await;
    assert!(
        removed.is_ok(),
        "a delete, first attempt unanswered: {removed:?}"
    );
    assert_eq!(second.recorded_op("PutItem").len(), 1);
    assert_eq!(second.recorded_op("UpdateItem").len(), 1);
    assert_eq!(second.recorded_op("DeleteItem").len(), 1);
    let verified = metric(
        sidecar.admin_addr(),
        "globalscale_write_verifications_total",
        &[("verdict", "own_write")],
    )
    .await;
    assert_eq!(verified, Some(3.0));
    home.set_mode(Mode::Forward).await;
}

/// boto3, which has no version attribute of its own, gets the same locking: a stale write is
/// its own typed `ConditionalCheckFailedException`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boto3_gets_the_same_locking() {
    let ddb = DynamoLocal::single().await;
    create_global_catalog(&sdk_client(&ddb.endpoint(0))).await;
    let sidecar = versioned_sidecar(&ddb, true).await;
    let result = support::run_boto3(BOTO3_VERSIONED, &sidecar.endpoint()).await;
    assert_eq!(
        result,
        serde_json::json!({"created": "1", "updated": "2", "stale_put": "ConditionalCheckFailedException",
                           "stale_update": "ConditionalCheckFailedException", "hidden": true})
    );
}

const BOTO3_VERSIONED: &str = r##"
import json, sys
import boto3
client = boto3.client(
    "dynamodb", endpoint_url=sys.argv[1], region_name="us-east-1",
    aws_access_key_id="AKIDCLIENT", aws_secret_access_key="client-secret")
key = {"ItemID": {"S": "py"}, "Category": {"S": "x"}}
client.put_item(TableName="GlobalCatalog", Item={**key, "Name": {"S": "first"}})
created = client.get_item(TableName="GlobalCatalog", Key=key)["Item"]
client.update_item(TableName="GlobalCatalog", Key=key, UpdateExpression="SET #n = :n, Version = :v",
                   ExpressionAttributeNames={"#n": "Name"},
                   ExpressionAttributeValues={":n": {"S": "second"}, ":v": created["Version"]})
updated = client.get_item(TableName="GlobalCatalog", Key=key)["Item"]
def stale(call):
    try:
        call()
        return "no error"
    except client.exceptions.ConditionalCheckFailedException:
        return "ConditionalCheckFailedException"
print(json.dumps({
    "created": created["Version"]["N"],
    "updated": updated["Version"]["N"],
    "stale_put": stale(lambda: client.put_item(TableName="GlobalCatalog", Item={**key, **{"Version": created["Version"]}})),
    "stale_update": stale(lambda: client.update_item(TableName="GlobalCatalog", Key=key,
        UpdateExpression="SET Version = :v", ExpressionAttributeValues={":v": created["Version"]})),
    "hidden": "__globalscale_write" not in updated,
}))
"##;
