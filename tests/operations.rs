//! DynamoDB's API through the sidecar, against DynamoDB Local: every control- and data-plane
//! operation an application uses, large items, pagination, conditional failures, checksums, and
//! a second SDK (boto3) besides Rust's.

// Helpers here panic like the tests they serve: a failed expectation is a failed test.
#![allow(clippy::expect_used)]

mod support;

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeValue, BatchStatementRequest, BillingMode, ConditionCheck, Get, KeysAndAttributes,
    ProvisionedThroughput, Put, PutRequest, ReturnValue, TableStatus, Tag, TimeToLiveSpecification,
    TimeToLiveStatus, TransactGetItem, TransactWriteItem, WriteRequest,
};
use support::{
    DynamoLocal, RawRequest, RawResponse, Sidecar, SidecarConfig, TABLE, create_global_catalog,
    create_table, item, sdk_client,
};

type Item = HashMap<String, AttributeValue>;

/// DynamoDB Local behind an in-process sidecar with one region, and a client for the sidecar.
async fn setup() -> (DynamoLocal, Sidecar, Client) {
    let ddb = DynamoLocal::single().await;
    let config = SidecarConfig::new().region("us-east-1", &ddb.endpoint(0));
    let sidecar = Sidecar::start(&config).await;
    let client = sdk_client(&sidecar.endpoint());
    (ddb, sidecar, client)
}

fn key(item_id: &str, category: &str) -> Item {
    item(item_id, category, &[])
}

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

/// Asserts the response carries `x-amz-crc32` and that it is the CRC32 of the body.
fn assert_crc32(response: &RawResponse, what: &str) {
    let header = response
        .header("x-amz-crc32")
        .unwrap_or_else(|| panic!("{what}: no x-amz-crc32 (status {})", response.status));
    let expected = crc32fast::hash(&response.body);
    assert_eq!(
        header.parse::<u32>().ok(),
        Some(expected),
        "{what}: x-amz-crc32 {header} is not the body's CRC32 {expected}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_plane_operations_pass_through() {
    let (ddb, sidecar, client) = setup().await;

    let created = create_global_catalog(&client).await;
    let description = created.table_description().expect("TableDescription");
    assert_eq!(description.table_name(), Some(TABLE));
    assert_eq!(description.key_schema().len(), 2);

    let described = client
        .describe_table()
        .table_name(TABLE)
        .send()
        .await
        .expect("DescribeTable");
    let table = described.table().expect("Table");
    assert_eq!(table.table_status(), Some(&TableStatus::Active));
    assert_eq!(
        table.billing_mode_summary().and_then(|b| b.billing_mode()),
        Some(&BillingMode::PayPerRequest)
    );
    let table_arn = table.table_arn().expect("TableArn").to_owned();

    create_table(&client, "Unmanaged").await;
    let names: Vec<String> = client
        .list_tables()
        .limit(1)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<_, _>>()
        .await
        .expect("ListTables pages");
    assert_eq!(names, [TABLE, "Unmanaged"], "ListTables, one name per page");

    update_throughput_and_ttl(&client).await;
    assert_tagging_matches_upstream(&ddb, &sidecar, &client, &table_arn).await;

    client
        .delete_table()
        .table_name("Unmanaged")
        .send()
        .await
        .expect("DeleteTable");
    let left = client.list_tables().send().await.expect("ListTables");
    assert_eq!(left.table_names(), [TABLE]);
}

/// UpdateTable (on demand to provisioned), UpdateTimeToLive and DescribeTimeToLive.
async fn update_throughput_and_ttl(client: &Client) {
    let updated = client
        .update_table()
        .table_name(TABLE)
        .billing_mode(BillingMode::Provisioned)
        .provisioned_throughput(
            ProvisionedThroughput::builder()
                .read_capacity_units(5)
                .write_capacity_units(7)
                .build()
                .expect("throughput"),
        )
        .send()
        .await
        .expect("UpdateTable");
    let throughput = updated
        .table_description()
        .and_then(|t| t.provisioned_throughput())
        .expect("ProvisionedThroughput after UpdateTable");
    assert_eq!(throughput.write_capacity_units(), Some(7));

    client
        .update_time_to_live()
        .table_name(TABLE)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name("ExpiresAt")
                .build()
                .expect("ttl spec"),
        )
        .send()
        .await
        .expect("UpdateTimeToLive");
    let ttl = client
        .describe_time_to_live()
        .table_name(TABLE)
        .send()
        .await
        .expect("DescribeTimeToLive");
    let ttl = ttl.time_to_live_description().expect("TTL description");
    assert_eq!(ttl.time_to_live_status(), Some(&TimeToLiveStatus::Enabled));
    assert_eq!(ttl.attribute_name(), Some("ExpiresAt"));
}

