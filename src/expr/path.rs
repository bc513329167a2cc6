//! Document paths (`a.#b[2].c`): the names every expression kind reads and writes, with
//! the `#name` placeholders either kept as written or resolved through the request's
//! `ExpressionAttributeNames`.

use std::fmt;

use serde_json::{Map, Value};

/// A document path: a top-level attribute, then map keys and list indexes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Path(pub Vec<PathElement>);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PathElement {
    /// A name written in the expression.
    Attr(String),
    /// A `#name` placeholder, with the `#`.
    Name(String),
    Index(u32),
}

/// One step of a path once `#name` placeholders are replaced by the names they stand for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResolvedElement<'a> {
    /// An attribute name or map key. A placeholder resolves to one element even when its
    /// name holds a dot: `#n` for `a.b` is the attribute `a.b`, not `b` inside `a`.
    Attr(&'a str),
    Index(u32),
}

impl Path {
    /// A one-element path naming a top-level attribute as written (no placeholder).
    pub fn attribute(name: impl Into<String>) -> Self {
        Self(vec![PathElement::Attr(name.into())])
    }

    /// Whether any step of the path is a list element.
    pub fn has_index(&self) -> bool {
        self.0.iter().any(|e| matches!(e, PathElement::Index(_)))
    }

    /// The path with every `#name` replaced by the name `names` maps it to, so that `#k`
    /// and `k` compare equal. `None` when a placeholder is not defined or not a string:
    /// such a path names nothing DynamoDB would accept.
    pub fn resolve<'a>(
        &'a self,
        names: Option<&'a Map<String, Value>>,
    ) -> Option<Vec<ResolvedElement<'a>>> {
        self.0
            .iter()
            .map(|element| match element {
                PathElement::Attr(name) => Some(ResolvedElement::Attr(name)),
                PathElement::Name(placeholder) => {
                    names?.get(placeholder)?.as_str().map(ResolvedElement::Attr)
                }
                PathElement::Index(index) => Some(ResolvedElement::Index(*index)),
            })
            .collect()
    }

    /// Whether the path is exactly the top-level attribute `name` (written bare or through a
    /// placeholder): `ItemID` and `#k` with `{"#k": "ItemID"}` are; `ItemID.x`,
    /// `ItemID[0]` and `itemid` are not (attribute names are case-sensitive).
    pub fn is_attribute(&self, names: Option<&Map<String, Value>>, name: &str) -> bool {
        match self.0.as_slice() {
            [PathElement::Attr(attr)] => attr == name,
            [PathElement::Name(placeholder)] => names
                .and_then(|n| n.get(placeholder))
                .and_then(Value::as_str)
                .is_some_and(|resolved| resolved == name),
            _ => false,
        }
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, element) in self.0.iter().enumerate() {
            match element {
                PathElement::Attr(name) | PathElement::Name(name) if i == 0 => f.write_str(name)?,
                PathElement::Attr(name) | PathElement::Name(name) => write!(f, ".{name}")?,
                PathElement::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn path(elements: &[PathElement]) -> Path {
        Path(elements.to_vec())
    }

    fn attr(name: &str) -> PathElement {
        PathElement::Attr(name.into())
    }

    fn name(placeholder: &str) -> PathElement {
        PathElement::Name(placeholder.into())
    }

    #[test]
    fn resolves_placeholders_to_single_elements() {
        let names = json!({"#a": "a.b", "#n": 7});
        let names = names.as_object();
        let p = path(&[name("#a"), PathElement::Index(2), attr("c")]);
        assert_eq!(
            p.resolve(names),
            Some(vec![
                ResolvedElement::Attr("a.b"),
                ResolvedElement::Index(2),
                ResolvedElement::Attr("c")
            ])
        );
        assert_eq!(path(&[name("#missing")]).resolve(names), None);
        assert_eq!(path(&[name("#n")]).resolve(names), None, "not a string");
        assert_eq!(path(&[name("#a")]).resolve(None), None);
        assert_eq!(
            path(&[attr("x")]).resolve(None),
            Some(vec![ResolvedElement::Attr("x")])
        );
    }

    #[test]
    fn compares_with_a_top_level_attribute() {
        let names = json!({"#k": "ItemID", "#o": "Other"});
        let names = names.as_object();
        assert!(Path::attribute("ItemID").is_attribute(names, "ItemID"));
        assert!(path(&[name("#k")]).is_attribute(names, "ItemID"));
        assert!(!path(&[name("#o")]).is_attribute(names, "ItemID"));
        assert!(!path(&[name("#k")]).is_attribute(None, "ItemID"));
        assert!(!Path::attribute("itemid").is_attribute(names, "ItemID"));
        assert!(!path(&[attr("ItemID"), attr("x")]).is_attribute(names, "ItemID"));
        assert!(!path(&[name("#k"), PathElement::Index(0)]).is_attribute(names, "ItemID"));
    }

    #[test]
    fn prints_dots_and_brackets() {
        let p = path(&[attr("a"), name("#b"), PathElement::Index(3), attr("c")]);
        assert_eq!(p.to_string(), "a.#b[3].c");
        assert!(p.has_index());
        assert!(!Path::attribute("a").has_index());
    }
}
