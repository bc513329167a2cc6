//! Poison records: a record the audit table refuses for what it is (a key too long, written
//! by an older version; a record damaged on disk yet valid in its frame). DynamoDB refuses a
//! whole BatchWriteItem with a `ValidationException` when one of its items is invalid, so a
//! batch refused that way is sent again one record at a time: the others are stored at once,
//! and a record refused alone [`MAX_TRIES`] times, once the table has stored some record (so
//! the refusal is the record's, not the table's), is set aside in the quarantine
//! (`quarantine.jsonl`), counted in `globalscale_audit_quarantined_total`, and acknowledged,
//! so it never holds back the records behind it.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use super::{Failure, Round};
use crate::audit::Auditor;
use crate::audit::quarantine::{self, Entry};
use crate::audit::spool::{RecordId, SpoolError};
use crate::call::OwnCalls;
use crate::route::ResendSafety;
use crate::wire::{self, Operation};

/// Times a record is sent alone and refused before it is set aside: DynamoDB's verdict on an
/// item does not change, but a record is never set aside on one answer.
pub const MAX_TRIES: u32 = 3;

/// DynamoDB's names for a request refused for what its items hold, not for the table's state
/// or load.
pub(super) fn refuses_the_items(name: &str) -> bool {
    matches!(name, "ValidationException" | "SerializationException")
}

/// A record the audit table refused when it was sent alone.
#[derive(Debug, Clone)]
pub(super) struct Refused {
    pub(super) id: RecordId,
    pub(super) record: Bytes,
    pub(super) reason: String,
}

/// Sends each record of a batch DynamoDB refused for its items as a PutItem of its own.
pub(super) async fn resend_singly<C: OwnCalls>(
    proxy: &C,
    table: &str,
    batch: Vec<(RecordId, Bytes)>,
) -> Round {
    let mut round = Round::default();
    for (id, record) in batch {
        let body = super::put_body(table, &record);
        let answer = proxy
            .call_with(&Operation::PutItem, body, ResendSafety::Safe)
            .await;
        let reason = match answer {
            Ok((status, _)) if status.is_success() => {
                round.stored.push(id);
                continue;
            }
            Ok((status, answer)) => {
                let name = wire::error_name(&answer).unwrap_or_else(|| status.to_string());
                if refuses_the_items(&name) {
                    let message = String::from_utf8_lossy(&answer).into_owned();
                    round.refused.push(Refused {
                        id,
                        record,
                        reason: format!("{name}: {message}"),
                    });
                    continue;
                }
                format!("HTTP {status}: {name}")
            }
            Err(e) => e.to_string(),
        };
        round.fail(Failure { records: 1, reason });
    }
    round
}

/// How often each record still spooled has been refused alone.
#[derive(Debug, Default)]
pub(super) struct Tries {
    counts: HashMap<RecordId, u32>,
    /// Whether the audit table has stored any record since start-up. Until it has, a refusal
    /// may be the table's (a key schema other than `ItemKey`/`EventId` refuses every record
    /// with a `ValidationException`), and setting every record aside would empty the spool
    /// into the quarantine; so refusals count only once the table is known to take records.
    table_accepts: bool,
}

impl Tries {
    /// Counts one more refusal of each of `refused`; returns those refused [`MAX_TRIES`]
    /// times, to set aside, and forgets them; and how many wait for another try.
    pub(super) fn refused(&mut self, refused: Vec<Refused>) -> (Vec<Entry>, usize) {
        if !self.table_accepts {
            return (Vec::new(), refused.len());
        }
        let mut spent = Vec::new();
        let mut waiting = 0;
        for r in refused {
            let tries = self.counts.entry(r.id).or_default();
            *tries += 1;
            if *tries < MAX_TRIES {
                waiting += 1;
                continue;
            }
            let tries = *tries;
            self.counts.remove(&r.id);
            spent.push(Entry {
                id: r.id,
                record: r.record,
                reason: r.reason,
                tries,
            });
        }
        (spent, waiting)
    }

    /// Notes records the table stored: it takes records, and these were no poison.
    pub(super) fn stored(&mut self, ids: &[RecordId]) {
        self.table_accepts |= !ids.is_empty();
        for id in ids {
            self.counts.remove(id);
        }
    }
}

/// Appends `entries` to the quarantine, durably, then acknowledges them in the spool: a
/// record leaves the spool only once it is on disk in the quarantine.
pub(super) async fn set_aside(auditor: &Auditor, entries: Vec<Entry>) -> Result<(), SpoolError> {
    let ids: Vec<RecordId> = entries.iter().map(|e| e.id).collect();
    for entry in &entries {
        tracing::error!(
            record_id = entry.id.get(),
            tries = entry.tries,
            reason = %entry.reason,
            record = %String::from_utf8_lossy(&entry.record),
            file = %quarantine::path(auditor.dir()).display(),
            "audit record refused by the audit table; set aside in the quarantine"
        );
    }
    let dir = auditor.dir().to_owned();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let unix_ms = u64::try_from(now.as_millis()).unwrap_or(u64::MAX);
    tokio::task::spawn_blocking(move || quarantine::append(&dir, &entries, unix_ms))
        .await
        .map_err(|_| SpoolError::Closed)??;
    auditor.spool().ack(&ids).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(id: u64) -> Refused {
        Refused {
            id: RecordId::from_raw(id),
            record: Bytes::from_static(b"{}"),
            reason: "ValidationException: too long".into(),
        }
    }

    #[test]
    fn nothing_is_set_aside_before_the_table_has_taken_a_record() {
        // A table that refuses everything (the wrong key schema) is not poison in every record.
        let mut tries = Tries::default();
        for _ in 0..MAX_TRIES * 2 {
            let (spent, waiting) = tries.refused(vec![refused(1), refused(2)]);
            assert!(spent.is_empty());
            assert_eq!(waiting, 2);
        }
        tries.stored(&[RecordId::from_raw(3)]);
        for _ in 1..MAX_TRIES {
            assert!(tries.refused(vec![refused(1)]).0.is_empty());
        }
        assert_eq!(tries.refused(vec![refused(1)]).0.len(), 1);
    }

    #[test]
    fn a_record_is_set_aside_after_max_tries_and_not_before() {
        let mut tries = Tries::default();
        tries.stored(&[RecordId::from_raw(99)]);
        for round in 1..MAX_TRIES {
            let (spent, waiting) = tries.refused(vec![refused(6), refused(7)]);
            assert!(spent.is_empty(), "round {round}");
            assert_eq!(waiting, 2);
        }
        // Record 7 was stored after all: its count is forgotten.
        tries.stored(&[RecordId::from_raw(7)]);
        let (spent, waiting) = tries.refused(vec![refused(6), refused(7)]);
        assert_eq!(spent.len(), 1);
        assert_eq!(spent[0].id, RecordId::from_raw(6));
        assert_eq!(spent[0].tries, MAX_TRIES);
        assert_eq!(waiting, 1);
        // Set aside, it is forgotten too.
        assert!(!tries.counts.contains_key(&RecordId::from_raw(6)));
    }

    #[test]
    fn only_refusals_of_the_items_count_as_poison() {
        assert!(refuses_the_items("ValidationException"));
        assert!(refuses_the_items("SerializationException"));
        assert!(!refuses_the_items("ResourceNotFoundException"));
        assert!(!refuses_the_items("ProvisionedThroughputExceededException"));
    }
}
