//! Requests signed as the SDKs sign them (with `aws-sigv4`, and one vector from botocore),
//! then verified as they arrive at the sidecar: the URI in origin form with a `Host`
//! header over HTTP/1.1, or the authority in the URI and no `Host` over HTTP/2.

use std::time::UNIX_EPOCH;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use http::header::{AUTHORIZATION, HOST, HeaderName, HeaderValue};
use proptest::prelude::*;

use super::*;

const AKID: &str = "AKIAORDERSEXAMPLE";
const SECRET: &str = "orders/K7MDENG+bPxRfiCYEXAMPLEKEY";
const ENDPOINT: &str = "http://127.0.0.1:8000/";
const AUTHORITY: &str = "127.0.0.1:8000";
const BODY: &[u8] = br#"{"TableName":"Orders","Item":{"pk":{"S":"order#1"}}}"#;

/// 2025-06-15T15:06:40Z.
fn signed_time() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_750_000_000)
}

fn verifier() -> Verifier {
    Verifier::new(vec![
        ClientKey {
            name: "billing".into(),
            access_key_id: "AKIABILLINGEXAMPLE".into(),
            secret_access_key: "billing-secret".into(),
        },
        ClientKey {
            name: "orders".into(),
            access_key_id: AKID.into(),
            secret_access_key: SECRET.into(),
        },
    ])
}

/// What the sidecar's server hands the verifier.
#[derive(Clone, Debug)]
struct Received {
    uri: Uri,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Received {
    fn verify<'v>(&self, verifier: &'v Verifier, now: SystemTime) -> Result<&'v str, AuthError> {
        verifier.verify(&Method::POST, &self.uri, &self.headers, &self.body, now)
    }

    fn authorization(&self) -> String {
        self.headers[AUTHORIZATION].to_str().unwrap().to_owned()
    }

    fn set(&mut self, name: &'static str, value: &str) {
        self.headers
            .insert(name, HeaderValue::from_str(value).unwrap());
    }

    fn set_authorization(&mut self, value: &str) {
        self.set("authorization", value);
    }
}

/// How a client signs.
struct Signing<'a> {
    access_key_id: &'a str,
    secret: &'a str,
    session_token: Option<&'a str>,
    region: &'a str,
    service: &'a str,
    time: SystemTime,
    settings: SigningSettings,
    endpoint: &'a str,
}

impl Default for Signing<'_> {
    fn default() -> Self {
        Self {
            access_key_id: AKID,
            secret: SECRET,
            session_token: None,
            region: "us-east-1",
            service: "dynamodb",
            time: signed_time(),
            settings: SigningSettings::default(),
            endpoint: ENDPOINT,
        }
    }
}

/// A PutItem signed like an SDK: the signer sees the endpoint URI and no `Host`; the
/// HTTP/1.1 client then sends the authority as `Host` and the path alone.
fn put_item(signing: Signing<'_>) -> Received {
    let headers = [
        ("content-type", "application/x-amz-json-1.0"),
        ("x-amz-target", "DynamoDB_20120810.PutItem"),
        ("x-amz-user-agent", "aws-sdk-rust/1.3.0 os/linux lang/rust"),
    ];
    let creds = Credentials::from_keys(
        signing.access_key_id,
        signing.secret,
        signing.session_token.map(str::to_owned),
    );
    let identity: Identity = creds.into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(signing.region)
        .name(signing.service)
        .time(signing.time)
        .settings(signing.settings)
        .build()
        .unwrap()
        .into();
    let signable = SignableRequest::new(
        "POST",
        signing.endpoint,
        headers.iter().copied(),
        SignableBody::Bytes(BODY),
    )
    .unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    let mut request = http::Request::post(signing.endpoint).body(()).unwrap();
    for (name, value) in headers {
        request
            .headers_mut()
            .insert(name, HeaderValue::from_static(value));
    }
    instructions.apply_to_request_http1x(&mut request);
    let mut headers = request.headers().clone();
    let host = request.uri().authority().unwrap().as_str();
    headers.insert(HOST, HeaderValue::from_str(host).unwrap());
    Received {
        uri: Uri::from_static("/"),
        headers,
        body: BODY.to_vec(),
    }
}

