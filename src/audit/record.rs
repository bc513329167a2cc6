//! Audit records: what one accepted (or possibly accepted) write leaves in the audit table,
//! built as a pure function of the request as sent, the region's answer and the facts of the
//! exchange (who, where, when), before the answer is restored for the client.
//!
//! One record per item written, as an item of the audit table:
//! - `ItemKey` = `<table>#<stored partition key>[#<stored sort key>]`, the stored key being the
//!   one the table holds (behind its `key_prefix`), so one Query returns an item's history;
//! - `EventId`, a ULID fixed here, before the record is spooled, so shipping it twice writes
//!   the same item twice and never two items;
//! - `Table`, `Operation`, `Region`, `Timestamp`, `Outcome`, `Principal`, `RequestId`, `Key`
//!   (as the client sees it), `Version` on versioned tables, and the images the config asks
//!   for, as the client would see them. Images that would take the record past DynamoDB's
//!   400 KB item limit are left out and named in `ImagesDropped`: the record always goes.

use serde_json::{Map, Value, json};
use ulid::Ulid;

use crate::config::{AuditImages, WRITE_ID_ATTRIBUTE};
use crate::plan::{Audited, Plan};
use crate::wire::items::{Write, WriteKind, writes};

/// DynamoDB's item limit. A record's JSON is larger than its item size (quotes, type tags),
/// so measuring the JSON errs on the safe side.
pub const MAX_RECORD_BYTES: usize = 400 * 1024;

/// Whether DynamoDB certainly applied the write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The region answered success.
    Accepted,
    /// The write may have been applied: no answer, or a 5xx, after it was sent.
    Unknown,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Unknown => "unknown",
        }
    }
}

/// What the request and answer do not say about themselves.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    /// The operation the client sent (a BatchWriteItem stays one even when sent as a
    /// transaction).
    pub operation: &'a str,
    /// The region that served (or may have served) the write.
    pub region: &'a str,
    /// Who sent it: the access key id of the client's signature.
    pub principal: &'a str,
    /// The region's request id, when it answered.
    pub request_id: Option<&'a str>,
    pub outcome: Outcome,
    pub images: AuditImages,
}

/// The records of one write request: one per audited item it wrote. `sent` is the request as
/// sent upstream (stored keys); `answer` the region's success body before restore, if any.
/// `next_id` hands out event ids in order.
pub fn records(
    plan: &Plan,
    sent: &Map<String, Value>,
    answer: Option<&Map<String, Value>>,
    facts: &Facts<'_>,
    next_id: &mut dyn FnMut() -> Ulid,
) -> Vec<Map<String, Value>> {
    let unprocessed = answer
        .and_then(|a| a.get("UnprocessedItems"))
        .map(|items| {
            let mut body = Map::new();
            body.insert("RequestItems".into(), items.clone());
            body
        })
        .unwrap_or_default();
    let unprocessed = writes(&crate::wire::Operation::BatchWriteItem, &unprocessed);
    let not_applied = |w: &Write<'_>| {
        unprocessed
            .iter()
            .any(|u| u.table == w.table && u.kind == w.kind && u.map == w.map)
    };
    let returned = answer
        .and_then(|a| a.get("Attributes"))
        .and_then(Value::as_object);
    let returns = sent
        .get("ReturnValues")
        .and_then(Value::as_str)
        .unwrap_or("NONE");
    writes(&plan.operation, sent)
        .into_iter()
        .filter(|w| !not_applied(w))
        .filter_map(|w| {
            let audited = plan.audit_of(w.table)?;
            let images = Images::of(&w, returned, returns);
            record(plan, audited, &w, &images, facts, next_id())
        })
        .collect()
}

/// How many event ids [`records`] takes for a request with no answer yet.
pub fn record_count(plan: &Plan, sent: &Map<String, Value>) -> usize {
    writes(&plan.operation, sent)
        .iter()
        .filter(|w| plan.audit_of(w.table).is_some())
        .count()
}

/// The images of one item as the region holds them (stored keys, hidden attributes).
struct Images<'a> {
    new: Option<&'a Map<String, Value>>,
    old: Option<&'a Map<String, Value>>,
}

