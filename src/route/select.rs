//! The order in which regions are tried for one request.

use std::time::Duration;

use crate::config::RoutingPolicy;

/// What selection needs to know of one region.
#[derive(Debug, Clone, Copy)]
pub struct RegionView {
    pub healthy: bool,
    pub latency: Duration,
    /// The latest failure was a timeout (a black hole), not a quick refusal or error.
    pub fails_slowly: bool,
}

/// Indexes of the regions to try, best first: healthy ones, in config order for `ordered`,
/// by latency average (ties by config order) for `latency`.
///
/// When every region is ejected, the last resort is the ejected regions that fail fast
/// (refused connections, error answers) in config order: trying them costs milliseconds,
/// and a region that has just recovered answers. Regions that fail by timing out are never a
/// last resort. Empty means every region is known down and the caller answers at once.
pub fn candidates(regions: &[RegionView], policy: RoutingPolicy) -> Vec<usize> {
    let mut order: Vec<usize> = (0..regions.len()).filter(|&i| regions[i].healthy).collect();
    if order.is_empty() {
        return (0..regions.len())
            .filter(|&i| !regions[i].fails_slowly)
            .collect();
    }
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
            fails_slowly: true,
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
    fn all_ejected_falls_back_to_regions_that_fail_fast() {
        let mut regions = [view(false, 1), view(false, 1), view(false, 1)];
        regions[1].fails_slowly = false;
        regions[2].fails_slowly = false;
        assert_eq!(candidates(&regions, RoutingPolicy::Latency), [1, 2]);
    }

    #[test]
    fn all_down_means_no_candidates() {
        let regions = [view(false, 1), view(false, 1)];
        assert!(candidates(&regions, RoutingPolicy::Ordered).is_empty());
    }
}
