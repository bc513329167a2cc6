//! Why the audit trail cannot take a write's records now. Defined here, with the error
//! model, so that the model depends on no other module; `audit` re-exports it.

use std::path::PathBuf;

use super::BoxError;

/// Why a write to an audited table cannot be given its record now: refused before it is
/// sent (so nothing happened), on the sidecar's side.
#[derive(Debug, thiserror::Error)]
pub enum Unavailable {
    #[error(
        "the audit spool in {} cannot be written (disk full or read-only?); writes to audited tables wait until it can",
        .dir.display()
    )]
    SpoolFailing { dir: PathBuf },
    #[error("{0}; the shipper is behind")]
    SpoolFull(#[source] BoxError),
    /// The write's intents could not be queued: it is not sent.
    #[error("the write's audit intent could not be spooled: {0}")]
    Intent(#[source] BoxError),
    /// Records are keyed by the item's key, so none is written under a guessed one.
    #[error("the key schema of audited table {table} is not known yet (DescribeTable)")]
    KeySchemaUnknown { table: String },
    /// A reload cannot open a spool.
    #[error("auditing was enabled by a reload; it starts with the next restart")]
    EnabledByReload,
}

/// A write whose audit record fits no audit table item in any form: even with its images left
/// out and its key hashed, it passes DynamoDB's item limit. Found by
/// [`crate::audit::record::check`] from the request alone, before it is sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the audit record of an item of {table} would be {bytes} bytes, over DynamoDB's {limit}-byte item limit for the audit table"
)]
pub struct UnstorableRecord {
    pub table: String,
    pub bytes: usize,
    pub limit: usize,
}
