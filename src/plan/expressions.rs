//! The request's expressions, read once as the plan is built and arranged as the request
//! will be sent: a single-item write the plan runs as a transaction has its expressions as
//! the transaction's one action, a batch run as one has an empty set per action. What a
//! unit's table needs decides what is parsed: every expression where a step rewrites the
//! table (key prefix, version), only the update elsewhere (the retry-safety judgement
//! reads it), nothing for a read no step touches.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::error::ProxyError;
use crate::expr::{ExpressionSet, Expressions, SetError, Wanted};
use crate::wire::{Operation, RequestView};

/// The expression fields, the only ones read here.
const FIELDS: [&str; 5] = [
    "KeyConditionExpression",
    "ConditionExpression",
    "FilterExpression",
    "UpdateExpression",
    "ProjectionExpression",
];

/// One `TransactItems` action's table and expressions; its items are skipped unread.
#[derive(Deserialize)]
struct Action<'a> {
    #[serde(rename = "TableName", borrow)]
    table: Option<Cow<'a, str>>,
    #[serde(rename = "KeyConditionExpression")]
    key_condition: Option<Value>,
    #[serde(rename = "ConditionExpression")]
    condition: Option<Value>,
    #[serde(rename = "FilterExpression")]
    filter: Option<Value>,
    #[serde(rename = "UpdateExpression")]
    update: Option<Value>,
    #[serde(rename = "ProjectionExpression")]
    projection: Option<Value>,
}

impl Action<'_> {
    fn field(&self, name: &str) -> Option<&Value> {
        match name {
            "KeyConditionExpression" => self.key_condition.as_ref(),
            "ConditionExpression" => self.condition.as_ref(),
            "FilterExpression" => self.filter.as_ref(),
            "UpdateExpression" => self.update.as_ref(),
            "ProjectionExpression" => self.projection.as_ref(),
            _ => None,
        }
    }
}

/// What to parse of a unit on `table` for `operation`.
fn wanted(operation: &Operation, table: &str, rewritten: &impl Fn(&str) -> bool) -> Wanted {
    if rewritten(table) {
        Wanted::All
    } else if matches!(
        operation,
        Operation::UpdateItem | Operation::TransactWriteItems
    ) {
        Wanted::UpdateOnly
    } else {
        Wanted::Nothing
    }
}

/// Reads the expressions of the request `view`, which the plan sends as `sent` with
/// `actions` actions (when a transaction); `rewritten` tells the tables a step rewrites.
pub(super) fn read(
    view: &RequestView<'_>,
    sent: &Operation,
    actions: usize,
    rewritten: impl Fn(&str) -> bool,
) -> Result<Expressions, ProxyError> {
    match &view.operation {
        Operation::TransactWriteItems => Ok(Expressions {
            top: Ok(ExpressionSet::default()),
            actions: transaction(view, &rewritten)?,
        }),
        // Its actions carry no expressions; the version check adds them.
        Operation::BatchWriteItem if *sent == Operation::TransactWriteItems => Ok(Expressions {
            top: Ok(ExpressionSet::default()),
            actions: vec![Ok(ExpressionSet::default()); actions],
        }),
        op if op.is_single_table() => {
            let table = view.tables.first().map_or("", String::as_str);
            let unit = top_level(view, wanted(op, table, &rewritten))?;
            Ok(if *sent == Operation::TransactWriteItems {
                Expressions {
                    top: Ok(ExpressionSet::default()),
                    actions: vec![unit],
                }
            } else {
                Expressions {
                    top: unit,
                    actions: Vec::new(),
                }
            })
        }
        _ => Ok(Expressions::default()),
    }
}

fn top_level(
    view: &RequestView<'_>,
    wanted: Wanted,
) -> Result<Result<ExpressionSet, SetError>, ProxyError> {
    if wanted == Wanted::Nothing {
        return Ok(Ok(ExpressionSet::default()));
    }
    let mut fields = Map::new();
    for field in FIELDS {
        if let Some(value) = view.decode::<Value>(field)? {
            fields.insert(field.to_owned(), value);
        }
    }
    Ok(ExpressionSet::parse_map(wanted, &fields))
}