fn signed() -> Received {
    put_item(Signing::default())
}

fn refusal(received: &Received) -> AuthError {
    received
        .verify(&verifier(), signed_time())
        .expect_err("refused")
}

#[test]
fn an_sdk_signed_put_item_is_the_client_it_names() {
    let received = signed();
    assert!(
        received
            .authorization()
            .contains("SignedHeaders=content-type;host;x-amz-date;x-amz-target;x-amz-user-agent")
    );
    assert_eq!(received.verify(&verifier(), signed_time()), Ok("orders"));
}

#[test]
fn a_signed_session_token_is_accepted() {
    let received = put_item(Signing {
        session_token: Some("FwoGZXIvYXdzEXAMPLE//token=="),
        ..Signing::default()
    });
    assert!(received.authorization().contains("x-amz-security-token"));
    assert_eq!(received.verify(&verifier(), signed_time()), Ok("orders"));
}

#[test]
fn a_session_token_outside_the_signature_is_refused() {
    let mut received = signed();
    received.set("x-amz-security-token", "INJECTED");
    let err = refusal(&received);
    assert_eq!(err.reason(), "unsigned_token");
    assert_eq!(err.error_name(), "UnrecognizedClientException");
}

#[test]
fn any_region_is_accepted() {
    for region in ["eu-west-1", "ap-southeast-2", "localhost"] {
        let received = put_item(Signing {
            region,
            ..Signing::default()
        });
        assert_eq!(
            received.verify(&verifier(), signed_time()),
            Ok("orders"),
            "{region}"
        );
    }
}

#[test]
fn a_wrong_secret_is_a_bad_signature() {
    let err = refusal(&put_item(Signing {
        secret: "not-the-secret",
        ..Signing::default()
    }));
    assert_eq!(err, AuthError::BadSignature);
    assert_eq!(err.reason(), "bad_signature");
    assert_eq!(err.error_name(), "InvalidSignatureException");
    assert_eq!(
        err.to_string(),
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
    );
}

#[test]
fn an_unknown_access_key_is_unrecognized() {
    let err = refusal(&put_item(Signing {
        access_key_id: "AKIASTRANGER",
        ..Signing::default()
    }));
    assert_eq!(err.reason(), "unknown_key");
    assert_eq!(err.error_name(), "UnrecognizedClientException");
    assert_eq!(
        err.to_string(),
        "The security token included in the request is invalid."
    );
}

#[test]
fn a_mutated_body_is_refused() {
    let mut received = signed();
    received.body = br#"{"TableName":"Orders","Item":{"pk":{"S":"order#2"}}}"#.to_vec();
    assert_eq!(refusal(&received), AuthError::BadSignature);
    received.body.clear();
    assert_eq!(refusal(&received), AuthError::BadSignature);
}

#[test]
fn a_mutated_signed_header_is_refused() {
    let mut received = signed();
    received.set("x-amz-target", "DynamoDB_20120810.DeleteItem");
    assert_eq!(refusal(&received), AuthError::BadSignature);

    let mut received = signed();
    received.headers.append(
        "x-amz-target",
        HeaderValue::from_static("DynamoDB_20120810.PutItem"),
    );
    assert_eq!(refusal(&received), AuthError::BadSignature);

    let mut received = signed();
    received.set("host", "evil.example:8000");
    assert_eq!(refusal(&received), AuthError::BadSignature);
}

#[test]
fn an_unsigned_header_may_change() {
    let mut received = signed();
    received.set("user-agent", "anything/1.0");
    received.set("content-length", "999");
    assert_eq!(received.verify(&verifier(), signed_time()), Ok("orders"));
}

