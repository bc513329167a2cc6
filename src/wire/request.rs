//! Reading a request body: JSON object or `SerializationException`, and the table names it
//! touches, with the types DynamoDB would insist on. Only what routing and the rewrite
//! steps need is read; everything else passes through untouched.

use serde_json::{Map, Value};

use super::Operation;
use crate::error::ProxyError;

/// A request body, parsed once.
#[derive(Debug)]
pub struct ParsedRequest {
    pub operation: Operation,
    pub body: Map<String, Value>,
    /// Every table the request names, in order of appearance, without repeats.
    pub tables: Vec<String>,
}

pub fn parse(operation: Operation, bytes: &[u8]) -> Result<ParsedRequest, ProxyError> {
    // serde_json stops at 128 levels of nesting, so hostile depth is an error, not a crash.
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| ProxyError::Serialization(format!("request body is not valid JSON: {e}")))?;
    let Value::Object(body) = value else {
        return Err(ProxyError::Serialization(
            "request body must be a JSON object".into(),
        ));
    };
    let tables = table_names(&operation, &body)?;
    check_item_shapes(&operation, &body)?;
    Ok(ParsedRequest {
        operation,
        body,
        tables,
    })
}

fn table_names(op: &Operation, body: &Map<String, Value>) -> Result<Vec<String>, ProxyError> {
    let mut tables = Vec::new();
    if let Some(name) = body.get("TableName") {
        push(&mut tables, string_field("TableName", name)?);
    }
    match op {
        Operation::BatchGetItem | Operation::BatchWriteItem => {
            if let Some(items) = body.get("RequestItems") {
                let items = object_field("RequestItems", items)?;
                for name in items.keys() {
                    push(&mut tables, name);
                }
            }
        }
        Operation::TransactGetItems | Operation::TransactWriteItems => {
            if let Some(items) = body.get("TransactItems") {
                let Value::Array(items) = items else {
                    return Err(type_error("TransactItems", "a list"));
                };
                for item in items {
                    for action in object_field("TransactItems[]", item)?.values() {
                        if let Some(name) =
                            object_field("TransactItems[].*", action)?.get("TableName")
                        {
                            push(&mut tables, string_field("TableName", name)?);
                        }
                    }
                }
            }
        }
        _ => {}
    }
    Ok(tables)
}

/// Fields that hold an item or key: a map from attribute name to attribute value.
const ITEM_FIELDS: [&str; 4] = [
    "Key",
    "Item",
    "ExclusiveStartKey",
    "ExpressionAttributeValues",
];

/// Keys and items must be maps of attribute values wherever a request carries them:
/// DynamoDB refuses anything else, and the key rewriting on the roadmap walks them.
fn check_item_shapes(op: &Operation, body: &Map<String, Value>) -> Result<(), ProxyError> {
    check_item_fields(body)?;
    match op {
        Operation::BatchGetItem => {
            for request in request_items(body)? {
                if let Some(keys) = object_field("RequestItems.*", request)?.get("Keys") {
                    for key in list_field("Keys", keys)? {
                        item_map("Keys[]", key)?;
                    }
                }
            }
        }
        Operation::BatchWriteItem => {
            for requests in request_items(body)? {
                for request in list_field("RequestItems.*", requests)? {
                    for inner in object_field("RequestItems.*[]", request)?.values() {
                        check_item_fields(object_field("WriteRequest", inner)?)?;
                    }
                }
            }
        }
        Operation::TransactGetItems | Operation::TransactWriteItems => {
            let items = body
                .get("TransactItems")
                .map(|v| list_field("TransactItems", v));
            for item in items.transpose()?.into_iter().flatten() {
                for action in object_field("TransactItems[]", item)?.values() {
                    check_item_fields(object_field("TransactItems[].*", action)?)?;
                }
            }
        }
        _ => {}
    }
    Ok(())
}

fn check_item_fields(object: &Map<String, Value>) -> Result<(), ProxyError> {
    for field in ITEM_FIELDS {
        if let Some(value) = object.get(field) {
            item_map(field, value)?;
        }
    }
    Ok(())
}

fn item_map(field: &str, value: &Value) -> Result<(), ProxyError> {
    let map = object_field(field, value)?;
    if map.values().all(Value::is_object) {
        Ok(())
    } else {
        Err(type_error(field, "a map of attribute values"))
    }
}

fn request_items(body: &Map<String, Value>) -> Result<impl Iterator<Item = &Value>, ProxyError> {
    let items = body
        .get("RequestItems")
        .map(|v| object_field("RequestItems", v));
    Ok(items.transpose()?.into_iter().flat_map(|m| m.values()))
}

