use proptest::prelude::*;
use serde_json::{Map, Value, json};

use super::*;

fn prefix() -> KeyPrefix {
    KeyPrefix {
        table: "T".into(),
        attribute: "pk".into(),
        prefix: "us-east-1#".into(),
    }
}

proptest! {
    /// Prefixing a key and stripping it again gives the key back, whatever it holds.
    #[test]
    fn prefix_then_strip_is_the_identity(
        pk in any::<String>(),
        other in proptest::collection::btree_map("[a-zA-Z]{1,6}", any::<String>(), 0..4),
        site in prop_oneof![Just(Site::Key), Just(Site::Item), Just(Site::StartKey)],
    ) {
        prop_assume!(!pk.starts_with(position::MARKER));
        let mut item: Map<String, Value> = other
            .into_iter()
            .filter(|(name, _)| name != "pk")
            .map(|(name, value)| (name, json!({"S": value})))
            .collect();
        item.insert("pk".into(), json!({"S": pk}));
        let original = item.clone();
        add_prefix(&prefix(), site, &mut item).unwrap();
        prop_assert!(item["pk"]["S"].as_str().unwrap().starts_with("us-east-1#"));
        strip_prefix(&prefix(), site, &mut item).unwrap();
        prop_assert_eq!(item, original);
    }
}

/// A position at another namespace's item, with a sort key and an index key beside it.
fn foreign_position() -> Map<String, Value> {
    json!({
        "pk": {"S": "eu-central-1#alice"},
        "sk": {"S": "Payroll"},
        "Email": {"S": "alice@corp.example"},
    })
    .as_object()
    .unwrap()
    .clone()
}

#[test]
fn a_stored_key_of_another_namespace_is_only_ever_a_sealed_position() {
    let stored = foreign_position();
    assert!(strip_prefix(&prefix(), Site::Item, &mut stored.clone()).is_err());
    assert!(strip_prefix(&prefix(), Site::Key, &mut stored.clone()).is_err());
    let mut shown = stored.clone();
    strip_prefix(&prefix(), Site::StartKey, &mut shown).unwrap();
    assert_eq!(shown.keys().collect::<Vec<_>>(), ["pk"]);
    let text = Value::Object(shown.clone()).to_string();
    for secret in ["eu-central-1", "alice", "Payroll", "corp.example", "Email"] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
    // Handed back as a start key, it is the whole stored key again, whatever the client
    // put beside it; as a key, it is prefixed like any other value, so it can never
    // address the other namespace.
    let mut start = shown.clone();
    start.insert("sk".into(), json!({"S": "anything"}));
    add_prefix(&prefix(), Site::StartKey, &mut start).unwrap();
    assert_eq!(start, stored);
    let mut as_key = shown.clone();
    add_prefix(&prefix(), Site::Key, &mut as_key).unwrap();
    let value = shown["pk"]["S"].as_str().unwrap();
    assert_eq!(as_key["pk"]["S"], format!("us-east-1#{value}"));
}

#[test]
fn a_position_that_does_not_open_is_refused_like_a_bad_starting_key() {
    let mut shown = foreign_position();
    strip_prefix(&prefix(), Site::StartKey, &mut shown).unwrap();
    let value = shown["pk"]["S"].as_str().unwrap().to_owned();
    let elsewhere = KeyPrefix {
        table: "U".into(),
        ..prefix()
    };
    let cut = &value[..value.len() - 4];
    let unsealed = format!("{}eu-central-1#alice", position::MARKER);
    for (owner, value) in [
        (&elsewhere, value.as_str()),
        (&prefix(), cut),
        (&prefix(), &unsealed),
    ] {
        let mut start = Map::from_iter([("pk".to_owned(), json!({"S": value}))]);
        match add_prefix(owner, Site::StartKey, &mut start) {
            Err(RewriteError::Refused(message)) => {
                assert!(
                    message.starts_with("The provided starting key is invalid"),
                    "{message}"
                );
            }
            other => panic!("{value:?}: {other:?}"),
        }
    }
}

#[test]
fn a_position_in_the_namespace_stays_a_plain_key() {
    let stored = json!({"pk": {"S": "us-east-1#bob"}, "sk": {"S": "x"}});
    let mut shown = stored.as_object().unwrap().clone();
    strip_prefix(&prefix(), Site::StartKey, &mut shown).unwrap();
    assert_eq!(
        Value::Object(shown.clone()),
        json!({"pk": {"S": "bob"}, "sk": {"S": "x"}})
    );
    add_prefix(&prefix(), Site::StartKey, &mut shown).unwrap();
    assert_eq!(Value::Object(shown), stored);
}
