//! Writing a request body from the raw JSON of the fields and attributes it came with, for
//! the paths that change one or two attributes and copy the rest as the bytes they came in
//! as (`plain_get`, `plain_put`).

use std::borrow::Cow;

use serde::Deserialize;

use crate::plan::Plan;
use crate::wire::{Operation, RequestView};

/// Whether a raw path may write `view`: a request of `operation` the plan sends as it
/// came (not run as another operation, no audit records carried, its expressions read),
/// whose every field is one of `fields`, each named once (a repeated field is read by the
/// whole decoding as its last occurrence). The table name, a string, when it may.
pub(super) fn covered<'v>(
    view: &RequestView<'v>,
    plan: &Plan,
    operation: &Operation,
    fields: &[&str],
) -> Option<Cow<'v, str>> {
    let as_it_came = view.operation == *operation
        && plan.operation == *operation
        && plan.client_operation == *operation
        && !plan.atomic_audit
        && plan.expressions.top.is_ok();
    if !as_it_came {
        return None;
    }
    // Fields are few (four here): a bit per field, no set to allocate.
    debug_assert!(fields.len() <= 64, "a bit per field");
    let mut seen = 0u64;
    for name in view.field_names() {
        let bit = 1u64 << fields.iter().position(|field| *field == name)?;
        if seen & bit != 0 {
            return None;
        }
        seen |= bit;
    }
    view.str("TableName")
}

/// An attribute value that is a string (`{"S": ...}`) and nothing else. A repeated or
/// another member does not read as one: such a value is left to the general path, which
/// refuses or reads it as it does.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StringValue<'a> {
    #[serde(rename = "S", borrow)]
    pub s: Cow<'a, str>,
}

impl<'a> StringValue<'a> {
    /// The string of `raw`, when it is `{"S": <string>}`.
    pub(super) fn of(raw: &'a serde_json::value::RawValue) -> Option<Cow<'a, str>> {
        serde_json::from_str::<Self>(raw.get()).ok().map(|v| v.s)
    }
}

/// A JSON text being written.
pub(super) struct Body(pub Vec<u8>);

impl Body {
    /// Room for `view`'s fields as received, and `more` bytes the path adds.
    pub(super) fn for_request(view: &RequestView<'_>, more: usize) -> Self {
        let received: usize = view
            .fields()
            .map(|(name, raw)| name.len() + raw.get().len() + 4)
            .sum();
        Self(Vec::with_capacity(received + more))
    }

    /// JSON text as it is.
    pub(super) fn raw(&mut self, text: &str) {
        self.0.extend_from_slice(text.as_bytes());
    }

    /// A string, escaped as JSON.
    pub(super) fn string(&mut self, text: &str) {
        // Writing a `str` into a `Vec` cannot fail.
        let _ = serde_json::to_writer(&mut self.0, text);
    }

    /// An object member's name and colon, after a comma unless it is the first.
    pub(super) fn member(&mut self, first: &mut bool, name: &str) {
        if !std::mem::replace(first, false) {
            self.raw(",");
        }
        self.string(name);
        self.raw(":");
    }

    /// An attribute value of one type: `{"<kind>": "<text>"}`.
    pub(super) fn typed(&mut self, kind: &str, text: &str) {
        self.raw("{");
        self.member(&mut true, kind);
        self.string(text);
        self.raw("}");
    }
}
