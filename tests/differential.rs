//! Differential checks against DynamoDB Local. Every expression of the corpus
//! (the golden fixtures, the fuzz seeds, hand-written near misses and a generated corpus:
//! `differential/`) is judged twice:
//!
//! - **the sidecar's way**: the library's parser (`globalscale::expr`) with its placeholder
//!   checks, which is what a prefixed or versioned table refuses before sending anything;
//!   an expression it takes is printed back from its AST, as a rewrite sends it, and sent
//!   through a sidecar whose table has no policy, so nothing else changes it;
//! - **DynamoDB Local's way**: the text as written, sent straight to it.
//!
//! Both must refuse it, or both take it and answer the same: the items a Scan filters, the
//! items a Query finds, whether a conditional Put succeeds on each probe item, the item an
//! UpdateItem leaves, what a projection keeps. What only the item or the table can refuse
//! (operand types, overlapping paths, the key schema) the parser leaves to DynamoDB, so
//! there the sidecar's way ends in DynamoDB Local's refusal of the printed text.

// Helpers here panic like the tests they serve: a failed expectation is a failed test.
#![allow(clippy::expect_used)]

mod support;

#[path = "differential/corpus.rs"]
mod corpus;
#[path = "differential/grammar.rs"]
mod grammar;
#[path = "differential/near_misses.rs"]
mod near_misses;
#[path = "differential/world.rs"]
mod world;

use std::fmt;
use std::time::Instant;

use globalscale::expr::{
    ExprError, Used, parse_condition, parse_key_condition, parse_projection, parse_update,
};
use serde_json::{Map, Value};

use corpus::Kind::{Filter, Projection, Update};
use corpus::{Case, Kind};
use world::{Outcome, World, run};

/// What the sidecar's parser made of a case: the text it would send, or its refusal.
fn parse(case: &Case) -> Result<String, String> {
    let keys = |keys: Vec<&String>| -> Option<Map<String, Value>> {
        (!keys.is_empty()).then(|| keys.into_iter().map(|k| (k.clone(), Value::Null)).collect())
    };
    let names = keys(case.names.keys().collect());
    let values = keys(case.values.keys().collect());
    let check = |used: Used<'_>| -> Result<(), ExprError> {
        used.check_defined(names.as_ref(), values.as_ref())?;
        used.check_all_used(names.as_ref(), values.as_ref())
    };
    let text = case.text.as_str();
    let printed = match case.kind {
        Kind::Filter | Kind::Condition => {
            parse_condition(text).and_then(|c| check(c.placeholders()).map(|()| c.to_string()))
        }
        Kind::KeyCondition => {
            parse_key_condition(text).and_then(|c| check(c.placeholders()).map(|()| c.to_string()))
        }
        Kind::Projection => {
            parse_projection(text).and_then(|p| check(p.placeholders()).map(|()| p.to_string()))
        }
        Kind::Update => {
            parse_update(text).and_then(|u| check(u.placeholders()).map(|()| u.to_string()))
        }
    };
    printed.map_err(|e| e.message(case.kind.expr_kind()))
}

/// One case judged both ways.
struct Verdict {
    case: Case,
    printed: Result<String, String>,
    sidecar: Outcome,
    dynamodb: Outcome,
}

impl Verdict {
    async fn judge(world: &World, case: Case) -> Self {
        let printed = parse(&case);
        let sidecar = match &printed {
            Ok(printed) => run(&world.through, &case, printed).await,
            Err(message) => Outcome::Refused {
                code: "ValidationException".into(),
                message: message.clone(),
            },
        };
        let dynamodb = run(&world.direct, &case, &case.text).await;
        Self {
            case,
            printed,
            sidecar,
            dynamodb,
        }
    }

    fn agrees(&self) -> bool {
        self.sidecar.agrees(&self.dynamodb)
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.case)?;
        match &self.printed {
            Ok(printed) => writeln!(
                f,
                "  sidecar: parsed, printed as `{printed}`, through the sidecar: {}",
                self.sidecar
            )?,
            Err(_) => writeln!(f, "  sidecar: the parser {}", self.sidecar)?,
        }
        write!(f, "  DynamoDB Local, as written: {}", self.dynamodb)
    }
}

/// Where the sidecar differs from DynamoDB on purpose: the nesting bound
/// (docs/src/key-prefix.md, "Expressions the sidecar reads"; `src/expr/mod.rs`,
/// `MAX_NESTING`). Judged apart: the parser must still refuse it.
const EXCEPTIONS: &[&str] = &["error_too_deep.txt"];

