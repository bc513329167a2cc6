//! Region-prefixed keys end to end, with the Rust SDK through the sidecar and DynamoDB Local
//! read directly: clients see plain keys, storage holds `<home region>#<key>`, and items of
//! another namespace, planted straight into the table, can be neither seen nor changed
//! through the sidecar by any operation.

#![allow(clippy::expect_used)]

mod support;

use std::collections::{BTreeSet, HashMap};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, DeleteRequest, GlobalSecondaryIndex,
    KeySchemaElement, KeyType, KeysAndAttributes, Projection, ProjectionType, PutRequest,
    ReturnValue, ReturnValuesOnConditionCheckFailure, ScalarAttributeType, Select, TransactGetItem,
    TransactWriteItem, WriteRequest,
};
use support::{DynamoLocal, RawRequest, Sidecar, SidecarConfig, TABLE, item, sdk_client};

type Item = HashMap<String, AttributeValue>;

/// `GlobalCatalog` with an index `ByName` whose partition key is another attribute.
async fn create_catalog_with_index(client: &Client) {
    let attribute = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .expect("attribute")
    };
    let key = |name: &str, kind| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .expect("key")
    };
    client
        .create_table()
        .table_name(TABLE)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute("ItemID"))
        .attribute_definitions(attribute("Category"))
        .attribute_definitions(attribute("Name"))
        .key_schema(key("ItemID", KeyType::Hash))
        .key_schema(key("Category", KeyType::Range))
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name("ByName")
                .key_schema(key("Name", KeyType::Hash))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build(),
                )
                .build()
                .expect("index"),
        )
        .send()
        .await
        .expect("CreateTable");
}

/// A sidecar whose home region is `home`, prefixing `GlobalCatalog`.
async fn sidecar(home: &str, ddb: &DynamoLocal) -> Sidecar {
    Sidecar::start(
        &SidecarConfig::new()
            .region(home, &ddb.endpoint(0))
            .table_line("key_prefix = \"{region}#\""),
    )
    .await
}

struct World {
    ddb: DynamoLocal,
    direct: Client,
}

async fn world() -> World {
    let ddb = DynamoLocal::single().await;
    let direct = sdk_client(&ddb.endpoint(0));
    create_catalog_with_index(&direct).await;
    World { ddb, direct }
}

fn ids(items: &[Item]) -> BTreeSet<String> {
    items
        .iter()
        .map(|i| match i.get("ItemID") {
            Some(AttributeValue::S(s)) => s.clone(),
            other => panic!("ItemID {other:?}"),
        })
        .collect()
}

async fn stored(direct: &Client, id: &str) -> Option<Item> {
    direct
        .get_item()
        .table_name(TABLE)
        .key("ItemID", AttributeValue::S(id.into()))
        .key("Category", AttributeValue::S("x".into()))
        .consistent_read(true)
        .send()
        .await
        .expect("GetItem direct")
        .item
}

/// One page of a Scan of `GlobalCatalog`, `limit` items read, from `start`.
async fn scan_page(
    client: &Client,
    limit: i32,
    start: Option<Item>,
) -> aws_sdk_dynamodb::operation::scan::ScanOutput {
    client
        .scan()
        .table_name(TABLE)
        .limit(limit)
        .set_exclusive_start_key(start)
        .send()
        .await
        .expect("Scan page")
}

/// One page of a Query of the `ByName` index for the name `widget`, from `start`.
async fn index_page(
    client: &Client,
    limit: i32,
    start: Option<Item>,
) -> aws_sdk_dynamodb::operation::query::QueryOutput {
    client
        .query()
        .table_name(TABLE)
        .index_name("ByName")
        .key_condition_expression("#n = :n")
        .expression_attribute_names("#n", "Name")
        .expression_attribute_values(":n", AttributeValue::S("widget".into()))
        .limit(limit)
        .set_exclusive_start_key(start)
        .send()
        .await
        .expect("index Query page")
}

