use proptest::prelude::*;
use serde_json::{Map, Value, json};

use super::*;

fn prefix(table: &str, prefix: &str) -> KeyPrefix {
    KeyPrefix {
        table: table.into(),
        attribute: "ItemID".into(),
        prefix: prefix.into(),
    }
}

fn home() -> KeyPrefix {
    prefix("GlobalCatalog", "us-east-1#")
}

fn key(byte: u8) -> LessSafeKey {
    aes_key(&[byte; 32]).unwrap()
}

/// A stored key of another namespace, as an index Query's `LastEvaluatedKey` holds it.
fn foreign() -> Map<String, Value> {
    json!({
        "ItemID": {"S": "us-west-2#alice@corp.example"},
        "Category": {"S": "Payroll"},
        "Name": {"S": "salary-2024"},
    })
    .as_object()
    .unwrap()
    .clone()
}

/// The token a sealed position carries, after the marker.
fn token(shown: &Map<String, Value>) -> String {
    let value = shown["ItemID"]["S"].as_str().unwrap();
    value.strip_prefix(MARKER).unwrap().to_owned()
}

fn sealed_token() -> String {
    token(&seal_with(&key(1), [9; NONCE_LEN], &home(), &foreign()).unwrap())
}

#[test]
fn a_sealed_position_opens_to_the_stored_key() {
    let shown = seal_with(&key(1), [9; NONCE_LEN], &home(), &foreign()).unwrap();
    assert_eq!(shown.len(), 1, "only the partition key is shown: {shown:?}");
    assert_eq!(
        open_with(&key(1), &home(), &token(&shown)).unwrap(),
        foreign()
    );
    // And with the process key and a fresh nonce, as the steps use it.
    let shown = seal(&home(), &foreign()).unwrap();
    assert_eq!(open(&home(), &token(&shown)).unwrap(), foreign());
}

#[test]
fn the_token_shows_nothing_of_the_stored_key() {
    let shown = Value::Object(seal(&home(), &foreign()).unwrap()).to_string();
    for text in [
        "us-west-2",
        "alice",
        "corp.example",
        "Payroll",
        "Category",
        "salary",
        "Name",
    ] {
        assert!(!shown.contains(text), "{text} in {shown}");
    }
}

#[test]
fn each_seal_has_its_own_nonce() {
    let a = seal(&home(), &foreign()).unwrap();
    let b = seal(&home(), &foreign()).unwrap();
    assert_ne!(a, b);
}

#[test]
fn a_changed_byte_anywhere_is_refused() {
    let bytes = URL_SAFE_NO_PAD.decode(sealed_token()).unwrap();
    for at in 0..bytes.len() {
        let mut changed = bytes.clone();
        changed[at] ^= 0x01;
        let changed = URL_SAFE_NO_PAD.encode(changed);
        assert!(
            matches!(
                open_with(&key(1), &home(), &changed),
                Err(PositionError::Invalid)
            ),
            "byte {at}"
        );
    }
}

#[test]
fn a_changed_or_cut_character_is_refused() {
    let token = sealed_token();
    for at in 0..token.len() {
        let mut chars: Vec<char> = token.chars().collect();
        chars[at] = if chars[at] == 'A' { 'B' } else { 'A' };
        let changed: String = chars.into_iter().collect();
        assert!(open_with(&key(1), &home(), &changed).is_err(), "char {at}");
        assert!(
            open_with(&key(1), &home(), &token[..at]).is_err(),
            "cut at {at}"
        );
    }
    assert!(open_with(&key(1), &home(), &format!("{token}A")).is_err());
}

#[test]
fn a_token_opens_only_for_its_table_namespace_and_key() {
    let token = sealed_token();
    for other in [
        prefix("OtherTable", "us-east-1#"),
        prefix("GlobalCatalog", "eu-central-1#"),
        // The same bytes split differently between table and prefix.
        prefix("GlobalCatalogu", "s-east-1#"),
    ] {
        assert!(open_with(&key(1), &other, &token).is_err(), "{other:?}");
    }
    // Another process's key: what a position looks like after a restart.
    assert!(open_with(&key(2), &home(), &token).is_err());
}

#[test]
fn a_token_of_no_stored_key_is_refused() {
    // Sealed correctly, but not over a JSON object: only the sidecar seals, so this is
    // defence in depth against a bug, not a client.
    let mut sealed = b"[1]".to_vec();
    let nonce = [3; NONCE_LEN];
    key(1)
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(&associated_data(&home())),
            &mut sealed,
        )
        .unwrap();
    let token = URL_SAFE_NO_PAD.encode([nonce.as_slice(), &sealed].concat());
    assert!(open_with(&key(1), &home(), &token).is_err());
}

proptest! {
    /// Whatever a client writes after the marker, it is refused and nothing panics.
    #[test]
    fn garbage_is_refused(text in any::<String>(), bytes in proptest::collection::vec(any::<u8>(), 0..96)) {
        prop_assert!(open(&home(), &text).is_err());
        prop_assert!(open(&home(), &URL_SAFE_NO_PAD.encode(&bytes)).is_err());
    }

    /// Any stored key comes back whole.
    #[test]
    fn any_stored_key_round_trips(
        attributes in proptest::collection::btree_map("[a-zA-Z]{1,8}", any::<String>(), 1..5),
    ) {
        let stored: Map<String, Value> = attributes
            .into_iter()
            .map(|(name, value)| (name, json!({"S": value})))
            .collect();
        let shown = seal(&home(), &stored).unwrap();
        prop_assert_eq!(open(&home(), &token(&shown)).unwrap(), stored);
    }
}
