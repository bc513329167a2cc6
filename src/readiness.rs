//! The start gate behind `/readyz`: a pod is not ready until the sidecar has credentials and
//! a region has accepted one signed request to each managed table. It sits beside the request
//! path, not in it: the proxy serves whatever arrives, and the gate only decides what the
//! admin port tells Kubernetes.
//!
//! Why a gate of its own: regions start healthy and the prober skips a region it cannot sign
//! for, so a rollout with a wrong role ARN or a broken IRSA setup would otherwise go green
//! pod by pod (`maxUnavailable: 0` finishes it) and fail every request after. The check is
//! the probe's `GetItem` of a key that need not exist (half a read unit): it proves DNS, TLS,
//! the signature and the role's data-plane permission on that table. A region's answer that
//! proves authorisation failed (`AccessDeniedException`, `UnrecognizedClientException`, ...)
//! is logged and counted by region and error; the next region is tried, since one accepting
//! is enough. With no managed table the check reads a table that does not exist, and any
//! answer but an authentication failure proves the credentials.
//!
//! With auditing on, the audit table is checked too, since a role that may write the
//! catalog but not the trail would fill the spool and then refuse every audited write: a
//! `PutItem` of a sentinel key under a condition no item meets (`attribute_exists` and
//! `attribute_not_exists` of the same attribute), so nothing is ever written. DynamoDB
//! checks authorisation before conditions: `ConditionalCheckFailedException` proves the
//! permission, an authorisation failure keeps the gate shut. Anything else (a missing audit
//! table, which the shipper waits out with the records spooled) lets it open.
//!
//! The gate latches: once open it stays open. Region health does not take a started pod out
//! of its Services, because every pod shares the same regions and role: a regional outage
//! would make every pod NotReady at once and turn DynamoDB's retryable errors into an outage
//! of the whole application (docs/src/operating.md, "Readiness").

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use http::{HeaderValue, StatusCode};
use prometheus::{IntCounterVec, IntGauge};

use crate::call::OwnCalls;
use crate::snapshot::{Region, Snapshot};
use crate::upstream::outbound::{Outbound, signed_request};
use crate::wire::error_name;

#[cfg(test)]
mod tests;

/// DynamoDB's (and the AWS front door's) names for a request refused because of who signed
/// it: the credentials are missing, unknown, expired or badly signed, or the role may not
/// touch the table. The `error` label of `globalscale_readiness_refusals_total` is one of
/// these, [`NO_CREDENTIALS`] or [`FORBIDDEN`].
pub const AUTH_ERRORS: [&str; 13] = [
    "AccessDeniedException",
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "ExpiredTokenException",
    "IncompleteSignatureException",
    "MissingAuthenticationTokenException",
    // The same failures as other AWS front doors and proxies name them.
    "AccessDenied",
    "ExpiredToken",
    "InvalidClientTokenId",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "NotAuthorized",
    "UnauthorizedOperation",
];
/// The sidecar has no credentials to sign with (the default chain found none, or failed).
pub const NO_CREDENTIALS: &str = "NoCredentials";
/// A 403 without one of DynamoDB's names (a proxy or firewall on the way).
pub const FORBIDDEN: &str = "Forbidden";

/// What one region's answer to the check says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// The region accepted the signed request: this table is good.
    Accepted,
    /// Authorisation failed: the label value naming why.
    Refused(&'static str),
    /// Neither (a 5xx, a missing table, a timeout): try the next region, and again later.
    Inconclusive(String),
}

/// Judges a region's answer to the check. `any_table`: no table is managed, so the check read
/// a table that does not exist and only proves the credentials; `AccessDeniedException` on it
/// says the role may not read that table, not that the role is wrong.
pub fn judge(status: StatusCode, body: &[u8], any_table: bool) -> Check {
    if status.is_success() {
        return Check::Accepted;
    }
    let name = error_name(body);
    if let Some(refused) = name
        .as_deref()
        .and_then(|n| AUTH_ERRORS.iter().find(|known| **known == n))
    {
        if any_table && *refused == "AccessDeniedException" {
            return Check::Accepted;
        }
        return Check::Refused(refused);
    }
    if status == StatusCode::FORBIDDEN {
        return Check::Refused(FORBIDDEN);
    }
    if any_table && status.is_client_error() && name.is_some() {
        return Check::Accepted;
    }
    Check::Inconclusive(name.unwrap_or_else(|| format!("HTTP {}", status.as_u16())))
}