fn key(id: &str) -> Item {
    item(id, "x", &[])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_stored_prefixed_and_shown_plain() {
    let w = world().await;
    let sidecar = sidecar("us-east-1", &w.ddb).await;
    let client = sdk_client(&sidecar.endpoint());

    client
        .put_item()
        .table_name(TABLE)
        .set_item(Some(item("a", "x", &[("Name", "widget")])))
        .send()
        .await
        .expect("PutItem");
    assert!(
        stored(&w.direct, "us-east-1#a").await.is_some(),
        "not stored prefixed"
    );
    assert!(stored(&w.direct, "a").await.is_none(), "stored plain");

    let got = client
        .get_item()
        .table_name(TABLE)
        .set_key(Some(key("a")))
        .send()
        .await
        .expect("GetItem");
    assert_eq!(
        got.item.expect("item")["ItemID"],
        AttributeValue::S("a".into())
    );

    let updated = client
        .update_item()
        .table_name(TABLE)
        .set_key(Some(key("a")))
        .update_expression("SET Price = :p")
        .expression_attribute_values(":p", AttributeValue::N("3".into()))
        .return_values(ReturnValue::AllNew)
        .send()
        .await
        .expect("UpdateItem");
    assert_eq!(
        updated.attributes.expect("attributes")["ItemID"],
        AttributeValue::S("a".into())
    );

    // A failed condition is the SDK's own typed error, and the item in it has a plain key.
    let conflict = client
        .put_item()
        .table_name(TABLE)
        .set_item(Some(key("a")))
        .condition_expression("attribute_not_exists(ItemID)")
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .send()
        .await
        .expect_err("the item exists");
    let conflict = conflict.into_service_error();
    assert!(
        conflict.is_conditional_check_failed_exception(),
        "{conflict:?}"
    );
    let current = match conflict {
        aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(e) => {
            e.item.expect("the current item")
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(current["ItemID"], AttributeValue::S("a".into()));

    let deleted = client
        .delete_item()
        .table_name(TABLE)
        .set_key(Some(key("a")))
        .return_values(ReturnValue::AllOld)
        .send()
        .await
        .expect("DeleteItem");
    assert_eq!(
        deleted.attributes.expect("old item")["ItemID"],
        AttributeValue::S("a".into())
    );
    assert!(stored(&w.direct, "us-east-1#a").await.is_none());
}

async fn plant(direct: &Client, id: &str, name: &str) {
    direct
        .put_item()
        .table_name(TABLE)
        .set_item(Some(item(id, "x", &[("Name", name), ("Planted", "yes")])))
        .send()
        .await
        .expect("plant");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_of_another_namespace_are_invisible_and_untouchable() {
    let w = world().await;
    let sidecar = sidecar("us-east-1", &w.ddb).await;
    let client = sdk_client(&sidecar.endpoint());
    for id in ["eu-central-1#x", "x", "us-west-2#y"] {
        plant(&w.direct, id, "widget").await;
    }
    client
        .put_item()
        .table_name(TABLE)
        .set_item(Some(item("mine", "x", &[("Name", "widget")])))
        .send()
        .await
        .expect("PutItem");

    let scanned = client.scan().table_name(TABLE).send().await.expect("Scan");
    assert_eq!(ids(scanned.items()), BTreeSet::from(["mine".to_owned()]));
    assert_eq!(scanned.count, 1);
    let mut segments = BTreeSet::new();
    for segment in 0..3 {
        let page = client
            .scan()
            .table_name(TABLE)
            .segment(segment)
            .total_segments(3)
            .send()
            .await
            .expect("parallel Scan");
        segments.extend(ids(page.items()));
    }
    assert_eq!(segments, BTreeSet::from(["mine".to_owned()]));
    let by_name = client
        .query()
        .table_name(TABLE)
        .index_name("ByName")
        .key_condition_expression("#n = :n")
        .expression_attribute_names("#n", "Name")
        .expression_attribute_values(":n", AttributeValue::S("widget".into()))
        .send()
        .await
        .expect("index Query");
    assert_eq!(ids(by_name.items()), BTreeSet::from(["mine".to_owned()]));
    let counted = client
        .scan()
        .table_name(TABLE)
        .select(Select::Count)
        .send()
        .await
        .expect("Scan COUNT");
    assert_eq!(counted.count, 1);

    // Keys are the client's: "x" is this namespace's x, never the planted ones.
    let batch = client
        .batch_get_item()
        .request_items(
            TABLE,
            KeysAndAttributes::builder()
                .keys(key("x"))
                .keys(key("eu-central-1#x"))
                .keys(key("mine"))
                .build()
                .expect("keys"),
        )
        .send()
        .await
        .expect("BatchGetItem");
    let responses = batch.responses.expect("responses");
    assert_eq!(ids(&responses[TABLE]), BTreeSet::from(["mine".to_owned()]));
    let transact = client
        .transact_get_items()
        .transact_items(get_of("x"))
        .transact_items(get_of("mine"))
        .send()
        .await
        .expect("TransactGetItems");
    let found: Vec<_> = transact
        .responses()
        .iter()
        .map(|r| r.item.is_some())
        .collect();
    assert_eq!(found, [false, true]);

    try_to_change_planted(&client).await;
    for id in ["eu-central-1#x", "x", "us-west-2#y"] {
        let planted = stored(&w.direct, id)
            .await
            .expect("a planted item was deleted");
        assert_eq!(
            planted["Planted"],
            AttributeValue::S("yes".into()),
            "{id} was changed"
        );
    }

    // PartiQL names tables in text: refused on a prefixed table.
    let statement = format!(r#"{{"Statement":"SELECT * FROM \"{TABLE}\""}}"#);
    let response = RawRequest::new("ExecuteStatement", statement)
        .send(sidecar.listen_addr())
        .await;
    assert_eq!(response.status, 400, "{}", response.text());
    assert!(response.error_type().ends_with("ValidationException"));
}

/// Deletes and updates through the sidecar, aimed at the planted items' keys.
async fn try_to_change_planted(client: &Client) {
    client
        .delete_item()
        .table_name(TABLE)
        .set_key(Some(key("x")))
        .send()
        .await
        .expect("DeleteItem");
    client
        .update_item()
        .table_name(TABLE)
        .set_key(Some(key("eu-central-1#x")))
        .update_expression("SET Planted = :no")
        .expression_attribute_values(":no", AttributeValue::S("no".into()))
        .send()
        .await
        .expect("UpdateItem");
    client
        .batch_write_item()
        .request_items(
            TABLE,
            vec![
                WriteRequest::builder()
                    .delete_request(
                        DeleteRequest::builder()
                            .set_key(Some(key("us-west-2#y")))
                            .build()
                            .expect("delete"),
                    )
                    .build(),
            ],
        )
        .send()
        .await
        .expect("BatchWriteItem");
    client
        .transact_write_items()
        .transact_items(
            TransactWriteItem::builder()
                .delete(
                    aws_sdk_dynamodb::types::Delete::builder()
                        .table_name(TABLE)
                        .set_key(Some(key("x")))
                        .build()
                        .expect("delete"),
                )
                .build(),
        )
        .send()
        .await
        .expect("TransactWriteItems");
}

fn get_of(id: &str) -> TransactGetItem {
    TransactGetItem::builder()
        .get(
            aws_sdk_dynamodb::types::Get::builder()
                .table_name(TABLE)
                .set_key(Some(key(id)))
                .build()
                .expect("get"),
        )
        .build()
}

/// Pages of a Scan and of an index Query stop anywhere, foreign items included; following
/// `LastEvaluatedKey` gives every item of this namespace exactly once and nothing else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_crosses_namespaces_and_returns_only_this_one() {
    let w = world().await;
    let sidecar = sidecar("us-east-1", &w.ddb).await;
    let client = sdk_client(&sidecar.endpoint());
    let filler = "f".repeat(2_000);
    let mut mine = BTreeSet::new();
    for n in 0..30 {
        plant(&w.direct, &format!("eu-central-1#{n:02}"), "widget").await;
        let id = format!("{n:02}");
        let requests = vec![
            WriteRequest::builder()
                .put_request(
                    PutRequest::builder()
                        .set_item(Some(item(
                            &id,
                            "x",
                            &[("Name", "widget"), ("Filler", &filler)],
                        )))
                        .build()
                        .expect("put"),
                )
                .build(),
        ];
        client
            .batch_write_item()
            .request_items(TABLE, requests)
            .send()
            .await
            .expect("BatchWriteItem");
        mine.insert(id);
    }
    let mut seen = Vec::new();
    let mut start = None;
    let mut pages = 0;
    loop {
        let page = scan_page(&client, 7, start).await;
        pages += 1;
        seen.extend(ids(page.items()));
        start = page.last_evaluated_key;
        if start.is_none() {
            break;
        }
    }
    assert!(pages >= 9, "{pages} pages of 7 over 60 items");
    assert_eq!(seen.len(), mine.len(), "an item came twice or not at all");
    assert_eq!(seen.into_iter().collect::<BTreeSet<_>>(), mine);

    let mut seen = Vec::new();
    let mut start = None;
    loop {
        let page = index_page(&client, 4, start).await;
        seen.extend(ids(page.items()));
        start = page.last_evaluated_key;
        if start.is_none() {
            break;
        }
    }
    assert_eq!(seen.len(), mine.len());
    assert_eq!(seen.into_iter().collect::<BTreeSet<_>>(), mine);
}

/// What a foreign item planted for [`positions_at_foreign_items_reveal_nothing`] holds in
/// its keys: none of it may reach a client.
const SECRETS: [&str; 3] = ["eu-central-1", "alice", "Payroll"];

/// Pages of one item each stop on every foreign item. Each such `LastEvaluatedKey` is one
/// sealed attribute, holding none of the foreign item's partition, sort or index key; paging
/// through them gives exactly this namespace's items; a position with one character changed
/// is refused like a bad starting key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn positions_at_foreign_items_reveal_nothing() {
    let w = world().await;
    let sidecar = sidecar("us-east-1", &w.ddb).await;
    let client = sdk_client(&sidecar.endpoint());
    let mut mine = BTreeSet::new();
    for n in 0..6 {
        let (id, category) = (format!("eu-central-1#alice-{n}"), format!("Payroll-{n}"));
        w.direct
            .put_item()
            .table_name(TABLE)
            .set_item(Some(item(&id, &category, &[("Name", "widget")])))
            .send()
            .await
            .expect("plant");
        let id = format!("bob-{n}");
        client
            .put_item()
            .table_name(TABLE)
            .set_item(Some(item(&id, "x", &[("Name", "widget")])))
            .send()
            .await
            .expect("PutItem");
        mine.insert(id);
    }

    let mut positions = Vec::new();
    let mut seen = BTreeSet::new();
    let mut start = None;
    loop {
        let page = scan_page(&client, 1, start).await;
        seen.extend(ids(page.items()));
        positions.extend(page.last_evaluated_key.clone());
        start = page.last_evaluated_key;
        if start.is_none() {
            break;
        }
    }
    assert_eq!(seen, mine);
    let scan_sealed = sealed_positions(&positions);
    assert_eq!(
        scan_sealed.len(),
        6,
        "a page of one stops on each foreign item"
    );

    let mut positions = Vec::new();
    let mut seen = BTreeSet::new();
    let mut start = None;
    loop {
        let page = index_page(&client, 1, start).await;
        seen.extend(ids(page.items()));
        positions.extend(page.last_evaluated_key.clone());
        start = page.last_evaluated_key;
        if start.is_none() {
            break;
        }
    }
    assert_eq!(seen, mine);
    assert_eq!(sealed_positions(&positions).len(), 6);

    let sealed = scan_sealed[0].as_str();
    let at = sealed.len() / 2;
    let flipped = if sealed.as_bytes()[at] == b'A' {
        "B"
    } else {
        "A"
    };
    let altered = format!("{}{flipped}{}", &sealed[..at], &sealed[at + 1..]);
    let refused = client
        .scan()
        .table_name(TABLE)
        .exclusive_start_key("ItemID", AttributeValue::S(altered))
        .send()
        .await
        .expect_err("an altered position");
    let refused = refused.into_service_error();
    assert_eq!(refused.meta().code(), Some("ValidationException"));
    let message = refused.meta().message().unwrap_or_default();
    assert!(
        message.starts_with("The provided starting key is invalid"),
        "{message}"
    );
}

/// The sealed positions among `positions`, after checking that none shows a foreign key and
/// that each is one attribute.
fn sealed_positions(positions: &[Item]) -> Vec<String> {
    let mut sealed = Vec::new();
    for position in positions {
        let shown = format!("{position:?}");
        for secret in SECRETS {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        match position.get("ItemID") {
            Some(AttributeValue::S(id)) if id.starts_with('\0') => {
                assert_eq!(position.len(), 1, "{shown}");
                sealed.push(id.clone());
            }
            Some(AttributeValue::S(id)) => assert!(id.starts_with("bob-"), "{shown}"),
            _ => panic!("a position without ItemID: {shown}"),
        }
    }
    sealed
}

/// Two sidecars with different home regions on one table: one key, two items, each
/// sidecar seeing only its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_home_regions_see_disjoint_namespaces() {
    let w = world().await;
    let east = sidecar("us-east-1", &w.ddb).await;
    let europe = sidecar("eu-central-1", &w.ddb).await;
    for (sidecar, owner) in [(&east, "east"), (&europe, "europe")] {
        sdk_client(&sidecar.endpoint())
            .put_item()
            .table_name(TABLE)
            .set_item(Some(item("same", "x", &[("Owner", owner)])))
            .send()
            .await
            .expect("PutItem");
    }
    for (sidecar, owner) in [(&east, "east"), (&europe, "europe")] {
        let client = sdk_client(&sidecar.endpoint());
        let got = client
            .get_item()
            .table_name(TABLE)
            .set_key(Some(key("same")))
            .send()
            .await
            .expect("GetItem")
            .item
            .expect("item");
        assert_eq!(got["Owner"], AttributeValue::S(owner.into()));
        let scanned = client.scan().table_name(TABLE).send().await.expect("Scan");
        assert_eq!(scanned.count, 1);
        assert_eq!(scanned.items()[0]["Owner"], AttributeValue::S(owner.into()));
    }
    assert!(stored(&w.direct, "us-east-1#same").await.is_some());
    assert!(stored(&w.direct, "eu-central-1#same").await.is_some());
}

/// Key conditions, conditions and filters that compare the partition key get prefixed
/// values; a `:value` also used for another attribute keeps its plain value there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_compare_the_key_with_prefixed_values() {
    let w = world().await;
    let sidecar = sidecar("us-east-1", &w.ddb).await;
    let client = sdk_client(&sidecar.endpoint());
    let filler = "f".repeat(2_000);
    for n in 0..20 {
        let alias = if n % 2 == 0 { "q" } else { "other" };
        client
            .put_item()
            .table_name(TABLE)
            .set_item(Some(item(
                "q",
                &format!("c{n:02}"),
                &[("Alias", alias), ("Filler", &filler)],
            )))
            .send()
            .await
            .expect("PutItem");
        plant(&w.direct, "eu-central-1#q", "widget").await;
    }
    let mut categories = Vec::new();
    let mut start = None;
    loop {
        let page = client
            .query()
            .table_name(TABLE)
            .key_condition_expression("ItemID = :id")
            .expression_attribute_values(":id", AttributeValue::S("q".into()))
            .limit(6)
            .set_exclusive_start_key(start)
            .send()
            .await
            .expect("Query page");
        for item in page.items() {
            assert_eq!(item["ItemID"], AttributeValue::S("q".into()));
            categories.push(item["Category"].as_s().expect("Category").clone());
        }
        start = page.last_evaluated_key;
        if start.is_none() {
            break;
        }
    }
    let expected: Vec<String> = (0..20).map(|n| format!("c{n:02}")).collect();
    assert_eq!(categories, expected, "every item once, in order");

    let shared = client
        .query()
        .table_name(TABLE)
        .key_condition_expression("#k = :v AND begins_with(Category, :c)")
        .filter_expression("Alias = :v")
        .expression_attribute_names("#k", "ItemID")
        .expression_attribute_values(":v", AttributeValue::S("q".into()))
        .expression_attribute_values(":c", AttributeValue::S("c0".into()))
        .send()
        .await
        .expect("Query with a shared value");
    assert_eq!(shared.count, 5, "c00, c02, c04, c06, c08 have Alias q");

    let guarded = client
        .put_item()
        .table_name(TABLE)
        .set_item(Some(item("q", "c00", &[("Alias", "changed")])))
        .condition_expression("ItemID = :me")
        .expression_attribute_values(":me", AttributeValue::S("q".into()))
        .send()
        .await;
    assert!(
        guarded.is_ok(),
        "the condition on the key holds: {guarded:?}"
    );
    let refused = client
        .put_item()
        .table_name(TABLE)
        .set_item(Some(item("q", "c01", &[])))
        .condition_expression("ItemID IN (:a, :b)")
        .expression_attribute_values(":a", AttributeValue::S("eu-central-1#q".into()))
        .expression_attribute_values(":b", AttributeValue::S("zz".into()))
        .send()
        .await
        .expect_err("no key of this namespace matches");
    assert!(
        refused
            .into_service_error()
            .is_conditional_check_failed_exception()
    );
}

/// The twin of `GlobalCatalog` that stores the same items under plain keys, read directly:
/// what DynamoDB answers on plain keys, for the sidecar's answers to be held against.
const TWIN: &str = "PlainTwin";

/// A filter's items, by `ItemID`, or the error's code and message.
type Answer = Result<BTreeSet<String>, (String, String)>;

async fn scan_filtered(
    client: &Client,
    table: &str,
    filter: &str,
    values: &[(&str, AttributeValue)],
) -> Answer {
    let mut scan = client.scan().table_name(table).filter_expression(filter);
    if filter.contains("#k") {
        scan = scan.expression_attribute_names("#k", "ItemID");
    }
    for (name, value) in values {
        scan = scan.expression_attribute_values(*name, value.clone());
    }
    match scan.send().await {
        Ok(page) => Ok(ids(page.items())),
        Err(e) => {
            let e = e.into_service_error();
            let meta = e.meta();
            Err((
                meta.code().unwrap_or_default().to_owned(),
                meta.message().unwrap_or_default().to_owned(),
            ))
        }
    }
}

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.into())
}

