//! Expression plumbing the steps share: the request's conditions parsed, placeholders a
//! step adds that never collide with the client's, and the maps that define them.

use serde_json::{Map, Value};

use super::RewriteError;
use crate::expr::{ExpressionSet, Expressions, PlaceholderAllocator, SetError};

/// The top-level request's expressions, as the plan parsed them; one that did not parse
/// refuses the request in DynamoDB's words.
pub(super) fn top(expressions: &mut Expressions) -> Result<&mut ExpressionSet, RewriteError> {
    readable(&mut expressions.top)
}

/// Action `index`'s expressions (an empty set for an action the plan did not see).
pub(super) fn action(
    expressions: &mut Expressions,
    index: usize,
) -> Result<&mut ExpressionSet, RewriteError> {
    if expressions.actions.len() <= index {
        expressions
            .actions
            .resize(index + 1, Ok(ExpressionSet::default()));
    }
    readable(&mut expressions.actions[index])
}

fn readable(set: &mut Result<ExpressionSet, SetError>) -> Result<&mut ExpressionSet, RewriteError> {
    set.as_mut()
        .map_err(|e| RewriteError::Refused(e.to_string()))
}

/// Placeholders for what a step adds: none the request's maps define, and none any of its
/// expressions uses (one used but left undefined must stay the client's error, not come to
/// mean what the step adds).
pub(super) fn allocator(body: &Map<String, Value>, set: &ExpressionSet) -> PlaceholderAllocator {
    let map = |field: &str| body.get(field).and_then(Value::as_object);
    let mut allocator = PlaceholderAllocator::new(
        map("ExpressionAttributeNames"),
        map("ExpressionAttributeValues"),
    );
    allocator.avoid(&set.placeholders());
    allocator
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
