//! Hostile and broken requests, sent by hand: each gets a DynamoDB-shaped error (a JSON body with
//! `__type` and `message`), nothing the sidecar cannot parse reaches a region, and the sidecar
//! keeps serving afterwards.

// Helpers here panic like the tests they serve: a failed expectation is a failed test.
#![allow(clippy::expect_used)]

mod support;

use support::{
    DynamoLocal, Framing, RawRequest, RawResponse, RegionFixture, Sidecar, SidecarConfig, TABLE,
    TARGET_PREFIX, create_global_catalog, sdk_client, send_streaming,
};

/// DynamoDB's request size limit.
const MAX_BODY: usize = 16 * 1024 * 1024;

/// DynamoDB Local holding `GlobalCatalog`, a recording region in front of it, the sidecar.
async fn setup() -> (DynamoLocal, RegionFixture, Sidecar) {
    let ddb = DynamoLocal::single().await;
    create_global_catalog(&sdk_client(&ddb.endpoint(0))).await;
    let region = RegionFixture::start(&ddb.endpoint(0)).await;
    let sidecar =
        Sidecar::start(&SidecarConfig::new().region("us-east-1", &region.endpoint())).await;
    (ddb, region, sidecar)
}

fn get_item_body() -> String {
    serde_json::json!({
        "TableName": TABLE,
        "Key": {"ItemID": {"S": "probe"}, "Category": {"S": "probe"}},
    })
    .to_string()
}

/// A well-formed request still gets a normal answer.
async fn assert_still_serving(sidecar: &Sidecar, after: &str) {
    let response = RawRequest::new("GetItem", get_item_body())
        .send(sidecar.listen_addr())
        .await;
    assert_eq!(
        response.status,
        200,
        "after {after}, a normal GetItem got: {}",
        response.text()
    );
    assert_eq!(
        response.json(),
        serde_json::json!({}),
        "GetItem of a missing item"
    );
}

/// 400, DynamoDB's error shape, `__type` ending in one of `kinds`, a JSON content type, and a
/// correct `x-amz-crc32` if there is one; otherwise what is wrong.
fn check_dynamodb_error(response: &RawResponse, kinds: &[&str]) -> Result<(), String> {
    if response.status != 400 {
        return Err(format!("status {}: {}", response.status, response.text()));
    }
    let kind = response.try_error_type()?;
    if !kinds.iter().any(|k| kind.ends_with(&format!("#{k}"))) {
        return Err(format!("__type {kind:?} is none of {kinds:?}"));
    }
    let content_type = response.header("content-type");
    if !content_type.is_some_and(|t| t.starts_with("application/x-amz-json-1.0")) {
        return Err(format!("content-type {content_type:?}"));
    }
    if let Some(crc) = response.header("x-amz-crc32")
        && crc.parse::<u32>().ok() != Some(crc32fast::hash(&response.body))
    {
        return Err("x-amz-crc32 does not match the body".to_owned());
    }
    Ok(())
}

const SERIALIZATION: &[&str] = &["SerializationException"];
const UNKNOWN_OPERATION: &[&str] = &["UnknownOperationException"];
const BAD_FIELD: &[&str] = &["ValidationException", "SerializationException"];

