//! Audit mirroring end to end, against DynamoDB Local with the Rust SDK and boto3: one record
//! per item written, with every attribute; none for a write that failed; none lost when the
//! sidecar is killed with `kill -9`, when the audit table is deleted under load, when the
//! spool fills up (writes are refused with a 503 instead) or its tail is torn; and the spool
//! shipped on SIGTERM before the process exits.

#![allow(clippy::expect_used)]

mod support;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Put, TransactWriteItem, Update};
use support::{
    DynamoLocal, Mode, Record, RegionFixture, Sidecar, SidecarConfig, SidecarProcess, TABLE,
    audit_records, audit_section, audited, create_audit_table, create_global_catalog,
    delete_audit_table, item, metric, put_request, put_status, run_boto3, s, sdk_client,
    sdk_client_with, spool_dir, wait_for_records,
};

/// The records of one item, oldest first.
fn history<'a>(records: &'a [Record], item_key: &str) -> Vec<&'a Record> {
    let mut found: Vec<&Record> = records
        .iter()
        .filter(|r| s(r, "ItemKey") == item_key)
        .collect();
    found.sort_by(|a, b| s(a, "EventId").cmp(s(b, "EventId")));
    found
}

fn image<'a>(record: &'a Record, name: &str) -> Option<&'a HashMap<String, AttributeValue>> {
    record
        .get(name)
        .map(|v| v.as_m().expect("an image is a map"))
}

fn n(record: &Record, name: &str) -> Option<String> {
    record
        .get(name)
        .map(|v| v.as_n().expect("a number").clone())
}

async fn put(client: &Client, id: &str, extra: &[(&str, &str)]) {
    let answer = client
        .put_item()
        .table_name(TABLE)
        .set_item(Some(item(id, "x", extra)))
        .send()
        .await
        .expect("PutItem");
    // The old image the record asked for is not the client's to see.
    assert!(answer.attributes.is_none(), "{answer:?}");
}

