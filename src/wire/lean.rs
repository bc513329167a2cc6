//! A request document with its items held back: the steps see every field decoded except
//! the attributes of the items a write carries, of which they get only those they read or
//! write (the partition key, the version, the write id). The other attributes ride along as
//! the raw JSON they came in as, copied once into the body that is sent. A large PutItem, or
//! a BatchWriteItem of 25 items, then costs a scan and a copy instead of a decoded tree of
//! every attribute, built and serialized again.
//!
//! Each held-back item keeps a marker member in its place, so a step that moves the item
//! (a BatchWriteItem run as a transaction) moves the marker with it; serializing puts the
//! held attributes back wherever the marker ends up.

use std::borrow::Cow;
use std::fmt;
use std::sync::OnceLock;

use serde::de::{DeserializeSeed, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::view::{BodyError, RequestView, collect_members, distinct_names};
use crate::error::{InternalError, ProxyError};

/// Where the items sit in a request: the path from a top-level field to each item object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The member of this name.
    Field(&'static str),
    /// Every member of a map (a BatchWriteItem's tables).
    AnyKey,
    /// Every element of a list.
    AnyIndex,
}

/// A held-back item's attributes, in order.
type Held<'a> = Vec<(Cow<'a, str>, &'a RawValue)>;

/// The document the steps rewrite, and the attributes they never see.
#[derive(Debug)]
pub struct LeanDocument<'a> {
    pub document: Map<String, Value>,
    held: Vec<Held<'a>>,
}

/// The marker's name: no client sends it by accident, and, with a nonce drawn once per
/// process and never shown, none can guess it. Were one to, the attribute of that name in
/// its own request would be replaced by held attributes of that same request, or refused.
fn marker_prefix() -> &'static str {
    static PREFIX: OnceLock<String> = OnceLock::new();
    PREFIX.get_or_init(|| format!("\u{0}globalscale-held-{:016x}:", fastrand::u64(..)))
}

impl<'a> LeanDocument<'a> {
    /// Decodes `view` with every item on `path` (its first step a top-level field) cut down
    /// to the attributes `touched` names. `None` when the request has no such field.
    pub fn split(
        view: &RequestView<'a>,
        path: &[Step],
        touched: &[&str],
    ) -> Result<Option<Self>, ProxyError> {
        let Some((&Step::Field(field), rest)) = path.split_first() else {
            return Ok(None);
        };
        let Some(raw) = view.raw(field) else {
            return Ok(None);
        };
        let mut held = Vec::new();
        if let (Some(members), []) = (&view.put_item, rest) {
            // A PutItem's item, read already by the view's shape check.
            let item = hold(members.clone(), touched, &mut held)?;
            let mut document = view.subset(|name| name != field)?;
            document.insert(field.to_owned(), item);
            return Ok(Some(Self { document, held }));
        }
        let seed = Seed {
            path: rest,
            touched,
            held: &mut held,
        };
        // One pass over the field: a walk through raw values level by level would scan the
        // items' bytes again at every level. Its shape was checked with the view; anything
        // the walk does not expect leaves the request to the whole decoding.
        let mut reader = serde_json::Deserializer::from_str(raw.get());
        let Ok(value) = seed.deserialize(&mut reader) else {
            return Ok(None);
        };
        let mut document = view.subset(|name| name != field)?;
        document.insert(field.to_owned(), value);
        Ok(Some(Self { document, held }))
    }

    /// The body to send: the rewritten document, each item's held attributes back in it.
    pub fn to_vec(&self) -> Result<Vec<u8>, ProxyError> {
        let held_len: usize = self
            .held
            .iter()
            .flatten()
            .map(|(n, v)| n.len() + v.get().len() + 4)
            .sum();
        let mut out = Vec::with_capacity(held_len + 512);
        let document = Spliced {
            map: &self.document,
            held: &self.held,
        };
        serde_json::to_writer(&mut out, &document).map_err(InternalError::EncodeRequest)?;
        Ok(out)
    }
}

