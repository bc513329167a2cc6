//! Active health: a signed, eventually consistent `GetItem` of a key that need not exist, on
//! a managed table, to every region that live traffic is not already telling about. Probes
//! are what readmit an ejected region, since live traffic no longer reaches it, and what
//! notice a region dying while traffic is elsewhere.
//!
//! Why this probe: it proves what the sidecar needs from a region (DNS, TLS, DynamoDB's
//! data plane for the managed tables, SigV4 with the sidecar's credentials), it is an
//! operation DynamoDB expects to be called at any rate, and it costs half a read unit.
//! Control-plane calls (`DescribeLimits`, `ListTables`, `DescribeTable`) are throttled when
//! called often and are CloudTrail management events. A probe's answer counts like a live
//! request's, with one exception: a throttled probe says nothing about whether the region is
//! up, so it counts neither way.
//!
//! A healthy region that live traffic reached within the last interval is not probed: its
//! live answers already say how it is. A region demoted for slow reads is probed anyway (its
//! writes say nothing about its reads), for its latency only while writes reach it, and a
//! probe's latency is judged like a read's: runs of probes under the slow threshold take it
//! back.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::HeaderValue;
use serde_json::{Map, Value, json};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::config::TableConfig;
use crate::region::Region;
use crate::route::retry::{AttemptOutcome, classify_response};
use crate::snapshot::Snapshot;
use crate::upstream::outbound::{Outbound, signed_request};
use crate::wire::ScalarType;

/// What the probes need of whoever keeps the regions' health (the proxy): the current
/// snapshot, and where outcomes go.
pub trait HealthReport: Send + Sync + 'static {
    fn snapshot(&self) -> Arc<Snapshot>;

    /// Counts one probe of `region` by its outcome.
    fn count_probe(&self, region: &Region, outcome: AttemptOutcome);

    /// Feeds one outcome of an attempt sent at `started` into the region's health.
    fn record_health(
        &self,
        region: &Region,
        outcome: AttemptOutcome,
        elapsed: Option<Duration>,
        started: tokio::time::Instant,
    );

    /// Feeds one probe's latency, an eventually consistent GetItem's, into the region's
    /// read latency.
    fn record_read(&self, region: &Region, elapsed: Duration, started: tokio::time::Instant);
}

/// The key value a probe reads, unlikely to be a real item's (which would cost more to read
/// than the half unit of an absent one) and, once keys are prefixed, never one.
const PROBE_KEY: &str = "globalscale-probe";
/// A number key no application picks.
const PROBE_NUMBER: &str = "-9.87654321E-125";
/// The table read when no table is managed: its absence (or the policy's refusal) is still a
/// data-plane answer from the region.
const NO_TABLE: &str = "globalscale-probe";

/// Probes every region of the current snapshot each interval until `shutdown` fires.
///
/// A region whose previous probe is still waiting (a black hole) is skipped until that probe
/// ends, so probes never pile up on it, and the other regions keep their own rhythm: a
/// black-holed region never delays the readmission of another.
pub async fn run(health: Arc<impl HealthReport>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let mut in_flight: HashMap<String, JoinHandle<()>> = HashMap::new();
    for round in 0usize.. {
        let snapshot = health.snapshot();
        let interval = snapshot.config.routing.probe_interval;
        in_flight.retain(|_, probe| !probe.is_finished());
        for index in 0..snapshot.regions.len() {
            let region = &snapshot.regions[index];
            let live = region.health.is_healthy() && region.health.live_within(interval);
            // Demoted for slow reads but carrying writes: probed for its read latency only;
            // its health is the live traffic's to judge (a probe timing out sooner than an
            // attempt must not eject a region that is only slow, and move its writes).
            let latency_only = live && region.health.reads.is_demoted();
            if (live && !latency_only) || in_flight.contains_key(&region.name) {
                continue;
            }
            let health = Arc::clone(&health);
            let snapshot = Arc::clone(&snapshot);
            let probe = tokio::spawn(async move {
                let region = &snapshot.regions[index];
                let Some(result) = probe(&snapshot, region, round).await else {
                    return;
                };
                health.count_probe(region, result.outcome);
                if result.outcome != AttemptOutcome::Throttled && !latency_only {
                    health.record_health(region, result.outcome, result.elapsed, result.started);
                }
                // An absent item, a missing table: either is a read the region answered.
                let answered = matches!(
                    result.outcome,
                    AttemptOutcome::Success | AttemptOutcome::ClientError
                );
                if let (true, Some(elapsed)) = (answered, result.elapsed) {
                    health.record_read(region, elapsed, result.started);
                }
            });
            in_flight.insert(region.name.clone(), probe);
        }
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            _ = shutdown.changed() => break,
        }
    }
    for probe in in_flight.values() {
        probe.abort();
    }
}

struct ProbeResult {
    outcome: AttemptOutcome,
    elapsed: Option<Duration>,
    started: Instant,
}

