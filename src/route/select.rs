//! The order in which regions are tried for one request.

use std::time::Duration;

use smallvec::SmallVec;

use crate::config::RoutingPolicy;

/// Regions (or what is kept per region) for one request, inline up to eight regions: one
/// request's routing allocated three lists before.
pub type PerRegion<T> = SmallVec<[T; 8]>;

/// What selection needs to know of one region.
#[derive(Debug, Clone, Copy)]
pub struct RegionView {
    pub healthy: bool,
    pub latency: Duration,
    /// The latest failure was a timeout (a black hole), not a quick refusal or error.
    pub fails_slowly: bool,
    /// Not demoted for slow reads (`region::latency`).
    pub fast_reads: bool,
    /// The share of eventually consistent reads it takes while ramping up after a
    /// readmission: 0 to 1, 1 when not ramping.
    pub ramp: f64,
}

/// Indexes of the regions to try, best first: healthy ones, in config order for `ordered`,
/// by latency average (ties by config order) for `latency`.
///
/// When every region is ejected, the last resort is the ejected regions that fail fast
/// (refused connections, error answers) in config order: trying them costs milliseconds,
/// and a region that has just recovered answers. Regions that fail by timing out are never a
/// last resort. Empty means every region is known down and the caller answers at once.
pub fn candidates(regions: &[RegionView], policy: RoutingPolicy) -> PerRegion<usize> {
    let mut order: PerRegion<usize> = (0..regions.len()).filter(|&i| regions[i].healthy).collect();
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

/// The order for an eventually consistent read: [`candidates`], then the regions that take
/// such reads in full first, in that order; a region ramping up after its readmission keeps
/// its place for its share of reads (`roll()` below the share) and otherwise goes after
/// those; a region demoted for slow reads goes last, a last resort like the others behind it.
/// Writes and strongly consistent reads use [`candidates`] alone: they never move on latency.
pub fn read_candidates(
    regions: &[RegionView],
    policy: RoutingPolicy,
    mut roll: impl FnMut() -> f64,
) -> PerRegion<usize> {
    let mut order = candidates(regions, policy);
    let tier = |r: &RegionView, roll: &mut dyn FnMut() -> f64| {
        if r.fast_reads {
            u8::from(r.ramp < 1.0 && roll() >= r.ramp)
        } else {
            2
        }
    };
    let tiers: PerRegion<u8> = (0..regions.len())
        .map(|i| tier(&regions[i], &mut roll))
        .collect();
    // Stable: the policy's order holds within a tier.
    order.sort_by_key(|&i| tiers[i]);
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
            fast_reads: true,
            ramp: 1.0,
        }
    }

    #[test]
    fn reads_skip_a_demoted_region_and_share_with_a_ramping_one() {
        let mut regions = [view(true, 5), view(true, 5), view(true, 5)];
        regions[0].fast_reads = false;
        let order = read_candidates(&regions, RoutingPolicy::Ordered, || 0.0);
        assert_eq!(
            order[..],
            [1, 2, 0],
            "demoted: the last resort, still a candidate"
        );
        assert_eq!(
            candidates(&regions, RoutingPolicy::Ordered)[..],
            [0, 1, 2],
            "writes stay"
        );
        regions[0].fast_reads = true;
        regions[0].ramp = 0.3;
        assert_eq!(
            read_candidates(&regions, RoutingPolicy::Ordered, || 0.29)[..],
            [0, 1, 2]
        );
        assert_eq!(
            read_candidates(&regions, RoutingPolicy::Ordered, || 0.3)[..],
            [1, 2, 0]
        );
        let mut rolls = (0..1000).map(|i| f64::from(i) / 1000.0);
        let home = (0..1000)
            .filter(|_| {
                let roll = rolls.next().unwrap();
                read_candidates(&regions, RoutingPolicy::Ordered, || roll)[0] == 0
            })
            .count();
        assert_eq!(home, 300, "30 % of reads while the ramp is at 30 %");
    }

    #[test]
    fn ordered_keeps_home_first_and_skips_the_unhealthy() {
        let regions = [view(false, 1), view(true, 50), view(true, 5)];
        assert_eq!(candidates(&regions, RoutingPolicy::Ordered)[..], [1, 2]);
    }

    #[test]
    fn latency_prefers_the_fastest_with_ties_by_order() {
        let regions = [view(true, 30), view(true, 5), view(true, 5), view(false, 1)];
        assert_eq!(candidates(&regions, RoutingPolicy::Latency)[..], [1, 2, 0]);
    }

    #[test]
    fn all_ejected_falls_back_to_regions_that_fail_fast() {
        let mut regions = [view(false, 1), view(false, 1), view(false, 1)];
        regions[1].fails_slowly = false;
        regions[2].fails_slowly = false;
        assert_eq!(candidates(&regions, RoutingPolicy::Latency)[..], [1, 2]);
    }

    #[test]
    fn all_down_means_no_candidates() {
        let regions = [view(false, 1), view(false, 1)];
        assert!(candidates(&regions, RoutingPolicy::Ordered).is_empty());
    }
}
