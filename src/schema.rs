//! Key schemas of managed tables, learned with one `DescribeTable` per table at start (and
//! after a reload): the key names the config leaves out, so later steps know which attribute
//! is the partition key, and the key types, so the health probe can read a key.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;

use crate::call::OwnCalls;
use crate::config::TableConfig;
use crate::snapshot::Snapshot;
use crate::wire::{Operation, ScalarType};

/// Tries a few times, since the table may be created just after the sidecar starts.
const ATTEMPTS: u32 = 5;

pub async fn learn_missing<C: OwnCalls>(proxy: Arc<C>) {
    let missing: Vec<String> = proxy
        .snapshot_cell()
        .load()
        .tables
        .values()
        .filter(|t| t.partition_key.is_none() || t.key_types.is_none() || t.arn.is_none())
        .map(|t| t.name.clone())
        .collect();
    for table in missing {
        for attempt in 1..=ATTEMPTS {
            match describe(proxy.as_ref(), &table).await {
                Ok(learned) => {
                    tracing::info!(table, partition_key = learned.partition_key, sort_key = ?learned.sort_key, "learned key schema");
                    merge(proxy.as_ref(), &table, &learned);
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

/// Learns `table`'s ARN (and key schema) now, for a request that names it by an ARN before
/// the learning at start got to it.
pub async fn learn_arn(proxy: &impl OwnCalls, table: &str) -> Result<(), DescribeError> {
    let learned = describe(proxy, table).await?;
    merge(proxy, table, &learned);
    Ok(())
}

/// Swaps in a snapshot with what `DescribeTable` told of `table`.
fn merge(proxy: &impl OwnCalls, table: &str, learned: &Learned) {
    proxy.snapshot_cell().rcu(|current| {
        let mut next = Snapshot::clone(current);
        if let Some(t) = next.tables.get_mut(table) {
            learned.merge_into(t);
        }
        next
    });
}

/// A prefix needs a string partition key to hold it.
#[derive(Debug, thiserror::Error)]
#[error(
    "table {table} has key_prefix, but its partition key {attribute} is of type {kind}: only a string (S) key can carry a prefix"
)]
pub struct NotAStringKey {
    pub table: String,
    pub attribute: String,
    pub kind: &'static str,
}

/// Before serving: the key schema of every prefixed table, so that a prefix on a number or
/// binary partition key refuses to start instead of failing every request (its ARN is
/// learned on the way). A region that cannot answer now does not stop the start: requests
/// then refuse non-string keys one by one, and the schema is learned later.
pub async fn check_prefixed(proxy: &impl OwnCalls) -> Result<(), NotAStringKey> {
    let prefixed: Vec<String> = proxy
        .snapshot_cell()
        .load()
        .tables
        .values()
        .filter(|t| t.key_prefix.is_some())
        .map(|t| t.name.clone())
        .collect();
    for table in prefixed {
        match describe(proxy, &table).await {
            Ok(learned) => {
                if let Some((kind, _)) = learned.types
                    && kind != ScalarType::S
                {
                    return Err(NotAStringKey {
                        table,
                        attribute: learned.partition_key,
                        kind: kind.name(),
                    });
                }
                merge(proxy, &table, &learned);
            }
            Err(e) => {
                tracing::warn!(table, error = %e, "cannot check the key schema of a prefixed table yet");
            }
        }
    }
    Ok(())
}

/// A table's key schema as `DescribeTable` tells it.
#[derive(Debug, PartialEq, Eq)]
struct Learned {
    partition_key: String,
    sort_key: Option<String>,
    types: Option<(ScalarType, Option<ScalarType>)>,
    /// The scope of its `TableArn`, which ARNs naming the table must agree with.
    arn: Option<crate::config::ArnScope>,
}

impl Learned {
    /// Fills in what the config left out. Key types are kept only for the key names the
    /// config uses: a config that names other keys than the table has is the config's error
    /// to surface, not the probe's to paper over.
    fn merge_into(&self, table: &mut TableConfig) {
        if self.arn.is_some() {
            table.arn.clone_from(&self.arn);
        }
        table
            .partition_key
            .get_or_insert_with(|| self.partition_key.clone());
        if table.sort_key.is_none() {
            table.sort_key.clone_from(&self.sort_key);
        }
        if table.partition_key.as_deref() == Some(self.partition_key.as_str())
            && table.sort_key == self.sort_key
        {
            table.key_types = self.types;
        } else {
            tracing::warn!(table = table.name, partition_key = self.partition_key, sort_key = ?self.sort_key, "the config's key names differ from the table's");
        }
    }
}

/// Why a table's key schema could not be learned now; the caller tries again later.
#[derive(Debug, thiserror::Error)]
pub enum DescribeError {
    #[error("DescribeTable: {0}")]
    Call(#[from] crate::error::ProxyError),
    #[error("DescribeTable answered {status}: {}", String::from_utf8_lossy(.body).escape_debug())]
    Refused {
        status: http::StatusCode,
        body: Bytes,
    },
    #[error("DescribeTable answer is not JSON: {0}")]
    NotJson(#[from] serde_json::Error),
    #[error("DescribeTable answer has no KeySchema")]
    NoKeySchema,
}

async fn describe(proxy: &impl OwnCalls, table: &str) -> Result<Learned, DescribeError> {
    let body = Bytes::from(serde_json::json!({ "TableName": table }).to_string());
    let (status, body) = proxy.call(&Operation::DescribeTable, body).await?;
    if !status.is_success() {
        return Err(DescribeError::Refused { status, body });
    }
    let value: Value = serde_json::from_slice(&body)?;
    key_schema(&value).ok_or(DescribeError::NoKeySchema)
}

/// The HASH and RANGE attribute names and types of a `DescribeTable` answer.
fn key_schema(describe: &Value) -> Option<Learned> {
    let table = describe.get("Table")?;
    let schema = table.get("KeySchema")?.as_array()?;
    let key = |kind: &str| {
        schema
            .iter()
            .find(|k| k.get("KeyType").and_then(Value::as_str) == Some(kind))
            .and_then(|k| k.get("AttributeName")?.as_str())
            .map(str::to_owned)
    };
    let definitions = table.get("AttributeDefinitions").and_then(Value::as_array);
    let type_of = |name: &str| {
        definitions?
            .iter()
            .find(|d| d.get("AttributeName").and_then(Value::as_str) == Some(name))
            .and_then(|d| ScalarType::from_name(d.get("AttributeType")?.as_str()?))
    };
    let partition_key = key("HASH")?;
    let sort_key = key("RANGE");
    let replicas = table
        .get("Replicas")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| r.get("RegionName")?.as_str());
    let arn = table
        .get("TableArn")
        .and_then(Value::as_str)
        .and_then(crate::tables::scope_of)
        .map(|scope| scope.with_replicas(replicas));
    let types = match (&sort_key, type_of(&partition_key)) {
        (_, None) => None,
        (None, Some(hash)) => Some((hash, None)),
        (Some(range), Some(hash)) => type_of(range).map(|range| (hash, Some(range))),
    };
    Some(Learned {
        partition_key,
        sort_key,
        types,
        arn,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_hash_and_range_keys() {
        let answer = serde_json::json!({"Table": {
            "KeySchema": [
                {"AttributeName": "Category", "KeyType": "RANGE"},
                {"AttributeName": "ItemID", "KeyType": "HASH"}
            ],
            "AttributeDefinitions": [
                {"AttributeName": "ItemID", "AttributeType": "S"},
                {"AttributeName": "Category", "AttributeType": "N"}
            ]
        }});
        assert_eq!(
            key_schema(&answer),
            Some(Learned {
                partition_key: "ItemID".into(),
                sort_key: Some("Category".into()),
                types: Some((ScalarType::S, Some(ScalarType::N))),
                arn: None,
            })
        );
        let hash_only = serde_json::json!({"Table": {"KeySchema": [{"AttributeName": "K", "KeyType": "HASH"}]}});
        assert_eq!(
            key_schema(&hash_only),
            Some(Learned {
                partition_key: "K".into(),
                sort_key: None,
                types: None,
                arn: None,
            })
        );
        assert_eq!(key_schema(&serde_json::json!({})), None);
    }

    #[test]
    fn keeps_key_types_only_for_the_keys_the_config_names() {
        let learned = Learned {
            partition_key: "ItemID".into(),
            sort_key: None,
            types: Some((ScalarType::B, None)),
            arn: crate::tables::scope_of("arn:aws:dynamodb:us-east-1:123456789012:table/T"),
        };
        let mut table = TableConfig {
            name: "T".into(),
            partition_key: None,
            sort_key: None,
            key_types: None,
            key_prefix: None,
            version_attribute: None,
            audit: false,
            arn: None,
            shared: crate::plan::Shared::default(),
        };
        learned.merge_into(&mut table);
        assert_eq!(table.partition_key.as_deref(), Some("ItemID"));
        assert_eq!(table.key_types, Some((ScalarType::B, None)));
        assert_eq!(
            table.arn.as_ref().map(|a| a.account.as_str()),
            Some("123456789012")
        );
        let mut other = TableConfig {
            partition_key: Some("Other".into()),
            key_types: None,
            ..table
        };
        learned.merge_into(&mut other);
        assert_eq!(other.key_types, None);
    }
}
