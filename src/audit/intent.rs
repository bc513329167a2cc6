//! The audit write-ahead: what an audited write leaves in the spool, and how the shipper
//! tells what it may ship.
//!
//! A write's records are appended as **intents** before the request is sent, and their fsync
//! runs while the region works; the client's answer waits for both. The answer then
//! **settles** them: accepted or unknown (the final records, with what only the answer
//! knows), or cancelled (the write was refused: nothing is shipped). The settlement needs no
//! fsync of its own before the answer; the next group commit carries it, and the auditor
//! keeps it in memory for the shipper meanwhile. An intent a crash left unsettled is settled
//! by recovery: on a versioned table by reading the item (the write id the sidecar stores
//! beside the version tells applied from not), elsewhere it ships as `Outcome = "unknown"`.
//!
//! Frames in the spool, told apart by their first byte:
//! - `{...}`: a record, shipped as it is (what earlier versions spooled);
//! - `I{"check":..,"record":{...}}`: an intent, one per record;
//! - `S[{...},..]`: the settlement of one write: for each record, its `EventId` and the
//!   attributes its final form changes (`null` for one it drops), laid over the intent's
//!   record when it ships, so a large item's image is spooled once, not twice;
//! - `C["<event id>",..]`: the event ids of a refused write's intents.

use std::collections::{HashMap, HashSet};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use super::record::raw;
use super::spool::RecordId;
use crate::config::WRITE_ID_ATTRIBUTE;
use crate::plan::Plan;
use crate::wire::items::{WriteKind, writes};

/// What recovery reads to tell whether a versioned write was applied: the item's stored key
/// and the write id and version the write would leave on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    pub table: String,
    /// The key as sent (stored, behind the table's prefix).
    pub key: Map<String, Value>,
    pub version_attribute: String,
    /// The version the write stores, as DynamoDB's number text.
    pub version: String,
    pub write_id_attribute: String,
    pub write_id: String,
}

/// The recovery check of each audited write of `sent` (in [`record_count`] order), where one
/// can tell: a versioned put (its item carries the version and write id it stores) or
/// update (`write_id`, the request's, goes on the item; the version it stores is known
/// only to DynamoDB). `None` for the others.
///
/// [`record_count`]: super::record::record_count
pub fn checks(plan: &Plan, sent: &Map<String, Value>, write_id: &str) -> Vec<Option<Check>> {
    writes(&plan.operation, sent)
        .into_iter()
        .filter_map(|w| Some((plan.audit_of(w.table)?, w)))
        .map(|(audited, w)| {
            let versioned = plan.version_of(w.table)?;
            let key_names = std::iter::once(&audited.partition_key).chain(&audited.sort_key);
            let key = key_names
                .map(|name| Some((name.clone(), w.map.get(name)?.clone())))
                .collect::<Option<Map<String, Value>>>()?;
            let text =
                |name: &str, tag: &str| w.map.get(name)?.get(tag)?.as_str().map(str::to_owned);
            let (version, write_id) = match w.kind {
                WriteKind::Put => (
                    text(&versioned.attribute, "N")?,
                    text(WRITE_ID_ATTRIBUTE, "S")?,
                ),
                WriteKind::Update if !write_id.is_empty() => (String::new(), write_id.to_owned()),
                WriteKind::Update | WriteKind::Delete => return None,
            };
            Some(Check {
                table: w.table.to_owned(),
                key,
                version_attribute: versioned.attribute.clone(),
                version,
                write_id_attribute: WRITE_ID_ATTRIBUTE.to_owned(),
                write_id,
            })
        })
        .collect()
}

/// One frame of the spool, read.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// A record to ship as it is.
    Record(Bytes),
    Intent {
        event: String,
        record: Bytes,
        check: Option<Check>,
    },
    /// The settlement of one write: each record's changes, by event id.
    Settled(Vec<(String, Bytes)>),
    Cancelled(Vec<String>),
}

#[derive(Deserialize)]
struct IntentBody<'a> {
    check: Option<Check>,
    #[serde(borrow)]
    record: &'a RawValue,
}

/// An intent frame for `record`.
pub fn intent(record: &[u8], check: Option<&Check>) -> Bytes {
    let check = serde_json::to_string(&check).unwrap_or_else(|_| "null".into());
    let mut frame = Vec::with_capacity(record.len() + check.len() + 24);
    frame.extend_from_slice(b"I{\"check\":");
    frame.extend_from_slice(check.as_bytes());
    frame.extend_from_slice(b",\"record\":");
    frame.extend_from_slice(record);
    frame.push(b'}');
    Bytes::from(frame)
}

