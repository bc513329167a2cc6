//! The streams path: a `DynamoDBStreams_20120810.*` request read and authenticated as any
//! other, checked against the policies of the stream's table ([`crate::streams`]), signed for
//! the streams endpoint of the stream's region and sent there once (a stream is one
//! replica's: no other region has it), and its answer shown as the client may see it.

use std::sync::Arc;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, USER_AGENT};
use http::{HeaderValue, StatusCode};
use hyper::body::Incoming;
use serde_json::{Map, Value, json};

use super::{Labels, Proxy, Reply};
use crate::error::{AttemptFailure, BodyError, Failures, InternalError, ProxyError};
use crate::route::AttemptOutcome;
use crate::route::ResendSafety;
use crate::route::retry::classify_response;
use crate::snapshot::{Region, Snapshot};
use crate::streams::provenance::{self, Probe, Provenance, ShardSearch};
use crate::streams::records::{self, Cursor, Namespace};
use crate::streams::{Guard, StreamsOperation, Subject};
use crate::upstream::UpstreamResponse;
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
        let after_send = |e: ProxyError| e.after_send(&region.name, ResendSafety::Safe);
        let Some(mut answer) =
            readable(&guard, (operation, &subject), &reply).map_err(after_send)?
        else {
            return Ok(reply);
        };
        if let Subject::Stream { arn, .. } = &subject
            && operation == StreamsOperation::GetRecords
        {
            let policies = !guard.unread_allowed(!snapshot.tables.is_empty());
            let checked = check_provenance(snapshot, (index, &outbound), arn, &answer, policies);
            if let Some(refusal) = checked.await.map_err(after_send)? {
                reply.upstream = refusal;
                return Ok(reply);
            }
        }
        if let Subject::Listing { .. } = &subject {
            let listed = page(snapshot, (index, &outbound), &request, &guard, answer);
            match listed.await.map_err(after_send)? {
                Ok(page) => answer = page,
                Err(refusal) => {
                    reply.upstream = refusal;
                    return Ok(reply);
                }
            }
        } else if !restore(snapshot, &subject, &mut answer) {
            return Ok(reply);
        }
        let bytes = serde_json::to_vec(&answer).map_err(InternalError::Encode)?;
        reply.upstream.body = Bytes::from(bytes);
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

/// The answer, parsed, when the client may not see it as sent: a listing to filter, records
/// to check and restore. `None` for an answer passed on byte for byte (an error, a
/// description, an iterator).
fn readable(
    guard: &Guard<'_>,
    (operation, subject): (StreamsOperation, &Subject),
    reply: &Reply,
) -> Result<Option<Map<String, Value>>, ProxyError> {
    let filtered = guard.allowed.is_some() || guard.audit_table.is_some();
    let needed = match operation {
        StreamsOperation::ListStreams => filtered,
        StreamsOperation::GetRecords => true,
        StreamsOperation::DescribeStream | StreamsOperation::GetShardIterator => false,
    };
    if reply.upstream.status != StatusCode::OK || !needed || *subject == Subject::Unread {
        return Ok(None);
    }
    serde_json::from_slice(&reply.upstream.body)
        .map(Some)
        .map_err(|e| InternalError::UnreadableStreamsAnswer(e).into())
}

/// Records as the client may see them: a managed table's restored (keys as written, other
/// namespaces left out). `false` when nothing changed: an unmanaged table's records go on
/// byte for byte.
fn restore(snapshot: &Snapshot, subject: &Subject, answer: &mut Map<String, Value>) -> bool {
    let Subject::Stream { table, .. } = subject else {
        return false;
    };
    let Some(policy) = snapshot.tables.get(table) else {
        return false;
    };
    let namespace = policy
        .partition_key
        .as_deref()
        .zip(policy.key_prefix.as_deref())
        .map(|(attribute, prefix)| Namespace { attribute, prefix });
    records::restore_records(answer, namespace);
    true
}

/// How many pages of the region's ListStreams one client page may read through, past
/// streams the client may not see.
const MAX_LISTING_PAGES: usize = 1_000;

