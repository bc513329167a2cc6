//! The expression half of key prefixing: every `:value` a key condition, condition or filter
//! compares with the partition key gets the prefix too. Each such occurrence gets a fresh
//! placeholder holding the prefixed value, so a `:v` the client also uses for another
//! attribute keeps its plain value there; a client placeholder nothing uses any more is
//! dropped, as DynamoDB refuses unused ones.

use serde_json::{Map, Value, json};

use super::super::{RewriteError, expressions};
use crate::expr::{Condition, ExprKind, Path, PlaceholderAllocator, Used, parse_update};
use crate::plan::{KeyPrefix, Plan};
use crate::wire::Operation;

/// Prefixes the values compared with the partition key; for a single-table request, hands
/// back its conditions as parsed (and rewritten), so the namespace filter need not parse
/// them again.
pub(super) fn request(
    plan: &Plan,
    body: &mut Map<String, Value>,
) -> Result<Option<Conditions>, RewriteError> {
    if plan.operation == Operation::TransactWriteItems {
        let actions = body
            .get_mut("TransactItems")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
            .filter_map(Value::as_object_mut)
            .flat_map(|item| item.values_mut().filter_map(Value::as_object_mut));
        for action in actions {
            let table = action
                .get("TableName")
                .and_then(Value::as_str)
                .unwrap_or("");
            if let Some(prefix) = plan.prefix_of(table) {
                prefix_values(prefix, action)?;
            }
        }
        return Ok(None);
    }
    let single = plan.operation.is_single_table();
    match plan.tables.first().and_then(|t| plan.prefix_of(t)) {
        Some(prefix) if single => prefix_values(prefix, body).map(Some),
        _ => Ok(None),
    }
}

/// A request's conditions, parsed, each with its kind.
pub(super) type Conditions = Vec<(ExprKind, Condition)>;

fn refused(kind: ExprKind, message: &str) -> RewriteError {
    RewriteError::Refused(format!("Invalid {}: {message}", kind.field()))
}

/// The request's conditions as they are sent: parsed, with the values compared with the
/// partition key renamed to prefixed ones.
fn prefix_values(
    prefix: &KeyPrefix,
    body: &mut Map<String, Value>,
) -> Result<Conditions, RewriteError> {
    let mut parsed = expressions::parse_conditions(body)?;
    if parsed.is_empty() {
        // A GetItem's or PutItem's names map can be long: not copied for nothing.
        return Ok(parsed);
    }
    let names = body
        .get("ExpressionAttributeNames")
        .and_then(Value::as_object)
        .cloned();
    let is_key = |path: &Path| path.is_attribute(names.as_ref(), &prefix.attribute);
    for (kind, condition) in &parsed {
        if condition.target_used_elsewhere(is_key) {
            return Err(refused(
                *kind,
                &format!(
                    "the partition key {} of table {} is region-prefixed (key_prefix), and this \
                     expression uses it where the prefix cannot follow (size, attribute_type, or \
                     compared with another attribute)",
                    prefix.attribute, prefix.table
                ),
            ));
        }
    }
    if parsed
        .iter()
        .all(|(_, c)| c.values_compared_with(is_key).is_empty())
    {
        return Ok(parsed);
    }
    let mut values = match body.remove("ExpressionAttributeValues") {
        Some(Value::Object(values)) => values,
        _ => Map::new(),
    };
    let mut allocator = PlaceholderAllocator::new(names.as_ref(), Some(&values));
    expressions::avoid_every_expression(body, &parsed, &mut allocator)?;
    let mut renamed = Vec::new();
    for (kind, condition) in &mut parsed {
        let before = renamed.len();
        for slot in condition.values_compared_with_mut(is_key) {
            let plain = plain_key_value(prefix, *kind, &values, slot)?;
            let fresh = allocator.value();
            values.insert(
                fresh.clone(),
                json!({ "S": format!("{}{plain}", prefix.prefix) }),
            );
            renamed.push(std::mem::replace(slot, fresh));
        }
        // A condition with nothing renamed (a filter on other attributes) keeps the
        // client's text: printing a long one again is most of what this step spends on it.
        if renamed.len() > before {
            body.insert(
                kind.field().to_owned(),
                Value::String(condition.to_string()),
            );
        }
    }
    drop_unused(body, &parsed, &mut values, &renamed)?;
    body.insert("ExpressionAttributeValues".into(), Value::Object(values));
    Ok(parsed)
}

/// The string a placeholder compared with the partition key holds.
fn plain_key_value(
    prefix: &KeyPrefix,
    kind: ExprKind,
    values: &Map<String, Value>,
    placeholder: &str,
) -> Result<String, RewriteError> {
    let value = values.get(placeholder).ok_or_else(|| {
        refused(
            kind,
            &format!(
                "An expression attribute value used in expression is not defined; attribute value: {placeholder}"
            ),
        )
    })?;
    match value
        .as_object()
        .and_then(|v| v.get("S"))
        .and_then(Value::as_str)
    {
        Some(s) => Ok(s.to_owned()),
        None => Err(refused(
            kind,
            &format!(
                "{placeholder} is compared with the partition key {} of table {}, which is \
                 region-prefixed (key_prefix): it must be a string (S)",
                prefix.attribute, prefix.table
            ),
        )),
    }
}

/// Drops the client placeholders the rewrite renamed away that no expression of the
/// request (its `conditions`, as rewritten, and its update) uses any more.
fn drop_unused(
    body: &Map<String, Value>,
    conditions: &[(ExprKind, Condition)],
    values: &mut Map<String, Value>,
    renamed: &[String],
) -> Result<(), RewriteError> {
    let update = match body.get("UpdateExpression").and_then(Value::as_str) {
        Some(text) => Some(
            parse_update(text).map_err(|e| RewriteError::Refused(e.message(ExprKind::Update)))?,
        ),
        None => None,
    };
    let mut used = Used::default();
    for (_, condition) in conditions {
        used.merge(condition.placeholders());
    }
    if let Some(update) = &update {
        used.merge(update.placeholders());
    }
    for name in renamed {
        if !used.values.contains(&name.as_str()) {
            values.remove(name);
        }
    }
    Ok(())
}