fn list_field<'a>(field: &str, value: &'a Value) -> Result<&'a Vec<Value>, ProxyError> {
    value.as_array().ok_or_else(|| type_error(field, "a list"))
}

fn push(tables: &mut Vec<String>, name: &str) {
    if !tables.iter().any(|t| t == name) {
        tables.push(name.to_owned());
    }
}

fn string_field<'a>(field: &str, value: &'a Value) -> Result<&'a str, ProxyError> {
    value.as_str().ok_or_else(|| type_error(field, "a string"))
}

fn object_field<'a>(field: &str, value: &'a Value) -> Result<&'a Map<String, Value>, ProxyError> {
    value.as_object().ok_or_else(|| type_error(field, "a map"))
}

fn type_error(field: &str, expected: &str) -> ProxyError {
    ProxyError::Serialization(format!("`{field}` must be {expected}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tables(op: Operation, body: &str) -> Result<Vec<String>, ProxyError> {
        parse(op, body.as_bytes()).map(|p| p.tables)
    }

    #[test]
    fn finds_every_table() {
        assert_eq!(
            tables(Operation::GetItem, r#"{"TableName":"A","Key":{}}"#).unwrap(),
            ["A"]
        );
        assert_eq!(
            tables(
                Operation::BatchWriteItem,
                r#"{"RequestItems":{"A":[],"B":[]}}"#
            )
            .unwrap(),
            ["A", "B"]
        );
        let transact = r#"{"TransactItems":[{"Put":{"TableName":"A"}},{"ConditionCheck":{"TableName":"B"}},{"Delete":{"TableName":"A"}}]}"#;
        assert_eq!(
            tables(Operation::TransactWriteItems, transact).unwrap(),
            ["A", "B"]
        );
        assert!(tables(Operation::ListTables, "{}").unwrap().is_empty());
    }

    #[test]
    fn refuses_what_is_not_a_json_object() {
        for body in ["", "{", "[]", "\"x\"", "{\"a\":1}}", "\u{0}"] {
            let err = tables(Operation::GetItem, body).unwrap_err();
            assert!(matches!(err, ProxyError::Serialization(_)), "{body}: {err}");
        }
        let deep = "[".repeat(10_000);
        assert!(matches!(
            tables(Operation::GetItem, &format!("{{\"a\":{deep}")).unwrap_err(),
            ProxyError::Serialization(_)
        ));
    }

    proptest::proptest! {
        /// No body, however hostile, panics the parser: it parses or it is refused.
        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            for op in [Operation::GetItem, Operation::BatchWriteItem, Operation::TransactWriteItems, Operation::BatchGetItem] {
                let _ = parse(op, &bytes);
            }
        }

        /// Arbitrary JSON in the shapes the parser reads never panics it either.
        #[test]
        fn never_panics_on_arbitrary_json(json in arbitrary_json()) {
            for op in [Operation::PutItem, Operation::BatchWriteItem, Operation::TransactGetItems, Operation::BatchGetItem] {
                for field in ["TableName", "Item", "Key", "RequestItems", "TransactItems"] {
                    let body = serde_json::json!({ field: json.clone() }).to_string();
                    let _ = parse(op.clone(), body.as_bytes());
                }
            }
        }
    }

    fn arbitrary_json() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            "[A-Za-z]{0,4}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map("[A-Za-z]{1,4}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    #[test]
    fn accepts_well_formed_items_with_any_attribute_names() {
        let put = r#"{"TableName":"T","Item":{"Key":{"S":"k"},"Item":{"M":{"Key":{"S":"x"}}}}}"#;
        assert!(parse(Operation::PutItem, put.as_bytes()).is_ok());
        let batch = r#"{"RequestItems":{"T":[{"DeleteRequest":{"Key":{"k":{"S":"1"}}}}]}}"#;
        assert!(parse(Operation::BatchWriteItem, batch.as_bytes()).is_ok());
    }

    #[test]
    fn refuses_wrong_types_where_it_reads() {
        for (op, body) in [
            (Operation::GetItem, r#"{"TableName":5}"#),
            (Operation::BatchGetItem, r#"{"RequestItems":[]}"#),
            (Operation::TransactWriteItems, r#"{"TransactItems":{}}"#),
            (
                Operation::TransactWriteItems,
                r#"{"TransactItems":[{"Put":"x"}]}"#,
            ),
            (
                Operation::TransactGetItems,
                r#"{"TransactItems":[{"Get":{"TableName":[]}}]}"#,
            ),
        ] {
            assert!(tables(op, body).is_err(), "{body}");
        }
    }
}
