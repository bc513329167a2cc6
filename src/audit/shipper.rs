//! The shipper: drains the spool's oldest records into the audit table with BatchWriteItem,
//! routed like client traffic (health, failover, re-signing), and acknowledges a record only
//! once DynamoDB stored it. Records DynamoDB leaves in `UnprocessedItems`, and whole batches
//! that fail (the table missing, every region down), stay spooled and are sent again after a
//! pause that doubles up to [`MAX_PAUSE`]; shipping resumes by itself when the table is back.
//!
//! A record sent twice (a crash between the write and the ack) is the same item written
//! twice: its key holds the event id fixed when the write was accepted.
//!
//! A batch DynamoDB refuses for what one of its items holds is sent again one record at a
//! time, and a record refused alone a few times is set aside (see [`poison`]).

mod poison;

pub use poison::MAX_TRIES;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::Auditor;
use super::spool::RecordId;
use crate::call::OwnCalls;
use crate::route::ResendSafety;
use crate::wire::{self, Operation};

/// BatchWriteItem's limit.
const BATCH: usize = 25;
/// Batches in flight at once: enough to keep up with a busy sidecar over a cross-region
/// round trip, few enough to leave the table's capacity to the application.
const CONCURRENT_BATCHES: usize = 4;
const MIN_PAUSE: Duration = Duration::from_millis(100);
pub const MAX_PAUSE: Duration = Duration::from_secs(10);
/// How often a failing spool is probed at most.
const PROBE_EVERY: Duration = Duration::from_secs(1);
/// How often an idle shipper looks again (a wake-up missed is caught here).
const IDLE_TICK: Duration = Duration::from_secs(1);
/// Longest a record waits for others to fill a batch: shipping each record alone costs a
/// BatchWriteItem and an ack per record under light load.
const GATHER: Duration = Duration::from_millis(20);
/// How often the shipper looks whether a batch has filled while it gathers.
const GATHER_TICK: Duration = Duration::from_millis(2);

/// Ships until `stop` says so and the spool is empty; the caller bounds the final flush.
pub async fn run<C: OwnCalls>(
    proxy: Arc<C>,
    auditor: Arc<Auditor>,
    mut stop: watch::Receiver<bool>,
) {
    let mut pause = MIN_PAUSE;
    let mut tries = poison::Tries::default();
    proxy
        .metrics()
        .audit_spool_corrupt_records
        .inc_by(auditor.spool().open_report().records_lost());
    let mut probed: Option<tokio::time::Instant> = None;
    loop {
        // A probe makes a segment, which on a full disk writes until the disk refuses: once
        // a second, not on every round.
        if auditor.failing() && probed.is_none_or(|at| at.elapsed() >= PROBE_EVERY) {
            probed = Some(tokio::time::Instant::now());
            auditor.probe_disk().await;
        }
        if !*stop.borrow() {
            gather(&auditor, &mut stop).await;
        }
        let frames = auditor.spool().pending(BATCH * CONCURRENT_BATCHES);
        if frames.is_empty() {
            if *stop.borrow() {
                return;
            }
            tokio::select! {
                () = auditor.appended() => {}
                _ = stop.changed() => {}
                () = tokio::time::sleep(IDLE_TICK) => {}
            }
            continue;
        }
        let Some(table) = proxy.audit_table() else {
            tracing::warn!("[audit] was removed from the config: spooled records wait for it");
            tokio::time::sleep(MAX_PAUSE).await;
            continue;
        };
        let window = super::recovery::window(proxy.as_ref(), &auditor, frames).await;
        if !window.ack.is_empty()
            && let Err(e) = auditor.spool().ack(&window.ack).await
        {
            tracing::warn!(error = %crate::error::Chain::for_log(&e), "audit spool: acknowledgement not written");
        }
        if window.ship.is_empty() && window.ack.is_empty() {
            // Only writes in flight: their settlement wakes the shipper.
            tokio::select! {
                () = auditor.appended() => {}
                _ = stop.changed() => {}
                () = tokio::time::sleep(GATHER) => {}
            }
            continue;
        }
        // Each record's place in the chain is fixed (and written down) before it first
        // leaves, so a resend carries the same place.
        let batch = match auditor.chain().link(window.ship).await {
            Ok(batch) => batch,
            Err(e) => {
                tracing::warn!(error = %crate::error::Chain::for_log(&e), "audit chain: places not written; shipping waits");
                tokio::time::sleep(pause).await;
                continue;
            }
        };
        let round = ship(&proxy, &table, batch).await;
        auditor.chain().stored(&round.stored);
        match settle(proxy.as_ref(), &auditor, round, &mut tries).await {
            None => pause = MIN_PAUSE,
            Some(failure) => {
                if pause == MIN_PAUSE || pause == MAX_PAUSE {
                    tracing::warn!(table, records = failure.records, reason = %failure.reason, retry_in = ?pause, "audit records not shipped; they stay spooled");
                }
                // A stop cuts the pause short: the final flush tries at once.
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    _ = stop.changed() => {}
                }
                pause = (pause * 2).min(MAX_PAUSE);
            }
        }
    }
}

