//! The request path, one straight line:
//! parse (operation, body) → plan (tables, resend safety) → rewrite → for each candidate
//! region: sign → send → classify → reply (crc32) — with metrics and one log line per
//! failed request.

use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HOST, USER_AGENT};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;

use crate::error::ProxyError;
use crate::metrics::Metrics;
use crate::rewrite::{self, RequestCtx, own_write};
use crate::route::retry::{classify_response, resend_safety};
use crate::route::{AttemptOutcome, ResendSafety, Transition, candidates};
use crate::snapshot::{Region, Snapshot};
use crate::upstream::{UpstreamError, UpstreamResponse};
use crate::wire::{self, Operation};

const X_AMZ_TARGET: &str = "x-amz-target";
const X_AMZN_REQUEST_ID: &str = "x-amzn-requestid";
const X_AMZ_CRC32: &str = "x-amz-crc32";
/// A body that trickles in slower than this is refused rather than held open forever.
const BODY_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
/// The pause before starting over from the best region, growing with each round.
const RETRY_BACKOFF: std::time::Duration = std::time::Duration::from_millis(50);
/// The user agent of requests the sidecar makes on its own behalf.
pub(crate) const SIDECAR_AGENT: &str = concat!("globalscale/", env!("CARGO_PKG_VERSION"));
/// Which region answered: for operators and tests; SDKs ignore it.
const X_GLOBALSCALE_REGION: &str = "x-globalscale-region";

/// The proxy's shared state: the current snapshot and the metrics.
pub struct Proxy {
    pub snapshot: ArcSwap<Snapshot>,
    pub metrics: Metrics,
}

/// A region's answer on its way back to the client.
struct Reply {
    region: String,
    upstream: UpstreamResponse,
}

impl Proxy {
    pub fn new(snapshot: Snapshot, metrics: Metrics) -> Self {
        let proxy = Self {
            snapshot: ArcSwap::from_pointee(snapshot),
            metrics,
        };
        proxy.publish_health();
        proxy
    }

    /// Handles one client request; never fails, never panics on input.
    pub async fn handle(self: Arc<Self>, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let started = Instant::now();
        let snapshot = self.snapshot.load_full();
        if request.method() == Method::GET && request.uri().path() == "/" {
            // DynamoDB answers GET / like this; some load balancers and tools probe it.
            return Response::new(Full::new(Bytes::from_static(b"healthy: globalscale")));
        }
        let mut labels = ("other", String::from(crate::metrics::OTHER));
        let result = self.process(&snapshot, request, &mut labels).await;
        let response = match result {
            Ok(reply) => {
                if !reply.upstream.status.is_success() {
                    log_upstream_failure(&reply, labels.0);
                }
                reply_response(reply)
            }
            Err(err) => {
                let request_id = uuid::Uuid::new_v4().to_string();
                tracing::warn!(
                    request_id,
                    operation = labels.0,
                    error = %err,
                    side = ?err.side(),
                    "request failed in the sidecar"
                );
                error_response(&err, &request_id)
            }
        };
        self.metrics
            .requests
            .with_label_values(&[labels.0, &labels.1, response.status().as_str()])
            .inc();
        self.metrics
            .request_duration
            .with_label_values(&[labels.0])
            .observe(started.elapsed().as_secs_f64());
        response
    }

