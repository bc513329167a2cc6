//! Authenticate, the first stage of the request path: each client request's SigV4
//! signature is checked the way DynamoDB checks it, against the configured clients' keys,
//! before anything reaches a region. Pure: no I/O, and the time comes in as a parameter.
//!
//! What passes: `Authorization: AWS4-HMAC-SHA256 Credential=AKID/YYYYMMDD/region/dynamodb/
//! aws4_request, SignedHeaders=...;host;..., Signature=...` from a configured access key,
//! dated (`X-Amz-Date`, else `Date`) within [`DEFAULT_MAX_SKEW`] of now, whose credential
//! scope names `dynamodb` and the request's own date, any region (a client signs for the
//! region it is configured with, and the sidecar chooses the region itself), with `host`
//! signed, and whose signature is the one the client's secret gives for the canonical
//! request over exactly the signed headers. What fails gets DynamoDB's error name and
//! message ([`AuthError`]).
//!
//! Session tokens: an `X-Amz-Security-Token` is accepted when the signature covers it (the
//! SDKs sign it) and refused when it does not. The token itself is checked against nothing:
//! there is no STS here, the configured secret is what authenticates, and the token only
//! travels inside the signature.
//!
//! Why hand-built: `scratchstack-aws-signature`, the maintained server-side SigV4 crate,
//! validates through an async `tower::Service` that looks up the key, checks the scope
//! against one fixed region, words its errors as STS/IAM do (`SignatureDoesNotMatch`), and
//! brings chrono, regex, derive_builder, tower and a second hmac/sha2 major version. The
//! canonical request is short enough to build here (`canonical`), and the cryptography is
//! `aws-sigv4`'s own public helpers (`generate_signing_key`, `calculate_signature`), so the
//! key derivation and the HMAC are the very code that signs the sidecar's own requests;
//! ring hashes, `hex` prints, and `subtle` compares in constant time.

mod cache;
mod canonical;
mod error;
mod header;
pub(crate) mod time;

pub use error::AuthError;

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_sigv4::sign::v4::{calculate_signature, generate_signing_key};
use http::{HeaderMap, Method, Uri};
use subtle::ConstantTimeEq;

use cache::KeyCache;
use header::{ALGORITHM, Authorization, Credential, RequestDate};

/// How far a request's date may be from now, either way. DynamoDB's own answers in the
/// wild say `15 min.`; the sidecar is stricter by default, which narrows the window in
/// which a captured request can be replayed. [`Verifier::with_max_skew`] changes it.
pub const DEFAULT_MAX_SKEW: Duration = Duration::from_mins(5);

/// The service every credential scope must name.
const SERVICE: &str = "dynamodb";

/// A client allowed to send requests: its name (for logs, metrics and policies) and the
/// key pair it signs with.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientKey {
    pub name: String,
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientKey")
            .field("name", &self.name)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"** redacted **")
            .finish()
    }
}

/// Checks requests' signatures against the configured clients. Shared behind an `Arc`;
/// the derived signing keys it keeps are behind a lock of their own.
#[derive(Debug)]
pub struct Verifier {
    clients: Vec<ClientKey>,
    by_access_key: HashMap<String, usize>,
    max_skew: Duration,
    keys: KeyCache,
}

/// What the checks of the head found, for the signature check.
struct Head<'a> {
    auth: Authorization<'a>,
    credential: Credential<'a>,
    signed_at: SignedAt<'a>,
    client: usize,
}

/// When the request was signed, and the same instant as the string to sign writes it.
struct SignedAt<'a> {
    time: SystemTime,
    basic: Cow<'a, str>,
}

impl Verifier {
    /// A verifier for `clients`. Should two share an access key id, the first is the one
    /// that verifies: the configuration is expected to refuse that.
    pub fn new(clients: Vec<ClientKey>) -> Self {
        let mut by_access_key = HashMap::with_capacity(clients.len());
        for (index, client) in clients.iter().enumerate() {
            by_access_key
                .entry(client.access_key_id.clone())
                .or_insert(index);
        }
        Self {
            clients,
            by_access_key,
            max_skew: DEFAULT_MAX_SKEW,
            keys: KeyCache::default(),
        }
    }

