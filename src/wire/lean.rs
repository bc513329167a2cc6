//! A request document with one item held back: the steps see every top-level field decoded,
//! but of the item only the attributes they read or write (the partition key, the version,
//! the write id). The other attributes ride along as the raw JSON they came in as, copied
//! once into the body that is sent. A PutItem of a large item then costs a scan and a copy,
//! not a decoded tree of every attribute built and serialized again.

use std::borrow::Cow;
use std::collections::HashSet;

use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::view::{RequestView, split_object};
use crate::error::ProxyError;

/// The document the steps rewrite, and the attributes of `field` they never see.
#[derive(Debug)]
pub struct LeanDocument<'a> {
    pub document: Map<String, Value>,
    field: &'static str,
    held: Vec<(Cow<'a, str>, &'a RawValue)>,
}

impl<'a> LeanDocument<'a> {
    /// Decodes `view` with the object in `field` cut down to the attributes `touched` names.
    /// `None` when holding back is not faithful: `field` is missing or no object, or names
    /// an attribute twice (the decoded path keeps the last; raw copies would keep both).
    pub fn split(
        view: &RequestView<'a>,
        field: &'static str,
        touched: &[&str],
    ) -> Result<Option<Self>, ProxyError> {
        let Some(raw) = view.raw(field) else {
            return Ok(None);
        };
        let Some(members) = split_object(raw) else {
            return Ok(None);
        };
        let mut seen = HashSet::with_capacity(members.len());
        if !members.iter().all(|(name, _)| seen.insert(name.as_ref())) {
            return Ok(None);
        }
        let mut document = view.subset(|name| name != field)?;
        let mut item = Map::new();
        let mut held = Vec::with_capacity(members.len());
        for (name, value) in members {
            if touched.contains(&name.as_ref()) {
                let value = serde_json::from_str(value.get()).map_err(|e| {
                    ProxyError::Serialization(format!("`{field}` is not valid JSON: {e}"))
                })?;
                item.insert(name.into_owned(), value);
            } else {
                held.push((name, value));
            }
        }
        document.insert(field.to_owned(), Value::Object(item));
        Ok(Some(Self {
            document,
            field,
            held,
        }))
    }

    /// The body to send: the rewritten document, with the held attributes back in `field`.
    pub fn to_vec(&self) -> Result<Vec<u8>, ProxyError> {
        let internal = |e: serde_json::Error| ProxyError::Internal(e.to_string());
        let held_len: usize = self
            .held
            .iter()
            .map(|(n, v)| n.len() + v.get().len() + 4)
            .sum();
        let mut out = Vec::with_capacity(held_len + 512);
        out.push(b'{');
        for (i, (name, value)) in self.document.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            serde_json::to_writer(&mut out, name).map_err(internal)?;
            out.push(b':');
            if name != self.field {
                serde_json::to_writer(&mut out, value).map_err(internal)?;
                continue;
            }
            // The steps never replace the item with something else; if one did, the held
            // attributes would have nowhere faithful to go.
            let Value::Object(kept) = value else {
                return Err(ProxyError::Internal(format!(
                    "`{}` stopped being an object while its attributes were held back",
                    self.field
                )));
            };
            out.push(b'{');
            let kept = kept.iter().map(|(n, v)| (n.as_str(), Member::Decoded(v)));
            let held = self.held.iter().map(|(n, v)| (n.as_ref(), Member::Raw(v)));
            for (j, (name, member)) in kept.chain(held).enumerate() {
                if j > 0 {
                    out.push(b',');
                }
                serde_json::to_writer(&mut out, name).map_err(internal)?;
                out.push(b':');
                match member {
                    Member::Decoded(v) => serde_json::to_writer(&mut out, v).map_err(internal)?,
                    Member::Raw(v) => out.extend_from_slice(v.get().as_bytes()),
                }
            }
            out.push(b'}');
        }
        out.push(b'}');
        Ok(out)
    }
}

enum Member<'v> {
    Decoded(&'v Value),
    Raw(&'v RawValue),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Operation;

    fn lean(body: &str, touched: &[&str]) -> Option<Value> {
        let view = RequestView::parse(Operation::PutItem, body.as_bytes()).unwrap();
        let lean = LeanDocument::split(&view, "Item", touched).unwrap()?;
        Some(serde_json::from_slice(&lean.to_vec().unwrap()).unwrap())
    }

    #[test]
    fn the_steps_see_only_what_they_touch_and_the_rest_comes_back() {
        let body = r#"{"TableName":"T","Item":{"pk":{"S":"a"},"big":{"L":[{"N":"1.50"},{"S":"é\n"}]},"Version":{"N":"3"}},"ReturnValues":"NONE"}"#;
        let view = RequestView::parse(Operation::PutItem, body.as_bytes()).unwrap();
        let mut lean = LeanDocument::split(&view, "Item", &["pk", "Version"])
            .unwrap()
            .unwrap();
        let item = lean.document["Item"].as_object_mut().unwrap();
        assert_eq!(item.len(), 2);
        item.insert("pk".into(), serde_json::json!({"S": "r#a"}));
        item.insert("w".into(), serde_json::json!({"S": "id"}));
        let sent = lean.to_vec().unwrap();
        // Held attributes go out as the bytes they came in as.
        assert!(
            String::from_utf8(sent.clone())
                .unwrap()
                .contains(r#""big":{"L":[{"N":"1.50"},{"S":"é\n"}]}"#)
        );
        let sent: Value = serde_json::from_slice(&sent).unwrap();
        let mut expected: Value = serde_json::from_str(body).unwrap();
        expected["Item"]["pk"] = serde_json::json!({"S": "r#a"});
        expected["Item"]["w"] = serde_json::json!({"S": "id"});
        assert_eq!(sent, expected);
    }

    #[test]
    fn nothing_touched_is_the_same_document() {
        let body = r#"{"TableName":"T","Item":{"p\"k":{"S":"a"},"n":{"N":"1"}},"ConditionExpression":"attribute_not_exists(#k)"}"#;
        let expected: Value = serde_json::from_str(body).unwrap();
        assert_eq!(lean(body, &[]), Some(expected));
        let empty = r#"{"TableName":"T","Item":{}}"#;
        assert_eq!(lean(empty, &["pk"]), serde_json::from_str(empty).ok());
    }

    #[test]
    fn what_cannot_be_held_back_faithfully_is_declined() {
        assert_eq!(lean(r#"{"TableName":"T"}"#, &["pk"]), None);
        let twice = r#"{"TableName":"T","Item":{"a":{"S":"1"},"a":{"S":"2"}}}"#;
        assert_eq!(lean(twice, &["pk"]), None);
    }
}