    async fn process(
        &self,
        snapshot: &Snapshot,
        request: Request<Incoming>,
        labels: &mut (&'static str, String),
    ) -> Result<Reply, ProxyError> {
        let (parts, body) = request.into_parts();
        if parts.method != Method::POST {
            return Err(ProxyError::UnknownOperation(format!(
                "DynamoDB operations are sent with POST, not {}",
                parts.method
            )));
        }
        let (operation, target) = operation(&parts.headers)?;
        labels.0 = operation.label();
        let bytes = read_body(&parts.headers, body).await?;
        let mut parsed = wire::parse(operation, &bytes)?;
        snapshot
            .table_label(&parsed.tables)
            .clone_into(&mut labels.1);
        let ctx = RequestCtx {
            idempotency_token: uuid::Uuid::new_v4().to_string(),
        };
        let body = if rewrite::apply(&mut parsed, &ctx) {
            Bytes::from(
                serde_json::to_vec(&parsed.body)
                    .map_err(|e| ProxyError::Internal(e.to_string()))?,
            )
        } else {
            bytes
        };
        let safety = resend_safety(&parsed.operation, &parsed.body);
        let forward = Forward {
            operation: &parsed.operation,
            verifiable: (safety == ResendSafety::Verifiable).then_some(&parsed.body),
            target,
            content_type: parts.headers.get(CONTENT_TYPE).cloned(),
            user_agent: parts.headers.get(USER_AGENT).cloned(),
            body,
        };
        self.forward(snapshot, &forward, safety).await
    }

    /// Sends a request of the sidecar's own (not a client's) through the same routing.
    pub async fn call(
        &self,
        operation: &Operation,
        body: Bytes,
    ) -> Result<(StatusCode, Bytes), ProxyError> {
        let snapshot = self.snapshot.load_full();
        let target = HeaderValue::from_str(&format!("{}{}", wire::TARGET_PREFIX, operation.name()))
            .map_err(|e| ProxyError::Internal(e.to_string()))?;
        let forward = Forward {
            operation,
            verifiable: None,
            target,
            content_type: None,
            user_agent: Some(HeaderValue::from_static(SIDECAR_AGENT)),
            body,
        };
        let safety = if operation.is_read() {
            ResendSafety::Safe
        } else {
            ResendSafety::Unsafe
        };
        let reply = self.forward(&snapshot, &forward, safety).await?;
        Ok((reply.upstream.status, reply.upstream.body))
    }

    /// Tries candidate regions in order until one answers in a way the client should see.
    /// When every candidate failed in a way that allows moving, it starts over from the best
    /// one after a short backoff (a surviving region's brief hiccup should not reach the
    /// client), within `max_attempts` and the request deadline.
    async fn forward(
        &self,
        snapshot: &Snapshot,
        req: &Forward<'_>,
        safety: ResendSafety,
    ) -> Result<Reply, ProxyError> {
        let order = candidates(&snapshot.region_views(), snapshot.config.routing.policy);
        if order.is_empty() {
            return Err(ProxyError::NoRegionAvailable {
                detail: "every region is down".into(),
            });
        }
        let deadline = tokio::time::Instant::now() + snapshot.config.timeouts.request;
        let mut last_response = None;
        let mut failures = Vec::new();
        let mut previous: Option<&Region> = None;
        // Once an attempt of a verifiable write may have been applied, every later attempt
        // is the verification request.
        let mut verifying: Option<Forward<'_>> = None;
        for attempt in 0..snapshot.config.routing.max_attempts as usize {
            let region = &snapshot.regions[order[attempt % order.len()]];
            if attempt > 0 && attempt % order.len() == 0 {
                let round = u32::try_from(attempt / order.len()).unwrap_or(u32::MAX);
                let backoff = RETRY_BACKOFF.saturating_mul(round);
                if tokio::time::Instant::now() + backoff >= deadline {
                    break;
                }
                tokio::time::sleep(backoff).await;
            }
            if let Some(from) = previous.filter(|from| from.name != region.name) {
                self.metrics
                    .failovers
                    .with_label_values(&[&from.name, &region.name])
                    .inc();
            }
            previous = Some(region);
            let current = verifying.as_ref().unwrap_or(req);
            let (outcome, result) = self
                .attempt(snapshot, region, current, safety, deadline)
                .await?;
            match result {
                Attempt::Done(reply) if verifying.is_some() => {
                    return verified(reply, req.verifiable);
                }
                Attempt::Done(reply) => return Ok(reply),
                Attempt::Answered(reply) => {
                    failures.push(format!("{}: HTTP {}", region.name, reply.upstream.status));
                    last_response = Some(reply);
                }
                // A region's own answer (throttling, 5xx) says more than a later connection
                // failure, so an earlier answer is kept.
                Attempt::Failed(e) => failures.push(format!("{}: {e}", region.name)),
            }
            if verifying.is_none() && !outcome.not_applied() {
                verifying = verification(req)?;
            }
        }
        // Out of attempts: the last region's own answer if there was one (a throttle or 5xx
        // the SDK knows how to retry), else a 503.
        last_response.ok_or_else(|| ProxyError::NoRegionAvailable {
            detail: failures.join("; "),
        })
    }

    /// One attempt against one region: sign, send, classify, record.
    async fn attempt(
        &self,
        snapshot: &Snapshot,
        region: &Region,
        req: &Forward<'_>,
        safety: ResendSafety,
        deadline: tokio::time::Instant,
    ) -> Result<(AttemptOutcome, Attempt), ProxyError> {
        let upstream_request = signed_request(snapshot, region, req).await?;
        let sent = tokio::time::timeout_at(deadline, snapshot.upstream.send(upstream_request));
        let Ok(result) = sent.await else {
            self.record(region, req, AttemptOutcome::Timeout, None);
            return Err(match safety {
                ResendSafety::Safe => {
                    ProxyError::DeadlineExceeded(snapshot.config.timeouts.request)
                }
                ResendSafety::Unsafe | ResendSafety::Verifiable => ProxyError::AmbiguousWrite {
                    region: region.name.clone(),
                },
            });
        };
        let outcome = match &result {
            Ok(response) => classify_response(response.status, &response.body),
            Err(e) => error_outcome(e),
        };
        self.record(
            region,
            req,
            outcome,
            result.as_ref().ok().map(|r| r.elapsed),
        );
        let moves = outcome.should_move(safety);
        let attempt = match result {
            Ok(upstream) => {
                let reply = Reply {
                    region: region.name.clone(),
                    upstream,
                };
                if moves {
                    Attempt::Answered(reply)
                } else {
                    Attempt::Done(reply)
                }
            }
            Err(e) if moves => Attempt::Failed(e),
            Err(e) => {
                return Err(ProxyError::AmbiguousWrite {
                    region: format!("{} ({e})", region.name),
                });
            }
        };
        Ok((outcome, attempt))
    }

    pub(crate) fn record(
        &self,
        region: &Region,
        req: &Forward<'_>,
        outcome: AttemptOutcome,
        elapsed: Option<std::time::Duration>,
    ) {
        self.metrics
            .upstream_requests
            .with_label_values(&[&region.name, req.operation.label(), outcome.label()])
            .inc();
        if let Some(elapsed) = elapsed {
            self.metrics
                .upstream_duration
                .with_label_values(&[&region.name])
                .observe(elapsed.as_secs_f64());
        }
        self.record_health(region, outcome, elapsed);
    }

    /// Feeds one outcome, from live traffic or a probe, into the region's health.
    pub(crate) fn record_health(
        &self,
        region: &Region,
        outcome: AttemptOutcome,
        elapsed: Option<std::time::Duration>,
    ) {
        let transition = if outcome.is_region_failure() {
            region
                .health
                .record_failure(outcome == AttemptOutcome::Timeout)
        } else {
            region.health.record_success(elapsed.unwrap_or_default())
        };
        self.on_transition(region, transition);
    }

    /// Logs and publishes a change of a region's health.
    pub fn on_transition(&self, region: &Region, transition: Option<Transition>) {
        match transition {
            Some(Transition::Ejected) => tracing::warn!(region = %region.name, "region ejected"),
            Some(Transition::Readmitted) => {
                tracing::info!(region = %region.name, "region readmitted");
            }
            None => return,
        }
        self.publish_health();
    }

    /// Sets `globalscale_region_healthy` for every region of the current snapshot.
    pub fn publish_health(&self) {
        let snapshot = self.snapshot.load();
        for region in &snapshot.regions {
            self.metrics
                .region_healthy
                .with_label_values(&[&region.name])
                .set(i64::from(region.health.is_healthy()));
        }
    }
}

/// The verification request for a verifiable write, or `None` for any other.
fn verification<'a>(req: &Forward<'a>) -> Result<Option<Forward<'a>>, ProxyError> {
    let Some(request) = req.verifiable else {
        return Ok(None);
    };
    let body = serde_json::to_vec(&own_write::verification_request(request))
        .map_err(|e| ProxyError::Internal(e.to_string()))?;
    Ok(Some(Forward {
        operation: req.operation,
        verifiable: req.verifiable,
        target: req.target.clone(),
        content_type: req.content_type.clone(),
        user_agent: req.user_agent.clone(),
        body: Bytes::from(body),
    }))
}