/// Requests the sidecar cannot make sense of: it must answer them itself.
fn unparseable_requests() -> Vec<(&'static str, RawRequest, &'static [&'static str])> {
    let nested = |depth: usize| {
        format!(
            "{{\"TableName\":{}\"GlobalCatalog\"{}}}",
            "[".repeat(depth),
            "]".repeat(depth)
        )
    };
    let mut invalid_utf8 = br#"{"TableName":"GlobalCatalog","Key":{"ItemID":{"S":""#.to_vec();
    invalid_utf8.extend_from_slice(b"\xff\xfe\xc3");
    invalid_utf8.extend_from_slice(br#""},"Category":{"S":"a"}}}"#);
    vec![
        (
            "malformed JSON",
            RawRequest::new("GetItem", r#"{"TableName": "GlobalCatalog", "Key": "#),
            SERIALIZATION,
        ),
        (
            "missing X-Amz-Target",
            RawRequest::without_target(get_item_body()),
            UNKNOWN_OPERATION,
        ),
        (
            "unknown target prefix",
            RawRequest::with_target("DynamoDB_20991231.GetItem", get_item_body()),
            UNKNOWN_OPERATION,
        ),
        (
            "another service's target",
            RawRequest::with_target("AmazonSQS.SendMessage", get_item_body()),
            UNKNOWN_OPERATION,
        ),
        (
            "10 000 nested arrays",
            RawRequest::new("GetItem", nested(10_000)),
            BAD_FIELD,
        ),
        (
            "10 000 unclosed arrays",
            RawRequest::new("GetItem", "[".repeat(10_000)),
            BAD_FIELD,
        ),
        (
            "invalid UTF-8",
            RawRequest::new("GetItem", invalid_utf8),
            BAD_FIELD,
        ),
        ("empty body", RawRequest::new("GetItem", ""), BAD_FIELD),
        (
            "PUT instead of POST",
            RawRequest::new("ListTables", r#"{"Limit":7}"#).method(http::Method::PUT),
            UNKNOWN_OPERATION,
        ),
        (
            "NUL bytes",
            RawRequest::new("GetItem", vec![0u8; 64]),
            SERIALIZATION,
        ),
        ("a JSON array", RawRequest::new("GetItem", "[]"), BAD_FIELD),
    ]
}

/// Well-formed JSON with the wrong types where the sidecar reads.
fn mistyped_requests() -> Vec<(&'static str, RawRequest, &'static [&'static str])> {
    let key = r#"{"ItemID":{"S":"a"},"Category":{"S":"b"}}"#;
    vec![
        (
            "TableName is a number",
            RawRequest::new("GetItem", format!(r#"{{"TableName":5,"Key":{key}}}"#)),
            BAD_FIELD,
        ),
        (
            "Key is a string",
            RawRequest::new("GetItem", r#"{"TableName":"GlobalCatalog","Key":"x"}"#),
            BAD_FIELD,
        ),
        (
            "Item is an array",
            RawRequest::new("PutItem", r#"{"TableName":"GlobalCatalog","Item":[1,2]}"#),
            BAD_FIELD,
        ),
        (
            "RequestItems is a string",
            RawRequest::new("BatchGetItem", r#"{"RequestItems":"GlobalCatalog"}"#),
            BAD_FIELD,
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_get_dynamodb_errors_and_the_sidecar_keeps_serving() {
    let (_ddb, region, sidecar) = setup().await;
    assert_still_serving(&sidecar, "start-up").await;

    // Every case runs, so one report lists all that are wrong.
    let mut failures = Vec::new();
    for (case, request, kinds) in unparseable_requests() {
        let response = request.send(sidecar.listen_addr()).await;
        if let Err(why) = check_dynamodb_error(&response, kinds) {
            failures.push(format!("{case}: {why}"));
        }
        let forwarded = region
            .recorded()
            .iter()
            .any(|r| r.body == request.body() && r.header("x-amz-target") == request.target());
        if forwarded {
            failures.push(format!(
                "{case}: forwarded although the sidecar cannot parse it"
            ));
        }
        assert_still_serving(&sidecar, case).await;
    }
    for (case, request, kinds) in mistyped_requests() {
        let response = request.send(sidecar.listen_addr()).await;
        if let Err(why) = check_dynamodb_error(&response, kinds) {
            failures.push(format!("{case}: {why}"));
        }
        assert_still_serving(&sidecar, case).await;
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// An operation the sidecar does not know, under DynamoDB's own prefix, may be one DynamoDB
/// added since: it goes to the region, and the region's answer comes back unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_operation_with_dynamodb_prefix_is_forwarded() {
    let (ddb, region, sidecar) = setup().await;
    let request = RawRequest::new("FrobnicateTable", format!(r#"{{"TableName":"{TABLE}"}}"#));

    let via_sidecar = request.send(sidecar.listen_addr()).await;
    let forwarded = region.recorded_op("FrobnicateTable");
    assert_eq!(
        forwarded.len(),
        1,
        "FrobnicateTable was not forwarded exactly once"
    );
    assert_eq!(
        forwarded[0].header("x-amz-target"),
        Some(format!("{TARGET_PREFIX}.FrobnicateTable").as_str())
    );
    assert_eq!(forwarded[0].body, request.body(), "body changed on the way");

    let upstream_addr = format!("127.0.0.1:{}", ddb.port(0)).parse().expect("addr");
    let direct = request.send(upstream_addr).await;
    assert_eq!(via_sidecar.status, direct.status, "{}", via_sidecar.text());
    assert_eq!(via_sidecar.error_type(), direct.error_type());
    assert_eq!(
        via_sidecar.json(),
        direct.json(),
        "the region's error changed"
    );
    assert_still_serving(&sidecar, "FrobnicateTable").await;
}

/// Bodies over DynamoDB's 16 MiB limit are refused with DynamoDB's 413 whether the size is announced
/// (`Content-Length`) or not (chunked), the connection gets its answer instead of hanging, and
/// none of it reaches a region. A body under the limit still goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_are_refused_without_hanging() {
    let (_ddb, region, sidecar) = setup().await;
    let oversized = put_item_of_size(MAX_BODY + 1024 * 1024);

    for framing in [Framing::ContentLength, Framing::Chunked] {
        let response = send_streaming(sidecar.listen_addr(), &oversized, framing).await;
        let case = format!("17 MiB body, {framing:?}");
        assert_eq!(response.status, 413, "{case}: {}", response.text());
        assert!(
            response
                .error_type()
                .ends_with("#RequestEntityTooLargeException"),
            "{case}: {}",
            response.text()
        );
        assert!(
            region.recorded().iter().all(|r| r.body.len() <= MAX_BODY),
            "{case}: an oversized body reached the region"
        );
        assert_still_serving(&sidecar, &case).await;
    }

    // Under the limit the sidecar forwards it; DynamoDB Local then refuses the item's size.
    let large = put_item_of_size(MAX_BODY - 1024 * 1024);
    let response = send_streaming(sidecar.listen_addr(), &large, Framing::ContentLength).await;
    response.error_type();
    assert!(
        region
            .recorded_op("PutItem")
            .iter()
            .any(|r| r.body == large.body()),
        "a 15 MiB body was not forwarded (status {}: {})",
        response.status,
        response.text()
    );
}

/// A PutItem whose JSON body is `size` bytes long.
fn put_item_of_size(size: usize) -> RawRequest {
    let frame = |payload: &str| {
        format!(
            r#"{{"TableName":"{TABLE}","Item":{{"ItemID":{{"S":"big"}},"Category":{{"S":"big"}},"Payload":{{"S":"{payload}"}}}}}}"#
        )
    };
    let overhead = frame("").len();
    let body = frame(&"x".repeat(size - overhead));
    assert_eq!(body.len(), size);
    RawRequest::new("PutItem", body)
}

/// A filter the client kept under DynamoDB's 4 KB, which the namespace filter of a prefixed
/// table pushes past it, is refused in DynamoDB's words, naming the rewrite, and never sent;
/// the same filter sent straight to the region is served, so the limit met is the sidecar's
/// addition.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expression_the_rewrite_pushes_past_4_kb_is_refused_before_it_is_sent() {
    let ddb = DynamoLocal::single().await;
    let direct = sdk_client(&ddb.endpoint(0));
    create_global_catalog(&direct).await;
    let region = RegionFixture::start(&ddb.endpoint(0)).await;
    let sidecar = Sidecar::start(
        &SidecarConfig::new()
            .region("us-east-1", &region.endpoint())
            .table_line("key_prefix = \"{region}#\""),
    )
    .await;
    let name = format!("#{}", "p".repeat(204));
    let term = format!("attribute_exists({name})");
    let filter = vec![term.as_str(); 18].join(" OR ");
    assert!(
        (4_070..=4_096).contains(&filter.len()),
        "{} bytes: under the limit, within reach of the rewrite",
        filter.len()
    );
    let body = serde_json::json!({
        "TableName": TABLE,
        "FilterExpression": filter,
        "ExpressionAttributeNames": {name.clone(): "Price"},
    });
    region.take_recorded();
    let response = RawRequest::new("Scan", body.to_string())
        .send(sidecar.listen_addr())
        .await;
    check_dynamodb_error(&response, &["ValidationException"]).unwrap_or_else(|e| panic!("{e}"));
    let message = response.json()["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        message.contains("Invalid FilterExpression") && message.contains("key_prefix"),
        "{message}"
    );
    assert!(region.recorded_op("Scan").is_empty(), "it was sent");
    direct
        .scan()
        .table_name(TABLE)
        .filter_expression(&filter)
        .expression_attribute_names(&name, "Price")
        .send()
        .await
        .expect("the client's own filter is within DynamoDB's limit");
}
