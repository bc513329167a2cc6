//! Browsers (CORS): the JavaScript SDK in a web page sends every DynamoDB call with headers
//! no simple request has (`X-Amz-Target`, `Authorization`), so the browser first asks with
//! a preflight `OPTIONS`; DynamoDB answers it with 200, echoing the method and headers asked
//! for, and so does the sidecar, itself, without a region.
//!
//! Whether the page may then read the answers is the origin's permission: DynamoDB allows
//! every origin (its requests need a signature). The sidecar signs with its own credentials,
//! so an open door would let any page a user visits call DynamoDB through it: it allows only
//! `[cors] allowed_origins` (none by default, as DynamoDB Local does; `["*"]` to answer as
//! DynamoDB does). An origin not allowed gets the same answers without
//! `Access-Control-Allow-Origin`, and the browser keeps them from the page.

use http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, ACCESS_CONTROL_REQUEST_HEADERS,
    ACCESS_CONTROL_REQUEST_METHOD, ORIGIN, VARY,
};
use http::{HeaderMap, HeaderValue, Method, StatusCode};

/// How long a browser may reuse a preflight's answer: DynamoDB's (and DynamoDB Local's) 20
/// days.
const MAX_AGE: &str = "1728000";

/// The answer headers a page's script may read: those the SDKs read.
const EXPOSE: &str = "x-amzn-RequestId,x-amzn-ErrorType,x-amzn-ErrorMessage,x-amz-crc32,Date";

/// The origins whose pages may read the sidecar's answers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedOrigins {
    /// `*`: every origin, as DynamoDB.
    pub any: bool,
    /// Exact origins (`https://app.example.com`), compared without regard to case.
    pub origins: Vec<String>,
}

impl AllowedOrigins {
    /// The `Access-Control-Allow-Origin` for a request from `origin`, when it is allowed.
    fn allow(&self, origin: &HeaderValue) -> Option<HeaderValue> {
        if self.any {
            return Some(HeaderValue::from_static("*"));
        }
        let text = origin.to_str().ok()?;
        self.origins
            .iter()
            .any(|o| o.eq_ignore_ascii_case(text))
            .then(|| origin.clone())
    }
}

/// Whether a request is a CORS preflight: `OPTIONS` asking for a method.
pub fn is_preflight(method: &Method, headers: &HeaderMap) -> bool {
    method == Method::OPTIONS && headers.contains_key(ACCESS_CONTROL_REQUEST_METHOD)
}

/// The status and headers of the answer to a preflight (its body is empty).
pub fn preflight(request: &HeaderMap, allowed: &AllowedOrigins) -> (StatusCode, HeaderMap) {
    let mut headers = HeaderMap::new();
    for (asked, allow) in [
        (ACCESS_CONTROL_REQUEST_METHOD, ACCESS_CONTROL_ALLOW_METHODS),
        (ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_ALLOW_HEADERS),
    ] {
        if let Some(value) = request.get(asked) {
            headers.insert(allow, value.clone());
        }
    }
    headers.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static(MAX_AGE));
    decorate(request.get(ORIGIN), allowed, &mut headers);
    (StatusCode::OK, headers)
}

/// Adds to an answer's `headers` what lets the page of the request's `Origin` read it, when
/// that origin is allowed; nothing for a request without `Origin`.
pub fn decorate(origin: Option<&HeaderValue>, allowed: &AllowedOrigins, headers: &mut HeaderMap) {
    let Some(origin) = origin else {
        return;
    };
    if !allowed.any && !allowed.origins.is_empty() {
        // The answer depends on the origin: a shared cache must not serve it to another.
        headers.append(VARY, HeaderValue::from_static("Origin"));
    }
    if let Some(allow) = allowed.allow(origin) {
        headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, allow);
        headers.insert(
            ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(EXPOSE),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    http::HeaderName::from_static(k),
                    HeaderValue::from_static(v),
                )
            })
            .collect()
    }

    fn only(origin: &str) -> AllowedOrigins {
        AllowedOrigins {
            any: false,
            origins: vec![origin.to_owned()],
        }
    }

    #[test]
    fn a_preflight_echoes_what_it_asks_for() {
        let asked = request(&[
            ("origin", "https://app.example.com"),
            ("access-control-request-method", "POST"),
            (
                "access-control-request-headers",
                "x-amz-target,content-type",
            ),
        ]);
        assert!(is_preflight(&Method::OPTIONS, &asked));
        assert!(!is_preflight(&Method::POST, &asked));
        let (status, headers) = preflight(&asked, &AllowedOrigins::default());
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[ACCESS_CONTROL_ALLOW_METHODS], "POST");
        assert_eq!(
            headers[ACCESS_CONTROL_ALLOW_HEADERS],
            "x-amz-target,content-type"
        );
        assert_eq!(headers[ACCESS_CONTROL_MAX_AGE], MAX_AGE);
        // No origin is allowed by default.
        assert!(!headers.contains_key(ACCESS_CONTROL_ALLOW_ORIGIN));
        let (_, headers) = preflight(&asked, &only("https://APP.example.com"));
        assert_eq!(
            headers[ACCESS_CONTROL_ALLOW_ORIGIN],
            "https://app.example.com"
        );
        assert_eq!(headers[VARY], "Origin");
    }

    #[test]
    fn only_allowed_origins_may_read_answers() {
        let any = AllowedOrigins {
            any: true,
            origins: Vec::new(),
        };
        let mut headers = HeaderMap::new();
        decorate(
            Some(&HeaderValue::from_static("http://evil.test")),
            &any,
            &mut headers,
        );
        assert_eq!(headers[ACCESS_CONTROL_ALLOW_ORIGIN], "*");
        assert!(headers.contains_key(ACCESS_CONTROL_EXPOSE_HEADERS));
        assert!(!headers.contains_key(ACCESS_CONTROL_MAX_AGE));

        let mut headers = HeaderMap::new();
        let allowed = only("https://app.example.com");
        decorate(
            Some(&HeaderValue::from_static("http://evil.test")),
            &allowed,
            &mut headers,
        );
        assert!(!headers.contains_key(ACCESS_CONTROL_ALLOW_ORIGIN));

        // Without an Origin, no CORS header at all.
        let mut headers = HeaderMap::new();
        decorate(None, &any, &mut headers);
        assert!(headers.is_empty());
    }
}
