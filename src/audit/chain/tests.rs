use super::*;

fn record(event: &str, value: &str) -> Bytes {
    Bytes::from(
        json!({"ItemKey": {"S": "T#a"}, "EventId": {"S": event}, "Outcome": {"S": "accepted"},
               "NewImage": {"M": {"v": {"S": value}}}})
        .to_string(),
    )
}

/// A chain of `n` records, as stored.
fn chain(n: usize) -> Vec<Map<String, Value>> {
    let mut assignments = Assignments::new("01CHAIN".into());
    (1..=n)
        .map(|i| {
            let event = format!("e{i:02}");
            let linked = assignments.link(&event, &record(&event, "x")).unwrap();
            serde_json::from_slice(&linked).unwrap()
        })
        .collect()
}

#[test]
fn an_honest_trail_verifies_clean_in_any_order() {
    let mut records = chain(5);
    assert_eq!(verify(&records), Vec::new());
    records.reverse();
    assert_eq!(verify(&records), Vec::new());
    // A range that starts mid-chain is judged from its first record on.
    assert_eq!(verify(&records[..3]), Vec::new());
}

#[test]
fn a_deleted_record_is_a_gap() {
    let mut records = chain(6);
    records.remove(2);
    records.remove(2);
    assert_eq!(
        verify(&records),
        vec![Finding::Gap {
            chain: "01CHAIN".into(),
            from: 3,
            to: 4
        }]
    );
}

#[test]
fn an_altered_record_no_longer_matches_its_hash() {
    let mut records = chain(4);
    records[1].insert("NewImage".into(), json!({"M": {"v": {"S": "changed"}}}));
    assert_eq!(
        verify(&records),
        vec![Finding::Altered {
            chain: "01CHAIN".into(),
            seq: 2,
            event: "e02".into()
        }]
    );
}

#[test]
fn a_forged_record_breaks_the_link_or_takes_a_place_twice() {
    // Changed and given a fresh hash: its own hash checks, the next record's link does not.
    let mut records = chain(4);
    records[1].insert("Outcome".into(), json!({"S": "unknown"}));
    let rehashed = digest(&records[1]);
    records[1].insert(HASH.into(), json!({ "S": rehashed }));
    assert_eq!(
        verify(&records),
        vec![Finding::Unlinked {
            chain: "01CHAIN".into(),
            seq: 3,
            event: "e03".into()
        }]
    );
    // Inserted with a place already taken.
    let mut records = chain(3);
    let mut forged = records[1].clone();
    forged.insert("EventId".into(), json!({"S": "forged"}));
    let hash = digest(&forged);
    forged.insert(HASH.into(), json!({ "S": hash }));
    records.push(forged);
    assert!(verify(&records).contains(&Finding::Duplicate {
        chain: "01CHAIN".into(),
        seq: 2
    }));
    // Written with no chain at all.
    let bare: Map<String, Value> = serde_json::from_slice(&record("bare", "x")).unwrap();
    assert_eq!(
        verify(&[bare]),
        vec![Finding::Unchained {
            event: "bare".into()
        }]
    );
}

#[test]
fn a_resend_keeps_its_place_and_a_stored_record_frees_it() {
    let mut assignments = Assignments::new("01CHAIN".into());
    let first = assignments.link("e1", &record("e1", "x")).unwrap();
    let second = assignments.link("e2", &record("e2", "x")).unwrap();
    assert_eq!(assignments.link("e1", &record("e1", "x")).unwrap(), first);
    assignments.stored(&["e1".into()]);
    assert_eq!(assignments.linked.len(), 1);
    // Written out and read back (a restart), the assignments go on where they were.
    let text = serde_json::to_string(&assignments).unwrap();
    let mut read: Assignments = serde_json::from_str(&text).unwrap();
    assert_eq!(read.link("e2", &record("e2", "x")).unwrap(), second);
    let third = read.link("e3", &record("e3", "x")).unwrap();
    let third: Map<String, Value> = serde_json::from_slice(&third).unwrap();
    assert_eq!(third[CHAIN_SEQ]["N"], "3");
}

#[test]
fn the_hash_of_the_shipped_text_is_the_digest_of_the_stored_item() {
    // Escapes, non-ASCII, control characters, nested lists and maps, numbers as text: the
    // link hashes the record's text as it is, `verify` the item read back.
    let awkward = "quote \" backslash \\ tab \t nul \u{0} ünïcode ✓ 😀 </script>";
    let record = Bytes::from(
        serde_json::to_vec(&json!({
            "EventId": {"S": "e01"},
            "ItemKey": {"S": awkward},
            "NewImage": {"M": {"z": {"L": [{"N": "1e-7"}, {"BOOL": false}, {"NULL": true}]},
                               "a": {"M": {"y": {"SS": ["b", "a"]}, "x": {"S": awkward}}}}},
            "Hash": {"S": "a hash sent in by mistake is replaced"},
        }))
        .unwrap(),
    );
    let mut head = Head::new("01CHAIN".into());
    let linked = head.link(&record).unwrap();
    assert_eq!(linked.event, "e01");
    let stored: Map<String, Value> = serde_json::from_slice(&linked.record).unwrap();
    let hash = stored[HASH]["S"].as_str().unwrap();
    assert_eq!(hash, digest(&stored));
    assert_eq!(head.prev, hash);
    assert_eq!(verify(&[stored]), Vec::new());
}
