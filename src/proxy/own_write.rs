//! Telling a conditional write's own first attempt from a real condition failure.
//!
//! When a conditional put may have been applied but no answer came back, the sidecar sends
//! it again, to the next region, asking for the item as it stands on a condition failure
//! (`ReturnValuesOnConditionCheckFailure: ALL_OLD`). If the condition now fails and the item
//! is exactly the one this request writes, the first attempt was applied: the client gets
//! the success it earned, not a false `ConditionalCheckFailedException`. If the item differs,
//! the condition failure is real. If the two cannot be compared with certainty, the client
//! gets a retryable error rather than a guess. A versioned write ([`Mark::WriteId`]) is
//! recognised by the write id it stored; a versioned delete ([`Mark::Gone`]) by the item being
//! gone, since anyone else's write in between would have left an item behind.

use std::borrow::Cow;

use serde_json::{Map, Value, json};

use crate::config::WRITE_ID_ATTRIBUTE;

/// How a resend's condition failure shows that the write's first attempt landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mark {
    /// The current item is exactly the put's item.
    SameItem,
    /// The current item carries this write id. The success answers the item as
    /// `Attributes` when `returns_item` (`ReturnValues = ALL_NEW`), else nothing.
    WriteId { id: String, returns_item: bool },
    /// There is no current item: the delete's first attempt removed it.
    Gone,
}

/// The request as sent, as a verification reads it.
#[derive(Debug, Clone, Copy)]
pub enum Sent<'a> {
    Document(&'a Map<String, Value>),
    /// A request rewritten without decoding it whole: decoded here, since a verification is
    /// rare (an ambiguous attempt) and the request path should not pay for it every time.
    Body(&'a [u8]),
}

impl<'a> Sent<'a> {
    pub(super) fn document(self) -> Option<Cow<'a, Map<String, Value>>> {
        match self {
            Sent::Document(document) => Some(Cow::Borrowed(document)),
            Sent::Body(body) => serde_json::from_slice(body).ok().map(Cow::Owned),
        }
    }
}

const ON_FAILURE: &str = "ReturnValuesOnConditionCheckFailure";

/// The resend: the same request, asking for the current item should the condition fail.
pub(super) fn verification_request(request: &Map<String, Value>) -> Map<String, Value> {
    let mut resend = request.clone();
    resend.insert(ON_FAILURE.into(), Value::String("ALL_OLD".into()));
    resend
}

/// What a condition failure on the resend means.
#[derive(Debug, PartialEq)]
pub(super) enum Verdict {
    /// The first attempt was applied; the body of the success it earned.
    OwnWrite(Vec<u8>),
    /// A real condition failure; the body to return (the item removed unless the client
    /// asked for it).
    ConditionFailed(Vec<u8>),
    /// No certainty either way.
    Unknown,
}

/// Judges the body of a `ConditionalCheckFailedException` answered to the resend.
pub(super) fn judge(request: &Map<String, Value>, mark: &Mark, failure_body: &[u8]) -> Verdict {
    let Ok(Value::Object(failure)) = serde_json::from_slice::<Value>(failure_body) else {
        return Verdict::Unknown;
    };
    let current = failure.get("Item");
    let own = match (mark, current) {
        (Mark::Gone, None) => Some(true),
        // An item where the delete's would be gone; or none where a put's or an update's own
        // first attempt would have left one.
        (Mark::Gone, Some(_)) | (_, None) => Some(false),
        (Mark::SameItem, Some(theirs)) => match request.get("Item") {
            Some(ours) => same_item(ours, theirs),
            None => None,
        },
        (Mark::WriteId { id, .. }, Some(theirs)) => {
            Some(theirs.get(WRITE_ID_ATTRIBUTE) == Some(&json!({ "S": id })))
        }
    };
    match own {
        Some(true) => {
            let answer = match (mark, current) {
                (
                    Mark::WriteId {
                        returns_item: true, ..
                    },
                    Some(item),
                ) => {
                    json!({ "Attributes": item })
                }
                _ => json!({}),
            };
            Verdict::OwnWrite(answer.to_string().into_bytes())
        }
        Some(false) => client_body(request, failure),
        None => Verdict::Unknown,
    }
}

fn client_asked_for_item(request: &Map<String, Value>) -> bool {
    request.get(ON_FAILURE).and_then(Value::as_str) == Some("ALL_OLD")
}

