use serde_json::{Map, Value, json};

use super::*;

fn versioned() -> Versioned {
    Versioned {
        table: "T".into(),
        attribute: "Version".into(),
    }
}

fn body(value: &Value) -> Map<String, Value> {
    value.as_object().cloned().unwrap()
}

/// The step's update or put over `request`, its expressions parsed as the plan parses them
/// and printed back as they are sent.
type Half =
    fn(&Versioned, &mut Map<String, Value>, &mut ExpressionSet, &str) -> Result<(), RewriteError>;

fn step(request: &mut Map<String, Value>, write_id: &str, half: Half) -> Result<(), RewriteError> {
    let mut set = ExpressionSet::parse_map(crate::expr::Wanted::All, request)
        .map_err(|e| RewriteError::Refused(e.to_string()))?;
    half(&versioned(), request, &mut set, write_id)?;
    set.write_changed(request);
    Ok(())
}

fn versioned_update(request: &mut Map<String, Value>, write_id: &str) -> Result<(), RewriteError> {
    step(request, write_id, update)
}

fn versioned_put(request: &mut Map<String, Value>, write_id: &str) -> Result<(), RewriteError> {
    step(request, write_id, put)
}

fn n(text: &str) -> Value {
    json!({ "N": text })
}

#[test]
fn a_version_set_through_a_name_is_read_as_one_set_directly() {
    let direct = body(&json!({
        "TableName": "T",
        "Key": {"k": {"S": "a"}},
        "UpdateExpression": "SET Version = :v, Title = :t",
        "ExpressionAttributeValues": {":v": n("3"), ":t": {"S": "x"}},
    }));
    let aliased = body(&json!({
        "TableName": "T",
        "Key": {"k": {"S": "a"}},
        "UpdateExpression": "SET #V = :v, Title = :t",
        "ExpressionAttributeNames": {"#V": "Version"},
        "ExpressionAttributeValues": {":v": n("3"), ":t": {"S": "x"}},
    }));
    let (mut direct, mut aliased) = (direct, aliased);
    versioned_update(&mut direct, "w").unwrap();
    versioned_update(&mut aliased, "w").unwrap();
    assert_eq!(direct, aliased);
    assert_eq!(
        aliased["UpdateExpression"],
        "SET Title = :t, #gs0 = if_not_exists(#gs0, :gs0) + :gs1, #gs1 = :gs2"
    );
    assert_eq!(aliased["ConditionExpression"], "#gs0 = :gs3");
    assert_eq!(aliased["ExpressionAttributeValues"][":gs3"], n("3"));
    assert!(
        !aliased["ExpressionAttributeNames"]
            .as_object()
            .unwrap()
            .contains_key("#V")
    );
}

#[test]
fn a_name_the_client_uses_elsewhere_stays() {
    let mut request = body(&json!({
        "TableName": "T",
        "Key": {"k": {"S": "a"}},
        "UpdateExpression": "SET #V = :v",
        "ConditionExpression": "#V < :v",
        "ExpressionAttributeNames": {"#V": "Version"},
        "ExpressionAttributeValues": {":v": n("3")},
    }));
    versioned_update(&mut request, "w").unwrap();
    assert_eq!(request["ExpressionAttributeNames"]["#V"], "Version");
    assert_eq!(request["ExpressionAttributeValues"][":v"], n("3"));
}

#[test]
fn versions_go_past_u64_up_to_what_dynamodb_holds() {
    let past_u64 = "18446744073709551616";
    assert_eq!(
        version_number(&versioned(), &n(past_u64)).unwrap(),
        u128::from(u64::MAX) + 1
    );
    let largest = "9".repeat(38);
    let read = version_number(&versioned(), &n(&largest)).unwrap();
    // 10^38 is one significant digit: DynamoDB's own `+ 1` reaches it, and so does ours.
    let next = next_version(&versioned(), Some(read)).unwrap();
    assert_eq!(next.to_string(), format!("1{}", "0".repeat(38)));
    let message = next_version(&versioned(), Some(next))
        .unwrap_err()
        .to_string();
    assert!(message.contains("is at its largest"), "{message}");
    for bad in [
        format!("1{}1", "0".repeat(37)),
        "-1".into(),
        "1.5".into(),
        "x".into(),
    ] {
        let message = version_number(&versioned(), &n(&bad))
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("38 significant digits"),
            "{bad}: {message}"
        );
    }
    assert_eq!(next_version(&versioned(), None).unwrap(), 1);
}

#[test]
fn a_put_past_u64_checks_and_stores_the_next_version() {
    let mut request = body(&json!({
        "TableName": "T",
        "Item": {"k": {"S": "a"}, "Version": n("18446744073709551615")},
    }));
    versioned_put(&mut request, "w").unwrap();
    assert_eq!(request["Item"]["Version"], n("18446744073709551616"));
    assert_eq!(request["ConditionExpression"], "#gs0 = :gs0");
    assert_eq!(
        request["ExpressionAttributeValues"][":gs0"],
        n("18446744073709551615")
    );
}
