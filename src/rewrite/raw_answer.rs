//! The restore halves of [`key_prefix`] and [`optimistic_lock`] run on a single-table answer
//! (GetItem, Query, Scan, and the single-item writes) without decoding it.
//!
//! Decoding a 1.4 KB item into a `serde_json::Value` (a map and two strings per attribute)
//! and encoding it again was two fifths of the sidecar's CPU per GetItem, to change one
//! attribute. Here the answer is read once, each item as its attributes kept as the raw
//! JSON they arrived as; only the attributes the steps touch (the partition key, the write
//! id) are decoded and handed to the same per-item restore functions, and what they changed
//! is spliced into the bytes as they came. An answer this does not cover (another
//! operation, escaped field names, item collection metrics, a `LastEvaluatedKey` at another
//! namespace's item) is left to the decoding path: [`restore`] returns `None`.
//!
//! [`key_prefix`]: super::key_prefix
//! [`optimistic_lock`]: super::optimistic_lock

use std::fmt;
use std::ops::Range;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Map;
use serde_json::value::RawValue;

use super::{RewriteError, key_prefix, optimistic_lock};
use crate::config::WRITE_ID_ATTRIBUTE;
use crate::plan::Plan;
use crate::wire::items::Site;

/// The answer with the steps' restore halves applied, or `None` when this path does not
/// cover it and the answer must be decoded.
pub fn restore(plan: &Plan, body: &[u8]) -> Option<Result<Vec<u8>, RewriteError>> {
    restore_as(plan, body, true)
}

/// [`restore`], with or without [`plain_edits`] (the tests hold one to the other).
fn restore_as(
    plan: &Plan,
    body: &[u8],
    plain_first: bool,
) -> Option<Result<Vec<u8>, RewriteError>> {
    let covered = plan.operation.is_single_table();
    let table = plan.answer_context().table?;
    // A write that ran as a transaction has an answer of another shape to restore.
    if !covered || plan.operation != plan.client_operation || plan.atomic_audit {
        return None;
    }
    // At most the partition key and the write id: no list to allocate per answer.
    let key = plan.prefix_of(table).map(|p| p.attribute.as_str());
    let write_id = plan.version_of(table).map(|_| WRITE_ID_ATTRIBUTE);
    let (pair, one);
    let touched: &[&str] = match (key, write_id) {
        (Some(key), Some(write_id)) => {
            pair = [key, write_id];
            &pair
        }
        (Some(only), None) | (None, Some(only)) => {
            one = [only];
            &one
        }
        (None, None) => &[],
    };
    // UTF-8 checked once here, not again for every raw value the reader hands out.
    let mut reader = serde_json::Deserializer::from_str(std::str::from_utf8(body).ok()?);
    let answer = Touched(touched).answer(&mut reader).ok()?;
    reader.end().ok()?;
    if answer.collection_metrics {
        // Its key would need the decoding path's collection-key walk.
        return None;
    }
    let mut edits = Vec::new();
    for (site, attributes) in &answer.sites {
        if plain_first && plain_edits(plan, table, *site, body, attributes, &mut edits) {
            continue;
        }
        match edit(plan, table, *site, body, attributes)? {
            Ok(mut made) => edits.append(&mut made),
            Err(e) => return Some(Err(e)),
        }
    }
    Some(Ok(splice(body, edits)))
}

/// A range of the answer and what replaces it.
type Edit = (Range<usize>, Vec<u8>);

/// The edits of the common case, made without decoding anything: each touched attribute
/// named once, and a partition key spelled exactly `{"S":"<prefix><key>"}` with no escape
/// in it. Its prefix is then cut out of the string in place, which gives the bytes the
/// decoding edit (decode, strip, encode the attribute) gives: a string without escapes
/// holds no character an encoder escapes. The write id is cut out as [`edit`] cuts it.
/// Returns false, having added nothing, for anything else (another spelling, a foreign
/// item, a position to seal), which [`edit`] then handles; its allocations (two decoded
/// copies of each touched attribute, and more) were 18 of a GetItem's 104
/// (`benches/allocations.rs`).
fn plain_edits(
    plan: &Plan,
    table: &str,
    site: Site,
    body: &[u8],
    attributes: &Fields<'_>,
    edits: &mut Vec<Edit>,
) -> bool {
    let before = edits.len();
    let made = plain_edits_of(plan, table, site, body, attributes, edits);
    if made.is_none() {
        edits.truncate(before);
    }
    made.is_some()
}

