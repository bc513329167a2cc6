//! The DynamoDB JSON wire protocol as the sidecar sees it: which operation a request
//! names (`X-Amz-Target`), the error bodies DynamoDB answers with, and the CRC32 header
//! SDKs check on every response.
//!
//! This is the only module that knows what DynamoDB's error `__type` strings look like.

mod errors;
mod operation;
mod request;

pub use errors::{ErrorBody, error_response_parts};
pub use operation::{Operation, TARGET_PREFIX};
pub use request::{ParsedRequest, parse};

/// The `x-amz-crc32` value for a response body, as DynamoDB computes it.
pub fn crc32(body: &[u8]) -> u32 {
    crc32fast::hash(body)
}

/// DynamoDB's own request-size limit; larger bodies are refused before they are buffered.
pub const MAX_REQUEST_BYTES: usize = 16 * 1024 * 1024;

/// The content type every SDK sends and DynamoDB answers with.
pub const CONTENT_TYPE: &str = "application/x-amz-json-1.0";

#[cfg(test)]
mod tests {
    #[test]
    fn crc32_matches_dynamodb_for_empty_object() {
        // DynamoDB answers `{}` with x-amz-crc32: 2745614147.
        assert_eq!(super::crc32(b"{}"), 2_745_614_147);
    }
}