/// Acknowledges what a round stored, sets aside records refused too often, and counts both;
/// returns what is left to retry after a pause.
async fn settle<C: OwnCalls>(
    proxy: &C,
    auditor: &Auditor,
    mut round: Round,
    tries: &mut poison::Tries,
) -> Option<Failure> {
    let metrics = proxy.metrics();
    tries.stored(&round.stored);
    if !round.stored.is_empty() {
        match auditor.spool().ack(&round.stored).await {
            Ok(()) => metrics
                .audit_records
                .with_label_values(&["shipped"])
                .inc_by(round.stored.len() as u64),
            Err(e) => {
                tracing::warn!(error = %crate::error::Chain::for_log(&e), "audit spool: acknowledgement not written; the records will be shipped again");
            }
        }
    }
    let reason = round.refused.first().map(|r| r.reason.clone());
    let (spent, waiting) = tries.refused(std::mem::take(&mut round.refused));
    if let Some(reason) = reason.filter(|_| waiting > 0) {
        round.fail(Failure {
            records: waiting,
            reason,
        });
    }
    let count = spent.len() as u64;
    if count > 0 {
        match poison::set_aside(auditor, spent).await {
            Ok(()) => metrics.audit_quarantined.inc_by(count),
            // Still spooled: tried again, and set aside at its next refusal.
            Err(e) => {
                tracing::error!(error = %crate::error::Chain::for_log(&e), "audit quarantine not written; the records stay spooled");
            }
        }
    }
    if let Some(failure) = &round.failure {
        metrics
            .audit_records
            .with_label_values(&["failed"])
            .inc_by(failure.records as u64);
    }
    round.failure
}

/// Waits until a round's batches are full or the oldest record has waited [`GATHER`]; at
/// once when nothing is pending or `stop` changes, so the final flush is prompt. Full rounds
/// rather than one batch: each round writes the chain's places down (an fsync and a rename)
/// before it ships, and those fsyncs share the disk with the intents'.
async fn gather(auditor: &Auditor, stop: &mut watch::Receiver<bool>) {
    loop {
        let backlog = auditor.spool().backlog();
        let full = backlog.records >= BATCH * CONCURRENT_BATCHES;
        if backlog.records == 0 || full || backlog.oldest_age >= GATHER {
            return;
        }
        let wait = GATHER_TICK.min(GATHER.saturating_sub(backlog.oldest_age));
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Why some records of a round were not stored.
struct Failure {
    records: usize,
    reason: String,
}

/// What one round of shipping did with its records.
#[derive(Default)]
struct Round {
    /// Stored in the audit table: to acknowledge.
    stored: Vec<RecordId>,
    /// Not stored, for a reason that may pass (throttling, an outage): tried again.
    failure: Option<Failure>,
    /// Refused alone for what they hold.
    refused: Vec<poison::Refused>,
}

impl Round {
    fn fail(&mut self, failure: Failure) {
        let records = self.failure.as_ref().map_or(0, |f| f.records) + failure.records;
        self.failure = Some(Failure {
            records,
            reason: failure.reason,
        });
    }

    fn merge(&mut self, other: Round) {
        self.stored.extend(other.stored);
        self.refused.extend(other.refused);
        if let Some(failure) = other.failure {
            self.fail(failure);
        }
    }
}

/// Sends `pending` in batches at once.
async fn ship<C: OwnCalls>(proxy: &Arc<C>, table: &str, pending: Vec<(RecordId, Bytes)>) -> Round {
    let mut batches = JoinSet::new();
    let mut pending = pending.into_iter().peekable();
    while pending.peek().is_some() {
        let batch: Vec<_> = pending.by_ref().take(BATCH).collect();
        let proxy = Arc::clone(proxy);
        let table = table.to_owned();
        batches.spawn(async move { ship_batch(proxy.as_ref(), &table, batch).await });
    }
    let mut round = Round::default();
    while let Some(joined) = batches.join_next().await {
        if let Ok(batch) = joined {
            round.merge(batch);
        }
    }
    round
}

async fn ship_batch<C: OwnCalls>(proxy: &C, table: &str, batch: Vec<(RecordId, Bytes)>) -> Round {
    let mut round = Round::default();
    let body = batch_body(table, batch.iter().map(|(_, r)| r));
    // Puts of whole items with fixed keys: sending one twice changes nothing.
    let answer = proxy
        .call_with(&Operation::BatchWriteItem, body, ResendSafety::Safe)
        .await;
    let (status, answer) = match answer {
        Ok(answer) => answer,
        Err(e) => {
            round.fail(Failure {
                records: batch.len(),
                reason: e.to_string(),
            });
            return round;
        }
    };
    if !status.is_success() {
        let name = wire::error_name(&answer).unwrap_or_else(|| "an error".into());
        if poison::refuses_the_items(&name) {
            return poison::resend_singly(proxy, table, batch).await;
        }
        let reason = format!("HTTP {status}: {name}");
        round.fail(Failure {
            records: batch.len(),
            reason,
        });
        return round;
    }
    let left = unprocessed(&answer, table);
    // Most batches leave nothing unprocessed: no record need be read then.
    let (kept, stored): (Vec<_>, Vec<_>) = batch.into_iter().partition(|(_, record)| {
        !left.is_empty() && event_key(record).is_some_and(|k| left.contains(&k))
    });
    round.stored = stored.into_iter().map(|(id, _)| id).collect();
    if !kept.is_empty() {
        let reason = "UnprocessedItems (throttled)".to_owned();
        round.fail(Failure {
            records: kept.len(),
            reason,
        });
    }
    round
}

/// `{"RequestItems":{table:[{"PutRequest":{"Item":record}},...]}}`, the spooled records' JSON
/// spliced in as it is.
fn batch_body<'a>(table: &str, records: impl Iterator<Item = &'a Bytes>) -> Bytes {
    let mut body = Vec::with_capacity(4096);
    body.extend_from_slice(b"{\"RequestItems\":{");
    body.extend_from_slice(Value::String(table.to_owned()).to_string().as_bytes());
    body.extend_from_slice(b":[");
    for (i, record) in records.enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(b"{\"PutRequest\":{\"Item\":");
        body.extend_from_slice(record);
        body.extend_from_slice(b"}}");
    }
    body.extend_from_slice(b"]}}");
    Bytes::from(body)
}

