//! Golden cases for the expression parsers (`tests/fixtures/expr/<case>.txt`): an expression
//! of one kind and either how it prints or DynamoDB's message refusing it. Then every real
//! expression of the fuzz corpus prints to what parses back to the same AST.
//!
//! A case file holds `key: value` lines: `kind` (the request field, `ConditionExpression`),
//! `input`, optionally `names` and `values` (the request's maps, JSON: the placeholders
//! are then checked against them), and `printed` or `error`. `#` starts a comment line.

// Helpers here panic like the tests they serve: a failed expectation is a failed test.
#![allow(clippy::expect_used)]

mod support;

use std::collections::HashMap;
use std::fs;

use globalscale::expr::{
    ExprError, ExprKind, UpdateExpression, Used, parse_condition, parse_projection,
};
use serde_json::{Map, Value};
use support::fixture_files;

fn kind(field: &str) -> ExprKind {
    match field {
        "ConditionExpression" => ExprKind::Condition,
        "FilterExpression" => ExprKind::Filter,
        "KeyConditionExpression" => ExprKind::KeyCondition,
        "ProjectionExpression" => ExprKind::Projection,
        "UpdateExpression" => ExprKind::Update,
        other => panic!("unknown kind {other}"),
    }
}

/// Parses `input` as `kind`, checks its placeholders against the maps when given, and
/// returns the printed expression or DynamoDB's message.
fn run(kind: ExprKind, input: &str, maps: Option<(&Value, &Value)>) -> Result<String, String> {
    let check = |used: Used<'_>| -> Result<(), ExprError> {
        let Some((names, values)) = maps else {
            return Ok(());
        };
        used.check_defined(names.as_object(), values.as_object())?;
        used.check_all_used(names.as_object(), values.as_object())
    };
    let printed = match kind {
        ExprKind::Condition | ExprKind::Filter | ExprKind::KeyCondition => {
            parse_condition(input).and_then(|c| check(c.placeholders()).map(|()| c.to_string()))
        }
        ExprKind::Projection => {
            parse_projection(input).and_then(|p| check(p.placeholders()).map(|()| p.to_string()))
        }
        ExprKind::Update => UpdateExpression::parse(input)
            .and_then(|u| check(u.placeholders()).map(|()| u.to_string())),
    };
    printed.map_err(|e| e.message(kind))
}

#[test]
fn golden_cases() {
    let cases = fixture_files("tests/fixtures/expr");
    assert!(cases.len() >= 20, "only {} cases", cases.len());
    let empty = Value::Object(Map::new());
    for file in &cases {
        let text = fs::read_to_string(file).unwrap();
        let fields: HashMap<&str, &str> = text
            .lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| line.split_once(": "))
            .collect();
        let name = file.file_name().unwrap().to_string_lossy();
        let kind = kind(fields["kind"]);
        let json = |key: &str| {
            fields
                .get(key)
                .map(|v| serde_json::from_str::<Value>(v).unwrap())
        };
        let (names, values) = (json("names"), json("values"));
        let maps = (names.is_some() || values.is_some()).then(|| {
            (
                names.as_ref().unwrap_or(&empty),
                values.as_ref().unwrap_or(&empty),
            )
        });
        let got = run(kind, fields["input"], maps);
        match (fields.get("printed"), fields.get("error")) {
            (Some(printed), None) => {
                assert_eq!(got.as_deref(), Ok(*printed), "{name}");
                assert_eq!(run(kind, printed, maps).as_deref(), Ok(*printed), "{name}");
            }
            (None, Some(error)) => assert_eq!(got, Err((*error).to_owned()), "{name}"),
            _ => panic!("{name}: give `printed` or `error`"),
        }
    }
}

/// parse(print(parse(s))) == parse(s) for every parser that takes `s`; and each corpus
/// expression is one a parser takes, or one DynamoDB refuses for a reason we name.
#[test]
fn the_fuzz_corpus_round_trips() {
    let corpus = fixture_files("fuzz/corpus/expression");
    assert!(corpus.len() >= 20, "only {} files", corpus.len());
    for file in &corpus {
        let text = fs::read_to_string(file).unwrap();
        let condition = parse_condition(&text);
        if let Ok(c) = &condition {
            assert_eq!(parse_condition(&c.to_string()).as_ref(), Ok(c), "{text}");
        }
        let update = UpdateExpression::parse(&text);
        if let Ok(u) = &update {
            assert_eq!(
                UpdateExpression::parse(&u.to_string()).as_ref(),
                Ok(u),
                "{text}"
            );
        }
        let projection = parse_projection(&text);
        if let Ok(p) = &projection {
            assert_eq!(parse_projection(&p.to_string()).as_ref(), Ok(p), "{text}");
        }
        let name = file.file_name().unwrap().to_string_lossy();
        let refused = ["syntax_error", "reserved_word", "redundant_parentheses"];
        assert_eq!(
            condition.is_ok() || update.is_ok() || projection.is_ok(),
            !refused.iter().any(|r| name.starts_with(r)),
            "{name}"
        );
    }
}
