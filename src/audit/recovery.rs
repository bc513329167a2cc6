//! Between the spool and the shipper: a window of the spool's oldest frames becomes the
//! records to ship and the frames done with ([`intent::resolve`]), and an intent an earlier
//! run left unsettled is settled here. On a versioned table the item is read back
//! (consistently, from the region routing picks): carrying the write's id, the write was
//! applied and its record ships as `accepted`; holding an older version, it was not, and no
//! record ships; anything else ships as `unknown`. Elsewhere the intent ships as it is,
//! `unknown`: never dropped. A read that fails leaves the intent for the next round.

use std::sync::Arc;

use bytes::Bytes;

use super::Auditor;
use super::intent::{self, Recovered};
use super::spool::RecordId;
use crate::call::OwnCalls;
use crate::wire::Operation;

/// What one window comes to.
#[derive(Debug, Default)]
pub struct Window {
    pub ship: Vec<(RecordId, Bytes)>,
    pub ack: Vec<RecordId>,
    /// Intents of writes still in flight: the shipper waits for them.
    pub waiting: usize,
}

/// Sorts `frames` (the spool's oldest, in order), recovering what an earlier run left.
pub async fn window<C: OwnCalls>(
    proxy: &C,
    auditor: &Arc<Auditor>,
    frames: Vec<(RecordId, Bytes)>,
) -> Window {
    // Reading a window's frames and laying settlements over them is a few milliseconds of
    // CPU for a full window: on the background thread, below the requests' priority.
    let spool_reader = Arc::clone(auditor);
    let resolved = crate::audit::background::run(move || spool_reader.resolve(frames))
        .await
        .unwrap_or_default();
    let mut window = Window {
        ship: resolved.ship,
        ack: resolved.ack,
        waiting: resolved.waiting,
    };
    if resolved.unreadable > 0 {
        tracing::warn!(
            frames = resolved.unreadable,
            "audit spool: frames this version cannot read stay spooled"
        );
    }
    for (id, record, check) in resolved.recover {
        let Some(check) = check else {
            window.ship.push((id, record));
            continue;
        };
        match read_back(proxy, &check).await {
            Some(Recovered::Applied) => {
                let accepted = intent::with_outcome(&record, "accepted").unwrap_or(record);
                window.ship.push((id, accepted));
            }
            Some(Recovered::NotApplied) => {
                tracing::info!(table = %check.table, "audit recovery: an interrupted write was not applied; no record");
                window.ack.push(id);
            }
            Some(Recovered::Unknown) => window.ship.push((id, record)),
            None => window.waiting += 1,
        }
    }
    window
}

/// Recovery's verdict from the item, or `None` when it could not be read now.
async fn read_back<C: OwnCalls>(proxy: &C, check: &intent::Check) -> Option<Recovered> {
    let answer = proxy
        .call(&Operation::GetItem, intent::recovery_request(check))
        .await;
    match answer {
        Ok((status, body)) if status.is_success() => Some(intent::recovered(check, &body)),
        Ok((status, _)) if status.is_client_error() => {
            // The table or key is gone or refused: nothing to learn from it again.
            Some(Recovered::Unknown)
        }
        _ => None,
    }
}