fn plain_edits_of(
    plan: &Plan,
    table: &str,
    site: Site,
    body: &[u8],
    attributes: &Fields<'_>,
    edits: &mut Vec<Edit>,
) -> Option<()> {
    const OPENING: &str = r#"{"S":""#;
    let prefix = plan.prefix_of(table);
    let versioned = plan.version_of(table).is_some();
    for (i, (name, value)) in attributes.0.iter().enumerate() {
        if attributes.0[..i].iter().any(|(other, _)| other == name) {
            return None;
        }
        let is_key = prefix.is_some_and(|p| p.attribute == *name);
        let is_write_id = versioned && *name == WRITE_ID_ATTRIBUTE;
        match (is_key, is_write_id) {
            (true, false) => {
                let prefix = &prefix?.prefix;
                let stored = value.get().strip_prefix(OPENING)?.strip_suffix("\"}")?;
                if stored.contains(['"', '\\']) || !stored.starts_with(prefix.as_str()) {
                    return None;
                }
                let start = span(body, value)?.start + OPENING.len();
                edits.push((start..start + prefix.len(), Vec::new()));
            }
            (false, true) if site == Site::Item => {
                let at = span(body, value)?;
                edits.push((removal(body, name, at)?, Vec::new()));
            }
            (false, _) => {}
            (true, true) => return None,
        }
    }
    Some(())
}

/// The edits the steps make to one item (or key), handed the attributes they touch: a
/// changed attribute's value replaced, a removed attribute cut out with its name and a
/// comma. `None` when a step touched an attribute it was not handed.
fn edit(
    plan: &Plan,
    table: &str,
    site: Site,
    body: &[u8],
    attributes: &Fields<'_>,
) -> Option<Result<Vec<Edit>, RewriteError>> {
    let mut decoded = Map::new();
    for (name, value) in &attributes.0 {
        decoded.insert((*name).to_owned(), serde_json::from_str(value.get()).ok()?);
    }
    // A position at another namespace's item is replaced whole, sort and index keys
    // included, which this path does not read: the decoding path seals it.
    if key_prefix::seals(plan, table, site, &decoded) {
        return None;
    }
    let before = decoded.clone();
    optimistic_lock::restore_site(plan, table, site, &mut decoded);
    if let Err(e) = key_prefix::restore_site(plan, table, site, &mut decoded) {
        return Some(Err(e));
    }
    if decoded == before {
        return Some(Ok(Vec::new()));
    }
    if decoded.keys().any(|name| !before.contains_key(name)) {
        return None;
    }
    let mut edits = Vec::new();
    for (name, value) in &attributes.0 {
        let Some(was) = before.get(*name) else {
            continue;
        };
        let at = span(body, value)?;
        match decoded.get(*name) {
            Some(now) if now == was => {}
            Some(now) => edits.push((at, serde_json::to_vec(now).ok()?)),
            None => edits.push((removal(body, name, at)?, Vec::new())),
        }
    }
    Some(Ok(edits))
}

/// Where `raw`, borrowed from `body`, lies in it.
fn span(body: &[u8], raw: &RawValue) -> Option<Range<usize>> {
    let start = (raw.get().as_ptr() as usize).checked_sub(body.as_ptr() as usize)?;
    let end = start + raw.get().len();
    (end <= body.len()).then_some(start..end)
}

/// The bytes to cut so that the member `"name": <value at value>` leaves the object valid:
/// the member and the comma before it, or, for the first member, the comma after it.
/// The name has no escapes (it was borrowed from the body), so what precedes a value is
/// known exactly: `"name"`, white space, `:`, white space.
fn removal(body: &[u8], name: &str, value: Range<usize>) -> Option<Range<usize>> {
    let back = |mut i: usize| {
        while i > 0 && body[i - 1].is_ascii_whitespace() {
            i -= 1;
        }
        i
    };
    let colon = back(value.start).checked_sub(1)?;
    let closing = back(colon).checked_sub(1)?;
    let opening = closing.checked_sub(name.len() + 1)?;
    let member = body.get(opening..=closing)?;
    let quoted = body.get(colon) == Some(&b':')
        && member.first() == Some(&b'"')
        && member.last() == Some(&b'"')
        && &member[1..member.len() - 1] == name.as_bytes();
    if !quoted {
        return None;
    }
    let before = back(opening).checked_sub(1)?;
    match body.get(before)? {
        b',' => Some(before..value.end),
        b'{' => {
            let mut after = value.end;
            while body.get(after).is_some_and(u8::is_ascii_whitespace) {
                after += 1;
            }
            match body.get(after)? {
                b',' => Some(opening..after + 1),
                _ => Some(opening..value.end),
            }
        }
        _ => None,
    }
}

