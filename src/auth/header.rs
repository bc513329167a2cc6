//! The `Authorization` header and the request date, read in DynamoDB's order: each part a
//! `key=value` pair, then the three required parts and a date, then (in `verify`) the
//! date's format and age, `host` signed, the algorithm, the credential's five parts and
//! its scope.

use std::borrow::Cow;

use http::HeaderMap;
use http::header::{AUTHORIZATION, DATE};

use super::AuthError;

/// The only algorithm DynamoDB accepts.
pub(super) const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// How much of a bad `Authorization` header an error message quotes back: DynamoDB quotes
/// all of it, and an SDK's is about 250 bytes, but this one came from anyone.
const QUOTE_LIMIT: usize = 1024;

/// The parts of `Authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=...,
/// Signature=...`, not yet checked beyond being present.
#[derive(Debug)]
pub(super) struct Authorization<'a> {
    pub(super) algorithm: &'a str,
    pub(super) credential: &'a str,
    pub(super) signed_headers: &'a str,
    pub(super) signature: &'a str,
}

/// The request's date as sent, and the header it came from.
#[derive(Debug)]
pub(super) struct RequestDate<'a> {
    pub(super) text: Cow<'a, str>,
    pub(super) from_amz_date: bool,
}

/// The header's text, or [`AuthError::Missing`] when there is none or it is not SigV4.
/// Bytes that are not UTF-8 are replaced: such a header cannot verify, and is quoted back.
pub(super) fn authorization_text(headers: &HeaderMap) -> Result<Cow<'_, str>, AuthError> {
    let value = headers.get(AUTHORIZATION).ok_or(AuthError::Missing)?;
    let text = String::from_utf8_lossy(value.as_bytes());
    if text.trim_start().starts_with("AWS4-") {
        Ok(text)
    } else {
        Err(AuthError::Missing)
    }
}

/// `X-Amz-Date`, or `Date` when there is none (as the SigV4 specification allows).
pub(super) fn request_date(headers: &HeaderMap) -> Option<RequestDate<'_>> {
    let (value, from_amz_date) = match headers.get("x-amz-date") {
        Some(value) => (value, true),
        None => (headers.get(DATE)?, false),
    };
    // HTTP/1.1 parsers drop the spaces around a value; other front ends may not.
    let text = match String::from_utf8_lossy(value.as_bytes()) {
        Cow::Borrowed(text) => Cow::Borrowed(text.trim()),
        Cow::Owned(text) => Cow::Owned(text.trim().to_owned()),
    };
    Some(RequestDate {
        text,
        from_amz_date,
    })
}

impl<'a> Authorization<'a> {
    /// Splits the header into its parts. `has_date` says whether the request carries a
    /// date, since DynamoDB reports a missing one in the same message as missing parts.
    pub(super) fn parse(text: &'a str, has_date: bool) -> Result<Self, AuthError> {
        let text = text.trim();
        let (algorithm, rest) = text.split_once(' ').unwrap_or((text, ""));
        let mut credential = None;
        let mut signed_headers = None;
        let mut signature = None;
        for part in rest
            .split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
        {
            let Some((key, value)) = part.split_once('=') else {
                return Err(AuthError::Malformed(format!(
                    "'{part}' not a valid key=value pair (missing equal-sign) in Authorization header: '{}'.",
                    quote(text)
                )));
            };
            let slot = match key.trim() {
                "Credential" => &mut credential,
                "SignedHeaders" => &mut signed_headers,
                "Signature" => &mut signature,
                _ => continue,
            };
            // Two values for one part would leave it to chance which one was signed for.
            if slot.replace(value.trim()).is_some() {
                return Err(AuthError::Malformed(format!(
                    "'{}' appears more than once in Authorization header: '{}'.",
                    key.trim(),
                    quote(text)
                )));
            }
        }
        let present = |part: Option<&str>| part.is_some_and(|value| !value.is_empty());
        let mut missing: Vec<String> = [
            ("Credential", credential),
            ("Signature", signature),
            ("SignedHeaders", signed_headers),
        ]
        .into_iter()
        .filter(|(_, part)| !present(*part))
        .map(|(name, _)| format!("Authorization header requires '{name}' parameter. "))
        .collect();
        if !has_date {
            missing.push(
                "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. "
                    .to_owned(),
            );
        }
        match (credential, signed_headers, signature) {
            (Some(credential), Some(signed_headers), Some(signature)) if missing.is_empty() => {
                Ok(Self {
                    algorithm,
                    credential,
                    signed_headers,
                    signature,
                })
            }
            _ => Err(AuthError::Malformed(format!(
                "{}Authorization={}",
                missing.concat(),
                quote(text)
            ))),
        }
    }

    /// The signed header names, lower-cased as SigV4 signs them.
    pub(super) fn signed_header_names(&self) -> impl Iterator<Item = Cow<'a, str>> + 'a {
        self.signed_headers.split(';').map(|name| {
            if name.bytes().any(|b| b.is_ascii_uppercase()) {
                Cow::Owned(name.to_ascii_lowercase())
            } else {
                Cow::Borrowed(name)
            }
        })
    }

    /// Whether `name` (lower case) is signed.
    pub(super) fn signs(&self, name: &str) -> bool {
        self.signed_headers
            .split(';')
            .any(|signed| signed.eq_ignore_ascii_case(name))
    }
}

/// The five parts of `Credential=AKID/20150830/us-east-1/dynamodb/aws4_request`.
#[derive(Debug)]
pub(super) struct Credential<'a> {
    pub(super) access_key_id: &'a str,
    pub(super) date: &'a str,
    pub(super) region: &'a str,
    pub(super) service: &'a str,
    pub(super) terminator: &'a str,
}

impl<'a> Credential<'a> {
    pub(super) fn parse(text: &'a str) -> Result<Self, AuthError> {
        // DynamoDB ignores trailing slashes.
        let mut parts = text.trim_end_matches('/').split('/');
        let mut next = || parts.next();
        match (next(), next(), next(), next(), next(), next()) {
            (
                Some(access_key_id),
                Some(date),
                Some(region),
                Some(service),
                Some(terminator),
                None,
            ) => Ok(Self {
                access_key_id,
                date,
                region,
                service,
                terminator,
            }),
            _ => Err(AuthError::Malformed(format!(
                "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '{}'",
                quote(text)
            ))),
        }
    }
}

/// The start of `text`, cut at a character boundary, for quoting in a message.
pub(super) fn quote(text: &str) -> &str {
    if text.len() <= QUOTE_LIMIT {
        return text;
    }
    let mut end = QUOTE_LIMIT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}