/// Every use of the partition key in a filter answers through the sidecar as DynamoDB
/// answers it on plain keys, or is refused with a `ValidationException` naming `key_prefix`:
/// `contains` on the key is a substring test, never a prefix test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_use_of_the_key_answers_as_on_plain_keys_or_is_refused() {
    let w = world().await;
    support::create_table(&w.direct, TWIN).await;
    let sidecar = sidecar("us-east-1", &w.ddb).await;
    let client = sdk_client(&sidecar.endpoint());
    for (id, other) in [("abc", "abc"), ("xbz", "b"), ("qqq", "zzz")] {
        let item = item(id, "x", &[("Peer", other)]);
        let put = client
            .put_item()
            .table_name(TABLE)
            .set_item(Some(item.clone()));
        put.send().await.expect("PutItem through the sidecar");
        let put = w.direct.put_item().table_name(TWIN).set_item(Some(item));
        put.send().await.expect("PutItem to the twin");
    }
    let exact: &[(&str, &[(&str, AttributeValue)])] = &[
        ("contains(ItemID, :v)", &[(":v", s("b"))]),
        ("contains(#k, :v)", &[(":v", s("bc"))]),
        ("NOT contains(ItemID, :v) OR ItemID = :v", &[(":v", s("b"))]),
        ("contains(ItemID, :v)", &[(":v", s("qq"))]),
        ("attribute_type(ItemID, :t)", &[(":t", s("S"))]),
        ("attribute_type(#k, :t)", &[(":t", s("N"))]),
        ("attribute_exists(ItemID)", &[]),
        ("ItemID = :v", &[(":v", s("abc"))]),
        ("ItemID <> :v", &[(":v", s("abc"))]),
        ("ItemID < :v", &[(":v", s("q"))]),
        ("ItemID >= :v", &[(":v", s("qqq"))]),
        (":v > #k", &[(":v", s("b"))]),
        (
            "ItemID BETWEEN :v AND :w",
            &[(":v", s("abd")), (":w", s("xz"))],
        ),
        ("ItemID IN (:v, :w)", &[(":v", s("qqq")), (":w", s("b"))]),
        ("begins_with(ItemID, :v)", &[(":v", s("xb"))]),
    ];
    for (filter, values) in exact {
        let via = scan_filtered(&client, TABLE, filter, values).await;
        let plain = scan_filtered(&w.direct, TWIN, filter, values).await;
        assert!(via.is_ok(), "{filter} {values:?}: {via:?}");
        assert_eq!(via, plain, "{filter} {values:?}");
    }
    let b = scan_filtered(&client, TABLE, "contains(ItemID, :v)", &[(":v", s("b"))]).await;
    assert_eq!(b, Ok(BTreeSet::from(["abc".to_owned(), "xbz".to_owned()])));
    let refused: &[(&str, &[(&str, AttributeValue)])] = &[
        ("contains(ItemID, :v)", &[(":v", s("us-east"))]),
        ("contains(ItemID, :v)", &[(":v", s("east"))]),
        ("contains(ItemID, :v)", &[(":v", s("1#a"))]),
        ("contains(#k, :v)", &[(":v", s("#"))]),
        (
            "size(ItemID) = :n",
            &[(":n", AttributeValue::N("3".into()))],
        ),
        ("ItemID = Peer", &[]),
        ("ItemID < Peer", &[]),
        ("begins_with(Peer, ItemID)", &[]),
        ("contains(Peer, #k)", &[]),
        ("ItemID = :n", &[(":n", AttributeValue::N("3".into()))]),
    ];
    for (filter, values) in refused {
        let via = scan_filtered(&client, TABLE, filter, values).await;
        let Err((code, message)) = &via else {
            panic!("{filter} {values:?}: answered {via:?}");
        };
        assert_eq!(code, "ValidationException", "{filter}: {message}");
        assert!(message.contains("key_prefix"), "{filter}: {message}");
    }
    conditions_and_updates_on_the_key(&client).await;
}

