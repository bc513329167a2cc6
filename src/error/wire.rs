//! The errors of reading what crosses the wire: a client's body, a region's answer, a
//! PartiQL statement. Defined here, with the error model, so that the model depends on no
//! other module; `wire` re-exports them.

/// Why a request body cannot be read, in the words of DynamoDB's `SerializationException`:
/// the client's side, and the same body is refused the same way.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// Its serde error says where, for the logs; the client is told what DynamoDB says.
    #[error("request body must be a JSON object")]
    NotAnObject(#[source] serde_json::Error),
    #[error("request body is not valid JSON: {0}")]
    NotJson(#[source] serde_json::Error),
    #[error("`{field}` has the wrong type: {source}")]
    WrongType {
        field: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("`{field}` is not valid JSON: {source}")]
    FieldNotJson {
        field: String,
        #[source]
        source: serde_json::Error,
    },
    /// A part of the body the lean rewrite decodes whole.
    #[error("the request is not valid JSON: {0}")]
    PartNotJson(#[source] serde_json::Error),
    #[error("`Item` has the wrong type: attribute {0:?} is not an attribute value (a map)")]
    NotAnAttributeValue(String),
    /// The body broke off, or its framing was wrong.
    #[error("cannot read the request body: {0}")]
    Unreadable(#[source] super::BoxError),
}

/// Why a compressed request body (`Content-Encoding`) cannot be decoded. DynamoDB answers
/// these with a 500 `InternalFailure`, and so does the sidecar: nothing of the body is used.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// A coding other than `gzip`, `x-gzip`, `deflate` or `identity`.
    #[error("the request's Content-Encoding {0:?} is not supported (gzip, deflate or identity)")]
    Unsupported(String),
    /// The bytes are not what their coding says (truncated, damaged, empty).
    #[error("the request body is not valid {coding}: {source}")]
    Corrupt {
        coding: &'static str,
        #[source]
        source: std::io::Error,
    },
}

/// Why a region's answer cannot be trusted ([`check_answer`]).
#[derive(Debug, thiserror::Error)]
pub enum AnswerError {
    #[error("unreadable x-amz-crc32 header {0:?}")]
    UnreadableChecksum(http::HeaderValue),
    #[error("x-amz-crc32 says {declared}, the body hashes to {actual}")]
    ChecksumMismatch { declared: u32, actual: u32 },
    #[error("a {status} answer that is not JSON: {source}")]
    NotJson {
        status: http::StatusCode,
        #[source]
        source: serde_json::Error,
    },
}

/// Why a statement cannot be read with certainty.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PartiqlError {
    #[error("an unterminated {0}")]
    Unterminated(&'static str),
    #[error("the statement is empty")]
    Empty,
    #[error("the statement starts with {0:?}, not SELECT, INSERT, UPDATE, DELETE or EXISTS")]
    UnknownKind(String),
    #[error("{0} is not followed by a table name")]
    NoTableAfter(&'static str),
    #[error("the statement names no table")]
    NoTable,
}