#[test]
fn a_mutated_signed_header_list_is_refused() {
    let mut received = signed();
    let auth = received.authorization().replace("content-type;", "");
    received.set_authorization(&auth);
    assert_eq!(refusal(&received), AuthError::BadSignature);

    let mut received = signed();
    received.set("x-amz-extra", "1");
    let auth = received
        .authorization()
        .replace("x-amz-user-agent", "x-amz-extra;x-amz-user-agent");
    received.set_authorization(&auth);
    assert_eq!(refusal(&received), AuthError::BadSignature);
}

#[test]
fn a_mutated_signature_is_refused() {
    let received = signed();
    let auth = received.authorization();
    let (head, signature) = auth.split_once("Signature=").unwrap();
    for replacement in [
        signature.replacen(
            &signature[..1],
            if &signature[..1] == "0" { "1" } else { "0" },
            1,
        ),
        signature.to_uppercase(),
        signature[1..].to_owned(),
        format!("{signature}0"),
        "0".repeat(64),
    ] {
        let mut mutated = received.clone();
        mutated.set_authorization(&format!("{head}Signature={replacement}"));
        assert_eq!(refusal(&mutated), AuthError::BadSignature, "{replacement}");
    }
}

#[test]
fn header_case_order_and_spacing_do_not_matter() {
    let received = signed();
    let mut reshaped = HeaderMap::new();
    let mut in_reverse: Vec<_> = received.headers.iter().collect();
    in_reverse.reverse();
    for (name, value) in in_reverse {
        let odd_case: String = name
            .as_str()
            .chars()
            .enumerate()
            .map(|(i, c)| {
                if i % 2 == 0 {
                    c.to_ascii_uppercase()
                } else {
                    c
                }
            })
            .collect();
        let spaced = value.to_str().unwrap().replace(' ', "   ");
        reshaped.append(
            HeaderName::from_bytes(odd_case.as_bytes()).unwrap(),
            HeaderValue::from_str(&format!("  {spaced}   ")).unwrap(),
        );
    }
    let reshaped = Received {
        headers: reshaped,
        ..received
    };
    assert_eq!(reshaped.verify(&verifier(), signed_time()), Ok("orders"));
}

#[test]
fn a_date_ten_minutes_away_is_expired_or_not_yet_current() {
    let received = signed();
    let later = signed_time() + Duration::from_mins(10);
    let err = received.verify(&verifier(), later).unwrap_err();
    assert_eq!(err.reason(), "expired");
    assert_eq!(err.error_name(), "InvalidSignatureException");
    assert_eq!(
        err.to_string(),
        "Signature expired: 20250615T150640Z is now earlier than 20250615T151140Z (20250615T151640Z - 5 min.)"
    );

    let earlier = signed_time() - Duration::from_mins(10);
    let err = received.verify(&verifier(), earlier).unwrap_err();
    assert_eq!(err.reason(), "not_yet_valid");
    assert_eq!(err.error_name(), "InvalidSignatureException");
    assert_eq!(
        err.to_string(),
        "Signature not yet current: 20250615T150640Z is still later than 20250615T150140Z (20250615T145640Z + 5 min.)"
    );
}

#[test]
fn the_skew_window_is_inclusive_and_adjustable() {
    let received = signed();
    let verifier = verifier();
    for now in [
        signed_time() + DEFAULT_MAX_SKEW,
        signed_time() - DEFAULT_MAX_SKEW,
    ] {
        assert_eq!(received.verify(&verifier, now), Ok("orders"));
    }
    let lenient = self::verifier().with_max_skew(Duration::from_mins(15));
    let later = signed_time() + Duration::from_mins(10);
    assert_eq!(received.verify(&lenient, later), Ok("orders"));
    let err = received
        .verify(&lenient, signed_time() + Duration::from_mins(20))
        .unwrap_err();
    assert!(err.to_string().ends_with("- 15 min.)"), "{err}");
}

#[test]
fn a_credential_for_another_service_is_refused() {
    let err = refusal(&put_item(Signing {
        service: "s3",
        ..Signing::default()
    }));
    assert_eq!(err.reason(), "wrong_service");
    assert_eq!(err.error_name(), "InvalidSignatureException");
    assert_eq!(
        err.to_string(),
        "Credential should be scoped to correct service: 'dynamodb'. "
    );
}

