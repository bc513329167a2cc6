//! `TransactWriteItems` and `ExecuteTransaction` get a `ClientRequestToken` when the client
//! sent none. DynamoDB treats repeats of a token within ten minutes as the same transaction
//! in the region that received it (nothing says another replica region knows the token), so
//! after an ambiguous failure the sidecar resends it to that same region only, unless every
//! write in it is idempotent (`route::retry`, `route::pin`).

use serde_json::Value;

use super::RequestCtx;
use crate::wire::{Operation, ParsedRequest};

pub fn apply(request: &mut ParsedRequest, ctx: &RequestCtx) -> bool {
    let takes_token = matches!(
        request.operation,
        Operation::TransactWriteItems | Operation::ExecuteTransaction
    );
    if !takes_token || request.body.contains_key("ClientRequestToken") {
        return false;
    }
    request.body.insert(
        "ClientRequestToken".into(),
        Value::String(ctx.idempotency_token.clone()),
    );
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::parse;

    fn ctx() -> RequestCtx {
        RequestCtx {
            idempotency_token: "tok-1".into(),
        }
    }

    #[test]
    fn adds_a_token_to_transactions_without_one() {
        let mut req = parse(Operation::TransactWriteItems, br#"{"TransactItems":[]}"#).unwrap();
        assert!(apply(&mut req, &ctx()));
        assert_eq!(req.body["ClientRequestToken"], "tok-1");
    }

    #[test]
    fn keeps_the_clients_token_and_leaves_other_operations_alone() {
        let mut req = parse(
            Operation::TransactWriteItems,
            br#"{"TransactItems":[],"ClientRequestToken":"mine"}"#,
        )
        .unwrap();
        assert!(!apply(&mut req, &ctx()));
        assert_eq!(req.body["ClientRequestToken"], "mine");
        let mut put = parse(Operation::PutItem, br#"{"TableName":"T"}"#).unwrap();
        assert!(!apply(&mut put, &ctx()));
        assert!(!put.body.contains_key("ClientRequestToken"));
    }
}
