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
use crate::rewrite::{self, RequestCtx};
use crate::route::retry::{classify_response, resend_safety};
use crate::route::{AttemptOutcome, ResendSafety, Transition, candidates};
use crate::snapshot::{Region, Snapshot};
use crate::upstream::sign::Signer;
use crate::upstream::{UpstreamError, UpstreamResponse};
use crate::wire::{self, Operation};

const X_AMZ_TARGET: &str = "x-amz-target";
const X_AMZN_REQUEST_ID: &str = "x-amzn-requestid";
const X_AMZ_CRC32: &str = "x-amz-crc32";
/// The user agent of requests the sidecar makes on its own behalf.
pub(crate) const SIDECAR_AGENT: &str = concat!("globalscale/", env!("CARGO_PKG_VERSION"));
/// Which region answered: for operators and tests; SDKs ignore it.
const X_GLOBALSCALE_REGION: &str = "x-globalscale-region";

/// The proxy's shared state: the current snapshot, credentials and metrics.
pub struct Proxy {
    pub snapshot: ArcSwap<Snapshot>,
    pub signer: Signer,
    pub metrics: Metrics,
}

/// A region's answer on its way back to the client.
struct Reply {
    region: String,
    upstream: UpstreamResponse,
}

impl Proxy {
    pub fn new(snapshot: Snapshot, signer: Signer, metrics: Metrics) -> Self {
        let proxy = Self {
            snapshot: ArcSwap::from_pointee(snapshot),
            signer,
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
            Ok(reply) => reply_response(reply),
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
        if response.status().is_server_error()
            && let Some(id) = response.headers().get(X_AMZN_REQUEST_ID)
        {
            tracing::warn!(request_id = ?id, status = %response.status(), operation = labels.0, "request answered with a server error");
        }
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
    async fn forward(
        &self,
        snapshot: &Snapshot,
        req: &Forward<'_>,
        safety: ResendSafety,
    ) -> Result<Reply, ProxyError> {
        let order = candidates(&snapshot.region_views(), snapshot.config.routing.policy);
        if order.is_empty() {
            return Err(ProxyError::NoRegionAvailable {
                detail: "every region is marked down".into(),
            });
        }
        let deadline = tokio::time::Instant::now() + snapshot.config.timeouts.request;
        let max_attempts = snapshot.config.routing.max_attempts as usize;
        let mut last_response = None;
        let mut failures = Vec::new();
        let mut previous: Option<&Region> = None;
        for &index in order.iter().take(max_attempts) {
            let region = &snapshot.regions[index];
            if let Some(from) = previous {
                self.metrics
                    .failovers
                    .with_label_values(&[&from.name, &region.name])
                    .inc();
            }
            previous = Some(region);
            let upstream_request = self.signed_request(region, req).await?;
            let attempt =
                tokio::time::timeout_at(deadline, snapshot.upstream.send(upstream_request));
            let Ok(result) = attempt.await else {
                self.record(region, req, AttemptOutcome::Timeout, None);
                return Err(match safety {
                    ResendSafety::Safe => {
                        ProxyError::DeadlineExceeded(snapshot.config.timeouts.request)
                    }
                    ResendSafety::Unsafe => ProxyError::AmbiguousWrite {
                        region: region.name.clone(),
                    },
                });
            };
            let outcome = match &result {
                Ok(response) => classify_response(response.status, &response.body),
                Err(e) => error_outcome(e),
            };
            let elapsed = result.as_ref().ok().map(|r| r.elapsed);
            self.record(region, req, outcome, elapsed);
            match result {
                Ok(upstream) if !outcome.should_move(safety) => {
                    return Ok(Reply {
                        region: region.name.clone(),
                        upstream,
                    });
                }
                Err(e) if !outcome.should_move(safety) => {
                    return Err(ProxyError::AmbiguousWrite {
                        region: format!("{} ({e})", region.name),
                    });
                }
                Ok(upstream) => {
                    failures.push(format!("{}: HTTP {}", region.name, upstream.status));
                    last_response = Some(Reply {
                        region: region.name.clone(),
                        upstream,
                    });
                }
                Err(e) => {
                    failures.push(format!("{}: {e}", region.name));
                    // A region's own answer (throttling, 5xx) says more than a later
                    // connection failure, so an earlier answer is kept.
                }
            }
        }
        // Out of regions: the last region's own answer if there was one (a throttle or 5xx
        // the SDK knows how to retry), else a 503.
        last_response.ok_or_else(|| ProxyError::NoRegionAvailable {
            detail: failures.join("; "),
        })
    }

    pub(crate) async fn signed_request(
        &self,
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
        self.signer
            .sign(&mut request, &req.body, &region.name)
            .await
            .map_err(|e| ProxyError::Signing(e.to_string()))?;
        Ok(request)
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
            region.health.record_failure()
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

/// What every attempt of one request sends.
pub(crate) struct Forward<'a> {
    pub(crate) operation: &'a Operation,
    pub(crate) target: HeaderValue,
    pub(crate) content_type: Option<HeaderValue>,
    pub(crate) user_agent: Option<HeaderValue>,
    pub(crate) body: Bytes,
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
    match Limited::new(body, wire::MAX_REQUEST_BYTES).collect().await {
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
