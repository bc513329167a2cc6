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
use aws_sigv4::sign::v4::calculate_signature;
use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderName, USER_AGENT};
use http::{HeaderValue, Method, Request};
use http_body_util::Full;
use sha2::{Digest, Sha256};

use crate::auth::time::format_basic;
use crate::upstream::outbound::X_AMZ_TARGET;

static X_AMZ_DATE: HeaderName = HeaderName::from_static("x-amz-date");
static X_AMZ_SECURITY_TOKEN: HeaderName = HeaderName::from_static("x-amz-security-token");

/// Signs `request` (whose body is `body`) with `signing_key`, the key for `creds`, the day
/// of `time` and `region`. Returns `None`, leaving the request untouched, when it is not the
/// shape this signer covers.
pub(super) fn sign(
    request: &mut Request<Full<Bytes>>,
    body: &[u8],
    creds: &Credentials,
    region: &str,
    time: SystemTime,
    signing_key: &[u8],
) -> Option<()> {
    let headers = Headers::of(request)?;
    let token = creds.session_token();
    if token.is_some_and(|t| !plain(t.as_bytes())) {
        return None;
    }
    let date = format_basic(time);
    let day = date.get(..8)?;
    // Strings pushed, not formatted: the two `format!` calls took about 1,700 instructions
    // per request (callgrind).
    let mut scope = String::with_capacity(64);
    for part in [day, "/", region, "/dynamodb/aws4_request"] {
        scope.push_str(part);
    }
    let signed = if token.is_some() {
        "content-type;host;x-amz-date;x-amz-security-token;x-amz-target"
    } else {
        "content-type;host;x-amz-date;x-amz-target"
    };
    let mut canonical = String::with_capacity(384);
    canonical.push_str("POST\n/\n\ncontent-type:");
    canonical.push_str(headers.content_type);
    canonical.push_str("\nhost:");
    canonical.push_str(headers.host);
    canonical.push_str("\nx-amz-date:");
    canonical.push_str(&date);
    if let Some(token) = token {
        canonical.push_str("\nx-amz-security-token:");
        canonical.push_str(token);
    }
    canonical.push_str("\nx-amz-target:");
    canonical.push_str(headers.target);
    canonical.push_str("\n\n");
    canonical.push_str(signed);
    canonical.push('\n');
    push_hex(&mut canonical, &Sha256::digest(body));
    let mut string_to_sign = String::with_capacity(160);
    string_to_sign.push_str("AWS4-HMAC-SHA256\n");
    string_to_sign.push_str(&date);
    string_to_sign.push('\n');
    string_to_sign.push_str(&scope);
    string_to_sign.push('\n');
    push_hex(&mut string_to_sign, &Sha256::digest(canonical.as_bytes()));
    let signature = calculate_signature(signing_key, string_to_sign.as_bytes());
    let mut authorization = String::with_capacity(256);
    for part in [
        "AWS4-HMAC-SHA256 Credential=",
        creds.access_key_id(),
        "/",
        &scope,
        ", SignedHeaders=",
        signed,
        ", Signature=",
        &signature,
    ] {
        authorization.push_str(part);
    }
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

/// A SHA-256 digest in lower-case hex.
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
