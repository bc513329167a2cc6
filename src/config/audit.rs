//! The `[audit]` section: where audit records go (the replicated audit table), where they wait
//! until shipped (the local spool), what they carry (item images) and how they are made durable.

use std::path::PathBuf;

use super::raw::RawAudit;
use super::{ConfigError, invalid};

/// 1 GiB: hours of records at thousands of writes a second, small beside a node's disk.
const DEFAULT_MAX_SPOOL_BYTES: u64 = 1 << 30;
/// The longest group commit gathering time accepted: 100 ms.
const MAX_COMMIT_DELAY_US: u64 = 100_000;
/// Below this a single large record could not fit.
const MIN_SPOOL_BYTES: u64 = 1 << 20;

/// Which images of the written item a record carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditImages {
    None,
    New,
    NewAndOld,
}

impl AuditImages {
    pub fn new_image(self) -> bool {
        self != Self::None
    }

    pub fn old_image(self) -> bool {
        self == Self::NewAndOld
    }
}

/// How a record is made durable before the client's answer is released.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditMode {
    /// Fsynced to the local spool, shipped to the table in the background.
    Spooled,
    /// Written in the same TransactWriteItems as the client's write.
    Atomic,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditConfig {
    /// The audit table: hash `ItemKey` (S), range `EventId` (S).
    pub table: String,
    pub spool_dir: PathBuf,
    pub images: AuditImages,
    pub mode: AuditMode,
    /// Unshipped bytes at which writes to audited tables are refused with a retryable 503.
    pub max_spool_bytes: u64,
    /// How long the spool's group commit gathers intents before its fsync, unless a write
    /// whose answer is back waits for it (`crate::audit::spool::DEFAULT_COMMIT_DELAY`).
    pub commit_delay: std::time::Duration,
}

pub(super) fn audit(raw: Option<RawAudit>) -> Result<Option<AuditConfig>, ConfigError> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    let table = raw
        .table
        .filter(|t| !t.is_empty())
        .ok_or_else(|| invalid("audit.table", "is required: the table audit records go to"))?;
    let spool_dir = raw.spool_dir.filter(|d| !d.is_empty()).ok_or_else(|| {
        invalid(
            "audit.spool_dir",
            "is required: the directory records wait in until shipped",
        )
    })?;
    let images = match raw.images.as_deref().unwrap_or("new") {
        "none" => AuditImages::None,
        "new" => AuditImages::New,
        "new_and_old" => AuditImages::NewAndOld,
        other => {
            return Err(invalid(
                "audit.images",
                format!("`{other}` is not one of \"none\", \"new\", \"new_and_old\""),
            ));
        }
    };
    let mode = match raw.mode.as_deref().unwrap_or("spooled") {
        "spooled" => AuditMode::Spooled,
        "atomic" => AuditMode::Atomic,
        other => {
            return Err(invalid(
                "audit.mode",
                format!("`{other}` is not one of \"spooled\", \"atomic\""),
            ));
        }
    };
    let max_spool_bytes = raw.max_spool_bytes.unwrap_or(DEFAULT_MAX_SPOOL_BYTES);
    if max_spool_bytes < MIN_SPOOL_BYTES {
        return Err(invalid(
            "audit.max_spool_bytes",
            format!("must be at least {MIN_SPOOL_BYTES} (one large record must fit)"),
        ));
    }
    let commit_delay = match raw.commit_delay_us {
        None => crate::audit::spool::DEFAULT_COMMIT_DELAY,
        Some(us) if us <= MAX_COMMIT_DELAY_US => std::time::Duration::from_micros(us),
        Some(_) => {
            return Err(invalid(
                "audit.commit_delay_us",
                format!(
                    "must be at most {MAX_COMMIT_DELAY_US} (a write answered at once hurries the fsync, but one whose answer is lost waits it out)"
                ),
            ));
        }
    };
    Ok(Some(AuditConfig {
        table,
        spool_dir: PathBuf::from(spool_dir),
        images,
        mode,
        max_spool_bytes,
        commit_delay,
    }))
}
