//! Audit records: what one accepted (or possibly accepted) write leaves in the audit table,
//! built as a pure function of the request as sent, the region's answer and the facts of the
//! exchange (who, where, when), before the answer is restored for the client.
//!
//! One record per item written, as an item of the audit table:
//! - `ItemKey` = `<table>#<stored partition key>[#<stored sort key>]`, the stored key being the
//!   one the table holds (behind its `key_prefix`), each part escaped and a key too long for
//!   DynamoDB hashed (see [`item_key`]), so one Query returns an item's history;
//! - `EventId`, a ULID fixed here, before the record is spooled, so shipping it twice writes
//!   the same item twice and never two items;
//! - `FullItemKey`, only when `ItemKey` is a hash: the full key it hashes;
//! - `Table`, `Operation`, `Region`, `Timestamp`, `Outcome`, `Principal`, `RequestId`, `Key`
//!   (as the client sees it), `Version` on versioned tables, and the images the config asks
//!   for, as the client would see them. Images that would take the record past DynamoDB's
//!   400 KB item limit are left out and named in `ImagesDropped`: the record always goes.

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value};
use ulid::Ulid;

use crate::config::{AuditImages, WRITE_ID_ATTRIBUTE};
pub use crate::error::audit::UnstorableRecord;
use crate::plan::{Audited, Plan};
use crate::wire::items::{Write, WriteKind, writes};

pub mod item_key;
pub mod raw;

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
    /// Whether the sidecar checked that signature (`[auth] mode = "sigv4"`); without, the
    /// principal is only what the client claimed.
    pub principal_verified: bool,
    /// The region's request id, when it answered.
    pub request_id: Option<&'a str>,
    pub outcome: Outcome,
    pub images: AuditImages,
}

/// The records of one write request: one per audited item it wrote. `sent` is the request as
/// sent upstream (stored keys); `answer` the region's success body before restore, if any.
/// `next_id` hands out event ids in order.
pub fn records<'a>(
    plan: &'a Plan,
    sent: &'a Map<String, Value>,
    answer: Option<&'a Map<String, Value>>,
    facts: &Facts<'a>,
    next_id: &mut dyn FnMut() -> Ulid,
) -> Vec<Record<'a>> {
    records_for(plan, sent, answer, facts, &mut |_| next_id())
}

/// [`records`], each audited write taking the event id `id_of(n)` for its place `n` among
/// the request's audited writes (as [`record_count`] counts them), whether or not the answer
/// left it unprocessed: how a write's final records keep the ids its intents took.
pub fn records_for<'a>(
    plan: &'a Plan,
    sent: &'a Map<String, Value>,
    answer: Option<&'a Map<String, Value>>,
    facts: &Facts<'a>,
    id_of: &mut dyn FnMut(usize) -> Ulid,
) -> Vec<Record<'a>> {
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
        .filter_map(|w| Some((plan.audit_of(w.table)?, w)))
        .enumerate()
        .filter(|(_, (_, w))| !not_applied(w))
        .filter_map(|(n, (audited, w))| {
            let images = Images::of(&w, returned, returns);
            record(plan, audited, &w, &images, facts, id_of(n))
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

/// Whether every record `sent` would leave can be stored in the audit table, from the request
/// alone: pure, so admission can ask it before the write is sent. A key too long for
/// DynamoDB is no reason to refuse (its record stores it hashed), nor are images (left out
/// when too large); only a record too large without its images is.
pub fn check(plan: &Plan, sent: &Map<String, Value>) -> Result<(), UnstorableRecord> {
    let facts = Facts {
        operation: plan.client_operation.name(),
        region: "",
        principal: "",
        principal_verified: false,
        request_id: None,
        outcome: Outcome::Accepted,
        images: AuditImages::None,
    };
    // Ids are fixed-length, so any one measures the same.
    let built = records(plan, sent, None, &facts, &mut Ulid::nil);
    unstorable(&built)
}

/// The first of `built` no audit table item can hold, even without its images.
pub fn unstorable(built: &[Record<'_>]) -> Result<(), UnstorableRecord> {
    let too_large = built.iter().find(|r| r.json.len() > MAX_RECORD_BYTES);
    match too_large {
        None => Ok(()),
        Some(record) => Err(UnstorableRecord {
            table: record.attributes.table.to_owned(),
            bytes: record.json.len(),
            limit: MAX_RECORD_BYTES,
        }),
    }
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

/// One audit record: its attributes, borrowed from the request and answer where they can be,
/// and its JSON, written once when it was built.
#[derive(Debug)]
pub struct Record<'a> {
    attributes: Attributes<'a>,
    json: Vec<u8>,
}

impl Record<'_> {
    pub fn event_id(&self) -> &str {
        &self.attributes.event_id
    }

    /// The record as an audit table item in DynamoDB JSON, as the spool keeps it.
    pub fn json(&self) -> &[u8] {
        &self.json
    }

    pub fn into_json(self) -> Vec<u8> {
        self.json
    }

    /// The record as an item naming `region`: in atomic mode each region's transaction
    /// carries its own copy, since a record names the region that stores it.
    pub fn item_in(&self, region: &str) -> Map<String, Value> {
        let attributes = Attributes {
            region,
            ..self.attributes.clone()
        };
        match serde_json::to_value(&attributes) {
            Ok(Value::Object(item)) => item,
            // Every key is a string, so the record always converts to an object.
            _ => Map::new(),
        }
    }
}

fn record<'a>(
    plan: &'a Plan,
    audited: &'a Audited,
    write: &Write<'a>,
    images: &Images<'a>,
    facts: &Facts<'a>,
    event: Ulid,
) -> Option<Record<'a>> {
    let stored_key = stored_key(plan, audited, write)?;
    let view = |item: &'a Map<String, Value>, key_only: bool| ClientItem {
        item,
        key_only,
        audited,
        prefix: plan.prefix_of(write.table).map(|p| p.prefix.as_str()),
    };
    let (item_key, full_item_key) = match stored_key {
        item_key::Stored::Plain(key) => (key, None),
        item_key::Stored::Hashed { item_key, full } => (item_key, Some(full)),
    };
    let attributes = Attributes {
        item_key,
        full_item_key,
        event_id: event.to_string(),
        table: write.table,
        operation: facts.operation,
        region: facts.region,
        timestamp: humantime::format_rfc3339_millis(event.datetime()).to_string(),
        outcome: facts.outcome,
        principal: facts.principal,
        principal_verified: facts.principal_verified,
        request_id: facts.request_id,
        key: view(write.map, true),
        version: version(plan, write, images),
        new_image: images
            .new
            .filter(|_| facts.images.new_image())
            .map(|new| view(new, false)),
        old_image: images
            .old
            .filter(|_| facts.images.old_image())
            .map(|old| view(old, false)),
        images_dropped: Vec::new(),
    };
    fit(attributes)
}

