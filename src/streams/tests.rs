use serde_json::{Map, Value, json};

use super::*;

const ARN: &str =
    "arn:aws:dynamodb:us-east-1:123456789012:table/Orders/stream/2026-12-07T11:38:36.093";

fn body(value: &Value) -> Map<String, Value> {
    value.as_object().unwrap().clone()
}

#[test]
fn targets_are_the_streams_api_or_unknown() {
    assert_eq!(
        StreamsOperation::from_target("DynamoDBStreams_20120810.GetRecords").map(Result::ok),
        Some(Some(StreamsOperation::GetRecords))
    );
    assert!(matches!(
        StreamsOperation::from_target("DynamoDBStreams_20120810.PutItem"),
        Some(Err(ProxyError::UnknownOperation(_)))
    ));
    assert!(StreamsOperation::from_target("DynamoDB_20120810.GetItem").is_none());
}

#[test]
fn stream_arns_name_their_region_and_table() {
    assert_eq!(stream_arn(ARN), Some(("us-east-1", "Orders")));
    let local = "arn:aws:dynamodb:ddblocal:000000000000:table/Tab1/stream/2026-12-07T11:38:36.093";
    assert_eq!(stream_arn(local), Some(("ddblocal", "Tab1")));
    for bad in [
        "",
        "Orders",
        "arn:aws:dynamodb:us-east-1:1:table/Orders",
        "arn:aws:dynamodb:us-east-1:1:table/Orders/stream/",
        "arn:aws:dynamodb:us-east-1:1:table/Orders/index/I/stream/x",
        "arn:aws:s3:us-east-1:1:table/Orders/stream/x",
        "arn:aws:dynamodb::1:table/Orders/stream/x",
    ] {
        assert_eq!(stream_arn(bad), None, "{bad}");
    }
}

#[test]
fn every_operation_names_its_subject() {
    let stream = Subject::Stream {
        arn: ARN.into(),
        region: "us-east-1".into(),
        table: "Orders".into(),
    };
    let described = subject(
        StreamsOperation::DescribeStream,
        &body(&json!({"StreamArn": ARN})),
    );
    assert_eq!(described.unwrap(), stream);
    let iterator = format!("{ARN}|001|c2hhcmQ=");
    let read = subject(
        StreamsOperation::GetRecords,
        &body(&json!({"ShardIterator": iterator})),
    );
    assert_eq!(read.unwrap(), stream);
    let listed = subject(StreamsOperation::ListStreams, &body(&json!({})));
    assert_eq!(listed.unwrap(), Subject::Listing { table: None });
    let by_arn = subject(
        StreamsOperation::ListStreams,
        &body(&json!({"TableName": "arn:aws:dynamodb:us-east-1:1:table/Orders"})),
    );
    assert_eq!(by_arn.unwrap().table(), Some("Orders"));
}

#[test]
fn a_request_without_a_readable_stream_is_refused_before_it_is_sent() {
    for (operation, request) in [
        (StreamsOperation::DescribeStream, json!({})),
        (StreamsOperation::DescribeStream, json!({"StreamArn": 7})),
        (
            StreamsOperation::GetShardIterator,
            json!({"StreamArn": "Orders"}),
        ),
        (
            StreamsOperation::GetRecords,
            json!({"ShardIterator": "opaque"}),
        ),
    ] {
        let result = subject(operation, &body(&request));
        assert!(
            matches!(result, Err(ProxyError::Validation(_))),
            "{request}"
        );
    }
}

#[test]
fn the_audit_table_and_tables_off_the_list_are_refused() {
    let allowed = crate::access::Allowed::new(vec!["Ord*".into(), "Audit".into()]);
    let guard = Guard {
        client: "app",
        audit_table: Some("Audit"),
        allowed: Some(&allowed),
    };
    let of = |table: &str| Subject::Stream {
        arn: String::new(),
        region: "us-east-1".into(),
        table: table.into(),
    };
    assert!(
        guard
            .check(StreamsOperation::GetRecords, &of("Orders"))
            .is_ok()
    );
    for table in ["Audit", "Payments"] {
        let refused = guard.check(StreamsOperation::GetRecords, &of(table));
        assert!(
            matches!(refused, Err(ProxyError::AccessDenied(_))),
            "{table}"
        );
    }
    let listing = Subject::Listing {
        table: Some("Audit".into()),
    };
    assert!(
        guard
            .check(StreamsOperation::ListStreams, &listing)
            .is_err()
    );
    assert!(
        guard
            .check(
                StreamsOperation::ListStreams,
                &Subject::Listing { table: None }
            )
            .is_ok()
    );
    assert!(!guard.shows("Audit") && guard.shows("Orders") && !guard.shows("Payments"));
    assert!(!guard.unread_allowed(false));
}

