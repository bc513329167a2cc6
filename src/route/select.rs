//! The order in which regions are tried for one request.

use std::time::Duration;

use crate::config::RoutingPolicy;

/// What selection needs to know of one region.
#[derive(Debug, Clone, Copy)]
pub struct RegionView {
    pub healthy: bool,
    pub latency: Duration,
}

/// Indexes of the regions to try, best first: only healthy ones, in config order for
/// `ordered`, by latency average (ties by config order) for `latency`. Empty when every
/// region is known down, so the caller can answer at once instead of waiting on timeouts.
pub fn candidates(regions: &[RegionView], policy: RoutingPolicy) -> Vec<usize> {
    let mut order: Vec<usize> = (0..regions.len()).filter(|&i| regions[i].healthy).collect();
    if policy == RoutingPolicy::Latency {
        // A stable sort keeps config order among equal latencies.
        order.sort_by_key(|&i| regions[i].latency);
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(healthy: bool, ms: u64) -> RegionView {
        RegionView {
            healthy,
            latency: Duration::from_millis(ms),
        }
    }

    #[test]
    fn ordered_keeps_home_first_and_skips_the_unhealthy() {
        let regions = [view(false, 1), view(true, 50), view(true, 5)];
        assert_eq!(candidates(&regions, RoutingPolicy::Ordered), [1, 2]);
    }

    #[test]
    fn latency_prefers_the_fastest_with_ties_by_order() {
        let regions = [view(true, 30), view(true, 5), view(true, 5), view(false, 1)];
        assert_eq!(candidates(&regions, RoutingPolicy::Latency), [1, 2, 0]);
    }

    #[test]
    fn all_down_means_no_candidates() {
        let regions = [view(false, 1), view(false, 1)];
        assert!(candidates(&regions, RoutingPolicy::Ordered).is_empty());
    }
}
