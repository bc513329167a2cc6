//! The expression half of key prefixing: `:values` compared with the partition key get the
//! prefix too, and the placeholders the step adds never collide with the client's.

use serde_json::{Map, Value};

use super::super::RewriteError;
use crate::plan::Plan;

/// The expressions that may compare a value with the partition key.
const CONDITIONS: [&str; 3] = [
    "KeyConditionExpression",
    "ConditionExpression",
    "FilterExpression",
];

/// Until expression values are prefixed, an expression that names the partition key is
/// refused rather than sent with an unprefixed value.
pub(super) fn request(plan: &Plan, body: &mut Map<String, Value>) -> Result<(), RewriteError> {
    let Some(prefix) = plan.tables.first().and_then(|t| plan.prefix_of(t)) else {
        return Ok(());
    };
    let names = body
        .get("ExpressionAttributeNames")
        .and_then(Value::as_object);
    let aliases: Vec<&str> = names
        .into_iter()
        .flatten()
        .filter(|(_, attribute)| attribute.as_str() == Some(prefix.attribute.as_str()))
        .map(|(name, _)| name.as_str())
        .collect();
    for field in CONDITIONS {
        let Some(text) = body.get(field).and_then(Value::as_str) else {
            continue;
        };
        let words = text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '#'));
        let names_key = words
            .into_iter()
            .any(|w| w == prefix.attribute || aliases.contains(&w));
        if names_key && text.contains(':') {
            return Err(RewriteError::Refused(format!(
                "{field} compares the partition key of table {} with a value, and its keys are region-prefixed; this version does not rewrite expression values yet",
                prefix.table
            )));
        }
    }
    Ok(())
}

/// A `#name` placeholder starting with `stem` that the request does not define.
pub(super) fn fresh_name(body: &Map<String, Value>, stem: &str) -> String {
    fresh(body, "ExpressionAttributeNames", stem)
}

/// A `:value` placeholder starting with `stem` that the request does not define.
pub(super) fn fresh_value(body: &Map<String, Value>, stem: &str) -> String {
    fresh(body, "ExpressionAttributeValues", stem)
}

fn fresh(body: &Map<String, Value>, field: &str, stem: &str) -> String {
    let taken = body.get(field).and_then(Value::as_object);
    (0..u32::MAX)
        .map(|n| format!("{stem}{n}"))
        .find(|candidate| !taken.is_some_and(|t| t.contains_key(candidate)))
        .unwrap_or_else(|| stem.to_owned())
}

/// The request's `field` map, made when absent (or not a map, which DynamoDB refuses
/// anyway).
fn map_field<'b>(
    body: &'b mut Map<String, Value>,
    field: &str,
) -> Option<&'b mut Map<String, Value>> {
    if !body.get(field).is_some_and(Value::is_object) {
        body.insert(field.to_owned(), Value::Object(Map::new()));
    }
    body.get_mut(field).and_then(Value::as_object_mut)
}

pub(super) fn define_name(body: &mut Map<String, Value>, name: &str, attribute: &str) {
    if let Some(names) = map_field(body, "ExpressionAttributeNames") {
        names.insert(name.to_owned(), Value::String(attribute.to_owned()));
    }
}

pub(super) fn define(
    body: &mut Map<String, Value>,
    name: &str,
    value_placeholder: &str,
    attribute: &str,
    value: Value,
) {
    define_name(body, name, attribute);
    if let Some(values) = map_field(body, "ExpressionAttributeValues") {
        values.insert(value_placeholder.to_owned(), value);
    }
}