/// How the item `write` names is keyed in its record: its table, the partition key behind the
/// table's prefix and the sort key, escaped, hashed when too long. `None` when a key
/// attribute is missing or not a scalar.
fn stored_key(plan: &Plan, audited: &Audited, write: &Write<'_>) -> Option<item_key::Stored> {
    let partition = scalar_text(write.map.get(&audited.partition_key)?)?;
    let (prefix, partition) = plan
        .prefix_of(write.table)
        .and_then(|p| {
            Some((
                p.prefix.as_str(),
                partition.strip_prefix(p.prefix.as_str())?,
            ))
        })
        .unwrap_or(("", partition));
    let sort = match &audited.sort_key {
        Some(name) => Some(scalar_text(write.map.get(name)?)?),
        None => None,
    };
    let full = item_key::full(write.table, prefix, partition, sort);
    Some(item_key::stored(write.table, full))
}

/// The new version of a versioned item: the put's or the updated item's; a delete's is the
/// version it removed.
fn version<'a>(plan: &Plan, write: &Write<'a>, images: &Images<'a>) -> Option<&'a Value> {
    let versioned = plan.version_of(write.table)?;
    let image = match write.kind {
        WriteKind::Put | WriteKind::Update => images.new,
        WriteKind::Delete => images.old,
    }?;
    image
        .get(&versioned.attribute)
        .filter(|v| v.get("N").is_some())
}

/// A key attribute's value as text: a string as is, a number's digits, a binary's base64.
fn scalar_text(value: &Value) -> Option<&str> {
    let value = value.as_object()?;
    ["S", "N", "B"]
        .iter()
        .find_map(|t| value.get(*t))
        .and_then(Value::as_str)
}