    /// Accepts requests dated up to `max_skew` before or after now. Messages count it in
    /// whole minutes, as DynamoDB's do.
    #[must_use]
    pub fn with_max_skew(mut self, max_skew: Duration) -> Self {
        self.max_skew = max_skew;
        self
    }

    /// The name of the client whose signature this is, or why it is refused. `uri` is the
    /// request's as the server read it (over HTTP/2 it carries the `:authority`), `body`
    /// all of the body, `now` the time to judge the request's date against.
    pub fn verify(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
        now: SystemTime,
    ) -> Result<&str, AuthError> {
        let payload_hash = crate::digest::sha256_hex(body);
        self.verify_hashed(method, uri, headers, &payload_hash, now)
    }

    /// [`verify`](Self::verify), with the body's SHA-256 (lowercase hex) computed by the
    /// caller: as the body arrived, a chunk at a time, rather than all at once on a thread
    /// that serves other requests meanwhile.
    pub fn verify_hashed(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        payload_hash: &str,
        now: SystemTime,
    ) -> Result<&str, AuthError> {
        let text = header::authorization_text(headers)?;
        let date = header::request_date(headers);
        let head = self.check_head(&text, date.as_ref(), headers, now)?;
        if let Some(declared) = headers.get("x-amz-content-sha256")
            && declared.as_bytes().trim_ascii() != payload_hash.as_bytes()
        {
            return Err(AuthError::PayloadHashMismatch);
        }
        let canonical =
            canonical::canonical_request(method, uri, headers, &head.auth, payload_hash)?;
        let string_to_sign = format!(
            "{ALGORITHM}\n{}\n{}/{}/{SERVICE}/aws4_request\n{}",
            head.signed_at.basic,
            head.credential.date,
            head.credential.region,
            crate::digest::sha256_hex(&canonical),
        );
        self.check_signature(
            head.client,
            &head.credential,
            &head.signed_at,
            &string_to_sign,
            &head.auth,
        )
    }

    /// The checks that need only the request head, cheap enough to run before the body is
    /// read: a known access key id, a fresh date, the required headers signed, a plausible
    /// scope. A request that fails them costs no body memory; one that passes still needs
    /// [`verify`](Self::verify) with its body.
    pub fn check_before_body(&self, headers: &HeaderMap, now: SystemTime) -> Result<(), AuthError> {
        let text = header::authorization_text(headers)?;
        let date = header::request_date(headers);
        self.check_head(&text, date.as_ref(), headers, now)
            .map(|_| ())
    }

