//! Where a request goes: per-region health (passive from live traffic, active from probes),
//! the choice of region for each attempt, and the retry-safety rules that decide whether a
//! failed attempt may move to the next region.

pub mod budget;
pub mod health;
pub mod pin;
pub mod probe;
pub mod retry;
pub mod select;

pub use budget::RetryBudget;
pub use health::{RegionHealth, Transition};
pub use pin::TransactionPins;
pub use retry::{AttemptOutcome, Reach, ResendSafety};
pub use select::candidates;

use std::sync::Arc;
use std::time::Duration;

use crate::snapshot::{Region, Snapshot};

/// The user agent of requests the sidecar makes on its own behalf.
pub const SIDECAR_AGENT: &str = concat!("globalscale/", env!("CARGO_PKG_VERSION"));

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
}
