//! A GetItem whose only change is its key's prefix, rewritten without a `serde_json::Value`:
//! the body decoded into a borrowed tree (strings left in the request's bytes, a map node
//! per object), the partition key prefixed and the tree serialized again.
//!
//! The whole decoding (`Decoded::Whole`) made a string for every name and value and a
//! map for every object: this path saves 9 of the 69 allocations the load harness's
//! GetItem made before it (`benches/allocations.rs`). The bytes sent are the same: the tree keeps objects as ordered maps, the last
//! of a repeated name winning, and numbers as `serde_json::Number`, and is serialized by the
//! same serializer, so it prints what the `Value` printed (a test holds the two together).
//! Anything beyond a plain GetItem (another field, a key that is not `{"S": ...}`, an
//! audited or rewritten operation) is left to the whole decoding: [`request`] returns
//! `None`.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use serde::de::{Deserialize, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, Serializer};
use serde_json::Number;

use crate::plan::Plan;
use crate::wire::{Operation, RequestView};

/// The fields of a GetItem this path takes; any other (an expression, a legacy parameter)
/// may be rewritten by a step, so it leaves the request to the whole decoding.
const FIELDS: [&str; 4] = [
    "TableName",
    "Key",
    "ConsistentRead",
    "ReturnConsumedCapacity",
];

/// The body to send, or `None` when the request is not a plain GetItem this path covers.
pub fn request(view: &RequestView<'_>, plan: &Plan) -> Option<Vec<u8>> {
    let get = Operation::GetItem;
    let covered = view.operation == get
        && plan.operation == get
        && plan.client_operation == get
        && !plan.atomic_audit
        && plan.expressions.top.is_ok();
    if !covered {
        return None;
    }
    let mut body = BTreeMap::new();
    for name in view.field_names() {
        let field = FIELDS.iter().find(|field| **field == name)?;
        let value: Borrowed<'_> = serde_json::from_str(view.raw(field)?.get()).ok()?;
        if body.insert(*field, value).is_some() {
            // Named twice: the whole decoding keeps the last, and so would this, but a
            // repeated field is no GetItem worth a second path.
            return None;
        }
    }
    let Some(Borrowed::Str(table)) = body.get("TableName") else {
        return None;
    };
    if let Some(prefix) = plan.prefix_of(table) {
        // What `key_prefix` accepts: the partition key as `{"S": <string>}`; anything else
        // is refused or left alone there.
        let Some(Borrowed::Object(key)) = body.get_mut("Key") else {
            return None;
        };
        let Some(Borrowed::Object(value)) = key.get_mut(prefix.attribute.as_str()) else {
            return None;
        };
        if value.len() != 1 {
            return None;
        }
        let Some(Borrowed::Str(key)) = value.get_mut("S") else {
            return None;
        };
        *key = Cow::Owned([prefix.prefix.as_str(), key].concat());
    }
    serde_json::to_vec(&body).ok()
}

/// An object whose first member has this name is read by `serde_json::Value` (with the
/// `raw_value` feature) as the JSON text of its value: such an object leaves the request
/// to the whole decoding.
const RAW_VALUE_TOKEN: &str = "$serde_json::private::RawValue";

/// A JSON value whose strings borrow from the text they were read from unless they hold
/// escapes. Objects are ordered maps, as `serde_json::Map` is without `preserve_order`.
#[derive(Debug, PartialEq)]
enum Borrowed<'a> {
    Null,
    Bool(bool),
    Number(Number),
    Str(Cow<'a, str>),
    Array(Vec<Borrowed<'a>>),
    Object(BTreeMap<Cow<'a, str>, Borrowed<'a>>),
}

impl Serialize for Borrowed<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Null => serializer.serialize_unit(),
            Self::Bool(b) => serializer.serialize_bool(*b),
            Self::Number(n) => n.serialize(serializer),
            Self::Str(s) => serializer.serialize_str(s),
            Self::Array(values) => serializer.collect_seq(values),
            Self::Object(members) => serializer.collect_map(members),
        }
    }
}

impl<'de> Deserialize<'de> for Borrowed<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(Each)
    }
}

/// Reads a value as `serde_json::Value`'s own visitor does, strings borrowed.
struct Each;

impl<'de> Visitor<'de> for Each {
    type Value = Borrowed<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Borrowed::Null)
    }

    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Borrowed::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Borrowed::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Borrowed::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Number::from_f64(v).map_or(Borrowed::Null, Borrowed::Number))
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Borrowed::Str(Cow::Borrowed(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Borrowed::Str(Cow::Owned(v.to_owned())))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut values = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(value) = seq.next_element()? {
            values.push(value);
        }
        Ok(Borrowed::Array(values))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut members = BTreeMap::new();
        while let Some(crate::wire::Text(name)) = map.next_key()? {
            if name == RAW_VALUE_TOKEN {
                return Err(A::Error::custom(
                    "a name the whole decoding reads otherwise",
                ));
            }
            members.insert(name, map.next_value()?);
        }
        Ok(Borrowed::Object(members))
    }
}

#[cfg(test)]
mod tests;
