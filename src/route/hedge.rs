//! Hedged reads: which requests may be hedged, and the budget that caps the extra requests.
//!
//! Only eventually consistent reads are hedged: GetItem, BatchGetItem, Query, Scan and a
//! PartiQL SELECT without `ConsistentRead`, and TransactGetItems. Any replica answers those
//! correctly, so a second copy sent to the next region and the first good answer taken change
//! nothing but the wait. A strongly consistent read is consistent only in the region that
//! takes the item's writes, and a write sent twice to two regions would be applied twice (or
//! split between two replicas that last-writer-wins reconciles silently): neither is hedged.
//!
//! The budget is a bucket every read adds `hedge_budget_percent` hundredths of a token to,
//! up to [`BURST`] tokens, and every hedge takes one from ("The Tail at Scale": hedges within
//! a few percent of reads). In steady state a healthy fleet sends at most that share of
//! extra reads; the burst lets a region that just went silent be hedged until it is demoted.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Deserialize;

use crate::region::ReadKind;
use crate::wire::{Operation, RequestView};

/// Tokens the bucket holds at most, and at start.
pub const BURST: u64 = 50;
/// Milli-tokens per token: a read adds `percent * 10`.
const MILLI: u64 = 1_000;

/// The hedge budget, shared by every request and kept across reloads.
#[derive(Debug)]
pub struct HedgeBudget {
    milli_tokens: AtomicU64,
}

impl Default for HedgeBudget {
    fn default() -> Self {
        Self {
            milli_tokens: AtomicU64::new(BURST * MILLI),
        }
    }
}

impl HedgeBudget {
    /// A read that may be hedged was sent: its share of a token comes in.
    pub fn deposit(&self, percent: u32) {
        let add = u64::from(percent) * MILLI / 100;
        // The closure always returns Some.
        let _ = self
            .milli_tokens
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| {
                Some((t + add).min(BURST * MILLI))
            });
    }

    /// Takes one token for a hedge; `false` means: do not hedge.
    pub fn withdraw(&self) -> bool {
        self.milli_tokens
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| {
                t.checked_sub(MILLI)
            })
            .is_ok()
    }

    /// Whole tokens left, for `/status`.
    pub fn tokens(&self) -> u64 {
        self.milli_tokens.load(Ordering::Acquire) / MILLI
    }
}

/// The kind of eventually consistent read `view` is, or `None` when it must not be hedged
/// nor move on latency: a write, a strongly consistent read, a statement that writes, or a
/// body the sidecar cannot read with certainty (fail closed: it goes where writes go).
pub fn eventual_read(view: &RequestView<'_>, statements_read: bool) -> Option<ReadKind> {
    let eventual = || {
        matches!(
            view.decode::<bool>("ConsistentRead"),
            Ok(None | Some(false))
        )
    };
    match view.operation {
        Operation::GetItem => eventual().then_some(ReadKind::GetItem),
        Operation::Query => eventual().then_some(ReadKind::Query),
        Operation::Scan => eventual().then_some(ReadKind::Scan),
        Operation::ExecuteStatement if statements_read => eventual().then_some(ReadKind::Statement),
        Operation::TransactGetItems => Some(ReadKind::TransactGetItems),
        Operation::BatchGetItem => batch_eventual(view).then_some(ReadKind::BatchGetItem),
        _ => None,
    }
}

/// Whether no table of a BatchGetItem asks for a strongly consistent read.
fn batch_eventual(view: &RequestView<'_>) -> bool {
    #[derive(Deserialize)]
    struct Entry {
        #[serde(rename = "ConsistentRead")]
        consistent_read: Option<bool>,
    }
    let Ok(Some(items)) = view.decode::<std::collections::HashMap<String, Entry>>("RequestItems")
    else {
        return false;
    };
    items.values().all(|e| e.consistent_read != Some(true))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(operation: Operation, body: &str, statements_read: bool) -> Option<ReadKind> {
        let view = RequestView::parse(operation, body.as_bytes()).unwrap();
        eventual_read(&view, statements_read)
    }

    #[test]
    fn only_eventually_consistent_reads_are_hedged() {
        let get = r#"{"TableName":"T","Key":{"k":{"S":"1"}}}"#;
        assert_eq!(
            kind(Operation::GetItem, get, false),
            Some(ReadKind::GetItem)
        );
        let strong = r#"{"TableName":"T","Key":{"k":{"S":"1"}},"ConsistentRead":true}"#;
        assert_eq!(kind(Operation::GetItem, strong, false), None);
        let eventual = r#"{"TableName":"T","Key":{"k":{"S":"1"}},"ConsistentRead":false}"#;
        assert_eq!(
            kind(Operation::GetItem, eventual, false),
            Some(ReadKind::GetItem)
        );
        let scan = r#"{"TableName":"T"}"#;
        assert_eq!(kind(Operation::Scan, scan, false), Some(ReadKind::Scan));
        let query = r#"{"TableName":"T","ConsistentRead":true}"#;
        assert_eq!(kind(Operation::Query, query, false), None);
        let batch = r#"{"RequestItems":{"A":{"Keys":[{"k":{"S":"1"}}]},"B":{"Keys":[{"k":{"S":"1"}}],"ConsistentRead":true}}}"#;
        assert_eq!(
            kind(Operation::BatchGetItem, batch, false),
            None,
            "one table strong"
        );
        let batch = r#"{"RequestItems":{"A":{"Keys":[{"k":{"S":"1"}}]}}}"#;
        assert_eq!(
            kind(Operation::BatchGetItem, batch, false),
            Some(ReadKind::BatchGetItem)
        );
        let transact = r#"{"TransactItems":[{"Get":{"TableName":"T","Key":{"k":{"S":"1"}}}}]}"#;
        assert_eq!(
            kind(Operation::TransactGetItems, transact, false),
            Some(ReadKind::TransactGetItems)
        );
        let select = r#"{"Statement":"SELECT * FROM T"}"#;
        assert_eq!(
            kind(Operation::ExecuteStatement, select, true),
            Some(ReadKind::Statement)
        );
        assert_eq!(
            kind(Operation::ExecuteStatement, select, false),
            None,
            "a write"
        );
        let strong = r#"{"Statement":"SELECT * FROM T","ConsistentRead":true}"#;
        assert_eq!(kind(Operation::ExecuteStatement, strong, true), None);
        let put = r#"{"TableName":"T","Item":{"k":{"S":"1"}}}"#;
        assert_eq!(kind(Operation::PutItem, put, false), None);
    }

    #[test]
    fn the_budget_allows_a_burst_then_its_share_of_reads() {
        let budget = HedgeBudget::default();
        for _ in 0..BURST {
            assert!(budget.withdraw());
        }
        assert!(!budget.withdraw(), "the burst is spent");
        for _ in 0..19 {
            budget.deposit(5);
        }
        assert!(!budget.withdraw(), "19 reads at 5 % pay for no hedge");
        budget.deposit(5);
        assert!(budget.withdraw(), "the 20th does");
        for _ in 0..1_000_000 {
            budget.deposit(5);
        }
        assert_eq!(budget.tokens(), BURST, "never above the burst");
    }
}
