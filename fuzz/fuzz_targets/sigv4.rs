//! Any bytes as a signed request: verified or refused, never a panic.
//!
//! The input reads as an HTTP/1.1 request without its version: `METHOD URI`, header lines
//! `name: value` (any bytes a header may carry), an empty line, and the body. What does not
//! parse is left out rather than ending the run, so mutations keep reaching the verifier.
//! `corpus/sigv4/` seeds it with three requests botocore signed that verify at the time
//! below: a PutItem with a session token, a ListTables over HTTP/2 (authority in the URI,
//! no `Host`), and a Query with a query string, `x-amz-content-sha256` and a header value
//! with a run of spaces.
#![no_main]

use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use globalscale::auth::{ClientKey, Verifier};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use libfuzzer_sys::fuzz_target;

/// 2025-06-15T08:31:00Z, a minute after the botocore seed was signed.
const NOW: u64 = 1_749_976_260;

fn verifier() -> &'static Verifier {
    static VERIFIER: OnceLock<Verifier> = OnceLock::new();
    VERIFIER.get_or_init(|| {
        Verifier::new(vec![
            ClientKey {
                name: "boto".into(),
                access_key_id: "AKIDEXAMPLE".into(),
                secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            },
            ClientKey {
                name: "orders".into(),
                access_key_id: "AKIAORDERSEXAMPLE".into(),
                secret_access_key: "orders/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            },
        ])
    })
}

fuzz_target!(|data: &[u8]| {
    let (head, body) = match data.windows(2).position(|w| w == b"\n\n") {
        Some(end) => (&data[..end], &data[end + 2..]),
        None => (data, &[][..]),
    };
    let mut lines = head.split(|&b| b == b'\n');
    let request_line = lines.next().unwrap_or_default();
    let (method, target) = match request_line.iter().position(|&b| b == b' ') {
        Some(space) => (&request_line[..space], &request_line[space + 1..]),
        None => (request_line, &b"/"[..]),
    };
    let method = Method::from_bytes(method).unwrap_or(Method::POST);
    let uri = Uri::try_from(target).unwrap_or_else(|_| Uri::from_static("/"));
    let mut headers = HeaderMap::new();
    for line in lines {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let value = line[colon + 1..].trim_ascii_start();
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(&line[..colon]),
            HeaderValue::from_bytes(value),
        ) {
            headers.append(name, value);
        }
    }
    let now = UNIX_EPOCH + Duration::from_secs(NOW);
    if let Ok(name) = verifier().verify(&method, &uri, &headers, body, now) {
        assert!(name == "boto" || name == "orders");
    }
    let _ = verifier().verify(&method, &uri, &headers, body, SystemTime::UNIX_EPOCH);
});