#[test]
fn the_scope_date_must_be_the_request_date() {
    let mut received = signed();
    let auth = received.authorization().replace("/20250615/", "/20250614/");
    received.set_authorization(&auth);
    let err = refusal(&received);
    assert_eq!(err.reason(), "bad_scope");
    assert_eq!(
        err.to_string(),
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '20250614' != '20250615', from '20250615T150640Z'."
    );

    let mut received = signed();
    let auth = received.authorization().replace(
        "/us-east-1/dynamodb/aws4_request",
        "/us east/dynamodb/aws5_request",
    );
    received.set_authorization(&auth);
    assert_eq!(
        refusal(&received).to_string(),
        "Credential should be scoped to a valid region, not 'us east'. Credential should be scoped with a valid terminator: 'aws4_request', not 'aws5_request'. "
    );
}

#[test]
fn over_http2_the_authority_is_the_host() {
    let mut received = signed();
    received.headers.remove(HOST);
    received.uri = Uri::from_static(ENDPOINT);
    assert_eq!(received.verify(&verifier(), signed_time()), Ok("orders"));

    // A default port in the authority is not part of what the client signed.
    let mut received = put_item(Signing {
        endpoint: "https://dynamodb.us-east-1.amazonaws.com/",
        ..Signing::default()
    });
    received.headers.remove(HOST);
    received.uri = Uri::from_static("https://dynamodb.us-east-1.amazonaws.com:443/");
    assert_eq!(received.verify(&verifier(), signed_time()), Ok("orders"));

    let mut received = signed();
    received.headers.remove(HOST);
    assert_eq!(
        refusal(&received).to_string(),
        "'host' is named as a SignedHeader, but it does not exist in the HTTP request."
    );
}

#[test]
fn the_host_must_be_signed() {
    let mut received = signed();
    let auth = received.authorization().replace(
        "SignedHeaders=content-type;host;",
        "SignedHeaders=content-type;",
    );
    received.set_authorization(&auth);
    let err = refusal(&received);
    assert_eq!(err, AuthError::HostNotSigned);
    assert_eq!(
        err.to_string(),
        "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
    );
}

/// A signature that leaves out the target could be replayed as another operation (a
/// GetItem's as a DeleteItem), and one that leaves out its date, at any time.
#[test]
fn the_target_and_the_date_must_be_signed() {
    for (part, header) in [
        (";x-amz-target", "X-Amz-Target"),
        ("x-amz-date;", "X-Amz-Date"),
    ] {
        let mut received = signed();
        let auth = received.authorization();
        assert!(auth.contains(part), "{auth}");
        received.set_authorization(&auth.replacen(part, "", 1));
        let err = refusal(&received);
        assert_eq!(err, AuthError::NotSigned(header));
        assert_eq!(err.error_name(), "InvalidSignatureException");
        assert_eq!(
            err.to_string(),
            format!("'{header}' must be a 'SignedHeader' in the AWS Authorization.")
        );
    }
}

#[test]
fn a_declared_payload_hash_must_be_the_body_hash() {
    let mut settings = SigningSettings::default();
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    let received = put_item(Signing {
        settings,
        ..Signing::default()
    });
    assert!(received.authorization().contains("x-amz-content-sha256"));
    assert_eq!(received.verify(&verifier(), signed_time()), Ok("orders"));

    let mut tampered = received.clone();
    tampered.body.push(b' ');
    assert_eq!(refusal(&tampered), AuthError::PayloadHashMismatch);

    let mut unsigned = received;
    unsigned.set("x-amz-content-sha256", "UNSIGNED-PAYLOAD");
    let err = refusal(&unsigned);
    assert_eq!(err.reason(), "bad_payload_hash");
    assert_eq!(err.error_name(), "InvalidSignatureException");
}

