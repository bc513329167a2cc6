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
    /// Prefixing a key and stripping it again gives the key back, whatever it holds,
    /// foreign positions included.
    #[test]
    fn prefix_then_strip_is_the_identity(
        pk in any::<String>(),
        other in proptest::collection::btree_map("[a-zA-Z]{1,6}", any::<String>(), 0..4),
        site in prop_oneof![Just(Site::Key), Just(Site::Item), Just(Site::StartKey)],
    ) {
        let mut item: Map<String, Value> = other
            .into_iter()
            .filter(|(name, _)| name != "pk")
            .map(|(name, value)| (name, json!({"S": value})))
            .collect();
        item.insert("pk".into(), json!({"S": pk}));
        let original = item.clone();
        add_prefix(&prefix(), site, &mut item).unwrap();
        prop_assert!(item["pk"]["S"].as_str().unwrap().starts_with("us-east-1#")
            || (site == Site::StartKey && pk.starts_with(FOREIGN_POSITION)));
        strip_prefix(&prefix(), site, &mut item).unwrap();
        if !(site == Site::StartKey && pk.starts_with(FOREIGN_POSITION)) {
            prop_assert_eq!(item, original);
        }
    }
}

#[test]
fn a_stored_key_of_another_namespace_is_only_ever_a_position() {
    let mut key = Map::from_iter([("pk".to_owned(), json!({"S": "eu-central-1#a"}))]);
    assert!(strip_prefix(&prefix(), Site::Item, &mut key.clone()).is_err());
    assert!(strip_prefix(&prefix(), Site::Key, &mut key.clone()).is_err());
    strip_prefix(&prefix(), Site::StartKey, &mut key).unwrap();
    let shown = key["pk"]["S"].as_str().unwrap().to_owned();
    assert_eq!(shown, format!("{FOREIGN_POSITION}eu-central-1#a"));
    // Handed back as a start key, it is the stored key again; as a key, it is prefixed like
    // any other value, so it can never address the other namespace.
    let mut start = key.clone();
    add_prefix(&prefix(), Site::StartKey, &mut start).unwrap();
    assert_eq!(start["pk"]["S"], "eu-central-1#a");
    let mut as_key = key;
    add_prefix(&prefix(), Site::Key, &mut as_key).unwrap();
    assert_eq!(as_key["pk"]["S"], format!("us-east-1#{shown}"));
}
