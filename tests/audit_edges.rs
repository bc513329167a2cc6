//! The audit trail at its edges, end to end against DynamoDB Local with the Rust SDK: a key
//! too long for the audit table's key is stored hashed; keys whose parts hold `#` get their
//! own histories, and the history command still reads records written before the escaping;
//! a record the audit table refuses (a poison record) is set aside in the quarantine and
//! counted, and the records batched with it ship; a damaged record in a spool segment costs
//! that record only; a spool that cannot be written at start-up stops neither start-up nor
//! reads, refuses audited writes with a retryable 503, and recovers by itself.
//!
//! Nothing here is timed: everything is polled up to [`support::HANG`].

#![allow(clippy::expect_used)]

mod support;

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::types::AttributeValue;
use bytes::Bytes;
use globalscale::audit::quarantine;
use globalscale::audit::spool::Spool;
use support::{
    AUDIT_TABLE, DynamoLocal, HANG, Record, Sidecar, SidecarConfig, SidecarProcess, TABLE,
    audit_records, audited, create_audit_table, create_global_catalog, create_table, item, metric,
    put_status, s, sdk_client, sdk_client_with, spool_dir, wait_for_metric, wait_for_records,
};

async fn put(client: &Client, id: &str, category: &str) {
    client
        .put_item()
        .table_name(TABLE)
        .set_item(Some(item(id, category, &[])))
        .send()
        .await
        .unwrap_or_else(|e| panic!("PutItem {id}: {e:?}"));
}

/// `globalscale audit history --json` for one item, its records as JSON.
async fn history_json(config: &SidecarConfig, key: &str, sort_key: &str) -> Vec<serde_json::Value> {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("globalscale.toml");
    std::fs::write(&path, config.to_toml()).expect("write config");
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_globalscale"))
        .args(["audit", "history", "--json", "--table", TABLE, "--config"])
        .arg(&path)
        .args(["--key", key, "--sort-key", sort_key])
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
    serde_json::from_slice(&output.stdout).expect("a JSON array")
}

fn with_key<'a>(records: &'a [Record], item_key: &str) -> Vec<&'a Record> {
    records
        .iter()
        .filter(|r| s(r, "ItemKey") == item_key)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_too_long_for_the_audit_table_is_stored_hashed_and_its_history_found() {
    let ddb = DynamoLocal::single().await;
    let local = sdk_client(&ddb.endpoint(0));
    create_global_catalog(&local).await;
    create_audit_table(&local).await;
    let spool = spool_dir();
    let config = audited(&ddb, spool.path(), "");
    let sidecar = Sidecar::start(&config).await;
    let client = sdk_client(&sidecar.endpoint());
    // Within DynamoDB's limits for the table (2,048 and 1,024 bytes), over them joined.
    let (long_id, long_category) = ("i".repeat(2000), "c".repeat(1000));
    for n in 0..3 {
        put(&client, &format!("short-{n}"), "x").await;
    }
    put(&client, &long_id, &long_category).await;
    put(&client, "short-3", "x").await;

    let records = wait_for_records(&local, 5).await;
    assert_eq!(records.len(), 5);
    let long: Vec<&Record> = records
        .iter()
        .filter(|r| r.contains_key("FullItemKey"))
        .collect();
    assert_eq!(long.len(), 1, "{records:#?}");
    assert!(s(long[0], "ItemKey").starts_with("GlobalCatalog\\sha256:"));
    assert_eq!(
        s(long[0], "FullItemKey"),
        format!("GlobalCatalog#{long_id}#{long_category}")
    );
    let history = history_json(&config, &long_id, &long_category).await;
    assert_eq!(history.len(), 1, "{history:#?}");
    assert_eq!(history[0]["Operation"]["S"], "PutItem");
    sidecar.stop().await;
}

