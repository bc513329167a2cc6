//! DynamoDB's limits, checked on the request as it will be sent: the steps add to a
//! client's expressions (a prefixed key's values, a version check, a namespace filter), so
//! an expression the client kept under 4 KB can leave the sidecar over it. DynamoDB would
//! refuse it with a message about text the client never wrote; the sidecar refuses it
//! first, in DynamoDB's words, naming the rewrite.

use serde_json::{Map, Value};

use super::RewriteError;
use crate::expr::MAX_EXPRESSION_BYTES;

/// The expression fields of a request or of a transaction's action.
const EXPRESSIONS: [&str; 5] = [
    "ConditionExpression",
    "FilterExpression",
    "KeyConditionExpression",
    "UpdateExpression",
    "ProjectionExpression",
];

/// Refuses a request whose expressions, as rewritten, pass DynamoDB's 4 KB.
pub fn check(body: &Map<String, Value>) -> Result<(), RewriteError> {
    check_fields(body)?;
    let actions = body.get("TransactItems").and_then(Value::as_array);
    for action in actions.into_iter().flatten().filter_map(Value::as_object) {
        for request in action.values().filter_map(Value::as_object) {
            check_fields(request)?;
        }
    }
    Ok(())
}

fn check_fields(request: &Map<String, Value>) -> Result<(), RewriteError> {
    for field in EXPRESSIONS {
        if let Some(Value::String(text)) = request.get(field)
            && text.len() > MAX_EXPRESSION_BYTES
        {
            return Err(RewriteError::Refused(format!(
                "Invalid {field}: Expression size has exceeded the maximum allowed size; \
                 expression size: {} (as sent: the sidecar's key_prefix or version_attribute \
                 rewrite adds to the expression the client wrote, which must leave room \
                 for it)",
                text.len()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn body(value: &Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn an_expression_over_4_kb_as_sent_is_refused_and_one_at_the_limit_is_not() {
        let at_limit = "a".repeat(MAX_EXPRESSION_BYTES);
        let over = "a".repeat(MAX_EXPRESSION_BYTES + 1);
        assert!(check(&body(&json!({"FilterExpression": at_limit}))).is_ok());
        let err = check(&body(&json!({"FilterExpression": over}))).unwrap_err();
        assert!(
            err.to_string().contains("Invalid FilterExpression"),
            "{err}"
        );
        assert!(err.to_string().contains("key_prefix"), "{err}");
        let transaction = json!({"TransactItems": [
            {"Put": {"TableName": "T", "Item": {}}},
            {"Update": {"TableName": "T", "UpdateExpression": over}}]});
        let err = check(&body(&transaction)).unwrap_err();
        assert!(
            err.to_string().contains("Invalid UpdateExpression"),
            "{err}"
        );
    }
}
