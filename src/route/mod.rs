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
pub use retry::{AttemptOutcome, ResendSafety};
pub use select::candidates;