/// What turns the intent `record` into the `final` one: the attributes that differ, `null`
/// for one the final record drops, and the `EventId` that names them.
pub fn delta(record: &[u8], final_record: &[u8]) -> Option<Bytes> {
    raw::delta(record, final_record).map(Bytes::from)
}

/// The intent's `record` with a settlement's `changes` laid over it.
pub fn overlay(record: &[u8], changes: &[u8]) -> Option<Bytes> {
    raw::overlay(record, changes).map(Bytes::from)
}

/// The settlement frame of one write: each record's [`delta`].
pub fn settled(records: &[Bytes]) -> Bytes {
    let mut frame = Vec::with_capacity(records.iter().map(Bytes::len).sum::<usize>() + 4);
    frame.extend_from_slice(b"S[");
    for (i, record) in records.iter().enumerate() {
        if i > 0 {
            frame.push(b',');
        }
        frame.extend_from_slice(record);
    }
    frame.push(b']');
    Bytes::from(frame)
}

/// The frame cancelling a refused write's intents.
pub fn cancelled(events: &[String]) -> Bytes {
    let mut frame = b"C".to_vec();
    frame.extend_from_slice(json!(events).to_string().as_bytes());
    Bytes::from(frame)
}

/// Reads a frame; `None` for one this version cannot read (it stays spooled, unshipped).
pub fn read(frame: &Bytes) -> Option<Frame> {
    match frame.first()? {
        b'{' => Some(Frame::Record(frame.clone())),
        b'I' => {
            let body: IntentBody<'_> = serde_json::from_slice(&frame[1..]).ok()?;
            let record = Bytes::copy_from_slice(body.record.get().as_bytes());
            Some(Frame::Intent {
                event: event_id(&record)?,
                record,
                check: body.check,
            })
        }
        b'S' => {
            let records: Vec<&RawValue> = serde_json::from_slice(&frame[1..]).ok()?;
            let records = records
                .into_iter()
                .map(|r| {
                    let record = Bytes::copy_from_slice(r.get().as_bytes());
                    Some((event_id(&record)?, record))
                })
                .collect::<Option<Vec<_>>>()?;
            Some(Frame::Settled(records))
        }
        b'C' => serde_json::from_slice(&frame[1..])
            .ok()
            .map(Frame::Cancelled),
        _ => None,
    }
}

/// The event ids a frame names.
pub fn events(frame: &Frame) -> Vec<String> {
    match frame {
        Frame::Record(record) => event_id(record).into_iter().collect(),
        Frame::Intent { event, .. } => vec![event.clone()],
        Frame::Settled(records) => records.iter().map(|(e, _)| e.clone()).collect(),
        Frame::Cancelled(events) => events.clone(),
    }
}

/// A record's `EventId`.
pub fn event_id(record: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Id {
        #[serde(rename = "EventId")]
        event: S,
    }
    #[derive(Deserialize)]
    struct S {
        #[serde(rename = "S")]
        s: String,
    }
    serde_json::from_slice::<Id>(record)
        .ok()
        .map(|id| id.event.s)
}

/// `record` with its `Outcome` set to `outcome`.
pub fn with_outcome(record: &[u8], outcome: &str) -> Option<Bytes> {
    let mut item: Map<String, Value> = serde_json::from_slice(record).ok()?;
    item.insert("Outcome".into(), json!({ "S": outcome }));
    serde_json::to_vec(&item).ok().map(Bytes::from)
}

/// How a write's intents were settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settlement {
    /// Ship the intent's record with these changes ([`delta`]).
    Final(Bytes),
    /// The write was refused: ship nothing.
    Cancelled,
}

/// Settlements by event id, until the shipper takes them: the live ones the request path
/// made, and at start-up those the spool holds.
#[derive(Debug, Default)]
pub struct Settlements {
    by_event: HashMap<String, Settlement>,
}

impl Settlements {
    pub fn settle(&mut self, records: &[(String, Bytes)]) {
        for (event, record) in records {
            self.by_event
                .insert(event.clone(), Settlement::Final(record.clone()));
        }
    }

    pub fn cancel(&mut self, events: &[String]) {
        for event in events {
            self.by_event.insert(event.clone(), Settlement::Cancelled);
        }
    }

    /// Learns a settlement frame read back from the spool.
    pub fn learn(&mut self, frame: &Frame) {
        match frame {
            Frame::Settled(records) => self.settle(records),
            Frame::Cancelled(events) => self.cancel(events),
            Frame::Record(_) | Frame::Intent { .. } => {}
        }
    }

    pub fn len(&self) -> usize {
        self.by_event.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_event.is_empty()
    }
}