/// A record as a version before the escaping wrote it: `ItemKey` joined as it was.
fn old_record(event_id: &str, item_id: &str, category: &str) -> HashMap<String, AttributeValue> {
    let key = HashMap::from([
        ("ItemID".to_owned(), AttributeValue::S(item_id.to_owned())),
        (
            "Category".to_owned(),
            AttributeValue::S(category.to_owned()),
        ),
    ]);
    HashMap::from([
        (
            "ItemKey".to_owned(),
            AttributeValue::S(format!("{TABLE}#{item_id}#{category}")),
        ),
        ("EventId".to_owned(), AttributeValue::S(event_id.to_owned())),
        ("Key".to_owned(), AttributeValue::M(key)),
        ("Operation".to_owned(), AttributeValue::S("PutItem".into())),
        ("Outcome".to_owned(), AttributeValue::S("accepted".into())),
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_holding_the_separator_get_their_own_history_old_records_included() {
    let ddb = DynamoLocal::single().await;
    let local = sdk_client(&ddb.endpoint(0));
    create_global_catalog(&local).await;
    create_audit_table(&local).await;
    // Records of both items from before the escaping: one ItemKey for the two.
    for (event, id, category) in [
        ("01AAAAAAAAAAAAAAAAAAAAAAA1", "a#b", "c"),
        ("01AAAAAAAAAAAAAAAAAAAAAAA2", "a", "b#c"),
    ] {
        local
            .put_item()
            .table_name(AUDIT_TABLE)
            .set_item(Some(old_record(event, id, category)))
            .send()
            .await
            .expect("plant an old record");
    }
    let spool = spool_dir();
    let config = audited(&ddb, spool.path(), "");
    let sidecar = Sidecar::start(&config).await;
    let client = sdk_client(&sidecar.endpoint());
    put(&client, "a#b", "c").await;
    put(&client, "a", "b#c").await;

    let records = wait_for_records(&local, 4).await;
    assert_eq!(with_key(&records, r"GlobalCatalog#a\#b#c").len(), 1);
    assert_eq!(with_key(&records, r"GlobalCatalog#a#b\#c").len(), 1);
    for (id, category, old_event) in [
        ("a#b", "c", "01AAAAAAAAAAAAAAAAAAAAAAA1"),
        ("a", "b#c", "01AAAAAAAAAAAAAAAAAAAAAAA2"),
    ] {
        let history = history_json(&config, id, category).await;
        assert_eq!(history.len(), 2, "{id}/{category}: {history:#?}");
        // Oldest first: the old record, then the new one, both this item's.
        assert_eq!(history[0]["EventId"]["S"], old_event);
        for record in &history {
            assert_eq!(record["Key"]["M"]["ItemID"]["S"], id);
            assert_eq!(record["Key"]["M"]["Category"]["S"], category);
        }
    }
    sidecar.stop().await;
}

/// An audit record the audit table refuses: its `ItemKey` is over DynamoDB's 2,048 bytes,
/// as versions before the hashing spooled them.
fn poison() -> Bytes {
    let item_key = format!("{TABLE}#{}", "p".repeat(3000));
    Bytes::from(
        serde_json::json!({
            "EventId": {"S": "01BBBBBBBBBBBBBBBBBBBBBBB0"},
            "ItemKey": {"S": item_key},
            "Operation": {"S": "PutItem"},
            "Outcome": {"S": "accepted"},
            "Table": {"S": TABLE},
        })
        .to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_record_is_quarantined_and_counted_and_the_24_batched_with_it_ship() {
    let ddb = DynamoLocal::single().await;
    let local = sdk_client(&ddb.endpoint(0));
    create_global_catalog(&local).await;
    let spool = spool_dir();
    {
        let planted = Spool::open(spool.path(), 1 << 30)
            .await
            .expect("open spool");
        planted.append(poison()).await.expect("plant the poison");
    }
    let sidecar = Sidecar::start(&audited(&ddb, spool.path(), "")).await;
    let client = sdk_client(&sidecar.endpoint());
    // The audit table does not exist yet: the 24 wait in the spool behind the poison, and
    // all 25 go in the first batch once it does.
    for n in 0..24 {
        put(&client, &format!("after-{n:02}"), "x").await;
    }
    create_audit_table(&local).await;

    wait_for_metric(
        sidecar.admin_addr(),
        "globalscale_audit_quarantined_total",
        1.0,
    )
    .await;
    let records = wait_for_records(&local, 24).await;
    assert_eq!(records.len(), 24);
    for n in 0..24 {
        assert_eq!(
            with_key(&records, &format!("GlobalCatalog#after-{n:02}#x")).len(),
            1
        );
    }
    wait_for_metric(sidecar.admin_addr(), "globalscale_audit_backlog", 0.0).await;
    let quarantined = std::fs::read_to_string(quarantine::path(spool.path())).expect("quarantine");
    let lines: Vec<serde_json::Value> = quarantined
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object a line"))
        .collect();
    assert_eq!(lines.len(), 1, "{quarantined}");
    assert_eq!(
        lines[0]["Record"]["EventId"]["S"],
        "01BBBBBBBBBBBBBBBBBBBBBBB0"
    );
    assert!(
        lines[0]["Reason"]
            .as_str()
            .is_some_and(|r| r.contains("ValidationException")),
        "{quarantined}"
    );
    sidecar.stop().await;
    // Set aside, it is no longer spooled: a restart does not send it again.
    let reopened = Spool::open(spool.path(), 1 << 30).await.expect("reopen");
    assert_eq!(reopened.backlog().records, 0);
}

/// Offsets of the frames of a spool segment, in order: `[u32 length][u32 crc][body]`.
fn frame_offsets(bytes: &[u8]) -> Vec<usize> {
    let mut offsets = Vec::new();
    let mut pos = 0;
    while pos + 8 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[pos..pos + 4].try_into().expect("four bytes"));
        if len == 0 {
            break;
        }
        offsets.push(pos);
        pos += 8 + len as usize;
    }
    offsets
}

/// The one spool segment holding records.
fn written_segment(spool: &Path) -> std::path::PathBuf {
    let mut found: Vec<_> = std::fs::read_dir(spool)
        .expect("read the spool dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|name| name.to_string_lossy().starts_with("spool-"))
        })
        .filter(|p| std::fs::read(p).is_ok_and(|b| b.iter().any(|x| *x != 0)))
        .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    found.remove(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_flipped_byte_in_record_6_of_30_loses_that_record_only() {
    let ddb = DynamoLocal::single().await;
    let local = sdk_client(&ddb.endpoint(0));
    create_global_catalog(&local).await;
    let spool = spool_dir();
    let config = audited(&ddb, spool.path(), "");
    let mut first = SidecarProcess::start(config.clone()).await;
    let client = sdk_client(&first.endpoint());
    for n in 0..30 {
        put(&client, &format!("r{n:02}"), "x").await;
    }
    first.signal("KILL");
    first.wait_exit().await;
    let segment = written_segment(spool.path());
    let mut bytes = std::fs::read(&segment).expect("segment");
    let offsets = frame_offsets(&bytes);
    // Each write leaves its intent (the record) and then its settlement.
    assert_eq!(offsets.len(), 60);
    // Inside the sixth record's JSON (its intent), past its header and append time.
    bytes[offsets[10] + 8 + 8 + 20] ^= 0x01;
    std::fs::write(&segment, bytes).expect("flip a byte");

    create_audit_table(&local).await;
    let second = SidecarProcess::start(config).await;
    wait_for_records(&local, 29).await;
    wait_for_metric(second.admin_addr(), "globalscale_audit_backlog", 0.0).await;
    let records = audit_records(&local).await;
    assert_eq!(records.len(), 29, "{records:#?}");
    assert!(with_key(&records, "GlobalCatalog#r05#x").is_empty());
    for n in (0..30).filter(|n| *n != 5) {
        assert_eq!(
            with_key(&records, &format!("GlobalCatalog#r{n:02}#x")).len(),
            1,
            "r{n:02}"
        );
    }
    assert_eq!(
        metric(
            second.admin_addr(),
            "globalscale_audit_spool_corrupt_records_total",
            &[]
        )
        .await,
        Some(1.0)
    );
    assert!(
        second
            .stderr()
            .contains("resynchronised on the next valid frame"),
        "{}",
        second.stderr()
    );
}

/// The HTTP status of a failed PutItem, or `None` if it succeeded.
async fn put_id(client: &Client, table: &str, id: &str) -> Option<u16> {
    put_status(client, table, item(id, "x", &[])).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unwritable_spool_at_start_up_serves_reads_refuses_audited_writes_and_recovers() {
    let ddb = DynamoLocal::single().await;
    let local = sdk_client(&ddb.endpoint(0));
    create_global_catalog(&local).await;
    create_table(&local, "Plain").await;
    create_audit_table(&local).await;
    put(&local, "before", "x").await;
    // The spool's directory cannot be created: a regular file stands where its parent
    // should be (as root too, unlike permissions; the same refusal as a read-only disk).
    let root = spool_dir();
    let blocker = root.path().join("volume");
    std::fs::write(&blocker, b"not a directory").expect("blocker");
    let sidecar = SidecarProcess::start(audited(&ddb, &blocker.join("spool"), "")).await;
    let client = sdk_client_with(&sidecar.endpoint(), None, |b| {
        b.retry_config(RetryConfig::disabled())
    });

    let read = client
        .get_item()
        .table_name(TABLE)
        .set_key(Some(item("before", "x", &[])))
        .send()
        .await
        .expect("reads are served");
    assert!(read.item.is_some());
    assert_eq!(put_id(&client, "Plain", "unaudited").await, None);
    assert_eq!(put_id(&client, TABLE, "refused").await, Some(503));
    assert!(
        sidecar.stderr().contains("audit spool cannot be written"),
        "{}",
        sidecar.stderr()
    );

    // Space comes back: the shipper's probe makes a segment, and writes are let in again.
    std::fs::remove_file(&blocker).expect("remove the blocker");
    let deadline = tokio::time::Instant::now() + HANG;
    while put_id(&client, TABLE, "after").await == Some(503) {
        assert!(tokio::time::Instant::now() < deadline, "never readmitted");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let records = wait_for_records(&local, 1).await;
    assert_eq!(records.len(), 1, "{records:#?}");
    assert_eq!(s(&records[0], "ItemKey"), "GlobalCatalog#after#x");
    // The refused write never happened: no item, no record.
    let refused = local
        .get_item()
        .table_name(TABLE)
        .set_key(Some(item("refused", "x", &[])))
        .send()
        .await
        .expect("GetItem");
    assert!(refused.item.is_none());
}
