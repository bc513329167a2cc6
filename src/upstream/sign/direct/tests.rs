//! The direct signer against `aws-sigv4`'s general one: the same signature, or a refusal.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::sign::v4::generate_signing_key;
use bytes::Bytes;
use http::Request;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use http_body_util::Full;

use super::sign;
use crate::upstream::sign::sign_request;

fn request(uri: &str, headers: &[(&str, &str)], body: &[u8]) -> Request<Full<Bytes>> {
    let mut builder = Request::post(uri);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder
        .body(Full::new(Bytes::copy_from_slice(body)))
        .unwrap()
}

/// A request's headers, sorted, as text.
type Headers = Vec<(String, String)>;

fn headers_of(request: &Request<Full<Bytes>>) -> Headers {
    let mut headers: Vec<_> = request
        .headers()
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_owned()))
        .collect();
    headers.sort();
    headers
}

/// Signs a copy both ways and returns (direct, general) headers; `None` if direct declined.
fn both(
    uri: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    creds: &Credentials,
    region: &str,
    time: SystemTime,
) -> Option<(Headers, Headers)> {
    let derived = generate_signing_key(creds.secret_access_key(), time, region, "dynamodb");
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, derived.as_ref());
    let mut direct = request(uri, headers, body);
    let untouched = headers_of(&direct);
    if sign(&mut direct, body, creds, region, time, &key).is_none() {
        assert_eq!(headers_of(&direct), untouched, "a refusal changes nothing");
        return None;
    }
    let mut general = request(uri, headers, body);
    sign_request(&mut general, body, creds, region, time).unwrap();
    Some((headers_of(&direct), headers_of(&general)))
}

const BASE: &[(&str, &str)] = &[
    ("host", "127.0.0.1:8001"),
    ("content-type", "application/x-amz-json-1.0"),
    ("x-amz-target", "DynamoDB_20120810.GetItem"),
];

#[test]
fn signs_as_aws_sigv4_does_across_keys_regions_times_and_bodies() {
    let static_keys = Credentials::from_keys(
        "AKIDEXAMPLE",
        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        None,
    );
    let session = Credentials::from_keys(
        "ASIAEXAMPLE",
        "secret/with+chars=",
        Some("FwoGZXIvYXdzE+/token==".into()),
    );
    let bodies: [&[u8]; 4] = [
        b"",
        b"{}",
        br#"{"TableName":"T","Key":{"K":{"S":"\u00e9"}}}"#,
        &[b'x'; 5000],
    ];
    let times = [
        SystemTime::UNIX_EPOCH + Duration::from_hours(482_136),
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_798_761_599), // 23:59:59 on a day's edge
        SystemTime::now(),
    ];
    let mut checked = 0;
    for creds in [&static_keys, &session] {
        for region in ["us-east-1", "eu-central-1"] {
            for body in bodies {
                for time in times {
                    for agent in [None, Some("globalscale/0.1 aws-sdk-rust/1.0")] {
                        let mut headers = BASE.to_vec();
                        headers.extend(agent.map(|a| ("user-agent", a)));
                        let (direct, general) = both(
                            "http://127.0.0.1:8001/",
                            &headers,
                            body,
                            creds,
                            region,
                            time,
                        )
                        .expect("the sidecar's own request shape");
                        assert_eq!(direct, general, "{region} {time:?} {agent:?}");
                        checked += 1;
                    }
                }
            }
        }
    }
    assert_eq!(checked, 2 * 2 * 4 * 3 * 2);
}

#[test]
fn an_https_endpoint_without_a_slash_is_signed_the_same() {
    let creds = Credentials::from_keys("AKID", "secret", None);
    let headers = [
        ("host", "dynamodb.us-west-2.amazonaws.com"),
        ("content-type", "application/x-amz-json-1.0"),
        ("x-amz-target", "DynamoDB_20120810.PutItem"),
    ];
    let (direct, general) = both(
        "https://dynamodb.us-west-2.amazonaws.com",
        &headers,
        b"{}",
        &creds,
        "us-west-2",
        SystemTime::now(),
    )
    .unwrap();
    assert_eq!(direct, general);
    assert!(direct.iter().any(|(n, _)| n == AUTHORIZATION.as_str()));
}

#[test]
fn declines_what_needs_the_general_signer() {
    let creds = Credentials::from_keys("AKID", "secret", None);
    let now = SystemTime::now();
    let with = |extra: (&'static str, &'static str)| {
        let mut headers: Vec<_> = BASE
            .iter()
            .copied()
            .filter(|(n, _)| *n != extra.0)
            .collect();
        headers.push(extra);
        headers
    };
    let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("http://127.0.0.1:8001/base/", BASE.to_vec()),
        ("http://127.0.0.1:8001/?a=b", BASE.to_vec()),
        (
            "http://127.0.0.1:8001/",
            with((CONTENT_TYPE.as_str(), " application/json")),
        ),
        (
            "http://127.0.0.1:8001/",
            with((CONTENT_TYPE.as_str(), "a  b")),
        ),
        ("http://127.0.0.1:8001/", with(("x-amz-meta", "1"))),
        (
            "http://127.0.0.1:8001/",
            BASE.iter()
                .copied()
                .filter(|(n, _)| *n != HOST.as_str())
                .collect(),
        ),
    ];
    for (uri, headers) in cases {
        assert!(
            both(uri, &headers, b"{}", &creds, "us-east-1", now).is_none(),
            "{uri} {headers:?}"
        );
        // The general signer still signs each, so the request goes out signed either way.
        let mut general = request(uri, &headers, b"{}");
        if headers.iter().any(|(n, _)| *n == HOST.as_str()) {
            sign_request(&mut general, b"{}", &creds, "us-east-1", now).unwrap();
        }
    }
}
