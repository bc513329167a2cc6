//! The types DynamoDB insists on, checked in the fields the sidecar reads (table names,
//! keys, items, expression values), without building a document: DynamoDB Local answers 500
//! to some of these mistakes, and the rewrite steps walk these fields.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};

use super::Operation;
use super::view::{BodyError, Fields, Members, RequestView};
use crate::error::ProxyError;

/// Fields that hold an item or key: a map from attribute name to attribute value.
const ITEM_FIELDS: [&str; 4] = [
    "Key",
    "Item",
    "ExclusiveStartKey",
    "ExpressionAttributeValues",
];

/// The tables a request names: all of them without repeats, and the table of each
/// `TransactItems` action in order.
pub(super) type Tables = (Vec<String>, Vec<String>);

/// Checks the request's shape where the sidecar reads it; returns the tables it names.
pub(super) fn check(view: &RequestView<'_>) -> Result<Tables, ProxyError> {
    let mut tables = Vec::new();
    let mut action_tables = Vec::new();
    // Borrowed unless it holds escapes (serde's `Cow<str>` always copies).
    if let Some(super::view::Key(name)) = view.decode("TableName")? {
        push(&mut tables, &name);
    }
    for field in ITEM_FIELDS {
        // A PutItem's item is checked by `put_item`, which keeps what it reads.
        if !(field == "Item" && view.operation == Operation::PutItem) {
            view.decode::<ItemShape>(field)?;
        }
    }
    match view.operation {
        Operation::BatchGetItem => {
            let items = view.decode::<BTreeMap<Cow<'_, str>, BatchGet>>("RequestItems")?;
            for name in items.iter().flat_map(BTreeMap::keys) {
                push(&mut tables, name);
            }
        }
        Operation::BatchWriteItem => {
            let items = view.decode::<BTreeMap<Cow<'_, str>, Vec<WriteRequest>>>("RequestItems")?;
            for name in items.iter().flat_map(BTreeMap::keys) {
                push(&mut tables, name);
            }
        }
        Operation::TransactGetItems | Operation::TransactWriteItems => {
            let items = view.decode::<Vec<BTreeMap<Cow<'_, str>, Action<'_>>>>("TransactItems")?;
            for action in items.iter().flatten().flat_map(BTreeMap::values) {
                let name = action.table_name.as_deref().unwrap_or_default();
                push(&mut tables, name);
                action_tables.push(name.to_owned());
            }
        }
        _ => {}
    }
    tables.retain(|t| !t.is_empty());
    Ok((tables, action_tables))
}

/// A PutItem's `Item`, checked as [`ItemShape`] checks an item (a map whose values are all
/// maps), as its members. `None` for any other operation, or without an `Item`.
pub(super) fn put_item<'a>(view: &RequestView<'a>) -> Result<Option<Members<'a>>, ProxyError> {
    if view.operation != Operation::PutItem {
        return Ok(None);
    }
    let Some(Fields(members)) = view.decode::<Fields<'a>>("Item")? else {
        return Ok(None);
    };
    // A raw value starts at its first byte, and was read whole, so it is valid JSON: an
    // attribute value is one that opens as an object.
    if let Some((name, _)) = members.iter().find(|(_, raw)| !raw.get().starts_with('{')) {
        return Err(BodyError::NotAnAttributeValue(name.clone().into_owned()).into());
    }
    Ok(Some(members))
}

fn push(tables: &mut Vec<String>, name: &str) {
    if !tables.iter().any(|t| t == name) {
        tables.push(name.to_owned());
    }
}

#[derive(Deserialize)]
struct BatchGet {
    #[serde(rename = "Keys")]
    _keys: Option<Vec<ItemShape>>,
}

#[derive(Deserialize)]
struct WriteRequest {
    #[serde(rename = "PutRequest")]
    _put: Option<ItemFields>,
    #[serde(rename = "DeleteRequest")]
    _delete: Option<ItemFields>,
}

/// The item-holding fields of a nested request (a write request, a transaction action).
#[derive(Deserialize)]
struct ItemFields {
    #[serde(rename = "Key")]
    _key: Option<ItemShape>,
    #[serde(rename = "Item")]
    _item: Option<ItemShape>,
    #[serde(rename = "ExpressionAttributeValues")]
    _values: Option<ItemShape>,
}

#[derive(Deserialize)]
struct Action<'a> {
    #[serde(rename = "TableName", borrow)]
    table_name: Option<Cow<'a, str>>,
    #[serde(flatten)]
    _items: ItemFields,
}

/// A map whose values are all maps (attribute values), read without keeping anything.
struct ItemShape;

impl<'de> Deserialize<'de> for ItemShape {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ItemVisitor;
        impl<'de> Visitor<'de> for ItemVisitor {
            type Value = ItemShape;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of attribute values")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ItemShape, A::Error> {
                while map.next_key::<IgnoredAny>()?.is_some() {
                    map.next_value::<AttributeValueShape>()?;
                }
                Ok(ItemShape)
            }
        }
        deserializer.deserialize_map(ItemVisitor)
    }
}

/// Any JSON object.
struct AttributeValueShape;

impl<'de> Deserialize<'de> for AttributeValueShape {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor;
        impl<'de> Visitor<'de> for ObjectVisitor {
            type Value = AttributeValueShape;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an attribute value (a map)")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(AttributeValueShape)
            }
        }
        deserializer.deserialize_map(ObjectVisitor)
    }
}
