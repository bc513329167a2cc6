//! Whether a GetRecords answer is of the stream its shard iterator named. The policy checks
//! read the stream from the iterator's readable start, but the region reads the opaque rest:
//! an iterator whose start was edited to name an allowed table's stream could read another
//! table's. The answer's `NextShardIterator` names the stream the region read, and is
//! compared; at the end of a closed shard there is none, though the answer still carries the
//! shard's last records (DynamoDB Local answers so). Those are shown only once the named
//! stream itself confirms them ([`Probe`]): it has a closed shard whose sequence numbers hold
//! theirs, and at the first of them the same record (event ids are unique). Anything less
//! fails closed.

use std::cmp::Ordering;

use serde_json::{Map, Value};

/// What a GetRecords answer says of the stream it was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Provenance {
    /// Its `NextShardIterator` names the stream the request named, or it shows no record.
    Confirmed,
    /// Its `NextShardIterator` names another stream, or its records cannot be checked.
    Foreign,
    /// The end of a closed shard: records, but no `NextShardIterator` to compare.
    Unconfirmed(Probe),
}

/// What the named stream must hold for unconfirmed records to be its own: a closed shard
/// whose range holds the `first` and `last` sequence numbers, and at `first`, the record
/// `event_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub first: String,
    pub last: String,
    pub event_id: String,
}

/// The provenance of a GetRecords answer read with an iterator naming the stream `arn`.
pub fn provenance(body: &Map<String, Value>, arn: &str) -> Provenance {
    match body.get("NextShardIterator") {
        None | Some(Value::Null) => {}
        Some(Value::String(next)) if super::iterator_arn(next) == arn => {
            return Provenance::Confirmed;
        }
        Some(_) => return Provenance::Foreign,
    }
    let records = match body.get("Records") {
        None | Some(Value::Null) => return Provenance::Confirmed,
        Some(Value::Array(records)) => records,
        Some(_) => return Provenance::Foreign,
    };
    let (Some(first), Some(last)) = (records.first(), records.last()) else {
        return Provenance::Confirmed;
    };
    let probe = sequence_number(first)
        .zip(sequence_number(last))
        .zip(first.get("eventID").and_then(Value::as_str));
    match probe {
        Some(((first, last), event_id)) => Provenance::Unconfirmed(Probe {
            first: first.to_owned(),
            last: last.to_owned(),
            event_id: event_id.to_owned(),
        }),
        None => Provenance::Foreign,
    }
}

/// Where a DescribeStream answer leaves the search for the probe's shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShardSearch {
    /// The closed shard whose range holds the probe's records.
    Found(String),
    /// Not on this page; the next starts after this shard (`ExclusiveStartShardId`).
    NextPage(String),
    /// The stream has no such shard.
    Missing,
}

/// Looks for the probe's closed shard in one page of a DescribeStream answer.
pub fn closed_shard(describe: &Map<String, Value>, probe: &Probe) -> ShardSearch {
    let description = describe.get("StreamDescription");
    let shards = description
        .and_then(|d| d.get("Shards"))
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    if let Some(id) = shards.iter().find_map(|shard| holding(shard, probe)) {
        return ShardSearch::Found(id.to_owned());
    }
    match description
        .and_then(|d| d.get("LastEvaluatedShardId"))
        .and_then(Value::as_str)
    {
        Some(next) => ShardSearch::NextPage(next.to_owned()),
        None => ShardSearch::Missing,
    }
}

/// The id of `shard` when it is closed and its range holds the probe's records.
fn holding<'s>(shard: &'s Value, probe: &Probe) -> Option<&'s str> {
    let range = shard.get("SequenceNumberRange")?;
    let start = range.get("StartingSequenceNumber")?.as_str()?;
    // An open shard has no end: its records come with a NextShardIterator.
    let end = range.get("EndingSequenceNumber")?.as_str()?;
    let within = compare(start, &probe.first)? != Ordering::Greater
        && compare(&probe.first, &probe.last)? != Ordering::Greater
        && compare(&probe.last, end)? != Ordering::Greater;
    if !within {
        return None;
    }
    shard.get("ShardId")?.as_str()
}

/// Whether a GetRecords answer read at the probe's first sequence number starts with the
/// probe's record.
pub fn starts_with(body: &Map<String, Value>, probe: &Probe) -> bool {
    let first = body
        .get("Records")
        .and_then(Value::as_array)
        .and_then(|records| records.first());
    first.is_some_and(|record| {
        record.get("eventID").and_then(Value::as_str) == Some(probe.event_id.as_str())
            && sequence_number(record) == Some(probe.first.as_str())
    })
}

