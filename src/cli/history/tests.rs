use serde_json::json;

use super::*;

const CONFIG: &str = r#"
[[regions]]
name = "us-east-1"
endpoint = "http://127.0.0.1:8001"

[[regions]]
name = "eu-west-1"
endpoint = "http://127.0.0.1:8002"

[[tables]]
name = "GlobalCatalog"
partition_key = "ItemID"
key_prefix = "{region}#"

[[tables]]
name = "Plain"
"#;

fn lookup(table: &str, key: &str, sort_key: Option<&str>, home_region: Option<&str>) -> Lookup {
    Lookup {
        table: table.into(),
        key: key.into(),
        sort_key: sort_key.map(Into::into),
        home_region: home_region.map(Into::into),
    }
}

#[test]
fn item_key_carries_the_stored_partition_key() {
    let config = Config::from_toml_str(CONFIG).unwrap();
    let cases = [
        (
            lookup("GlobalCatalog", "item-1", Some("books"), None),
            "GlobalCatalog#us-east-1#item-1#books",
        ),
        (
            lookup("GlobalCatalog", "item-1", None, Some("eu-west-1")),
            "GlobalCatalog#eu-west-1#item-1",
        ),
        (lookup("Plain", "42", Some("x"), None), "Plain#42#x"),
        // A home region means nothing to a table without a prefix.
        (lookup("Plain", "42", None, Some("eu-west-1")), "Plain#42"),
        (lookup("Unmanaged", "k", None, None), "Unmanaged#k"),
    ];
    for (lookup, expected) in cases {
        assert_eq!(item_key(&config, &lookup), expected, "{lookup:?}");
    }
}

#[test]
fn item_key_escapes_the_parts_and_names_the_old_key_when_it_differs() {
    let config = Config::from_toml_str(CONFIG).unwrap();
    let hashed = lookup("GlobalCatalog", "a#b", Some("c"), None);
    assert_eq!(
        item_key(&config, &hashed),
        r"GlobalCatalog#us-east-1#a\#b#c"
    );
    assert_eq!(
        legacy_item_key(&config, &hashed).as_deref(),
        Some("GlobalCatalog#us-east-1#a#b#c")
    );
    // A key without `#` or `\` was always spelled this way: one Query is enough.
    let plain = lookup("GlobalCatalog", "item-1", Some("books"), None);
    assert_eq!(legacy_item_key(&config, &plain), None);
    // Too long for DynamoDB's key: the hash, as the record stores it.
    let long = lookup("Plain", &"k".repeat(3000), None, None);
    assert!(item_key(&config, &long).starts_with("Plain\\sha256:"));
}

#[test]
fn old_records_under_a_shared_key_are_told_apart_by_their_key() {
    let record = |pk: &str, sk: &str| -> Item {
        serde_json::from_value(json!({
            "ItemKey": {"S": "T#a#b#c"},
            "Key": {"M": {"pk": {"S": pk}, "sk": {"S": sk}}}
        }))
        .unwrap()
    };
    let wanted = lookup("T", "a#b", Some("c"), None);
    assert!(same_item(&record("a#b", "c"), &wanted));
    assert!(!same_item(&record("a", "b#c"), &wanted));
    let no_key: Item = serde_json::from_value(json!({"ItemKey": {"S": "T#a#b#c"}})).unwrap();
    assert!(!same_item(&no_key, &wanted));
}

#[test]
fn query_asks_for_one_item_key_oldest_first_and_pages_on() {
    let first: Value = serde_json::from_slice(&query_body("Audit", "T#k", None)).unwrap();
    assert_eq!(first["TableName"], "Audit");
    assert_eq!(first["ExpressionAttributeNames"]["#key"], "ItemKey");
    assert_eq!(
        first["ExpressionAttributeValues"][":key"],
        json!({"S": "T#k"})
    );
    assert_eq!(first["ScanIndexForward"], true);
    assert!(first.get("ExclusiveStartKey").is_none());
    let start = json!({"ItemKey": {"S": "T#k"}, "EventId": {"S": "01J"}});
    let next: Value = serde_json::from_slice(&query_body("Audit", "T#k", Some(&start))).unwrap();
    assert_eq!(next["ExclusiveStartKey"], start);
}

