//! Expression plumbing the steps share: the request's conditions parsed, placeholders a
//! step adds that never collide with the client's, and the maps that define them.

use serde_json::{Map, Value};

use super::RewriteError;
use crate::expr::{
    Condition, ExprKind, PlaceholderAllocator, parse_condition, parse_key_condition,
    parse_projection, parse_update,
};

/// The condition-kind expressions of a request, with their kind.
const CONDITIONS: [(&str, ExprKind); 3] = [
    ("KeyConditionExpression", ExprKind::KeyCondition),
    ("ConditionExpression", ExprKind::Condition),
    ("FilterExpression", ExprKind::Filter),
];

/// The conditions of one request (or one transaction action), parsed.
pub(super) fn parse_conditions(
    body: &Map<String, Value>,
) -> Result<Vec<(ExprKind, Condition)>, RewriteError> {
    let mut parsed = Vec::new();
    for (field, kind) in CONDITIONS {
        let Some(text) = body.get(field) else {
            continue;
        };
        let text = text
            .as_str()
            .ok_or_else(|| RewriteError::Refused(format!("{field} must be a string")))?;
        let parse = if kind == ExprKind::KeyCondition {
            parse_key_condition
        } else {
            parse_condition
        };
        parsed.push((
            kind,
            parse(text).map_err(|e| RewriteError::Refused(e.message(kind)))?,
        ));
    }
    Ok(parsed)
}

/// Placeholders for what a step adds: none the request's maps define, and none any of its
/// expressions uses (one used but left undefined must stay the client's error, not come to
/// mean what the step adds).
pub(super) fn allocator(body: &Map<String, Value>) -> Result<PlaceholderAllocator, RewriteError> {
    allocator_with(body, &parse_conditions(body)?)
}

/// [`allocator`] for a caller that holds the request's conditions parsed already.
pub(super) fn allocator_with(
    body: &Map<String, Value>,
    conditions: &[(ExprKind, Condition)],
) -> Result<PlaceholderAllocator, RewriteError> {
    let map = |field: &str| body.get(field).and_then(Value::as_object);
    let mut allocator = PlaceholderAllocator::new(
        map("ExpressionAttributeNames"),
        map("ExpressionAttributeValues"),
    );
    avoid_every_expression(body, conditions, &mut allocator)?;
    Ok(allocator)
}

/// Makes `allocator` avoid the placeholders of every expression of the request: its
/// conditions as the caller parsed them ([`parse_conditions`]; a long filter parsed again
/// cost as much as the first time), its update and its projection.
pub(super) fn avoid_every_expression(
    body: &Map<String, Value>,
    conditions: &[(ExprKind, Condition)],
    allocator: &mut PlaceholderAllocator,
) -> Result<(), RewriteError> {
    for (_, condition) in conditions {
        allocator.avoid(&condition.placeholders());
    }
    if let Some(text) = body.get("UpdateExpression").and_then(Value::as_str) {
        let update =
            parse_update(text).map_err(|e| RewriteError::Refused(e.message(ExprKind::Update)))?;
        allocator.avoid(&update.placeholders());
    }
    if let Some(text) = body.get("ProjectionExpression").and_then(Value::as_str) {
        let projection = parse_projection(text)
            .map_err(|e| RewriteError::Refused(e.message(ExprKind::Projection)))?;
        allocator.avoid(&projection.placeholders());
    }
    Ok(())
}

/// The request's `field` map, made when absent (or not a map, which DynamoDB refuses
/// anyway).
pub(super) fn map_field<'b>(
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

pub(super) fn define_value(body: &mut Map<String, Value>, placeholder: &str, value: Value) {
    if let Some(values) = map_field(body, "ExpressionAttributeValues") {
        values.insert(placeholder.to_owned(), value);
    }
}

/// The request's `ConditionExpression` and `check`, joined: `(client) AND (check)`.
pub(super) fn and_condition(
    body: &mut Map<String, Value>,
    check: Condition,
) -> Result<(), RewriteError> {
    let merged = match body.get("ConditionExpression") {
        Some(Value::String(text)) => Condition::and(
            parse_condition(text)
                .map_err(|e| RewriteError::Refused(e.message(ExprKind::Condition)))?,
            check,
        ),
        Some(_) => {
            return Err(RewriteError::Refused(
                "ConditionExpression must be a string".into(),
            ));
        }
        None => check,
    };
    body.insert(
        "ConditionExpression".into(),
        Value::String(merged.to_string()),
    );
    Ok(())
}
