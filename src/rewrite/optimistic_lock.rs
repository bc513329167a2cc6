//! Optimistic locking: on a table with `version_attribute`, every write checks the version
//! the client read and stores the next one, so a lost update becomes DynamoDB's own
//! `ConditionalCheckFailedException`. It holds on a global table because each item has one
//! home region (`key_prefix`), where the check is decided.
//!
//! - PutItem without the attribute: the item must not exist with a version yet; stored as 1.
//!   With `Version = n`: the condition is `Version = n`; stored as `n + 1`.
//! - UpdateItem: `SET Version = if_not_exists(Version, 0) + 1` joins the update; a
//!   `SET Version = :v` of the client's is the version it read, checked instead of set.
//! - DeleteItem and ConditionCheck: the client's own conditions hold.
//! - The same per action of a TransactWriteItems (and of a BatchWriteItem, which runs as one).
//!
//! Every versioned Put and Update also stores a write id (hidden from clients), and an update
//! that checks no version requires a write id other than its own: so a resend after an
//! ambiguous attempt fails its condition exactly when its first attempt landed, and the
//! condition failure's item says so (`proxy::own_write`).

use serde_json::{Map, Value, json};

use super::expressions::{action, allocator, define_name, define_value, top};
use super::{RequestCtx, RewriteError};
use crate::config::WRITE_ID_ATTRIBUTE;
use crate::expr::{
    Comparator, Condition, ExprKind, ExpressionSet, Expressions, Operand, Path, PathElement,
    PlaceholderAllocator, SetOperand, SetValue, UpdateAction, UpdateExpression,
};
use crate::plan::{Plan, Versioned};
use crate::wire::Operation;
use crate::wire::items::{Site, answer_sites};

/// Legacy parameters whose conditions or updates the step would have to merge with its own.
const LEGACY: [&str; 3] = ["Expected", "ConditionalOperator", "AttributeUpdates"];

pub fn request(
    plan: &Plan,
    parsed: &mut Expressions,
    body: &mut Map<String, Value>,
    ctx: &RequestCtx,
) -> Result<(), RewriteError> {
    if plan.versions.is_empty() {
        return Ok(());
    }
    if plan.operation == Operation::TransactWriteItems {
        let items = body.get_mut("TransactItems").and_then(Value::as_array_mut);
        for (index, item) in items.into_iter().flatten().enumerate() {
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            for (kind, request) in item.iter_mut() {
                let Some(request) = request.as_object_mut() else {
                    continue;
                };
                let table = request
                    .get("TableName")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                if let Some(versioned) = plan.version_of(table).cloned() {
                    let set = action(parsed, index)?;
                    match kind.as_str() {
                        "Put" => put(&versioned, request, set, &ctx.write_id)?,
                        "Update" => update(&versioned, request, set, &ctx.write_id)?,
                        _ => {}
                    }
                }
            }
        }
        return Ok(());
    }
    let Some(versioned) = plan.tables.first().and_then(|t| plan.version_of(t)) else {
        return Ok(());
    };
    match plan.operation {
        Operation::PutItem => put(versioned, body, top(parsed)?, &ctx.write_id),
        Operation::UpdateItem => update(versioned, body, top(parsed)?, &ctx.write_id),
        _ => Ok(()),
    }
}

/// Hides the write id from every item of a versioned table in the answer.
pub fn restore(plan: &Plan, body: &mut Map<String, Value>) {
    if plan.versions.is_empty() {
        return;
    }
    let _ = answer_sites::<()>(
        &plan.operation,
        plan.answer_context(),
        body,
        &mut |table, site, item| {
            restore_site(plan, table, site, item);
            Ok(())
        },
    );
}

/// The restore half for one item of `table` in an answer: it removes the write id, the
/// only attribute it touches.
pub fn restore_site(plan: &Plan, table: &str, site: Site, item: &mut Map<String, Value>) {
    if site == Site::Item && plan.version_of(table).is_some() {
        item.remove(WRITE_ID_ATTRIBUTE);
    }
}

