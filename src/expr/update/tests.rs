use serde_json::json;

use super::*;
use crate::expr::PathElement;

fn parse(text: &str) -> UpdateExpression {
    UpdateExpression::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn attr(name: &str) -> PathElement {
    PathElement::Attr(name.into())
}

#[test]
fn parses_every_clause_and_operand() {
    let parsed = parse(
        "set a.#b[2] = if_not_exists(a.#b[2], :z), c = c + :one, d = list_append(d, :l) \
         REMOVE e, f[0] ADD g :s DELETE h :t",
    );
    assert_eq!(parsed.actions.len(), 7);
    assert_eq!(
        parsed.actions[0],
        UpdateAction::Set(
            Path(vec![
                attr("a"),
                PathElement::Name("#b".into()),
                PathElement::Index(2)
            ]),
            SetValue::Operand(SetOperand::IfNotExists(
                Path(vec![
                    attr("a"),
                    PathElement::Name("#b".into()),
                    PathElement::Index(2)
                ]),
                Box::new(SetOperand::Value(":z".into()))
            ))
        )
    );
    assert_eq!(
        parsed.actions[1],
        UpdateAction::Set(
            Path(vec![attr("c")]),
            SetValue::Plus(
                SetOperand::Path(Path(vec![attr("c")])),
                SetOperand::Value(":one".into())
            )
        )
    );
    assert_eq!(
        parsed.actions[4],
        UpdateAction::Remove(Path(vec![attr("f"), PathElement::Index(0)]))
    );
    assert_eq!(
        parsed.actions[5],
        UpdateAction::Add(Path(vec![attr("g")]), ":s".into())
    );
}

#[test]
fn prints_an_equivalent_expression() {
    let text = "SET a.#b[2] = if_not_exists(a.#b[2], :z), c = c - :one REMOVE e, f[0] ADD g :s DELETE h :t";
    let parsed = parse(text);
    assert_eq!(parsed.to_string(), text);
    assert_eq!(parse(&parsed.to_string()), parsed);
    // Clauses in any order, keywords in any case; printed upper case, in the order written.
    assert_eq!(
        parse("remove b set c = list_append(if_not_exists(c, :e), :l)").to_string(),
        "REMOVE b SET c = list_append(if_not_exists(c, :e), :l)"
    );
}

#[test]
fn a_clause_written_twice_is_refused_as_dynamodb_does() {
    assert_eq!(
        UpdateExpression::parse("SET a = :a REMOVE b SET c = :c"),
        Err(ExprError::DuplicateSection {
            section: "SET",
            at: 20
        })
    );
}

#[test]
fn refuses_what_is_not_an_update_expression() {
    for text in [
        "",
        "a = :v",
        "SET a",
        "SET a = ",
        "SET a = :v,",
        "SET a = :v :w",
        "REMOVE :v",
        "ADD a b",
        "SET a[x] = :v",
        "SET a[99999999999] = :v",
        "SET a = f(:v",
        "SET a = :v)",
    ] {
        assert!(UpdateExpression::parse(text).is_err(), "{text:?} parsed");
    }
}

fn idempotent(text: &str, values: &serde_json::Value) -> bool {
    let names = json!({"#a": "a", "#b": "b"});
    parse(text).idempotent(names.as_object(), values.as_object())
}

/// One case per shape of the resend rule: each either lands on the same item when applied
/// twice, or names how a second application changes it.
#[test]
fn the_resend_rule_per_shape() {
    let values = json!({
        ":v": {"S": "x"}, ":n": {"N": "1"}, ":ss": {"SS": ["a"]}, ":ns": {"NS": ["1"]},
        ":bs": {"BS": ["AA=="]}, ":l": {"L": []}
    });
    let safe = [
        "SET a = :v",
        "SET a = :v, b = :n",
        "SET a.b.c = :v",
        "SET #a = if_not_exists(a, :v)",
        "SET a = if_not_exists(#a, :v)",
        "REMOVE a, b.c",
        "ADD s :ss",
        "ADD s :ns, t :bs",
        "DELETE s :ss",
        "SET a = :v REMOVE b ADD s :ss DELETE t :ns",
    ];
    for text in safe {
        assert!(idempotent(text, &values), "{text} is safe to apply twice");
    }
    let unsafe_ = [
        // A swap undoes itself: SET a = b, b = a.
        "SET a = b, b = a",
        "SET a = b",
        "SET a = a + :n",
        "SET a = :n - a",
        "SET a = list_append(a, :l)",
        "SET a = if_not_exists(b, :v)",
        "SET a = if_not_exists(a, b)",
        // Beyond the end of a list, SET appends.
        "SET l[9] = :v",
        "SET l[0].m = :v",
        // On [1,2,3,4], REMOVE l[0] twice leaves [3,4].
        "REMOVE l[0]",
        "REMOVE m.l[1]",
        "ADD n :n",
        "ADD l :l",
        "ADD n :undefined",
        "SET a = :v ADD n :n",
    ];
    for text in unsafe_ {
        assert!(!idempotent(text, &values), "{text} must not be resent");
    }
    // A placeholder with no definition cannot be compared: unsafe.
    assert!(!parse("SET #c = if_not_exists(c, :v)").idempotent(None, values.as_object()));
}

#[test]
fn finds_the_values_that_read_an_attribute() {
    let names = json!({"#k": "ItemID"});
    let is_item_id = |p: &Path| p.is_attribute(names.as_object(), "ItemID");
    for text in [
        "SET a = ItemID",
        "SET a = #k",
        "SET a = :v, b = if_not_exists(ItemID, :v)",
        "SET a = if_not_exists(a, #k)",
        "SET a = list_append(:l, list_append(ItemID, :m))",
        "SET n = :one + ItemID",
        "SET n = #k - :one",
    ] {
        assert!(parse(text).reads(is_item_id), "{text}");
    }
    for text in [
        "SET ItemID = :v",
        "SET a = ItemID.x, b = ItemIDx, c = itemid",
        "SET a = if_not_exists(a, :v) REMOVE ItemID",
        "ADD ItemID :n DELETE #k :s",
    ] {
        assert!(!parse(text).reads(is_item_id), "{text}");
    }
}
