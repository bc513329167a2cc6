//! Region-prefixed partition keys. A table with `key_prefix = "{region}#"` stores every
//! partition key as `<prefix><key>`, so each item has one home region and a global table
//! never sees two regions write one item. Clients send and receive plain keys: the request
//! half prefixes every key the walker finds (and every value compared with the partition key
//! in an expression), and keeps Scans and index Queries inside the namespace with a
//! `begins_with` filter; the restore half strips the prefix from every key and item of the
//! answer, and refuses to show an item of another namespace. A page that stops on another
//! namespace's item shows its position sealed ([`position`]), never its keys.

use serde_json::{Map, Value, json};

use super::RewriteError;
use crate::expr::{
    Condition, ExprKind, Expressions, Operand, Path, PathElement, PlaceholderAllocator,
};
use crate::plan::{KeyPrefix, Plan};
use crate::wire::Operation;
use crate::wire::items::{Site, answer_sites, request_sites};

mod expressions;
pub(crate) mod position;

/// Legacy parameters that compare keys or values the step would have to rewrite; the
/// expression forms are rewritten instead.
const LEGACY: [&str; 5] = [
    "KeyConditions",
    "QueryFilter",
    "ScanFilter",
    "Expected",
    "ConditionalOperator",
];

pub fn request(
    plan: &Plan,
    parsed: &mut Expressions,
    body: &mut Map<String, Value>,
) -> Result<(), RewriteError> {
    if plan.prefixes.is_empty() {
        return Ok(());
    }
    if let Some(prefix) = plan.tables.first().and_then(|t| plan.prefix_of(t)) {
        refuse_legacy(prefix, body)?;
    }
    request_sites(&plan.operation, body, &mut |table, site, key| {
        plan.prefix_of(table)
            .map_or(Ok(()), |prefix| add_prefix(prefix, site, key))
    })?;
    expressions::request(plan, parsed, body)?;
    namespace_filter(plan, parsed, body)
}

pub fn restore(plan: &Plan, body: &mut Map<String, Value>) -> Result<(), RewriteError> {
    if plan.prefixes.is_empty() {
        return Ok(());
    }
    answer_sites(
        &plan.operation,
        plan.answer_context(),
        body,
        &mut |table, site, key| restore_site(plan, table, site, key),
    )
}

/// The restore half for one key or item of `table` in an answer. It reads and writes the
/// table's partition key attribute only, except in a position at another namespace's item
/// (see [`seals`]), which it replaces whole.
pub fn restore_site(
    plan: &Plan,
    table: &str,
    site: Site,
    key: &mut Map<String, Value>,
) -> Result<(), RewriteError> {
    plan.prefix_of(table)
        .map_or(Ok(()), |prefix| strip_prefix(prefix, site, key))
}

/// Whether [`restore_site`] would seal this key of `table`: a position whose partition key
/// lies outside the namespace. The seal needs every attribute of the position, not just the
/// partition key.
pub fn seals(plan: &Plan, table: &str, site: Site, key: &Map<String, Value>) -> bool {
    site == Site::StartKey
        && plan.prefix_of(table).is_some_and(|prefix| {
            matches!(key_string(prefix, key), Ok(Some(stored)) if !stored.starts_with(&prefix.prefix))
        })
}

fn refuse_legacy(prefix: &KeyPrefix, body: &Map<String, Value>) -> Result<(), RewriteError> {
    match LEGACY.iter().find(|field| body.contains_key(**field)) {
        Some(field) => Err(RewriteError::Refused(format!(
            "{field} is not supported on table {}: its partition keys are region-prefixed \
             (key_prefix); use the expression parameters (KeyConditionExpression, \
             FilterExpression, ConditionExpression) instead",
            prefix.table
        ))),
        None => Ok(()),
    }
}

/// The string a key holds in the partition key attribute, refusing any other type: only a
/// string can carry a prefix.
fn key_string<'k>(
    prefix: &KeyPrefix,
    key: &'k Map<String, Value>,
) -> Result<Option<&'k str>, RewriteError> {
    let Some(value) = key.get(&prefix.attribute) else {
        return Ok(None);
    };
    match value
        .as_object()
        .and_then(|v| v.get("S"))
        .and_then(Value::as_str)
    {
        Some(s) if value.as_object().is_some_and(|v| v.len() == 1) => Ok(Some(s)),
        _ => Err(RewriteError::Refused(format!(
            "One or more parameter values were invalid: the partition key {} of table {} must \
             be a string (S): its keys are stored with a prefix (key_prefix)",
            prefix.attribute, prefix.table
        ))),
    }
}

