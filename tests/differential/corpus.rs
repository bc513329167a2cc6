//! The expressions the differential test judges: every golden fixture
//! (`tests/fixtures/expr/`), every fuzz seed (`fuzz/corpus/expression/`), the hand-written
//! near misses below and the generated corpus of [`crate::grammar`]. Each case carries the
//! maps a client would send, taken from the placeholders its text uses and the pools here,
//! unless a fixture gives its own.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::path::Path;

use aws_sdk_dynamodb::types::AttributeValue;

use crate::support::fixture_files;
use globalscale::expr::ExprKind;
use serde_json::Value;

/// Which request field a case fills, and so which request carries it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A Scan's `FilterExpression`.
    Filter,
    /// The `ConditionExpression` of a Put of each probe item onto itself.
    Condition,
    /// A Query's `KeyConditionExpression`, on the `pk`/`sk` table.
    KeyCondition,
    /// A GetItem's `ProjectionExpression`.
    Projection,
    /// An UpdateItem's `UpdateExpression`, on a fresh copy of the richest item.
    Update,
}

impl Kind {
    pub(crate) fn expr_kind(self) -> ExprKind {
        match self {
            Self::Filter => ExprKind::Filter,
            Self::Condition => ExprKind::Condition,
            Self::KeyCondition => ExprKind::KeyCondition,
            Self::Projection => ExprKind::Projection,
            Self::Update => ExprKind::Update,
        }
    }
}

/// One expression and the maps sent with it (an empty map is not sent at all: DynamoDB
/// refuses an empty `ExpressionAttributeValues`; a projection has no values map).
#[derive(Clone, Debug)]
pub(crate) struct Case {
    /// Where it came from: a fixture file, the near miss it is, `generated #n`.
    pub(crate) origin: String,
    pub(crate) kind: Kind,
    pub(crate) text: String,
    pub(crate) names: BTreeMap<String, String>,
    pub(crate) values: BTreeMap<String, AttributeValue>,
}

/// A placeholder no pool defines: the maps leave it out.
pub(crate) const UNDEFINED_NAME: &str = "#undefined";
pub(crate) const UNDEFINED_VALUE: &str = ":undefined";

impl Case {
    /// A case whose maps define exactly the placeholders `text` uses, from the pools.
    pub(crate) fn new(origin: impl Into<String>, kind: Kind, text: impl Into<String>) -> Self {
        let text = text.into();
        let mut case = Self {
            origin: origin.into(),
            kind,
            text,
            names: BTreeMap::new(),
            values: BTreeMap::new(),
        };
        for placeholder in placeholders(&case.text) {
            if placeholder == UNDEFINED_NAME || placeholder == UNDEFINED_VALUE {
                continue;
            }
            if placeholder.starts_with('#') {
                let name = name_for(&placeholder);
                case.names.insert(placeholder, name);
            } else if kind != Kind::Projection {
                let value = value_for(&placeholder);
                case.values.insert(placeholder, value);
            }
        }
        case
    }

    /// The same case with a `#name` the expression does not use.
    pub(crate) fn with_unused_name(mut self) -> Self {
        self.names.insert("#unused".into(), "unused".into());
        self
    }

    /// The same case with a `:value` the expression does not use; a projection's GetItem
    /// has no `ExpressionAttributeValues` to put it in.
    pub(crate) fn with_unused_value(mut self) -> Self {
        if self.kind != Kind::Projection {
            self.values.insert(":unused".into(), s("unused"));
        }
        self
    }
}

impl fmt::Display for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let field = self.kind.expr_kind().field();
        writeln!(f, "[{}] {field}: {}", self.origin, self.text)?;
        write!(f, "  names: {:?}\n  values: {:?}", self.names, self.values)
    }
}

/// The `#name`s and `:value`s of `text`, each once, as the lexer spells them.
fn placeholders(text: &str) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    let bytes = text.as_bytes();
    let mut at = 0;
    while at < bytes.len() {
        let start = at;
        at += 1;
        if !matches!(bytes[start], b'#' | b':') {
            continue;
        }
        while at < bytes.len() && (bytes[at].is_ascii_alphanumeric() || bytes[at] == b'_') {
            at += 1;
        }
        let word = &text[start..at];
        if word.len() > 1 && !found.iter().any(|f| f == word) {
            found.push(word.to_owned());
        }
    }
    found
}

/// What a `#name` stands for: the pool's attribute, else the name without its `#`.
fn name_for(placeholder: &str) -> String {
    let pool = [
        ("#s", "status"),
        ("#st", "status"),
        ("#dot", "a.b"),
        ("#dash", "x-y"),
        ("#y", "year"),
        ("#m", "meta"),
        ("#c", "color"),
    ];
    pool.iter().find(|(p, _)| *p == placeholder).map_or_else(
        || placeholder[1..].to_owned(),
        |(_, name)| (*name).to_owned(),
    )
}