/// One item: the attributes in `touched` decoded, the others held back behind a marker.
/// Decoded whole when holding back is not faithful: an attribute named
/// twice (the decoded path keeps the last; raw copies would keep both), or a name that
/// looks like a marker.
fn hold<'a>(
    members: Held<'a>,
    touched: &[&str],
    all_held: &mut Vec<Held<'a>>,
) -> Result<Value, ProxyError> {
    let faithful = distinct_names(&members)
        && !members
            .iter()
            .any(|(name, _)| name.starts_with(marker_prefix()));
    if !faithful {
        // As the whole decoding reads the object: the last of a repeated name wins.
        let mut item = Map::new();
        for (name, value) in members {
            item.insert(name.into_owned(), whole(value)?);
        }
        return Ok(Value::Object(item));
    }
    let mut item = Map::new();
    let mut held = Vec::with_capacity(members.len());
    for (name, value) in members {
        if touched.contains(&name.as_ref()) {
            item.insert(name.into_owned(), whole(value)?);
        } else {
            held.push((name, value));
        }
    }
    if !held.is_empty() {
        item.insert(
            format!("{}{}", marker_prefix(), all_held.len()),
            Value::Null,
        );
        all_held.push(held);
    }
    Ok(Value::Object(item))
}

/// Decodes a value, following `path` down to the items, which are held back.
struct Seed<'s, 'a> {
    path: &'s [Step],
    touched: &'s [&'s str],
    held: &'s mut Vec<Held<'a>>,
}

impl<'de> DeserializeSeed<'de> for Seed<'_, 'de> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        let Some((step, rest)) = self.path.split_first() else {
            // The item's members read in the same pass as the levels above it.
            return deserializer.deserialize_any(Item {
                touched: self.touched,
                held: self.held,
            });
        };
        deserializer.deserialize_any(Level {
            step: *step,
            seed: Seed {
                path: rest,
                touched: self.touched,
                held: self.held,
            },
        })
    }
}

/// An item at the end of the path: its members, held back by [`hold`].
struct Item<'s, 'a> {
    touched: &'s [&'s str],
    held: &'s mut Vec<Held<'a>>,
}

impl<'de> Visitor<'de> for Item<'_, 'de> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an item")
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Value, A::Error> {
        let members = collect_members(map)?;
        hold(members, self.touched, self.held).map_err(A::Error::custom)
    }
}

/// One step of the path: a list or a map, whose members on the path go on down.
struct Level<'s, 'a> {
    step: Step,
    seed: Seed<'s, 'a>,
}

impl<'a> Level<'_, 'a> {
    fn next(&mut self) -> Seed<'_, 'a> {
        Seed {
            path: self.seed.path,
            touched: self.seed.touched,
            held: self.seed.held,
        }
    }
}

impl<'de> Visitor<'de> for Level<'_, 'de> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list or a map on the way to the items")
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<Value, A::Error> {
        let mut elements = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        if self.step == Step::AnyIndex {
            while let Some(element) = seq.next_element_seed(self.next())? {
                elements.push(element);
            }
        } else {
            while let Some(element) = seq.next_element::<Value>()? {
                elements.push(element);
            }
        }
        Ok(Value::Array(elements))
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<Value, A::Error> {
        let mut members = Map::new();
        while let Some(name) = map.next_key::<String>()? {
            let on_path = match self.step {
                Step::AnyKey => true,
                Step::Field(field) => field == name,
                Step::AnyIndex => false,
            };
            let value = if on_path {
                map.next_value_seed(self.next())?
            } else {
                map.next_value::<Value>()?
            };
            // Last one wins, as in the whole document.
            members.insert(name, value);
        }
        Ok(Value::Object(members))
    }
}

fn whole(raw: &RawValue) -> Result<Value, ProxyError> {
    serde_json::from_str(raw.get()).map_err(|e| BodyError::PartNotJson(e).into())
}

/// A decoded map serialized with each marker replaced by the attributes it holds.
struct Spliced<'v, 'a> {
    map: &'v Map<String, Value>,
    held: &'v [Held<'a>],
}

impl Serialize for Spliced<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut out = serializer.serialize_map(None)?;
        for (name, value) in self.map {
            match name.strip_prefix(marker_prefix()) {
                Some(index) => {
                    let held = index
                        .parse::<usize>()
                        .ok()
                        .and_then(|i| self.held.get(i))
                        .ok_or_else(|| {
                            serde::ser::Error::custom("a marker without its attributes")
                        })?;
                    for (name, raw) in held {
                        out.serialize_entry(name, raw)?;
                    }
                }
                None => out.serialize_entry(name, &SplicedValue(value, self.held))?,
            }
        }
        out.end()
    }
}

struct SplicedValue<'v, 'a>(&'v Value, &'v [Held<'a>]);

impl Serialize for SplicedValue<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Object(map) => Spliced { map, held: self.1 }.serialize(serializer),
            Value::Array(items) => {
                let mut out = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    out.serialize_element(&SplicedValue(item, self.1))?;
                }
                out.end()
            }
            scalar => scalar.serialize(serializer),
        }
    }
}

#[cfg(test)]
mod tests;