async fn write_every_kind(client: &Client) {
    put(client, "a", &[("Name", "n1")]).await;
    client
        .update_item()
        .table_name(TABLE)
        .set_key(Some(item("a", "x", &[])))
        .update_expression("SET #n = :n")
        .expression_attribute_names("#n", "Name")
        .expression_attribute_values(":n", AttributeValue::S("n2".into()))
        .send()
        .await
        .expect("UpdateItem");
    let deleted = client
        .delete_item()
        .table_name(TABLE)
        .set_key(Some(item("a", "x", &[])))
        .send()
        .await
        .expect("DeleteItem");
    assert!(deleted.attributes.is_none());
    let refused = client
        .put_item()
        .table_name(TABLE)
        .set_item(Some(item("refused", "x", &[])))
        .condition_expression("attribute_exists(ItemID)")
        .send()
        .await
        .expect_err("a failed condition");
    assert!(
        refused
            .as_service_error()
            .is_some_and(aws_sdk_dynamodb::operation::put_item::PutItemError::is_conditional_check_failed_exception),
        "{refused:?}"
    );
    client
        .batch_write_item()
        .request_items(TABLE, vec![put_request("b"), put_request("c")])
        .send()
        .await
        .expect("BatchWriteItem");
    let transaction = [
        TransactWriteItem::builder()
            .put(
                Put::builder()
                    .table_name(TABLE)
                    .set_item(Some(item("d", "x", &[])))
                    .build()
                    .expect("Put"),
            )
            .build(),
        TransactWriteItem::builder()
            .update(
                Update::builder()
                    .table_name(TABLE)
                    .set_key(Some(item("b", "x", &[])))
                    .update_expression("SET Tag = :t")
                    .expression_attribute_values(":t", AttributeValue::S("t".into()))
                    .build()
                    .expect("Update"),
            )
            .build(),
        TransactWriteItem::builder()
            .condition_check(
                ConditionCheck::builder()
                    .table_name(TABLE)
                    .set_key(Some(item("c", "x", &[])))
                    .condition_expression("attribute_exists(ItemID)")
                    .build()
                    .expect("ConditionCheck"),
            )
            .build(),
    ];
    client
        .transact_write_items()
        .set_transact_items(Some(transaction.to_vec()))
        .send()
        .await
        .expect("TransactWriteItems");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_write_kind_leaves_one_record_with_every_attribute() {
    let ddb = DynamoLocal::single().await;
    let local = sdk_client(&ddb.endpoint(0));
    create_global_catalog(&local).await;
    create_audit_table(&local).await;
    let spool = spool_dir();
    let config = audited(&ddb, spool.path(), "images = \"new_and_old\"")
        .table_line("key_prefix = \"{region}#\"")
        .table_line("version_attribute = \"Version\"");
    let sidecar = Sidecar::start(&config).await;
    let client = sdk_client(&sidecar.endpoint());
    write_every_kind(&client).await;

    // a: put, update, delete; b, c: the batch; d and b again: the transaction.
    let records = wait_for_records(&local, 7).await;
    assert_eq!(records.len(), 7, "{records:#?}");
    let a = history(&records, "GlobalCatalog#us-east-1#a#x");
    let ops: Vec<&str> = a.iter().map(|r| s(r, "Operation")).collect();
    assert_eq!(ops, ["PutItem", "UpdateItem", "DeleteItem"]);
    let versions: Vec<Option<String>> = a.iter().map(|r| n(r, "Version")).collect();
    let v = |x: &str| Some(x.to_owned());
    assert_eq!(
        versions,
        [v("1"), v("2"), v("2")],
        "a delete names the version it removed"
    );
    for record in &records {
        assert_eq!(s(record, "Table"), TABLE);
        assert_eq!(s(record, "Region"), "us-east-1");
        assert_eq!(s(record, "Outcome"), "accepted");
        assert_eq!(s(record, "Principal"), support::CLIENT_ACCESS_KEY_ID);
        assert!(!s(record, "RequestId").is_empty());
        assert_eq!(s(record, "EventId").len(), 26, "a ULID");
        let at = s(record, "Timestamp");
        assert!(at.len() == 24 && at.ends_with('Z'), "ISO-8601 UTC: {at}");
        let key = image(record, "Key").expect("Key");
        let id = key["ItemID"].as_s().expect("ItemID");
        assert!(!id.contains('#'), "the key as the client sees it: {key:?}");
        assert_eq!(
            s(record, "ItemKey"),
            format!("GlobalCatalog#us-east-1#{id}#x")
        );
    }
    let new = image(a[0], "NewImage").expect("a put's new image");
    assert_eq!(new["Name"].as_s().expect("Name"), "n1");
    assert_eq!(new["ItemID"].as_s().expect("ItemID"), "a");
    assert!(!new.contains_key("__globalscale_write"));
    assert!(
        image(a[0], "OldImage").is_none(),
        "nothing was there before"
    );
    let updated = image(a[1], "NewImage").expect("an update's new image");
    assert_eq!(updated["Name"].as_s().expect("Name"), "n2");
    let removed = image(a[2], "OldImage").expect("a delete's old image");
    assert_eq!(removed["Name"].as_s().expect("Name"), "n2");
    assert!(image(a[2], "NewImage").is_none());
    let b = history(&records, "GlobalCatalog#us-east-1#b#x");
    let ops: Vec<&str> = b.iter().map(|r| s(r, "Operation")).collect();
    assert_eq!(ops, ["BatchWriteItem", "TransactWriteItems"]);
    assert_eq!(history(&records, "GlobalCatalog#us-east-1#c#x").len(), 1);
    assert_eq!(history(&records, "GlobalCatalog#us-east-1#d#x").len(), 1);
    assert!(history(&records, "GlobalCatalog#us-east-1#refused#x").is_empty());

    let admin = sidecar.admin_addr();
    let spooled = metric(
        admin,
        "globalscale_audit_records_total",
        &[("outcome", "spooled")],
    );
    assert_eq!(spooled.await, Some(7.0));
    let shipped = metric(
        admin,
        "globalscale_audit_records_total",
        &[("outcome", "shipped")],
    );
    assert_eq!(shipped.await, Some(7.0));
    assert_eq!(
        metric(admin, "globalscale_audit_backlog", &[]).await,
        Some(0.0)
    );
    sidecar.stop().await;

    // What an operator reads back with the history command.
    let table = history_command(&config, &["--key", "a", "--sort-key", "x"]).await;
    let rows: Vec<&str> = table.lines().collect();
    assert_eq!(rows.len(), 5, "header, three records, count:\n{table}");
    assert!(rows[0].starts_with("TIMESTAMP"), "{table}");
    for (row, op) in rows[1..4]
        .iter()
        .zip(["PutItem", "UpdateItem", "DeleteItem"])
    {
        assert!(row.contains(op) && row.contains("accepted"), "{table}");
        assert!(row.contains(support::CLIENT_ACCESS_KEY_ID), "{table}");
    }
    assert!(
        rows[4].contains("3 records for GlobalCatalog#us-east-1#a#x"),
        "{table}"
    );
    let json = history_command(&config, &["--key", "a", "--sort-key", "x", "--json"]).await;
    let json: serde_json::Value = serde_json::from_str(&json).expect("--json prints JSON");
    assert_eq!(json.as_array().map(Vec::len), Some(3));
}

/// `globalscale --config <config> audit history --table GlobalCatalog <args>`'s output.
async fn history_command(config: &SidecarConfig, args: &[&str]) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("globalscale.toml");
    std::fs::write(&path, config.to_toml()).expect("write config");
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_globalscale"))
        .args(["audit", "history", "--table", TABLE, "--config"])
        .arg(&path)
        .args(args)
        .kill_on_drop(true)
        .output();
    let output = support::within("audit history", output)
        .await
        .expect("run globalscale");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8")
}