/// Where the parser keeps to DynamoDB's documented grammar and DynamoDB Local is more
/// lenient (docs/src/key-prefix.md, "Expressions the sidecar reads"): `size` is a reserved
/// word, `size()` takes a document path, and an operand is not wrapped in parentheses. On a
/// prefixed or versioned table the sidecar refuses these (a refusal, never a wrong
/// answer); on other tables requests pass through unparsed. Judged apart, by
/// [`the_documented_differences_are_exactly_these`]: each must still differ, so a parser
/// change that takes one moves it into the corpus.
#[rustfmt::skip] // a table: one case a line
const KNOWN: &[(&str, Kind, &str)] = &[
    // `size` is on DynamoDB's reserved-word list, yet DynamoDB Local takes it bare as an
    // attribute name or map key in every kind, in any case, when no `(` follows.
    ("size as a name", Filter, "size = :n5"),
    ("size as a name", Filter, "Size = :n5"),
    ("size as a name", Filter, "meta.size = :n5"),
    ("size as a name", Filter, "attribute_exists(size)"),
    ("size as a name", Filter, "size(size) > :n0"),
    ("size as a name", Update, "SET size = :n5"),
    ("size as a name", Update, "REMOVE size"),
    ("size as a name", Update, "ADD size :n5"),
    ("size as a name", Projection, "title, size"),
    // DynamoDB Local takes `size()` of a `:value` (string, set, list, map, binary; a
    // number is its operand-type error), where the parser demands a document path.
    ("size of a value", Filter, "size(:s) > :n0"),
    ("size of a value", Filter, "size(:set) = :n0"),
    ("size of a value", Filter, ":n5 BETWEEN size(:list) AND :n50"),
    // DynamoDB Local takes one pair of parentheses around an operand, a function call or a
    // `SET` right-hand side (two pairs are its redundant parentheses).
    ("parenthesized operand", Update, "SET price = (price + :n5)"),
    ("parenthesized operand", Update, "SET price = (:n5)"),
    ("parenthesized operand", Update, "SET price = (price) + :n5"),
    ("parenthesized operand", Update, "SET ratings = list_append((ratings), :list)"),
    ("parenthesized operand", Filter, "(title) = :s"),
    ("parenthesized operand", Filter, "title = (:s)"),
    ("parenthesized operand", Filter, "title IN ((:s))"),
    ("parenthesized operand", Filter, "attribute_exists((title))"),
    ("parenthesized operand", Filter, "(size(title)) > :n0"),
];

/// The whole corpus, less the exceptions.
fn corpus() -> Vec<Case> {
    let mut cases = corpus::fixtures();
    cases.extend(corpus::fuzz_seeds());
    cases.extend(near_misses::near_misses());
    cases.extend(grammar::generated());
    cases.retain(|case| !EXCEPTIONS.contains(&case.origin.as_str()));
    cases
}

fn known() -> Vec<Case> {
    KNOWN
        .iter()
        .map(|(what, kind, text)| Case::new(format!("known: {what}"), *kind, *text))
        .collect()
}

/// The verdicts that disagree, printed for a failure message.
fn disagreements(verdicts: &[Verdict]) -> Vec<String> {
    verdicts
        .iter()
        .filter(|v| !v.agrees())
        .map(ToString::to_string)
        .collect()
}

/// Judges every case, and prints a summary (`--nocapture` shows it).
async fn judge_all(cases: Vec<Case>) -> Vec<Verdict> {
    let started = Instant::now();
    let world = World::start().await;
    let mut verdicts = Vec::new();
    for case in cases {
        verdicts.push(Verdict::judge(&world, case).await);
    }
    let count = |f: &dyn Fn(&Verdict) -> bool| verdicts.iter().filter(|v| f(v)).count();
    eprintln!(
        "{} cases in {:?}: {} taken by both, {} refused by both ({} by the parser, {} of \
         them worded otherwise than by DynamoDB Local), {} disagree",
        verdicts.len(),
        started.elapsed(),
        count(&|v| v.agrees() && !v.dynamodb.is_refused()),
        count(&|v| v.agrees() && v.dynamodb.is_refused()),
        count(&|v| v.agrees() && v.printed.is_err()),
        count(&|v| v.agrees() && v.printed.is_err() && v.sidecar != v.dynamodb),
        count(&|v| !v.agrees()),
    );
    verdicts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_parser_and_dynamodb_local_agree_on_every_expression() {
    let verdicts = judge_all(corpus()).await;
    let disagreements = disagreements(&verdicts);
    assert!(
        disagreements.is_empty(),
        "{} of {} expressions judged differently:\n\n{}",
        disagreements.len(),
        verdicts.len(),
        disagreements.join("\n\n")
    );
}

#[test]
fn the_exceptions_are_still_refused_by_the_parser() {
    let exceptions: Vec<Case> = corpus::fixtures()
        .into_iter()
        .filter(|case| EXCEPTIONS.contains(&case.origin.as_str()))
        .collect();
    assert_eq!(
        exceptions.len(),
        EXCEPTIONS.len(),
        "an exception names no fixture"
    );
    for case in &exceptions {
        assert!(parse(case).is_err(), "no longer an exception:\n{case}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_differences_are_exactly_these() {
    let verdicts = judge_all(known()).await;
    let agreeing: Vec<String> = verdicts
        .iter()
        .filter(|v| v.agrees() || v.dynamodb.is_refused())
        .map(ToString::to_string)
        .collect();
    assert!(
        agreeing.is_empty(),
        "{} of {} documented differences no longer differ as documented (the parser now \
         takes them, or DynamoDB Local refuses them): move them from KNOWN into the corpus \
         and out of docs/src/key-prefix.md:\n\n{}",
        agreeing.len(),
        verdicts.len(),
        agreeing.join("\n\n")
    );
}
