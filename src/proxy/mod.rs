//! The request path, one straight line:
//! view (operation, lazy body) → plan (table policies) → rewrite (and resend safety) →
//! forward (for each candidate region: sign → send → classify) → restore → reply (crc32),
//! with metrics and one log line per failed request.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::header::{CONTENT_TYPE, USER_AGENT};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;

use crate::audit::Auditor;
use crate::call::OwnCalls;
use crate::config::{AuditMode, AuthMode};
use crate::error::{Chain, InternalError, ProxyError};
use crate::metrics::Metrics;
use crate::plan::Plan;
use crate::probe::HealthReport;
use crate::route::health_log::HealthLog;
use crate::route::write_region::WriteRegion;
use crate::route::{AttemptOutcome, ResendSafety, SIDECAR_AGENT, TransactionPins};
use crate::server::bodies::BodyBudget;
use crate::snapshot::{Region, Snapshot};
use crate::tables;
use crate::upstream::UpstreamResponse;
use crate::upstream::outbound::{Outbound, X_AMZ_TARGET};
use crate::wire::{self, Operation, RequestView};

mod attempts;
mod audit;
pub mod own_write;
mod reply;
mod root;
mod series;
pub mod stages;
mod streams;

use reply::{log_upstream_failure, reply_response};
use wire::X_AMZN_REQUEST_ID;

/// The proxy's shared state: the current snapshot and the metrics.
pub struct Proxy {
    pub snapshot: ArcSwap<Snapshot>,
    pub metrics: Metrics,
    /// Outlives snapshots: a reload must not forget where a transaction may have run.
    pub pins: TransactionPins,
    /// The audit trail, when the config audits tables; opened at start only.
    pub audit: Option<Arc<Auditor>>,
    /// `[limits] max_in_flight` permits; sized at start only.
    in_flight: Arc<tokio::sync::Semaphore>,
    /// Where writes go under `write_failover = "manual"`: the home region until an operator
    /// moves them. Outlives snapshots.
    write_region: WriteRegion,
    /// The regions' health bookkeeping: ejections and readmissions, for `/status`.
    pub health_log: Arc<HealthLog>,
    /// `[server] max_body_memory_bytes`, shared by every request; sized at start only.
    bodies: BodyBudget,
    /// The last request each region's health counted a server error of (the poison rule).
    repeats: attempts::repeats::Repeats,
}

pub use crate::route::health_log::RegionEvent;

/// The reasons of `globalscale_policy_refusals_total`.
pub(crate) const REFUSAL_REASONS: [&str; 2] = ["audit_table", "table_arn"];

/// The client a request came from: its name borrowed from the snapshot, its request's
/// headers from the request.
struct Client<'s, 'h> {
    /// Its `[[clients]]` name, or `anonymous`.
    name: &'s str,
    /// Whether its signature was checked; without, its principal is only claimed.
    verified: bool,
    headers: &'h HeaderMap,
}

impl<'s> Client<'s, '_> {
    /// What its audit records call it: its name, or without a checked signature the access
    /// key id it claims. Read only where a record or a refusal needs it.
    fn principal(&self) -> Cow<'s, str> {
        if self.verified {
            Cow::Borrowed(self.name)
        } else {
            Cow::Owned(crate::audit::principal(self.headers))
        }
    }
}

/// What a request is counted and logged under; borrowed from the snapshot, so that
/// labelling a request copies nothing.
struct Labels<'s> {
    operation: &'static str,
    table: &'s str,
    /// The `[[clients]]` name, or `anonymous`.
    client: &'s str,
}

/// A region's answer on its way back to the client.
#[derive(Debug)]
struct Reply {
    region: Arc<crate::region::RegionLabel>,
    upstream: UpstreamResponse,
}

