//! The DynamoDB JSON wire protocol as the sidecar sees it: which operation a request
//! names (`X-Amz-Target`), the error bodies DynamoDB answers with, and the CRC32 header
//! SDKs check on every response.
//!
//! This is the only module that knows what DynamoDB's error `__type` strings look like.

mod errors;
pub mod items;
mod lean;
mod operation;
pub mod partiql;
mod shape;
mod view;

pub use crate::error::AnswerError;
pub use errors::{
    ErrorBody, X_AMZN_REQUEST_ID, error_map, error_name, error_name_in, error_response,
    is_condition_failure, is_throttling, single_item_error,
};
pub use lean::{LeanDocument, Step};
pub use operation::{Operation, TARGET_PREFIX};
pub(crate) use view::distinct_names;
pub use view::{BodyError, Members, RequestView};

/// The `x-amz-crc32` value for a response body, as DynamoDB computes it.
pub fn crc32(body: &[u8]) -> u32 {
    crc32fast::hash(body)
}

/// The type of a key attribute: DynamoDB keys are strings, numbers or binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScalarType {
    S,
    N,
    B,
}

impl ScalarType {
    /// From an `AttributeType` of `DescribeTable`'s `AttributeDefinitions`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "S" => Some(Self::S),
            "N" => Some(Self::N),
            "B" => Some(Self::B),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::S => "S",
            Self::N => "N",
            Self::B => "B",
        }
    }
}

/// The checksum header DynamoDB puts on every answer (a `static`, as `X_AMZ_TARGET` is).
pub static X_AMZ_CRC32: http::HeaderName = http::HeaderName::from_static("x-amz-crc32");

/// Whether a region's answer arrived as the region sent it: its `x-amz-crc32` (when it has
/// one) matches the body, or else a success is at least JSON (a proxy's error page is not).
/// The checksum the client gets vouches for what the sidecar sends (this one, reused, when
/// no step changed the body), so this is the only place a corrupted answer can be caught. A matching checksum vouches for the body on its own:
/// validating it as JSON as well cost a tenth of the request path's CPU on a 1.4 KB item.
/// Gives the checksum when there was one, so that an answer passed on unchanged reuses it.
pub fn check_answer(
    status: http::StatusCode,
    headers: &http::HeaderMap,
    body: &[u8],
) -> Result<Option<u32>, AnswerError> {
    let declared = headers.get(&X_AMZ_CRC32);
    if let Some(declared) = declared {
        let declared = declared
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse::<u32>().ok())
            .ok_or_else(|| AnswerError::UnreadableChecksum(declared.clone()))?;
        let actual = crc32(body);
        if declared != actual {
            return Err(AnswerError::ChecksumMismatch { declared, actual });
        }
        return Ok(Some(declared));
    }
    if status.is_success() {
        serde_json::from_slice::<serde::de::IgnoredAny>(body)
            .map_err(|source| AnswerError::NotJson { status, source })?;
    }
    Ok(None)
}

/// DynamoDB's own request-size limit; larger bodies are refused before they are buffered.
pub const MAX_REQUEST_BYTES: usize = 16 * 1024 * 1024;

/// The content type every SDK sends and DynamoDB answers with.
pub const CONTENT_TYPE: &str = "application/x-amz-json-1.0";

#[cfg(test)]
mod tests {
    use http::{HeaderMap, HeaderValue, StatusCode};

    #[test]
    fn an_answer_must_match_its_checksum_and_a_success_must_be_json() {
        let with_crc = |crc: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(&super::X_AMZ_CRC32, HeaderValue::from_str(crc).unwrap());
            headers
        };
        let ok = StatusCode::OK;
        assert_eq!(
            super::check_answer(ok, &with_crc("2745614147"), b"{}").ok(),
            Some(Some(2_745_614_147))
        );
        assert_eq!(
            super::check_answer(ok, &HeaderMap::new(), b"{}").ok(),
            Some(None)
        );
        assert!(super::check_answer(ok, &with_crc("2745614148"), b"{}").is_err());
        assert!(super::check_answer(ok, &with_crc("abc"), b"{}").is_err());
        let not_json = b"<html>502</html>";
        assert!(super::check_answer(ok, &HeaderMap::new(), not_json).is_err());
        // Nothing but the region computes a checksum over what it sends.
        let crc = super::crc32(not_json);
        let declared = crc.to_string();
        assert_eq!(
            super::check_answer(ok, &with_crc(&declared), not_json).ok(),
            Some(Some(crc))
        );
        // An error answer need not be JSON; its status already says what happened.
        assert_eq!(
            super::check_answer(StatusCode::BAD_GATEWAY, &with_crc(&declared), not_json).ok(),
            Some(Some(crc))
        );
        assert_eq!(
            super::check_answer(StatusCode::BAD_GATEWAY, &HeaderMap::new(), not_json).ok(),
            Some(None)
        );
    }

    #[test]
    fn crc32_matches_dynamodb_for_empty_object() {
        // DynamoDB answers `{}` with x-amz-crc32: 2745614147.
        assert_eq!(super::crc32(b"{}"), 2_745_614_147);
    }
}