/// `body` with each edit's range replaced; the edits do not overlap.
fn splice(body: &[u8], mut edits: Vec<Edit>) -> Vec<u8> {
    edits.sort_by_key(|(range, _)| range.start);
    // Exactly the length: `Bytes::from` takes a full vector without allocating again.
    let grown: usize = edits.iter().map(|(_, new)| new.len()).sum();
    let cut: usize = edits.iter().map(|(range, _)| range.len()).sum();
    let mut out = Vec::with_capacity(body.len() + grown - cut);
    let mut at = 0;
    for (range, new) in edits {
        out.extend_from_slice(&body[at..range.start]);
        out.extend_from_slice(&new);
        at = range.end;
    }
    out.extend_from_slice(&body[at..]);
    out
}

/// The items and keys of a single-table answer, read in one pass: each as the attributes
/// the steps touch, every other field and attribute skipped.
struct Answer<'a> {
    sites: Vec<(Site, Fields<'a>)>,
    collection_metrics: bool,
}

/// An item's members that the steps touch, in order: names borrowed (so a name with an
/// escape refuses) and values as raw JSON. The other members are only skipped: keeping
/// every attribute of a 1.5 KB item as a raw value cost a sixth of the restore.
struct Fields<'a>(Vec<(&'a str, &'a RawValue)>);

/// The attribute names the steps touch; reads an answer, a list of items or one item.
#[derive(Clone, Copy)]
struct Touched<'t>(&'t [&'t str]);

impl Touched<'_> {
    fn answer<'de, D: Deserializer<'de>>(self, deserializer: D) -> Result<Answer<'de>, D::Error> {
        struct Each<'t>(Touched<'t>);
        impl<'de> Visitor<'de> for Each<'_> {
            type Value = Answer<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a DynamoDB answer")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Answer<'de>, M::Error> {
                let mut answer = Answer {
                    sites: Vec::new(),
                    collection_metrics: false,
                };
                while let Some(field) = map.next_key::<&'de str>()? {
                    match field {
                        "Item" | "Attributes" => {
                            answer
                                .sites
                                .push((Site::Item, map.next_value_seed(self.0)?));
                        }
                        "LastEvaluatedKey" => {
                            answer
                                .sites
                                .push((Site::StartKey, map.next_value_seed(self.0)?));
                        }
                        "Items" => {
                            let items = map.next_value_seed(Items(self.0))?;
                            answer
                                .sites
                                .extend(items.into_iter().map(|i| (Site::Item, i)));
                        }
                        other => {
                            answer.collection_metrics |= other == "ItemCollectionMetrics";
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(answer)
            }
        }
        deserializer.deserialize_map(Each(self))
    }
}

impl<'de> DeserializeSeed<'de> for Touched<'_> {
    type Value = Fields<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Fields<'de>, D::Error> {
        struct Each<'t>(Touched<'t>);
        impl<'de> Visitor<'de> for Each<'_> {
            type Value = Fields<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Fields<'de>, M::Error> {
                let mut fields = Vec::new();
                while let Some(name) = map.next_key::<&'de str>()? {
                    if self.0.0.contains(&name) {
                        fields.push((name, map.next_value::<&'de RawValue>()?));
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(Fields(fields))
            }
        }
        deserializer.deserialize_map(Each(self))
    }
}

/// A page's items, each read as [`Touched`] reads one.
struct Items<'t>(Touched<'t>);

impl<'de> DeserializeSeed<'de> for Items<'_> {
    type Value = Vec<Fields<'de>>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        struct Each<'t>(Touched<'t>);
        impl<'de> Visitor<'de> for Each<'_> {
            type Value = Vec<Fields<'de>>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of items")
            }
            fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<Self::Value, S::Error> {
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
                while let Some(item) = seq.next_element_seed(self.0)? {
                    items.push(item);
                }
                Ok(items)
            }
        }
        deserializer.deserialize_seq(Each(self.0))
    }
}

#[cfg(test)]
mod tests;
