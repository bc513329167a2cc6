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
use std::collections::HashSet;
use std::sync::OnceLock;

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::view::{RequestView, split_object};
use crate::error::ProxyError;

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
        let mut lean = Self {
            document: view.subset(|name| name != field)?,
            held: Vec::new(),
        };
        let value = lean.decode(raw, rest, touched)?;
        lean.document.insert(field.to_owned(), value);
        Ok(Some(lean))
    }

    /// `raw` decoded, with the items at `path` below it held back where that is faithful.
    fn decode(
        &mut self,
        raw: &'a RawValue,
        path: &[Step],
        touched: &[&str],
    ) -> Result<Value, ProxyError> {
        let Some((step, rest)) = path.split_first() else {
            return self.hold(raw, touched);
        };
        match step {
            Step::AnyIndex => match serde_json::from_str::<Vec<&'a RawValue>>(raw.get()) {
                Ok(elements) => elements
                    .into_iter()
                    .map(|element| self.decode(element, rest, touched))
                    .collect::<Result<Vec<_>, _>>()
                    .map(Value::Array),
                Err(_) => whole(raw),
            },
            Step::Field(_) | Step::AnyKey => {
                let Some(members) = split_object(raw) else {
                    return whole(raw);
                };
                let mut map = Map::new();
                for (name, value) in members {
                    let on_path =
                        matches!(step, Step::Field(f) if *f == name) || *step == Step::AnyKey;
                    let value = if on_path {
                        self.decode(value, rest, touched)?
                    } else {
                        whole(value)?
                    };
                    // Last one wins, as in the whole document.
                    map.insert(name.into_owned(), value);
                }
                Ok(Value::Object(map))
            }
        }
    }

    /// One item: the attributes in `touched` decoded, the others held back behind a marker.
    /// Decoded whole when holding back is not faithful: not an object, an attribute named
    /// twice (the decoded path keeps the last; raw copies would keep both), or a name that
    /// looks like a marker.
    fn hold(&mut self, raw: &'a RawValue, touched: &[&str]) -> Result<Value, ProxyError> {
        let Some(members) = split_object(raw) else {
            return whole(raw);
        };
        let mut seen = HashSet::with_capacity(members.len());
        let faithful = members
            .iter()
            .all(|(name, _)| seen.insert(name.as_ref()) && !name.starts_with(marker_prefix()));
        if !faithful {
            return whole(raw);
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
                format!("{}{}", marker_prefix(), self.held.len()),
                Value::Null,
            );
            self.held.push(held);
        }
        Ok(Value::Object(item))
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
        serde_json::to_writer(&mut out, &document)
            .map_err(|e| ProxyError::Internal(format!("the request could not be sent: {e}")))?;
        Ok(out)
    }
}

fn whole(raw: &RawValue) -> Result<Value, ProxyError> {
    serde_json::from_str(raw.get())
        .map_err(|e| ProxyError::Serialization(format!("the request is not valid JSON: {e}")))
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
