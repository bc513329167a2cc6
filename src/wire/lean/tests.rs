use serde_json::json;

use super::*;
use crate::wire::Operation;

const PUT: &[Step] = &[Step::Field("Item")];
const BATCH: &[Step] = &[
    Step::Field("RequestItems"),
    Step::AnyKey,
    Step::AnyIndex,
    Step::Field("PutRequest"),
    Step::Field("Item"),
];

fn lean<'a>(view: &RequestView<'a>, path: &[Step], touched: &[&str]) -> Option<LeanDocument<'a>> {
    LeanDocument::split(view, path, touched).unwrap()
}

fn sent(lean: &LeanDocument<'_>) -> Value {
    serde_json::from_slice(&lean.to_vec().unwrap()).unwrap()
}

/// The attributes the steps were handed for the item at `pointer`, marker left out.
fn handed(lean: &LeanDocument<'_>, pointer: &str) -> Vec<String> {
    let item = lean
        .document
        .get(pointer.split('/').nth(1).unwrap())
        .unwrap();
    let rest = pointer.split_once('/').unwrap().1;
    let rest = rest.split_once('/').map_or("", |(_, r)| r);
    let item = if rest.is_empty() {
        item
    } else {
        item.pointer(&format!("/{rest}")).unwrap()
    };
    item.as_object()
        .unwrap()
        .keys()
        .filter(|k| !k.starts_with(marker_prefix()))
        .cloned()
        .collect()
}

#[test]
fn the_steps_see_only_what_they_touch_and_the_rest_comes_back() {
    let body = r#"{"TableName":"T","Item":{"pk":{"S":"a"},"big":{"L":[{"N":"1.50"},{"S":"é\n"}]},"Version":{"N":"3"}},"ReturnValues":"NONE"}"#;
    let view = RequestView::parse(Operation::PutItem, body.as_bytes()).unwrap();
    let mut lean = lean(&view, PUT, &["pk", "Version"]).unwrap();
    assert_eq!(handed(&lean, "/Item"), ["Version", "pk"]);
    let item = lean.document["Item"].as_object_mut().unwrap();
    item.insert("pk".into(), json!({"S": "r#a"}));
    item.insert("w".into(), json!({"S": "id"}));
    let bytes = String::from_utf8(lean.to_vec().unwrap()).unwrap();
    // Held attributes go out as the bytes they came in as.
    assert!(
        bytes.contains(r#""big":{"L":[{"N":"1.50"},{"S":"é\n"}]}"#),
        "{bytes}"
    );
    let mut expected: Value = serde_json::from_str(body).unwrap();
    expected["Item"]["pk"] = json!({"S": "r#a"});
    expected["Item"]["w"] = json!({"S": "id"});
    assert_eq!(sent(&lean), expected);
}

#[test]
fn held_attributes_follow_their_item_when_a_step_moves_it() {
    let body = json!({"RequestItems": {
        "A": [{"PutRequest": {"Item": {"pk": {"S": "1"}, "x": {"S": "one"}}}},
              {"DeleteRequest": {"Key": {"pk": {"S": "2"}}}}],
        "B": [{"PutRequest": {"Item": {"pk": {"S": "3"}, "y": {"N": "3"}}}}]
    }})
    .to_string();
    let view = RequestView::parse(Operation::BatchWriteItem, body.as_bytes()).unwrap();
    let mut lean = lean(&view, BATCH, &["pk"]).unwrap();
    assert_eq!(handed(&lean, "/RequestItems/B/0/PutRequest/Item"), ["pk"]);
    // What running the batch as a transaction does: the items move into new actions.
    let Some(Value::Object(tables)) = lean.document.remove("RequestItems") else {
        panic!("RequestItems");
    };
    let mut actions = Vec::new();
    for (table, requests) in tables {
        for request in requests.as_array().unwrap() {
            if let Some(item) = request.pointer("/PutRequest/Item") {
                actions.push(json!({"Put": {"TableName": table, "Item": item}}));
            }
        }
    }
    lean.document
        .insert("TransactItems".into(), Value::Array(actions));
    assert_eq!(
        sent(&lean),
        json!({"TransactItems": [
            {"Put": {"TableName": "A", "Item": {"pk": {"S": "1"}, "x": {"S": "one"}}}},
            {"Put": {"TableName": "B", "Item": {"pk": {"S": "3"}, "y": {"N": "3"}}}}
        ]})
    );
}

#[test]
fn nothing_touched_is_the_same_document() {
    for (operation, path, body) in [
        (
            Operation::PutItem,
            PUT,
            r#"{"TableName":"T","Item":{"p\"k":{"S":"a"},"n":{"N":"1"}},"ConditionExpression":"attribute_not_exists(#k)"}"#,
        ),
        (Operation::PutItem, PUT, r#"{"TableName":"T","Item":{}}"#),
        (
            Operation::BatchWriteItem,
            BATCH,
            r#"{"RequestItems":{"T":[{"PutRequest":{"Item":{"a":{"S":"1"}}}},{"PutRequest":{}}]}}"#,
        ),
    ] {
        let view = RequestView::parse(operation, body.as_bytes()).unwrap();
        let expected: Value = serde_json::from_str(body).unwrap();
        assert_eq!(
            sent(&lean(&view, path, &["pk"]).unwrap()),
            expected,
            "{body}"
        );
    }
}

#[test]
fn an_item_that_cannot_be_held_back_faithfully_is_decoded_whole() {
    let view = RequestView::parse(Operation::PutItem, br#"{"TableName":"T"}"#).unwrap();
    assert!(lean(&view, PUT, &["pk"]).is_none());
    let twice = r#"{"TableName":"T","Item":{"a":{"S":"1"},"a":{"S":"2"}}}"#;
    let view = RequestView::parse(Operation::PutItem, twice.as_bytes()).unwrap();
    let lean = lean(&view, PUT, &["pk"]).unwrap();
    assert!(lean.held.is_empty());
    assert_eq!(
        sent(&lean),
        json!({"TableName": "T", "Item": {"a": {"S": "2"}}})
    );
    // A name like a marker from another process (another nonce) is an attribute like any.
    let alike = "\u{0}globalscale-held-0123456789abcdef:0";
    let body = json!({"TableName": "T", "Item": {alike: {"S": "1"}, "b": {"S": "2"}}}).to_string();
    let view = RequestView::parse(Operation::PutItem, body.as_bytes()).unwrap();
    let lean = LeanDocument::split(&view, PUT, &[]).unwrap().unwrap();
    assert_eq!(
        sent(&lean),
        json!({"TableName": "T", "Item": {alike: {"S": "1"}, "b": {"S": "2"}}})
    );
}