pub(crate) fn s(text: &str) -> AttributeValue {
    AttributeValue::S(text.to_owned())
}

pub(crate) fn n(number: &str) -> AttributeValue {
    AttributeValue::N(number.to_owned())
}

pub(crate) fn ss(items: &[&str]) -> AttributeValue {
    AttributeValue::Ss(items.iter().map(|i| (*i).to_owned()).collect())
}

pub(crate) fn ns(items: &[&str]) -> AttributeValue {
    AttributeValue::Ns(items.iter().map(|i| (*i).to_owned()).collect())
}

/// What a `:value` stands for. The generated corpus draws from the first names; the others
/// give the fixtures' and fuzz seeds' placeholders values of a fitting type; any other
/// stands for the string `x`.
fn value_for(placeholder: &str) -> AttributeValue {
    let types = ["S", "N", "SS", "NS", "L", "M", "BOOL", "NULL"];
    if let Some(type_name) = placeholder.strip_prefix(":t")
        && types.contains(&type_name)
    {
        return s(type_name);
    }
    match placeholder {
        ":s" => s("Dune"),
        ":apple" => s("apple"),
        ":p" | ":prefix" | ":pk" | ":from" => s("a"),
        ":classic" | ":tag" => s("classic"),
        ":color" => s("red"),
        ":n0" | ":zero" => n("0"),
        ":n5" => n("5"),
        ":n12" => n("12"),
        ":n50" | ":hi" => n("50"),
        ":one" | ":n" | ":lo" | ":q" => n("1"),
        ":two" => n("2"),
        ":max" | ":now" => n("100"),
        ":set" => ss(&["classic"]),
        ":red" | ":colors" | ":old" => ss(&["red"]),
        ":nset" => ns(&["2"]),
        ":list" | ":items" | ":new" => AttributeValue::L(vec![s("more")]),
        ":empty" => AttributeValue::L(Vec::new()),
        ":true" => AttributeValue::Bool(true),
        ":null" => AttributeValue::Null(true),
        ":ss" => s("SS"),
        ":sk" => s("b2"),
        ":to" => s("b9"),
        _ => s("x"),
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Every golden case of `tests/fixtures/expr` (see `tests/expr_golden.rs` for the format):
/// its kind, its input, and its own maps when it gives any.
pub(crate) fn fixtures() -> Vec<Case> {
    fixture_files("tests/fixtures/expr")
        .iter()
        .map(|file| {
            let text = fs::read_to_string(file).expect("a fixture");
            let fields: BTreeMap<&str, &str> = text
                .lines()
                .filter(|line| !line.starts_with('#'))
                .filter_map(|line| line.split_once(": "))
                .collect();
            let kind = match fields["kind"] {
                "ConditionExpression" => Kind::Condition,
                "FilterExpression" => Kind::Filter,
                "KeyConditionExpression" => Kind::KeyCondition,
                "ProjectionExpression" => Kind::Projection,
                "UpdateExpression" => Kind::Update,
                other => panic!("unknown kind {other}"),
            };
            let mut case = Case::new(file_name(file), kind, fields["input"]);
            if fields.contains_key("names") || fields.contains_key("values") {
                let json = |key: &str| -> BTreeMap<String, Value> {
                    fields.get(key).map_or_else(BTreeMap::new, |v| {
                        serde_json::from_str(v).expect("a JSON object")
                    })
                };
                case.names = json("names")
                    .into_iter()
                    .map(|(k, v)| (k, v.as_str().expect("a name").to_owned()))
                    .collect();
                case.values = json("values")
                    .into_iter()
                    .map(|(k, v)| (k, attribute_value(&v)))
                    .collect();
            }
            case
        })
        .collect()
}

/// DynamoDB JSON (`{"S": "x"}`) as the SDK's value; the fixtures use strings and numbers.
fn attribute_value(json: &Value) -> AttributeValue {
    match json.as_object().and_then(|o| o.iter().next()) {
        Some((t, Value::String(v))) if t == "S" => s(v),
        Some((t, Value::String(v))) if t == "N" => n(v),
        _ => panic!("a fixture value this test does not know: {json}"),
    }
}

/// Every fuzz seed of `fuzz/corpus/expression`, its kind read from its name.
pub(crate) fn fuzz_seeds() -> Vec<Case> {
    fixture_files("fuzz/corpus/expression")
        .iter()
        .map(|file| {
            let name = file_name(file);
            let kind = [
                ("filter_", Kind::Filter),
                ("key_", Kind::KeyCondition),
                ("projection_", Kind::Projection),
                ("update_", Kind::Update),
            ]
            .iter()
            .find(|(prefix, _)| name.starts_with(prefix))
            .map_or(Kind::Condition, |(_, kind)| *kind);
            let text = fs::read_to_string(file).expect("a fuzz seed");
            Case::new(format!("fuzz seed {name}"), kind, text.trim_end())
        })
        .collect()
}
