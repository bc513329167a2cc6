use serde_json::json;

use super::*;
use crate::expr::{ExprKind, parse_condition, parse_projection};

#[test]
fn lists_each_placeholder_once_in_the_order_written() {
    let condition =
        parse_condition("#a.#b = :v AND size(#c) > :n AND attribute_type(#a, :t) OR x IN (:v, :w)")
            .unwrap();
    assert_eq!(
        condition.placeholders(),
        Used {
            names: vec!["#a", "#b", "#c"],
            values: vec![":v", ":n", ":t", ":w"],
        }
    );
    let update = UpdateExpression::parse(
        "SET #l = list_append(if_not_exists(#l, :e), :x), n = n + :one REMOVE #r ADD s :s DELETE #d :d",
    )
    .unwrap();
    assert_eq!(
        update.placeholders(),
        Used {
            names: vec!["#l", "#r", "#d"],
            values: vec![":e", ":x", ":one", ":s", ":d"],
        }
    );
    let projection = parse_projection("a, #p.b[0], #q").unwrap();
    let mut used = projection.placeholders();
    assert_eq!(used.names, ["#p", "#q"]);
    used.merge(condition.placeholders());
    assert_eq!(used.names, ["#p", "#q", "#a", "#b", "#c"]);
    assert_eq!(used.values, [":v", ":n", ":t", ":w"]);
}

#[test]
fn checks_the_request_defines_what_is_used_and_nothing_else() {
    let condition = parse_condition("#a = :v AND #b <> :w").unwrap();
    let used = condition.placeholders();
    let names = json!({"#a": "a", "#b": "b"});
    let values = json!({":v": {"S": "x"}, ":w": {"N": "1"}});
    assert_eq!(
        used.check_defined(names.as_object(), values.as_object()),
        Ok(())
    );
    assert_eq!(
        used.check_all_used(names.as_object(), values.as_object()),
        Ok(())
    );

    let err = used.check_defined(names.as_object(), None).unwrap_err();
    assert_eq!(
        err.message(ExprKind::Condition),
        "Invalid ConditionExpression: An expression attribute value used in expression is not \
         defined; attribute value: :v"
    );
    let err = used
        .check_defined(json!({"#a": "a"}).as_object(), values.as_object())
        .unwrap_err();
    assert_eq!(
        err.message(ExprKind::Filter),
        "Invalid FilterExpression: An expression attribute name used in the document path is \
         not defined; attribute name: #b"
    );

    let extra = json!({":v": {"S": "x"}, ":w": {"N": "1"}, ":x": {"S": "y"}});
    let err = used
        .check_all_used(names.as_object(), extra.as_object())
        .unwrap_err();
    assert_eq!(
        err.message(ExprKind::Condition),
        "Value provided in ExpressionAttributeValues unused in expressions: keys: {:x}"
    );
    let extra = json!({"#a": "a", "#b": "b", "#c": "c"});
    let err = used
        .check_all_used(extra.as_object(), values.as_object())
        .unwrap_err();
    assert_eq!(
        err.message(ExprKind::Condition),
        "Value provided in ExpressionAttributeNames unused in expressions: keys: {#c}"
    );
}

#[test]
fn allocates_placeholders_no_client_uses() {
    let names = json!({"#gs0": "taken", "#n": "n"});
    let values = json!({":gs0": {"S": "x"}, ":gs2": {"S": "y"}});
    let mut allocator = PlaceholderAllocator::new(names.as_object(), values.as_object());
    // `:gs1` is used but undefined: handing it out would give the client's typo a meaning.
    let condition = parse_condition("a = :gs1 AND #gs1 = :v").unwrap();
    allocator.avoid(&condition.placeholders());
    assert_eq!(allocator.value(), ":gs3");
    assert_eq!(allocator.value(), ":gs4");
    assert_eq!(allocator.name(), "#gs2");
    assert_eq!(allocator.name(), "#gs3");

    let mut fresh = PlaceholderAllocator::new(None, None);
    assert_eq!(fresh.name(), "#gs0");
    assert_eq!(fresh.value(), ":gs0");
    // Every placeholder handed out is a valid token of the grammar.
    let name = fresh.name();
    let value = fresh.value();
    let text = format!("{name} = {value}");
    assert_eq!(parse_condition(&text).unwrap().to_string(), text);
}
