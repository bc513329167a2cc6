//! Where a request goes: per-region health (passive from live traffic, active from probes),
//! the choice of region for each attempt, and the retry-safety rules that decide whether a
//! failed attempt may move to the next region.

pub mod budget;
pub mod health_log;
pub mod hedge;
pub mod pin;
pub mod retry;
pub mod select;
pub mod write_region;

pub use crate::region::{RegionHealth, Transition};
pub use budget::RetryBudget;
pub use pin::TransactionPins;
pub use retry::{AttemptOutcome, Reach, ResendSafety};
pub use select::{PerRegion, candidates, read_candidates};

/// The user agent of requests the sidecar makes on its own behalf.
pub const SIDECAR_AGENT: &str = concat!("globalscale/", env!("CARGO_PKG_VERSION"));
