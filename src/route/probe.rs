//! Active health: a signed `DescribeLimits` to every region on an interval, with its own
//! timeout. Probes are what readmit an ejected region, since live traffic no longer reaches
//! it, and what notice a region dying while traffic is elsewhere.
//!
//! `DescribeLimits` goes through everything a request needs from the region (DNS, TLS,
//! DynamoDB's front end, SigV4 with the sidecar's credentials) without reading any table:
//! it costs no capacity and never competes with live traffic for a table. (On DynamoDB
//! Local's shared store a `ListTables` probe took a read lock that made concurrent writes
//! fail.) A region whose endpoint answers but whose tables fail is caught by live traffic,
//! whose error answers eject it, and flap damping keeps the probes from readmitting it often.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::HeaderValue;
use tokio::task::JoinHandle;

use super::retry::{AttemptOutcome, classify_response};
use crate::proxy::{Forward, Proxy};
use crate::snapshot::Region;
use crate::wire::Operation;

/// Probes every region of the current snapshot each interval until `shutdown` fires.
///
/// A region whose previous probe is still waiting (a black hole) is skipped until that probe
/// ends, so probes never pile up on it, and the other regions keep their own rhythm: a
/// black-holed region never delays the readmission of another.
pub async fn run(proxy: Arc<Proxy>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let mut in_flight: HashMap<String, JoinHandle<()>> = HashMap::new();
    loop {
        let snapshot = proxy.snapshot.load_full();
        let interval = snapshot.config.routing.probe_interval;
        in_flight.retain(|_, probe| !probe.is_finished());
        for index in 0..snapshot.regions.len() {
            let name = &snapshot.regions[index].name;
            if in_flight.contains_key(name) {
                continue;
            }
            let proxy = Arc::clone(&proxy);
            let snapshot = Arc::clone(&snapshot);
            let probe = tokio::spawn(async move {
                let region = &snapshot.regions[index];
                if let Some((outcome, elapsed)) = probe(&snapshot, region).await {
                    proxy
                        .metrics
                        .probes
                        .with_label_values(&[&region.name, outcome.label()])
                        .inc();
                    proxy.record_health(region, outcome, elapsed);
                }
            });
            in_flight.insert(name.clone(), probe);
        }
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            _ = shutdown.changed() => {
                for probe in in_flight.values() {
                    probe.abort();
                }
                return;
            }
        }
    }
}

fn probe_forward() -> Forward<'static> {
    Forward {
        operation: &Operation::DescribeLimits,
        verifiable: None,
        target: HeaderValue::from_static("DynamoDB_20120810.DescribeLimits"),
        content_type: None,
        user_agent: Some(HeaderValue::from_static(crate::proxy::SIDECAR_AGENT)),
        body: Bytes::from_static(b"{}"),
    }
}

async fn probe(
    snapshot: &crate::snapshot::Snapshot,
    region: &Region,
) -> Option<(AttemptOutcome, Option<Duration>)> {
    // Without credentials no request can go anywhere; that says nothing about the region.
    let request = crate::proxy::signed_request(snapshot, region, &probe_forward())
        .await
        .ok()?;
    let started = Instant::now();
    let timeout = snapshot.config.routing.probe_timeout;
    let result = match tokio::time::timeout(timeout, snapshot.upstream.send(request)).await {
        Err(_) => (AttemptOutcome::Timeout, None),
        Ok(Err(e)) => (
            if e.never_sent() {
                AttemptOutcome::ConnectError
            } else {
                AttemptOutcome::TransportError
            },
            None,
        ),
        Ok(Ok(response)) => (
            classify_response(response.status, &response.body),
            Some(started.elapsed()),
        ),
    };
    Some(result)
}
