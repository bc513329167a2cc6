//! A client cannot write a line of its own into the sidecar's text log: the real
//! binary, with its default text log, gets requests whose table names, expressions, PartiQL
//! statements, bodies, access key ids (the principal), signatures and headers carry a
//! forged line (a newline, then a timestamp, a level and a message), carriage returns,
//! terminal escapes, Unicode line separators and bidirectional overrides; every line of
//! its log is then one the sidecar began, and the forged text appears only escaped.

#![allow(clippy::expect_used)]

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use support::{
    DynamoLocal, RawRequest, SidecarConfig, SidecarProcess, TABLE, create_global_catalog,
    sdk_client, within,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A line a client would like an operator to read as the sidecar's own.
const FORGED: &str = "\n2001-01-01T00:00:00.000000Z ERROR globalscale::proxy: FORGED admin token accepted\r\n\u{1b}[2K\u{2028}\u{202e}";

const SIGV4: &str = r#"
[auth]
mode = "sigv4"

[[clients]]
name = "app"
access_key_id = "AKIDCLIENT"
secret_access_key = "client-secret"
"#;

/// A JSON string literal of `text`.
fn json(text: &str) -> String {
    serde_json::to_string(text).expect("a JSON string")
}

/// Bodies and targets that carry the forged line in every field a client controls.
fn hostile_requests() -> Vec<RawRequest> {
    let forged = json(&format!("T{FORGED}"));
    let arn = json(&format!(
        "arn:aws:dynamodb:us-east-1:9999{FORGED}:table/{TABLE}"
    ));
    let expression = json(&format!("ItemID = :v{FORGED}"));
    let statement = json(&format!("SELECT * FROM \"{TABLE}{FORGED}"));
    vec![
        RawRequest::new("GetItem", format!(r#"{{"TableName":{forged},"Key":{{}}}}"#)),
        RawRequest::new("DescribeTable", format!(r#"{{"TableName":{arn}}}"#)),
        RawRequest::new(
            "Query",
            format!(
                r#"{{"TableName":"{TABLE}","KeyConditionExpression":{expression},"ExpressionAttributeValues":{{":v":{{"S":"x"}}}}}}"#
            ),
        ),
        RawRequest::new("ExecuteStatement", format!(r#"{{"Statement":{statement}}}"#)),
        RawRequest::new("PutItem", format!("{{\"TableName\":{forged}, oops{FORGED}")),
        RawRequest::new("GetItem", "{}").unsigned().header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKID\\n2001-01-01T00:00:00Z/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=00",
        ),
    ]
}

/// Requests by hand, for what a `HeaderValue` helper would refuse to build: header values
/// with non-ASCII bytes (UTF-8 line separators and bidi overrides), which HTTP allows.
async fn raw_request(addr: SocketAddr, head_lines: &str) {
    let body = r#"{"TableName":"GlobalCatalog","Key":{}}"#;
    let request = format!(
        "POST / HTTP/1.1\r\nhost: {addr}\r\nx-amz-target: DynamoDB_20120810.GetItem\r\n\
         content-type: application/x-amz-json-1.0\r\n{head_lines}content-length: {}\r\n\
         connection: close\r\n\r\n{body}",
        body.len()
    );
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    let _ = within("an answer", stream.read_to_end(&mut answer)).await;
}

async fn no_forged_line(extra: &str) {
    let ddb = DynamoLocal::single().await;
    create_global_catalog(&sdk_client(&ddb.endpoint(0))).await;
    let config = SidecarConfig::new()
        .region("us-east-1", &ddb.endpoint(0))
        .section(extra);
    let sidecar =
        SidecarProcess::start_with_env(config, &[("RUST_LOG", "globalscale=debug")]).await;
    let addr = sidecar.listen_addr();
    for request in hostile_requests() {
        let _ = within("a hostile request", request.try_send(addr)).await;
    }
    let separator = "\u{2028}\u{202e}".as_bytes();
    let user_agent = String::from_utf8_lossy(separator);
    for head in [
        format!("user-agent: aws-sdk {user_agent}2001-01-01T00:00:00Z ERROR FORGED\r\n"),
        format!(
            "authorization: AWS4-HMAC-SHA256 Credential=AKIDCLIENT{user_agent}/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=00\r\n"
        ),
        format!("x-amz-date: 2026{user_agent}FORGED\r\n"),
    ] {
        raw_request(addr, &head).await;
    }
    // The last answers are written before their log lines may be: give them a moment.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let log = sidecar.stderr();
    assert!(
        log.contains("FORGED"),
        "nothing forged reached the log:\n{log}"
    );
    for line in log.lines() {
        assert!(
            !line.starts_with("2001-01-01") && is_a_sidecar_line(line),
            "a line the sidecar did not begin: {line:?}\nin:\n{log}"
        );
    }
    for raw in ['\r', '\u{1b}', '\u{2028}', '\u{202e}'] {
        assert!(!log.contains(raw), "{raw:?} written raw:\n{log}");
    }
}

/// `2026-12-07T08:51:06.123456Z  INFO globalscale::...`: the default text format's start.
fn is_a_sidecar_line(line: &str) -> bool {
    let (time, rest) = line.split_once(' ').unwrap_or_default();
    let level = rest.trim_start().split(' ').next().unwrap_or_default();
    time.len() >= 20
        && time.ends_with('Z')
        && time.as_bytes()[4] == b'-'
        && time.as_bytes()[10] == b'T'
        && ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"].contains(&level)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_client_field_forges_a_line_with_sigv4() {
    no_forged_line(SIGV4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_client_field_forges_a_line_without_auth() {
    no_forged_line("").await;
}
