use super::*;

fn record(event: &str, outcome: &str) -> Bytes {
    Bytes::from(
        json!({"ItemKey": {"S": "T#a"}, "EventId": {"S": event}, "Outcome": {"S": outcome}})
            .to_string(),
    )
}

fn check() -> Check {
    Check {
        table: "T".into(),
        key: json!({"k": {"S": "us-east-1#a"}})
            .as_object()
            .cloned()
            .unwrap(),
        version_attribute: "Version".into(),
        version: "4".into(),
        write_id_attribute: "GsWriteId".into(),
        write_id: "w-1".into(),
    }
}

fn id(n: u64) -> RecordId {
    RecordId::for_tests(n)
}

#[test]
fn frames_read_back_as_written() {
    let plain = record("e0", "accepted");
    assert_eq!(read(&plain), Some(Frame::Record(plain.clone())));
    let intended = intent(&record("e1", "unknown"), Some(&check()));
    assert_eq!(
        read(&intended),
        Some(Frame::Intent {
            event: "e1".into(),
            record: record("e1", "unknown"),
            check: Some(check()),
        })
    );
    let settle = settled(&[record("e1", "accepted"), record("e2", "accepted")]);
    assert_eq!(
        read(&settle),
        Some(Frame::Settled(vec![
            ("e1".into(), record("e1", "accepted")),
            ("e2".into(), record("e2", "accepted")),
        ]))
    );
    let cancel = cancelled(&["e3".into()]);
    assert_eq!(read(&cancel), Some(Frame::Cancelled(vec!["e3".into()])));
    assert_eq!(read(&Bytes::from_static(b"Xnonsense")), None);
    assert_eq!(read(&Bytes::from_static(b"I{not json")), None);
}

#[test]
fn settled_intents_ship_cancelled_ones_do_not_and_live_ones_wait() {
    let mut settlements = Settlements::default();
    settlements.settle(&[("e1".into(), record("e1", "accepted"))]);
    settlements.cancel(&["e2".into()]);
    let window = vec![
        (id(10), record("e0", "accepted")),
        (id(11), intent(&record("e1", "unknown"), None)),
        (id(12), intent(&record("e2", "unknown"), None)),
        (id(13), intent(&record("e3", "unknown"), None)),
    ];
    let resolved = resolve(window, &mut settlements, id(0));
    assert_eq!(
        resolved.ship,
        vec![
            (id(10), record("e0", "accepted")),
            (id(11), record("e1", "accepted"))
        ]
    );
    assert_eq!(resolved.ack, vec![id(12)]);
    assert_eq!(resolved.waiting, 1);
    assert!(resolved.recover.is_empty());
    // Kept until their own frames are done with: a failed shipment finds them again.
    assert_eq!(settlements.len(), 2);
    let again = resolve(
        vec![(id(11), intent(&record("e1", "unknown"), None))],
        &mut settlements,
        id(0),
    );
    assert_eq!(again.ship, vec![(id(11), record("e1", "accepted"))]);
    // Once the intents are gone, their settlement frames are acknowledged and forgotten.
    let done = resolve(
        vec![
            (id(14), settled(&[record("e1", "accepted")])),
            (id(15), cancelled(&["e2".into()])),
        ],
        &mut settlements,
        id(0),
    );
    assert_eq!(done.ack, vec![id(14), id(15)]);
    assert!(settlements.is_empty());
}

#[test]
fn an_earlier_runs_unsettled_intent_goes_to_recovery() {
    let mut settlements = Settlements::default();
    let window = vec![
        (id(1), intent(&record("e1", "unknown"), Some(&check()))),
        (id(2), intent(&record("e2", "unknown"), None)),
    ];
    let resolved = resolve(window, &mut settlements, id(2));
    assert_eq!(
        resolved.recover,
        vec![(id(1), record("e1", "unknown"), Some(check()))]
    );
    assert_eq!(resolved.waiting, 1);
}

