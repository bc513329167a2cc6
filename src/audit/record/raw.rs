//! A record's top-level attributes as the JSON text they already are. The settlement's
//! delta, its overlay on the intent and the chain's link each look at a record's attributes
//! by name and never inside one (an image of hundreds of kilobytes is copied, not parsed into
//! values and printed again).
//!
//! The text written back is the same, byte for byte, as parsing the record into a `Map` and
//! serializing it: records are serde_json's compact output with every map's keys sorted (it
//! keeps no insertion order here), so a value's text is already its canonical form, and the
//! attributes are written sorted. That is what lets the chain hash the text it ships
//! (`chain::digest` of the parsed item gives the same hash: see the tests).

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;

/// A record's attributes by name, each as its JSON text.
pub type Attributes<'a> = BTreeMap<String, &'a RawValue>;

/// An attribute about to be written: as read, new, or removed (`null` in a delta).
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Attribute<'a> {
    Raw(&'a RawValue),
    New(Value),
    Removed(Option<()>),
}

/// The attributes of `record`, a JSON object; `None` for anything else.
pub fn read(record: &[u8]) -> Option<Attributes<'_>> {
    serde_json::from_slice(record).ok()
}

/// `attributes` written as a record (keys sorted, compact).
pub fn write<V: Serialize>(attributes: &BTreeMap<String, V>) -> Option<Vec<u8>> {
    serde_json::to_vec(attributes).ok()
}

/// What turns `before` into `after`: the attributes whose text differs, `null` for those
/// `after` drops, and `EventId` always, which names the record the changes are for.
pub fn delta(before: &[u8], after: &[u8]) -> Option<Vec<u8>> {
    let before = read(before)?;
    let after = read(after)?;
    let mut changes: BTreeMap<String, Attribute<'_>> = BTreeMap::new();
    changes.insert("EventId".into(), Attribute::Raw(after.get("EventId")?));
    for (name, value) in &after {
        if before.get(name).map(|v| v.get()) != Some(value.get()) {
            changes.insert(name.clone(), Attribute::Raw(value));
        }
    }
    for name in before.keys().filter(|name| !after.contains_key(*name)) {
        changes.insert(name.clone(), Attribute::Removed(None));
    }
    write(&changes)
}

/// `record` with `changes` (a [`delta`]) laid over it.
pub fn overlay(record: &[u8], changes: &[u8]) -> Option<Vec<u8>> {
    let mut item = read(record)?;
    let changes: BTreeMap<String, Option<&RawValue>> = serde_json::from_slice(changes).ok()?;
    for (name, value) in changes {
        match value {
            Some(value) => item.insert(name, value),
            None => item.remove(&name),
        };
    }
    write(&item)
}

#[cfg(test)]
mod tests {
    use serde_json::{Map, json};

    use super::*;

    fn record() -> Vec<u8> {
        let item = json!({
            "EventId": {"S": "01J"},
            "Key": {"M": {"pk": {"S": "a \"quoted\" ünïcode \u{1} key"}, "sk": {"N": "1e3"}}},
            "NewImage": {"M": {"z": {"L": [{"S": "x"}, {"BOOL": true}]}, "a": {"NULL": true}}},
            "Outcome": {"S": "unknown"},
            "Region": {"S": "unknown"},
        });
        serde_json::to_vec(&item).unwrap()
    }

    #[test]
    fn written_back_as_the_parsed_map_would_be() {
        let record = record();
        let parsed: Map<String, Value> = serde_json::from_slice(&record).unwrap();
        assert_eq!(
            write(&read(&record).unwrap()).unwrap(),
            serde_json::to_vec(&parsed).unwrap()
        );
    }

    #[test]
    fn delta_names_what_changed_and_overlay_restores_it() {
        let before = record();
        let mut after: Map<String, Value> = serde_json::from_slice(&before).unwrap();
        after.insert("Outcome".into(), json!({"S": "accepted"}));
        after.insert("RequestId".into(), json!({"S": "R1"}));
        after.remove("NewImage");
        let after = serde_json::to_vec(&after).unwrap();
        let changes = delta(&before, &after).unwrap();
        let changes_read: Value = serde_json::from_slice(&changes).unwrap();
        assert_eq!(
            changes_read,
            json!({
                "EventId": {"S": "01J"},
                "NewImage": null,
                "Outcome": {"S": "accepted"},
                "RequestId": {"S": "R1"},
            })
        );
        assert_eq!(overlay(&before, &changes).unwrap(), after);
    }

    #[test]
    fn not_an_object_reads_as_none() {
        assert!(read(b"[1]").is_none());
        assert!(delta(b"{}", b"nope").is_none());
        assert!(overlay(&record(), b"[]").is_none());
    }
}
