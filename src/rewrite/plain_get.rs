//! A GetItem whose only change is its key's prefix, written from the request's raw fields:
//! the partition key's string prefixed, every other field and key attribute copied as the
//! bytes it came in as.
//!
//! The whole decoding (`Decoded::Whole`) made a string for every name and value and a map
//! for every object; a borrowed tree of the request (the path before this one) still built
//! a map node per object and serialized it again, about a tenth of a GetItem's
//! instructions (`benches/README.md`). What this sends means what the whole decoding sends:
//! the same fields and key, the partition key prefixed the same way (a test holds the two
//! together, cases and proptests). Anything beyond a plain GetItem (another field, a key
//! that is not `{"S": ...}`, a repeated field or key attribute, an audited or rewritten
//! operation) is left to the whole decoding: [`request`] returns `None`.

use super::raw_body::{Body, StringValue, covered};
use crate::plan::Plan;
use crate::wire::{Operation, RequestView, distinct_names};

/// The fields of a GetItem this path takes; any other (an expression, a legacy parameter)
/// may be rewritten by a step, so it leaves the request to the whole decoding.
const FIELDS: [&str; 4] = [
    "TableName",
    "Key",
    "ConsistentRead",
    "ReturnConsumedCapacity",
];

/// The body to send, or `None` when the request is not a plain GetItem this path covers.
pub fn request(view: &RequestView<'_>, plan: &Plan) -> Option<Vec<u8>> {
    let table = covered(view, plan, &Operation::GetItem, &FIELDS)?;
    let key = view.members("Key")?;
    if !distinct_names(&key) {
        return None;
    }
    // What `key_prefix` accepts: the partition key as `{"S": <string>}`; anything else is
    // refused or left alone there.
    let prefixed = match plan.prefix_of(&table) {
        Some(prefix) => {
            let (_, raw) = key.iter().find(|(n, _)| *n == prefix.attribute)?;
            Some((
                prefix.attribute.as_str(),
                [prefix.prefix.as_str(), &StringValue::of(raw)?].concat(),
            ))
        }
        None => None,
    };
    let mut out = Body::for_request(view, 32);
    out.raw("{");
    let mut first = true;
    for (name, raw) in view.fields() {
        out.member(&mut first, name);
        if name != "Key" {
            out.raw(raw.get());
            continue;
        }
        out.raw("{");
        let mut first_attribute = true;
        for (attribute, raw) in &key {
            out.member(&mut first_attribute, attribute);
            match &prefixed {
                Some((partition, stored)) if attribute == partition => out.typed("S", stored),
                _ => out.raw(raw.get()),
            }
        }
        out.raw("}");
    }
    out.raw("}");
    Some(out.0)
}

#[cfg(test)]
mod tests;