#[test]
fn no_authorization_is_a_missing_token() {
    let mut received = signed();
    received.headers.remove(AUTHORIZATION);
    let err = refusal(&received);
    assert_eq!(err, AuthError::Missing);
    assert_eq!(err.error_name(), "MissingAuthenticationTokenException");
    assert_eq!(err.reason(), "missing");
    assert_eq!(err.to_string(), "Request is missing Authentication Token");

    received.set_authorization("Basic b3JkZXJzOnNlY3JldA==");
    assert_eq!(refusal(&received), AuthError::Missing);
}

#[test]
fn an_incomplete_authorization_names_what_is_missing() {
    let mut received = signed();
    received.headers.remove("x-amz-date");
    let header =
        "AWS4-HMAC-SHA256 Credential=AKIAORDERSEXAMPLE/20250615/us-east-1/dynamodb/aws4_request";
    received.set_authorization(header);
    let err = refusal(&received);
    assert_eq!(err.error_name(), "IncompleteSignatureException");
    assert_eq!(err.reason(), "malformed");
    assert_eq!(
        err.to_string(),
        format!(
            "Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization={header}"
        )
    );
}

#[test]
fn malformed_authorizations_are_incomplete_signatures() {
    let received = signed();
    let auth = received.authorization();
    let cases = [
        (
            auth.replace("Credential=", "Credential "),
            "'Credential AKIAORDERSEXAMPLE/20250615/us-east-1/dynamodb/aws4_request' not a valid key=value pair (missing equal-sign) in Authorization header: ",
        ),
        (
            auth.replace(", Signature=", ", Credential=AKIAORDERSEXAMPLE/20250615/us-east-1/dynamodb/aws4_request, Signature="),
            "'Credential' appears more than once in Authorization header: ",
        ),
        (
            auth.replace("AWS4-HMAC-SHA256", "AWS4-HMAC-SHA512"),
            "Unsupported AWS 'algorithm': 'AWS4-HMAC-SHA512' (only AWS4-HMAC-SHA256 for now). ",
        ),
        (
            auth.replace("/dynamodb/aws4_request", "/dynamodb"),
            "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got 'AKIAORDERSEXAMPLE/20250615/us-east-1/dynamodb'",
        ),
        (
            auth.replace("SignedHeaders=content-type;", "SignedHeaders=accept;content-type;"),
            "'accept' is named as a SignedHeader, but it does not exist in the HTTP request.",
        ),
    ];
    for (header, message) in cases {
        let mut mutated = received.clone();
        mutated.set_authorization(&header);
        let err = refusal(&mutated);
        assert_eq!(err.error_name(), "IncompleteSignatureException", "{header}");
        assert!(err.to_string().starts_with(message), "{err}");
    }
}

#[test]
fn a_date_not_in_basic_format_is_incomplete() {
    let mut received = signed();
    received.set("x-amz-date", "2025-06-15T15:06:40Z");
    let err = refusal(&received);
    assert_eq!(err.error_name(), "IncompleteSignatureException");
    assert_eq!(
        err.to_string(),
        "Date must be in ISO-8601 'basic format'. Got '2025-06-15T15:06:40Z'. See http://en.wikipedia.org/wiki/ISO_8601"
    );
}

