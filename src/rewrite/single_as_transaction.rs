//! With `[audit] mode = "atomic"`, a PutItem, UpdateItem or DeleteItem on an audited table
//! runs as a one-action TransactWriteItems, so that its audit records can travel in the same
//! transaction (`audit::atomic`). The answer goes back in the single item's shape: a success
//! is `{}`, a cancelled transaction the error the single-item write would have got (a failed
//! condition is `ConditionalCheckFailedException`, with the item when the client asked for it).
//!
//! A transaction has no `ReturnValues`, so a client asking for an image is refused rather
//! than answered without it; legacy parameters (`Expected`, `AttributeUpdates`) have no
//! place in a transaction's action either.

use serde_json::{Map, Value};

use super::RewriteError;
use crate::plan::Plan;
use crate::wire::{Operation, error_map, error_name_in, single_item_error};

/// Fields that move into the action; the transaction-level ones stay at the top.
const ACTION_FIELDS: [&str; 8] = [
    "TableName",
    "Item",
    "Key",
    "UpdateExpression",
    "ConditionExpression",
    "ExpressionAttributeNames",
    "ExpressionAttributeValues",
    "ReturnValuesOnConditionCheckFailure",
];
const TOP_FIELDS: [&str; 2] = ["ReturnConsumedCapacity", "ReturnItemCollectionMetrics"];
const LEGACY: [&str; 3] = ["Expected", "ConditionalOperator", "AttributeUpdates"];

pub fn request(plan: &Plan, body: &mut Map<String, Value>) -> Result<(), RewriteError> {
    if !plan.single_as_transaction() {
        return Ok(());
    }
    let returns = body.get("ReturnValues").and_then(Value::as_str);
    if returns.is_some_and(|r| r != "NONE") {
        return Err(RewriteError::Refused(
            "ReturnValues other than NONE is not supported on an audited table with [audit] \
             mode = \"atomic\": the write and its audit record run as one transaction, which \
             returns no item"
                .into(),
        ));
    }
    if let Some(field) = LEGACY.iter().find(|f| body.contains_key(**f)) {
        return Err(RewriteError::Refused(format!(
            "{field} is not supported on an audited table with [audit] mode = \"atomic\"; \
             use the expression parameters"
        )));
    }
    let kind = match plan.client_operation {
        Operation::PutItem => "Put",
        Operation::UpdateItem => "Update",
        _ => "Delete",
    };
    let mut action = Map::new();
    for field in ACTION_FIELDS {
        if let Some(value) = body.remove(field) {
            action.insert(field.into(), value);
        }
    }
    let mut transaction = Map::new();
    let mut item = Map::new();
    item.insert(kind.into(), Value::Object(action));
    transaction.insert(
        "TransactItems".into(),
        Value::Array(vec![Value::Object(item)]),
    );
    for field in TOP_FIELDS {
        if let Some(value) = body.remove(field) {
            transaction.insert(field.into(), value);
        }
    }
    *body = transaction;
    Ok(())
}

/// The transaction's answer as the single-item write's.
pub fn restore(plan: &Plan, body: &mut Map<String, Value>) {
    if !plan.single_as_transaction() {
        return;
    }
    let Some(table) = plan.tables.first() else {
        return;
    };
    if let Some(name) = error_name_in(body) {
        if name == "TransactionCanceledException"
            && let Some(error) = cancelled(body)
        {
            *body = error;
        }
        return;
    }
    let mut answer = Map::new();
    let consumed = body.get("ConsumedCapacity").and_then(Value::as_array);
    if let Some(mine) = consumed
        .into_iter()
        .flatten()
        .find(|c| c.get("TableName").and_then(Value::as_str) == Some(table))
    {
        answer.insert("ConsumedCapacity".into(), mine.clone());
    }
    let metrics = body
        .get("ItemCollectionMetrics")
        .and_then(|m| m.get(table))
        .and_then(Value::as_array)
        .and_then(|m| m.first());
    if let Some(metrics) = metrics {
        answer.insert("ItemCollectionMetrics".into(), metrics.clone());
    }
    *body = answer;
}