fn client_body(request: &Map<String, Value>, mut failure: Map<String, Value>) -> Verdict {
    if !client_asked_for_item(request) {
        failure.remove("Item");
    }
    serde_json::to_vec(&failure).map_or(Verdict::Unknown, Verdict::ConditionFailed)
}

/// Whether two items (maps of attribute values) are equal as DynamoDB stores them; `None`
/// when a value cannot be compared with certainty.
fn same_item(a: &Value, b: &Value) -> Option<bool> {
    let (Value::Object(a), Value::Object(b)) = (a, b) else {
        return None;
    };
    if a.len() != b.len() {
        return Some(false);
    }
    let mut same = true;
    for (name, value) in a {
        let Some(other) = b.get(name) else {
            return Some(false);
        };
        same &= same_value(value, other)?;
    }
    Some(same)
}

/// Attribute values: numbers compared as decimals, sets in any order, maps and lists deeply.
fn same_value(a: &Value, b: &Value) -> Option<bool> {
    let (Value::Object(a), Value::Object(b)) = (a, b) else {
        return None;
    };
    let (Some((kind, a)), Some((other_kind, b))) = (single(a), single(b)) else {
        return None;
    };
    if kind != other_kind {
        return Some(false);
    }
    match kind.as_str() {
        "N" => Some(number(a)? == number(b)?),
        "NS" => Some(sorted(a, number)? == sorted(b, number)?),
        "SS" | "BS" => Some(
            sorted(a, |v| v.as_str().map(str::to_owned))?
                == sorted(b, |v| v.as_str().map(str::to_owned))?,
        ),
        "M" => same_item(a, b),
        "L" => {
            let (Value::Array(a), Value::Array(b)) = (a, b) else {
                return None;
            };
            if a.len() != b.len() {
                return Some(false);
            }
            let mut same = true;
            for (x, y) in a.iter().zip(b) {
                same &= same_value(x, y)?;
            }
            Some(same)
        }
        "S" | "B" | "BOOL" | "NULL" => Some(a == b),
        _ => None,
    }
}

fn single(value: &Map<String, Value>) -> Option<(&String, &Value)> {
    let mut entries = value.iter();
    let first = entries.next()?;
    entries.next().is_none().then_some(first)
}

fn sorted(set: &Value, key: impl Fn(&Value) -> Option<String>) -> Option<Vec<String>> {
    let mut keys = set
        .as_array()?
        .iter()
        .map(key)
        .collect::<Option<Vec<_>>>()?;
    keys.sort_unstable();
    Some(keys)
}

