//! The audit step of the request path, in two halves around forward: a write to an audited
//! table is admitted only while the spool can take its records; its records are appended as
//! intents before it is sent ([`Proxy::intend`]), their fsync running while the region
//! works; the answer settles them ([`Proxy::audit`]) and is released only once the intents
//! are durable. A write that was refused leaves none (its intents are cancelled); one that
//! may have been applied (no answer, a 5xx) leaves records marked `Outcome = "unknown"`.
//! See [`crate::audit::intent`] for what a crash leaves and how recovery settles it.

use std::sync::Arc;

use bytes::Bytes;
use serde_json::{Map, Value};

use super::stages::Outgoing;
use super::{Proxy, Reply, X_AMZN_REQUEST_ID};
use crate::audit::record::{self, Facts, Outcome};
use crate::audit::{Auditor, Unavailable, intent};
use crate::call::OwnCalls;
use crate::config::AuditImages;
use crate::error::{Chain, InternalError, ProxyError};
use crate::plan::Plan;
use crate::route::ResendSafety;
use crate::snapshot::Snapshot;
use crate::wire::Operation;

/// Where a write to an audited table stands before it is sent.
pub(super) struct Admitted<'a> {
    auditor: &'a Arc<Auditor>,
    pub(super) images: AuditImages,
    principal: String,
    principal_verified: bool,
    /// The audit table, when the records travel in the write's own transaction.
    atomic_table: Option<String>,
    /// `globalscale_audit_records_total{outcome="spooled"}`, for records settled when the
    /// request is dropped (see [`Intents`]).
    spooled: prometheus::IntCounter,
}

/// The region an intent names until the answer says which one applied the write.
const NOT_YET_KNOWN: &str = "unknown";

/// A write's intents, appended before it is sent.
pub(super) struct Intents {
    /// The event id of each audited write of the request, by its place among them (as
    /// `record::record_count` counts them): the final records keep them.
    ids: Vec<ulid::Ulid>,
    /// Their records, by event id: a settlement spools only what the answer changes.
    records: Vec<(String, Bytes)>,
    /// Resolves once every intent is durable; taken by [`Proxy::audit`].
    durable: Option<crate::audit::Waiting>,
    /// Who settles the intents if the request is dropped before its answer settled them
    /// (`None` once settled), and the counter of records spooled: see [`Drop`] below.
    unsettled: Option<(Arc<Auditor>, prometheus::IntCounter)>,
}

/// A request dropped between its intents and their settlement (the client hung up while
/// the region worked, and the server dropped the request's future with the upstream call in
/// it) has no answer: the write may or may not have been applied. Its intents are settled
/// as they stand, `Outcome = "unknown"`, as for a write whose answer never came; left open,
/// they would wait in the spool as writes still in flight until the next start.
impl Drop for Intents {
    fn drop(&mut self) {
        if let Some((auditor, spooled)) = self.unsettled.take() {
            tracing::debug!(
                records = self.records.len(),
                "audit: a write was dropped before its answer; its records ship as unknown"
            );
            auditor.settle(&self.records);
            spooled.inc_by(self.records.len() as u64);
        }
    }
}