fn sequence_number(record: &Value) -> Option<&str> {
    record.get("dynamodb")?.get("SequenceNumber")?.as_str()
}

/// Sequence numbers are decimal strings of up to 40 digits (DynamoDB Local pads them with
/// zeros): compared as numbers; `None` when one is not a number.
fn compare(a: &str, b: &str) -> Option<Ordering> {
    fn digits(s: &str) -> Option<&str> {
        let all = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        all.then(|| s.trim_start_matches('0'))
    }
    let (a, b) = (digits(a)?, digits(b)?);
    Some(a.len().cmp(&b.len()).then_with(|| a.cmp(b)))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const ARN: &str = "arn:x";

    fn map(value: &Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    fn record(event_id: &str, sequence: &str) -> Value {
        json!({"eventID": event_id, "dynamodb": {"SequenceNumber": sequence}})
    }

    fn probe() -> Probe {
        Probe {
            first: "0005".into(),
            last: "7".into(),
            event_id: "e5".into(),
        }
    }

    #[test]
    fn the_next_iterator_must_be_of_the_same_stream() {
        let records = [record("e1", "1")];
        let next = |next: &str| map(&json!({"Records": records, "NextShardIterator": next}));
        assert_eq!(provenance(&next("arn:x|1|abc"), ARN), Provenance::Confirmed);
        assert_eq!(provenance(&next("arn:y|1|abc"), ARN), Provenance::Foreign);
        let odd = map(&json!({"Records": records, "NextShardIterator": 1}));
        assert_eq!(provenance(&odd, ARN), Provenance::Foreign);
    }

    #[test]
    fn records_without_a_next_iterator_need_the_stream_to_confirm_them() {
        let end = map(&json!({"Records": [record("e5", "0005"), record("e7", "7")]}));
        assert_eq!(provenance(&end, ARN), Provenance::Unconfirmed(probe()));
        let null = map(
            &json!({"Records": [record("e5", "0005"), record("e7", "7")],
            "NextShardIterator": null}),
        );
        assert_eq!(provenance(&null, ARN), Provenance::Unconfirmed(probe()));
        // Nothing shown needs no confirmation.
        for empty in [json!({"Records": []}), json!({})] {
            assert_eq!(provenance(&map(&empty), ARN), Provenance::Confirmed);
        }
        // Records that cannot be checked are not shown.
        for unreadable in [
            json!({"Records": [{"dynamodb": {"SequenceNumber": "5"}}]}),
            json!({"Records": [{"eventID": "e5"}]}),
            json!({"Records": "e5"}),
        ] {
            assert_eq!(provenance(&map(&unreadable), ARN), Provenance::Foreign);
        }
    }

    #[test]
    fn only_a_closed_shard_holding_the_records_confirms_them() {
        let page = |shards: Value, last: Option<&str>| {
            map(&json!({"StreamDescription": {"Shards": shards, "LastEvaluatedShardId": last}}))
        };
        let shard = |id: &str, start: &str, end: Option<&str>| {
            let mut range = json!({"StartingSequenceNumber": start});
            if let Some(end) = end {
                range["EndingSequenceNumber"] = json!(end);
            }
            json!({"ShardId": id, "SequenceNumberRange": range})
        };
        let found = page(
            json!([shard("a", "1", Some("4")), shard("b", "000005", Some("9"))]),
            None,
        );
        assert_eq!(
            closed_shard(&found, &probe()),
            ShardSearch::Found("b".into())
        );
        // The same range, open: its records would come with a next iterator.
        let open = page(json!([shard("b", "5", None)]), None);
        assert_eq!(closed_shard(&open, &probe()), ShardSearch::Missing);
        let partly = page(json!([shard("b", "6", Some("9"))]), Some("b"));
        assert_eq!(
            closed_shard(&partly, &probe()),
            ShardSearch::NextPage("b".into())
        );
        let bad = page(json!([shard("b", "x", Some("9"))]), None);
        assert_eq!(closed_shard(&bad, &probe()), ShardSearch::Missing);
        // A number of more digits is larger, whatever its first digit.
        assert_eq!(compare("10", "9"), Some(Ordering::Greater));
        assert_eq!(compare("", "9"), None);
    }

    #[test]
    fn the_record_at_the_first_sequence_number_must_be_the_same() {
        let at = |id: &str, sequence: &str| map(&json!({"Records": [record(id, sequence)]}));
        assert!(starts_with(&at("e5", "0005"), &probe()));
        assert!(!starts_with(&at("e6", "0005"), &probe()));
        assert!(!starts_with(&at("e5", "0006"), &probe()));
        assert!(!starts_with(&map(&json!({"Records": []})), &probe()));
    }
}