/// The tables whose versioned write this answer reports as a failed condition.
pub fn conflicts<'p>(plan: &'p Plan, body: &Map<String, Value>) -> Vec<&'p str> {
    match crate::wire::error_name_in(body) {
        Some("ConditionalCheckFailedException") => plan
            .tables
            .first()
            .filter(|t| plan.version_of(t).is_some())
            .map(String::as_str)
            .into_iter()
            .collect(),
        Some("TransactionCanceledException") => body
            .get("CancellationReasons")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .zip(&plan.action_tables)
            .filter(|(reason, table)| {
                reason.get("Code").and_then(Value::as_str) == Some("ConditionalCheckFailed")
                    && plan.version_of(table).is_some()
            })
            .map(|(_, table)| table.as_str())
            .collect(),
        _ => Vec::new(),
    }
}

fn refuse_legacy(versioned: &Versioned, body: &Map<String, Value>) -> Result<(), RewriteError> {
    match LEGACY.iter().find(|field| body.contains_key(**field)) {
        Some(field) => Err(RewriteError::Refused(format!(
            "{field} is not supported on table {}: its writes are versioned \
             (version_attribute {}); use ConditionExpression and UpdateExpression instead",
            versioned.table, versioned.attribute
        ))),
        None => Ok(()),
    }
}

/// DynamoDB's numbers hold up to 38 significant digits.
const MAX_SIGNIFICANT_DIGITS: usize = 38;

/// A version as a client sends it: a whole, non-negative number DynamoDB can hold. Not a
/// `u64`: `if_not_exists(Version, 0) + 1` is DynamoDB's arithmetic, which goes on past
/// 2^64 up to 38 digits, and a `u128` holds every such number.
fn version_number(versioned: &Versioned, value: &Value) -> Result<u128, RewriteError> {
    value
        .as_object()
        .filter(|v| v.len() == 1)
        .and_then(|v| v.get("N"))
        .and_then(Value::as_str)
        .and_then(|n| n.trim().parse::<u128>().ok())
        .filter(|n| fits_a_number(*n))
        .ok_or_else(|| {
            RewriteError::Refused(format!(
                "One or more parameter values were invalid: the version attribute {} of table \
                 {} must be a whole number (N) of at least 0 and at most \
                 {MAX_SIGNIFICANT_DIGITS} significant digits",
                versioned.attribute, versioned.table
            ))
        })
}

/// Whether DynamoDB can store `n`: trailing zeros are an exponent, not significant digits.
fn fits_a_number(n: u128) -> bool {
    n.to_string().trim_end_matches('0').len() <= MAX_SIGNIFICANT_DIGITS
}

/// The version stored after `read`: 1 for an item read without one.
fn next_version(versioned: &Versioned, read: Option<u128>) -> Result<u128, RewriteError> {
    read.map_or(Some(1), |n| n.checked_add(1))
        .filter(|next| fits_a_number(*next))
        .ok_or_else(|| {
            RewriteError::Refused(format!(
                "One or more parameter values were invalid: the version attribute {} of table \
                 {} is at its largest: the next version would have more than the \
                 {MAX_SIGNIFICANT_DIGITS} significant digits of a DynamoDB number",
                versioned.attribute, versioned.table
            ))
        })
}

fn name_path(name: &str) -> Path {
    Path(vec![PathElement::Name(name.to_owned())])
}

/// What a versioned put adds, whichever path builds its body ([`put`] over the decoded
/// document, `plain_put` over the item's raw attributes): the placeholders its check
/// defines, the check itself, and the version to store.
pub(crate) struct PutCheck {
    /// The `#name` standing for the version attribute.
    pub name: String,
    /// The `:value` holding the version the client read, and that version; `None` for an
    /// item sent without one, which must not exist with a version yet.
    pub expected: Option<(String, u128)>,
    pub condition: Condition,
    /// The version stored.
    pub next: u128,
}

