//! A BatchWriteItem on a versioned table runs as one TransactWriteItems: DynamoDB's batch
//! writes cannot carry a condition, and the version check is one. So does one on an audited
//! table with `[audit] mode = "atomic"`, whose records join the transaction. Its 25 write requests fit
//! a transaction's 100 actions; it costs twice the write units, and it succeeds or fails
//! whole, where a batch may leave some requests unprocessed. The answer goes back in the
//! batch's shape: a success has no `UnprocessedItems`; a version conflict is the
//! transaction's own `TransactionCanceledException`, with a reason per request.

use serde_json::{Map, Value, json};

use super::RewriteError;
use crate::plan::Plan;

/// DynamoDB's limit on the write requests of one BatchWriteItem, all tables together. The
/// transaction it runs as would take 100: the batch's own limit holds all the same.
const MAX_REQUESTS: usize = 25;

/// Fields a BatchWriteItem and a TransactWriteItems share.
const SHARED: [&str; 2] = ["ReturnConsumedCapacity", "ReturnItemCollectionMetrics"];

pub fn request(plan: &Plan, body: &mut Map<String, Value>) -> Result<(), RewriteError> {
    if !plan.batch_as_transaction() {
        return Ok(());
    }
    let Some(Value::Object(tables)) = body.remove("RequestItems") else {
        return Err(RewriteError::Refused(
            "RequestItems must be a map of tables to write requests".into(),
        ));
    };
    let count: usize = tables
        .values()
        .filter_map(Value::as_array)
        .map(Vec::len)
        .sum();
    if count > MAX_REQUESTS {
        // DynamoDB's own words for a batch over its limit.
        return Err(RewriteError::Refused(
            "Too many items requested for the BatchWriteItem call".into(),
        ));
    }
    let mut actions = Vec::new();
    // serde_json's map iterates in key order: the order the plan listed the actions in.
    for (table, requests) in tables {
        let Value::Array(requests) = requests else {
            return Err(RewriteError::Refused(format!(
                "RequestItems.{table} must be a list of write requests"
            )));
        };
        for request in requests {
            actions.push(action(&table, request)?);
        }
    }
    let mut transaction = Map::new();
    transaction.insert("TransactItems".into(), Value::Array(actions));
    for field in SHARED {
        if let Some(value) = body.remove(field) {
            transaction.insert(field.into(), value);
        }
    }
    *body = transaction;
    Ok(())
}

fn action(table: &str, request: Value) -> Result<Value, RewriteError> {
    let Value::Object(mut request) = request else {
        return Err(RewriteError::Refused(
            "a write request must be a map".into(),
        ));
    };
    match (
        request.remove("PutRequest"),
        request.remove("DeleteRequest"),
    ) {
        (Some(put), None) => Ok(json!({"Put": {"TableName": table, "Item": put.get("Item")}})),
        (None, Some(delete)) => {
            Ok(json!({"Delete": {"TableName": table, "Key": delete.get("Key")}}))
        }
        _ => Err(RewriteError::Refused(
            "a write request holds exactly one of PutRequest and DeleteRequest".into(),
        )),
    }
}

/// A transaction's success, as the batch the client sent would have answered it.
pub fn restore(plan: &Plan, body: &mut Map<String, Value>) {
    if !plan.batch_as_transaction() || crate::wire::error_name_in(body).is_some() {
        return;
    }
    body.insert("UnprocessedItems".into(), json!({}));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_request_becomes_an_action_of_its_table() {
        let put = action("T", json!({"PutRequest": {"Item": {"k": {"S": "1"}}}})).unwrap();
        assert_eq!(
            put,
            json!({"Put": {"TableName": "T", "Item": {"k": {"S": "1"}}}})
        );
        let delete = action("T", json!({"DeleteRequest": {"Key": {"k": {"S": "1"}}}})).unwrap();
        assert_eq!(
            delete,
            json!({"Delete": {"TableName": "T", "Key": {"k": {"S": "1"}}}})
        );
        assert!(action("T", json!({})).is_err());
        assert!(action("T", json!({"PutRequest": {}, "DeleteRequest": {}})).is_err());
    }
}