impl Proxy {
    pub fn new(snapshot: Snapshot, metrics: Metrics) -> Self {
        let max_in_flight = snapshot.config.limits.max_in_flight;
        let home = snapshot.regions.first().map(|r| r.name.clone());
        let proxy = Self {
            write_region: WriteRegion::new(
                home.as_deref().unwrap_or_default(),
                metrics.write_region.clone(),
            ),
            health_log: Arc::new(HealthLog::new(metrics.clone())),
            in_flight: Arc::new(tokio::sync::Semaphore::new(max_in_flight)),
            bodies: BodyBudget::from_config(&snapshot.config, &metrics),
            repeats: attempts::repeats::Repeats::default(),
            snapshot: ArcSwap::from_pointee(snapshot),
            metrics,
            pins: TransactionPins::default(),
            audit: None,
        };
        proxy.publish_health();
        proxy
            .write_region
            .publish(&proxy.snapshot.load().region_names());
        proxy.init_series();
        proxy
    }

    /// The region writes go to under `write_failover = "manual"`.
    pub fn write_region(&self) -> String {
        self.write_region.get()
    }

    /// Moves writes to `region`, a configured one; returns where they went before.
    pub fn set_write_region(&self, region: &str) -> Result<String, String> {
        let snapshot = self.snapshot.load();
        self.write_region.set(region, &snapshot.region_names())
    }

    /// After a reload: a write region no longer configured falls back to the home region.
    pub fn keep_write_region(&self) {
        self.write_region.keep(&self.snapshot.load().region_names());
        self.init_series();
    }

    /// The proxy with its audit trail.
    #[must_use]
    pub fn with_audit(mut self, auditor: Arc<Auditor>) -> Self {
        // Fixed for the process: the spool is opened once, with its limit.
        self.metrics
            .audit_spool_limit_bytes
            .set(i64::try_from(auditor.spool().limit()).unwrap_or(i64::MAX));
        self.audit = Some(auditor);
        self.init_series();
        self
    }

    /// Handles one client request; never fails, never panics on input.
    pub async fn handle(self: Arc<Self>, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let started = Instant::now();
        let snapshot = self.snapshot.load_full();
        if request.method() == Method::GET && request.uri().path() == "/" {
            return self.root(&snapshot).await;
        }
        if crate::server::cors::is_preflight(request.method(), request.headers()) {
            return reply::preflight_response(request.headers(), &snapshot.config.cors);
        }
        let origin = request.headers().get(http::header::ORIGIN).cloned();
        let mut labels = Labels {
            operation: "other",
            table: crate::metrics::OTHER,
            client: crate::audit::ANONYMOUS,
        };
        let result = self.process(&snapshot, request, &mut labels).await;
        let response = match result {
            Ok(reply) => {
                if !reply.upstream.status.is_success() {
                    log_upstream_failure(&reply, labels.operation, labels.client);
                }
                reply_response(reply)
            }
            Err(err) => {
                let request_id = uuid::Uuid::new_v4().to_string();
                tracing::warn!(
                    request_id,
                    operation = labels.operation,
                    client = labels.client,
                    // Escaped: the message may quote a client's table name or expression.
                    error = %Chain::for_log(&err),
                    side = ?err.side(),
                    retryable = err.retryable(),
                    "request failed in the sidecar"
                );
                wire::error_response(&err, &request_id)
            }
        };
        let mut response = response;
        crate::server::cors::decorate(
            origin.as_ref(),
            &snapshot.config.cors,
            response.headers_mut(),
        );
        self.metrics
            .requests
            .with_label_values(&[
                labels.operation,
                labels.table,
                response.status().as_str(),
                labels.client,
            ])
            .inc();
        self.metrics
            .request_duration
            .with_label_values(&[labels.operation])
            .observe(started.elapsed().as_secs_f64());
        response
    }