impl PutCheck {
    /// The check for an item whose version attribute is `read` (as sent), with
    /// placeholders from `names`.
    pub(crate) fn new(
        versioned: &Versioned,
        read: Option<&Value>,
        names: &mut PlaceholderAllocator,
    ) -> Result<Self, RewriteError> {
        let read = read.map(|v| version_number(versioned, v)).transpose()?;
        let next = next_version(versioned, read)?;
        let name = names.name();
        let (expected, condition) = match read {
            Some(n) => {
                let expected = names.value();
                let condition = Condition::Compare(
                    Operand::Path(name_path(&name)),
                    Comparator::Eq,
                    Operand::Value(expected.clone()),
                );
                (Some((expected, n)), condition)
            }
            None => (None, Condition::AttributeNotExists(name_path(&name))),
        };
        Ok(Self {
            name,
            expected,
            condition,
            next,
        })
    }
}

fn put(
    versioned: &Versioned,
    body: &mut Map<String, Value>,
    set: &mut ExpressionSet,
    write_id: &str,
) -> Result<(), RewriteError> {
    refuse_legacy(versioned, body)?;
    let read = body
        .get("Item")
        .and_then(Value::as_object)
        .and_then(|item| item.get(&versioned.attribute));
    let mut names = allocator(body, set);
    let check = PutCheck::new(versioned, read, &mut names)?;
    define_name(body, &check.name, &versioned.attribute);
    if let Some((expected, n)) = &check.expected {
        define_value(body, expected, json!({"N": n.to_string()}));
    }
    set.and(ExprKind::Condition, check.condition);
    if let Some(item) = body.get_mut("Item").and_then(Value::as_object_mut) {
        item.insert(
            versioned.attribute.clone(),
            json!({"N": check.next.to_string()}),
        );
        item.insert(WRITE_ID_ATTRIBUTE.into(), json!({"S": write_id}));
    }
    Ok(())
}

fn update(
    versioned: &Versioned,
    body: &mut Map<String, Value>,
    set: &mut ExpressionSet,
    write_id: &str,
) -> Result<(), RewriteError> {
    refuse_legacy(versioned, body)?;
    let mut expression = set.update.take().unwrap_or(UpdateExpression {
        actions: Vec::new(),
    });
    let read = take_version_read(versioned, body, set, &mut expression)?;
    let mut placeholders = allocator(body, set);
    placeholders.avoid(&expression.placeholders());
    let (version, write, zero, one, id) = (
        placeholders.name(),
        placeholders.name(),
        placeholders.value(),
        placeholders.value(),
        placeholders.value(),
    );
    define_name(body, &version, &versioned.attribute);
    define_name(body, &write, WRITE_ID_ATTRIBUTE);
    define_value(body, &zero, json!({"N": "0"}));
    define_value(body, &one, json!({"N": "1"}));
    define_value(body, &id, json!({"S": write_id}));
    expression.actions.push(UpdateAction::Set(
        name_path(&version),
        SetValue::Plus(
            SetOperand::IfNotExists(name_path(&version), Box::new(SetOperand::Value(zero))),
            SetOperand::Value(one),
        ),
    ));
    expression.actions.push(UpdateAction::Set(
        name_path(&write),
        SetValue::Operand(SetOperand::Value(id.clone())),
    ));
    let check = match read {
        Some(n) => {
            let expected = placeholders.value();
            define_value(body, &expected, json!({"N": n.to_string()}));
            Condition::Compare(
                Operand::Path(name_path(&version)),
                Comparator::Eq,
                Operand::Value(expected),
            )
        }
        // Nothing to check but that this very write has not landed yet: what lets a resend
        // recognise its own first attempt.
        None => Condition::Or(vec![
            Condition::AttributeNotExists(name_path(&write)),
            Condition::Compare(
                Operand::Path(name_path(&write)),
                Comparator::Ne,
                Operand::Value(id),
            ),
        ]),
    };
    set.and(ExprKind::Condition, check);
    set.update = Some(expression);
    set.mark_changed(ExprKind::Update);
    Ok(())
}

