//! `globalscale audit history`: one item's audit records, oldest first, read back from the
//! audit table. It stands beside the request path rather than in it: the `Query` goes out
//! through [`Proxy::call`], so it is signed and routed to a healthy region exactly as the
//! running sidecar would send it. Records are only read here; the shipper writes them.

use std::fmt::Write as _;
use std::io;

use bytes::Bytes;
use http::StatusCode;
use serde_json::{Map, Value, json};

use crate::app::{App, AppError};
use crate::audit::record::item_key as keys;
use crate::call::OwnCalls;
use crate::config::{Config, REGION_PLACEHOLDER};
use crate::error::ProxyError;
use crate::proxy::Proxy;
use crate::snapshot::policies;
use crate::wire::{self, Operation};

/// One audit record as the audit table stores it (DynamoDB attribute-value JSON).
pub type Item = Map<String, Value>;

/// Whose history to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    /// The audited table.
    pub table: String,
    /// The partition key as clients send it: numbers as their text, binary as base64.
    pub key: String,
    pub sort_key: Option<String>,
    /// The home region of the sidecars that wrote the item, when it is not this config's:
    /// `{region}` in the table's `key_prefix` resolves to it.
    pub home_region: Option<String>,
}

/// How the records are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Aligned columns and a count line, for people.
    Table,
    /// The records exactly as stored, as one pretty-printed JSON array, for tools.
    Json,
}

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("the config has no [audit] section, so there is no audit table to read")]
    NoAuditSection,
    #[error("table {table} has a sort key ({sort_key}): name the item with --sort-key too")]
    MissingSortKey { table: String, sort_key: String },
    #[error("table {table} has no sort key: leave out --sort-key")]
    UnexpectedSortKey { table: String },
    #[error("cannot read table {table}'s key schema: {source}")]
    Schema {
        table: String,
        source: crate::schema::DescribeError,
    },
    #[error(transparent)]
    Client(#[from] AppError),
    #[error("Query on {table}: {source}")]
    Proxy { table: String, source: ProxyError },
    #[error("Query on {table} failed: {error_type}: {message}")]
    Upstream {
        table: String,
        error_type: String,
        message: String,
    },
    #[error("Query on {table}: unreadable answer: {detail}")]
    Answer { table: String, detail: String },
    #[error("cannot write the history: {0}")]
    Output(#[from] io::Error),
}

impl HistoryError {
    /// 2 when the config cannot answer the question at all (as for an invalid config), 1 when
    /// getting or printing the answer failed.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::NoAuditSection | Self::MissingSortKey { .. } | Self::UnexpectedSortKey { .. } => {
                2
            }
            _ => 1,
        }
    }
}

/// Reads the history `lookup` names from `config`'s audit table and prints it to `out`.
pub async fn run(
    config: Config,
    lookup: &Lookup,
    format: Format,
    out: &mut impl io::Write,
) -> Result<(), HistoryError> {
    let audit_table = config
        .audit
        .as_ref()
        .ok_or(HistoryError::NoAuditSection)?
        .table
        .clone();
    let item_key = item_key(&config, lookup);
    let proxy = App::client(config.clone()).await?;
    check_sort_key(&proxy, lookup).await?;
    let items = fetch_item(&proxy, &audit_table, &config, lookup).await?;
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut *out, &items).map_err(io::Error::from)?;
            writeln!(out)?;
        }
        Format::Table => {
            let records: Vec<Record<'_>> = items.iter().map(Record::from_item).collect();
            out.write_all(render_table(&records, &item_key, &audit_table).as_bytes())?;
        }
    }
    out.flush()?;
    Ok(())
}

/// Refuses a lookup whose key does not fit the table's schema, rather than printing "no
/// audit records" for a key no record can have. The config's schema where it names the
/// partition key; otherwise the one DescribeTable gives. A table the config does not manage
/// (audited once, since removed) is looked up as asked.
async fn check_sort_key(proxy: &Proxy, lookup: &Lookup) -> Result<(), HistoryError> {
    let configured = |proxy: &Proxy| {
        let snapshot = proxy.snapshot.load();
        snapshot
            .tables
            .get(&lookup.table)
            .map(|t| (t.partition_key.is_some(), t.sort_key.clone()))
    };
    let sort_key = match configured(proxy) {
        None => return Ok(()),
        Some((true, sort_key)) => sort_key,
        Some((false, _)) => {
            crate::schema::learn_arn(proxy, &lookup.table)
                .await
                .map_err(|source| HistoryError::Schema {
                    table: lookup.table.clone(),
                    source,
                })?;
            configured(proxy).and_then(|(_, sort_key)| sort_key)
        }
    };
    let table = lookup.table.clone();
    match (sort_key, &lookup.sort_key) {
        (Some(sort_key), None) => Err(HistoryError::MissingSortKey { table, sort_key }),
        (None, Some(_)) => Err(HistoryError::UnexpectedSortKey { table }),
        _ => Ok(()),
    }
}

