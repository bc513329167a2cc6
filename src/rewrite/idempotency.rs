//! `TransactWriteItems` and `ExecuteTransaction` get a `ClientRequestToken` when the client
//! sent none. DynamoDB treats repeats of a token within ten minutes as the same transaction
//! in the region that received it (nothing says another replica region knows the token), so
//! after an ambiguous failure the sidecar resends it to that same region only, unless every
//! write in it is idempotent (`route::retry`, `route::pin`).

use serde_json::{Map, Value};

use super::RequestCtx;
use crate::wire::Operation;

/// Whether the step applies: a transaction without a token.
pub fn needed(operation: &Operation, has_token: bool) -> bool {
    matches!(
        operation,
        Operation::TransactWriteItems | Operation::ExecuteTransaction
    ) && !has_token
}

pub fn apply(operation: &Operation, body: &mut Map<String, Value>, ctx: &RequestCtx) {
    if needed(operation, body.contains_key("ClientRequestToken")) {
        body.insert(
            "ClientRequestToken".into(),
            Value::String(ctx.idempotency_token.clone()),
        );
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn ctx() -> RequestCtx {
        RequestCtx {
            idempotency_token: "tok-1".into(),
            write_id: "w".into(),
        }
    }

    fn apply_to(operation: &Operation, body: Value) -> Value {
        let Value::Object(mut body) = body else {
            panic!("not an object")
        };
        apply(operation, &mut body, &ctx());
        Value::Object(body)
    }

    #[test]
    fn adds_a_token_to_transactions_without_one() {
        let body = apply_to(&Operation::TransactWriteItems, json!({"TransactItems": []}));
        assert_eq!(body["ClientRequestToken"], "tok-1");
        let body = apply_to(
            &Operation::ExecuteTransaction,
            json!({"TransactStatements": []}),
        );
        assert_eq!(body["ClientRequestToken"], "tok-1");
    }

    #[test]
    fn keeps_the_clients_token_and_leaves_other_operations_alone() {
        let body = apply_to(
            &Operation::TransactWriteItems,
            json!({"TransactItems": [], "ClientRequestToken": "mine"}),
        );
        assert_eq!(body["ClientRequestToken"], "mine");
        let body = apply_to(&Operation::PutItem, json!({"TableName": "T"}));
        assert!(body.get("ClientRequestToken").is_none());
    }
}