/// The client's `SET Version = :v`, taken out of the update: the version it read. Any other
/// use of the version or the write id in the update is the sidecar's to make.
fn take_version_read(
    versioned: &Versioned,
    body: &mut Map<String, Value>,
    set: &ExpressionSet,
    expression: &mut UpdateExpression,
) -> Result<Option<u128>, RewriteError> {
    let names = body
        .get("ExpressionAttributeNames")
        .and_then(Value::as_object)
        .cloned();
    let touches = |path: &Path, attribute: &str| {
        path.resolve(names.as_ref())
            .and_then(|p| p.first().copied())
            .is_some_and(|first| first == crate::expr::ResolvedElement::Attr(attribute))
    };
    let mut read = None;
    let mut refused = None;
    expression.actions.retain(|action| {
        let path = match action {
            UpdateAction::Set(path, _)
            | UpdateAction::Remove(path)
            | UpdateAction::Add(path, _)
            | UpdateAction::Delete(path, _) => path,
        };
        if touches(path, WRITE_ID_ATTRIBUTE) {
            refused = Some(format!(
                "{WRITE_ID_ATTRIBUTE} is the sidecar's own attribute"
            ));
            return true;
        }
        if !touches(path, &versioned.attribute) {
            return true;
        }
        match action {
            UpdateAction::Set(p, SetValue::Operand(SetOperand::Value(value)))
                if p.0.len() == 1 && read.is_none() =>
            {
                read = Some((value.clone(), p.clone()));
                false
            }
            _ => {
                refused = Some(format!(
                    "the version attribute {} of table {} is set by the sidecar; to check the \
                     version you read, SET it to that value or add a condition on it",
                    versioned.attribute, versioned.table
                ));
                true
            }
        }
    });
    if let Some(message) = refused {
        return Err(RewriteError::Refused(message));
    }
    let Some((placeholder, path)) = read else {
        return Ok(None);
    };
    let values = body
        .get("ExpressionAttributeValues")
        .and_then(Value::as_object);
    let value = values.and_then(|v| v.get(&placeholder)).ok_or_else(|| {
        RewriteError::Refused(format!(
            "Invalid UpdateExpression: An expression attribute value used in expression is not defined; attribute value: {placeholder}"
        ))
    })?;
    let n = version_number(versioned, value)?;
    drop_if_unused(body, set, expression, &placeholder, &path);
    Ok(Some(n))
}

/// Removes the client's `:value` and `#name` of the `SET` the rewrite took out of the
/// update, each if nothing else uses it: DynamoDB refuses unused ones, and `SET #V = :v`
/// must go as `SET Version = :v` does.
fn drop_if_unused(
    body: &mut Map<String, Value>,
    set: &ExpressionSet,
    expression: &UpdateExpression,
    placeholder: &str,
    path: &Path,
) {
    let name = match path.0.as_slice() {
        [PathElement::Name(name)] => Some(name.as_str()),
        _ => None,
    };
    // The update is out of `set` while the step edits it.
    let mut used = expression.placeholders();
    used.merge(set.placeholders());
    if !used.values.contains(&placeholder) {
        remove_from(body, "ExpressionAttributeValues", placeholder);
    }
    if let Some(name) = name
        && !used.names.contains(&name)
    {
        remove_from(body, "ExpressionAttributeNames", name);
    }
}

fn remove_from(body: &mut Map<String, Value>, map: &str, key: &str) {
    if let Some(map) = body.get_mut(map).and_then(Value::as_object_mut) {
        map.remove(key);
    }
}

#[cfg(test)]
mod tests;
