//! The canonical request, as SigV4 defines it for every service but S3: the method, the
//! path with dot segments and empty segments removed and then percent-encoded once more
//! (so a `%` the client sent is signed as `%25`), the query pairs decoded, re-encoded and
//! sorted, the signed headers lower-cased with their values trimmed and inner runs of spaces
//! collapsed (repeated headers joined with commas), the signed header list, and the payload
//! hash. Built as bytes, so a header value that is not UTF-8 is signed as sent.
//!
//! The rules follow `aws-sigv4`'s `CanonicalRequest` and botocore's `SigV4Auth`, the two
//! signers the tests check against.

use http::{HeaderMap, Method, Uri};

use super::AuthError;
use super::header::Authorization;

/// The canonical request over exactly the headers `auth` signs.
pub(super) fn canonical_request(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    auth: &Authorization<'_>,
    payload_hash: &str,
) -> Result<Vec<u8>, AuthError> {
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b'\n');
    push_path(&mut out, uri.path());
    out.push(b'\n');
    push_query(&mut out, uri.query().unwrap_or_default());
    out.push(b'\n');
    let mut signed_line = Vec::with_capacity(auth.signed_headers.len());
    for (i, name) in auth.signed_header_names().enumerate() {
        out.extend_from_slice(name.as_bytes());
        out.push(b':');
        push_header_values(&mut out, &name, headers, uri)?;
        out.push(b'\n');
        if i > 0 {
            signed_line.push(b';');
        }
        signed_line.extend_from_slice(name.as_bytes());
    }
    out.push(b'\n');
    out.extend_from_slice(&signed_line);
    out.push(b'\n');
    out.extend_from_slice(payload_hash.as_bytes());
    Ok(out)
}

/// The values of one signed header, normalized and joined with commas. Over HTTP/2 there
/// is no `host` header: the client signed the `:authority` it sent, which hyper puts in the
/// URI.
fn push_header_values(
    out: &mut Vec<u8>,
    name: &str,
    headers: &HeaderMap,
    uri: &Uri,
) -> Result<(), AuthError> {
    let mut values = headers.get_all(name).iter().peekable();
    if values.peek().is_none() {
        return match (name, authority(uri)) {
            ("host", Some(host)) => {
                push_trimmed(out, host.as_bytes());
                Ok(())
            }
            _ => Err(AuthError::Malformed(format!(
                "'{}' is named as a SignedHeader, but it does not exist in the HTTP request.",
                super::header::quote(name)
            ))),
        };
    }
    for (i, value) in values.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        push_trimmed(out, value.as_bytes());
    }
    Ok(())
}

/// The URI's authority as a signer writes the `host` header: without a port the scheme
/// implies, as `aws-sigv4` and botocore leave it out.
fn authority(uri: &Uri) -> Option<&str> {
    let authority = uri.authority()?;
    let default_port = match uri.scheme_str() {
        Some("http") => Some(80),
        Some("https") => Some(443),
        _ => None,
    };
    if default_port.is_some() && authority.port_u16() == default_port {
        Some(authority.host())
    } else {
        Some(authority.as_str())
    }
}

/// Appends `value` without leading or trailing spaces and with each run of spaces as one.
/// Only spaces: the signers leave tabs and other whitespace as they are.
fn push_trimmed(out: &mut Vec<u8>, value: &[u8]) {
    // Starting as if after a space drops the leading ones.
    let mut previous_space = true;
    let start = out.len();
    for &byte in value {
        if byte == b' ' {
            if !previous_space {
                out.push(b' ');
            }
            previous_space = true;
        } else {
            out.push(byte);
            previous_space = false;
        }
    }
    while out.len() > start && out.last() == Some(&b' ') {
        out.pop();
    }
}

/// The path with RFC 3986's dot segments removed and empty segments dropped (as the
/// signers do for every service but S3), then each segment percent-encoded.
fn push_path(out: &mut Vec<u8>, path: &str) {
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            segment => segments.push(segment),
        }
    }
    out.push(b'/');
    for (i, segment) in segments.iter().enumerate() {
        if i > 0 {
            out.push(b'/');
        }
        push_encoded(out, segment.as_bytes());
    }
    let ends_in_directory = ["/", "/.", "/..", "/./", "/../"]
        .iter()
        .any(|end| path.ends_with(end));
    if !segments.is_empty() && ends_in_directory {
        out.push(b'/');
    }
}

