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