/// The answer to a verification request, as the client should see it: a condition failure
/// caused by the write's own first attempt becomes the success it was.
fn verified(
    mut reply: Reply,
    request: Option<&serde_json::Map<String, serde_json::Value>>,
) -> Result<Reply, ProxyError> {
    let Some(request) = request else {
        return Ok(reply);
    };
    let failed_condition = reply.upstream.status == StatusCode::BAD_REQUEST
        && crate::route::retry::error_name(&reply.upstream.body).as_deref()
            == Some("ConditionalCheckFailedException");
    if !failed_condition {
        return Ok(reply);
    }
    match own_write::judge(request, &reply.upstream.body) {
        own_write::Verdict::OwnWrite => {
            tracing::info!(region = %reply.region, "a conditional put's first attempt had been applied; answering its success");
            reply.upstream.status = StatusCode::OK;
            reply.upstream.body = Bytes::from_static(b"{}");
            Ok(reply)
        }
        own_write::Verdict::ConditionFailed(body) => {
            reply.upstream.body = Bytes::from(body);
            Ok(reply)
        }
        own_write::Verdict::Unknown => Err(ProxyError::AmbiguousWrite {
            region: reply.region,
        }),
    }
}

/// The request one attempt sends to `region`, signed for it with the snapshot's credentials.
pub(crate) async fn signed_request(
    snapshot: &Snapshot,
    region: &Region,
    req: &Forward<'_>,
) -> Result<Request<Full<Bytes>>, ProxyError> {
    let mut builder = Request::post(region.endpoint.clone())
        .header(HOST, region.host.clone())
        .header(X_AMZ_TARGET, req.target.clone())
        .header(
            CONTENT_TYPE,
            req.content_type
                .clone()
                .unwrap_or_else(|| HeaderValue::from_static(wire::CONTENT_TYPE)),
        );
    if let Some(agent) = &req.user_agent {
        builder = builder.header(USER_AGENT, agent.clone());
    }
    let mut request = builder
        .body(Full::new(req.body.clone()))
        .map_err(|e| ProxyError::Internal(e.to_string()))?;
    snapshot
        .signer
        .sign(&mut request, &req.body, &region.name)
        .await
        .map_err(|e| ProxyError::Signing(e.to_string()))?;
    Ok(request)
}