impl Proxy {
    /// `None` for a request that leaves no records; a retryable error for an audited write
    /// the trail cannot take now (never sent, so never unrecorded).
    pub(super) fn admit<'a>(
        &'a self,
        snapshot: &Snapshot,
        plan: &Plan,
        principal: impl FnOnce() -> std::borrow::Cow<'a, str>,
        principal_verified: bool,
    ) -> Result<Option<Admitted<'a>>, ProxyError> {
        if !plan.audited_write() {
            return Ok(None);
        }
        let (Some(auditor), Some(config)) = (&self.audit, &snapshot.config.audit) else {
            // A reload cannot open a spool; refusing beats writing unrecorded.
            return Err(crate::audit::Unavailable::EnabledByReload.into());
        };
        let atomic_table = plan.atomic_audit.then(|| config.table.clone());
        if atomic_table.is_none() {
            auditor.admit()?;
        }
        Ok(Some(Admitted {
            auditor,
            images: config.images,
            principal: principal().into_owned(),
            principal_verified,
            atomic_table,
            spooled: self.metrics.audit_records.with_label_values(&["spooled"]),
        }))
    }

    /// Adds the write's records to its transaction, one body per region, since each record
    /// names the region that stores it. A client's own `ClientRequestToken` gets the same
    /// records on every resend, so DynamoDB still sees the same transaction.
    pub(super) fn attach_records(
        snapshot: &Snapshot,
        admitted: &Admitted<'_>,
        plan: &Plan,
        outgoing: &mut Outgoing,
        client_token: Option<&str>,
    ) -> Result<(), ProxyError> {
        let (Some(table), Some(document)) = (&admitted.atomic_table, &outgoing.document) else {
            return Ok(());
        };
        let facts = Facts {
            operation: plan.client_operation.name(),
            region: "",
            principal: &admitted.principal,
            principal_verified: admitted.principal_verified,
            request_id: None,
            outcome: Outcome::Accepted,
            images: admitted.images,
        };
        let auditor = admitted.auditor;
        let records = match client_token {
            Some(token) => {
                let ids = auditor.ids_for_token(token, record::record_count(plan, document));
                let mut ids = ids.into_iter();
                let mut next = || ids.next().unwrap_or_else(|| auditor.next_id());
                record::records(plan, document, None, &facts, &mut next)
            }
            None => record::records(plan, document, None, &facts, &mut || auditor.next_id()),
        };
        let count = records.len();
        let mut bodies = Vec::with_capacity(snapshot.regions.len());
        let mut sent = None;
        for region in &snapshot.regions {
            let items: Vec<_> = records.iter().map(|r| r.item_in(&region.name)).collect();
            let mut document = document.clone();
            crate::audit::atomic::append(&mut document, table, &items)?;
            let body = serde_json::to_vec(&document).map_err(InternalError::Encode)?;
            bodies.push((region.name.clone(), Bytes::from(body)));
            sent.get_or_insert(document);
        }
        if let (Some((_, first)), Some(document)) = (bodies.first(), sent) {
            outgoing.body = first.clone();
            outgoing.document = Some(document);
        }
        outgoing.region_bodies = bodies;
        outgoing.atomic_records = count;
        Ok(())
    }

    /// The intent half: appends the write's records as intents (everything the request
    /// says: event id, client, operation, table, key, version, the new image a put carries)
    /// and returns once they are written, before the write is sent: a process killed from
    /// then on leaves them for recovery. Their fsync goes on while the region works. `None`
    /// where the records travel in the write itself (atomic mode).
    pub(super) async fn intend(
        admitted: &Admitted<'_>,
        plan: &Plan,
        outgoing: &Outgoing,
    ) -> Result<Option<Intents>, ProxyError> {
        let (None, Some(sent)) = (&admitted.atomic_table, &outgoing.document) else {
            return Ok(None);
        };
        let facts = Facts {
            operation: plan.client_operation.name(),
            region: NOT_YET_KNOWN,
            principal: &admitted.principal,
            principal_verified: admitted.principal_verified,
            request_id: None,
            outcome: Outcome::Unknown,
            images: admitted.images,
        };
        let auditor = admitted.auditor;
        let ids: Vec<ulid::Ulid> = (0..record::record_count(plan, sent))
            .map(|_| auditor.next_id())
            .collect();
        let checks = intent::checks(plan, sent, &outgoing.write_id);
        let records = record::records_for(plan, sent, None, &facts, &mut |n| ids[n]);
        // Caught before the write is sent: a write whose record could never be stored is
        // refused, not accepted and then stuck.
        record::unstorable(&records).map_err(|e| ProxyError::Validation(e.to_string()))?;
        let names: Vec<String> = ids.iter().map(ToString::to_string).collect();
        let mut frames = Vec::with_capacity(records.len());
        let mut intended = Vec::with_capacity(records.len());
        for record in &records {
            let n = names.iter().position(|name| name == record.event_id());
            let check = n.and_then(|n| checks.get(n)).and_then(Option::as_ref);
            frames.push(intent::intent(record.json(), check));
            intended.push((
                record.event_id().to_owned(),
                Bytes::copy_from_slice(record.json()),
            ));
        }
        let unavailable = |e| ProxyError::from(Unavailable::Intent(Box::new(e)));
        let (written, durable) = auditor.intend(frames).map_err(unavailable)?;
        written.await.map_err(unavailable)?;
        Ok(Some(Intents {
            ids,
            records: intended,
            durable: Some(durable),
            unsettled: Some((Arc::clone(auditor), admitted.spooled.clone())),
        }))
    }

    /// The outcome half: settles the write's intents from its answer (the final records, with
    /// what only the answer knows, or a cancellation), waits until the intents are durable,
    /// and takes back from the answer what only the records asked for.
    pub(super) async fn audit(
        &self,
        admitted: Admitted<'_>,
        plan: &Plan,
        outgoing: &Outgoing,
        intents: Option<Intents>,
        result: &mut Result<Reply, ProxyError>,
    ) {
        if admitted.atomic_table.is_some() {
            if matches!(result, Ok(reply) if reply.upstream.status.is_success()) {
                self.metrics
                    .audit_records
                    .with_label_values(&["shipped"])
                    .inc_by(outgoing.atomic_records as u64);
            }
            return;
        }
        let (Some(sent), Some(mut intents)) = (&outgoing.document, intents) else {
            return;
        };
        let auditor = admitted.auditor;
        let durable = match intents.durable.take() {
            Some(waiting) => durable(auditor, waiting).await,
            None => Ok(()),
        };
        let Some((outcome, region, request_id, mut answer)) = settled_by(result) else {
            let events: Vec<String> = intents.ids.iter().map(ToString::to_string).collect();
            intents.unsettled = None;
            auditor.cancel(&events);
            return;
        };
        let facts = Facts {
            operation: plan.client_operation.name(),
            region: &region,
            principal: &admitted.principal,
            principal_verified: admitted.principal_verified,
            request_id: request_id.as_deref(),
            outcome,
            images: admitted.images,
        };
        // Taken as JSON at once: the records borrow the answer, which the strip changes.
        let ids = &intents.ids;
        let finals: Vec<(String, Bytes)> =
            record::records_for(plan, sent, answer.as_ref(), &facts, &mut |n| ids[n])
                .into_iter()
                .map(|r| (r.event_id().to_owned(), Bytes::from(r.into_json())))
                .collect();
        // Items the region left unprocessed were not written: their intents go.
        let unwritten: Vec<String> = ids
            .iter()
            .map(ToString::to_string)
            .filter(|e| !finals.iter().any(|(f, _)| f == e))
            .collect();
        if outgoing.strip_attributes
            && let (Ok(reply), Some(answer)) = (result.as_mut(), answer.as_mut())
        {
            crate::audit::returns::strip(answer);
            if let Ok(body) = serde_json::to_vec(answer) {
                reply.upstream.body = Bytes::from(body);
            }
        }
        match durable {
            Ok(()) => {
                self.metrics
                    .audit_records
                    .with_label_values(&["spooled"])
                    .inc_by(finals.len() as u64);
                intents.unsettled = None;
                auditor.cancel(&unwritten);
                let changes: Vec<(String, Bytes)> = finals
                    .iter()
                    .map(|(event, settled)| {
                        let intended = intents.records.iter().find(|(e, _)| e == event);
                        let changes = intended.and_then(|(_, r)| intent::delta(r, settled));
                        (event.clone(), changes.unwrap_or_else(|| settled.clone()))
                    })
                    .collect();
                auditor.settle(&changes);
            }
            // The write happened and its intents are not durable: the records go to the
            // audit table directly, or into the log.
            Err(e) => {
                intents.unsettled = None;
                let records = finals.into_iter().map(|(_, r)| r).collect();
                self.ship_now(&e, records).await;
            }
        }
    }

    /// The spool refused the records of a write that happened: they go to the audit table
    /// directly, and if that fails too, into the log, which is then the only copy.
    async fn ship_now(&self, error: &crate::audit::spool::SpoolError, records: Vec<Bytes>) {
        let table = self.audit_table();
        for record in records {
            let stored = match &table {
                Some(table) => {
                    let body = crate::audit::shipper::put_body(table, &record);
                    let answer = self
                        .call_with(&Operation::PutItem, body, ResendSafety::Safe)
                        .await;
                    matches!(answer, Ok((status, _)) if status.is_success())
                }
                None => false,
            };
            let outcome = if stored { "shipped" } else { "failed" };
            self.metrics
                .audit_records
                .with_label_values(&[outcome])
                .inc();
            if !stored {
                tracing::error!(
                    spool_error = %Chain::for_log(error),
                    record = %String::from_utf8_lossy(&record),
                    "audit record neither spooled nor shipped; this log line is its only copy"
                );
            }
        }
    }
}

