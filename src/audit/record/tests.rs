use serde_json::{Value, json};
use ulid::Ulid;

use super::*;
use std::sync::Arc;

use crate::plan::{Audited, KeyPrefix, Versioned};
use crate::wire::Operation;

fn plan(operation: Operation, client: Operation) -> Plan {
    Plan {
        operation,
        client_operation: client,
        tables: vec!["Cat".into(), "Other".into()],
        action_tables: Vec::new(),
        prefixes: smallvec::smallvec![Arc::new(KeyPrefix {
            table: "Cat".into(),
            attribute: "pk".into(),
            prefix: "us-east-1#".into(),
        })],
        versions: smallvec::smallvec![Arc::new(Versioned {
            table: "Cat".into(),
            attribute: "Version".into(),
        })],
        audits: vec![Audited {
            table: "Cat".into(),
            partition_key: "pk".into(),
            sort_key: Some("sk".into()),
        }],
        atomic_audit: false,
        spellings: Vec::new(),
        statements_read: false,
        expressions: crate::expr::Expressions::default(),
    }
}

fn facts(outcome: Outcome, images: AuditImages) -> Facts<'static> {
    Facts {
        operation: "PutItem",
        region: "us-west-2",
        principal: "AKIDCLIENT",
        principal_verified: false,
        request_id: Some("REQ1"),
        outcome,
        images,
    }
}

fn build(
    plan: &Plan,
    sent: &Value,
    answer: Option<&Value>,
    facts: &Facts<'_>,
) -> Vec<Map<String, Value>> {
    let mut ms = 1_790_000_000_000;
    let mut next = || {
        ms += 1;
        Ulid::from_parts(ms, 7)
    };
    let built = records(
        plan,
        sent.as_object().unwrap(),
        answer.and_then(Value::as_object),
        facts,
        &mut next,
    );
    built
        .iter()
        .map(|r| {
            let item: Map<String, Value> = serde_json::from_slice(r.json()).unwrap();
            // Written straight from the request, the JSON is still what a `Map` of the same
            // attributes writes, byte for byte; and atomic mode's item is the same record.
            assert_eq!(serde_json::to_vec(&item).unwrap(), r.json());
            assert_eq!(r.item_in(facts.region), item);
            item
        })
        .collect()
}

#[test]
fn a_put_records_its_stored_key_client_key_version_and_images() {
    let plan = plan(Operation::PutItem, Operation::PutItem);
    let sent = json!({
        "TableName": "Cat",
        "Item": {
            "pk": {"S": "us-east-1#item-1"}, "sk": {"S": "books"},
            "Version": {"N": "2"}, "title": {"S": "new"},
            "__globalscale_write": {"S": "w1"}
        },
        "ReturnValues": "ALL_OLD"
    });
    let answer = json!({ "Attributes": {
        "pk": {"S": "us-east-1#item-1"}, "sk": {"S": "books"},
        "Version": {"N": "1"}, "title": {"S": "old"},
        "__globalscale_write": {"S": "w0"}
    }});
    let records = build(
        &plan,
        &sent,
        Some(&answer),
        &facts(Outcome::Accepted, AuditImages::NewAndOld),
    );
    assert_eq!(records.len(), 1);
    let r = Value::Object(records[0].clone());
    assert_eq!(r["ItemKey"]["S"], "Cat#us-east-1#item-1#books");
    assert_eq!(r["EventId"]["S"].as_str().unwrap().len(), 26);
    assert_eq!(r["Table"]["S"], "Cat");
    assert_eq!(r["Operation"]["S"], "PutItem");
    assert_eq!(r["Region"]["S"], "us-west-2");
    assert_eq!(r["Outcome"]["S"], "accepted");
    assert_eq!(r["Principal"]["S"], "AKIDCLIENT");
    assert_eq!(r["RequestId"]["S"], "REQ1");
    assert_eq!(r["Timestamp"]["S"], "2026-09-21T14:13:20.001Z");
    assert_eq!(
        r["Key"]["M"],
        json!({"pk": {"S": "item-1"}, "sk": {"S": "books"}})
    );
    assert_eq!(r["Version"], json!({"N": "2"}));
    assert_eq!(r["NewImage"]["M"]["pk"], json!({"S": "item-1"}));
    assert_eq!(r["NewImage"]["M"]["title"], json!({"S": "new"}));
    assert!(r["NewImage"]["M"].get("__globalscale_write").is_none());
    assert_eq!(r["OldImage"]["M"]["title"], json!({"S": "old"}));
    assert!(r.get("ImagesDropped").is_none());
}