    async fn process<'s>(
        &self,
        snapshot: &'s Snapshot,
        request: Request<Incoming>,
        labels: &mut Labels<'s>,
    ) -> Result<Reply, ProxyError> {
        let (parts, body) = request.into_parts();
        if parts.method != Method::POST {
            return Err(ProxyError::UnknownOperation(format!(
                "DynamoDB operations are sent with POST, not {}",
                parts.method
            )));
        }
        if let Some(streams) = streams_operation(&parts.headers) {
            return self
                .streams(snapshot, (parts, body), streams?, labels)
                .await;
        }
        let (operation, target) = operation(&parts.headers)?;
        labels.operation = operation.label();
        let (client, body, _permit) = self.receive(snapshot, &parts, body, labels).await?;
        let bytes = body.bytes.clone();
        // Declared before the view, which may borrow it.
        let canonical_bytes: Bytes;
        let mut view = RequestView::parse(operation.clone(), &bytes)?;
        let canonical = self.canonical_body(snapshot, &view, &client).await?;
        if let Some(canonical) = &canonical {
            canonical_bytes = canonical.body.clone();
            view = RequestView::parse(operation, &canonical_bytes)?;
        }
        let refs = self.references(snapshot, &view, &client)?;
        // Before the checks below, so that a refused request is counted under its table too.
        labels.table = crate::snapshot::request_table_label(&snapshot.tables, &view.tables, &refs);
        let allowed = snapshot.access.get(client.name);
        if let Some(allowed) = allowed {
            allowed.check(client.name, &view, &refs)?;
        }
        let atomic = snapshot
            .config
            .audit
            .as_ref()
            .is_some_and(|a| a.mode == AuditMode::Atomic);
        let mut plan = Plan::build_from(&view, &refs, &snapshot.tables, atomic)?;
        let body = match canonical {
            Some(canonical) => {
                plan.spellings = canonical.spellings;
                canonical.body
            }
            None => bytes.clone(),
        };
        let admitted = self.admit(snapshot, &plan, || client.principal(), client.verified)?;
        let images = admitted.as_ref().map(|a| a.images);
        let mut outgoing = stages::rewrite_request(&view, &mut plan, body, images)?;
        if let Some(admitted) = &admitted
            && plan.atomic_audit
        {
            let token = view.str("ClientRequestToken");
            Self::attach_records(snapshot, admitted, &plan, &mut outgoing, token.as_deref())?;
        }
        let received = attempts::repeats::Received {
            target: target.clone(),
            body: bytes.clone(),
        };
        // A versioned BatchWriteItem runs as a TransactWriteItems.
        let target = if plan.operation == plan.client_operation {
            target
        } else {
            target_of(&plan.operation)?
        };
        let forward = Forward {
            operation: &plan.operation,
            received,
            outbound: Outbound {
                target,
                content_type: parts.headers.get(CONTENT_TYPE).cloned(),
                user_agent: parts.headers.get(USER_AGENT).cloned(),
                body: outgoing.body.clone(),
            },
            verifiable: outgoing.sent().zip(outgoing.mark.as_ref()),
            pin_token: outgoing.pin_token.as_deref(),
            region_bodies: &outgoing.region_bodies,
            read: crate::route::hedge::eventual_read(&view, plan.statements_read),
        };
        let intents = match &admitted {
            Some(admitted) => Self::intend(admitted, &plan, &outgoing).await?,
            None => None,
        };
        let mut result = self.forward(snapshot, &forward, outgoing.safety).await;
        if let Some(admitted) = admitted {
            self.audit(admitted, &plan, &outgoing, intents, &mut result)
                .await;
        }
        let mut reply = result?;
        self.restore(snapshot, &plan, allowed, &mut reply)
            .map_err(|e| e.after_send(&reply.region, outgoing.safety))?;
        Ok(reply)
    }

    /// A request's body read (within the body budget), a place among the requests in
    /// flight, its client authenticated, and then its body decoded: what every request does
    /// before it is read.
    async fn receive<'s, 'h>(
        &self,
        snapshot: &'s Snapshot,
        parts: &'h http::request::Parts,
        body: Incoming,
        labels: &mut Labels<'s>,
    ) -> Result<
        (
            Client<'s, 'h>,
            crate::server::bodies::Body,
            tokio::sync::SemaphorePermit<'_>,
        ),
        ProxyError,
    > {
        self.check_before_body(snapshot, parts)?;
        let sigv4 = snapshot.config.auth.mode == AuthMode::Sigv4;
        let body = self.bodies.read(&parts.headers, body, sigv4).await?;
        // Taken once the body is in: a client trickling its body holds a connection, not a
        // place among the requests being served.
        let permit = self.in_flight.try_acquire().map_err(|_| {
            self.metrics.requests_shed.inc();
            ProxyError::Overloaded(snapshot.config.limits.max_in_flight)
        })?;
        let client = self.authenticate(snapshot, parts, &body)?;
        labels.client = client.name;
        // After the signature, which covers the bytes as sent: a client without credentials
        // cannot make the sidecar inflate anything.
        let body = self.bodies.decode(&parts.headers, body).await?;
        Ok((client, body, permit))
    }

    /// The region's answer counted and restored for the client (prefixes stripped, table
    /// names spelled as the client spelled them, a `ListTables` filtered). An error here
    /// comes after the region may have applied the request.
    fn restore(
        &self,
        snapshot: &Snapshot,
        plan: &Plan,
        allowed: Option<&crate::access::Allowed>,
        reply: &mut Reply,
    ) -> Result<(), ProxyError> {
        for (table, count) in stages::unprocessed(plan, reply) {
            let label =
                crate::snapshot::table_label(&snapshot.tables, std::slice::from_ref(&table));
            self.metrics
                .unprocessed_items
                .with_label_values(&[label])
                .inc_by(count);
        }
        for table in stages::version_conflicts(plan, reply) {
            self.metrics
                .version_conflicts
                .with_label_values(&[&table])
                .inc();
        }
        stages::restore_answer(plan, reply)?;
        if plan.client_operation == Operation::ListTables
            && (allowed.is_some() || snapshot.config.audit.is_some())
        {
            let audit_table = snapshot.config.audit.as_ref().map(|a| a.table.as_str());
            stages::filter_table_list(
                |name| allowed.is_none_or(|a| a.allows(name)) && Some(name) != audit_table,
                reply,
            )?;
        }
        Ok(())
    }

    /// The body with the ARNs of managed tables replaced by their names, when it names one
    /// so; a refusal is counted and logged.
    async fn canonical_body(
        &self,
        snapshot: &Snapshot,
        view: &RequestView<'_>,
        client: &Client<'_, '_>,
    ) -> Result<Option<tables::Canonical>, ProxyError> {
        if !view.tables.iter().any(|t| tables::looks_like_arn(t)) {
            return Ok(None);
        }
        // A managed table named by ARN before its own ARN is known: learn it first, rather
        // than refuse a request that may well be for it.
        let unlearned: Vec<&str> = view
            .tables
            .iter()
            .filter(|t| tables::looks_like_arn(t))
            .map(|t| tables::table_of(t))
            .filter(|t| snapshot.tables.get(*t).is_some_and(|p| p.arn.is_none()))
            .collect();
        let learned;
        let snapshot = if unlearned.is_empty() {
            snapshot
        } else {
            for table in unlearned {
                if let Err(e) = crate::schema::learn_arn(self, table).await {
                    tracing::warn!(table, error = %e, "cannot learn the ARN of a managed table");
                }
            }
            learned = self.snapshot.load_full();
            &learned
        };
        let catalog = tables::Catalog {
            policies: &snapshot.tables,
            audit_table: snapshot.config.audit.as_ref().map(|a| a.table.as_str()),
            regions: snapshot.regions.iter().map(|r| r.name.as_str()).collect(),
        };
        tables::canonical_body(view, &catalog)
            .inspect_err(|e| self.refused("table_arn", view, client, e))
    }

    /// Every table the request names, read once; a request naming the audit table is
    /// refused here, whoever sends it and whatever the allow-lists say.
    fn references(
        &self,
        snapshot: &Snapshot,
        view: &RequestView<'_>,
        client: &Client<'_, '_>,
    ) -> Result<tables::References, ProxyError> {
        let refs = tables::References::read(view)?;
        if let Some(audit) = &snapshot.config.audit {
            tables::guard_audit_table(&refs, &audit.table)
                .inspect_err(|e| self.refused("audit_table", view, client, e))?;
        }
        Ok(refs)
    }

    /// Counts and logs a policy refusal. The client's text goes into the log only through
    /// `Debug` or [`Chain::for_log`], which escape it, so a name with a newline cannot forge
    /// a log line.
    fn refused(
        &self,
        reason: &'static str,
        view: &RequestView<'_>,
        client: &Client<'_, '_>,
        e: &ProxyError,
    ) {
        self.metrics
            .policy_refusals
            .with_label_values(&[reason])
            .inc();
        tracing::warn!(
            reason,
            operation = view.operation.label(),
            client = ?client.name,
            principal = ?client.principal(),
            tables = ?view.tables,
            error = %Chain::for_log(e),
            "request refused by table policy"
        );
    }

    /// With `[auth] mode = "sigv4"`, the checks that need no body, before it is read: a
    /// request refused here costs no body memory.
    fn check_before_body(
        &self,
        snapshot: &Snapshot,
        parts: &http::request::Parts,
    ) -> Result<(), ProxyError> {
        let Some(verifier) = &snapshot.verifier else {
            return Ok(());
        };
        if snapshot.config.auth.mode == AuthMode::None {
            return Ok(());
        }
        let now = std::time::SystemTime::now();
        verifier
            .check_before_body(&parts.headers, now)
            .map_err(|e| {
                self.metrics
                    .auth_failures
                    .with_label_values(&[e.reason()])
                    .inc();
                e.into()
            })
    }

    /// Who sent the request: with `[auth] mode = "sigv4"`, the client whose signature it
    /// carries, or an error and nothing sent; without, `anonymous`, whose audit records name
    /// the access key id it signed with, unchecked.
    fn authenticate<'s, 'h>(
        &self,
        snapshot: &'s Snapshot,
        parts: &'h http::request::Parts,
        body: &crate::server::bodies::Body,
    ) -> Result<Client<'s, 'h>, ProxyError> {
        if snapshot.config.auth.mode == AuthMode::None {
            return Ok(Client {
                name: crate::audit::ANONYMOUS,
                verified: false,
                headers: &parts.headers,
            });
        }
        let Some(verifier) = &snapshot.verifier else {
            return Err(InternalError::NoVerifier.into());
        };
        let now = std::time::SystemTime::now();
        let hash = body.payload_hash();
        match verifier.verify_hashed(&parts.method, &parts.uri, &parts.headers, &hash, now) {
            Ok(name) => Ok(Client {
                name,
                verified: true,
                headers: &parts.headers,
            }),
            Err(e) => {
                self.metrics
                    .auth_failures
                    .with_label_values(&[e.reason()])
                    .inc();
                Err(e.into())
            }
        }
    }

    pub(crate) fn record(
        &self,
        region: &Region,
        req: &Forward<'_>,
        outcome: AttemptOutcome,
        elapsed: Option<std::time::Duration>,
        started: tokio::time::Instant,
    ) {
        let operation = req.operation.label();
        if outcome == AttemptOutcome::ServerError && !self.repeats.counts(&region.name, req) {
            // The same request failing again says nothing new about the region.
            self.metrics.repeated_server_errors.inc();
            self.health_log.count(region, operation, outcome, elapsed);
            return;
        }
        self.health_log
            .attempt(region, operation, outcome, elapsed, started);
    }

    /// Sets `globalscale_region_healthy` for every region of the current snapshot.
    pub fn publish_health(&self) {
        self.health_log.publish(&self.snapshot.load().regions);
    }

    /// The Prometheus text, with gauges read from live state at scrape time rather than set
    /// on every request.
    pub fn render_metrics(&self) -> Result<Vec<u8>, prometheus::Error> {
        let spool = self.audit.as_ref().map(|auditor| {
            let backlog = auditor.spool().backlog();
            let groups = auditor.spool().group_stats();
            crate::metrics::SpoolLive {
                records: backlog.records as u64,
                oldest_age: backlog.oldest_age,
                held_bytes: backlog.held,
                fsyncs: groups.fsyncs,
                largest_group: groups.largest_group,
            }
        });
        let snapshot = self.snapshot.load();
        let ramp = snapshot.config.routing.reads.failback_ramp;
        self.health_log.publish_shares(&snapshot.regions, ramp);
        self.metrics.scrape(&crate::metrics::Live {
            retry_budget_tokens: snapshot.retry_budget.tokens(),
            credential_refreshes: crate::upstream::sign::Signer::refreshes(),
            spool,
            body_memory_bytes: self.bodies.held() as u64,
            upstream_idle_closed: crate::upstream::Upstream::idle_closed(),
        })
    }
}