/// DynamoDB's page size for a ListStreams without `Limit`.
const DEFAULT_LISTING_LIMIT: usize = 100;

/// A ListStreams page as the client may see it: without the streams it may not read, and
/// with no `LastEvaluatedStreamArn` naming one. Where the region's page ends on a hidden
/// stream, the sidecar reads on from it, for as many streams as the client's `Limit` leaves
/// room for (at least one: the hidden stream took a place), until the region's cursor is a
/// stream the client may see or the listing ends. The client only ever gets a cursor the
/// region gave. `Ok(Err(answer))`: the region's error to a further page, for the client.
async fn page(
    snapshot: &Snapshot,
    stream: (usize, &Outbound),
    request: &Map<String, Value>,
    guard: &Guard<'_>,
    mut answer: Map<String, Value>,
) -> Result<Result<Map<String, Value>, UpstreamResponse>, ProxyError> {
    let visible = |table: &str| guard.shows(table);
    // An out-of-range Limit was the region's to refuse, and it did not.
    let limit = request
        .get("Limit")
        .and_then(Value::as_u64)
        .and_then(|limit| usize::try_from(limit).ok())
        .unwrap_or(DEFAULT_LISTING_LIMIT);
    let mut shown = Vec::new();
    let mut further = request.clone();
    for _ in 0..MAX_LISTING_PAGES {
        records::filter_streams(&mut answer, visible);
        if let Some(Value::Array(streams)) = answer.remove("Streams") {
            shown.extend(streams);
        }
        let after = match records::cursor(&answer, visible) {
            Cursor::End => None,
            Cursor::Shown(arn) => Some(arn),
            Cursor::Hidden(arn) => {
                let room = limit.saturating_sub(shown.len()).max(1);
                further.insert("ExclusiveStartStreamArn".to_owned(), json!(arn));
                further.insert("Limit".to_owned(), json!(room));
                let request = Value::Object(further.clone());
                let next = ask_raw(snapshot, stream, StreamsOperation::ListStreams, &request);
                match next.await? {
                    Ok(next) => answer = next,
                    Err(refusal) => return Ok(Err(refusal)),
                }
                continue;
            }
        };
        answer.insert("Streams".to_owned(), Value::Array(shown));
        match after {
            Some(arn) => answer.insert("LastEvaluatedStreamArn".to_owned(), json!(arn)),
            None => answer.remove("LastEvaluatedStreamArn"),
        };
        return Ok(Ok(answer));
    }
    // Page after page of streams the client may not see: ending the listing here would
    // hide what follows, and any cursor would name a hidden stream.
    Err(
        InternalError::UnreadableStreamsAnswer(serde::de::Error::custom(format!(
            "ListStreams read past {MAX_LISTING_PAGES} pages of streams the client may not see"
        )))
        .into(),
    )
}

/// How many pages of a stream's shards are searched for the shard of records to confirm:
/// 100 shards a page, beyond the shards a stream keeps for its 24 hours.
const MAX_SHARD_PAGES: usize = 100;

/// Refuses records the answer does not show to be of the stream the iterator named
/// ([`provenance`]). Records at the end of a closed shard are confirmed by asking the named
/// stream, when a policy could be escaped by reading another stream (a sidecar with none has
/// nothing to hide). `Ok(Some(answer))`: the client gets the region's retryable error to a
/// confirming request instead (a throttle, a 500), and may retry its GetRecords.
async fn check_provenance(
    snapshot: &Snapshot,
    stream: (usize, &Outbound),
    arn: &str,
    answer: &Map<String, Value>,
    policies: bool,
) -> Result<Option<UpstreamResponse>, ProxyError> {
    let probe = match provenance::provenance(answer, arn) {
        Provenance::Confirmed => return Ok(None),
        Provenance::Foreign => return Err(foreign(arn)),
        Provenance::Unconfirmed(_) if !policies => return Ok(None),
        Provenance::Unconfirmed(probe) => probe,
    };
    let shard = match closed_shard(snapshot, stream, arn, &probe).await? {
        Asked::Answer(Some(shard)) => shard,
        Asked::Answer(None) => return Err(foreign(arn)),
        Asked::Retry(answer) => return Ok(Some(answer)),
    };
    let request = json!({"StreamArn": arn, "ShardId": shard,
        "ShardIteratorType": "AT_SEQUENCE_NUMBER", "SequenceNumber": probe.first});
    let iterator = match ask(
        snapshot,
        stream,
        StreamsOperation::GetShardIterator,
        &request,
    )
    .await?
    {
        Asked::Answer(answer) => answer,
        Asked::Retry(answer) => return Ok(Some(answer)),
    };
    let Some(iterator) = iterator.get("ShardIterator").and_then(Value::as_str) else {
        return Err(foreign(arn));
    };
    let request = json!({"ShardIterator": iterator, "Limit": 1});
    match ask(snapshot, stream, StreamsOperation::GetRecords, &request).await? {
        Asked::Answer(first) if provenance::starts_with(&first, &probe) => Ok(None),
        Asked::Answer(_) => Err(foreign(arn)),
        Asked::Retry(answer) => Ok(Some(answer)),
    }
}

