//! Why a request's signature was refused, worded as DynamoDB words it.
//!
//! The names and sentences are DynamoDB's own, as its answers show them in SDK bug reports
//! and as dynalite (a DynamoDB emulator whose source records real DynamoDB answers) copies
//! them: `MissingAuthenticationTokenException`, `IncompleteSignatureException`,
//! `InvalidSignatureException` and `UnrecognizedClientException`, all with status 400.

use http::StatusCode;

/// DynamoDB's sentence for a signature that does not match; also its answer when the body
/// does not hash to the signed `x-amz-content-sha256`, since the canonical request it
/// computes then differs from the client's.
const SIGNATURE_MISMATCH: &str = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";

/// A request whose SigV4 signature the sidecar refuses. `Display` is DynamoDB's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization` header, or one that is not SigV4 (`AWS4-...`).
    #[error("Request is missing Authentication Token")]
    Missing,
    /// An `Authorization` header that cannot be read: a part without `=`, a required part or
    /// the date missing, an unknown algorithm, a credential without five parts, a date not
    /// in ISO-8601 basic format, or a signed header the request does not carry.
    #[error("{0}")]
    Malformed(String),
    /// `host` is not among the signed headers, so the signature could be replayed at any
    /// endpoint.
    #[error("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.")]
    HostNotSigned,
    /// A header the sidecar decides by (`X-Amz-Target` names the operation its policies
    /// judge; the date bounds replays) is not signed: a signature for a GetItem must not
    /// carry a DeleteItem.
    #[error("'{0}' must be a 'SignedHeader' in the AWS Authorization.")]
    NotSigned(&'static str),
    /// Signed more than the allowed skew before `now`.
    #[error("Signature expired: {signed} is now earlier than {earliest} ({now} - {minutes} min.)")]
    Expired {
        signed: String,
        earliest: String,
        now: String,
        minutes: u64,
    },
    /// Signed more than the allowed skew after `now`.
    #[error(
        "Signature not yet current: {signed} is still later than {latest} ({now} + {minutes} min.)"
    )]
    NotYetValid {
        signed: String,
        latest: String,
        now: String,
        minutes: u64,
    },
    /// The credential scope names a service other than `dynamodb` (the message also names
    /// any other part of the scope at fault).
    #[error("{0}")]
    WrongService(String),
    /// The credential scope's region, terminator or date is wrong.
    #[error("{0}")]
    BadScope(String),
    /// No configured client has this access key id.
    #[error("The security token included in the request is invalid.")]
    UnknownKey,
    /// An `X-Amz-Security-Token` the signature does not cover. DynamoDB's sentence for a bad
    /// session token (without the final period, as DynamoDB sends it).
    #[error("The security token included in the request is invalid")]
    UnsignedToken,
    /// The signature is not the one the client's secret gives for this request.
    #[error("{SIGNATURE_MISMATCH}")]
    BadSignature,
    /// `x-amz-content-sha256` is not the SHA-256 of the body.
    #[error("{SIGNATURE_MISMATCH}")]
    PayloadHashMismatch,
}

impl AuthError {
    /// DynamoDB's error name: the part of `__type` after the `#` (its namespace is
    /// `com.amazon.coral.service`).
    pub fn error_name(&self) -> &'static str {
        match self {
            Self::Missing => "MissingAuthenticationTokenException",
            Self::Malformed(_) => "IncompleteSignatureException",
            Self::UnknownKey | Self::UnsignedToken => "UnrecognizedClientException",
            Self::HostNotSigned
            | Self::NotSigned(_)
            | Self::Expired { .. }
            | Self::NotYetValid { .. }
            | Self::WrongService(_)
            | Self::BadScope(_)
            | Self::BadSignature
            | Self::PayloadHashMismatch => "InvalidSignatureException",
        }
    }

    /// A bounded label for metrics and logs.
    /// Every [`AuthError::reason`], for series exported at zero from the start.
    pub const REASONS: [&'static str; 12] = [
        "missing",
        "malformed",
        "host_not_signed",
        "header_not_signed",
        "expired",
        "not_yet_valid",
        "wrong_service",
        "bad_scope",
        "unknown_key",
        "unsigned_token",
        "bad_signature",
        "bad_payload_hash",
    ];

    pub fn reason(&self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Malformed(_) => "malformed",
            Self::HostNotSigned => "host_not_signed",
            Self::NotSigned(_) => "header_not_signed",
            Self::Expired { .. } => "expired",
            Self::NotYetValid { .. } => "not_yet_valid",
            Self::WrongService(_) => "wrong_service",
            Self::BadScope(_) => "bad_scope",
            Self::UnknownKey => "unknown_key",
            Self::UnsignedToken => "unsigned_token",
            Self::BadSignature => "bad_signature",
            Self::PayloadHashMismatch => "bad_payload_hash",
        }
    }

    /// DynamoDB answers every one of these with 400 Bad Request.
    pub fn status(&self) -> StatusCode {
        StatusCode::BAD_REQUEST
    }
}