/// What the shipper does with one window of the spool's oldest frames.
#[derive(Debug, Default, PartialEq)]
pub struct Resolved {
    /// Records to ship, each under the id acknowledged once it is stored.
    pub ship: Vec<(RecordId, Bytes)>,
    /// Frames done with: cancelled intents, settlement frames whose intents are all gone.
    pub ack: Vec<RecordId>,
    /// Intents an earlier run left unsettled: recovery decides.
    pub recover: Vec<(RecordId, Bytes, Option<Check>)>,
    /// Intents of writes still in flight.
    pub waiting: usize,
    /// Frames this version cannot read (kept, never shipped).
    pub unreadable: usize,
}

/// Sorts a window of the spool's oldest frames (in append order). `live` is the first id
/// this process appended: an unsettled intent before it belongs to a run that ended. A
/// settlement stays in `settlements` until its own frame is done with: until then a
/// shipment that fails finds it again in the next round.
pub fn resolve(
    window: Vec<(RecordId, Bytes)>,
    settlements: &mut Settlements,
    live: RecordId,
) -> Resolved {
    let frames: Vec<(RecordId, Option<Frame>)> =
        window.into_iter().map(|(id, f)| (id, read(&f))).collect();
    let mut resolved = Resolved::default();
    // Every intent still spooled: the window holds all of them older than its last frame.
    let mut present = HashSet::new();
    for (id, frame) in &frames {
        match frame {
            Some(Frame::Record(record)) => resolved.ship.push((*id, record.clone())),
            Some(Frame::Intent {
                event,
                record,
                check,
            }) => {
                present.insert(event.clone());
                match settlements.by_event.get(event) {
                    Some(Settlement::Final(changes)) => {
                        // Changes that do not read leave the intent's record as it is.
                        let settled = overlay(record, changes).unwrap_or_else(|| record.clone());
                        resolved.ship.push((*id, settled));
                    }
                    Some(Settlement::Cancelled) => resolved.ack.push(*id),
                    None if *id < live => {
                        resolved.recover.push((*id, record.clone(), check.clone()));
                    }
                    None => resolved.waiting += 1,
                }
            }
            Some(Frame::Settled(_) | Frame::Cancelled(_)) => {}
            None => resolved.unreadable += 1,
        }
    }
    for (id, frame) in &frames {
        let events: Vec<&String> = match frame {
            Some(Frame::Settled(records)) => records.iter().map(|(e, _)| e).collect(),
            Some(Frame::Cancelled(events)) => events.iter().collect(),
            _ => continue,
        };
        // Its intents come before it, so absent from the window they are acknowledged:
        // what it settled is done.
        if events.iter().all(|e| !present.contains(*e)) {
            for event in events {
                settlements.by_event.remove(event);
            }
            resolved.ack.push(*id);
        }
    }
    resolved
}

/// What recovery found of a write an earlier run left unsettled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovered {
    Applied,
    NotApplied,
    Unknown,
}

/// The GetItem that reads what recovery needs of the item.
pub fn recovery_request(check: &Check) -> Bytes {
    let body = json!({
        "TableName": check.table,
        "Key": check.key,
        "ConsistentRead": true,
        "ProjectionExpression": "#v, #w",
        "ExpressionAttributeNames": {
            "#v": check.version_attribute,
            "#w": check.write_id_attribute,
        },
    });
    Bytes::from(body.to_string())
}

/// Reads the recovery GetItem's answer. The item carries this write's id: applied. It holds
/// an older version than the write would store (or none, or no item): not applied, since
/// versions only grow and this write's was the next. Anything else (a later write on top,
/// a delete since) cannot tell.
pub fn recovered(check: &Check, answer: &[u8]) -> Recovered {
    let Ok(answer) = serde_json::from_slice::<Map<String, Value>>(answer) else {
        return Recovered::Unknown;
    };
    let Some(item) = answer.get("Item").and_then(Value::as_object) else {
        return Recovered::Unknown;
    };
    let string = |name: &str, tag: &str| item.get(name)?.get(tag)?.as_str().map(str::to_owned);
    if string(&check.write_id_attribute, "S").as_deref() == Some(check.write_id.as_str()) {
        return Recovered::Applied;
    }
    let number = |text: &str| text.trim().parse::<u128>().ok();
    match (
        string(&check.version_attribute, "N").as_deref().map(number),
        number(&check.version),
    ) {
        (None, Some(_)) => Recovered::NotApplied,
        (Some(Some(stored)), Some(written)) if stored < written => Recovered::NotApplied,
        _ => Recovered::Unknown,
    }
}

#[cfg(test)]
mod tests;
