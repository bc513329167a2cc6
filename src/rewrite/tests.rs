//! The golden fixtures under `tests/fixtures/rewrite/`, each run through the lazy view, the
//! plan and every step, both ways. A sealed position is shown as `<sealed>` (see [`unseal`]).

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::*;
use crate::config::Config;
use crate::snapshot::policies;
use crate::wire::{Operation, RequestView};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rewrite")
}

fn read_json(path: &Path) -> Option<Value> {
    let text = std::fs::read_to_string(path).ok()?;
    Some(serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

/// What a case expects: a body, or an error whose message holds this text.
fn check(case: &str, stage: &str, result: Result<Value, String>, expected: &Value) {
    match (result, expected.get("error").and_then(Value::as_str)) {
        (Ok(got), None) => assert_eq!(&got, expected, "{case}: {stage}"),
        (Err(message), Some(part)) => {
            assert!(message.contains(part), "{case}: {stage}: {message}");
        }
        (Ok(got), Some(part)) => {
            panic!("{case}: {stage}: wanted an error with {part:?}, got {got}")
        }
        (Err(message), None) => panic!("{case}: {stage}: {message}"),
    }
}

/// The request as the proxy sends it when no audit record is built from it: decoded whole,
/// or lean for a PutItem. Whether it went lean, and the body as JSON.
fn as_sent(
    operation: Operation,
    bytes: &str,
    policies: &crate::snapshot::Policies,
    ctx: &RequestCtx,
) -> (bool, Result<Value, String>) {
    let view = match RequestView::parse(operation, bytes.as_bytes()) {
        Ok(view) => view,
        Err(e) => return (false, Err(e.to_string())),
    };
    let mut lean = false;
    let sent = Plan::build(&view, policies).and_then(|mut plan| {
        let mut decoded = Decoded::of(&view, &plan, true)?;
        lean = matches!(decoded, Decoded::Lean(_));
        request(&mut plan, decoded.document_mut(), ctx)?;
        decoded.to_vec()
    });
    let sent = sent.map(|b| serde_json::from_slice(&b).expect("sent: JSON"));
    (lean, sent.map_err(|e| e.to_string()))
}

/// Runs one case; whether its request was decoded lean, and whether its answer was restored
/// without decoding as well.
fn run_case(dir: &Path) -> (bool, bool) {
    let case = dir.file_name().and_then(|n| n.to_str()).unwrap_or("?");
    let config_text = std::fs::read_to_string(dir.join("config.toml"))
        .or_else(|_| std::fs::read_to_string(fixtures().join("config.toml")))
        .expect("config.toml");
    let config = Config::from_toml_str(&config_text).expect("config");
    let policies = policies(&config, None);
    let input = read_json(&dir.join("request.json")).expect("request.json");
    let operation = Operation::from_name(input["operation"].as_str().expect("operation"));
    let bytes = input["body"].to_string();
    let ctx = RequestCtx {
        idempotency_token: "token-0".into(),
        write_id: "write-0".into(),
    };
    let planned = RequestView::parse(operation.clone(), bytes.as_bytes()).and_then(|view| {
        let mut plan = Plan::build(&view, &policies)?;
        let mut body = view.to_map()?;
        request(&mut plan, &mut body, &ctx)?;
        Ok((plan, body))
    });
    let expected = read_json(&dir.join("expected.json")).expect("expected.json");
    let result = planned
        .as_ref()
        .map(|(_, body)| Value::Object(body.clone()));
    check(
        case,
        "request",
        result.map_err(ToString::to_string),
        &expected,
    );
    let (lean, sent) = as_sent(operation, &bytes, &policies, &ctx);
    check(case, "request as sent", sent, &expected);
    let Some(Value::Object(mut answer)) = read_json(&dir.join("answer.json")) else {
        return (lean, false);
    };
    let Ok((plan, _)) = planned else {
        return (lean, false);
    };
    let bytes = Value::Object(answer.clone()).to_string();
    let stored = answer.get("LastEvaluatedKey").cloned();
    let restored = restore(&plan, &mut answer).map(|()| unseal(&plan, stored.as_ref(), answer));
    let expected = read_json(&dir.join("restored.json")).expect("restored.json");
    check(
        case,
        "restore",
        restored.map_err(|e| e.to_string()),
        &expected,
    );
    // The path that restores without decoding must agree wherever it applies.
    let Some(raw) = raw_answer::restore(&plan, bytes.as_bytes()) else {
        return (lean, false);
    };
    let raw = raw.map(|b| serde_json::from_slice::<Value>(&b).expect("raw restore: JSON"));
    check(
        case,
        "raw restore",
        raw.map_err(|e| e.to_string()),
        &expected,
    );
    (lean, true)
}

/// The answer with a sealed `LastEvaluatedKey`, once checked to open to the stored one, shown
/// as `{"<partition key>": {"S": "<sealed>"}}`: its nonce is random, so no fixture could
/// hold the token itself.
fn unseal(plan: &Plan, stored: Option<&Value>, mut answer: Map<String, Value>) -> Value {
    let prefix = plan.tables.first().and_then(|t| plan.prefix_of(t));
    let shown = answer
        .get_mut("LastEvaluatedKey")
        .and_then(Value::as_object_mut);
    if let (Some(prefix), Some(shown)) = (prefix, shown)
        && let Some(token) = shown
            .get(&prefix.attribute)
            .and_then(|v| v["S"].as_str())
            .and_then(|v| v.strip_prefix(key_prefix::position::MARKER))
    {
        let opened = key_prefix::position::open(prefix, token).expect("a position that opens");
        assert_eq!(Some(&Value::Object(opened)), stored, "the sealed position");
        shown.insert(
            prefix.attribute.clone(),
            serde_json::json!({"S": "<sealed>"}),
        );
    }
    Value::Object(answer)
}

#[test]
fn golden_fixtures() {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(fixtures())
        .expect("tests/fixtures/rewrite")
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.is_dir())
        .collect();
    cases.sort();
    assert!(cases.len() >= 20, "only {} cases", cases.len());
    let runs: Vec<(bool, bool)> = cases.iter().map(|case| run_case(case)).collect();
    let lean = runs.iter().filter(|(lean, _)| *lean).count();
    let raw = runs.iter().filter(|(_, raw)| *raw).count();
    assert!(lean >= 4, "only {lean} requests were decoded lean");
    assert!(
        raw >= 6,
        "only {raw} answers took the path without decoding"
    );
}