/// The audit table's `ItemKey` for the item, as records are written now:
/// `<table>#<prefix><partition key>[#<sort key>]`, the parts escaped and the key hashed when
/// too long (see [`crate::audit::record::item_key`]). The prefix is the table's `key_prefix`,
/// resolved for the config's home region or for `lookup.home_region`; none without one.
pub fn item_key(config: &Config, lookup: &Lookup) -> String {
    let prefix = key_prefix(config, lookup);
    let full = keys::full(
        &lookup.table,
        &prefix,
        &lookup.key,
        lookup.sort_key.as_deref(),
    );
    keys::stored(&lookup.table, full).item_key().to_owned()
}

/// The `ItemKey` versions before escaping wrote for the item, when it differs from
/// [`item_key`]'s: parts joined as they were, so the records under it may be another item's
/// whose parts hold `#` elsewhere; [`same_item`] tells them apart by their `Key`.
pub fn legacy_item_key(config: &Config, lookup: &Lookup) -> Option<String> {
    let prefix = key_prefix(config, lookup);
    let legacy = keys::legacy(
        &lookup.table,
        &prefix,
        &lookup.key,
        lookup.sort_key.as_deref(),
    );
    (legacy != item_key(config, lookup)).then_some(legacy)
}

fn key_prefix(config: &Config, lookup: &Lookup) -> String {
    let prefix = match &lookup.home_region {
        Some(region) => config
            .table(&lookup.table)
            .and_then(|t| t.key_prefix.as_ref())
            .map(|p| p.replace(REGION_PLACEHOLDER, region)),
        None => policies(config, None)
            .remove(&lookup.table)
            .and_then(|t| t.key_prefix),
    };
    prefix.unwrap_or_default()
}

/// Whether an old record found under [`legacy_item_key`] is the looked-up item's: its `Key`
/// (the key as the client sees it) holds exactly the looked-up parts. Best effort: `Key`
/// names no part as partition or sort key, so an item whose parts are the same two strings
/// the other way round, and whose joined key is the same, passes too.
pub fn same_item(item: &Item, lookup: &Lookup) -> bool {
    let Some(key) = item
        .get("Key")
        .and_then(|k| k.get("M"))
        .and_then(Value::as_object)
    else {
        return false;
    };
    let mut found: Vec<&str> = key
        .values()
        .filter_map(|v| {
            let v = v.as_object()?;
            ["S", "N", "B"].iter().find_map(|t| v.get(*t)?.as_str())
        })
        .collect();
    let mut wanted: Vec<&str> = std::iter::once(lookup.key.as_str())
        .chain(lookup.sort_key.as_deref())
        .collect();
    found.sort_unstable();
    wanted.sort_unstable();
    found == wanted
}

/// The item's records under its key, and its old records under the key older versions wrote,
/// oldest first.
pub async fn fetch_item(
    proxy: &Proxy,
    audit_table: &str,
    config: &Config,
    lookup: &Lookup,
) -> Result<Vec<Item>, HistoryError> {
    let mut items = fetch(proxy, audit_table, &item_key(config, lookup)).await?;
    if let Some(legacy) = legacy_item_key(config, lookup) {
        let old = fetch(proxy, audit_table, &legacy).await?;
        items.extend(old.into_iter().filter(|item| same_item(item, lookup)));
        items.sort_by(|a, b| scalar(a, "EventId").cmp(&scalar(b, "EventId")));
    }
    Ok(items)
}

/// Every record stored under `item_key`, oldest first, one `Query` page after another.
pub async fn fetch(
    proxy: &Proxy,
    audit_table: &str,
    item_key: &str,
) -> Result<Vec<Item>, HistoryError> {
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let body = query_body(audit_table, item_key, start.as_ref());
        let (status, answer) = proxy
            .call(&Operation::Query, body)
            .await
            .map_err(|source| HistoryError::Proxy {
                table: audit_table.to_owned(),
                source,
            })?;
        let page = read_page(audit_table, status, &answer)?;
        items.extend(page.items);
        match page.last_evaluated_key {
            Some(next) => start = Some(next),
            None => return Ok(items),
        }
    }
}