impl OwnCalls for Proxy {
    async fn call_with(
        &self,
        operation: &Operation,
        body: Bytes,
        safety: ResendSafety,
    ) -> Result<(StatusCode, Bytes), ProxyError> {
        let snapshot = self.snapshot.load_full();
        let target = target_of(operation)?;
        let forward = Forward {
            operation,
            received: attempts::repeats::Received {
                target: target.clone(),
                body: body.clone(),
            },
            outbound: Outbound {
                target,
                content_type: None,
                user_agent: Some(HeaderValue::from_static(SIDECAR_AGENT)),
                body,
            },
            verifiable: None,
            pin_token: None,
            region_bodies: &[],
            read: None,
        };
        let reply = self.forward(&snapshot, &forward, safety).await?;
        Ok((reply.upstream.status, reply.upstream.body))
    }

    fn snapshot_cell(&self) -> &ArcSwap<Snapshot> {
        &self.snapshot
    }

    fn metrics(&self) -> &Metrics {
        &self.metrics
    }
}

impl HealthReport for Proxy {
    fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    fn count_probe(&self, region: &Region, outcome: AttemptOutcome) {
        self.metrics
            .probes
            .with_label_values(&[&region.name, outcome.label()])
            .inc();
    }

    fn record_health(
        &self,
        region: &Region,
        outcome: AttemptOutcome,
        elapsed: Option<std::time::Duration>,
        started: tokio::time::Instant,
    ) {
        self.health_log.outcome(region, outcome, elapsed, started);
    }