/// A `Date` header stands in for `X-Amz-Date`. No SDK signs this way any more, so the
/// canonical request is written out here by hand (from the SigV4 specification, not from
/// the code under test) and signed with `aws-sigv4`'s primitives.
#[test]
fn an_http_date_stands_in_for_x_amz_date() {
    let canonical = "POST\n/\n\ndate:Sun, 15 Jun 2025 15:06:40 GMT\nhost:127.0.0.1:8000\n\
        x-amz-target:DynamoDB_20120810.ListTables\n\ndate;host;x-amz-target\n\
        44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
    assert!(canonical.ends_with(&crate::digest::sha256_hex(b"{}")));
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n20250615T150640Z\n20250615/us-east-1/dynamodb/aws4_request\n{}",
        crate::digest::sha256_hex(canonical.as_bytes())
    );
    let key = generate_signing_key(SECRET, signed_time(), "us-east-1", "dynamodb");
    let signature = calculate_signature(key, string_to_sign.as_bytes());
    let mut headers = HeaderMap::new();
    headers.insert(
        "date",
        HeaderValue::from_static("Sun, 15 Jun 2025 15:06:40 GMT"),
    );
    headers.insert(
        "x-amz-target",
        HeaderValue::from_static("DynamoDB_20120810.ListTables"),
    );
    headers.insert(HOST, HeaderValue::from_static(AUTHORITY));
    headers.insert(
        AUTHORIZATION,
        HeaderValue::from_str(&format!(
            "AWS4-HMAC-SHA256 Credential={AKID}/20250615/us-east-1/dynamodb/aws4_request,SignedHeaders=date;host;x-amz-target,Signature={signature}"
        ))
        .unwrap(),
    );
    let received = Received {
        uri: Uri::from_static("/"),
        headers,
        body: b"{}".to_vec(),
    };
    assert_eq!(received.verify(&verifier(), signed_time()), Ok("orders"));
}

/// Cross-implementation vector: botocore 1.43's `SigV4Auth` signed this request. The
/// script (run with the project's tools venv):
///
/// ```python
/// import datetime
/// from unittest import mock
/// from botocore.auth import SigV4Auth
/// from botocore.awsrequest import AWSRequest
/// from botocore.credentials import Credentials
///
/// body = b'{"TableName":"Orders","Item":{"pk":{"S":"order#1"},"total":{"N":"42"}}}'
/// req = AWSRequest(method="POST", url="https://dynamodb.eu-west-1.amazonaws.com/", data=body,
///                  headers={"Content-Type": "application/x-amz-json-1.0",
///                           "X-Amz-Target": "DynamoDB_20120810.PutItem"})
/// creds = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
///                     "SESSIONTOKEN/EXAMPLE==")
/// at = datetime.datetime(2025, 6, 15, 8, 30, 0)
/// with mock.patch("botocore.auth.get_current_datetime", return_value=at):
///     SigV4Auth(creds, "dynamodb", "eu-west-1").add_auth(req)
/// for k, v in req.headers.items():
///     print(f"{k}: {v}")
/// ```
#[test]
fn botocore_signs_what_the_verifier_accepts() {
    let mut headers = HeaderMap::new();
    for (name, value) in [
        ("Content-Type", "application/x-amz-json-1.0"),
        ("X-Amz-Target", "DynamoDB_20120810.PutItem"),
        ("X-Amz-Date", "20250615T083000Z"),
        ("X-Amz-Security-Token", "SESSIONTOKEN/EXAMPLE=="),
        (
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20250615/eu-west-1/dynamodb/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target, Signature=44dd16ecc035cf97e17f54abb413f429f6dc28818eb9c9eed77d0893d9f5e6ad",
        ),
        ("Host", "dynamodb.eu-west-1.amazonaws.com"),
    ] {
        headers.insert(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_static(value),
        );
    }
    let received = Received {
        uri: Uri::from_static("/"),
        headers,
        body: br#"{"TableName":"Orders","Item":{"pk":{"S":"order#1"},"total":{"N":"42"}}}"#
            .to_vec(),
    };
    let verifier = Verifier::new(vec![ClientKey {
        name: "boto".into(),
        access_key_id: "AKIDEXAMPLE".into(),
        secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
    }]);
    let now = UNIX_EPOCH + Duration::from_secs(1_749_976_200 + 42);
    assert_eq!(received.verify(&verifier, now), Ok("boto"));

    let mut wrong = received;
    wrong.body.pop();
    assert_eq!(wrong.verify(&verifier, now), Err(AuthError::BadSignature));
}

