//! SigV4 for the requests the sidecar builds itself, computed directly: a POST to the
//! endpoint's root with no query, a handful of headers whose values need no normalising,
//! and a signing key derived once per day and region (see `Signer::signing_key`).
//!
//! `aws-sigv4`'s general signer takes any request, so for each one it builds a canonical
//! request as a structure of owned strings, sorts and normalises every header, derives the
//! signing key again (four HMACs) and formats its parts through `fmt`: a fifth of the
//! sidecar's CPU per request. The outbound request never varies in those ways; when one
//! does (an endpoint with a path, a client's content type with odd spacing), [`sign`]
//! declines and the general signer takes it. The tests hold the two to the same signature.

use std::time::SystemTime;

use aws_credential_types::Credentials;
use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderName, USER_AGENT};
use http::{HeaderValue, Method, Request};
use http_body_util::Full;

use crate::auth::time::format_basic;
use crate::upstream::outbound::X_AMZ_TARGET;

static X_AMZ_DATE: HeaderName = HeaderName::from_static("x-amz-date");
static X_AMZ_SECURITY_TOKEN: HeaderName = HeaderName::from_static("x-amz-security-token");

/// Signs `request` (whose body is `body`) with `signing_key`, the HMAC key for `creds`, the
/// day of `time` and `region`. Returns `None`, leaving the request untouched, when it is not
/// the shape this signer covers.
pub(super) fn sign(
    request: &mut Request<Full<Bytes>>,
    body: &[u8],
    creds: &Credentials,
    region: &str,
    time: SystemTime,
    signing_key: &ring::hmac::Key,
) -> Option<()> {
    let headers = Headers::of(request)?;
    let token = creds.session_token();
    if token.is_some_and(|t| !plain(t.as_bytes())) {
        return None;
    }
    let date = format_basic(time);
    let day = date.get(..8)?;
    // The credential scope, written where it goes rather than kept as a string of its own.
    let scope = [day, "/", region, "/dynamodb/aws4_request"];
    let signed = if token.is_some() {
        "content-type;host;x-amz-date;x-amz-security-token;x-amz-target"
    } else {
        "content-type;host;x-amz-date;x-amz-target"
    };
    // Strings pushed, not formatted: the `format!` calls took about 1,700 instructions per
    // request (callgrind). One buffer holds the canonical request, then the string to sign.
    let mut text = String::with_capacity(384);
    text.push_str("POST\n/\n\ncontent-type:");
    text.push_str(headers.content_type);
    text.push_str("\nhost:");
    text.push_str(headers.host);
    text.push_str("\nx-amz-date:");
    text.push_str(&date);
    if let Some(token) = token {
        text.push_str("\nx-amz-security-token:");
        text.push_str(token);
    }
    text.push_str("\nx-amz-target:");
    text.push_str(headers.target);
    text.push_str("\n\n");
    text.push_str(signed);
    text.push('\n');
    push_hex(&mut text, crate::digest::sha256(body).as_ref());
    let canonical_hash = crate::digest::sha256(text.as_bytes());
    text.clear();
    for part in ["AWS4-HMAC-SHA256\n", &date, "\n"].into_iter().chain(scope) {
        text.push_str(part);
    }
    text.push('\n');
    push_hex(&mut text, canonical_hash.as_ref());
    let signature = ring::hmac::sign(signing_key, text.as_bytes());
    let head = ["AWS4-HMAC-SHA256 Credential=", creds.access_key_id(), "/"];
    let tail = [", SignedHeaders=", signed, ", Signature="];
    let parts = || head.into_iter().chain(scope).chain(tail);
    // Exactly its length: `HeaderValue` takes a full buffer without allocating again.
    let length = parts().map(str::len).sum::<usize>() + 2 * signature.as_ref().len();
    let mut authorization = String::with_capacity(length);
    for part in parts() {
        authorization.push_str(part);
    }
    push_hex(&mut authorization, signature.as_ref());
    // Every value is built before any is set: a refusal leaves the request as it was.
    let authorization = HeaderValue::try_from(authorization).ok()?;
    let date = HeaderValue::try_from(date).ok()?;
    let token = match token {
        Some(token) => Some(HeaderValue::try_from(token).ok()?),
        None => None,
    };
    let headers = request.headers_mut();
    headers.insert(&X_AMZ_DATE, date);
    if let Some(token) = token {
        headers.insert(&X_AMZ_SECURITY_TOKEN, token);
    }
    headers.insert(AUTHORIZATION, authorization);
    Some(())
}

/// The signed headers' values, when the request is the shape [`sign`] covers.
struct Headers<'r> {
    content_type: &'r str,
    host: &'r str,
    target: &'r str,
}

impl<'r> Headers<'r> {
    fn of(request: &'r Request<Full<Bytes>>) -> Option<Self> {
        let uri = request.uri();
        let root = matches!(uri.path(), "" | "/") && uri.query().is_none();
        if request.method() != Method::POST || !root {
            return None;
        }
        let headers = request.headers();
        // Anything beyond these (and the unsigned user agent) would be signed too.
        let known = [&CONTENT_TYPE, &HOST, &X_AMZ_TARGET, &USER_AGENT];
        if headers.keys().any(|name| !known.contains(&name)) {
            return None;
        }
        let one = |name: &HeaderName| -> Option<&'r str> {
            let mut values = headers.get_all(name).iter();
            let value = values.next()?;
            (values.next().is_none() && plain(value.as_bytes()))
                .then(|| value.to_str().ok())
                .flatten()
        };
        Some(Self {
            content_type: one(&CONTENT_TYPE)?,
            host: one(&HOST)?,
            target: one(&X_AMZ_TARGET)?,
        })
    }
}

/// A header value SigV4 signs as it is: visible ASCII, single inner spaces, none at the
/// ends (anything else is trimmed and collapsed first, which the general signer does).
fn plain(value: &[u8]) -> bool {
    !value.is_empty()
        && value.first() != Some(&b' ')
        && value.last() != Some(&b' ')
        && !value.windows(2).any(|w| w == b"  ")
        && value.iter().all(|b| (b' '..=b'~').contains(b))
}

/// A SHA-256 digest or HMAC in lower-case hex.
fn push_hex(out: &mut String, digest: &[u8]) {
    let mut text = [0u8; 64];
    if hex::encode_to_slice(digest, &mut text).is_ok()
        && let Ok(text) = std::str::from_utf8(&text)
    {
        out.push_str(text);
    }
}

#[cfg(test)]
mod tests;