    fn record_read(
        &self,
        region: &Region,
        elapsed: std::time::Duration,
        started: tokio::time::Instant,
    ) {
        let snapshot = self.snapshot.load();
        let sample = crate::region::ReadSample::Answered(elapsed);
        let kind = crate::region::ReadKind::GetItem;
        self.health_log
            .read(&snapshot, region, kind, sample, started);
    }
}

/// What every attempt of one request sends, and what the attempt loop must know of it.
pub(crate) struct Forward<'a> {
    pub(crate) operation: &'a Operation,
    /// The request as the client sent it, which the poison rule knows it by.
    pub(crate) received: attempts::repeats::Received,
    pub(crate) outbound: Outbound,
    /// The parsed request and how to recognise its own first attempt, when a resend must be
    /// verified (`ResendSafety::Verifiable`).
    pub(crate) verifiable: Option<(own_write::Sent<'a>, &'a own_write::Mark)>,
    /// The `ClientRequestToken` of a transaction that may be resent only where it was
    /// applied ([`ResendSafety::SameRegion`]).
    pub(crate) pin_token: Option<&'a str>,
    /// A body per region, when the request names the region it is sent to (atomic audit
    /// records); empty otherwise.
    pub(crate) region_bodies: &'a [(String, Bytes)],
    /// The kind of an eventually consistent read, which may be hedged and avoids slow or
    /// ramping regions; `None` for writes and strongly consistent reads.
    pub(crate) read: Option<crate::region::ReadKind>,
}

/// The `X-Amz-Target` of an operation the sidecar sends on its own account.
fn target_of(operation: &Operation) -> Result<HeaderValue, ProxyError> {
    HeaderValue::from_str(&format!("{}{}", wire::TARGET_PREFIX, operation.name()))
        .map_err(|e| InternalError::Target(e).into())
}

/// The streams operation of a `DynamoDBStreams_20120810.*` target, with the target.
fn streams_operation(
    headers: &HeaderMap,
) -> Option<Result<(crate::streams::StreamsOperation, HeaderValue), ProxyError>> {
    let target = headers.get(&X_AMZ_TARGET)?;
    let operation = crate::streams::StreamsOperation::from_target(target.to_str().ok()?)?;
    Some(operation.map(|op| (op, target.clone())))
}

fn operation(headers: &HeaderMap) -> Result<(Operation, HeaderValue), ProxyError> {
    let target = headers.get(&X_AMZ_TARGET).ok_or_else(|| {
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
