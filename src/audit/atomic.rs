//! `[audit] mode = "atomic"`: a write's audit records are puts in the same TransactWriteItems
//! as the write (a single-item write or a batch runs as one for this), so the write and its
//! records land together or not at all; nothing waits in a spool. The price: twice the write
//! units (every action of a transaction costs two), the audit table in the path of every
//! write (a write fails while the audit table is missing), and no item images beyond a put's.
//!
//! The records are unconditional puts keyed by their event id: a resend of the transaction
//! writes the same items again rather than failing on its own first attempt.

use serde_json::{Map, Value, json};

use crate::plan::Plan;
use crate::rewrite::RewriteError;

/// DynamoDB's limit on a transaction's actions.
pub const MAX_ACTIONS: usize = 100;

/// Appends a put of each record to the transaction in `body`.
pub fn append(
    body: &mut Map<String, Value>,
    table: &str,
    records: &[Map<String, Value>],
) -> Result<(), RewriteError> {
    let Some(Value::Array(actions)) = body.get_mut("TransactItems") else {
        return Err(RewriteError::Refused(
            "TransactItems must be a list of actions".into(),
        ));
    };
    if actions.len() + records.len() > MAX_ACTIONS {
        return Err(RewriteError::Refused(format!(
            "with [audit] mode = \"atomic\", each audited write adds its record to the \
             transaction: {} actions and {} records exceed the {MAX_ACTIONS}-action limit",
            actions.len(),
            records.len()
        )));
    }
    actions.extend(
        records
            .iter()
            .map(|record| json!({"Put": {"TableName": table, "Item": record}})),
    );
    Ok(())
}

/// Takes the records back out of the answer: the reasons of their actions, and their
/// tables' consumed capacity and item collection metrics.
pub fn restore(plan: &Plan, body: &mut Map<String, Value>) {
    if !plan.atomic_audit {
        return;
    }
    let actions = plan.action_tables.len();
    if let Some(Value::Array(reasons)) = body.get_mut("CancellationReasons") {
        reasons.truncate(actions);
    }
    let named = |table: Option<&str>| table.is_some_and(|t| plan.tables.iter().any(|n| n == t));
    if let Some(Value::Array(consumed)) = body.get_mut("ConsumedCapacity") {
        consumed.retain(|c| named(c.get("TableName").and_then(Value::as_str)));
    }
    if let Some(Value::Object(metrics)) = body.get_mut("ItemCollectionMetrics") {
        metrics.retain(|table, _| named(Some(table)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Operation;

    fn map(value: Value) -> Map<String, Value> {
        let Value::Object(map) = value else {
            unreachable!()
        };
        map
    }

    #[test]
    fn records_are_puts_after_the_writes_within_the_limit() {
        let mut body = map(json!({"TransactItems": [{"Delete": {"TableName": "T", "Key": {}}}]}));
        let record = map(json!({"ItemKey": {"S": "T#a"}, "EventId": {"S": "01"}}));
        append(&mut body, "Trail", std::slice::from_ref(&record)).unwrap();
        assert_eq!(
            body["TransactItems"][1],
            json!({"Put": {"TableName": "Trail", "Item": record}})
        );
        let full = vec![record; MAX_ACTIONS - 1];
        assert!(append(&mut body, "Trail", &full).is_err());
    }

    #[test]
    fn the_answer_loses_the_records_reasons_and_capacity() {
        let plan = Plan {
            operation: Operation::TransactWriteItems,
            client_operation: Operation::TransactWriteItems,
            tables: vec!["T".into()],
            action_tables: vec!["T".into()],
            prefixes: crate::plan::PerTable::new(),
            versions: crate::plan::PerTable::new(),
            audits: Vec::new(),
            atomic_audit: true,
            spellings: Vec::new(),
            statements_read: false,
            expressions: crate::expr::Expressions::default(),
        };
        let mut body = map(json!({
            "CancellationReasons": [{"Code": "ConditionalCheckFailed"}, {"Code": "None"}],
            "ConsumedCapacity": [{"TableName": "T"}, {"TableName": "Trail"}],
            "ItemCollectionMetrics": {"T": [], "Trail": []}
        }));
        restore(&plan, &mut body);
        assert_eq!(
            Value::Object(body),
            json!({
                "CancellationReasons": [{"Code": "ConditionalCheckFailed"}],
                "ConsumedCapacity": [{"TableName": "T"}],
                "ItemCollectionMetrics": {"T": []}
            })
        );
    }
}
