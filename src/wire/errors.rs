//! DynamoDB's error bodies: `{"__type": "<namespace>#<Name>", "message": "..."}`.
//!
//! SDKs pick the error name after the `#`, and decide whether to retry from it and the
//! status code, so the namespaces and statuses mirror what DynamoDB itself answers.

use bytes::Bytes;
use http::StatusCode;
use serde::Serialize;

use crate::error::ProxyError;

/// The error name after the `#` of a DynamoDB error body's `__type`: the one place the
/// sidecar reads DynamoDB's error names.
pub fn error_name(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct ErrorType<'a> {
        #[serde(rename = "__type", borrow)]
        error_type: Option<std::borrow::Cow<'a, str>>,
    }
    let parsed: ErrorType<'_> = serde_json::from_slice(body).ok()?;
    let error_type = parsed.error_type?;
    Some(
        error_type
            .rsplit('#')
            .next()
            .unwrap_or(&error_type)
            .to_owned(),
    )
}

/// [`error_name`] of an answer already decoded.
pub fn error_name_in(body: &serde_json::Map<String, serde_json::Value>) -> Option<&str> {
    let error_type = body.get("__type")?.as_str()?;
    error_type.rsplit('#').next()
}

/// DynamoDB's names for a request it refused for load, not for what it asked: nothing was
/// applied, so it may go to another region.
pub fn is_throttling(name: &str) -> bool {
    matches!(
        name,
        "ProvisionedThroughputExceededException" | "ThrottlingException" | "RequestLimitExceeded"
    )
}

/// Whether an error body is a failed condition of a single-item write.
pub fn is_condition_failure(body: &[u8]) -> bool {
    error_name(body).as_deref() == Some("ConditionalCheckFailedException")
}

/// The error a single-item write gets for the reason its one-action transaction was
/// cancelled (`CancellationReasons[].Code`), as DynamoDB answers the single-item operation;
/// `None` for a code with no single-item counterpart.
pub fn single_item_error(code: &str) -> Option<&'static str> {
    Some(match code {
        "ConditionalCheckFailed" => "ConditionalCheckFailedException",
        "TransactionConflict" => "TransactionConflictException",
        "ProvisionedThroughputExceeded" => "ProvisionedThroughputExceededException",
        "ThrottlingError" => "ThrottlingException",
        "ItemCollectionSizeLimitExceeded" => "ItemCollectionSizeLimitExceededException",
        "ValidationError" => "ValidationException",
        _ => return None,
    })
}

/// A DynamoDB error body (`__type` in DynamoDB's own namespace, or the validation one).
pub fn error_map(name: &str, message: &str) -> serde_json::Map<String, serde_json::Value> {
    let namespace = if name == "ValidationException" {
        CORAL_VALIDATE
    } else {
        DYNAMODB
    };
    let mut body = serde_json::Map::new();
    body.insert("__type".into(), format!("{namespace}{name}").into());
    body.insert("message".into(), message.into());
    body
}

/// The body of a DynamoDB error response.
#[derive(Debug, Serialize)]
pub struct ErrorBody<'a> {
    #[serde(rename = "__type")]
    pub error_type: &'a str,
    pub message: &'a str,
}

const CORAL_SERVICE: &str = "com.amazon.coral.service#";
const CORAL_VALIDATE: &str = "com.amazon.coral.validate#";
const DYNAMODB: &str = "com.amazonaws.dynamodb.v20120810#";

/// Turns an error the sidecar answers itself into DynamoDB's status and body.
pub fn error_response_parts(err: &ProxyError) -> (StatusCode, Bytes) {
    let (status, namespace, name) = match err {
        ProxyError::UnknownOperation(_) => (
            StatusCode::BAD_REQUEST,
            CORAL_SERVICE,
            "UnknownOperationException",
        ),
        ProxyError::Serialization(_) => (
            StatusCode::BAD_REQUEST,
            CORAL_SERVICE,
            "SerializationException",
        ),
        ProxyError::Validation(_) | ProxyError::BodyTooLarge { .. } => (
            StatusCode::BAD_REQUEST,
            CORAL_VALIDATE,
            "ValidationException",
        ),
        // 503 + ServiceUnavailable: every SDK's standard retry policy retries it.
        ProxyError::Auth(e) => (StatusCode::BAD_REQUEST, CORAL_SERVICE, e.error_name()),
        ProxyError::AccessDenied(_) => (
            StatusCode::BAD_REQUEST,
            CORAL_SERVICE,
            "AccessDeniedException",
        ),
        ProxyError::NoRegionAvailable { .. }
        | ProxyError::DeadlineExceeded(_)
        | ProxyError::AuditUnavailable(_)
        | ProxyError::Overloaded(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            DYNAMODB,
            "ServiceUnavailable",
        ),
        ProxyError::AmbiguousWrite { .. } | ProxyError::Signing(_) | ProxyError::Internal(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            DYNAMODB,
            "InternalServerError",
        ),
    };
    let error_type = format!("{namespace}{name}");
    let message = err.to_string();
    let body = ErrorBody {
        error_type: &error_type,
        message: &message,
    };
    // Serializing two strings cannot fail; fall back to a fixed body rather than panic.
    let bytes = serde_json::to_vec(&body).unwrap_or_else(|_| b"{}".to_vec());
    (status, Bytes::from(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(err: &ProxyError) -> (StatusCode, serde_json::Value) {
        let (status, body) = error_response_parts(err);
        (status, serde_json::from_slice(&body).unwrap())
    }

    #[test]
    fn client_errors_are_400_with_coral_types() {
        let (status, body) = parsed(&ProxyError::Serialization("bad".into()));
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(
            body["__type"],
            "com.amazon.coral.service#SerializationException"
        );
        assert_eq!(body["message"], "bad");
        let (_, body) = parsed(&ProxyError::BodyTooLarge { limit: 10 });
        assert_eq!(
            body["__type"],
            "com.amazon.coral.validate#ValidationException"
        );
    }

    #[test]
    fn no_region_is_a_retryable_503() {
        let err = ProxyError::NoRegionAvailable {
            maybe_applied: false,
            detail: "all down".into(),
        };
        assert!(err.retryable());
        let (status, body) = parsed(&err);
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            body["__type"]
                .as_str()
                .unwrap()
                .ends_with("#ServiceUnavailable")
        );
    }

    #[test]
    fn messages_are_escaped_json() {
        let (_, body) = parsed(&ProxyError::Validation("quote \" and \\ ok".into()));
        assert_eq!(body["message"], "quote \" and \\ ok");
    }
}
