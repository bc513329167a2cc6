//! `globalscale audit history` as an operator runs it: the binary on a config file, reading
//! records planted straight into DynamoDB Local's audit table through the sidecar's routing,
//! with the partition key behind the table's resolved `key_prefix`.

#![allow(clippy::expect_used)]

mod support;

use std::collections::HashMap;
use std::path::Path;
use std::process::Output;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use support::{DynamoLocal, SidecarConfig, TABLE, run_command, sdk_client};

const AUDIT_TABLE: &str = "GlobalCatalog-audit";
/// `item-1`/`books` as a `us-east-1` sidecar stores it.
const ITEM_KEY: &str = "GlobalCatalog#us-east-1#item-1#books";

/// A config whose home region is `us-east-1`, `GlobalCatalog` prefixed and audited into
/// [`AUDIT_TABLE`].
fn config(ddb: &DynamoLocal, spool_dir: &Path) -> SidecarConfig {
    SidecarConfig::new()
        .region("us-east-1", &ddb.endpoint(0))
        .table_line("key_prefix = \"{region}#\"")
        .table_line("audit = true")
        .section(&format!(
            "[audit]\ntable = {AUDIT_TABLE:?}\nspool_dir = {:?}",
            spool_dir.display().to_string()
        ))
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

async fn create_audit_table(client: &Client) {
    support::create_keyed_table(client, AUDIT_TABLE, "ItemKey", "EventId").await;
}

/// The EventId of the `seq`th record: a 26-character ULID, ordered as `seq`.
fn event_id(seq: u32) -> String {
    format!("01JDX{seq:021}")
}

/// The record's `Timestamp`, `seq` seconds into the minute.
fn timestamp(seq: u32) -> String {
    format!("2026-11-26T07:50:{seq:02}.000Z")
}

/// The `seq`th record, of `operation` on `item_key`; `padding` bytes of new image make
/// records large enough that one item's history spans more than one `Query` page.
fn record(
    item_key: &str,
    seq: u32,
    operation: &str,
    padding: usize,
) -> HashMap<String, AttributeValue> {
    let s = |v: &str| AttributeValue::S(v.to_owned());
    let key = HashMap::from([
        ("ItemID".to_owned(), s("item-1")),
        ("Category".to_owned(), s("books")),
    ]);
    let mut image = key.clone();
    image.insert("Blob".to_owned(), s(&"x".repeat(padding)));
    HashMap::from([
        ("ItemKey".to_owned(), s(item_key)),
        ("EventId".to_owned(), s(&event_id(seq))),
        ("Table".to_owned(), s(TABLE)),
        ("Operation".to_owned(), s(operation)),
        ("Region".to_owned(), s("us-east-1")),
        ("Timestamp".to_owned(), s(&timestamp(seq))),
        ("Outcome".to_owned(), s("accepted")),
        ("Version".to_owned(), AttributeValue::N(seq.to_string())),
        ("Principal".to_owned(), s("checkout-service")),
        ("Key".to_owned(), AttributeValue::M(key)),
        ("NewImage".to_owned(), AttributeValue::M(image)),
    ])
}

/// Three records of [`ITEM_KEY`] (planted newest first), one of another item, and one of
/// the same item as a `eu-west-1` sidecar stores it.
async fn plant_records(client: &Client) {
    let records = [
        record(ITEM_KEY, 3, "DeleteItem", 0),
        record(ITEM_KEY, 1, "PutItem", 0),
        record(ITEM_KEY, 2, "UpdateItem", 0),
        record("GlobalCatalog#us-east-1#item-2#books", 4, "PutItem", 0),
        record("GlobalCatalog#eu-west-1#item-1#books", 5, "PutItem", 0),
    ];
    for item in records {
        put(client, item).await;
    }
}

/// Records for `item_key` large enough (~350 KB each) that they span more than one `Query`
/// page; returns how many.
async fn plant_long_history(client: &Client, item_key: &str) -> u32 {
    let count = 4;
    for seq in 1..=count {
        put(client, record(item_key, seq, "PutItem", 350 * 1024)).await;
    }
    let first_page = client
        .query()
        .table_name(AUDIT_TABLE)
        .key_condition_expression("ItemKey = :k")
        .expression_attribute_values(":k", AttributeValue::S(item_key.to_owned()))
        .send()
        .await
        .expect("Query audit records");
    assert!(
        first_page.last_evaluated_key.is_some(),
        "the records fit in one page ({} items): paging would go untested",
        first_page.count
    );
    count
}

async fn put(client: &Client, item: HashMap<String, AttributeValue>) {
    client
        .put_item()
        .table_name(AUDIT_TABLE)
        .set_item(Some(item))
        .send()
        .await
        .expect("PutItem audit record");
}

/// Where each space-separated word of `line` starts.
fn word_starts(line: &str) -> Vec<usize> {
    let bytes = line.as_bytes();
    (0..bytes.len())
        .filter(|&i| bytes[i] != b' ' && (i == 0 || bytes[i - 1] == b' '))
        .collect()
}

const HISTORY: [&str; 6] = ["audit", "history", "--table", TABLE, "--key", "item-1"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prints_one_items_history_oldest_first() {
    let ddb = DynamoLocal::single().await;
    let client = sdk_client(&ddb.endpoint(0));
    create_audit_table(&client).await;
    plant_records(&client).await;
    let spool = tempfile::tempdir().expect("spool dir");
    let config = config(&ddb, spool.path());

    let output = run_command(&config, &[&HISTORY[..], &["--sort-key", "books"]].concat()).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5, "{text}");
    let columns = [
        "TIMESTAMP",
        "OPERATION",
        "OUTCOME",
        "VERSION",
        "PRINCIPAL",
        "REGION",
        "EVENT ID",
    ];
    let header_starts: Vec<Option<usize>> = columns.iter().map(|c| lines[0].find(c)).collect();
    for row in &lines[1..4] {
        let starts: Vec<Option<usize>> = word_starts(row).into_iter().map(Some).collect();
        assert_eq!(starts, header_starts, "columns not aligned:\n{text}");
    }
    let operations = ["PutItem", "UpdateItem", "DeleteItem"];
    for (line, (seq, operation)) in lines[1..4].iter().zip((1..).zip(operations)) {
        let columns: Vec<&str> = line.split_whitespace().collect();
        let expected = [
            timestamp(seq),
            operation.to_owned(),
            "accepted".to_owned(),
            seq.to_string(),
            "checkout-service".to_owned(),
            "us-east-1".to_owned(),
            event_id(seq),
        ];
        assert_eq!(columns, expected, "{text}");
    }
    assert_eq!(
        lines[4],
        format!("3 records for {ITEM_KEY} in {AUDIT_TABLE}")
    );
    assert!(
        !text.contains(&event_id(4)) && !text.contains(&event_id(5)),
        "another item's record:\n{text}"
    );

    let output = run_command(
        &config,
        &[&HISTORY[..], &["--sort-key", "books", "--json"]].concat(),
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let records: Vec<serde_json::Value> =
        serde_json::from_slice(&output.stdout).expect("stdout is one JSON array");
    assert_eq!(records.len(), 3);
    for (record, seq) in records.iter().zip(1u32..) {
        assert_eq!(record["ItemKey"], serde_json::json!({"S": ITEM_KEY}));
        assert_eq!(record["EventId"], serde_json::json!({"S": event_id(seq)}));
        assert_eq!(record["Version"], serde_json::json!({"N": seq.to_string()}));
        assert_eq!(
            record["Key"]["M"]["ItemID"],
            serde_json::json!({"S": "item-1"})
        );
    }

    let long = "GlobalCatalog#us-east-1#item-long#books";
    let count = plant_long_history(&client, long).await;
    let output = run_command(
        &config,
        &[
            "audit",
            "history",
            "--table",
            TABLE,
            "--key",
            "item-long",
            "--sort-key",
            "books",
        ],
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(
        text.ends_with(&format!("\n{count} records for {long} in {AUDIT_TABLE}\n")),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn home_region_and_absent_items() {
    let ddb = DynamoLocal::single().await;
    let client = sdk_client(&ddb.endpoint(0));
    let spool = tempfile::tempdir().expect("spool dir");
    let config = config(&ddb, spool.path());

    // The table has a sort key: a lookup without one names the flag it lacks, exit 2, rather
    // than answering "no audit records" for a key no record can have.
    let output = run_command(&config, &HISTORY).await;
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("table GlobalCatalog has a sort key (Category)")
            && stderr(&output).contains("--sort-key"),
        "{}",
        stderr(&output)
    );
    assert!(output.stdout.is_empty(), "{}", stdout(&output));

    // No audit table yet: DynamoDB's own error, exit 1.
    let output = run_command(&config, &[&HISTORY[..], &["--sort-key", "books"]].concat()).await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("ResourceNotFoundException"),
        "{}",
        stderr(&output)
    );
    assert!(output.stdout.is_empty(), "{}", stdout(&output));

    create_audit_table(&client).await;
    plant_records(&client).await;
    let output = run_command(
        &config,
        &[
            &HISTORY[..],
            &["--sort-key", "books", "--home-region", "eu-west-1"],
        ]
        .concat(),
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains(&event_id(5)), "{text}");
    assert!(
        text.ends_with(&format!(
            "\n1 record for GlobalCatalog#eu-west-1#item-1#books in {AUDIT_TABLE}\n"
        )),
        "{text}"
    );

    let output = run_command(
        &config,
        &[
            "audit",
            "history",
            "--table",
            TABLE,
            "--key",
            "item-9",
            "--sort-key",
            "books",
        ],
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(
        stdout(&output),
        format!("no audit records for GlobalCatalog#us-east-1#item-9#books in {AUDIT_TABLE}\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_without_audit_exits_2() {
    let config = SidecarConfig::new().region("us-east-1", "http://127.0.0.1:9");
    let output = run_command(&config, &HISTORY).await;
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains("[audit]"), "{}", stderr(&output));
    assert!(output.stdout.is_empty(), "{}", stdout(&output));
}