impl<'a> Images<'a> {
    /// A put carries its new image; `ReturnValues` of a single-item write brings the rest.
    fn of(
        write: &Write<'a>,
        returned: Option<&'a Map<String, Value>>,
        returns: &str,
    ) -> Images<'a> {
        let new = match (write.kind, returns) {
            (WriteKind::Put, _) => Some(write.map),
            (WriteKind::Update, "ALL_NEW") => returned,
            _ => None,
        };
        let old = match (write.kind, returns) {
            (WriteKind::Put | WriteKind::Delete | WriteKind::Update, "ALL_OLD") => returned,
            _ => None,
        };
        Images { new, old }
    }
}

fn record(
    plan: &Plan,
    audited: &Audited,
    write: &Write<'_>,
    images: &Images<'_>,
    facts: &Facts<'_>,
    event: Ulid,
) -> Option<Map<String, Value>> {
    let mut item_key = write.table.to_owned();
    let mut key = Map::new();
    for name in std::iter::once(&audited.partition_key).chain(&audited.sort_key) {
        let value = write.map.get(name)?;
        item_key.push('#');
        item_key.push_str(scalar_text(value)?);
        key.insert(name.clone(), value.clone());
    }
    let client_view = |item: &Map<String, Value>| client_view(plan, write.table, audited, item);
    let mut record = Map::new();
    let mut put = |name: &str, value: Value| {
        record.insert(name.to_owned(), value);
    };
    put("ItemKey", json!({ "S": item_key }));
    put("EventId", json!({ "S": event.to_string() }));
    put("Table", json!({ "S": write.table }));
    put("Operation", json!({ "S": facts.operation }));
    put("Region", json!({ "S": facts.region }));
    let at = humantime::format_rfc3339_millis(event.datetime());
    put("Timestamp", json!({ "S": at.to_string() }));
    put("Outcome", json!({ "S": facts.outcome.as_str() }));
    put("Principal", json!({ "S": facts.principal }));
    if let Some(request_id) = facts.request_id {
        put("RequestId", json!({ "S": request_id }));
    }
    put("Key", json!({ "M": client_view(&key) }));
    if let Some(version) = version(plan, write, images) {
        put("Version", version);
    }
    if facts.images.new_image()
        && let Some(new) = images.new
    {
        put("NewImage", json!({ "M": client_view(new) }));
    }
    if facts.images.old_image()
        && let Some(old) = images.old
    {
        put("OldImage", json!({ "M": client_view(old) }));
    }
    Some(fit(record))
}

/// The new version of a versioned item: the put's or the updated item's; a delete's is the
/// version it removed.
fn version(plan: &Plan, write: &Write<'_>, images: &Images<'_>) -> Option<Value> {
    let versioned = plan.version_of(write.table)?;
    let image = match write.kind {
        WriteKind::Put | WriteKind::Update => images.new,
        WriteKind::Delete => images.old,
    }?;
    image
        .get(&versioned.attribute)
        .filter(|v| v.get("N").is_some())
        .cloned()
}

/// An item as the client sees it: partition key without its prefix, no hidden attributes.
fn client_view(
    plan: &Plan,
    table: &str,
    audited: &Audited,
    item: &Map<String, Value>,
) -> Map<String, Value> {
    let mut item = item.clone();
    item.remove(WRITE_ID_ATTRIBUTE);
    if let Some(prefix) = plan.prefix_of(table)
        && let Some(Value::Object(pk)) = item.get_mut(&audited.partition_key)
        && let Some(Value::String(s)) = pk.get_mut("S")
        && let Some(bare) = s.strip_prefix(prefix.prefix.as_str())
    {
        *s = bare.to_owned();
    }
    item
}

/// A key attribute's value as text: a string as is, a number's digits, a binary's base64.
fn scalar_text(value: &Value) -> Option<&str> {
    let value = value.as_object()?;
    ["S", "N", "B"]
        .iter()
        .find_map(|t| value.get(*t))
        .and_then(Value::as_str)
}

/// Drops images, the old first, until the record fits an item.
fn fit(mut record: Map<String, Value>) -> Map<String, Value> {
    let size = |r: &Map<String, Value>| serde_json::to_vec(r).map_or(usize::MAX, |b| b.len());
    let mut dropped = Vec::new();
    for image in ["OldImage", "NewImage"] {
        // The marker's own bytes count too.
        if size(&record) + 64 <= MAX_RECORD_BYTES {
            break;
        }
        if record.remove(image).is_some() {
            dropped.push(Value::String(image.to_owned()));
        }
    }
    if !dropped.is_empty() {
        record.insert("ImagesDropped".into(), json!({ "SS": dropped }));
    }
    record
}

#[cfg(test)]
mod tests;