/// Waits until a write's intents are durable; if they are not yet, the answer being back,
/// the group commit is told to stop gathering (most often they are: the fsync ran while the
/// region worked).
async fn durable(
    auditor: &Auditor,
    mut waiting: crate::audit::Waiting,
) -> Result<(), crate::audit::spool::SpoolError> {
    let now = std::future::poll_fn(|cx| {
        std::task::Poll::Ready(match waiting.as_mut().poll(cx) {
            std::task::Poll::Ready(result) => Some(result),
            std::task::Poll::Pending => None,
        })
    })
    .await;
    if let Some(result) = now {
        return result;
    }
    auditor.hurry();
    waiting.await
}

/// What the answer says of the write for its records: `None` when it was refused (nothing
/// applied); else the outcome, the region, the region's request id and the answer's body.
/// The outcome, the region, its request id and the answer's body.
type Settled = (Outcome, String, Option<String>, Option<Map<String, Value>>);

fn settled_by(result: &Result<Reply, ProxyError>) -> Option<Settled> {
    match result {
        Ok(reply) if reply.upstream.status.is_success() => {
            // Most writes are answered `{}`: nothing for the records or the strip.
            let answer = (!is_empty_object(&reply.upstream.body))
                .then(|| serde_json::from_slice::<Map<String, Value>>(&reply.upstream.body))
                .and_then(Result::ok);
            let request_id = reply
                .upstream
                .headers
                .get(&X_AMZN_REQUEST_ID)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            Some((
                Outcome::Accepted,
                reply.region.name.clone(),
                request_id,
                answer,
            ))
        }
        Ok(reply) if reply.upstream.status.is_server_error() => {
            Some((Outcome::Unknown, reply.region.name.clone(), None, None))
        }
        Err(e) if e.maybe_applied() => {
            let region = e.region().unwrap_or(NOT_YET_KNOWN).to_owned();
            Some((Outcome::Unknown, region, None, None))
        }
        _ => None,
    }
}

/// Whether `body` is `{}`, give or take whitespace.
fn is_empty_object(body: &[u8]) -> bool {
    body.iter()
        .filter(|b| !b.is_ascii_whitespace())
        .eq(b"{}".iter())
}
