//! The expression half of key prefixing: every `:value` a key condition, condition or filter
//! compares with the partition key gets the prefix too; a `contains` on the key keeps its
//! value when the prefix cannot change its answer, and every other use of the key whose
//! answer the prefix would change is refused. Each such occurrence gets a fresh
//! placeholder holding the prefixed value, so a `:v` the client also uses for another
//! attribute keeps its plain value there; a client placeholder nothing uses any more is
//! dropped, as DynamoDB refuses unused ones.

use serde_json::{Map, Value, json};

use super::super::{RewriteError, expressions};
use crate::expr::{Condition, ExprKind, ExpressionSet, Expressions, Path, PlaceholderAllocator};
use crate::plan::{KeyPrefix, Plan};
use crate::wire::Operation;

/// Prefixes the values compared with the partition key, in the expressions the plan parsed
/// (the request's, or each action's of a transaction).
pub(super) fn request(
    plan: &Plan,
    parsed: &mut Expressions,
    body: &mut Map<String, Value>,
) -> Result<(), RewriteError> {
    if plan.operation == Operation::TransactWriteItems {
        let items = body
            .get_mut("TransactItems")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
            .enumerate();
        for (index, item) in items {
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            for action in item.values_mut().filter_map(Value::as_object_mut) {
                let table = action
                    .get("TableName")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                if let Some(prefix) = plan.prefix_of(table) {
                    prefix_values(prefix, action, expressions::action(parsed, index)?)?;
                }
            }
        }
        return Ok(());
    }
    let single = plan.operation.is_single_table();
    match plan.tables.first().and_then(|t| plan.prefix_of(t)) {
        Some(prefix) if single => prefix_values(prefix, body, expressions::top(parsed)?),
        _ => Ok(()),
    }
}

fn refused(kind: ExprKind, message: &str) -> RewriteError {
    RewriteError::Refused(format!("Invalid {}: {message}", kind.field()))
}

/// Renames the values compared with the partition key in `set` to prefixed ones, marking
/// each condition it changes.
fn prefix_values(
    prefix: &KeyPrefix,
    body: &mut Map<String, Value>,
    set: &mut ExpressionSet,
) -> Result<(), RewriteError> {
    if set.conditions().next().is_none() && set.update.is_none() {
        // A GetItem's or PutItem's names map can be long: not copied for nothing.
        return Ok(());
    }
    let names = body
        .get("ExpressionAttributeNames")
        .and_then(Value::as_object)
        .cloned();
    let is_key = |path: &Path| path.is_attribute(names.as_ref(), &prefix.attribute);
    refuse_what_cannot_follow(prefix, body, set, is_key)?;
    if set
        .conditions()
        .all(|(_, c)| c.values_compared_with(is_key).is_empty())
    {
        return Ok(());
    }
    let mut values = match body.remove("ExpressionAttributeValues") {
        Some(Value::Object(values)) => values,
        _ => Map::new(),
    };
    let mut allocator = PlaceholderAllocator::new(names.as_ref(), Some(&values));
    allocator.avoid(&set.placeholders());
    let mut renamed = Vec::new();
    let mut changed = Vec::new();
    for (kind, condition) in set.conditions_mut() {
        let before = renamed.len();
        for slot in condition.values_compared_with_mut(is_key) {
            let plain = plain_key_value(prefix, kind, &values, slot)?;
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
            changed.push(kind);
        }
    }
    for kind in changed {
        set.mark_changed(kind);
    }
    drop_unused(set, &mut values, &renamed);
    body.insert("ExpressionAttributeValues".into(), Value::Object(values));
    Ok(())
}

/// Refuses every use of the partition key whose answer the prefix would change and no
/// rewrite of a value can restore (see the table in docs/src/key-prefix.md): `size`, a
/// comparison with another attribute, a `contains` whose value may match inside the
/// prefix, and an update that copies the stored (prefixed) key into another attribute.
fn refuse_what_cannot_follow(
    prefix: &KeyPrefix,
    body: &Map<String, Value>,
    set: &ExpressionSet,
    is_key: impl Fn(&Path) -> bool + Copy,
) -> Result<(), RewriteError> {
    let (attribute, table) = (&prefix.attribute, &prefix.table);
    if set.update.as_ref().is_some_and(|u| u.reads(is_key)) {
        return Err(refused(
            ExprKind::Update,
            &format!(
                "the partition key {attribute} of table {table} is region-prefixed \
                 (key_prefix), and this update would copy its stored, prefixed value into \
                 another attribute; set that attribute from a value (:v) instead"
            ),
        ));
    }
    let values = body
        .get("ExpressionAttributeValues")
        .and_then(Value::as_object);
    for (kind, condition) in set.conditions() {
        if condition.target_used_elsewhere(is_key) {
            return Err(refused(
                kind,
                &format!(
                    "the partition key {attribute} of table {table} is region-prefixed \
                     (key_prefix), and this expression uses it where the prefix cannot \
                     follow (size, or compared with another attribute)"
                ),
            ));
        }
        refuse_contains_in_prefix(prefix, kind, condition, values, is_key)?;
    }
    Ok(())
}

/// Refuses a `contains(key, :v)` whose string could be found in the prefix or across its
/// end; any other `contains` on the key goes unchanged (see [`may_match_in_prefix`]).
fn refuse_contains_in_prefix(
    prefix: &KeyPrefix,
    kind: ExprKind,
    condition: &Condition,
    values: Option<&Map<String, Value>>,
    is_key: impl Fn(&Path) -> bool,
) -> Result<(), RewriteError> {
    let (attribute, table) = (&prefix.attribute, &prefix.table);
    for placeholder in condition.values_sought_in(is_key) {
        let sought = values
            .and_then(|v| v.get(placeholder))
            .and_then(|v| v.get("S"))
            .and_then(Value::as_str);
        if sought.is_some_and(|s| may_match_in_prefix(&prefix.prefix, s)) {
            return Err(refused(
                kind,
                &format!(
                    "contains({attribute}, {placeholder}) cannot be answered exactly: the \
                     partition key {attribute} of table {table} is stored with the prefix \
                     \"{}\" (key_prefix), and the string in {placeholder} could be found in \
                     that prefix or across its end",
                    prefix.prefix
                ),
            ));
        }
    }
    Ok(())
}

/// Whether `contains(<prefix><key>, sought)` can differ from `contains(<key>, sought)` for
/// some key. An occurrence inside `<key>` is one inside `<prefix><key>`; any other starts
/// within the prefix, at some offset `i`, so either `sought` lies within `prefix[i..]` or
/// it begins with `prefix[i..]`. When neither holds for any `i`, the two always agree and
/// the condition goes to DynamoDB unchanged; when one does, some key tells them apart
/// (`""`, or the rest of `sought` after `prefix[i..]`). Bytes are compared, as UTF-8 keeps
/// a match at a character boundary. The empty string is in every string, prefixed or not.
fn may_match_in_prefix(prefix: &str, sought: &str) -> bool {
    let (prefix, sought) = (prefix.as_bytes(), sought.as_bytes());
    !sought.is_empty()
        && (0..prefix.len()).any(|i| {
            let tail = &prefix[i..];
            tail.starts_with(sought) || sought.starts_with(tail)
        })
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
/// request (as rewritten) uses any more.
fn drop_unused(set: &ExpressionSet, values: &mut Map<String, Value>, renamed: &[String]) {
    let used = set.placeholders();
    for name in renamed {
        if !used.values.contains(&name.as_str()) {
            values.remove(name);
        }
    }
}

#[cfg(test)]
mod tests;
