use serde_json::Value;

use super::*;

fn tables(op: Operation, body: &str) -> Result<Vec<String>, ProxyError> {
    RequestView::parse(op, body.as_bytes()).map(|v| v.tables)
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
fn reads_fields_lazily_and_borrows_them() {
    let body = r#"{"TableName":"T","Key":{"k":{"S":"1"}},"Limit":5,"T\u0061g":"x"}"#;
    let view = RequestView::parse(Operation::GetItem, body.as_bytes()).unwrap();
    assert_eq!(view.raw("Key").unwrap().get(), r#"{"k":{"S":"1"}}"#);
    assert_eq!(view.decode::<u32>("Limit").unwrap(), Some(5));
    assert_eq!(
        view.str("Tag").as_deref(),
        Some("x"),
        "escaped names are decoded"
    );
    assert!(!view.has("Item"));
    let subset = view.subset(|f| f == "Limit").unwrap();
    assert_eq!(Value::Object(subset), serde_json::json!({"Limit": 5}));
    let whole = Value::Object(view.to_map().unwrap());
    assert_eq!(whole, serde_json::from_str::<Value>(body).unwrap());
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
            let _ = RequestView::parse(op, &bytes);
        }
    }

    /// Arbitrary JSON in the shapes the parser reads never panics it either.
    #[test]
    fn never_panics_on_arbitrary_json(json in arbitrary_json()) {
        for op in [Operation::PutItem, Operation::BatchWriteItem, Operation::TransactGetItems, Operation::BatchGetItem] {
            for field in ["TableName", "Item", "Key", "RequestItems", "TransactItems"] {
                let body = serde_json::json!({ field: json.clone() }).to_string();
                let _ = RequestView::parse(op.clone(), body.as_bytes());
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
    assert!(RequestView::parse(Operation::PutItem, put.as_bytes()).is_ok());
    let batch = r#"{"RequestItems":{"T":[{"DeleteRequest":{"Key":{"k":{"S":"1"}}}}]}}"#;
    assert!(RequestView::parse(Operation::BatchWriteItem, batch.as_bytes()).is_ok());
}

#[test]
fn refuses_wrong_types_where_it_reads() {
    for (op, body) in [
        (Operation::GetItem, r#"{"TableName":5}"#),
        (Operation::GetItem, r#"{"TableName":"T","Key":"x"}"#),
        (Operation::GetItem, r#"{"TableName":"T","Key":{"k":"x"}}"#),
        (Operation::PutItem, r#"{"TableName":"T","Item":{"k":[1]}}"#),
        (
            Operation::PutItem,
            r#"{"TableName":"T","Item":{"a":{},"k":"x"}}"#,
        ),
        (
            Operation::PutItem,
            r#"{"TableName":"T","Item":{"k": null}}"#,
        ),
        (Operation::PutItem, r#"{"TableName":"T","Item":[]}"#),
        (Operation::PutItem, r#"{"TableName":"T","Item":null}"#),
        (
            Operation::PutItem,
            r#"{"TableName":"T","Item":{"k":{"S":"x"}"#,
        ),
        (Operation::BatchGetItem, r#"{"RequestItems":[]}"#),
        (
            Operation::BatchGetItem,
            r#"{"RequestItems":{"T":{"Keys":[{"k":1}]}}}"#,
        ),
        (
            Operation::BatchWriteItem,
            r#"{"RequestItems":{"T":[{"PutRequest":{"Item":{"k":"v"}}}]}}"#,
        ),
        (Operation::TransactWriteItems, r#"{"TransactItems":{}}"#),
        (
            Operation::TransactWriteItems,
            r#"{"TransactItems":[{"Put":"x"}]}"#,
        ),
        (
            Operation::TransactGetItems,
            r#"{"TransactItems":[{"Get":{"TableName":[]}}]}"#,
        ),
        (
            Operation::TransactWriteItems,
            r#"{"TransactItems":[{"Update":{"TableName":"T","ExpressionAttributeValues":{":v":1}}}]}"#,
        ),
    ] {
        assert!(tables(op, body).is_err(), "{body}");
    }
}

#[test]
fn a_put_items_members_are_read_once_and_kept() {
    let body = "{\"TableName\":\"T\",\"Item\": { \"k\" :\n {\"S\":\"x\"} ,\"n\":{\"N\":\"1\"}}}";
    let view = RequestView::parse(Operation::PutItem, body.as_bytes()).unwrap();
    let members = view.put_item.as_ref().unwrap();
    let got: Vec<(&str, &str)> = members.iter().map(|(n, r)| (n.as_ref(), r.get())).collect();
    assert_eq!(got, [("k", r#"{"S":"x"}"#), ("n", r#"{"N":"1"}"#)]);
    // Only a PutItem's item is kept: other operations read theirs where they need it.
    let update = r#"{"TableName":"T","Key":{"k":{"S":"x"}},"Item":{"k":{"S":"x"}}}"#;
    let view = RequestView::parse(Operation::UpdateItem, update.as_bytes()).unwrap();
    assert!(view.put_item.is_none());
}

#[test]
fn a_table_name_of_another_type_is_refused_in_serdes_words() {
    // Read borrowed now; the message a client gets is the one serde's own string gave.
    let err = RequestView::parse(Operation::GetItem, br#"{"TableName":1,"Key":{}}"#).unwrap_err();
    assert!(
        err.to_string()
            .contains("invalid type: integer `1`, expected a string"),
        "{err}"
    );
}