#[test]
fn a_signing_key_is_kept_only_once_it_has_verified() {
    let verifier = verifier();
    let bad = put_item(Signing {
        secret: "guess",
        ..Signing::default()
    });
    assert!(bad.verify(&verifier, signed_time()).is_err());
    assert_eq!(verifier.keys.len(), 0);
    let good = signed();
    assert_eq!(good.verify(&verifier, signed_time()), Ok("orders"));
    assert_eq!(verifier.keys.len(), 1);
    // The kept key verifies again, and still refuses a wrong signature.
    assert_eq!(good.verify(&verifier, signed_time()), Ok("orders"));
    let mut tampered = good;
    tampered.body.push(b'\n');
    assert_eq!(
        tampered.verify(&verifier, signed_time()),
        Err(AuthError::BadSignature)
    );
    assert_eq!(verifier.keys.len(), 1);
}

#[test]
fn hostile_headers_are_refused_without_a_panic() {
    let received = signed();
    let auth = received.authorization();
    let huge_list = format!("SignedHeaders={}host;", "x;".repeat(20_000));
    let hostile = [
        auth.replace("SignedHeaders=", &huge_list),
        auth.replace("SignedHeaders=content-type;", "SignedHeaders=;;;"),
        auth.replace("Credential=", "Credential=////////"),
        auth.replace("us-east-1", &"r".repeat(10_000)),
        "AWS4-".to_owned(),
        "AWS4-HMAC-SHA256".to_owned(),
        "AWS4-HMAC-SHA256 ,,,,=,=,==".to_owned(),
        "AWS4-HMAC-SHA256 Credential=/////, SignedHeaders=host, Signature=".to_owned(),
        format!("{auth}, Signature=00"),
    ];
    for header in hostile {
        let mut mutated = received.clone();
        mutated.set_authorization(&header);
        assert!(mutated.verify(&verifier(), signed_time()).is_err());
    }

    let mut binary = received.clone();
    binary.headers.insert(
        "x-amz-target",
        HeaderValue::from_bytes(b"\xff\xfe caf\xc3\xa9").unwrap(),
    );
    assert_eq!(refusal(&binary), AuthError::BadSignature);
    binary.headers.insert(
        AUTHORIZATION,
        HeaderValue::from_bytes(b"AWS4-\xff\x80").unwrap(),
    );
    assert!(binary.verify(&verifier(), signed_time()).is_err());

    let mut far = received;
    far.set("x-amz-date", "99991231T235959Z");
    assert_eq!(refusal(&far).reason(), "not_yet_valid");
    far.set("x-amz-date", "00010101T000000Z");
    assert_eq!(refusal(&far).reason(), "expired");
    assert!(far.verify(&verifier(), UNIX_EPOCH).is_err());
}

#[test]
fn the_verifier_is_shared_across_threads() {
    fn shareable<T: Send + Sync + 'static>() {}
    shareable::<Verifier>();
    let verifier = Arc::new(verifier());
    let received = signed();
    std::thread::scope(|scope| {
        for _ in 0..4 {
            let verifier = Arc::clone(&verifier);
            let received = received.clone();
            scope.spawn(move || {
                assert_eq!(received.verify(&verifier, signed_time()), Ok("orders"));
            });
        }
    });
}

#[test]
fn debug_output_hides_secrets() {
    let printed = format!("{:?}", verifier());
    assert!(!printed.contains(SECRET), "{printed}");
    assert!(printed.contains(AKID));
}

proptest! {
    #[test]
    fn no_single_byte_change_to_signature_or_body_is_accepted(
        in_body: bool,
        position: usize,
        flip in 1u8..=255,
    ) {
        let mut received = signed();
        if in_body {
            let index = position % received.body.len();
            received.body[index] ^= flip;
        } else {
            let auth = received.authorization();
            let start = auth.find("Signature=").unwrap() + "Signature=".len();
            let mut bytes = auth.into_bytes();
            let index = start + position % (bytes.len() - start);
            bytes[index] ^= flip;
            // A byte no header may carry cannot reach the verifier at all.
            let Ok(value) = HeaderValue::from_bytes(&bytes) else {
                return Ok(());
            };
            received.headers.insert(AUTHORIZATION, value);
        }
        prop_assert!(received.verify(&verifier(), signed_time()).is_err());
    }
}