/// A PutItem of one record, for a record the spool could not take.
pub fn put_body(table: &str, record: &Bytes) -> Bytes {
    let mut body = Vec::with_capacity(record.len() + 64);
    body.extend_from_slice(b"{\"TableName\":");
    body.extend_from_slice(Value::String(table.to_owned()).to_string().as_bytes());
    body.extend_from_slice(b",\"Item\":");
    body.extend_from_slice(record);
    body.push(b'}');
    Bytes::from(body)
}

/// `(ItemKey, EventId)` of a record.
fn event_key(record: &[u8]) -> Option<(String, String)> {
    let Ok(Value::Object(item)) = serde_json::from_slice::<Value>(record) else {
        return None;
    };
    key_of(&item)
}

fn key_of(item: &serde_json::Map<String, Value>) -> Option<(String, String)> {
    let s = |name: &str| item.get(name)?.get("S")?.as_str().map(str::to_owned);
    Some((s("ItemKey")?, s("EventId")?))
}

/// The keys of the records DynamoDB left unprocessed.
fn unprocessed(answer: &[u8], table: &str) -> Vec<(String, String)> {
    let Ok(Value::Object(answer)) = serde_json::from_slice::<Value>(answer) else {
        return Vec::new();
    };
    let requests = answer
        .get("UnprocessedItems")
        .and_then(|u| u.get(table))
        .and_then(Value::as_array);
    requests
        .into_iter()
        .flatten()
        .filter_map(|r| r.get("PutRequest")?.get("Item")?.as_object())
        .filter_map(key_of)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_splices_the_records_in_as_they_are() {
        let records = [
            Bytes::from_static(br#"{"ItemKey":{"S":"T#a"},"EventId":{"S":"1"}}"#),
            Bytes::from_static(br#"{"ItemKey":{"S":"T#b"},"EventId":{"S":"2"}}"#),
        ];
        let body = batch_body("Trail\"x", records.iter());
        let parsed: Value = serde_json::from_slice(&body).unwrap();
        let puts = parsed["RequestItems"]["Trail\"x"].as_array().unwrap();
        assert_eq!(puts.len(), 2);
        assert_eq!(puts[1]["PutRequest"]["Item"]["ItemKey"]["S"], "T#b");
        assert_eq!(
            event_key(&records[0]),
            Some(("T#a".to_owned(), "1".to_owned()))
        );
    }

    #[test]
    fn reads_the_keys_left_unprocessed() {
        let answer = br#"{"UnprocessedItems":{"Trail":[{"PutRequest":{"Item":{"ItemKey":{"S":"T#a"},"EventId":{"S":"1"},"Table":{"S":"T"}}}}]}}"#;
        assert_eq!(
            unprocessed(answer, "Trail"),
            vec![("T#a".to_owned(), "1".to_owned())]
        );
        assert!(unprocessed(b"{}", "Trail").is_empty());
    }
}
