//! A PutItem that carries only its item, on a prefixed or versioned table and not audited,
//! written straight from the item's raw attributes: the partition key prefixed, the version
//! check and the stored version and write id added, every other attribute copied as the
//! bytes it came in as. No document is built and no expression machinery runs.
//!
//! The general path (`Decoded::Lean`, the steps over a `serde_json::Map`, the document
//! serialized with the held attributes spliced back) cost the load harness's 1.4 KB
//! PutItem about thirty allocations and a tenth of the sidecar's CPU (`benches/README.md`).
//! What this sends means what the general path sends: the same fields, attributes, check
//! and placeholders, in another order; a test holds the two together, cases and proptests.
//! Anything else (another field, an expression, a legacy parameter, a repeated field or
//! attribute, a partition key that is not `{"S": ...}`, a version the general path would
//! refuse) is left to the general path: [`request`] returns `None`.

use std::borrow::Cow;

use super::optimistic_lock::PutCheck;
use super::raw_body::{Body, StringValue, covered};
use crate::config::WRITE_ID_ATTRIBUTE;
use crate::expr::PlaceholderAllocator;
use crate::plan::Plan;
use crate::wire::{Operation, RequestView, distinct_names};

/// The fields this path takes. Any other may carry an expression or a legacy parameter a
/// step rewrites, or (`ReturnValues`) change how a resend is judged.
const FIELDS: [&str; 4] = [
    "TableName",
    "Item",
    "ReturnConsumedCapacity",
    "ReturnItemCollectionMetrics",
];

/// A PutItem as this path writes it.
#[derive(Debug)]
pub struct PlainPut {
    pub body: Vec<u8>,
    /// What a versioned item stores beside its version; `None` on a table without one.
    pub write_id: Option<String>,
}

/// The body to send, or `None` when the request is not a PutItem this path covers.
/// `write_id` makes the id a versioned item stores beside its version.
pub fn request(
    view: &RequestView<'_>,
    plan: &Plan,
    write_id: impl FnOnce() -> String,
) -> Option<PlainPut> {
    let table = covered(view, plan, &Operation::PutItem, &FIELDS)?;
    let members = view.put_item_members()?;
    let prefix = plan.prefix_of(&table);
    let versioned = plan.version_of(&table);
    let same_attribute = prefix
        .zip(versioned)
        .is_some_and(|(p, v)| p.attribute == v.attribute);
    if (prefix.is_none() && versioned.is_none()) || same_attribute || !distinct_names(members) {
        return None;
    }
    let key = match prefix {
        Some(prefix) => {
            let (_, raw) = members.iter().find(|(n, _)| *n == prefix.attribute)?;
            let key = StringValue::of(raw)?;
            Some((
                prefix.attribute.as_str(),
                [prefix.prefix.as_str(), &key].concat(),
            ))
        }
        None => None,
    };
    let check = match versioned {
        Some(versioned) => {
            let read = members.iter().find(|(n, _)| *n == versioned.attribute);
            let read = match read {
                Some((_, raw)) => Some(serde_json::from_str(raw.get()).ok()?),
                None => None,
            };
            let mut names = PlaceholderAllocator::new(None, None);
            let check = PutCheck::new(versioned, read.as_ref(), &mut names).ok()?;
            Some((versioned.attribute.as_str(), check, write_id()))
        }
        None => None,
    };
    let body = write(view, members, key.as_ref(), check.as_ref());
    Some(PlainPut {
        body,
        write_id: check.map(|(_, _, write_id)| write_id),
    })
}

/// The partition key attribute and its prefixed string.
type Key<'p> = (&'p str, String);

/// The version attribute, its check and the write id stored beside it.
type Check<'p> = (&'p str, PutCheck, String);

/// The body: the request's other fields as they came, the item with its partition key
/// prefixed and its version and write id replaced, and the check.
fn write(
    view: &RequestView<'_>,
    members: &[(Cow<'_, str>, &serde_json::value::RawValue)],
    key: Option<&Key<'_>>,
    check: Option<&Check<'_>>,
) -> Vec<u8> {
    let mut out = Body::for_request(view, 256);
    out.raw("{");
    let mut first = true;
    for (name, raw) in view.fields() {
        if name == "Item" {
            continue;
        }
        out.member(&mut first, name);
        out.raw(raw.get());
    }
    out.member(&mut first, "Item");
    out.raw("{");
    let mut first_attribute = true;
    for (name, raw) in members {
        let replaced = key.is_some_and(|(a, _)| a == name)
            || check.is_some_and(|(a, _, _)| a == name || name == WRITE_ID_ATTRIBUTE);
        if !replaced {
            out.member(&mut first_attribute, name);
            out.raw(raw.get());
        }
    }
    if let Some((attribute, key)) = key {
        out.member(&mut first_attribute, attribute);
        out.typed("S", key);
    }
    if let Some((attribute, check, write_id)) = check {
        out.member(&mut first_attribute, attribute);
        out.typed("N", &check.next.to_string());
        out.member(&mut first_attribute, WRITE_ID_ATTRIBUTE);
        out.typed("S", write_id);
    }
    out.raw("}");
    if let Some((attribute, check, _)) = check {
        out.member(&mut first, "ConditionExpression");
        out.string(&check.condition.to_string());
        out.member(&mut first, "ExpressionAttributeNames");
        out.raw("{");
        out.member(&mut true, &check.name);
        out.string(attribute);
        out.raw("}");
        if let Some((placeholder, read)) = &check.expected {
            out.member(&mut first, "ExpressionAttributeValues");
            out.raw("{");
            out.member(&mut true, placeholder);
            out.typed("N", &read.to_string());
            out.raw("}");
        }
    }
    out.raw("}");
    out.0
}

#[cfg(test)]
mod tests;
