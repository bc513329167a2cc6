use serde_json::json;

use super::*;
use crate::expr::{ExprKind, PathElement};

fn parse(text: &str) -> Condition {
    parse_condition(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn path(name: &str) -> Operand {
    Operand::Path(Path::attribute(name))
}

fn value(name: &str) -> Operand {
    Operand::Value(name.into())
}

fn cmp(left: &str, comparator: Comparator, right: &str) -> Condition {
    Condition::Compare(path(left), comparator, value(right))
}

#[test]
fn parses_every_construct() {
    assert_eq!(
        parse("#a.b[1] <> :v"),
        Condition::Compare(
            Operand::Path(Path(vec![
                PathElement::Name("#a".into()),
                PathElement::Attr("b".into()),
                PathElement::Index(1)
            ])),
            Comparator::Ne,
            value(":v")
        )
    );
    assert_eq!(
        parse("size(a) between :lo and :hi"),
        Condition::Between(
            Operand::Size(Path::attribute("a")),
            value(":lo"),
            value(":hi")
        )
    );
    assert_eq!(
        parse("a In (:x, b, size(c))"),
        Condition::In(
            path("a"),
            vec![value(":x"), path("b"), Operand::Size(Path::attribute("c"))]
        )
    );
    assert_eq!(
        parse("attribute_type(a, :t)"),
        Condition::AttributeType(Path::attribute("a"), value(":t"))
    );
    assert_eq!(
        parse("begins_with(:p, a)"),
        Condition::BeginsWith(value(":p"), path("a"))
    );
    assert_eq!(
        parse("contains(a, b)"),
        Condition::Contains(path("a"), path("b"))
    );
    assert_eq!(
        parse("attribute_not_exists(a)"),
        Condition::AttributeNotExists(Path::attribute("a"))
    );
    for (text, comparator) in [
        ("a = :v", Comparator::Eq),
        ("a < :v", Comparator::Lt),
        ("a <= :v", Comparator::Le),
        ("a > :v", Comparator::Gt),
        ("a >= :v", Comparator::Ge),
    ] {
        assert_eq!(parse(text), cmp("a", comparator, ":v"));
    }
}

#[test]
fn not_binds_tighter_than_and_tighter_than_or() {
    let (a, b, c) = (
        cmp("a", Comparator::Eq, ":a"),
        cmp("b", Comparator::Eq, ":b"),
        cmp("c", Comparator::Eq, ":c"),
    );
    let not = |x: &Condition| Condition::Not(Box::new(x.clone()));
    let and = |x: &[&Condition]| Condition::And(x.iter().map(|c| (*c).clone()).collect());
    let or = |x: &[&Condition]| Condition::Or(x.iter().map(|c| (*c).clone()).collect());
    assert_eq!(
        parse("a = :a OR b = :b AND c = :c"),
        or(&[&a, &and(&[&b, &c])])
    );
    assert_eq!(
        parse("(a = :a OR b = :b) AND c = :c"),
        and(&[&or(&[&a, &b]), &c])
    );
    assert_eq!(parse("NOT a = :a AND b = :b"), and(&[&not(&a), &b]));
    assert_eq!(parse("not (a = :a and b = :b)"), not(&and(&[&a, &b])));
    assert_eq!(parse("a = :a AND b = :b AND c = :c"), and(&[&a, &b, &c]));
    assert_eq!(
        parse("a = :a AND (b = :b AND c = :c)"),
        and(&[&a, &and(&[&b, &c])])
    );
    assert_eq!(parse("a = :a OR b = :b OR c = :c"), or(&[&a, &b, &c]));
    // BETWEEN takes its own AND first.
    assert_eq!(
        parse("a BETWEEN :a AND :b AND c = :c"),
        and(&[&Condition::Between(path("a"), value(":a"), value(":b")), &c])
    );
}

#[test]
fn prints_parentheses_only_where_precedence_needs_them() {
    for (text, printed) in [
        (
            "((a = :a) OR b = :b) AND c = :c",
            "(a = :a OR b = :b) AND c = :c",
        ),
        (
            "a = :a OR (b = :b AND c = :c)",
            "a = :a OR b = :b AND c = :c",
        ),
        (
            "a = :a AND (b = :b AND c = :c)",
            "a = :a AND (b = :b AND c = :c)",
        ),
        ("NOT (NOT a = :a)", "NOT NOT a = :a"),
        ("NOT (a = :a OR b = :b)", "NOT (a = :a OR b = :b)"),
        ("(a=:a)", "a = :a"),
        ("a IN(:a,:b)", "a IN (:a, :b)"),
        ("size(a)>=:n", "size(a) >= :n"),
    ] {
        let parsed = parse(text);
        assert_eq!(parsed.to_string(), printed, "{text}");
        assert_eq!(parse(printed), parsed, "{printed}");
    }
    let joined = Condition::and(parse("a = :a OR b = :b"), parse("c = :c OR d = :d"));
    assert_eq!(
        joined.to_string(),
        "(a = :a OR b = :b) AND (c = :c OR d = :d)"
    );
    assert_eq!(parse(&joined.to_string()), joined);
}

fn error(text: &str) -> String {
    parse_condition(text).map_or_else(
        |e| e.message(ExprKind::Condition),
        |c| format!("parsed as {c}"),
    )
}

#[test]
fn refuses_as_dynamodb_does() {
    for (text, message) in [
        ("a-b", r#"Syntax error; token: "-", near: "a-b""#),
        ("a", r#"Syntax error; token: "<EOF>", near: "a""#),
        ("a = :v AND", r#"Syntax error; token: "<EOF>", near: "AND""#),
        (
            "a BETWEEN :x :y",
            r#"Syntax error; token: ":y", near: ":x :y""#,
        ),
        ("a IN ()", r#"Syntax error; token: ")", near: "()""#),
        ("(a = :v", r#"Syntax error; token: "<EOF>", near: ":v""#),
        ("a = :v)", r#"Syntax error; token: ")", near: ":v)""#),
        ("a = 1", r#"Syntax error; token: "1", near: "= 1""#),
        ("((a = :v))", "The expression has redundant parentheses;"),
        (
            "a = :v AND ((b = :w OR c = :x))",
            "The expression has redundant parentheses;",
        ),
        ("foo(a)", "Invalid function name; function: foo"),
        (
            "ATTRIBUTE_EXISTS(a)",
            "Invalid function name; function: ATTRIBUTE_EXISTS",
        ),
        (
            "size(a)",
            "The function is not allowed to be used this way in an expression; function: size",
        ),
        (
            "attribute_exists(a) = :v",
            r#"Syntax error; token: "=", near: ") = :v""#,
        ),
        (
            "a = attribute_exists(b)",
            "The function is not allowed to be used this way in an expression; function: attribute_exists",
        ),
        (
            "if_not_exists(a, :v) = :v",
            "The function is not allowed in a condition expression; function: if_not_exists",
        ),
        (
            "attribute_exists(a, b)",
            "Incorrect number of operands for operator or function; operator or function: attribute_exists, number of operands: 2",
        ),
        (
            "attribute_exists(:v)",
            "Operator or function requires a document path; operator or function: attribute_exists",
        ),
        (
            "size(:v) > :n",
            "Operator or function requires a document path; operator or function: size",
        ),
        (
            "#status = :v AND status = :w",
            "Attribute name is a reserved keyword; reserved keyword: status",
        ),
    ] {
        assert_eq!(
            error(text),
            format!("Invalid ConditionExpression: {message}"),
            "{text}"
        );
    }
    let in_list = |n: usize| {
        let list: Vec<String> = (0..n).map(|i| format!(":v{i}")).collect();
        format!("a IN ({})", list.join(", "))
    };
    assert!(parse_condition(&in_list(100)).is_ok());
    assert_eq!(
        error(&in_list(101)),
        "Invalid ConditionExpression: Too many operands for the operator or function; \
         operator or function: IN, number of operands: 101"
    );
}

#[test]
fn key_conditions_share_the_grammar() {
    let parsed = parse_key_condition("#pk = :pk AND begins_with(sk, :prefix)").unwrap();
    assert_eq!(parsed.to_string(), "#pk = :pk AND begins_with(sk, :prefix)");
    let err = parse_key_condition("pk = ").unwrap_err();
    assert_eq!(
        err.message(ExprKind::KeyCondition),
        r#"Invalid KeyConditionExpression: Syntax error; token: "<EOF>", near: "=""#
    );
}

fn is_item_id(p: &Path) -> bool {
    let names = json!({"#k": "ItemID"});
    p.is_attribute(names.as_object(), "ItemID")
}

#[test]
fn finds_the_values_compared_with_a_target() {
    let mut c = parse(
        "#k = :id AND :id2 <> ItemID AND ItemID BETWEEN :lo AND :hi OR ItemID IN (:a, b, :c) \
         AND begins_with(ItemID, :p) AND NOT contains(#k, :s) AND price = :id AND size(ItemID) > :n",
    );
    assert_eq!(
        c.values_compared_with(is_item_id),
        [":id", ":id2", ":lo", ":hi", ":a", ":c", ":p"]
    );
    // `contains` seeks its value in the key: a prefix is no comparison's to ignore there.
    assert_eq!(c.values_sought_in(is_item_id), [":s"]);
    for name in c.values_compared_with_mut(is_item_id) {
        name.push_str("_key");
    }
    // Only the occurrences compared with the key are renamed: `price = :id` keeps its own.
    assert_eq!(
        c.to_string(),
        "#k = :id_key AND :id2_key <> ItemID AND ItemID BETWEEN :lo_key AND :hi_key \
         OR ItemID IN (:a_key, b, :c_key) AND begins_with(ItemID, :p_key) \
         AND NOT contains(#k, :s) AND price = :id AND size(ItemID) > :n"
    );
    assert!(parse("a = :v").values_compared_with(is_item_id).is_empty());
    assert!(
        parse("contains(a, :v) OR contains(:v, ItemID) OR begins_with(ItemID, :p)")
            .values_sought_in(is_item_id)
            .is_empty()
    );
    assert!(
        parse(":lo BETWEEN ItemID AND :hi")
            .values_compared_with(is_item_id)
            .is_empty()
    );
}

#[test]
fn reports_a_target_it_cannot_follow() {
    for text in [
        "ItemID = :v",
        ":v < #k",
        "ItemID BETWEEN :a AND :b",
        "ItemID IN (:a, :b)",
        "begins_with(ItemID, :p)",
        "contains(#k, :s)",
        "attribute_not_exists(ItemID) OR attribute_exists(#k)",
        "attribute_type(ItemID, :t)",
        "price = :v AND size(price) > :n AND price IN (ItemIDx, :v)",
        "ItemID.x = :v",
    ] {
        assert!(!parse(text).target_used_elsewhere(is_item_id), "{text}");
    }
    for text in [
        "size(ItemID) > :n",
        "ItemID = price",
        "price = #k",
        "ItemID = ItemID",
        "ItemID = size(price)",
        "attribute_type(a, ItemID)",
        "ItemID BETWEEN :a AND price",
        ":a BETWEEN ItemID AND :b",
        "ItemID IN (:a, price)",
        ":a IN (ItemID)",
        "begins_with(:p, ItemID)",
        "contains(a, ItemID)",
        "contains(ItemID, price)",
        "a = :v AND NOT (b = :w OR size(#k) = :n)",
    ] {
        assert!(parse(text).target_used_elsewhere(is_item_id), "{text}");
    }
}