/// A conditional delete with `contains` on the key decides as on plain keys; an update that
/// would copy the stored key into another attribute is refused.
async fn conditions_and_updates_on_the_key(client: &Client) {
    let delete = |sought: &str| {
        client
            .delete_item()
            .table_name(TABLE)
            .set_key(Some(key("abc")))
            .condition_expression("contains(ItemID, :v)")
            .expression_attribute_values(":v", s(sought))
            .send()
    };
    let missed = delete("zz").await.expect_err("abc holds no zz");
    assert!(
        missed
            .into_service_error()
            .is_conditional_check_failed_exception()
    );
    delete("bc").await.expect("abc holds bc");
    for update in [
        "SET Mirror = ItemID",
        "SET Mirror = if_not_exists(ItemID, :v)",
        "SET Mirror = list_append(:l, #k)",
    ] {
        let mut request = client
            .update_item()
            .table_name(TABLE)
            .set_key(Some(key("xbz")))
            .update_expression(update);
        if update.contains(":v") {
            request = request.expression_attribute_values(":v", s("v"));
        }
        if update.contains(":l") {
            request = request.expression_attribute_values(":l", AttributeValue::L(Vec::new()));
        }
        if update.contains("#k") {
            request = request.expression_attribute_names("#k", "ItemID");
        }
        let refused = request.send().await.expect_err(update).into_service_error();
        assert_eq!(
            refused.meta().code(),
            Some("ValidationException"),
            "{update}"
        );
        let message = refused.meta().message().unwrap_or_default();
        assert!(message.contains("key_prefix"), "{update}: {message}");
    }
}