#[test]
fn an_unreadable_stream_goes_to_the_region_only_where_no_policy_could_apply() {
    let open = Guard {
        client: "anonymous",
        audit_table: None,
        allowed: None,
    };
    assert!(open.unread_allowed(false));
    assert!(!open.unread_allowed(true), "a managed table");
    let audited = Guard {
        audit_table: Some("Audit"),
        ..open
    };
    assert!(!audited.unread_allowed(false));
}

mod any_input {
    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::super::records::{Namespace, restore_records};
    use super::super::*;
    use crate::server::bodies::encoding::{Coding, decode};

    /// A JSON value of a few levels, with the names a record uses among others.
    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            "[a-z#0-9-]{0,8}".prop_map(Value::from),
            any::<i32>().prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 32, 4, |inner| {
            let name = prop_oneof![
                Just("dynamodb".to_owned()),
                Just("Keys".to_owned()),
                Just("NewImage".to_owned()),
                Just("OldImage".to_owned()),
                Just("pk".to_owned()),
                Just("S".to_owned()),
                "[a-zA-Z]{1,4}",
            ];
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                prop::collection::btree_map(name, inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// No stream ARN, shard iterator or request body panics the reading of what a
        /// streams request names.
        #[test]
        fn any_request_is_read_or_refused(arn in "\\PC{0,80}", body in value()) {
            let _ = stream_arn(&arn);
            let _ = iterator_arn(&arn);
            let request = json!({"StreamArn": arn, "ShardIterator": arn, "TableName": arn});
            for operation in [
                StreamsOperation::ListStreams,
                StreamsOperation::DescribeStream,
                StreamsOperation::GetShardIterator,
                StreamsOperation::GetRecords,
            ] {
                let _ = subject(operation, request.as_object().unwrap());
                if let Value::Object(body) = &body {
                    let _ = subject(operation, body);
                }
            }
        }

        /// No region answer panics the restore of its records, and what is left is of the
        /// namespace, its keys stripped.
        #[test]
        fn any_answer_is_restored_without_panic(records in prop::collection::vec(value(), 0..4)) {
            let namespace = Namespace { attribute: "pk", prefix: "us-east-1#" };
            let mut body = json!({"Records": records}).as_object().unwrap().clone();
            restore_records(&mut body, Some(namespace));
            for record in body["Records"].as_array().unwrap() {
                let key = &record["dynamodb"]["Keys"]["pk"]["S"];
                prop_assert!(key.is_string(), "{}", record);
            }
        }

        /// No region answer panics the provenance check; an answer that shows records without
        /// a next iterator of the same stream is never confirmed unasked.
        #[test]
        fn any_answer_has_a_provenance_without_panic(
            records in prop::collection::vec(value(), 0..4),
            next in value(),
            description in value(),
        ) {
            use crate::streams::provenance::{Provenance, closed_shard, provenance, starts_with};
            let arn = "arn:x";
            let body = json!({"Records": records, "NextShardIterator": next});
            let body = body.as_object().unwrap();
            let verdict = provenance(body, arn);
            if verdict == Provenance::Confirmed && !records.is_empty() {
                let next = next.as_str().map(crate::streams::iterator_arn);
                prop_assert_eq!(next, Some(arn));
            }
            if let Provenance::Unconfirmed(probe) = verdict {
                let page = json!({"StreamDescription": description});
                let _ = closed_shard(page.as_object().unwrap(), &probe);
                let _ = starts_with(body, &probe);
            }
        }

        /// No compressed body panics the decoder, and nothing it returns passes the limit.
        #[test]
        fn any_bytes_decode_within_the_limit(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            for coding in [Coding::Gzip, Coding::Deflate] {
                if let Ok(out) = decode(coding, &bytes, 1024, &mut |_| Ok(())) {
                    prop_assert!(out.len() <= 1024);
                }
            }
        }
    }
}
