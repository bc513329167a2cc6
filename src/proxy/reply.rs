//! What goes back to the client from a region: its answer with its `x-amz-crc32` (a fresh
//! one if a step changed the body), and one log line for each failed request. The sidecar's
//! own errors take DynamoDB's shape in `wire::error_response`.

use bytes::Bytes;
use http::{HeaderValue, Response};
use http_body_util::Full;

use super::{Reply, X_AMZN_REQUEST_ID};
use crate::wire;

/// Which region answered: for operators and tests; SDKs ignore it.
static X_GLOBALSCALE_REGION: http::HeaderName =
    http::HeaderName::from_static("x-globalscale-region");

/// One log line for a request a region failed: its id (DynamoDB's, so AWS support can find
/// it), the error name and the region. Client errors are routine, hence `info`; a failed
/// condition is the version check doing its job (a lost update caught), which a busy table
/// answers many times a second, hence `debug` (`globalscale_version_conflicts_total`
/// counts them).
pub(super) fn log_upstream_failure(reply: &Reply, operation: &str, client: &str) {
    let request_id = reply
        .upstream
        .headers
        .get(&X_AMZN_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    let error = wire::error_name(&reply.upstream.body).unwrap_or_default();
    let status = reply.upstream.status.as_u16();
    if reply.upstream.status.is_server_error() {
        tracing::warn!(request_id, operation, client, status, error, region = %reply.region, "request failed upstream");
    } else if is_failed_condition(&error) {
        tracing::debug!(request_id, operation, client, status, error, region = %reply.region, "condition failed upstream");
    } else {
        tracing::info!(request_id, operation, client, status, error, region = %reply.region, "request refused upstream");
    }
}

/// A write refused by its condition: alone, or as the reason a transaction was cancelled.
fn is_failed_condition(error: &str) -> bool {
    matches!(
        error,
        "ConditionalCheckFailedException" | "TransactionCanceledException"
    )
}

/// Whether a header of the region's answer goes to the client as the region sent it: all
/// of them (`Server`, `Date`, the request ids, `Content-Type`) except those of the hop
/// between the sidecar and the region, the length (of the body as restored) and the
/// checksum (computed again below).
fn passes_through(name: &http::HeaderName) -> bool {
    use http::header::{
        CONNECTION, CONTENT_ENCODING, CONTENT_LENGTH, PROXY_AUTHENTICATE, TE, TRAILER,
        TRANSFER_ENCODING, UPGRADE,
    };
    let hop = [
        &CONNECTION,
        &CONTENT_LENGTH,
        // The body goes back decoded (the sidecar never asks a region for a compressed one).
        &CONTENT_ENCODING,
        &PROXY_AUTHENTICATE,
        &TE,
        &TRAILER,
        &TRANSFER_ENCODING,
        &UPGRADE,
        &wire::X_AMZ_CRC32,
        &X_GLOBALSCALE_REGION,
    ];
    !hop.contains(&name) && name.as_str() != "keep-alive" && name.as_str() != "proxy-connection"
}

pub(super) fn reply_response(reply: Reply) -> Response<Full<Bytes>> {
    let Reply { region, upstream } = reply;
    let mut response = Response::new(Full::new(upstream.body.clone()));
    *response.status_mut() = upstream.status;
    let headers = response.headers_mut();
    for (name, value) in &upstream.headers {
        if passes_through(name) {
            headers.append(name.clone(), value.clone());
        }
    }
    let crc = upstream
        .checksum
        .as_ref()
        .and_then(|c| c.of(&upstream.body));
    let crc = crc.unwrap_or_else(|| wire::crc32(&upstream.body));
    headers.insert(&wire::X_AMZ_CRC32, HeaderValue::from(crc));
    if let Ok(region) = HeaderValue::from_str(&region) {
        headers.insert(&X_GLOBALSCALE_REGION, region);
    }
    response
}

/// The answer to a browser's CORS preflight, which the sidecar gives itself, as DynamoDB
/// does: empty, with its request id.
pub(super) fn preflight_response(
    request: &http::HeaderMap,
    allowed: &crate::server::cors::AllowedOrigins,
) -> Response<Full<Bytes>> {
    let (status, headers) = crate::server::cors::preflight(request, allowed);
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    if let Ok(id) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
        response.headers_mut().insert(&X_AMZN_REQUEST_ID, id);
    }
    response
}
