//! Active health: a cheap signed `ListTables` (`Limit: 1`) to every region on an interval,
//! with its own timeout. Probes are what readmit an ejected region, since live traffic no
//! longer reaches it, and what notice a region dying while traffic is elsewhere.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::HeaderValue;

use super::retry::{AttemptOutcome, classify_response};
use crate::proxy::{Forward, Proxy};
use crate::snapshot::Region;
use crate::wire::Operation;

/// Probes every region of the current snapshot each interval until `shutdown` fires.
pub async fn run(proxy: Arc<Proxy>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    loop {
        let snapshot = proxy.snapshot.load_full();
        let interval = snapshot.config.routing.probe_interval;
        let mut probes = tokio::task::JoinSet::new();
        for index in 0..snapshot.regions.len() {
            let proxy = Arc::clone(&proxy);
            let snapshot = Arc::clone(&snapshot);
            probes.spawn(async move {
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
        }
        // Probes of one round finish (or time out) before the next starts, so a black-holed
        // region never piles up probes.
        while probes.join_next().await.is_some() {}
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            _ = shutdown.changed() => return,
        }
    }
}

fn probe_forward() -> Forward<'static> {
    Forward {
        operation: &Operation::ListTables,
        verifiable: None,
        target: HeaderValue::from_static("DynamoDB_20120810.ListTables"),
        content_type: None,
        user_agent: Some(HeaderValue::from_static(crate::proxy::SIDECAR_AGENT)),
        body: Bytes::from_static(br#"{"Limit":1}"#),
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
