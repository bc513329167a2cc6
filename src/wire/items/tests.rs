use serde_json::{Value, json};

use super::*;

/// Every (table, site, key of the map) the walker visits, in order; each visited map gets a
/// mark so the test also sees that the walker hands out the real map, mutably.
fn visits(op: &Operation, body: Value, answer: Option<&[&str]>) -> (Vec<String>, Value) {
    let Value::Object(mut body) = body else {
        panic!("not an object")
    };
    let mut seen = Vec::new();
    let mut visit = |table: &str, site: Site, map: &mut Map<String, Value>| {
        let id = map.get("id").and_then(|v| v["S"].as_str()).unwrap_or("?");
        seen.push(format!("{table}:{site:?}:{id}"));
        map.insert("seen".into(), json!({"BOOL": true}));
        Ok::<(), ()>(())
    };
    match answer {
        None => request_sites(op, &mut body, &mut visit).unwrap(),
        Some(action_tables) => {
            let tables: Vec<String> = action_tables.iter().map(|t| (*t).to_owned()).collect();
            let context = AnswerContext {
                table: (tables.len() == 1).then(|| tables[0].as_str()),
                action_tables: &tables,
            };
            answer_sites(op, context, &mut body, &mut visit).unwrap();
        }
    }
    (seen, Value::Object(body))
}

fn key(id: &str) -> Value {
    json!({"id": {"S": id}})
}

#[test]
fn single_table_requests() {
    let (seen, body) = visits(
        &Operation::UpdateItem,
        json!({"TableName": "T", "Key": key("k"), "ExpressionAttributeValues": {":v": key("no")}}),
        None,
    );
    assert_eq!(seen, ["T:Key:k"]);
    assert_eq!(body["Key"]["seen"], json!({"BOOL": true}));
    let (seen, _) = visits(
        &Operation::PutItem,
        json!({"TableName": "T", "Item": key("i")}),
        None,
    );
    assert_eq!(seen, ["T:Item:i"]);
    let (seen, _) = visits(
        &Operation::Query,
        json!({"TableName": "T", "ExclusiveStartKey": key("s")}),
        None,
    );
    assert_eq!(seen, ["T:StartKey:s"]);
}

#[test]
fn batch_and_transaction_requests() {
    let (seen, _) = visits(
        &Operation::BatchGetItem,
        json!({"RequestItems": {"A": {"Keys": [key("1"), key("2")]}, "B": {"Keys": [key("3")]}}}),
        None,
    );
    assert_eq!(seen, ["A:Key:1", "A:Key:2", "B:Key:3"]);
    let (seen, _) = visits(
        &Operation::BatchWriteItem,
        json!({"RequestItems": {"A": [{"PutRequest": {"Item": key("p")}}, {"DeleteRequest": {"Key": key("d")}}]}}),
        None,
    );
    assert_eq!(seen, ["A:Item:p", "A:Key:d"]);
    let (seen, _) = visits(
        &Operation::TransactWriteItems,
        json!({"TransactItems": [
            {"Put": {"TableName": "A", "Item": key("p")}},
            {"Update": {"TableName": "B", "Key": key("u")}},
            {"Delete": {"TableName": "A", "Key": key("d")}},
            {"ConditionCheck": {"TableName": "B", "Key": key("c")}}
        ]}),
        None,
    );
    assert_eq!(seen, ["A:Item:p", "B:Key:u", "A:Key:d", "B:Key:c"]);
}

#[test]
fn single_table_answers() {
    let (seen, _) = visits(
        &Operation::Query,
        json!({"Items": [key("1"), key("2")], "LastEvaluatedKey": key("l"), "Count": 2}),
        Some(&["T"]),
    );
    assert_eq!(seen, ["T:StartKey:l", "T:Item:1", "T:Item:2"]);
    let (seen, _) = visits(
        &Operation::UpdateItem,
        json!({"Attributes": key("a"), "ItemCollectionMetrics": {"ItemCollectionKey": key("c")}}),
        Some(&["T"]),
    );
    assert_eq!(seen, ["T:Item:a", "T:CollectionKey:c"]);
    // A condition failure carries the current item.
    let (seen, _) = visits(
        &Operation::PutItem,
        json!({"__type": "x#ConditionalCheckFailedException", "Item": key("i")}),
        Some(&["T"]),
    );
    assert_eq!(seen, ["T:Item:i"]);
}

#[test]
fn batch_and_transaction_answers() {
    let (seen, _) = visits(
        &Operation::BatchGetItem,
        json!({"Responses": {"A": [key("1")]}, "UnprocessedKeys": {"B": {"Keys": [key("2")]}}}),
        Some(&[]),
    );
    assert_eq!(seen, ["A:Item:1", "B:Key:2"]);
    let (seen, _) = visits(
        &Operation::BatchWriteItem,
        json!({"UnprocessedItems": {"A": [{"PutRequest": {"Item": key("p")}}]},
               "ItemCollectionMetrics": {"A": [{"ItemCollectionKey": key("c")}]}}),
        Some(&[]),
    );
    assert_eq!(seen, ["A:Item:p", "A:CollectionKey:c"]);
    let (seen, _) = visits(
        &Operation::TransactGetItems,
        json!({"Responses": [{"Item": key("1")}, {}, {"Item": key("3")}]}),
        Some(&["A", "B", "C"]),
    );
    assert_eq!(seen, ["A:Item:1", "C:Item:3"]);
    let (seen, _) = visits(
        &Operation::TransactWriteItems,
        json!({"__type": "x#TransactionCanceledException",
               "CancellationReasons": [{"Code": "None"}, {"Code": "ConditionalCheckFailed", "Item": key("2")}]}),
        Some(&["A", "B"]),
    );
    assert_eq!(seen, ["B:Item:2"]);
}