/// The probe's request body: the managed tables in turn, one per round (the readiness gate
/// sends it too, `round` being the table's index).
pub(crate) fn probe_body(
    tables: &[TableConfig],
    learned: &HashMap<String, TableConfig>,
    round: usize,
) -> Value {
    let Some(configured) = tables.get(round % tables.len().max(1)) else {
        return json!({"TableName": NO_TABLE, "Key": {"k": {"S": PROBE_KEY}}});
    };
    // The learned schema, when DescribeTable has answered; until then a string key, which
    // at worst earns a ValidationException: still a data-plane answer from the region.
    let table = learned.get(&configured.name).unwrap_or(configured);
    let types = table
        .key_types
        .unwrap_or((ScalarType::S, Some(ScalarType::S)));
    let mut key = Map::new();
    let partition = table.partition_key.as_deref().unwrap_or("k");
    key.insert(partition.to_owned(), probe_value(types.0));
    if let Some(sort) = &table.sort_key {
        key.insert(sort.clone(), probe_value(types.1.unwrap_or(ScalarType::S)));
    }
    json!({"TableName": table.name, "Key": key, "ConsistentRead": false})
}

fn probe_value(kind: ScalarType) -> Value {
    let text = match kind {
        ScalarType::S => PROBE_KEY,
        ScalarType::N => PROBE_NUMBER,
        // base64 of PROBE_KEY
        ScalarType::B => "Z2xvYmFsc2NhbGUtcHJvYmU=",
    };
    json!({ kind.name(): text })
}

async fn probe(snapshot: &Snapshot, region: &Region, round: usize) -> Option<ProbeResult> {
    let body = probe_body(&snapshot.config.tables, &snapshot.tables, round);
    let outbound = Outbound {
        target: HeaderValue::from_static("DynamoDB_20120810.GetItem"),
        content_type: None,
        user_agent: Some(HeaderValue::from_static(crate::route::SIDECAR_AGENT)),
        body: Bytes::from(serde_json::to_vec(&body).ok()?),
    };
    // Without credentials no request can go anywhere; that says nothing about the region.
    let request = signed_request(&snapshot.signer, region, &outbound)
        .await
        .ok()?;
    let started = Instant::now();
    let timeout = snapshot.config.routing.probe_timeout;
    let deadline = tokio::time::Instant::now() + timeout;
    let (outcome, elapsed) = match snapshot.upstream.send(request, deadline).await {
        Err(e) => (AttemptOutcome::from_error(&e), None),
        Ok(response) => (
            classify_response(response.status, &response.body),
            Some(started.elapsed()),
        ),
    };
    Some(ProbeResult {
        outcome,
        elapsed,
        started,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(
        name: &str,
        pk: &str,
        sk: Option<&str>,
        types: Option<(ScalarType, Option<ScalarType>)>,
    ) -> TableConfig {
        TableConfig {
            name: name.into(),
            partition_key: Some(pk.into()),
            sort_key: sk.map(Into::into),
            key_types: types,
            key_prefix: None,
            version_attribute: None,
            audit: false,
            arn: None,
            shared: crate::plan::Shared::default(),
        }
    }

    #[test]
    fn probe_values_match_the_key_types() {
        assert_eq!(probe_value(ScalarType::S), json!({"S": PROBE_KEY}));
        assert_eq!(probe_value(ScalarType::N), json!({"N": PROBE_NUMBER}));
        assert!(PROBE_NUMBER.parse::<f64>().is_ok());
        assert_eq!(
            probe_value(ScalarType::B),
            json!({"B": "Z2xvYmFsc2NhbGUtcHJvYmU="})
        );
    }

    #[test]
    fn reads_each_managed_table_in_turn_with_its_learned_key_types() {
        let configured = [
            table("Catalog", "ItemID", Some("Category"), None),
            table("Orders", "OrderId", None, None),
        ];
        let learned: HashMap<_, _> = [(
            "Catalog".to_owned(),
            table(
                "Catalog",
                "ItemID",
                Some("Category"),
                Some((ScalarType::S, Some(ScalarType::N))),
            ),
        )]
        .into();
        assert_eq!(
            probe_body(&configured, &learned, 0),
            json!({"TableName": "Catalog", "ConsistentRead": false,
                   "Key": {"ItemID": {"S": PROBE_KEY}, "Category": {"N": PROBE_NUMBER}}})
        );
        // Not learned yet: a string key, at worst a ValidationException.
        assert_eq!(
            probe_body(&configured, &learned, 1),
            json!({"TableName": "Orders", "ConsistentRead": false,
                   "Key": {"OrderId": {"S": PROBE_KEY}}})
        );
        assert_eq!(probe_body(&configured, &learned, 2)["TableName"], "Catalog");
        assert_eq!(probe_body(&[], &learned, 7)["TableName"], NO_TABLE);
    }
}
