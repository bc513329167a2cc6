//! The streams path: a `DynamoDBStreams_20120810.*` request read and authenticated as any
//! other, checked against the policies of the stream's table ([`crate::streams`]), signed for
//! the streams endpoint of the stream's region and sent there once (a stream is one
//! replica's: no other region has it), and its answer shown as the client may see it.

use std::sync::Arc;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, USER_AGENT};
use http::{HeaderValue, StatusCode};
use hyper::body::Incoming;
use serde_json::{Map, Value};

use super::{Labels, Proxy, Reply};
use crate::error::{AttemptFailure, BodyError, Failures, InternalError, ProxyError};
use crate::route::ResendSafety;
use crate::snapshot::{Region, Snapshot};
use crate::streams::records::{self, Namespace};
use crate::streams::{Guard, StreamsOperation, Subject};
use crate::upstream::outbound::{Outbound, signed_request};

impl Proxy {
    /// Serves one streams request; `target` is its `X-Amz-Target`, sent on as it came.
    pub(super) async fn streams<'s>(
        &self,
        snapshot: &'s Snapshot,
        (parts, body): (http::request::Parts, Incoming),
        (operation, target): (StreamsOperation, HeaderValue),
        labels: &mut Labels<'s>,
    ) -> Result<Reply, ProxyError> {
        labels.operation = operation.label();
        let (client, body, _permit) = self.receive(snapshot, &parts, body, labels).await?;
        let request: Map<String, Value> =
            serde_json::from_slice(&body.bytes).map_err(BodyError::NotAnObject)?;
        let guard = Guard {
            client: client.name,
            audit_table: snapshot.config.audit.as_ref().map(|a| a.table.as_str()),
            allowed: snapshot.access.get(client.name),
        };
        let subject = match crate::streams::subject(operation, &request) {
            Ok(subject) => subject,
            Err(ProxyError::Validation(_)) if guard.unread_allowed(!snapshot.tables.is_empty()) => {
                Subject::Unread
            }
            Err(e) => return Err(e),
        };
        if let Err(e) = guard.check(operation, &subject) {
            if subject.table().is_some() && subject.table() == guard.audit_table {
                self.metrics
                    .policy_refusals
                    .with_label_values(&["audit_table"])
                    .inc();
            }
            return Err(e);
        }
        if let Some(table) = subject.table() {
            labels.table = crate::snapshot::table_label(&snapshot.tables, &[table.to_owned()]);
        }
        let index = stream_region(snapshot, &subject);
        let region = &snapshot.regions[index];
        let outbound = Outbound {
            target,
            content_type: parts.headers.get(CONTENT_TYPE).cloned(),
            user_agent: parts.headers.get(USER_AGENT).cloned(),
            body: body.bytes.clone(),
        };
        let upstream = send(snapshot, index, &outbound).await?;
        let mut reply = Reply {
            region: Arc::clone(&region.label),
            upstream,
        };
        restore(snapshot, &guard, (operation, &subject), &mut reply)
            .map_err(|e| e.after_send(&region.name, ResendSafety::Safe))?;
        Ok(reply)
    }
}

/// The region a streams request goes to: the one its stream ARN names (the home region
/// when the config lists no such region); for ListStreams (and a stream the sidecar cannot
/// read), routing's first choice.
fn stream_region(snapshot: &Snapshot, subject: &Subject) -> usize {
    match subject {
        Subject::Stream { region, .. } => snapshot
            .regions
            .iter()
            .position(|r| r.name == *region)
            .unwrap_or(0),
        Subject::Listing { .. } | Subject::Unread => {
            crate::route::candidates(&snapshot.region_views(), snapshot.config.routing.policy)
                .first()
                .copied()
                .unwrap_or(0)
        }
    }
}

/// One attempt at the region's streams endpoint. Every streams operation is a read, so a
/// failure is a retryable 503, as when no region could serve a DynamoDB read.
async fn send(
    snapshot: &Snapshot,
    index: usize,
    outbound: &Outbound,
) -> Result<crate::upstream::UpstreamResponse, ProxyError> {
    // The snapshot's regions are the config's, in its order.
    let region = &snapshot.regions[index];
    let endpoint = snapshot
        .config
        .regions
        .get(index)
        .map(|r| r.streams_endpoint.clone())
        .ok_or_else(|| InternalError::StreamsEndpoint(region.name.clone()))?;
    let host = endpoint
        .authority()
        .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        .ok_or_else(|| InternalError::StreamsEndpoint(region.name.clone()))?;
    let streams = Region {
        endpoint,
        host,
        ..region.clone()
    };
    let request = signed_request(&snapshot.signer, &streams, outbound).await?;
    let deadline = tokio::time::Instant::now() + snapshot.config.timeouts.request;
    snapshot
        .upstream
        .send(request, deadline)
        .await
        .map_err(|e| ProxyError::NoRegionAvailable {
            failures: Failures(vec![AttemptFailure::failed(region, e)]),
            maybe_applied: false,
            safety: ResendSafety::Safe,
        })
}

/// The answer as the client may see it: a listing without the streams it may not read, a
/// managed table's records restored (keys as written, other namespaces left out). An
/// answer that needs nothing is passed on byte for byte.
fn restore(
    snapshot: &Snapshot,
    guard: &Guard<'_>,
    (operation, subject): (StreamsOperation, &Subject),
    reply: &mut Reply,
) -> Result<(), ProxyError> {
    let filtered = guard.allowed.is_some() || guard.audit_table.is_some();
    let needed = match operation {
        StreamsOperation::ListStreams => filtered,
        StreamsOperation::GetRecords => true,
        StreamsOperation::DescribeStream | StreamsOperation::GetShardIterator => false,
    };
    if reply.upstream.status != StatusCode::OK || !needed || *subject == Subject::Unread {
        return Ok(());
    }
    let mut body: Map<String, Value> = serde_json::from_slice(&reply.upstream.body)
        .map_err(InternalError::UnreadableStreamsAnswer)?;
    match subject {
        Subject::Listing { .. } | Subject::Unread => {
            records::filter_streams(&mut body, |table| guard.shows(table));
        }
        Subject::Stream { arn, table, .. } => {
            if !records::same_stream(&body, arn) {
                return Err(ProxyError::AccessDenied(format!(
                    "the shard iterator does not belong to the stream it names ({arn})"
                )));
            }
            let Some(policy) = snapshot.tables.get(table) else {
                // Nothing of an unmanaged table's records changes: its bytes go on as sent.
                return Ok(());
            };
            let namespace = policy
                .partition_key
                .as_deref()
                .zip(policy.key_prefix.as_deref())
                .map(|(attribute, prefix)| Namespace { attribute, prefix });
            records::restore_records(&mut body, namespace);
        }
    }
    let bytes = serde_json::to_vec(&body).map_err(InternalError::Encode)?;
    reply.upstream.body = Bytes::from(bytes);
    Ok(())
}