/// DynamoDB Local answers tagging with an error (it has no tags); whatever it answers, the
/// sidecar must answer the same.
async fn assert_tagging_matches_upstream(
    ddb: &DynamoLocal,
    sidecar: &Sidecar,
    client: &Client,
    table_arn: &str,
) {
    let tag = Tag::builder()
        .key("Owner")
        .value("globalscale")
        .build()
        .expect("tag");
    let through_sidecar = client
        .tag_resource()
        .resource_arn(table_arn)
        .tags(tag.clone())
        .send()
        .await;
    let direct = sdk_client(&ddb.endpoint(0))
        .tag_resource()
        .resource_arn(table_arn)
        .tags(tag)
        .send()
        .await;
    match (&through_sidecar, &direct) {
        (Ok(_), Ok(_)) => {
            let tags = client
                .list_tags_of_resource()
                .resource_arn(table_arn)
                .send()
                .await
                .expect("ListTagsOfResource");
            assert!(tags.tags().iter().any(|t| t.key() == "Owner"), "{tags:?}");
        }
        (Err(via), Err(upstream)) => {
            let (via, upstream) = (via.as_service_error(), upstream.as_service_error());
            assert_eq!(
                via.map(|e| (e.meta().code(), e.meta().message())),
                upstream.map(|e| (e.meta().code(), e.meta().message())),
                "TagResource error changed on the way"
            );
        }
        _ => panic!("TagResource: sidecar {through_sidecar:?} but upstream {direct:?}"),
    }

    let body = serde_json::json!({ "ResourceArn": table_arn }).to_string();
    let request = RawRequest::new("ListTagsOfResource", body);
    let via = request.send(sidecar.listen_addr()).await;
    let upstream_addr = format!("127.0.0.1:{}", ddb.port(0)).parse().expect("addr");
    let upstream = request.send(upstream_addr).await;
    assert_eq!(
        via.status,
        upstream.status,
        "{} vs {}",
        via.text(),
        upstream.text()
    );
    assert_eq!(
        via.json(),
        upstream.json(),
        "ListTagsOfResource body changed"
    );
    assert_crc32(&via, "ListTagsOfResource");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_plane_operations_pass_through() {
    let (_ddb, _sidecar, client) = setup().await;
    create_global_catalog(&client).await;

    let hammer = item("widget-1", "tools", &[("Name", "Hammer")]);
    client
        .put_item()
        .table_name(TABLE)
        .set_item(Some(hammer.clone()))
        .send()
        .await
        .expect("PutItem");
    assert_eq!(get(&client, "widget-1", "tools").await, Some(hammer));

    let updated = client
        .update_item()
        .table_name(TABLE)
        .set_key(Some(key("widget-1", "tools")))
        .update_expression("SET Price = :p ADD Stock :n")
        .expression_attribute_values(":p", AttributeValue::N("9.99".to_owned()))
        .expression_attribute_values(":n", AttributeValue::N("3".to_owned()))
        .return_values(ReturnValue::AllNew)
        .send()
        .await
        .expect("UpdateItem");
    let attributes = updated.attributes().expect("ALL_NEW attributes");
    assert_eq!(
        attributes.get("Price"),
        Some(&AttributeValue::N("9.99".into()))
    );
    assert_eq!(attributes.get("Name"), Some(&s("Hammer")));

    batch_write_and_read(&client).await;
    transactions(&client).await;
    partiql(&client).await;

    let scanned = client.scan().table_name(TABLE).send().await.expect("Scan");
    // widget-1, 10 batch items, 2 transaction items, 1 PartiQL item.
    assert_eq!(scanned.count(), 14, "{:?}", scanned.items());

    conditional_put_then_delete(&client).await;
}

async fn get(client: &Client, item_id: &str, category: &str) -> Option<Item> {
    client
        .get_item()
        .table_name(TABLE)
        .set_key(Some(key(item_id, category)))
        .consistent_read(true)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GetItem {item_id}/{category}: {e:?}"))
        .item
}

/// A PutItem whose condition fails comes back as ConditionalCheckFailedException and changes
/// nothing; DeleteItem then returns the original item.
async fn conditional_put_then_delete(client: &Client) {
    let conditional = client
        .put_item()
        .table_name(TABLE)
        .set_item(Some(item("widget-1", "tools", &[("Name", "Impostor")])))
        .condition_expression("attribute_not_exists(ItemID)")
        .send()
        .await
        .expect_err("PutItem over an existing item with attribute_not_exists");
    let service_error = conditional.into_service_error();
    assert!(
        service_error.is_conditional_check_failed_exception(),
        "expected ConditionalCheckFailedException, got {service_error:?}"
    );

    let deleted = client
        .delete_item()
        .table_name(TABLE)
        .set_key(Some(key("widget-1", "tools")))
        .return_values(ReturnValue::AllOld)
        .send()
        .await
        .expect("DeleteItem");
    assert_eq!(
        deleted.attributes().and_then(|a| a.get("Name")),
        Some(&s("Hammer")),
        "the conditional put must not have replaced the item"
    );
    assert_eq!(get(client, "widget-1", "tools").await, None);
}

/// BatchWriteItem puts of `items` (25 at most); none may be left unprocessed.
async fn batch_put(client: &Client, items: impl IntoIterator<Item = Item>) {
    let puts: Vec<WriteRequest> = items
        .into_iter()
        .map(|item| {
            let put = PutRequest::builder()
                .set_item(Some(item))
                .build()
                .expect("put request");
            WriteRequest::builder().put_request(put).build()
        })
        .collect();
    let written = client
        .batch_write_item()
        .request_items(TABLE, puts)
        .send()
        .await
        .expect("BatchWriteItem");
    assert!(
        written.unprocessed_items().is_none_or(HashMap::is_empty),
        "DynamoDB Local left items unprocessed: {written:?}"
    );
}

/// BatchWriteItem ten items, BatchGetItem them back, Query them.
async fn batch_write_and_read(client: &Client) {
    let items = (0..10).map(|i| item("batch", &format!("c{i}"), &[("N", &i.to_string())]));
    batch_put(client, items).await;

    let keys = KeysAndAttributes::builder()
        .set_keys(Some(
            (0..10).map(|i| key("batch", &format!("c{i}"))).collect(),
        ))
        .consistent_read(true)
        .build()
        .expect("keys");
    let read = client
        .batch_get_item()
        .request_items(TABLE, keys)
        .send()
        .await
        .expect("BatchGetItem");
    let items = read
        .responses()
        .and_then(|r| r.get(TABLE))
        .expect("responses");
    assert_eq!(items.len(), 10, "{items:?}");

    let queried = client
        .query()
        .table_name(TABLE)
        .key_condition_expression("ItemID = :id AND begins_with(Category, :c)")
        .expression_attribute_values(":id", s("batch"))
        .expression_attribute_values(":c", s("c"))
        .consistent_read(true)
        .send()
        .await
        .expect("Query");
    assert_eq!(queried.count(), 10);
}

/// TransactWriteItems (two puts and a condition check), TransactGetItems, and a cancelled
/// transaction coming back as one.
async fn transactions(client: &Client) {
    let put = |id: &str| {
        let put = Put::builder()
            .table_name(TABLE)
            .set_item(Some(item(id, "tx", &[("Via", "transaction")])))
            .build()
            .expect("put");
        TransactWriteItem::builder().put(put).build()
    };
    let check = |condition: &str| {
        let check = ConditionCheck::builder()
            .table_name(TABLE)
            .set_key(Some(key("widget-1", "tools")))
            .condition_expression(condition)
            .build()
            .expect("condition check");
        TransactWriteItem::builder().condition_check(check).build()
    };
    client
        .transact_write_items()
        .transact_items(put("tx-a"))
        .transact_items(put("tx-b"))
        .transact_items(check("attribute_exists(ItemID)"))
        .send()
        .await
        .expect("TransactWriteItems");

    let gets = ["tx-a", "tx-b"].map(|id| {
        let get = Get::builder()
            .table_name(TABLE)
            .set_key(Some(key(id, "tx")))
            .build()
            .expect("get");
        TransactGetItem::builder().get(get).build()
    });
    let read = client
        .transact_get_items()
        .set_transact_items(Some(gets.to_vec()))
        .send()
        .await
        .expect("TransactGetItems");
    let vias: Vec<_> = read
        .responses()
        .iter()
        .map(|r| r.item().and_then(|i| i.get("Via")).cloned())
        .collect();
    assert_eq!(vias, [Some(s("transaction")), Some(s("transaction"))]);

    let cancelled = client
        .transact_write_items()
        .transact_items(put("tx-c"))
        .transact_items(check("attribute_not_exists(ItemID)"))
        .send()
        .await
        .expect_err("a transaction whose condition fails");
    let service_error = cancelled.into_service_error();
    assert!(
        service_error.is_transaction_canceled_exception(),
        "expected TransactionCanceledException, got {service_error:?}"
    );
    assert_eq!(
        get(client, "tx-c", "tx").await,
        None,
        "cancelled put applied"
    );
}

/// ExecuteStatement (INSERT, SELECT) and BatchExecuteStatement.
async fn partiql(client: &Client) {
    client
        .execute_statement()
        .statement(format!(
            "INSERT INTO \"{TABLE}\" VALUE {{'ItemID': 'pq-1', 'Category': 'partiql', 'Name': 'Wrench'}}"
        ))
        .send()
        .await
        .expect("ExecuteStatement INSERT");
    let selected = client
        .execute_statement()
        .statement(format!("SELECT * FROM \"{TABLE}\" WHERE ItemID = ?"))
        .parameters(s("pq-1"))
        .consistent_read(true)
        .send()
        .await
        .expect("ExecuteStatement SELECT");
    assert_eq!(selected.items().len(), 1);
    assert_eq!(selected.items()[0].get("Name"), Some(&s("Wrench")));

    let select = |id: &str, category: &str| {
        BatchStatementRequest::builder()
            .statement(format!(
                "SELECT * FROM \"{TABLE}\" WHERE ItemID = ? AND Category = ?"
            ))
            .parameters(s(id))
            .parameters(s(category))
            .build()
            .expect("batch statement")
    };
    let batch = client
        .batch_execute_statement()
        .statements(select("pq-1", "partiql"))
        .statements(select("tx-a", "tx"))
        .send()
        .await
        .expect("BatchExecuteStatement");
    let found: Vec<_> = batch
        .responses()
        .iter()
        .map(|r| r.item().and_then(|i| i.get("ItemID")).cloned())
        .collect();
    assert_eq!(found, [Some(s("pq-1")), Some(s("tx-a"))], "{batch:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_items_pagination_and_checksums() {
    let (_ddb, sidecar, client) = setup().await;
    create_global_catalog(&client).await;

    let payload = "x".repeat(350 * 1024);
    client
        .put_item()
        .table_name(TABLE)
        .set_item(Some(item("big-1", "blob", &[("Payload", &payload)])))
        .send()
        .await
        .expect("PutItem of a 350 KB item");
    let big = get(&client, "big-1", "blob")
        .await
        .expect("the 350 KB item");
    assert_eq!(
        big.get("Payload"),
        Some(&s(&payload)),
        "350 KB item changed"
    );

    for chunk in 0..3 {
        let items = (chunk * 25..(chunk + 1) * 25).map(|i| item("paged", &format!("c{i:03}"), &[]));
        batch_put(&client, items).await;
    }

    let pages: Vec<_> = client
        .query()
        .table_name(TABLE)
        .key_condition_expression("ItemID = :id")
        .expression_attribute_values(":id", s("paged"))
        .limit(7)
        .into_paginator()
        .send()
        .collect::<Result<_, _>>()
        .await
        .expect("Query pages");
    assert!(
        pages.len() >= 11,
        "75 items, 7 a page: {} pages",
        pages.len()
    );
    let categories: Vec<_> = pages
        .iter()
        .flat_map(aws_sdk_dynamodb::operation::query::QueryOutput::items)
        .map(|i| i.get("Category").cloned())
        .collect();
    let expected: Vec<_> = (0..75).map(|i| Some(s(&format!("c{i:03}")))).collect();
    assert_eq!(
        categories, expected,
        "Query pages lost, repeated or reordered items"
    );

    let scanned: Vec<Item> = client
        .scan()
        .table_name(TABLE)
        .limit(10)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<_, _>>()
        .await
        .expect("Scan pages");
    assert_eq!(scanned.len(), 76, "75 paged items and the big one");

    raw_responses_carry_checksums(&sidecar).await;
}

/// Raw requests, to see the headers: a 350 KB body, a page with LastEvaluatedKey, and an error.
async fn raw_responses_carry_checksums(sidecar: &Sidecar) {
    let addr = sidecar.listen_addr();
    let get_big = serde_json::json!({
        "TableName": TABLE,
        "Key": {"ItemID": {"S": "big-1"}, "Category": {"S": "blob"}},
        "ConsistentRead": true,
    });
    let response = RawRequest::new("GetItem", get_big.to_string())
        .send(addr)
        .await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert!(response.body.len() > 350 * 1024);
    assert_crc32(&response, "GetItem of the big item");
    assert_eq!(
        response.header("content-type"),
        Some("application/x-amz-json-1.0")
    );
    assert!(
        response
            .header("x-amzn-requestid")
            .is_some_and(|id| !id.is_empty()),
        "no x-amzn-RequestId: {:?}",
        response.headers
    );

    let query = serde_json::json!({
        "TableName": TABLE,
        "KeyConditionExpression": "ItemID = :id",
        "ExpressionAttributeValues": {":id": {"S": "paged"}},
        "Limit": 5,
    });
    let response = RawRequest::new("Query", query.to_string()).send(addr).await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(
        response.json()["LastEvaluatedKey"],
        serde_json::json!({"ItemID": {"S": "paged"}, "Category": {"S": "c004"}})
    );
    assert_crc32(&response, "Query page");

    let conditional = serde_json::json!({
        "TableName": TABLE,
        "Item": {"ItemID": {"S": "big-1"}, "Category": {"S": "blob"}},
        "ConditionExpression": "attribute_not_exists(ItemID)",
    });
    let response = RawRequest::new("PutItem", conditional.to_string())
        .send(addr)
        .await;
    assert_eq!(response.status, 400, "{}", response.text());
    assert!(
        response
            .error_type()
            .ends_with("#ConditionalCheckFailedException"),
        "{}",
        response.text()
    );
    assert_crc32(&response, "ConditionalCheckFailedException");
}

/// boto3 through the sidecar: put, consistent get, query, and a conditional failure. botocore
/// also checks `x-amz-crc32` on every DynamoDB response it reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boto3_round_trips_through_sidecar() {
    let (_ddb, sidecar, client) = setup().await;
    create_global_catalog(&client).await;

    let result = support::run_boto3(BOTO3_SCRIPT, &sidecar.endpoint()).await;
    assert_eq!(
        result["item"],
        serde_json::json!({"ItemID": {"S": "boto-1"}, "Category": {"S": "py"}, "Name": {"S": "Pliers"}})
    );
    assert_eq!(result["count"], 1);
    assert_eq!(result["conditional"], "ConditionalCheckFailedException");

    let seen_by_rust = get(&client, "boto-1", "py").await.expect("boto3's item");
    assert_eq!(seen_by_rust.get("Name"), Some(&s("Pliers")));
}

const BOTO3_SCRIPT: &str = r#"
import json, sys
try:
    import boto3
except ImportError as error:
    print(f"boto3 not importable: {error}", file=sys.stderr)
    sys.exit(2)
client = boto3.client(
    "dynamodb", endpoint_url=sys.argv[1], region_name="us-east-1",
    aws_access_key_id="AKIDCLIENT", aws_secret_access_key="client-secret")
item = {"ItemID": {"S": "boto-1"}, "Category": {"S": "py"}, "Name": {"S": "Pliers"}}
client.put_item(TableName="GlobalCatalog", Item=item)
got = client.get_item(
    TableName="GlobalCatalog", Key={"ItemID": {"S": "boto-1"}, "Category": {"S": "py"}},
    ConsistentRead=True)
queried = client.query(
    TableName="GlobalCatalog", KeyConditionExpression="ItemID = :id",
    ExpressionAttributeValues={":id": {"S": "boto-1"}})
try:
    client.put_item(TableName="GlobalCatalog", Item=item,
                    ConditionExpression="attribute_not_exists(ItemID)")
    conditional = "no error"
except client.exceptions.ConditionalCheckFailedException:
    conditional = "ConditionalCheckFailedException"
print(json.dumps({"item": got.get("Item"), "count": queried["Count"], "conditional": conditional}))
"#;

/// The AWS CLI through the sidecar (put, then get), and a client speaking HTTP/2 with prior
/// knowledge on the same port.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_cli_and_http2_clients_work_through_sidecar() {
    let (_ddb, sidecar, client) = setup().await;
    create_global_catalog(&client).await;

    let aws = |args: &[&str]| {
        let mut command = std::process::Command::new("aws");
        command
            .args([
                "dynamodb",
                "--endpoint-url",
                &sidecar.endpoint(),
                "--region",
                "us-east-1",
            ])
            .args(args)
            .env("AWS_ACCESS_KEY_ID", "AKIDCLIENT")
            .env("AWS_SECRET_ACCESS_KEY", "client-secret")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null");
        let out = command.output().unwrap_or_else(|e| {
            panic!("the AWS CLI (`aws`) must be on PATH (scripts/test installs it): {e}")
        });
        assert!(
            out.status.success(),
            "aws {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let item = r#"{"ItemID":{"S":"cli-1"},"Category":{"S":"cli"},"Name":{"S":"Wrench"}}"#;
    aws(&["put-item", "--table-name", TABLE, "--item", item]);
    let got = aws(&[
        "get-item",
        "--table-name",
        TABLE,
        "--key",
        r#"{"ItemID":{"S":"cli-1"},"Category":{"S":"cli"}}"#,
        "--output",
        "json",
    ]);
    let got: serde_json::Value = serde_json::from_str(&got).expect("get-item prints JSON");
    assert_eq!(got["Item"]["Name"]["S"], "Wrench");

    let h2 = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<http_body_util::Full<bytes::Bytes>>();
    let request = http::Request::post(format!("{}/", sidecar.endpoint()))
        .header("x-amz-target", "DynamoDB_20120810.ListTables")
        .header("content-type", "application/x-amz-json-1.0")
        .body(http_body_util::Full::new(bytes::Bytes::from_static(b"{}")))
        .expect("request");
    let response = h2.request(request).await.expect("HTTP/2 request");
    assert_eq!(response.version(), http::Version::HTTP_2);
    assert_eq!(response.status(), 200);
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .expect("body")
        .to_bytes();
    let tables: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
    assert!(
        tables["TableNames"]
            .as_array()
            .expect("names")
            .iter()
            .any(|t| t == TABLE)
    );
}
