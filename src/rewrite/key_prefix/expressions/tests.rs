use proptest::prelude::*;
use serde_json::{Map, Value, json};

use super::*;

fn prefix() -> KeyPrefix {
    KeyPrefix {
        table: "T".into(),
        attribute: "ItemID".into(),
        prefix: "us-east-1#".into(),
    }
}

/// A request body with this filter, its values all strings, `#k` naming the key.
fn filtered(filter: &str, values: &[(&str, &str)]) -> Map<String, Value> {
    let values: Map<String, Value> = values
        .iter()
        .map(|(name, s)| ((*name).to_owned(), json!({ "S": s })))
        .collect();
    json!({
        "TableName": "T",
        "FilterExpression": filter,
        "ExpressionAttributeNames": {"#k": "ItemID"},
        "ExpressionAttributeValues": values,
    })
    .as_object()
    .cloned()
    .unwrap()
}

/// The step over `body`, its expressions parsed as the plan parses them and printed back
/// as they are sent.
fn prefixed(body: &mut Map<String, Value>) -> Result<(), RewriteError> {
    let mut set = ExpressionSet::parse_map(crate::expr::Wanted::All, body)
        .map_err(|e| RewriteError::Refused(e.to_string()))?;
    prefix_values(&prefix(), body, &mut set)?;
    set.write_changed(body);
    Ok(())
}

fn refusal(body: &mut Map<String, Value>) -> String {
    match prefixed(body) {
        Err(RewriteError::Refused(message)) => message,
        other => panic!("not refused: {other:?}"),
    }
}

#[test]
fn comparisons_with_values_get_the_prefix() {
    for filter in [
        "ItemID = :v",
        "ItemID <> :v",
        ":v < ItemID",
        "#k <= :v",
        "ItemID > :v",
        "ItemID >= :v",
        "ItemID BETWEEN :v AND :v",
        "ItemID IN (:v)",
        "begins_with(#k, :v)",
    ] {
        let mut body = filtered(filter, &[(":v", "abc")]);
        prefixed(&mut body).unwrap();
        let values = body["ExpressionAttributeValues"].as_object().unwrap();
        assert!(!values.contains_key(":v"), "{filter}: {values:?}");
        assert!(
            values.values().all(|v| v == &json!({"S": "us-east-1#abc"})),
            "{filter}: {values:?}"
        );
    }
}

#[test]
fn contains_goes_unchanged_when_the_prefix_cannot_change_its_answer() {
    for sought in ["b", "bc", "abc", "x#", "-east", ""] {
        let original = filtered(
            "contains(ItemID, :v) OR NOT contains(#k, :v)",
            &[(":v", sought)],
        );
        let mut body = original.clone();
        if may_match_in_prefix("us-east-1#", sought) {
            let message = refusal(&mut body);
            assert!(message.contains("key_prefix"), "{message}");
            assert!(message.starts_with("Invalid FilterExpression: contains(ItemID, :v)"));
        } else {
            prefixed(&mut body).unwrap();
            assert_eq!(body, original, "{sought:?}");
        }
    }
    // The same value compared with the key is split off; contains keeps the plain one.
    let mut body = filtered("ItemID = :v OR contains(ItemID, :v)", &[(":v", "abc")]);
    prefixed(&mut body).unwrap();
    assert_eq!(
        body["FilterExpression"],
        "ItemID = :gs0 OR contains(ItemID, :v)"
    );
    assert_eq!(body["ExpressionAttributeValues"][":v"], json!({"S": "abc"}));
    assert_eq!(
        body["ExpressionAttributeValues"][":gs0"],
        json!({"S": "us-east-1#abc"})
    );
    // Not a string: it meets a string either way, and DynamoDB answers it alike.
    let mut body = filtered("contains(ItemID, :n)", &[]);
    body.insert(
        "ExpressionAttributeValues".into(),
        json!({":n": {"N": "1"}}),
    );
    let original = body.clone();
    prefixed(&mut body).unwrap();
    assert_eq!(body, original);
}

#[test]
fn what_a_value_rewrite_cannot_follow_is_refused() {
    for filter in [
        "size(ItemID) > :v",
        "ItemID = Peer",
        "ItemID < Peer",
        "begins_with(Peer, ItemID)",
        "contains(Peer, #k)",
        "Peer IN (:v, ItemID)",
        "ItemID BETWEEN :v AND Peer",
    ] {
        let message = refusal(&mut filtered(filter, &[(":v", "abc")]));
        assert!(
            message.starts_with("Invalid FilterExpression: the partition key ItemID of table T")
                && message.contains("key_prefix"),
            "{filter}: {message}"
        );
    }
}

#[test]
fn attribute_type_reads_a_type_the_prefix_keeps() {
    let original = filtered("attribute_type(#k, :t)", &[]);
    let mut body = original.clone();
    prefixed(&mut body).unwrap();
    assert_eq!(body, original);
}

#[test]
fn an_update_never_copies_the_stored_key() {
    for update in [
        "SET Mirror = ItemID",
        "SET Mirror = #k",
        "SET Mirror = if_not_exists(ItemID, :v)",
        "SET Mirror = if_not_exists(Mirror, ItemID)",
        "SET L = list_append(L, #k)",
        "SET N = ItemID + :v",
    ] {
        let mut body = filtered("Peer = :v", &[(":v", "abc")]);
        body.remove("FilterExpression");
        body.insert("UpdateExpression".into(), json!(update));
        let message = refusal(&mut body);
        assert!(
            message.starts_with("Invalid UpdateExpression: the partition key ItemID")
                && message.contains("key_prefix"),
            "{update}: {message}"
        );
    }
    let mut body = filtered("ItemID = :v", &[(":v", "abc")]);
    body.insert(
        "UpdateExpression".into(),
        json!("SET Mirror = :v, Peer = ItemIDx"),
    );
    prefixed(&mut body).unwrap();
    // The update still uses the client's `:v`: it stays, beside the prefixed one.
    assert_eq!(body["ExpressionAttributeValues"][":v"], json!({"S": "abc"}));
}

proptest! {
    /// Where the value goes unchanged, `contains` answers on the stored key as on the plain
    /// one; where it is refused, some key would tell them apart.
    #[test]
    fn contains_is_refused_exactly_when_the_prefix_can_change_it(
        prefix in "[a-c#-]{0,6}",
        sought in "[a-c#-]{0,4}",
        key in "[a-c#-]{0,8}",
    ) {
        let stored = format!("{prefix}{key}");
        if may_match_in_prefix(&prefix, &sought) {
            let tail = (0..prefix.len())
                .map(|i| &prefix[i..])
                .find(|tail| tail.starts_with(&sought) || sought.starts_with(tail))
                .unwrap();
            let witness = sought.strip_prefix(tail).unwrap_or("");
            let stored_witness = format!("{prefix}{witness}");
            prop_assert!(stored_witness.contains(&sought));
            prop_assert!(!witness.contains(&sought));
        } else {
            prop_assert_eq!(stored.contains(&sought), key.contains(&sought));
        }
    }
}
