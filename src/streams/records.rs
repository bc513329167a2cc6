//! Streams answers as the client may see them. On a managed table a change record shows keys
//! and images as the client wrote them: the partition key without the namespace's prefix,
//! without the sidecar's write-id attribute; a record of another namespace (another home
//! region's items) is left out, as a Query never shows them. ListStreams leaves out the
//! streams of tables the client may not read.

use serde_json::{Map, Value};

use crate::config::WRITE_ID_ATTRIBUTE;

/// A managed table's namespace: its partition key attribute and the prefix of its keys.
#[derive(Debug, Clone, Copy)]
pub struct Namespace<'a> {
    pub attribute: &'a str,
    pub prefix: &'a str,
}

/// Restores `GetRecords`' `Records` of a managed table (`namespace` when it has a
/// `key_prefix`); returns how many records were left out.
pub fn restore_records(body: &mut Map<String, Value>, namespace: Option<Namespace<'_>>) -> usize {
    let Some(Value::Array(records)) = body.get_mut("Records") else {
        return 0;
    };
    let before = records.len();
    records.retain_mut(|record| restore_record(record, namespace));
    before - records.len()
}

/// One record restored in place; `false` when it is left out.
fn restore_record(record: &mut Value, namespace: Option<Namespace<'_>>) -> bool {
    let Some(change) = record.get_mut("dynamodb").and_then(Value::as_object_mut) else {
        // A record without its change (never from DynamoDB): nothing to show safely.
        return namespace.is_none();
    };
    if let Some(namespace) = namespace {
        let ours = change
            .get("Keys")
            .and_then(Value::as_object)
            .is_some_and(|keys| stored_key(keys, namespace).is_some());
        if !ours {
            return false;
        }
        for site in ["Keys", "NewImage", "OldImage"] {
            let Some(map) = change.get_mut(site).and_then(Value::as_object_mut) else {
                continue;
            };
            if map.contains_key(namespace.attribute) && !strip(map, namespace) {
                return false;
            }
        }
    }
    for image in ["NewImage", "OldImage"] {
        if let Some(map) = change.get_mut(image).and_then(Value::as_object_mut) {
            map.remove(WRITE_ID_ATTRIBUTE);
        }
    }
    true
}

/// The key as stored, when it is a string of the namespace.
fn stored_key<'m>(map: &'m Map<String, Value>, namespace: Namespace<'_>) -> Option<&'m str> {
    let value = map.get(namespace.attribute)?.as_object()?;
    let stored = value.get("S")?.as_str()?;
    (value.len() == 1 && stored.starts_with(namespace.prefix)).then_some(stored)
}

/// Strips the prefix from the partition key of `map`; `false` when it is not the namespace's.
fn strip(map: &mut Map<String, Value>, namespace: Namespace<'_>) -> bool {
    let Some(plain) = stored_key(map, namespace).map(|s| s[namespace.prefix.len()..].to_owned())
    else {
        return false;
    };
    map.insert(
        namespace.attribute.to_owned(),
        serde_json::json!({ "S": plain }),
    );
    true
}

/// Leaves out of `ListStreams`' `Streams` those of tables `shows` refuses; returns how many.
pub fn filter_streams(body: &mut Map<String, Value>, shows: impl Fn(&str) -> bool) -> usize {
    let Some(Value::Array(streams)) = body.get_mut("Streams") else {
        return 0;
    };
    let before = streams.len();
    streams.retain(|stream| {
        stream
            .get("TableName")
            .and_then(Value::as_str)
            .is_some_and(&shows)
    });
    before - streams.len()
}

/// Where a `ListStreams` page of the region's leaves the listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cursor {
    /// No `LastEvaluatedStreamArn` (or not a string, which no client could send back): the
    /// listing ends.
    End,
    /// A stream the client may see: the client continues from it.
    Shown(String),
    /// A stream the client may not see (or an ARN the sidecar cannot read): never given to
    /// the client; the sidecar reads on from it.
    Hidden(String),
}