/// The gate: shared by the admin port (which reads it) and [`run`] (which opens it).
pub struct Gate {
    open: AtomicBool,
    state: Mutex<State>,
    refusals: IntCounterVec,
    ready: IntGauge,
}

#[derive(Default)]
struct State {
    /// Why the gate is still shut, for `/readyz`'s body.
    waiting: String,
    /// The last refusal logged per region, so a region refusing every second logs once.
    logged: HashMap<String, &'static str>,
}

impl Gate {
    /// A shut gate. Every (region, error) series of `refusals` is exported at zero from the
    /// start, so an alert's `increase()` has a baseline before the first refusal.
    pub fn new(refusals: IntCounterVec, ready: IntGauge, regions: &[&str]) -> Self {
        ready.set(0);
        for region in regions {
            for error in AUTH_ERRORS.iter().chain(&[NO_CREDENTIALS, FORBIDDEN]) {
                refusals.with_label_values(&[region, error]);
            }
        }
        Self {
            open: AtomicBool::new(false),
            state: Mutex::new(State {
                waiting: "not checked yet".to_owned(),
                logged: HashMap::new(),
            }),
            refusals,
            ready,
        }
    }

    /// `Ok` once open; else why not, for `/readyz`.
    pub fn verdict(&self) -> Result<(), String> {
        if self.open.load(Ordering::Acquire) {
            return Ok(());
        }
        Err(self.lock().waiting.clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn open(&self) {
        self.open.store(true, Ordering::Release);
        self.ready.set(1);
        tracing::info!("ready: every managed table answered a signed request");
    }

    fn wait(&self, why: String) {
        self.lock().waiting = why;
    }

    /// Counts a refusal and logs it when it is news for that region.
    fn refused(&self, region: &str, table: &str, error: &'static str) {
        let news = self.lock().logged.insert(region.to_owned(), error) != Some(error);
        // Logged before it is counted, so whoever sees the count finds the line.
        if news {
            tracing::warn!(
                region,
                table,
                error,
                "not ready: a region refused the sidecar's signed request, or it could not be signed"
            );
        }
        self.refusals.with_label_values(&[region, error]).inc();
    }
}

/// Checks until every managed table has been accepted by some region, then opens the gate.
/// Rounds are `probe_interval` apart; a table once accepted is not checked again.
pub async fn run<C: OwnCalls>(
    proxy: Arc<C>,
    gate: Arc<Gate>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let mut accepted = HashSet::new();
    loop {
        let snapshot = proxy.snapshot_cell().load_full();
        match round(proxy.as_ref(), &snapshot, &gate, &mut accepted).await {
            Ok(()) => return gate.open(),
            Err(why) => gate.wait(why),
        }
        tokio::select! {
            () = tokio::time::sleep(snapshot.config.routing.probe_interval) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// One round over the tables not yet accepted (`accepted` names those that were, of the
/// current config only); `Err` says what still keeps the gate shut.
async fn round<C: OwnCalls>(
    proxy: &C,
    snapshot: &Snapshot,
    gate: &Gate,
    accepted: &mut HashSet<String>,
) -> Result<(), String> {
    let tables = &snapshot.config.tables;
    let any_table = tables.is_empty();
    let audit_table = snapshot.config.audit.as_ref().map(|a| a.table.as_str());
    // A reload may have dropped tables: what is kept never outgrows the config.
    accepted.retain(|name| {
        if Some(name.as_str()) == audit_table {
            true
        } else if any_table {
            name.is_empty()
        } else {
            tables.iter().any(|t| t.name == *name)
        }
    });
    for index in 0..tables.len().max(1) {
        let name = tables.get(index).map_or("", |t| t.name.as_str());
        if accepted.contains(name) {
            continue;
        }
        let mut why = Vec::new();
        let mut ok = false;
        let mut wrong_key = false;
        for region in &snapshot.regions {
            match check(snapshot, region, index, any_table).await {
                Check::Accepted => {
                    ok = true;
                    break;
                }
                Check::Refused(error) => {
                    gate.refused(&region.name, name, error);
                    why.push(format!("{}: {error}", region.name));
                }
                Check::Inconclusive(what) => {
                    wrong_key |= what == "ValidationException";
                    why.push(format!("{}: {what}", region.name));
                }
            }
        }
        let unlearned = snapshot
            .tables
            .get(name)
            .is_some_and(|t| t.key_types.is_none());
        if !ok && !any_table && wrong_key && unlearned {
            // The check guessed string key types and the table's are others: learn them for
            // the next round (the learning at start gives up after a few tries, and the
            // credentials may have been fixed since).
            let _ = crate::schema::learn_arn(proxy, name).await;
        }
        if !ok {
            let table = if any_table { "credentials" } else { name };
            return Err(format!(
                "{table} not accepted by any region ({})",
                why.join(", ")
            ));
        }
        accepted.insert(name.to_owned());
    }
    if let Some(audit) = audit_table.filter(|t| !accepted.contains(*t)) {
        let mut why = Vec::new();
        for region in &snapshot.regions {
            match check_audit(snapshot, region, audit).await {
                Check::Refused(error) => {
                    gate.refused(&region.name, audit, error);
                    why.push(format!("{}: {error}", region.name));
                }
                Check::Accepted | Check::Inconclusive(_) => {
                    why.clear();
                    break;
                }
            }
        }
        if !why.is_empty() {
            return Err(format!(
                "audit table {audit} refused by every region ({})",
                why.join(", ")
            ));
        }
        accepted.insert(audit.to_owned());
    }
    Ok(())
}

/// The audit table's sentinel: an item key no record has (records' `EventId`s are ULIDs).
const AUDIT_SENTINEL: &str = "globalscale-readiness";

/// The audit table's check in `region`: a conditional `PutItem` that can never write.
async fn check_audit(snapshot: &Snapshot, region: &Region, table: &str) -> Check {
    let body = serde_json::json!({
        "TableName": table,
        "Item": {
            "ItemKey": {"S": AUDIT_SENTINEL},
            "EventId": {"S": AUDIT_SENTINEL},
        },
        "ConditionExpression": "attribute_exists(#k) AND attribute_not_exists(#k)",
        "ExpressionAttributeNames": {"#k": "ItemKey"},
    });
    let target = HeaderValue::from_static("DynamoDB_20120810.PutItem");
    send(
        snapshot,
        region,
        target,
        Bytes::from(body.to_string()),
        judge_audit,
    )
    .await
}

/// Judges the audit table's check: the condition failing proves the write permission.
pub fn judge_audit(status: StatusCode, body: &[u8]) -> Check {
    match judge(status, body, false) {
        Check::Inconclusive(name) if name == "ConditionalCheckFailedException" => Check::Accepted,
        other => other,
    }
}

/// One signed check of table `index` (the probe's `GetItem`) in `region`.
async fn check(snapshot: &Snapshot, region: &Region, index: usize, any_table: bool) -> Check {
    let body = crate::probe::probe_body(&snapshot.config.tables, &snapshot.tables, index);
    let Ok(body) = serde_json::to_vec(&body) else {
        return Check::Inconclusive("unserialisable check".to_owned());
    };
    let target = HeaderValue::from_static("DynamoDB_20120810.GetItem");
    send(
        snapshot,
        region,
        target,
        Bytes::from(body),
        |status, body| judge(status, body, any_table),
    )
    .await
}

/// Sends one check, signed for `region`, within the probe timeout, and judges its answer.
async fn send(
    snapshot: &Snapshot,
    region: &Region,
    target: HeaderValue,
    body: Bytes,
    judge: impl FnOnce(StatusCode, &[u8]) -> Check,
) -> Check {
    let outbound = Outbound {
        target,
        content_type: None,
        user_agent: Some(HeaderValue::from_static(crate::route::SIDECAR_AGENT)),
        body,
    };
    let Ok(request) = signed_request(&snapshot.signer, region, &outbound).await else {
        return Check::Refused(NO_CREDENTIALS);
    };
    let deadline = tokio::time::Instant::now() + snapshot.config.routing.probe_timeout;
    match snapshot.upstream.send(request, deadline).await {
        Ok(answer) => judge(answer.status, &answer.body),
        Err(e) => Check::Inconclusive(e.to_string()),
    }
}