#[test]
fn images_follow_the_config() {
    let plan = plan(Operation::PutItem, Operation::PutItem);
    let sent = json!({"TableName": "Cat", "Item": {"pk": {"S": "a"}, "sk": {"S": "b"}}});
    let none = build(
        &plan,
        &sent,
        Some(&json!({})),
        &facts(Outcome::Accepted, AuditImages::None),
    );
    assert!(none[0].get("NewImage").is_none() && none[0].get("OldImage").is_none());
    // Version comes from the image whether or not images are kept: none here.
    assert!(none[0].get("Version").is_none());
    let new = build(
        &plan,
        &sent,
        Some(&json!({})),
        &facts(Outcome::Accepted, AuditImages::New),
    );
    assert!(new[0].get("NewImage").is_some() && new[0].get("OldImage").is_none());
}

#[test]
fn a_batch_records_what_was_processed_on_audited_tables_only() {
    let plan = plan(Operation::BatchWriteItem, Operation::BatchWriteItem);
    let put = |k: &str| json!({"PutRequest": {"Item": {"pk": {"S": k}, "sk": {"S": "s"}}}});
    let sent = json!({ "RequestItems": {
        "Cat": [put("a"), put("b"), {"DeleteRequest": {"Key": {"pk": {"S": "c"}, "sk": {"S": "s"}}}}],
        "Other": [put("x")]
    }});
    let answer = json!({ "UnprocessedItems": { "Cat": [put("b")] } });
    let records = build(
        &plan,
        &sent,
        Some(&answer),
        &facts(Outcome::Accepted, AuditImages::New),
    );
    let keys: Vec<&str> = records
        .iter()
        .map(|r| r["ItemKey"]["S"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["Cat#a#s", "Cat#c#s"]);
    assert!(
        records[1].get("NewImage").is_none(),
        "a delete has no new image"
    );
    let ids: Vec<&str> = records
        .iter()
        .map(|r| r["EventId"]["S"].as_str().unwrap())
        .collect();
    assert!(ids[0] < ids[1], "event ids are time-ordered");
}

#[test]
fn a_transaction_records_its_writes_not_its_checks_and_an_unknown_outcome_says_so() {
    let plan = plan(Operation::TransactWriteItems, Operation::TransactWriteItems);
    let key = |k: &str| json!({"pk": {"S": k}, "sk": {"S": "s"}});
    let sent = json!({ "TransactItems": [
        {"ConditionCheck": {"TableName": "Cat", "Key": key("a")}},
        {"Update": {"TableName": "Cat", "Key": key("b"), "UpdateExpression": "SET x = :x"}},
        {"Delete": {"TableName": "Cat", "Key": key("c")}},
    ]});
    let records = build(
        &plan,
        &sent,
        None,
        &facts(Outcome::Unknown, AuditImages::NewAndOld),
    );
    assert_eq!(records.len(), 2);
    assert_eq!(records[0]["ItemKey"]["S"], "Cat#b#s");
    assert_eq!(records[1]["Outcome"]["S"], "unknown");
}

#[test]
fn an_image_too_large_for_an_item_is_dropped_with_a_marker_never_the_record() {
    let plan = plan(Operation::PutItem, Operation::PutItem);
    let big = "x".repeat(300 * 1024);
    let sent = json!({"TableName": "Cat", "Item": {"pk": {"S": "a"}, "sk": {"S": "b"}, "blob": {"S": big}}, "ReturnValues": "ALL_OLD"});
    let answer = json!({"Attributes": {"pk": {"S": "a"}, "sk": {"S": "b"}, "blob": {"S": big}}});
    let records = build(
        &plan,
        &sent,
        Some(&answer),
        &facts(Outcome::Accepted, AuditImages::NewAndOld),
    );
    let r = &records[0];
    assert!(r.get("OldImage").is_none());
    assert!(r.get("NewImage").is_some(), "only as much as needed goes");
    assert_eq!(r["ImagesDropped"], json!({"SS": ["OldImage"]}));
    assert!(serde_json::to_vec(r).unwrap().len() <= MAX_RECORD_BYTES);
}

#[test]
fn a_key_is_written_in_name_order_without_its_prefix() {
    let mut plan = plan(Operation::DeleteItem, Operation::DeleteItem);
    plan.audits[0].sort_key = Some("Assigned".into());
    let sent =
        json!({"TableName": "Cat", "Key": {"pk": {"S": "us-east-1#a"}, "Assigned": {"N": "1"}}});
    let records = build(
        &plan,
        &sent,
        Some(&json!({})),
        &facts(Outcome::Accepted, AuditImages::NewAndOld),
    );
    assert_eq!(records[0]["ItemKey"]["S"], "Cat#us-east-1#a#1");
    assert_eq!(
        records[0]["Key"]["M"],
        json!({"Assigned": {"N": "1"}, "pk": {"S": "a"}})
    );
}

fn put_of(pk: &str, sk: &str) -> Value {
    json!({"TableName": "Cat", "Item": {"pk": {"S": pk}, "sk": {"S": sk}}})
}

#[test]
fn item_keys_escape_the_separator_behind_the_prefix() {
    let plan = plan(Operation::PutItem, Operation::PutItem);
    let facts = facts(Outcome::Accepted, AuditImages::None);
    let key = |pk: &str, sk: &str| {
        let records = build(&plan, &put_of(pk, sk), Some(&json!({})), &facts);
        records[0]["ItemKey"]["S"].as_str().unwrap().to_owned()
    };
    let one = key("us-east-1#a#b", "c");
    let two = key("us-east-1#a", "b#c");
    assert_ne!(one, two);
    // The prefix is the config's: left as it is, so plain keys read as before.
    assert_eq!(one, r"Cat#us-east-1#a\#b#c");
    assert_eq!(key("us-east-1#a", "b"), "Cat#us-east-1#a#b");
}

#[test]
fn a_key_too_long_for_the_audit_table_is_stored_hashed_with_the_full_key_beside() {
    let plan = plan(Operation::PutItem, Operation::PutItem);
    let facts = facts(Outcome::Accepted, AuditImages::New);
    let pk = format!("us-east-1#{}", "p".repeat(2000));
    let sk = "s".repeat(1000);
    let sent = put_of(&pk, &sk);
    let records = build(&plan, &sent, Some(&json!({})), &facts);
    let r = &records[0];
    let item_key = r["ItemKey"]["S"].as_str().unwrap();
    assert!(item_key.len() <= item_key::MAX_PARTITION_KEY_BYTES);
    assert!(item_key.starts_with("Cat\\sha256:"), "{item_key}");
    let full = r["FullItemKey"]["S"].as_str().unwrap();
    assert_eq!(full, format!("Cat#{pk}#{sk}"));
    // Everything else means what it meant: the client's key, the image.
    assert_eq!(r["Key"]["M"]["sk"]["S"], sk.as_str());
    assert!(r.contains_key("NewImage"));
    assert_eq!(check(&plan, sent.as_object().unwrap()), Ok(()));
}

#[test]
fn check_refuses_only_a_record_too_large_without_its_images() {
    let plan = plan(Operation::PutItem, Operation::PutItem);
    // Images are left out to fit, so a large item is no reason.
    let mut sent = put_of("us-east-1#a", "b");
    sent["Item"]["blob"] = json!({"S": "x".repeat(MAX_RECORD_BYTES)});
    assert_eq!(check(&plan, sent.as_object().unwrap()), Ok(()));
    // A key no record can hold (DynamoDB refuses it too, but not before it is sent).
    let huge = put_of("us-east-1#a", &"k".repeat(MAX_RECORD_BYTES));
    let refused = check(&plan, huge.as_object().unwrap()).unwrap_err();
    assert_eq!(refused.table, "Cat");
    assert!(refused.bytes > MAX_RECORD_BYTES);
    assert!(refused.to_string().contains("audit"), "{refused}");
}