#[test]
fn pages_and_errors_are_read_from_the_answer() {
    let body =
        br#"{"Items":[{"EventId":{"S":"a"}}],"Count":1,"LastEvaluatedKey":{"EventId":{"S":"a"}}}"#;
    let page = read_page("Audit", StatusCode::OK, body).unwrap();
    assert_eq!(page.items.len(), 1);
    assert!(page.last_evaluated_key.is_some());
    let last = read_page("Audit", StatusCode::OK, br#"{"Count":0}"#).unwrap();
    assert!(last.items.is_empty() && last.last_evaluated_key.is_none());

    let missing = br#"{"__type":"com.amazonaws.dynamodb.v20120810#ResourceNotFoundException","message":"Requested resource not found"}"#;
    let err = read_page("Audit", StatusCode::BAD_REQUEST, missing).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Query on Audit failed: ResourceNotFoundException: Requested resource not found"
    );
    assert_eq!(err.exit_code(), 1);
    let html = read_page(
        "Audit",
        StatusCode::BAD_GATEWAY,
        b"<html>bad gateway</html>",
    )
    .unwrap_err();
    assert_eq!(
        html.to_string(),
        "Query on Audit failed: 502 Bad Gateway: <html>bad gateway</html>"
    );
}

#[test]
fn records_read_strings_and_numbers_and_miss_the_rest() {
    let item: Item = serde_json::from_value(json!({
        "Timestamp": {"S": "2026-11-26T07:50:01.123Z"},
        "Version": {"N": "7"},
        "Principal": {"NULL": true},
        "EventId": {"S": "01JDX"},
    }))
    .unwrap();
    let record = Record::from_item(&item);
    assert_eq!(record.timestamp, Some("2026-11-26T07:50:01.123Z"));
    assert_eq!(record.version, Some("7"));
    assert_eq!(record.principal, None);
    assert_eq!(record.operation, None);
}

#[test]
fn table_aligns_columns_and_counts_records() {
    let records = [
        Record {
            timestamp: Some("2026-11-26T07:50:01.123Z"),
            operation: Some("PutItem"),
            outcome: Some("accepted"),
            version: Some("1"),
            principal: Some("app"),
            region: Some("us-east-1"),
            event_id: Some("01JDX0000000000000000000A1"),
        },
        Record {
            timestamp: Some("2026-11-26T07:50:02.000Z"),
            operation: Some("TransactWriteItems"),
            outcome: Some("unknown"),
            event_id: Some("01JDX0000000000000000000A2"),
            ..Record::default()
        },
    ];
    let expected = "\
TIMESTAMP                 OPERATION           OUTCOME   VERSION  PRINCIPAL  REGION     EVENT ID
2026-11-26T07:50:01.123Z  PutItem             accepted  1        app        us-east-1  01JDX0000000000000000000A1
2026-11-26T07:50:02.000Z  TransactWriteItems  unknown   -        -          -          01JDX0000000000000000000A2
2 records for T#k in Audit
";
    assert_eq!(render_table(&records, "T#k", "Audit"), expected);
    let one = render_table(&records[..1], "T#k", "Audit");
    assert!(one.ends_with("\n1 record for T#k in Audit\n"), "{one}");
}

#[test]
fn no_records_is_one_line() {
    assert_eq!(
        render_table(&[], "T#k", "Audit"),
        "no audit records for T#k in Audit\n"
    );
}

#[tokio::test]
async fn a_config_without_audit_is_a_usage_error_and_prints_nothing() {
    let config = Config::from_toml_str(CONFIG).unwrap();
    let mut out = Vec::new();
    let lookup = lookup("GlobalCatalog", "item-1", None, None);
    let err = run(config, &lookup, Format::Table, &mut out)
        .await
        .unwrap_err();
    assert!(matches!(err, HistoryError::NoAuditSection), "{err}");
    assert_eq!(err.exit_code(), 2);
    assert!(out.is_empty());
}