    /// Every check of the head, in DynamoDB's order.
    fn check_head<'a>(
        &self,
        text: &'a str,
        date: Option<&'a RequestDate<'a>>,
        headers: &HeaderMap,
        now: SystemTime,
    ) -> Result<Head<'a>, AuthError> {
        let auth = Authorization::parse(text, date.is_some())?;
        // `parse` has refused a request without a date already.
        let date = date.ok_or(AuthError::Missing)?;
        let signed_at = self.signed_at(date, now)?;
        if !auth.signs("host") && !auth.signs(":authority") {
            return Err(AuthError::HostNotSigned);
        }
        if !auth.signs("x-amz-target") {
            return Err(AuthError::NotSigned("X-Amz-Target"));
        }
        match (
            date.from_amz_date,
            auth.signs("x-amz-date"),
            auth.signs("date"),
        ) {
            (true, false, _) => return Err(AuthError::NotSigned("X-Amz-Date")),
            (false, _, false) => return Err(AuthError::NotSigned("Date")),
            _ => {}
        }
        if auth.algorithm != ALGORITHM {
            return Err(AuthError::Malformed(format!(
                "Unsupported AWS 'algorithm': '{}' (only {ALGORITHM} for now). ",
                header::quote(auth.algorithm)
            )));
        }
        let credential = Credential::parse(auth.credential)?;
        check_scope(&credential, &signed_at, date)?;
        let client = *self
            .by_access_key
            .get(credential.access_key_id)
            .ok_or(AuthError::UnknownKey)?;
        if headers.contains_key("x-amz-security-token") && !auth.signs("x-amz-security-token") {
            return Err(AuthError::UnsignedToken);
        }
        Ok(Head {
            auth,
            credential,
            signed_at,
            client,
        })
    }

    /// The request's date, refused when it is unreadable or too far from `now`.
    fn signed_at<'d>(
        &self,
        date: &'d RequestDate<'_>,
        now: SystemTime,
    ) -> Result<SignedAt<'d>, AuthError> {
        let parsed = if date.from_amz_date {
            time::parse_basic(&date.text)
        } else {
            time::parse_http(&date.text)
        };
        let Some(signed) = parsed else {
            return Err(AuthError::Malformed(format!(
                "Date must be in ISO-8601 'basic format'. Got '{}'. See http://en.wikipedia.org/wiki/ISO_8601",
                header::quote(&date.text)
            )));
        };
        let basic = if date.from_amz_date {
            Cow::Borrowed(&*date.text)
        } else {
            Cow::Owned(time::format_basic(signed))
        };
        let minutes = self.max_skew.as_secs() / 60;
        if let Some(earliest) = now.checked_sub(self.max_skew)
            && signed < earliest
        {
            return Err(AuthError::Expired {
                signed: basic.into_owned(),
                earliest: time::format_basic(earliest),
                now: time::format_basic(now),
                minutes,
            });
        }
        if let Some(latest) = now.checked_add(self.max_skew)
            && signed > latest
        {
            return Err(AuthError::NotYetValid {
                signed: basic.into_owned(),
                latest: time::format_basic(latest),
                now: time::format_basic(now),
                minutes,
            });
        }
        Ok(SignedAt {
            time: signed,
            basic,
        })
    }

    /// Compares the signature in constant time, with the client's signing key for the
    /// scope taken from the cache or derived (and kept once it has verified a request).
    fn check_signature(
        &self,
        client: usize,
        credential: &Credential<'_>,
        signed_at: &SignedAt<'_>,
        string_to_sign: &str,
        auth: &Authorization<'_>,
    ) -> Result<&str, AuthError> {
        let key = self.clients.get(client).ok_or(AuthError::UnknownKey)?;
        let day = time::day_number(signed_at.time);
        let cached = self.keys.get(client, day, credential.region);
        let signing_key = cached.clone().unwrap_or_else(|| {
            let derived = generate_signing_key(
                &key.secret_access_key,
                signed_at.time,
                credential.region,
                SERVICE,
            );
            Arc::from(derived.as_ref())
        });
        let expected = calculate_signature(&signing_key, string_to_sign.as_bytes());
        if !bool::from(expected.as_bytes().ct_eq(auth.signature.as_bytes())) {
            return Err(AuthError::BadSignature);
        }
        if cached.is_none() {
            self.keys
                .insert(client, day, credential.region, signing_key);
        }
        Ok(&key.name)
    }
}

/// DynamoDB's checks of the credential scope, every failing one named in one message.
fn check_scope(
    credential: &Credential<'_>,
    signed_at: &SignedAt<'_>,
    date: &RequestDate<'_>,
) -> Result<(), AuthError> {
    let mut message: Vec<String> = Vec::new();
    let region = credential.region;
    let plausible_region = (1..=64).contains(&region.len())
        && region
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !plausible_region {
        message.push(format!(
            "Credential should be scoped to a valid region, not '{}'. ",
            header::quote(region)
        ));
    }
    let wrong_service = credential.service != SERVICE;
    if wrong_service {
        message.push(format!(
            "Credential should be scoped to correct service: '{SERVICE}'. "
        ));
    }
    if credential.terminator != "aws4_request" {
        message.push(format!(
            "Credential should be scoped with a valid terminator: 'aws4_request', not '{}'. ",
            header::quote(credential.terminator)
        ));
    }
    let request_day = signed_at.basic.get(..8).unwrap_or_default();
    if credential.date != request_day {
        message.push(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{request_day}', from '{}'.",
            header::quote(credential.date),
            header::quote(&date.text)
        ));
    }
    match (message.is_empty(), wrong_service) {
        (true, _) => Ok(()),
        (false, true) => Err(AuthError::WrongService(message.concat())),
        (false, false) => Err(AuthError::BadScope(message.concat())),
    }
}

#[cfg(test)]
mod tests;
