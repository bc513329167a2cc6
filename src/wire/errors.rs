//! DynamoDB's error bodies: `{"__type": "<namespace>#<Name>", "message": "..."}`.
//!
//! SDKs pick the error name after the `#`, and decide whether to retry from it and the
//! status code, so the namespaces and statuses mirror what DynamoDB itself answers.

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderValue, Response, StatusCode};
use http_body_util::Full;
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

/// DynamoDB's request id header (a `static`, as `X_AMZ_TARGET` is).
pub static X_AMZN_REQUEST_ID: http::HeaderName = http::HeaderName::from_static("x-amzn-requestid");

/// The one place an error the sidecar answers itself becomes DynamoDB's answer: status,
/// `__type`, `message` (the error's `Display`), `x-amz-crc32`, and the request id.
pub fn error_response(err: &ProxyError, request_id: &str) -> Response<Full<Bytes>> {
    let (status, body) = error_response_parts(err);
    let crc = crate::wire::crc32(&body);
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static(crate::wire::CONTENT_TYPE),
    );
    headers.insert(&crate::wire::X_AMZ_CRC32, HeaderValue::from(crc));
    if let Ok(id) = HeaderValue::from_str(request_id) {
        headers.insert(&X_AMZN_REQUEST_ID, id);
    }
    if status == StatusCode::SERVICE_UNAVAILABLE {
        // Tells generic HTTP clients the same thing the error type tells SDKs.
        headers.insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

/// DynamoDB's status and body for an error the sidecar answers itself.
fn error_response_parts(err: &ProxyError) -> (StatusCode, Bytes) {
    let (status, namespace, name) = error_type(err);
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

/// The status, `__type` namespace and error name DynamoDB would answer with.
fn error_type(err: &ProxyError) -> (StatusCode, &'static str, &'static str) {
    match err {
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
        // DynamoDB's own answer to a body past its limit; SDKs do not retry a 413.
        ProxyError::BodyTooLarge { .. } => (
            StatusCode::PAYLOAD_TOO_LARGE,
            CORAL_SERVICE,
            "RequestEntityTooLargeException",
        ),
        // What DynamoDB answers a body it cannot decompress (or an unknown coding).
        ProxyError::Undecodable(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            DYNAMODB,
            "InternalFailure",
        ),
        ProxyError::Validation(_)
        | ProxyError::UnreadableStatement { .. }
        | ProxyError::BodyTooSlow(_) => (
            StatusCode::BAD_REQUEST,
            CORAL_VALIDATE,
            "ValidationException",
        ),
        ProxyError::Auth(e) => (StatusCode::BAD_REQUEST, CORAL_SERVICE, e.error_name()),
        ProxyError::AccessDenied(_) => (
            StatusCode::BAD_REQUEST,
            CORAL_SERVICE,
            "AccessDeniedException",
        ),
        // 503 + ServiceUnavailable: every SDK's standard retry policy retries it.
        ProxyError::NoRegionAvailable { .. }
        | ProxyError::DeadlineExceeded(_)
        | ProxyError::AuditUnavailable(_)
        | ProxyError::Overloaded(_)
        | ProxyError::BodyMemory { .. } => (
            StatusCode::SERVICE_UNAVAILABLE,
            DYNAMODB,
            "ServiceUnavailable",
        ),
        ProxyError::AmbiguousWrite { .. } | ProxyError::Signing(_) | ProxyError::Internal(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            DYNAMODB,
            "InternalServerError",
        ),
        // Answered as what went wrong; that it went wrong after sending is for the logs
        // and the audit trail.
        ProxyError::AfterSend { source, .. } => error_type(source),
    }
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
        let bad = crate::wire::BodyError::NotAnAttributeValue("a".into());
        let (status, body) = parsed(&ProxyError::Serialization(bad));
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(
            body["__type"],
            "com.amazon.coral.service#SerializationException"
        );
        assert_eq!(
            body["message"],
            "`Item` has the wrong type: attribute \"a\" is not an attribute value (a map)"
        );
        let (status, body) = parsed(&ProxyError::BodyTooLarge { limit: 10 });
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(
            body["__type"],
            "com.amazon.coral.service#RequestEntityTooLargeException"
        );
    }

    #[test]
    fn no_region_is_a_retryable_503() {
        let err = ProxyError::NoRegionAvailable {
            failures: crate::error::Failures::default(),
            maybe_applied: false,
            safety: crate::route::ResendSafety::Unsafe,
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
    fn an_error_after_sending_is_answered_as_its_cause() {
        use crate::error::InternalError;
        use crate::route::ResendSafety;
        let cause = ProxyError::Internal(InternalError::UnreadableListTables);
        let expected = parsed(&cause);
        let after = cause.after_send("us-east-1", ResendSafety::Safe);
        assert_eq!(parsed(&after), expected);
        assert_eq!(expected.0, StatusCode::INTERNAL_SERVER_ERROR);
        let response = error_response(&after, "id-1");
        assert_eq!(response.headers()[&X_AMZN_REQUEST_ID], "id-1");
        assert!(!response.headers().contains_key(http::header::RETRY_AFTER));
    }

    #[test]
    fn messages_are_escaped_json() {
        let (_, body) = parsed(&ProxyError::Validation("quote \" and \\ ok".into()));
        assert_eq!(body["message"], "quote \" and \\ ok");
    }
}
