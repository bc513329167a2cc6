//! A lazy view of a request body: the top-level fields as borrowed raw JSON, decoded only
//! where a step needs them. A request to a table without a policy is checked and forwarded
//! as the bytes it came in as; no document is built for it.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::Operation;
use super::shape;
pub use crate::error::BodyError;
use crate::error::ProxyError;

/// A request body, split into its top-level fields and checked where the sidecar reads it.
#[derive(Debug)]
pub struct RequestView<'a> {
    pub operation: Operation,
    fields: Vec<(Cow<'a, str>, &'a RawValue)>,
    /// Every table the request names, in order of appearance, without repeats.
    pub tables: Vec<String>,
    /// The table of each `TransactItems` action, in order: answers refer to actions by
    /// position.
    pub action_tables: Vec<String>,
    /// A PutItem's `Item` as its members, read once by the shape check and handed to the
    /// lean rewrite, which would otherwise read the item's bytes a second time.
    pub(super) put_item: Option<Members<'a>>,
}

/// An object's members: names borrowed unless they hold escapes, values as raw JSON.
pub type Members<'a> = Vec<(Cow<'a, str>, &'a RawValue)>;

impl<'a> RequestView<'a> {
    /// Splits `bytes` into fields, refusing what is not a JSON object (DynamoDB's
    /// `SerializationException`) and wrong types in the fields the sidecar reads.
    pub fn parse(operation: Operation, bytes: &'a [u8]) -> Result<Self, ProxyError> {
        // serde_json stops at 128 levels of nesting, raw values included, so hostile depth
        // is an error, not a crash.
        let Fields(fields) = serde_json::from_slice(bytes).map_err(|e| {
            if e.classify() == serde_json::error::Category::Data {
                BodyError::NotAnObject(e)
            } else {
                BodyError::NotJson(e)
            }
        })?;
        let mut view = Self {
            operation,
            fields,
            tables: Vec::new(),
            action_tables: Vec::new(),
            put_item: None,
        };
        (view.tables, view.action_tables) = shape::check(&view)?;
        view.put_item = shape::put_item(&view)?;
        Ok(view)
    }

    /// The raw JSON of a top-level field (the last one, as DynamoDB reads duplicates).
    pub fn raw(&self, field: &str) -> Option<&'a RawValue> {
        self.fields
            .iter()
            .rev()
            .find(|(name, _)| name == field)
            .map(|(_, raw)| *raw)
    }

    /// A PutItem's `Item` as its members (names, and values as raw JSON), in order, as the
    /// shape check read them; `None` for any other request, or one without an `Item`.
    pub fn put_item_members(&self) -> Option<&[(Cow<'a, str>, &'a RawValue)]> {
        self.put_item.as_deref()
    }

    /// A top-level field's members (names, and values as raw JSON) in order, when it is an
    /// object.
    pub fn members(&self, field: &str) -> Option<Members<'a>> {
        self.decode::<Fields<'a>>(field)
            .ok()
            .flatten()
            .map(|Fields(members)| members)
    }

    /// The top-level fields, names and raw JSON, in order.
    pub fn fields(&self) -> impl Iterator<Item = (&str, &'a RawValue)> {
        self.fields.iter().map(|(name, raw)| (name.as_ref(), *raw))
    }

    /// The names of the top-level fields, in order.
    pub fn field_names(&self) -> impl Iterator<Item = &str> {
        self.fields.iter().map(|(name, _)| name.as_ref())
    }

    pub fn has(&self, field: &str) -> bool {
        self.raw(field).is_some()
    }

    /// A top-level field decoded as `T`; a wrong type is DynamoDB's `SerializationException`.
    pub fn decode<T: Deserialize<'a>>(&self, field: &str) -> Result<Option<T>, ProxyError> {
        self.raw(field)
            .map(|raw| {
                serde_json::from_str(raw.get()).map_err(|source| {
                    ProxyError::from(BodyError::WrongType {
                        field: field.to_owned(),
                        source,
                    })
                })
            })
            .transpose()
    }

    /// The string value of a top-level field, if it is one; borrowed unless it holds
    /// escapes (serde's own `Cow<str>` always copies).
    pub fn str(&self, field: &str) -> Option<Cow<'a, str>> {
        self.decode::<Key<'a>>(field)
            .ok()
            .flatten()
            .map(|key| key.0)
    }

    /// The statements of `ExecuteStatement`, `BatchExecuteStatement` and
    /// `ExecuteTransaction`; `None` when there is none, or one of them is not a string.
    pub fn partiql_statements(&self) -> Option<Vec<String>> {
        let mut found = Vec::new();
        if let Some(statement) = self.str("Statement") {
            found.push(statement.into_owned());
        }
        for field in ["Statements", "TransactStatements"] {
            let Ok(Some(list)) = self.decode::<Vec<Map<String, Value>>>(field) else {
                continue;
            };
            for entry in list {
                found.push(entry.get("Statement")?.as_str()?.to_owned());
            }
        }
        (!found.is_empty()).then_some(found)
    }

    /// The whole body as a document, for the steps that change it.
    pub fn to_map(&self) -> Result<Map<String, Value>, ProxyError> {
        self.subset(|_| true)
    }

    /// The fields `keep` accepts, as a document: what a judgement reads, and nothing else.
    pub fn subset(&self, keep: impl Fn(&str) -> bool) -> Result<Map<String, Value>, ProxyError> {
        let mut map = Map::new();
        for (name, raw) in &self.fields {
            if keep(name) {
                let value =
                    serde_json::from_str(raw.get()).map_err(|source| BodyError::FieldNotJson {
                        field: name.clone().into_owned(),
                        source,
                    })?;
                map.insert(name.clone().into_owned(), value);
            }
        }
        Ok(map)
    }
}

/// Whether no two members share a name. A repeated name is read by the whole decoding as
/// its last occurrence, which a path copying members as they came would not reproduce.
pub(crate) fn distinct_names(members: &[(Cow<'_, str>, &RawValue)]) -> bool {
    // foldhash, seeded per process: SipHash over a 30-attribute item's names was a sixth
    // of the lean decoding's pass.
    let mut seen =
        HashSet::with_capacity_and_hasher(members.len(), foldhash::fast::RandomState::default());
    members.iter().all(|(name, _)| seen.insert(name.as_ref()))
}

/// The members of the JSON object `map` reads, names borrowed unless they hold escapes and
/// values as raw JSON.
pub(super) fn collect_members<'de, A: MapAccess<'de>>(
    mut map: A,
) -> Result<Members<'de>, A::Error> {
    let mut members = Vec::with_capacity(map.size_hint().unwrap_or(8));
    while let Some((name, raw)) = map.next_entry::<Key<'de>, &'de RawValue>()? {
        members.push((name.0, raw));
    }
    Ok(members)
}

/// The members of a JSON object (a body's top-level fields, a PutItem's attributes),
/// borrowed from the body wherever possible.
pub(super) struct Fields<'a>(pub(super) Members<'a>);

impl<'de> Deserialize<'de> for Fields<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FieldsVisitor;
        impl<'de> Visitor<'de> for FieldsVisitor {
            type Value = Fields<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                collect_members(map).map(Fields)
            }
        }
        deserializer.deserialize_map(FieldsVisitor)
    }
}

/// A field name or a string value, borrowed unless it holds escapes.
pub(crate) struct Key<'a>(pub(crate) Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                // serde's own words for a string, which a wrong type's error quotes.
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

#[cfg(test)]
mod tests;