/// A DynamoDB number in one canonical form: sign, digits without leading or trailing zeros,
/// and the decimal exponent, so `1.50`, `+1.5` and `15E-1` compare equal.
fn number(value: &Value) -> Option<String> {
    let text = value.as_str()?.trim();
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (mantissa, exponent) = match unsigned.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<i64>().ok()?),
        None => (unsigned, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if whole.is_empty() && fraction.is_empty()
        || !whole
            .bytes()
            .chain(fraction.bytes())
            .all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let digits = format!("{whole}{fraction}");
    let exponent = exponent - i64::try_from(fraction.len()).ok()?;
    let trimmed_front = digits.trim_start_matches('0');
    if trimmed_front.is_empty() {
        return Some("0".into());
    }
    let significant = trimmed_front.trim_end_matches('0');
    let exponent = exponent + i64::try_from(trimmed_front.len() - significant.len()).ok()?;
    Some(format!(
        "{}{significant}e{exponent}",
        if negative { "-" } else { "" }
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(extra: Value) -> Map<String, Value> {
        let mut r = json!({
            "TableName": "T",
            "Item": {"k": {"S": "a"}, "n": {"N": "1.50"}, "tags": {"SS": ["x", "y"]}},
            "ConditionExpression": "attribute_not_exists(k)"
        });
        if let (Value::Object(r), Value::Object(extra)) = (&mut r, extra) {
            r.extend(extra);
        }
        r.as_object().unwrap().clone()
    }

    fn failure(item: &Value) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "__type": "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException",
            "message": "The conditional request failed",
            "Item": item
        }))
        .unwrap()
    }

    #[test]
    fn the_resend_asks_for_the_current_item() {
        let resend = verification_request(&request(json!({})));
        assert_eq!(resend[ON_FAILURE], "ALL_OLD");
        assert_eq!(resend["Item"], request(json!({}))["Item"]);
    }

    #[test]
    fn our_own_item_means_our_first_attempt_was_applied() {
        let stored = json!({"tags": {"SS": ["y", "x"]}, "n": {"N": "1.5"}, "k": {"S": "a"}});
        assert_eq!(
            judge(&request(json!({})), &Mark::SameItem, &failure(&stored)),
            Verdict::OwnWrite(b"{}".to_vec())
        );
    }

    #[test]
    fn another_item_is_a_real_failure_without_the_item_unless_asked() {
        let stored = json!({"k": {"S": "a"}, "n": {"N": "2"}, "tags": {"SS": ["x", "y"]}});
        let Verdict::ConditionFailed(body) =
            judge(&request(json!({})), &Mark::SameItem, &failure(&stored))
        else {
            panic!("a different item is a real condition failure");
        };
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert!(
            body["__type"]
                .as_str()
                .unwrap()
                .ends_with("ConditionalCheckFailedException")
        );
        assert!(
            body.get("Item").is_none(),
            "the client did not ask for the item"
        );

        let asked = request(json!({ON_FAILURE: "ALL_OLD"}));
        let Verdict::ConditionFailed(body) = judge(&asked, &Mark::SameItem, &failure(&stored))
        else {
            panic!("a different item is a real condition failure");
        };
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["Item"], stored);
    }

    #[test]
    fn uncertainty_is_never_a_verdict() {
        let odd = json!({"k": {"S": "a"}, "n": {"N": "not a number"}, "tags": {"SS": ["x", "y"]}});
        assert_eq!(
            judge(&request(json!({})), &Mark::SameItem, &failure(&odd)),
            Verdict::Unknown
        );
        assert_eq!(
            judge(&request(json!({})), &Mark::SameItem, b"not json"),
            Verdict::Unknown
        );
    }

    #[test]
    fn a_versioned_write_knows_its_own_write_id() {
        let mark = |returns_item| Mark::WriteId {
            id: "w-1".into(),
            returns_item,
        };
        let ours =
            json!({"k": {"S": "a"}, "Version": {"N": "4"}, WRITE_ID_ATTRIBUTE: {"S": "w-1"}});
        let theirs =
            json!({"k": {"S": "a"}, "Version": {"N": "4"}, WRITE_ID_ATTRIBUTE: {"S": "w-2"}});
        assert_eq!(
            judge(&request(json!({})), &mark(false), &failure(&ours)),
            Verdict::OwnWrite(b"{}".to_vec())
        );
        let Verdict::OwnWrite(body) = judge(&request(json!({})), &mark(true), &failure(&ours))
        else {
            panic!("our own write");
        };
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            body["Attributes"], ours,
            "ReturnValues ALL_NEW answers the item"
        );
        assert!(matches!(
            judge(&request(json!({})), &mark(false), &failure(&theirs)),
            Verdict::ConditionFailed(_)
        ));
        let gone =
            serde_json::to_vec(&json!({"__type": "x#ConditionalCheckFailedException"})).unwrap();
        assert!(
            matches!(
                judge(&request(json!({})), &mark(false), &gone),
                Verdict::ConditionFailed(_)
            ),
            "an update's own first attempt would have left an item"
        );
        assert_eq!(
            judge(&request(json!({})), &Mark::Gone, &gone),
            Verdict::OwnWrite(b"{}".to_vec())
        );
        assert!(matches!(
            judge(&request(json!({})), &Mark::Gone, &failure(&theirs)),
            Verdict::ConditionFailed(_)
        ));
    }

    #[test]
    fn numbers_compare_as_decimals() {
        let n = |s: &str| number(&json!(s));
        assert_eq!(n("1.50"), n("+1.5"));
        assert_eq!(n("15E-1"), n("1.5"));
        assert_eq!(n("100"), n("1e2"));
        assert_eq!(n("0.000"), n("-0"));
        assert_ne!(n("1.5"), n("-1.5"));
        assert_ne!(n("10"), n("1"));
        assert_eq!(n("1.2.3"), None);
        assert_eq!(n(""), None);
    }
}