/// One page's `Query`. EventIds are ULIDs, so ascending order is oldest first.
fn query_body(audit_table: &str, item_key: &str, start: Option<&Value>) -> Bytes {
    let mut body = json!({
        "TableName": audit_table,
        "KeyConditionExpression": "#key = :key",
        "ExpressionAttributeNames": {"#key": "ItemKey"},
        "ExpressionAttributeValues": {":key": {"S": item_key}},
        "ScanIndexForward": true,
    });
    if let (Some(start), Some(fields)) = (start, body.as_object_mut()) {
        fields.insert("ExclusiveStartKey".to_owned(), start.clone());
    }
    Bytes::from(body.to_string())
}

/// What one `Query` answer holds for the history.
#[derive(Debug, serde::Deserialize)]
struct Page {
    #[serde(rename = "Items", default)]
    items: Vec<Item>,
    #[serde(rename = "LastEvaluatedKey")]
    last_evaluated_key: Option<Value>,
}

fn read_page(audit_table: &str, status: StatusCode, body: &[u8]) -> Result<Page, HistoryError> {
    if !status.is_success() {
        return Err(upstream_error(audit_table, status, body));
    }
    serde_json::from_slice(body).map_err(|e| HistoryError::Answer {
        table: audit_table.to_owned(),
        detail: e.to_string(),
    })
}

/// DynamoDB's error name and message; a body that is not DynamoDB's (a proxy's HTML page)
/// is shown as it came, under its status.
fn upstream_error(audit_table: &str, status: StatusCode, body: &[u8]) -> HistoryError {
    #[derive(serde::Deserialize)]
    struct Message {
        // DynamoDB spells it `message`, a few of its errors `Message`.
        #[serde(alias = "Message")]
        message: Option<String>,
    }
    let message = serde_json::from_slice::<Message>(body)
        .ok()
        .and_then(|m| m.message)
        .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
    HistoryError::Upstream {
        table: audit_table.to_owned(),
        error_type: wire::error_name(body).unwrap_or_else(|| status.to_string()),
        message,
    }
}

/// The columns of one record, borrowed from it; `None` where the record lacks the attribute.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Record<'a> {
    pub timestamp: Option<&'a str>,
    pub operation: Option<&'a str>,
    pub outcome: Option<&'a str>,
    pub version: Option<&'a str>,
    pub principal: Option<&'a str>,
    pub region: Option<&'a str>,
    pub event_id: Option<&'a str>,
}

impl<'a> Record<'a> {
    pub fn from_item(item: &'a Item) -> Self {
        Self {
            timestamp: scalar(item, "Timestamp"),
            operation: scalar(item, "Operation"),
            outcome: scalar(item, "Outcome"),
            version: scalar(item, "Version"),
            principal: scalar(item, "Principal"),
            region: scalar(item, "Region"),
            event_id: scalar(item, "EventId"),
        }
    }

    fn columns(&self) -> [&'a str; COLUMNS.len()] {
        [
            self.timestamp,
            self.operation,
            self.outcome,
            self.version,
            self.principal,
            self.region,
            self.event_id,
        ]
        .map(|cell| cell.unwrap_or("-"))
    }
}

/// The text of a string or number attribute.
fn scalar<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    let value = item.get(name)?.as_object()?;
    value.get("S").or_else(|| value.get("N"))?.as_str()
}

const COLUMNS: [&str; 7] = [
    "TIMESTAMP",
    "OPERATION",
    "OUTCOME",
    "VERSION",
    "PRINCIPAL",
    "REGION",
    "EVENT ID",
];

/// The human table: a header, one aligned row per record, then how many records `item_key`
/// has in `audit_table`.
pub fn render_table(records: &[Record<'_>], item_key: &str, audit_table: &str) -> String {
    let mut out = String::new();
    if records.is_empty() {
        let _ = writeln!(out, "no audit records for {item_key} in {audit_table}");
        return out;
    }
    let rows: Vec<[&str; COLUMNS.len()]> = records.iter().map(Record::columns).collect();
    let mut widths = COLUMNS.map(|c| c.chars().count());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    for row in std::iter::once(&COLUMNS).chain(&rows) {
        let (last, padded) = row.split_last().unwrap_or((&"", &[]));
        for (cell, width) in padded.iter().zip(widths) {
            let _ = write!(out, "{cell:<width$}  ");
        }
        let _ = writeln!(out, "{last}");
    }
    let noun = if rows.len() == 1 { "record" } else { "records" };
    let _ = writeln!(out, "{} {noun} for {item_key} in {audit_table}", rows.len());
    out
}

#[cfg(test)]
mod tests;