/// boto3 (with its paginator) and the AWS CLI on a prefixed table: plain keys out, prefixed
/// keys in storage, and botocore's own `x-amz-crc32` check passes on every rewritten answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boto3_and_the_cli_see_plain_keys() {
    let w = world().await;
    let sidecar = sidecar("us-east-1", &w.ddb).await;
    plant(&w.direct, "eu-central-1#py", "widget").await;
    let result = support::run_boto3(BOTO3_PREFIXED, &sidecar.endpoint()).await;
    assert_eq!(result["get"], "py");
    assert_eq!(
        result["queried"],
        serde_json::json!(["c0", "c1", "c2", "c3", "c4", "c5"])
    );
    assert_eq!(result["scanned"], serde_json::json!(["py"]));
    assert_eq!(result["conflict_item"], "py");
    assert!(stored_any(&w.direct, "us-east-1#py").await);

    let cli = std::process::Command::new("aws")
        .args([
            "dynamodb",
            "get-item",
            "--endpoint-url",
            &sidecar.endpoint(),
            "--region",
            "us-east-1",
        ])
        .args(["--table-name", TABLE, "--output", "json"])
        .args(["--key", r#"{"ItemID":{"S":"py"},"Category":{"S":"c0"}}"#])
        .env("AWS_ACCESS_KEY_ID", "AKIDCLIENT")
        .env("AWS_SECRET_ACCESS_KEY", "client-secret")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .output()
        .expect("the AWS CLI (`aws`) must be on PATH (scripts/test installs it)");
    assert!(
        cli.status.success(),
        "{}",
        String::from_utf8_lossy(&cli.stderr)
    );
    let got: serde_json::Value = serde_json::from_slice(&cli.stdout).expect("CLI JSON");
    assert_eq!(got["Item"]["ItemID"]["S"], "py");
}

async fn stored_any(direct: &Client, id: &str) -> bool {
    direct
        .query()
        .table_name(TABLE)
        .key_condition_expression("ItemID = :id")
        .expression_attribute_values(":id", AttributeValue::S(id.into()))
        .send()
        .await
        .expect("Query direct")
        .count
        > 0
}

const BOTO3_PREFIXED: &str = r#"
import json, sys
import boto3
client = boto3.client(
    "dynamodb", endpoint_url=sys.argv[1], region_name="us-east-1",
    aws_access_key_id="AKIDCLIENT", aws_secret_access_key="client-secret")
for n in range(6):
    client.put_item(TableName="GlobalCatalog",
                    Item={"ItemID": {"S": "py"}, "Category": {"S": f"c{n}"}, "Name": {"S": "widget"}})
got = client.get_item(TableName="GlobalCatalog", Key={"ItemID": {"S": "py"}, "Category": {"S": "c0"}})
pages = client.get_paginator("query").paginate(
    TableName="GlobalCatalog", KeyConditionExpression="ItemID = :id",
    ExpressionAttributeValues={":id": {"S": "py"}}, PaginationConfig={"PageSize": 4})
queried = [i["Category"]["S"] for page in pages for i in page["Items"]]
scanned = sorted({i["ItemID"]["S"] for page in client.get_paginator("scan").paginate(
    TableName="GlobalCatalog", PaginationConfig={"PageSize": 2}) for i in page["Items"]})
try:
    client.put_item(TableName="GlobalCatalog",
                    Item={"ItemID": {"S": "py"}, "Category": {"S": "c0"}},
                    ConditionExpression="attribute_not_exists(ItemID)",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD")
    conflict = None
except client.exceptions.ConditionalCheckFailedException as error:
    conflict = error.response["Item"]["ItemID"]["S"]
print(json.dumps({"get": got["Item"]["ItemID"]["S"], "queried": queried, "scanned": scanned,
                  "conflict_item": conflict}))
"#;