#[test]
fn a_settlement_frame_is_acknowledged_once_its_intents_are_gone() {
    // After a restart: the settlement frame is learned, its intent shipped from it, and the
    // frame itself acknowledged only in a later window, once the intent is.
    let frames = [
        intent(&record("e1", "unknown"), None),
        settled(&[record("e1", "accepted")]),
        intent(&record("e2", "unknown"), None),
        settled(&[record("e2", "accepted")]),
    ];
    let mut settlements = Settlements::default();
    settlements.learn(&read(&frames[1]).unwrap());
    let window = vec![
        (id(1), frames[0].clone()),
        (id(2), frames[1].clone()),
        (id(3), frames[2].clone()),
        (id(4), frames[3].clone()),
    ];
    // e2 is live and its settlement frame not yet learned: it waits, and so does its frame.
    // e1's frame waits for e1's intent, shipped in this window.
    let resolved = resolve(window.clone(), &mut settlements, id(3));
    assert_eq!(resolved.ship, vec![(id(1), record("e1", "accepted"))]);
    assert!(resolved.ack.is_empty());
    assert_eq!(resolved.waiting, 1);
    // e1's intent acknowledged: its settlement frame goes next.
    let resolved = resolve(window[1..].to_vec(), &mut settlements, id(3));
    assert_eq!(resolved.ack, vec![id(2)]);
    assert!(resolved.ship.is_empty());
}

#[test]
fn recovery_tells_applied_from_not_applied_and_says_when_it_cannot() {
    let answer = |item: Value| json!({ "Item": item }).to_string();
    let applied = answer(json!({"Version": {"N": "4"}, "GsWriteId": {"S": "w-1"}}));
    assert_eq!(recovered(&check(), applied.as_bytes()), Recovered::Applied);
    let older = answer(json!({"Version": {"N": "3"}, "GsWriteId": {"S": "w-0"}}));
    assert_eq!(recovered(&check(), older.as_bytes()), Recovered::NotApplied);
    let later = answer(json!({"Version": {"N": "5"}, "GsWriteId": {"S": "w-2"}}));
    assert_eq!(recovered(&check(), later.as_bytes()), Recovered::Unknown);
    let unversioned = answer(json!({}));
    assert_eq!(
        recovered(&check(), unversioned.as_bytes()),
        Recovered::NotApplied
    );
    // No item: applied and deleted since, or never applied; it cannot tell.
    assert_eq!(recovered(&check(), b"{}"), Recovered::Unknown);
    assert_eq!(recovered(&check(), b"not json"), Recovered::Unknown);
    let request: Value = serde_json::from_slice(&recovery_request(&check())).unwrap();
    assert_eq!(request["ConsistentRead"], true);
    assert_eq!(request["Key"]["k"]["S"], "us-east-1#a");
}

#[test]
fn the_outcome_is_rewritten_in_place() {
    let changed = with_outcome(&record("e1", "unknown"), "accepted").unwrap();
    let item: Value = serde_json::from_slice(&changed).unwrap();
    assert_eq!(item["Outcome"]["S"], "accepted");
    assert_eq!(item["EventId"]["S"], "e1");
}

#[test]
fn a_settlement_spools_only_what_the_answer_changed() {
    let intended = Bytes::from(
        json!({"EventId": {"S": "e1"}, "Outcome": {"S": "unknown"}, "Region": {"S": "unknown"},
               "NewImage": {"M": {"Blob": {"S": "b".repeat(1000)}}}, "ImagesDropped": {"SS": ["x"]}})
        .to_string(),
    );
    let settled = Bytes::from(
        json!({"EventId": {"S": "e1"}, "Outcome": {"S": "accepted"}, "Region": {"S": "eu-west-1"},
               "NewImage": {"M": {"Blob": {"S": "b".repeat(1000)}}}, "RequestId": {"S": "r"}})
        .to_string(),
    );
    let changes = delta(&intended, &settled).unwrap();
    assert!(
        changes.len() < 200,
        "the image is not spooled again: {changes:?}"
    );
    let spooled: Value = serde_json::from_slice(&changes).unwrap();
    assert_eq!(spooled["ImagesDropped"], Value::Null);
    assert_eq!(overlay(&intended, &changes).unwrap(), settled);
}
