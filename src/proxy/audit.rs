//! The audit stage of the request path, between forward and restore: a write to an audited
//! table is admitted only while the spool can take its records, and its answer is released
//! only once they are durable. A write that was refused leaves none; one that may have been
//! applied (no answer, a 5xx) leaves records marked `Outcome = "unknown"`.

use std::sync::Arc;

use bytes::Bytes;
use serde_json::{Map, Value};

use super::stages::Outgoing;
use super::{Proxy, Reply, X_AMZN_REQUEST_ID};
use crate::audit::Auditor;
use crate::audit::record::{self, Facts, Outcome};
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
}

impl Proxy {
    /// `None` for a request that leaves no records; a retryable error for an audited write
    /// the trail cannot take now (never sent, so never unrecorded).
    pub(super) fn admit<'a>(
        &'a self,
        snapshot: &Snapshot,
        plan: &Plan,
        principal: &str,
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
            principal: principal.to_owned(),
            principal_verified,
            atomic_table,
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

    /// Builds the write's records from what was sent and answered, makes them durable, and
    /// takes back from the answer what only the records asked for.
    pub(super) async fn audit(
        &self,
        admitted: Admitted<'_>,
        plan: &Plan,
        outgoing: &Outgoing,
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
        let Some(sent) = &outgoing.document else {
            return;
        };
        let (outcome, region, request_id, mut answer) = match result {
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
                (Outcome::Accepted, reply.region.clone(), request_id, answer)
            }
            Ok(reply) if reply.upstream.status.is_server_error() => {
                (Outcome::Unknown, reply.region.clone(), None, None)
            }
            Err(e) if e.maybe_applied() => {
                let region = e.region().unwrap_or("unknown").to_owned();
                (Outcome::Unknown, region, None, None)
            }
            _ => return,
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
        let auditor = admitted.auditor;
        // Taken as JSON at once: the records borrow the answer, which the strip changes.
        let records: Vec<Bytes> = record::records(plan, sent, answer.as_ref(), &facts, &mut || {
            auditor.next_id()
        })
        .into_iter()
        .map(|r| Bytes::from(r.into_json()))
        .collect();
        if outgoing.strip_attributes
            && let (Ok(reply), Some(answer)) = (result.as_mut(), answer.as_mut())
        {
            crate::audit::returns::strip(answer);
            if let Ok(body) = serde_json::to_vec(answer) {
                reply.upstream.body = Bytes::from(body);
            }
        }
        self.keep(auditor, records).await;
    }

    async fn keep(&self, auditor: &Auditor, records: Vec<Bytes>) {
        let count = records.len() as u64;
        if count == 0 {
            return;
        }
        match auditor.keep(&records).await {
            Ok(()) => self
                .metrics
                .audit_records
                .with_label_values(&["spooled"])
                .inc_by(count),
            Err(e) => self.ship_now(&e, records).await,
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

/// Whether `body` is `{}`, give or take whitespace.
fn is_empty_object(body: &[u8]) -> bool {
    body.iter()
        .filter(|b| !b.is_ascii_whitespace())
        .eq(b"{}".iter())
}