/// How one attempt ended, for the attempt loop.
enum Attempt {
    /// The client gets this answer.
    Done(Reply),
    /// An answer that allows moving on (throttling, 5xx), kept in case nothing better comes.
    Answered(Reply),
    /// No answer, and moving on is safe.
    Failed(UpstreamError),
}

/// What every attempt of one request sends.
pub(crate) struct Forward<'a> {
    pub(crate) operation: &'a Operation,
    /// The parsed request, when a resend must be verified (`ResendSafety::Verifiable`).
    pub(crate) verifiable: Option<&'a serde_json::Map<String, serde_json::Value>>,
    pub(crate) target: HeaderValue,
    pub(crate) content_type: Option<HeaderValue>,
    pub(crate) user_agent: Option<HeaderValue>,
    pub(crate) body: Bytes,
}

/// One log line for a request a region failed: its id (DynamoDB's, so AWS support can find
/// it), the error name and the region. Client errors are routine, hence `info`.
fn log_upstream_failure(reply: &Reply, operation: &str) {
    let request_id = reply
        .upstream
        .headers
        .get(X_AMZN_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    let error = crate::route::retry::error_name(&reply.upstream.body).unwrap_or_default();
    let status = reply.upstream.status.as_u16();
    if reply.upstream.status.is_server_error() {
        tracing::warn!(request_id, operation, status, error, region = %reply.region, "request failed upstream");
    } else {
        tracing::info!(request_id, operation, status, error, region = %reply.region, "request refused upstream");
    }
}

fn error_outcome(err: &UpstreamError) -> AttemptOutcome {
    match err {
        UpstreamError::Connect(_) => AttemptOutcome::ConnectError,
        UpstreamError::Timeout(_) => AttemptOutcome::Timeout,
        UpstreamError::Transport(_) | UpstreamError::ResponseTooLarge => {
            AttemptOutcome::TransportError
        }
    }
}

fn operation(headers: &HeaderMap) -> Result<(Operation, HeaderValue), ProxyError> {
    let target = headers.get(X_AMZ_TARGET).ok_or_else(|| {
        ProxyError::UnknownOperation("the request has no X-Amz-Target header".into())
    })?;
    let operation = target
        .to_str()
        .ok()
        .and_then(Operation::from_target)
        .ok_or_else(|| {
            ProxyError::UnknownOperation(format!(
                "X-Amz-Target must be {}<Operation>",
                wire::TARGET_PREFIX
            ))
        })?;
    Ok((operation, target.clone()))
}

/// Reads the body, refusing anything over DynamoDB's limit before it is buffered whole.
async fn read_body(headers: &HeaderMap, body: Incoming) -> Result<Bytes, ProxyError> {
    let too_large = ProxyError::BodyTooLarge {
        limit: wire::MAX_REQUEST_BYTES,
    };
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > wire::MAX_REQUEST_BYTES as u64) {
        return Err(too_large);
    }
    let collect = Limited::new(body, wire::MAX_REQUEST_BYTES).collect();
    let Ok(collected) = tokio::time::timeout(BODY_READ_TIMEOUT, collect).await else {
        return Err(ProxyError::Validation(format!(
            "the request body did not arrive within {BODY_READ_TIMEOUT:?}"
        )));
    };
    match collected {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(too_large),
        Err(e) => Err(ProxyError::Serialization(format!(
            "cannot read the request body: {e}"
        ))),
    }
}

