//! What the golden fixtures (`rewrite/tests.rs`, which hold this path to the decoding one)
//! do not show: order kept, bytes untouched where nothing changed, and the answers it
//! leaves to the decoding path.

use std::fmt::Write as _;

use serde_json::{Value, json};

use super::restore;
use crate::config::Config;
use crate::plan::Plan;
use crate::rewrite::RewriteError;
use crate::snapshot::policies;
use crate::wire::{Operation, RequestView};

const CONFIG: &str = r#"
[[regions]]
name = "us-east-1"
endpoint = "http://127.0.0.1:8001"

[[tables]]
name = "Ledger"
partition_key = "k"
key_prefix = "{region}#"
version_attribute = "Version"

[[tables]]
name = "Plain"
partition_key = "k"
"#;

fn plan(operation: Operation, table: &str) -> Plan {
    let config = Config::from_toml_str(CONFIG).unwrap();
    let body = json!({"TableName": table, "Key": {"k": {"S": "a"}}}).to_string();
    let view = RequestView::parse(operation, body.as_bytes()).unwrap();
    Plan::build(&view, &policies(&config, None)).unwrap()
}

fn restored(operation: Operation, answer: &str) -> Option<Result<String, RewriteError>> {
    restore(&plan(operation, "Ledger"), answer.as_bytes())
        .map(|r| r.map(|bytes| String::from_utf8(bytes).unwrap()))
}

#[test]
fn an_item_keeps_its_order_and_its_untouched_bytes() {
    let answer = r#"{"Item":{"z":{"N":"1.50"},"k":{"S":"us-east-1#a"},"__globalscale_write_id":{"S":"w"},"a":{"S":"\u00e9"}},"ConsumedCapacity":{"CapacityUnits":0.5}}"#;
    let answer = answer.replace("__globalscale_write_id", crate::config::WRITE_ID_ATTRIBUTE);
    let got = restored(Operation::GetItem, &answer).unwrap().unwrap();
    assert_eq!(
        got,
        r#"{"Item":{"z":{"N":"1.50"},"k":{"S":"a"},"a":{"S":"\u00e9"}},"ConsumedCapacity":{"CapacityUnits":0.5}}"#
    );
}

#[test]
fn every_item_of_a_page_and_its_last_key() {
    let answer = json!({
        "Items": [{"k": {"S": "us-east-1#a"}}, {"k": {"S": "us-east-1#b"}, "n": {"N": "2"}}],
        "Count": 2,
        "LastEvaluatedKey": {"k": {"S": "us-east-1#b"}},
    })
    .to_string();
    let got: Value =
        serde_json::from_str(&restored(Operation::Query, &answer).unwrap().unwrap()).unwrap();
    assert_eq!(
        got,
        json!({
            "Items": [{"k": {"S": "a"}}, {"k": {"S": "b"}, "n": {"N": "2"}}],
            "Count": 2,
            "LastEvaluatedKey": {"k": {"S": "b"}},
        })
    );
}

#[test]
fn an_item_of_another_region_is_refused_as_the_decoding_path_does() {
    let answer = json!({"Item": {"k": {"S": "eu-west-1#a"}}}).to_string();
    assert!(matches!(
        restored(Operation::GetItem, &answer),
        Some(Err(RewriteError::ForeignItem { .. }))
    ));
}

#[test]
fn an_answer_with_nothing_to_restore_is_returned_as_it_came() {
    for answer in [r"{}", r#"{"ConsumedCapacity":{"TableName":"Ledger"}}"#] {
        assert_eq!(
            restored(Operation::PutItem, answer).unwrap().unwrap(),
            answer
        );
    }
}

#[test]
fn what_it_does_not_cover_is_left_to_the_decoding_path() {
    // A field name with an escape, item collection metrics, something that is not JSON.
    for answer in [
        r#"{"Item":{"\u006b":{"S":"us-east-1#a"}}}"#,
        r#"{"ItemCollectionMetrics":{"ItemCollectionKey":{"k":{"S":"us-east-1#a"}}}}"#,
        r"not json",
    ] {
        assert!(restored(Operation::GetItem, answer).is_none(), "{answer}");
    }
    let batch = plan(Operation::BatchGetItem, "Ledger");
    assert!(restore(&batch, b"{}").is_none());
}