fn add_prefix(
    prefix: &KeyPrefix,
    site: Site,
    key: &mut Map<String, Value>,
) -> Result<(), RewriteError> {
    let Some(plain) = key_string(prefix, key)? else {
        return Ok(());
    };
    if site == Site::StartKey
        && let Some(token) = plain.strip_prefix(position::MARKER)
    {
        // The whole start key becomes the stored one: whatever else the client sent beside
        // the token is not part of the position.
        *key = position::open(prefix, token).map_err(|e| RewriteError::Refused(e.to_string()))?;
        return Ok(());
    }
    // `key_string` found `{"S": <string>}`: the prefix goes into that string, which is
    // what a new `{"S": "<prefix><key>"}` would serialize as, without building one.
    if let Some(Value::String(plain)) = key_string_mut(prefix, key) {
        plain.insert_str(0, &prefix.prefix);
    }
    Ok(())
}

/// The string of the partition key attribute's `{"S": <string>}`, to change in place.
fn key_string_mut<'k>(
    prefix: &KeyPrefix,
    key: &'k mut Map<String, Value>,
) -> Option<&'k mut Value> {
    key.get_mut(&prefix.attribute)?.get_mut("S")
}

fn strip_prefix(
    prefix: &KeyPrefix,
    site: Site,
    key: &mut Map<String, Value>,
) -> Result<(), RewriteError> {
    let foreign = || RewriteError::ForeignItem {
        table: prefix.table.clone(),
    };
    let Some(stored) = key_string(prefix, key).map_err(|_| foreign())? else {
        return Ok(());
    };
    match stored.strip_prefix(prefix.prefix.as_str()) {
        Some(_) => {}
        None if site == Site::StartKey => {
            // Every attribute of it (sort key, index keys) belongs to the foreign item.
            *key = position::seal(prefix, key).map_err(|e| RewriteError::Unsealable {
                table: prefix.table.clone(),
                reason: e.to_string(),
            })?;
            return Ok(());
        }
        None => return Err(foreign()),
    }
    // Cut from the string in place, as for the prefix added to a request.
    if let Some(Value::String(stored)) = key_string_mut(prefix, key) {
        stored.replace_range(..prefix.prefix.len(), "");
    }
    Ok(())
}

/// A Scan, or a Query of an index (whose partition key may be another attribute), would
/// read every namespace: a `begins_with` filter on the table's partition key, merged with
/// the client's own, keeps it to this one. DynamoDB applies `Limit` before the filter, so a
/// page may hold fewer items than `Limit` (or none) while `LastEvaluatedKey` goes on.
fn namespace_filter(
    plan: &Plan,
    parsed: &mut Expressions,
    body: &mut Map<String, Value>,
) -> Result<(), RewriteError> {
    let reads_widely = match plan.operation {
        Operation::Scan => true,
        Operation::Query => body.contains_key("IndexName"),
        _ => false,
    };
    let Some(prefix) = plan.tables.first().and_then(|t| plan.prefix_of(t)) else {
        return Ok(());
    };
    if !reads_widely {
        return Ok(());
    }
    let set = super::expressions::top(parsed)?;
    let mut allocator = super::expressions::allocator(body, set);
    projection_from_attributes_to_get(body, &mut allocator)?;
    let (name, value) = (allocator.name(), allocator.value());
    let namespace = Condition::BeginsWith(
        Operand::Path(Path(vec![PathElement::Name(name.clone())])),
        Operand::Value(value.clone()),
    );
    set.and(ExprKind::Filter, namespace);
    super::expressions::define_name(body, &name, &prefix.attribute);
    super::expressions::define_value(body, &value, json!({"S": prefix.prefix}));
    Ok(())
}

/// DynamoDB refuses legacy and expression parameters together, and the namespace filter is
/// an expression: `AttributesToGet` becomes the equivalent `ProjectionExpression`.
fn projection_from_attributes_to_get(
    body: &mut Map<String, Value>,
    allocator: &mut PlaceholderAllocator,
) -> Result<(), RewriteError> {
    let Some(attributes) = body.remove("AttributesToGet") else {
        return Ok(());
    };
    let Some(list) = attributes.as_array() else {
        return Err(RewriteError::Refused(
            "AttributesToGet must be a list".into(),
        ));
    };
    let mut paths = Vec::with_capacity(list.len());
    for attribute in list {
        let Some(attribute) = attribute.as_str() else {
            return Err(RewriteError::Refused(
                "AttributesToGet must be a list of strings".into(),
            ));
        };
        let name = allocator.name();
        super::expressions::define_name(body, &name, attribute);
        paths.push(name);
    }
    body.insert(
        "ProjectionExpression".into(),
        Value::String(paths.join(", ")),
    );
    Ok(())
}

#[cfg(test)]
mod tests;