const BOTO3_WRITES: &str = r##"
import json, sys, boto3
from botocore.config import Config
ddb = boto3.client("dynamodb", endpoint_url=sys.argv[1], region_name="us-east-1",
    aws_access_key_id="AKIDPYTHON", aws_secret_access_key="python-secret",
    config=Config(retries={"max_attempts": 1}))
key = {"ItemID": {"S": "py"}, "Category": {"S": "x"}}
ddb.put_item(TableName="GlobalCatalog", Item={**key, "Name": {"S": "first"}})
ddb.update_item(TableName="GlobalCatalog", Key=key, UpdateExpression="SET #n = :n",
    ExpressionAttributeNames={"#n": "Name"}, ExpressionAttributeValues={":n": {"S": "second"}})
failed = None
try:
    ddb.delete_item(TableName="GlobalCatalog", Key=key, ConditionExpression="#n = :n",
        ExpressionAttributeNames={"#n": "Name"}, ExpressionAttributeValues={":n": {"S": "first"}})
except ddb.exceptions.ConditionalCheckFailedException:
    failed = "ConditionalCheckFailedException"
deleted = ddb.delete_item(TableName="GlobalCatalog", Key=key, ReturnValues="ALL_OLD")
print(json.dumps({"failed": failed, "deleted": deleted["Attributes"]["Name"]["S"]}))
"##;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boto3_writes_are_recorded_with_their_signer_and_failed_writes_are_not() {
    let ddb = DynamoLocal::single().await;
    let local = sdk_client(&ddb.endpoint(0));
    create_global_catalog(&local).await;
    create_audit_table(&local).await;
    let spool = spool_dir();
    let sidecar = Sidecar::start(&audited(&ddb, spool.path(), "images = \"none\"")).await;
    let out = run_boto3(BOTO3_WRITES, &sidecar.endpoint()).await;
    assert_eq!(out["failed"], "ConditionalCheckFailedException");
    assert_eq!(
        out["deleted"], "second",
        "the client's own ReturnValues are kept"
    );
    let records = wait_for_records(&local, 3).await;
    // Settle: a fourth record would be the failed delete's.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let records = if audit_records(&local).await.len() == records.len() {
        records
    } else {
        audit_records(&local).await
    };
    let py = history(&records, "GlobalCatalog#py#x");
    let ops: Vec<&str> = py.iter().map(|r| s(r, "Operation")).collect();
    assert_eq!(ops, ["PutItem", "UpdateItem", "DeleteItem"], "{records:#?}");
    for record in py {
        assert_eq!(s(record, "Principal"), "AKIDPYTHON");
        assert!(record.get("NewImage").is_none() && record.get("OldImage").is_none());
        assert!(
            record.get("Version").is_none(),
            "the table is not versioned"
        );
    }
    sidecar.stop().await;
}