#[test]
fn the_write_id_leaves_valid_json_wherever_it_stands() {
    let id = crate::config::WRITE_ID_ATTRIBUTE;
    let cases = [
        (
            format!(r#"{{"Item":{{ "{id}" : {{"S":"w"}} , "k":{{"S":"us-east-1#a"}}}}}}"#),
            json!({"Item": {"k": {"S": "a"}}}),
        ),
        (
            format!(r#"{{"Item":{{"{id}":{{"S":"w"}}}}}}"#),
            json!({"Item": {}}),
        ),
        (
            format!(
                r#"{{"Item":{{"k":{{"S":"us-east-1#a"}},"n":{{"N":"1"}},"{id}":{{"S":"w"}}}}}}"#
            ),
            json!({"Item": {"k": {"S": "a"}, "n": {"N": "1"}}}),
        ),
    ];
    for (answer, expected) in cases {
        let got = restored(Operation::GetItem, &answer).unwrap().unwrap();
        let got: Value = serde_json::from_str(&got).unwrap_or_else(|e| panic!("{got}: {e}"));
        assert_eq!(got, expected, "{answer}");
    }
}

#[test]
fn a_position_at_another_namespace_is_left_to_the_decoding_path() {
    // Sealing replaces the sort key too, which this path does not read.
    let answer = json!({
        "Items": [],
        "LastEvaluatedKey": {"k": {"S": "eu-west-1#a"}, "s": {"S": "Payroll"}},
    })
    .to_string();
    assert!(restored(Operation::Scan, &answer).is_none());
    let own = json!({"Items": [], "LastEvaluatedKey": {"k": {"S": "us-east-1#a"}}}).to_string();
    assert!(restored(Operation::Scan, &own).is_some());
}

/// The answer as the restore without [`super::plain_edits`] gives it: the same bytes, the
/// same refusal, or the same hand-over to the decoding path.
fn same_as_without_plain_edits(operation: Operation, answer: &str) {
    let ledger = plan(operation, "Ledger");
    let plain = super::restore_as(&ledger, answer.as_bytes(), true);
    let decoded = super::restore_as(&ledger, answer.as_bytes(), false);
    match (plain, decoded) {
        (Some(Ok(plain)), Some(Ok(decoded))) => assert_eq!(
            String::from_utf8(plain).unwrap(),
            String::from_utf8(decoded).unwrap(),
            "{answer}"
        ),
        (Some(Err(plain)), Some(Err(decoded))) => {
            assert_eq!(plain.to_string(), decoded.to_string(), "{answer}");
        }
        (None, None) => {}
        (plain, decoded) => panic!("{answer}: {plain:?} against {decoded:?}"),
    }
}

#[test]
fn the_plain_edits_give_the_bytes_the_decoded_edits_give() {
    let id = crate::config::WRITE_ID_ATTRIBUTE;
    let answers = [
        r#"{"Item":{"k":{"S":"us-east-1#a"},"n":{"N":"1"}}}"#.to_owned(),
        format!(r#"{{"Item":{{"k":{{"S":"us-east-1#a"}},"{id}":{{"S":"w"}},"n":{{"N":"1"}}}}}}"#),
        format!(r#"{{"Item":{{ "{id}" : {{"S":"w"}} , "k" : {{"S":"us-east-1#"}} }}}}"#),
        // Spelled otherwise than `{"S":"..."}`: left to the decoding edit.
        r#"{"Item":{"k":{ "S" : "us-east-1#a" }}}"#.to_owned(),
        r#"{"Item":{"k":{"S":"us-east-1#\u00e9\n\"q\""}}}"#.to_owned(),
        r#"{"Item":{"k":{"S":"us-east-1\u0023a"}}}"#.to_owned(),
        r#"{"Item":{"k":{"S":"us-east-1#a","S":"us-east-1#b"}}}"#.to_owned(),
        r#"{"Item":{"k":{"S":"us-east-1#a"},"k":{"S":"us-east-1#b"}}}"#.to_owned(),
        r#"{"Item":{"k":{"N":"1"}}}"#.to_owned(),
        r#"{"Item":{"k":{"S":"eu-west-1#a"}}}"#.to_owned(),
        r#"{"Item":{"k":{"S":"us-east-1"}}}"#.to_owned(),
        r#"{"Items":[{"k":{"S":"us-east-1#a"}},{"k":{"S":"us-east-1#é"}}],"LastEvaluatedKey":{"k":{"S":"us-east-1#é"}}}"#.to_owned(),
        r#"{"Items":[],"LastEvaluatedKey":{"k":{"S":"eu-west-1#a"},"s":{"S":"x"}}}"#.to_owned(),
    ];
    for answer in &answers {
        for operation in [Operation::GetItem, Operation::Query, Operation::PutItem] {
            same_as_without_plain_edits(operation, answer);
        }
    }
}

proptest::proptest! {
    #[test]
    fn any_stored_key_is_restored_as_the_decoded_edits_restore_it(
        key in "(us-east-1#)?[a-z#\"\\\\\u{e9}\u{1}]{0,6}",
        escaped in proptest::bool::ANY,
    ) {
        let key = serde_json::to_string(&key).unwrap();
        // The same string with every character escaped, to reach the decoding edit too.
        let key = if escaped {
            let plain: String = serde_json::from_str(&key).unwrap();
            let mut units = String::new();
            for unit in plain.encode_utf16() {
                let _ = write!(units, "\\u{unit:04x}");
            }
            format!("\"{units}\"")
        } else {
            key
        };
        let answer = format!(r#"{{"Item":{{"k":{{"S":{key}}},"n":{{"N":"1"}}}}}}"#);
        same_as_without_plain_edits(Operation::GetItem, &answer);
    }
}
