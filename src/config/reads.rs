//! `[routing]`'s keys for gray failures, which apply to eventually consistent reads only:
//! hedging (`hedge_*`), latency demotion (`demote_latency_*`) and the failback ramp
//! (`failback_ramp_ms`). Writes and strongly consistent reads never move on latency.

use std::time::Duration;

use super::raw::RawRouting;
use super::{ConfigError, invalid, millis};

/// How eventually consistent reads react to slow and silent regions (`route::hedge`,
/// `region::latency`, `route::select`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReadRouting {
    /// Send a second copy of a read that its region has not answered after the hedge delay.
    pub hedge: bool,
    /// The hedge delay is the region's own p95 for the operation, never below this.
    pub hedge_min_delay: Duration,
    /// Hedges allowed, as a percentage of reads, in steady state (plus a small burst).
    pub hedge_budget_percent: u32,
    /// A read slower than `factor` times the region's p50 and than its p50 plus `margin` is
    /// slow; most reads slow demote the region for these reads.
    pub demote_factor: f64,
    pub demote_margin: Duration,
    /// A region readmitted (or no longer demoted) gets a share of reads rising from 0 to all
    /// over this long; zero moves them back in one step.
    pub failback_ramp: Duration,
}

pub(super) const DEFAULT_HEDGE_MIN_DELAY_MS: u64 = 20;
pub(super) const DEFAULT_HEDGE_BUDGET_PERCENT: u32 = 5;
pub(super) const DEFAULT_DEMOTE_FACTOR: f64 = 3.0;
pub(super) const DEFAULT_DEMOTE_MARGIN_MS: u64 = 50;
/// See benches/README.md ("Fleet simulation"): the figures that chose it.
pub(super) const DEFAULT_FAILBACK_RAMP_MS: u64 = 10_000;

impl Default for ReadRouting {
    fn default() -> Self {
        Self {
            hedge: true,
            hedge_min_delay: Duration::from_millis(DEFAULT_HEDGE_MIN_DELAY_MS),
            hedge_budget_percent: DEFAULT_HEDGE_BUDGET_PERCENT,
            demote_factor: DEFAULT_DEMOTE_FACTOR,
            demote_margin: Duration::from_millis(DEFAULT_DEMOTE_MARGIN_MS),
            failback_ramp: Duration::from_millis(DEFAULT_FAILBACK_RAMP_MS),
        }
    }
}

pub(super) fn read_routing(raw: Option<&RawRouting>) -> Result<ReadRouting, ConfigError> {
    let percent = raw
        .and_then(|r| r.hedge_budget_percent)
        .unwrap_or(DEFAULT_HEDGE_BUDGET_PERCENT);
    if percent > 100 {
        return Err(invalid("routing.hedge_budget_percent", "must be 0 to 100"));
    }
    let factor = raw
        .and_then(|r| r.demote_latency_factor)
        .unwrap_or(DEFAULT_DEMOTE_FACTOR);
    if !(factor > 1.0 && factor <= 100.0) {
        return Err(invalid(
            "routing.demote_latency_factor",
            "must be above 1 and at most 100",
        ));
    }
    let ramp = raw
        .and_then(|r| r.failback_ramp_ms)
        .unwrap_or(DEFAULT_FAILBACK_RAMP_MS);
    if ramp > 600_000 {
        return Err(invalid(
            "routing.failback_ramp_ms",
            "must be at most 600000 (ten minutes)",
        ));
    }
    Ok(ReadRouting {
        hedge: raw.and_then(|r| r.hedge_reads).unwrap_or(true),
        hedge_min_delay: millis(
            "routing.hedge_min_delay_ms",
            raw.and_then(|r| r.hedge_min_delay_ms),
            DEFAULT_HEDGE_MIN_DELAY_MS,
        )?,
        hedge_budget_percent: percent,
        demote_factor: factor,
        demote_margin: millis(
            "routing.demote_latency_margin_ms",
            raw.and_then(|r| r.demote_latency_margin_ms),
            DEFAULT_DEMOTE_MARGIN_MS,
        )?,
        failback_ramp: Duration::from_millis(ramp),
    })
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    const MINIMAL: &str = "[[regions]]\nname = \"us-east-1\"\n";

    fn err(routing: &str) -> String {
        Config::from_toml_str(&format!("{MINIMAL}[routing]\n{routing}\n"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn defaults_and_bounds() {
        let c = Config::from_toml_str(MINIMAL).unwrap();
        assert_eq!(c.routing.reads, super::ReadRouting::default());
        assert!(c.routing.reads.hedge);
        let c = Config::from_toml_str(&format!(
            "{MINIMAL}[routing]\nhedge_reads = false\nfailback_ramp_ms = 0\ndemote_latency_factor = 2.5\n"
        ))
        .unwrap();
        assert!(!c.routing.reads.hedge);
        assert!(c.routing.reads.failback_ramp.is_zero(), "0: one step");
        assert!((c.routing.reads.demote_factor - 2.5).abs() < f64::EPSILON);
        assert!(err("hedge_budget_percent = 101").contains("routing.hedge_budget_percent"));
        assert!(err("demote_latency_factor = 1.0").contains("routing.demote_latency_factor"));
        assert!(err("demote_latency_margin_ms = 0").contains("routing.demote_latency_margin_ms"));
        assert!(err("hedge_min_delay_ms = 0").contains("routing.hedge_min_delay_ms"));
        assert!(err("failback_ramp_ms = 600001").contains("routing.failback_ramp_ms"));
    }
}