fn transaction(
    view: &RequestView<'_>,
    rewritten: &impl Fn(&str) -> bool,
) -> Result<Vec<Result<ExpressionSet, SetError>>, ProxyError> {
    let items = view
        .decode::<Vec<BTreeMap<Cow<'_, str>, Action<'_>>>>("TransactItems")?
        .unwrap_or_default();
    Ok(items
        .iter()
        .map(|item| {
            let Some((kind, action)) = item.iter().next() else {
                return Ok(ExpressionSet::default());
            };
            let table = action.table.as_deref().unwrap_or_default();
            let wanted = match wanted(&Operation::TransactWriteItems, table, rewritten) {
                // Only an `Update` action has an update to judge.
                Wanted::UpdateOnly if kind != "Update" => Wanted::Nothing,
                wanted => wanted,
            };
            ExpressionSet::parse(wanted, |field| action.field(field))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_body(op: Operation, sent: &Operation, body: &str, managed: &str) -> Expressions {
        let view = RequestView::parse(op, body.as_bytes()).unwrap();
        read(&view, sent, 2, |t| t == managed).unwrap()
    }

    #[test]
    fn a_managed_table_gets_every_expression_and_another_its_update_only() {
        let body = r#"{"TableName":"t","ConditionExpression":"a = :a",
            "UpdateExpression":"SET b = :b"}"#;
        let managed = read_body(Operation::UpdateItem, &Operation::UpdateItem, body, "t");
        let set = managed.top.unwrap();
        assert!(set.condition.is_some() && set.update.is_some());
        let other = read_body(Operation::UpdateItem, &Operation::UpdateItem, body, "x");
        let set = other.top.unwrap();
        assert!(set.condition.is_none() && set.update.is_some());
        let read = read_body(
            Operation::GetItem,
            &Operation::GetItem,
            r#"{"TableName":"t","ProjectionExpression":"a,,"}"#,
            "x",
        );
        assert_eq!(read.top, Ok(ExpressionSet::default()));
    }

    #[test]
    fn a_single_write_run_as_a_transaction_has_its_expressions_as_the_action() {
        let body = r#"{"TableName":"t","ConditionExpression":"a = :a"}"#;
        let moved = read_body(
            Operation::PutItem,
            &Operation::TransactWriteItems,
            body,
            "t",
        );
        assert_eq!(moved.top, Ok(ExpressionSet::default()));
        assert!(moved.action(0).is_ok_and(|s| s.condition.is_some()));
        let batch = read_body(
            Operation::BatchWriteItem,
            &Operation::TransactWriteItems,
            r#"{"RequestItems":{"t":[{"PutRequest":{"Item":{"k":{"S":"a"}}}}]}}"#,
            "t",
        );
        assert_eq!(batch.actions.len(), 2);
    }

    #[test]
    fn transaction_actions_in_order_with_their_errors() {
        let body = r#"{"TransactItems":[
            {"Put":{"TableName":"t","Item":{"k":{"S":"a"}},"ConditionExpression":"a ="}},
            {"Update":{"TableName":"x","Key":{"k":{"S":"a"}},"UpdateExpression":"SET b = :b",
                       "ConditionExpression":"c = :c"}},
            {"Delete":{"TableName":"x","Key":{"k":{"S":"a"}},"ConditionExpression":"c ="}}]}"#;
        let read = read_body(
            Operation::TransactWriteItems,
            &Operation::TransactWriteItems,
            body,
            "t",
        );
        assert!(read.actions[0].is_err());
        let update = read.actions[1].as_ref().unwrap();
        assert!(update.update.is_some() && update.condition.is_none());
        // Another table's broken condition is DynamoDB's to refuse.
        assert_eq!(read.actions[2], Ok(ExpressionSet::default()));
    }
}