/// Writes the record's JSON, dropping images, the old first, until the record fits an item.
/// Measured on the JSON that is kept, so a record that fits is serialized once.
fn fit(mut attributes: Attributes<'_>) -> Option<Record<'_>> {
    // The marker's own bytes count too.
    let fits = |json: &[u8]| json.len() + 64 <= MAX_RECORD_BYTES;
    let mut json = serde_json::to_vec(&attributes).ok()?;
    if fits(&json) {
        return Some(Record { attributes, json });
    }
    let images: [(&'static str, ImageSlot); 2] = [
        ("OldImage", |a| a.old_image.take().is_some()),
        ("NewImage", |a| a.new_image.take().is_some()),
    ];
    let mut dropped = Vec::new();
    for (name, take) in images {
        if fits(&json) {
            break;
        }
        if take(&mut attributes) {
            dropped.push(name);
            json = serde_json::to_vec(&attributes).ok()?;
        }
    }
    if dropped.is_empty() {
        return Some(Record { attributes, json });
    }
    attributes.images_dropped = dropped;
    json = serde_json::to_vec(&attributes).ok()?;
    Some(Record { attributes, json })
}

/// Takes one image out of a record; whether it had one.
type ImageSlot = fn(&mut Attributes<'_>) -> bool;

/// A record's attributes. Serialized in the order of their names, as the `Map` records were
/// built in before, so the JSON is the same byte for byte.
#[derive(Debug, Clone)]
struct Attributes<'a> {
    item_key: String,
    /// The full key when `item_key` is its hash.
    full_item_key: Option<String>,
    event_id: String,
    table: &'a str,
    operation: &'a str,
    region: &'a str,
    timestamp: String,
    outcome: Outcome,
    principal: &'a str,
    principal_verified: bool,
    request_id: Option<&'a str>,
    key: ClientItem<'a>,
    version: Option<&'a Value>,
    new_image: Option<ClientItem<'a>>,
    old_image: Option<ClientItem<'a>>,
    images_dropped: Vec<&'static str>,
}

impl Serialize for Attributes<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut record = serializer.serialize_map(None)?;
        record.serialize_entry("EventId", &Typed("S", &self.event_id))?;
        if let Some(full) = &self.full_item_key {
            record.serialize_entry("FullItemKey", &Typed("S", full))?;
        }
        if !self.images_dropped.is_empty() {
            record.serialize_entry("ImagesDropped", &Typed("SS", &self.images_dropped))?;
        }
        record.serialize_entry("ItemKey", &Typed("S", &self.item_key))?;
        record.serialize_entry("Key", &Typed("M", &self.key))?;
        if let Some(new) = &self.new_image {
            record.serialize_entry("NewImage", &Typed("M", new))?;
        }
        if let Some(old) = &self.old_image {
            record.serialize_entry("OldImage", &Typed("M", old))?;
        }
        record.serialize_entry("Operation", &Typed("S", self.operation))?;
        record.serialize_entry("Outcome", &Typed("S", self.outcome.as_str()))?;
        record.serialize_entry("Principal", &Typed("S", self.principal))?;
        record.serialize_entry(
            "PrincipalVerified",
            &Typed("BOOL", &self.principal_verified),
        )?;
        record.serialize_entry("Region", &Typed("S", self.region))?;
        if let Some(request_id) = self.request_id {
            record.serialize_entry("RequestId", &Typed("S", request_id))?;
        }
        record.serialize_entry("Table", &Typed("S", self.table))?;
        record.serialize_entry("Timestamp", &Typed("S", &self.timestamp))?;
        if let Some(version) = self.version {
            record.serialize_entry("Version", version)?;
        }
        record.end()
    }
}

/// An attribute value of one type: `{"S": "..."}`, `{"M": {...}}`.
struct Typed<'t, T: ?Sized>(&'static str, &'t T);

impl<T: Serialize + ?Sized> Serialize for Typed<'_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut value = serializer.serialize_map(Some(1))?;
        value.serialize_entry(self.0, self.1)?;
        value.end()
    }
}

/// An item as the client sees it, written straight from the item as the region holds it:
/// the partition key without its prefix, no hidden attributes. Attributes come out in the
/// item's own (sorted) order.
#[derive(Debug, Clone, Copy)]
struct ClientItem<'a> {
    item: &'a Map<String, Value>,
    /// Only the key attributes.
    key_only: bool,
    audited: &'a Audited,
    /// The table's key prefix, if it has one.
    prefix: Option<&'a str>,
}

impl Serialize for ClientItem<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut item = serializer.serialize_map(None)?;
        if self.key_only {
            let partition = self.audited.partition_key.as_str();
            let sort = self.audited.sort_key.as_deref().filter(|s| *s != partition);
            let (first, second) = match sort {
                Some(sort) if sort < partition => (sort, Some(partition)),
                _ => (partition, sort),
            };
            for name in std::iter::once(first).chain(second) {
                if let Some((name, value)) = self.item.get_key_value(name) {
                    self.entry(&mut item, name, value)?;
                }
            }
        } else {
            for (name, value) in self.item {
                self.entry(&mut item, name, value)?;
            }
        }
        item.end()
    }
}

impl ClientItem<'_> {
    fn entry<M: SerializeMap>(
        &self,
        item: &mut M,
        name: &str,
        value: &Value,
    ) -> Result<(), M::Error> {
        if name == WRITE_ID_ATTRIBUTE {
            return Ok(());
        }
        if name == self.audited.partition_key
            && let Some(prefix) = self.prefix
            && let Value::Object(typed) = value
            && let Some(Value::String(stored)) = typed.get("S")
            && let Some(bare) = stored.strip_prefix(prefix)
        {
            return item.serialize_entry(name, &Unprefixed { typed, bare });
        }
        item.serialize_entry(name, value)
    }
}

/// A partition key value with its `S` replaced by the string behind the prefix.
struct Unprefixed<'a> {
    typed: &'a Map<String, Value>,
    bare: &'a str,
}

impl Serialize for Unprefixed<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut value = serializer.serialize_map(Some(self.typed.len()))?;
        for (tag, inner) in self.typed {
            if tag == "S" {
                value.serialize_entry(tag, self.bare)?;
            } else {
                value.serialize_entry(tag, inner)?;
            }
        }
        value.end()
    }
}

#[cfg(test)]
mod tests;
