//! Key schemas of managed tables that the config leaves out, learned with `DescribeTable`
//! at start (and after a reload), so later steps know which attribute is the partition key.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;

use crate::proxy::Proxy;
use crate::snapshot::Snapshot;
use crate::wire::Operation;

/// Tries a few times, since the table may be created just after the sidecar starts.
const ATTEMPTS: u32 = 5;

pub async fn learn_missing(proxy: Arc<Proxy>) {
    let missing: Vec<String> = proxy
        .snapshot
        .load()
        .tables
        .values()
        .filter(|t| t.partition_key.is_none())
        .map(|t| t.name.clone())
        .collect();
    for table in missing {
        for attempt in 1..=ATTEMPTS {
            match describe(&proxy, &table).await {
                Ok((partition_key, sort_key)) => {
                    tracing::info!(table, partition_key, ?sort_key, "learned key schema");
                    proxy.snapshot.rcu(|current| {
                        let mut next = Snapshot::clone(current);
                        if let Some(t) = next.tables.get_mut(&table) {
                            t.partition_key.get_or_insert_with(|| partition_key.clone());
                            if t.sort_key.is_none() {
                                t.sort_key.clone_from(&sort_key);
                            }
                        }
                        next
                    });
                    break;
                }
                Err(e) if attempt == ATTEMPTS => {
                    tracing::warn!(table, error = %e, "cannot learn the key schema; set partition_key in the config");
                }
                Err(_) => tokio::time::sleep(Duration::from_secs(u64::from(attempt))).await,
            }
        }
    }
}

async fn describe(proxy: &Proxy, table: &str) -> Result<(String, Option<String>), String> {
    let body = serde_json::to_vec(&serde_json::json!({ "TableName": table }))
        .map_err(|e| e.to_string())?;
    let (status, body) = proxy
        .call(&Operation::DescribeTable, Bytes::from(body))
        .await
        .map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!(
            "DescribeTable answered {status}: {}",
            String::from_utf8_lossy(&body)
        ));
    }
    let value: Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
    key_schema(&value).ok_or_else(|| "DescribeTable answer has no KeySchema".into())
}

/// The HASH and RANGE attribute names of a `DescribeTable` answer.
fn key_schema(describe: &Value) -> Option<(String, Option<String>)> {
    let schema = describe.get("Table")?.get("KeySchema")?.as_array()?;
    let key = |kind: &str| {
        schema
            .iter()
            .find(|k| k.get("KeyType").and_then(Value::as_str) == Some(kind))
            .and_then(|k| k.get("AttributeName")?.as_str())
            .map(str::to_owned)
    };
    Some((key("HASH")?, key("RANGE")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_hash_and_range_keys() {
        let answer = serde_json::json!({"Table": {"KeySchema": [
            {"AttributeName": "Category", "KeyType": "RANGE"},
            {"AttributeName": "ItemID", "KeyType": "HASH"}
        ]}});
        assert_eq!(
            key_schema(&answer),
            Some(("ItemID".into(), Some("Category".into())))
        );
        let hash_only = serde_json::json!({"Table": {"KeySchema": [{"AttributeName": "K", "KeyType": "HASH"}]}});
        assert_eq!(key_schema(&hash_only), Some(("K".into(), None)));
        assert_eq!(key_schema(&serde_json::json!({})), None);
    }
}