fn reply_response(reply: Reply) -> Response<Full<Bytes>> {
    let Reply { region, upstream } = reply;
    let mut response = Response::new(Full::new(upstream.body.clone()));
    *response.status_mut() = upstream.status;
    let headers = response.headers_mut();
    for name in [X_AMZN_REQUEST_ID, CONTENT_TYPE.as_str()] {
        if let Some(value) = upstream.headers.get(name) {
            headers.insert(name, value.clone());
        }
    }
    headers.insert(X_AMZ_CRC32, HeaderValue::from(wire::crc32(&upstream.body)));
    if let Ok(region) = HeaderValue::from_str(&region) {
        headers.insert(X_GLOBALSCALE_REGION, region);
    }
    response
}

fn error_response(err: &ProxyError, request_id: &str) -> Response<Full<Bytes>> {
    let (status, body) = wire::error_response_parts(err);
    let crc = wire::crc32(&body);
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(wire::CONTENT_TYPE));
    headers.insert(X_AMZ_CRC32, HeaderValue::from(crc));
    if let Ok(id) = HeaderValue::from_str(request_id) {
        headers.insert(X_AMZN_REQUEST_ID, id);
    }
    if status == StatusCode::SERVICE_UNAVAILABLE {
        // Tells generic HTTP clients the same thing the error type tells SDKs.
        headers.insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}