/// The error of the first cancellation reason (the write's own, else an audit record's).
fn cancelled(body: &Map<String, Value>) -> Option<Map<String, Value>> {
    let reasons = body.get("CancellationReasons")?.as_array()?;
    let reason = reasons.iter().find(|r| {
        r.get("Code")
            .and_then(Value::as_str)
            .is_some_and(|c| c != "None")
    })?;
    let code = reason.get("Code").and_then(Value::as_str)?;
    let name = single_item_error(code)?;
    let message = reason
        .get("Message")
        .and_then(Value::as_str)
        .unwrap_or("The conditional request failed");
    let mut error = error_map(name, message);
    if let Some(item) = reason.get("Item") {
        error.insert("Item".into(), item.clone());
    }
    Some(error)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn plan(client: Operation) -> Plan {
        Plan {
            operation: Operation::TransactWriteItems,
            client_operation: client,
            tables: vec!["T".into()],
            action_tables: vec!["T".into()],
            prefixes: crate::plan::PerTable::new(),
            versions: crate::plan::PerTable::new(),
            audits: Vec::new(),
            atomic_audit: true,
            spellings: Vec::new(),
            statements_read: false,
            expressions: crate::expr::Expressions::default(),
        }
    }

    fn map(value: Value) -> Map<String, Value> {
        let Value::Object(map) = value else {
            unreachable!()
        };
        map
    }

    #[test]
    fn a_put_becomes_one_action_with_its_condition() {
        let mut body = map(json!({
            "TableName": "T", "Item": {"k": {"S": "1"}},
            "ConditionExpression": "attribute_not_exists(k)",
            "ReturnValues": "NONE", "ReturnConsumedCapacity": "TOTAL",
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD"
        }));
        request(&plan(Operation::PutItem), &mut body).unwrap();
        assert_eq!(
            Value::Object(body),
            json!({
                "TransactItems": [{"Put": {
                    "TableName": "T", "Item": {"k": {"S": "1"}},
                    "ConditionExpression": "attribute_not_exists(k)",
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD"
                }}],
                "ReturnConsumedCapacity": "TOTAL"
            })
        );
    }

    #[test]
    fn images_and_legacy_parameters_are_refused() {
        for body in [
            json!({"TableName": "T", "Key": {}, "ReturnValues": "ALL_NEW"}),
            json!({"TableName": "T", "Key": {}, "AttributeUpdates": {}}),
        ] {
            let mut body = map(body);
            assert!(request(&plan(Operation::UpdateItem), &mut body).is_err());
        }
    }

    #[test]
    fn a_cancelled_condition_is_the_single_items_failure_with_its_item() {
        let mut body = map(json!({
            "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
            "message": "Transaction cancelled, please refer cancellation reasons for specific reasons [ConditionalCheckFailed, None]",
            "CancellationReasons": [
                {"Code": "ConditionalCheckFailed", "Message": "The conditional request failed", "Item": {"k": {"S": "1"}}},
                {"Code": "None"}
            ]
        }));
        restore(&plan(Operation::DeleteItem), &mut body);
        assert_eq!(
            Value::Object(body),
            json!({
                "__type": "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException",
                "message": "The conditional request failed",
                "Item": {"k": {"S": "1"}}
            })
        );
    }

    #[test]
    fn a_success_is_empty_but_for_the_tables_capacity() {
        let mut body = map(json!({"ConsumedCapacity": [
            {"TableName": "T", "CapacityUnits": 2.0},
            {"TableName": "T-audit", "CapacityUnits": 2.0}
        ]}));
        restore(&plan(Operation::PutItem), &mut body);
        assert_eq!(
            Value::Object(body),
            json!({"ConsumedCapacity": {"TableName": "T", "CapacityUnits": 2.0}})
        );
    }
}