/// The query's pairs, each name and value decoded (`+` as a space, as `aws-sigv4` reads a
/// query) and encoded again, sorted by name and then value.
fn push_query(out: &mut Vec<u8>, query: &str) {
    let mut pairs: Vec<(Vec<u8>, Vec<u8>)> = query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (reencoded(name), reencoded(value))
        })
        .collect();
    pairs.sort();
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(b'&');
        }
        out.extend_from_slice(name);
        out.push(b'=');
        out.extend_from_slice(value);
    }
}

fn reencoded(text: &str) -> Vec<u8> {
    let mut decoded = Vec::with_capacity(text.len());
    let mut bytes = text.as_bytes().iter();
    while let Some(&byte) = bytes.next() {
        match byte {
            b'+' => decoded.push(b' '),
            b'%' => {
                let rest = bytes.as_slice();
                match (
                    rest.first().copied().and_then(hex_value),
                    rest.get(1).copied().and_then(hex_value),
                ) {
                    (Some(high), Some(low)) => {
                        decoded.push(high << 4 | low);
                        bytes.nth(1);
                    }
                    _ => decoded.push(b'%'),
                }
            }
            byte => decoded.push(byte),
        }
    }
    let mut encoded = Vec::with_capacity(decoded.len());
    push_encoded(&mut encoded, &decoded);
    encoded
}

fn hex_value(digit: u8) -> Option<u8> {
    char::from(digit)
        .to_digit(16)
        .and_then(|value| u8::try_from(value).ok())
}

/// Percent-encodes every byte but RFC 3986's unreserved characters, in upper-case hex.
fn push_encoded(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &byte in bytes {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte);
        } else {
            out.extend_from_slice(&[
                b'%',
                HEX[usize::from(byte >> 4)],
                HEX[usize::from(byte & 0x0f)],
            ]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(text: &str) -> String {
        let mut out = Vec::new();
        push_path(&mut out, text);
        String::from_utf8(out).unwrap()
    }

    fn query(text: &str) -> String {
        let mut out = Vec::new();
        push_query(&mut out, text);
        String::from_utf8(out).unwrap()
    }

    fn trimmed(text: &str) -> String {
        let mut out = Vec::new();
        push_trimmed(&mut out, text.as_bytes());
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn paths_are_normalized_then_encoded_again() {
        assert_eq!(path(""), "/");
        assert_eq!(path("/"), "/");
        assert_eq!(path("/a/b/"), "/a/b/");
        assert_eq!(path("/a//b"), "/a/b");
        assert_eq!(path("/a/./b/../c"), "/a/c");
        assert_eq!(path("/a/.."), "/");
        assert_eq!(path("/a/b/."), "/a/b/");
        assert_eq!(path("/../x"), "/x");
        assert_eq!(path("/%20 x"), "/%2520%20x");
        assert_eq!(path("/~a-b_c.d"), "/~a-b_c.d");
    }

    #[test]
    fn queries_are_sorted_and_encoded_once() {
        assert_eq!(query(""), "");
        assert_eq!(query("b=2&a=1&a=0"), "a=0&a=1&b=2");
        assert_eq!(query("flag&&x="), "flag=&x=");
        assert_eq!(query("k=a%20b+c"), "k=a%20b%20c");
        assert_eq!(query("k=%zz%4"), "k=%25zz%254");
        assert_eq!(query("%E1%88%B4=%2F"), "%E1%88%B4=%2F");
    }

    #[test]
    fn header_values_lose_outer_spaces_and_runs_of_spaces() {
        assert_eq!(trimmed("  a   b  c "), "a b c");
        assert_eq!(trimmed("a\tb"), "a\tb");
        assert_eq!(trimmed("   "), "");
        assert_eq!(trimmed(""), "");
    }

    #[test]
    fn the_authority_stands_in_for_host_without_its_default_port() {
        let uri: Uri = "https://example.com:443/".parse().unwrap();
        assert_eq!(authority(&uri), Some("example.com"));
        let uri: Uri = "http://example.com:8000/".parse().unwrap();
        assert_eq!(authority(&uri), Some("example.com:8000"));
        let uri: Uri = "/".parse().unwrap();
        assert_eq!(authority(&uri), None);
    }
}
