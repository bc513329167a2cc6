//! What goes back to the client from a region: its answer with its `x-amz-crc32` (a fresh
//! one if a step changed the body), and one log line for each failed request. The sidecar's
//! own errors take DynamoDB's shape in `wire::error_response`.

use bytes::Bytes;
use http::header::Entry;
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
    let crc = upstream
        .checksum
        .as_ref()
        .and_then(|c| c.of(&upstream.body));
    let crc = crc.unwrap_or_else(|| wire::crc32(&upstream.body));
    // The body and the headers are moved, not cloned: a clone of a header name of
    // DynamoDB's own (`x-amzn-requestid`) or of a body read whole allocates.
    let mut response = Response::new(Full::new(upstream.body));
    *response.status_mut() = upstream.status;
    let headers = response.headers_mut();
    // The map yields a name once, before the first of its values; the entry it made takes
    // the others. Same order as the region's.
    let mut current = None;
    for (name, value) in upstream.headers {
        match name {
            Some(name) => {
                current = passes_through(&name).then(|| match headers.entry(name) {
                    Entry::Occupied(mut entry) => {
                        entry.append(value);
                        entry
                    }
                    Entry::Vacant(entry) => entry.insert_entry(value),
                });
            }
            None => {
                if let Some(entry) = &mut current {
                    entry.append(value);
                }
            }
        }
    }
    headers.insert(&wire::X_AMZ_CRC32, HeaderValue::from(crc));
    if let Some(region) = &region.header {
        headers.insert(&X_GLOBALSCALE_REGION, region.clone());
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use http::{HeaderMap, HeaderName, StatusCode};

    use super::*;
    use crate::upstream::UpstreamResponse;

    #[test]
    fn the_regions_headers_pass_in_their_order_and_the_hops_do_not() {
        let mut region_headers = HeaderMap::new();
        for (name, value) in [
            ("server", "Server"),
            ("x-amzn-requestid", "R1"),
            ("connection", "keep-alive"),
            ("set-cookie", "a=1"),
            ("content-length", "2"),
            ("set-cookie", "b=2"),
            ("x-amz-crc32", "1"),
            ("keep-alive", "timeout=5"),
            ("x-amzn-requestid", "R2"),
            ("date", "Mon, 07 Dec 2026 15:00:00 GMT"),
        ] {
            region_headers.append(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        // What reached the client before the headers were moved rather than cloned.
        let mut expected: Vec<(String, String)> = region_headers
            .iter()
            .filter(|(name, _)| passes_through(name))
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_owned()))
            .collect();
        expected.push(("x-amz-crc32".into(), wire::crc32(b"{}").to_string()));
        expected.push(("x-globalscale-region".into(), "us-east-1".into()));
        let reply = Reply {
            region: crate::region::RegionLabel::new("us-east-1"),
            upstream: UpstreamResponse {
                status: StatusCode::OK,
                headers: region_headers,
                body: Bytes::from_static(b"{}"),
                elapsed: Duration::ZERO,
                checksum: None,
            },
        };
        let response = reply_response(reply);
        let got: Vec<(String, String)> = response
            .headers()
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_owned()))
            .collect();
        assert_eq!(got, expected);
    }
}