/// The `LastEvaluatedStreamArn` of a `ListStreams` answer, judged by `shows` (by table).
/// The client gets only a cursor the region gave, so that it continues the listing as the
/// region orders it (DynamoDB Local's pages are not in the order of their cursors).
pub fn cursor(body: &Map<String, Value>, shows: impl Fn(&str) -> bool) -> Cursor {
    let Some(arn) = body.get("LastEvaluatedStreamArn").and_then(Value::as_str) else {
        return Cursor::End;
    };
    match super::stream_arn(arn) {
        Some((_, table)) if shows(table) => Cursor::Shown(arn.to_owned()),
        _ => Cursor::Hidden(arn.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const NS: Namespace<'static> = Namespace {
        attribute: "pk",
        prefix: "us-east-1#",
    };

    fn record(pk: &str, extra: &Value) -> Value {
        json!({
            "eventName": "MODIFY",
            "dynamodb": {
                "Keys": {"pk": {"S": pk}},
                "NewImage": {"pk": {"S": pk}, "x": extra, WRITE_ID_ATTRIBUTE: {"S": "w1"}},
                "OldImage": {"pk": {"S": pk}, "x": {"N": "1"}},
                "SequenceNumber": "1",
            }
        })
    }

    fn answer(records: &[Value]) -> Map<String, Value> {
        json!({"Records": records, "NextShardIterator": "arn:x|1|abc"})
            .as_object()
            .unwrap()
            .clone()
    }

    #[test]
    fn records_show_keys_as_written_and_only_the_namespace() {
        let mut body = answer(&[
            record("us-east-1#a", &json!({"N": "2"})),
            record("us-west-2#b", &json!({"N": "3"})),
            record("plain", &json!({"N": "4"})),
        ]);
        assert_eq!(restore_records(&mut body, Some(NS)), 2);
        let records = body["Records"].as_array().unwrap();
        assert_eq!(records.len(), 1);
        let change = &records[0]["dynamodb"];
        assert_eq!(change["Keys"], json!({"pk": {"S": "a"}}));
        assert_eq!(
            change["NewImage"],
            json!({"pk": {"S": "a"}, "x": {"N": "2"}})
        );
        assert_eq!(
            change["OldImage"],
            json!({"pk": {"S": "a"}, "x": {"N": "1"}})
        );
    }

    #[test]
    fn without_a_prefix_only_the_write_id_is_hidden() {
        let mut body = answer(&[record("a", &json!({"S": "v"}))]);
        assert_eq!(restore_records(&mut body, None), 0);
        let change = &body["Records"][0]["dynamodb"];
        assert_eq!(change["Keys"], json!({"pk": {"S": "a"}}));
        assert!(change["NewImage"].get(WRITE_ID_ATTRIBUTE).is_none());
    }

    #[test]
    fn a_key_of_another_type_is_not_the_namespace() {
        let mut body = answer(&[json!({"dynamodb": {"Keys": {"pk": {"N": "1"}}}})]);
        assert_eq!(restore_records(&mut body, Some(NS)), 1);
    }

    #[test]
    fn a_cursor_is_shown_only_when_its_stream_is() {
        let arn = |table: &str| format!("arn:aws:dynamodb:r:1:table/{table}/stream/l");
        let page = |last: Value| json!({"Streams": [], "LastEvaluatedStreamArn": last});
        let judge = |last: Value| cursor(page(last).as_object().unwrap(), |t| t != "Audit");
        assert_eq!(judge(json!(arn("Orders"))), Cursor::Shown(arn("Orders")));
        assert_eq!(judge(json!(arn("Audit"))), Cursor::Hidden(arn("Audit")));
        assert_eq!(judge(json!("x")), Cursor::Hidden("x".into()));
        assert_eq!(judge(Value::Null), Cursor::End);
        assert_eq!(judge(json!(1)), Cursor::End);
    }

    #[test]
    fn listings_leave_out_refused_tables() {
        let mut body = json!({"Streams": [
            {"StreamArn": "a", "TableName": "Orders"},
            {"StreamArn": "b", "TableName": "Audit"},
            {"StreamArn": "c"},
        ]})
        .as_object()
        .unwrap()
        .clone();
        assert_eq!(filter_streams(&mut body, |t| t != "Audit"), 2);
        assert_eq!(
            body["Streams"],
            json!([{"StreamArn": "a", "TableName": "Orders"}])
        );
    }
}