/// Puts `GlobalCatalog` items `<prefix>0..<prefix>{count}`, `concurrency` at a time; panics
/// on any failure.
async fn burst(client: &Client, prefix: &str, count: usize, concurrency: usize) {
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..concurrency {
        let client = client.clone();
        let prefix = prefix.to_owned();
        tasks.spawn(async move {
            for i in (worker..count).step_by(concurrency) {
                put(&client, &format!("{prefix}{i}"), &[("Name", "burst")]).await;
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("a writer panicked");
    }
}

/// Asserts the records are exactly one per key `GlobalCatalog#<prefix><i>#x`, `i < count`.
fn assert_exactly_once(records: &[Record], prefix: &str, count: usize) {
    let keys: Vec<&str> = records.iter().map(|r| s(r, "ItemKey")).collect();
    let distinct: HashSet<&str> = keys.iter().copied().collect();
    assert_eq!(keys.len(), distinct.len(), "a record arrived twice");
    let expected: HashSet<String> = (0..count)
        .map(|i| format!("{TABLE}#{prefix}{i}#x"))
        .collect();
    let found: HashSet<String> = distinct.iter().map(|k| (*k).to_owned()).collect();
    assert_eq!(found, expected);
}

/// Waits for `count` records, then a little longer, so that a duplicate would show.
async fn settled_records(local: &Client, count: usize) -> Vec<Record> {
    wait_for_records(local, count).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    audit_records(local).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_right_after_a_burst_then_a_restart_ships_every_record_exactly_once() {
    let ddb = DynamoLocal::single().await;
    let local = sdk_client(&ddb.endpoint(0));
    create_global_catalog(&local).await;
    create_audit_table(&local).await;
    let spool = spool_dir();
    let config = audited(&ddb, spool.path(), "");
    let mut first = SidecarProcess::start(config.clone()).await;
    burst(&sdk_client(&first.endpoint()), "k", 300, 16).await;
    first.signal("KILL");
    first.wait_exit().await;
    let shipped_before = audit_records(&local).await.len();
    let second = SidecarProcess::start(config).await;
    let records = settled_records(&local, 300).await;
    assert_exactly_once(&records, "k", 300);
    eprintln!(
        "{shipped_before} of 300 records were stored before kill -9; the restart shipped the rest"
    );
    drop(second);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_table_deleted_under_load_then_recreated_loses_no_record() {
    let ddb = DynamoLocal::single().await;
    let local = sdk_client(&ddb.endpoint(0));
    create_global_catalog(&local).await;
    create_audit_table(&local).await;
    let spool = spool_dir();
    let sidecar = Sidecar::start(&audited(&ddb, spool.path(), "")).await;
    let client = sdk_client(&sidecar.endpoint());
    let stop = Arc::new(AtomicBool::new(false));
    let deleted = Arc::new(AtomicBool::new(false));
    let mut writers = tokio::task::JoinSet::new();
    for worker in 0..8 {
        let (client, stop, deleted) = (client.clone(), stop.clone(), deleted.clone());
        writers.spawn(async move {
            // The keys written after the table was gone: their records had nowhere to go.
            let mut after_delete = Vec::new();
            let mut i = 0;
            while !stop.load(Ordering::Acquire) {
                let id = format!("w{worker}-{i}");
                let late = deleted.load(Ordering::Acquire);
                put(&client, &id, &[]).await;
                if late {
                    after_delete.push(format!("{TABLE}#{id}#x"));
                }
                i += 1;
            }
            after_delete
        });
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    delete_audit_table(&local).await;
    deleted.store(true, Ordering::Release);
    tokio::time::sleep(Duration::from_secs(2)).await;
    create_audit_table(&local).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Release);
    let mut late = Vec::new();
    while let Some(keys) = writers.join_next().await {
        late.extend(keys.expect("a writer panicked"));
    }
    assert!(
        late.len() > 20,
        "too little load to show anything: {}",
        late.len()
    );
    let deadline = tokio::time::Instant::now() + support::HANG;
    loop {
        let records = audit_records(&local).await;
        let stored: HashSet<&str> = records.iter().map(|r| s(r, "ItemKey")).collect();
        let missing = late.iter().filter(|k| !stored.contains(k.as_str())).count();
        if missing == 0 {
            assert_eq!(stored.len(), records.len(), "a record arrived twice");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{missing} of {} records written while the table was gone never arrived",
            late.len()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    sidecar.stop().await;
}

/// The HTTP status of a failed call, or `None` if it succeeded.
async fn put_blob(client: &Client, id: &str, blob: &str) -> Option<u16> {
    put_status(client, TABLE, item(id, "x", &[("Blob", blob)])).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_spool_refuses_writes_with_a_503_and_recovers_once_shipped() {
    let ddb = DynamoLocal::single().await;
    let local = sdk_client(&ddb.endpoint(0));
    create_global_catalog(&local).await;
    // No audit table yet: every record stays spooled.
    let spool = spool_dir();
    let config = audited(&ddb, spool.path(), "max_spool_bytes = 1048576");
    let sidecar = Sidecar::start(&config).await;
    let client = sdk_client_with(&sidecar.endpoint(), None, |b| {
        b.retry_config(RetryConfig::disabled())
    });
    let blob = "b".repeat(100 * 1024);
    let mut accepted: u32 = 0;
    let refused = loop {
        assert!(
            accepted < 40,
            "1 MiB of spool took {accepted} records of 100 KiB"
        );
        match put_blob(&client, &format!("big{accepted}"), &blob).await {
            None => accepted += 1,
            Some(status) => break status,
        }
    };
    assert_eq!(refused, 503, "a full spool answers a retryable 503");
    assert!(accepted >= 5, "refused too early: after {accepted}");
    let refused_id = format!("big{accepted}");
    let stored = local
        .get_item()
        .table_name(TABLE)
        .set_key(Some(item(&refused_id, "x", &[])))
        .consistent_read(true)
        .send()
        .await
        .expect("GetItem");
    assert!(
        stored.item.is_none(),
        "a refused write was applied without its record"
    );
    let backlog = metric(sidecar.admin_addr(), "globalscale_audit_backlog", &[]).await;
    assert_eq!(backlog, Some(f64::from(accepted)));
    let oldest = metric(
        sidecar.admin_addr(),
        "globalscale_audit_oldest_seconds",
        &[],
    )
    .await;
    assert!(oldest.is_some_and(|age| age > 0.0), "{oldest:?}");
    // What an alert on the spool's fill reads: full, against the configured limit.
    let limit = metric(
        sidecar.admin_addr(),
        "globalscale_audit_spool_limit_bytes",
        &[],
    )
    .await;
    assert_eq!(limit, Some(1_048_576.0));
    let held = metric(sidecar.admin_addr(), "globalscale_audit_spool_bytes", &[]).await;
    assert!(
        held.is_some_and(|bytes| (1_048_576.0..1_048_576.0 + 110.0 * 1024.0).contains(&bytes)),
        "a refusing spool holds its limit, at most one record past it: {held:?}"
    );

    create_audit_table(&local).await;
    let deadline = tokio::time::Instant::now() + support::HANG;
    while put_blob(&client, &refused_id, &blob).await.is_some() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the spool never drained"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let written = accepted as usize + 1;
    let records = settled_records(&local, written).await;
    assert_exactly_once(&records, "big", written);
    sidecar.stop().await;
}

/// The spool's segment files, oldest first.
fn segments(spool: &Path) -> Vec<std::path::PathBuf> {
    let mut found: Vec<_> = std::fs::read_dir(spool)
        .expect("read the spool dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("spool-"))
        })
        .collect();
    found.sort();
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torn_spool_tail_is_cut_at_start_and_the_rest_shipped() {
    let ddb = DynamoLocal::single().await;
    let local = sdk_client(&ddb.endpoint(0));
    create_global_catalog(&local).await;
    let spool = spool_dir();
    let config = audited(&ddb, spool.path(), "");
    let mut first = SidecarProcess::start(config.clone()).await;
    let client = sdk_client(&first.endpoint());
    for i in 0..5 {
        put(&client, &format!("t{i}"), &[]).await;
    }
    first.signal("KILL");
    first.wait_exit().await;
    // Power lost mid-append: the end of the last record's frame never reached the disk. The
    // segment was pre-zeroed, so those bytes are still zeros, as is everything after them.
    let last = segments(spool.path()).pop().expect("a segment");
    let mut bytes = std::fs::read(&last).expect("segment");
    let end = bytes.iter().rposition(|b| *b != 0).expect("frames") + 1;
    bytes[end - 10..end].fill(0);
    std::fs::write(&last, bytes).expect("tear the segment");

    create_audit_table(&local).await;
    let second = SidecarProcess::start(config).await;
    // The torn frame is t4's settlement, appended after its answer; its intent was durable
    // before the answer, so t4's record still ships (recovery reads the item back).
    let records = settled_records(&local, 5).await;
    assert_exactly_once(&records, "t", 5);
    assert!(
        second.stderr().contains("torn or corrupt tail"),
        "the cut is reported: {}",
        second.stderr()
    );
    // The spool keeps working after the cut.
    put(&sdk_client(&second.endpoint()), "t-after", &[]).await;
    let records = wait_for_records(&local, 6).await;
    assert!(
        records
            .iter()
            .any(|r| s(r, "ItemKey") == "GlobalCatalog#t-after#x")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ships_the_spool_before_the_process_exits() {
    let ddb = DynamoLocal::single().await;
    let local = sdk_client(&ddb.endpoint(0));
    create_global_catalog(&local).await;
    let spool = spool_dir();
    let mut sidecar = SidecarProcess::start(audited(&ddb, spool.path(), "")).await;
    burst(&sdk_client(&sidecar.endpoint()), "term", 20, 4).await;
    create_audit_table(&local).await;
    sidecar.signal("TERM");
    let status = sidecar.wait_exit().await;
    assert!(status.success(), "{status}: {}", sidecar.stderr());
    // Nothing runs any more: what is in the table was shipped before the exit.
    let records = audit_records(&local).await;
    assert_exactly_once(&records, "term", 20);
    assert!(segments(spool.path()).len() <= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_whose_outcome_is_unknown_leaves_a_record_saying_so() {
    let ddb = DynamoLocal::single().await;
    let local = sdk_client(&ddb.endpoint(0));
    create_global_catalog(&local).await;
    create_audit_table(&local).await;
    let home = RegionFixture::start(&ddb.endpoint(0)).await;
    let spool = spool_dir();
    let config = SidecarConfig::new()
        .timeouts(500, 500, 10_000)
        .section("[routing]\neject_after_failures = 100\nprobe_interval_ms = 600000")
        .region("us-east-1", &home.endpoint())
        .region("us-west-2", &ddb.endpoint(0))
        .table_line("audit = true")
        .section(&audit_section(spool.path(), ""));
    let sidecar = Sidecar::start(&config).await;
    let client = sdk_client_with(&sidecar.endpoint(), None, |b| {
        b.retry_config(RetryConfig::disabled())
    });
    // Applied by the home region, never answered, and not safe to send anywhere else.
    home.set_mode(Mode::ApplyThenHang).await;
    let counted = client
        .update_item()
        .table_name(TABLE)
        .set_key(Some(item("u", "x", &[])))
        .update_expression("ADD n :one")
        .expression_attribute_values(":one", AttributeValue::N("1".into()))
        .send()
        .await
        .expect_err("no answer came back");
    assert_eq!(
        counted.raw_response().map(|r| r.status().as_u16()),
        Some(500)
    );
    home.set_mode(Mode::Forward).await;
    let records = settled_records(&local, 1).await;
    assert_eq!(records.len(), 1, "{records:#?}");
    assert_eq!(s(&records[0], "Outcome"), "unknown");
    assert_eq!(s(&records[0], "Region"), "us-east-1");
    assert_eq!(s(&records[0], "ItemKey"), "GlobalCatalog#u#x");
    sidecar.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn atomic_mode_stores_each_record_in_the_write_s_own_transaction() {
    let ddb = DynamoLocal::single().await;
    let local = sdk_client(&ddb.endpoint(0));
    create_global_catalog(&local).await;
    let spool = spool_dir();
    let config = audited(&ddb, spool.path(), "mode = \"atomic\"\nimages = \"new\"")
        .table_line("key_prefix = \"{region}#\"")
        .table_line("version_attribute = \"Version\"");
    let sidecar = Sidecar::start(&config).await;
    let client = sdk_client_with(&sidecar.endpoint(), None, |b| {
        b.retry_config(RetryConfig::disabled())
    });

    // No audit table: the write cannot land without its record, so it does not land.
    let refused = client
        .put_item()
        .table_name(TABLE)
        .set_item(Some(item("early", "x", &[])))
        .send()
        .await
        .expect_err("no audit table, no write");
    assert_eq!(
        refused.raw_response().map(|r| r.status().as_u16()),
        Some(400)
    );
    let early = local
        .get_item()
        .table_name(TABLE)
        .set_key(Some(item("us-east-1#early", "x", &[])))
        .send()
        .await
        .expect("GetItem");
    assert!(early.item.is_none(), "{early:?}");

    create_audit_table(&local).await;
    write_every_kind(&client).await;
    // Every record is there the moment its write is answered: nothing was spooled.
    let records = audit_records(&local).await;
    assert_eq!(records.len(), 7, "{records:#?}");
    let a = history(&records, "GlobalCatalog#us-east-1#a#x");
    let ops: Vec<&str> = a.iter().map(|r| s(r, "Operation")).collect();
    assert_eq!(ops, ["PutItem", "UpdateItem", "DeleteItem"]);
    assert_eq!(n(a[0], "Version").as_deref(), Some("1"));
    assert_eq!(
        image(a[0], "NewImage").expect("a put's image")["Name"]
            .as_s()
            .expect("Name"),
        "n1"
    );
    for record in &records {
        assert_eq!(s(record, "Region"), "us-east-1");
        assert_eq!(s(record, "Outcome"), "accepted");
        assert_eq!(s(record, "Principal"), support::CLIENT_ACCESS_KEY_ID);
    }

    // A failed condition is the client's own error, with the item it asked for, and no record.
    put(&client, "cond", &[("Name", "kept")]).await;
    let failed = client
        .put_item()
        .table_name(TABLE)
        .set_item(Some(item("cond", "x", &[])))
        .condition_expression("attribute_not_exists(ItemID)")
        .return_values_on_condition_check_failure(
            aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure::AllOld,
        )
        .send()
        .await
        .expect_err("the item exists");
    let failed = failed.into_service_error();
    assert!(failed.is_conditional_check_failed_exception(), "{failed:?}");
    let aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(
        failed,
    ) = failed
    else {
        unreachable!()
    };
    let current = failed.item.expect("the item, as asked");
    assert_eq!(current["Name"].as_s().expect("Name"), "kept");
    assert_eq!(current["ItemID"].as_s().expect("ItemID"), "cond");
    assert!(!current.contains_key("__globalscale_write"));
    assert_eq!(
        audit_records(&local).await.len(),
        8,
        "one record for the put, none for the failure"
    );

    // A transaction cannot return images.
    let images = client
        .put_item()
        .table_name(TABLE)
        .set_item(Some(item("img", "x", &[])))
        .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
        .send()
        .await
        .expect_err("refused");
    assert!(
        format!("{images:?}").contains("ValidationException"),
        "{images:?}"
    );
    let shipped = metric(
        sidecar.admin_addr(),
        "globalscale_audit_records_total",
        &[("outcome", "shipped")],
    );
    assert_eq!(shipped.await, Some(8.0));
    sidecar.stop().await;
}
