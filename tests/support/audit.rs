//! The audit table as tests see it: created, deleted and read straight from DynamoDB Local,
//! never through the sidecar, so what the shipper stored is what the test counts.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;

use super::HANG;

/// The audit table of every audit test.
pub(crate) const AUDIT_TABLE: &str = "GlobalCatalog-audit";

pub(crate) type Record = HashMap<String, AttributeValue>;

/// `[audit]` for `spool_dir`, with `extra` lines (`images = ...`, `max_spool_bytes = ...`).
pub(crate) fn audit_section(spool_dir: &std::path::Path, extra: &str) -> String {
    format!(
        "[audit]\ntable = {AUDIT_TABLE:?}\nspool_dir = {:?}\n{extra}",
        spool_dir.display().to_string()
    )
}

/// A fresh spool directory, removed when the test ends.
pub(crate) fn spool_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("globalscale-spool-")
        .tempdir()
        .expect("spool dir")
}

/// The sidecar in front of `ddb`'s first region, `GlobalCatalog` audited into the spool
/// `spool`, with `extra` lines for `[audit]`.
pub(crate) fn audited(
    ddb: &super::DynamoLocal,
    spool: &std::path::Path,
    extra: &str,
) -> super::SidecarConfig {
    super::SidecarConfig::new()
        .region("us-east-1", &ddb.endpoint(0))
        .table_line("audit = true")
        .section(&audit_section(spool, extra))
}

/// The HTTP status of a PutItem of `item` to `table` that failed, or `None` if it succeeded.
pub(crate) async fn put_status(
    client: &Client,
    table: &str,
    item: HashMap<String, AttributeValue>,
) -> Option<u16> {
    let result = client
        .put_item()
        .table_name(table)
        .set_item(Some(item))
        .send()
        .await;
    match result {
        Ok(_) => None,
        Err(e) => Some(e.raw_response().map_or(0, |r| r.status().as_u16())),
    }
}

/// Runs `globalscale --config <config> <args>` (an operator command) to its exit.
pub(crate) async fn run_command(
    config: &super::SidecarConfig,
    args: &[&str],
) -> std::process::Output {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("globalscale.toml");
    std::fs::write(&path, config.to_toml()).expect("write config");
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_globalscale"))
        .arg("--config")
        .arg(&path)
        .args(args)
        .kill_on_drop(true)
        .output();
    super::within("globalscale", output)
        .await
        .expect("run globalscale")
}

/// Creates the audit table as `terraform/` does: hash `ItemKey` (S), range `EventId` (S).
pub(crate) async fn create_audit_table(client: &Client) {
    super::create_keyed_table(client, AUDIT_TABLE, "ItemKey", "EventId").await;
}

pub(crate) async fn delete_audit_table(client: &Client) {
    client
        .delete_table()
        .table_name(AUDIT_TABLE)
        .send()
        .await
        .unwrap_or_else(|e| panic!("DeleteTable {AUDIT_TABLE}: {e:?}"));
}

/// Every record in the audit table (an empty list while the table does not exist).
pub(crate) async fn audit_records(client: &Client) -> Vec<Record> {
    let mut records = Vec::new();
    let mut start = None;
    loop {
        let page = client
            .scan()
            .table_name(AUDIT_TABLE)
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await;
        let Ok(page) = page else {
            return records;
        };
        records.extend(page.items.unwrap_or_default());
        start = page.last_evaluated_key;
        if start.is_none() {
            return records;
        }
    }
}

/// Waits until the audit table holds at least `count` records; returns them all. Panics
/// with what it holds after [`HANG`].
pub(crate) async fn wait_for_records(client: &Client, count: usize) -> Vec<Record> {
    let deadline = tokio::time::Instant::now() + HANG;
    loop {
        let records = audit_records(client).await;
        if records.len() >= count {
            return records;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} audit records of {count} after {HANG:?}",
            records.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A string attribute of a record.
pub(crate) fn s<'a>(record: &'a Record, name: &str) -> &'a str {
    match record.get(name) {
        Some(AttributeValue::S(s)) => s,
        other => panic!("record attribute {name} is {other:?}, not a string: {record:?}"),
    }
}

/// Polls the sidecar's `/metrics` until `name` reaches `value`.
pub(crate) async fn wait_for_metric(admin: std::net::SocketAddr, name: &str, value: f64) {
    let deadline = tokio::time::Instant::now() + super::HANG;
    loop {
        let found = super::metric(admin, name, &[]).await;
        if found == Some(value) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name} is {found:?}, not {value}, after {:?}",
            super::HANG
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