/// The closed shard of the stream `arn` that holds the probe's records, if any.
async fn closed_shard(
    snapshot: &Snapshot,
    stream: (usize, &Outbound),
    arn: &str,
    probe: &Probe,
) -> Result<Asked<Option<String>>, ProxyError> {
    let mut request = json!({"StreamArn": arn});
    for _ in 0..MAX_SHARD_PAGES {
        let page = match ask(snapshot, stream, StreamsOperation::DescribeStream, &request).await? {
            Asked::Answer(page) => page,
            Asked::Retry(answer) => return Ok(Asked::Retry(answer)),
        };
        match provenance::closed_shard(&page, probe) {
            ShardSearch::Found(shard) => return Ok(Asked::Answer(Some(shard))),
            ShardSearch::NextPage(last) => request["ExclusiveStartShardId"] = json!(last),
            ShardSearch::Missing => break,
        }
    }
    Ok(Asked::Answer(None))
}

/// A confirming request's outcome: its answer, or a retryable error for the client.
enum Asked<T> {
    Answer(T),
    Retry(UpstreamResponse),
}

/// One confirming request of the sidecar's own to the stream's region, sent as the client's
/// was. An error answer other than a retryable one refuses the records: the check fails
/// closed.
async fn ask(
    snapshot: &Snapshot,
    stream: (usize, &Outbound),
    operation: StreamsOperation,
    request: &Value,
) -> Result<Asked<Map<String, Value>>, ProxyError> {
    let answer = match ask_raw(snapshot, stream, operation, request).await? {
        Ok(answer) => return Ok(Asked::Answer(answer)),
        Err(answer) => answer,
    };
    match classify_response(answer.status, &answer.body) {
        AttemptOutcome::ServerError | AttemptOutcome::Throttled => Ok(Asked::Retry(answer)),
        _ => Err(ProxyError::AccessDenied(format!(
            "the records read could not be confirmed to be of the stream the shard iterator \
             names: its region answered {} to {}",
            answer.status,
            operation.label()
        ))),
    }
}

/// A request of the sidecar's own to the stream's region, sent as the client's was: its
/// answer, or the region's error answer.
async fn ask_raw(
    snapshot: &Snapshot,
    (index, outbound): (usize, &Outbound),
    operation: StreamsOperation,
    request: &Value,
) -> Result<Result<Map<String, Value>, UpstreamResponse>, ProxyError> {
    let outbound = Outbound {
        target: HeaderValue::from_static(operation.target()),
        body: Bytes::from(serde_json::to_vec(request).map_err(InternalError::Encode)?),
        ..outbound.clone()
    };
    let answer = send(snapshot, index, &outbound).await?;
    if answer.status != StatusCode::OK {
        return Ok(Err(answer));
    }
    serde_json::from_slice(&answer.body)
        .map(Ok)
        .map_err(|e| InternalError::UnreadableStreamsAnswer(e).into())
}

/// The refusal of records read from another stream than the iterator names.
fn foreign(arn: &str) -> ProxyError {
    ProxyError::AccessDenied(format!(
        "the shard iterator does not belong to the stream it names ({arn})"
    ))
}
