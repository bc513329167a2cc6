//! What `/status` on the admin port shows, gathered from live state in one place: each
//! region's health and latency, the recent ejections and readmissions with their reason, the
//! write region, the retry budget, the audit trail's backlog, and which config is running.
//! `render` turns it into the page for people and the JSON for tools.

pub mod render;

use serde::Serialize;

use crate::config::{AuthMode, RoutingPolicy, WriteFailover};
use crate::proxy::{Proxy, RegionEvent};
use crate::region::ReadKind;
use crate::route::{candidates, read_candidates};

#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub version: &'static str,
    /// When this status was gathered: RFC 3339, UTC.
    pub generated_at: String,
    pub config: ConfigStatus,
    /// `ordered` (home first) or `latency`: how reads pick a region.
    pub routing_policy: &'static str,
    /// `auto` or `manual`.
    pub write_failover: &'static str,
    /// The region writes stay on under `write_failover = "manual"` (an operator moves it).
    pub write_region: String,
    /// Where a write would go now: the write region under `manual`, the serving region under
    /// `auto`; `None` when no region is healthy under `auto`.
    pub writes_to: Option<String>,
    /// Where a read would go now: the first healthy region by the routing policy.
    pub serving_region: Option<String>,
    pub regions: Vec<RegionStatus>,
    /// Newest first.
    pub events: Vec<RegionEvent>,
    pub retry_budget: BudgetStatus,
    /// Hedged reads, latency demotion and the failback ramp (eventually consistent reads).
    pub hedging: HedgingStatus,
    pub audit: Option<AuditStatus>,
    /// `none` or `sigv4`.
    pub auth: &'static str,
    pub draining: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct ConfigStatus {
    /// 1 at start, one more per reload.
    pub generation: u64,
    /// RFC 3339, UTC.
    pub loaded_at: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct RegionStatus {
    pub name: String,
    pub endpoint: String,
    pub home: bool,
    pub healthy: bool,
    /// Average latency of recent successful attempts, in milliseconds; `None` while the
    /// region is ejected, when the last figure measured describes a region that has since
    /// stopped answering.
    pub latency_ms: Option<f64>,
    /// Demoted for eventually consistent reads: most of them ran past its slow threshold.
    pub reads_demoted: bool,
    /// The share of eventually consistent reads the failback ramp lets it take: 0 to 1.
    pub read_share: f64,
    /// GetItem's p50 and p95 here (the baseline slow reads are judged against, and the hedge
    /// delay before its floor), in milliseconds; `None` until enough reads were seen, and
    /// while the region is ejected.
    pub get_item_p50_ms: Option<f64>,
    pub get_item_p95_ms: Option<f64>,
    /// How long a GetItem waits for this region before a hedge goes out, in milliseconds.
    pub hedge_delay_ms: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct HedgingStatus {
    pub enabled: bool,
    pub budget_tokens: u64,
    pub budget_burst: u64,
    /// Hedges allowed in steady state, as a percentage of eventually consistent reads.
    pub budget_percent: u32,
    pub min_delay_ms: f64,
    pub demote_factor: f64,
    pub demote_margin_ms: f64,
    pub failback_ramp_ms: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct BudgetStatus {
    pub tokens: u32,
    pub capacity: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct AuditStatus {
    /// `spooled` or `atomic`.
    pub mode: &'static str,
    pub table: String,
    pub backlog: usize,
    pub backlog_bytes: u64,
    pub oldest_seconds: f64,
    /// The spool's disk refused a write; audited writes get a 503 until it takes one.
    pub spool_failing: bool,
}

/// Milliseconds to the microsecond: JSON without binary noise (`5.147`, not
/// `5.146999999999999`), and no precision a reader could use.
fn ms(d: std::time::Duration) -> f64 {
    thousandths(d.as_secs_f64() * 1000.0)
}

fn thousandths(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

impl RegionStatus {
    fn of(r: &crate::region::Region, home: bool, reads: &crate::config::ReadRouting) -> Self {
        let healthy = r.health.is_healthy();
        let percentiles = r
            .health
            .reads
            .percentiles(ReadKind::GetItem)
            .filter(|_| healthy);
        RegionStatus {
            name: r.name.clone(),
            endpoint: r.endpoint.to_string(),
            home,
            healthy,
            latency_ms: Some(ms(r.health.latency())).filter(|_| healthy),
            reads_demoted: r.health.reads.is_demoted(),
            read_share: thousandths(r.health.reads.ramp_share(reads.failback_ramp)),
            get_item_p50_ms: percentiles.map(|(p50, _)| ms(p50)),
            get_item_p95_ms: percentiles.map(|(_, p95)| ms(p95)),
            hedge_delay_ms: ms(r
                .health
                .reads
                .hedge_delay(ReadKind::GetItem, reads.hedge_min_delay)),
        }
    }
}

impl Status {
    pub fn gather(proxy: &Proxy, draining: bool) -> Status {
        let snapshot = proxy.snapshot.load();
        let config = &snapshot.config;
        let views = snapshot.region_views();
        // Where most eventually consistent reads go: a ramping region once past half its ramp.
        let serving = read_candidates(&views, config.routing.policy, || 0.5)
            .first()
            .map(|&i| snapshot.regions[i].name.clone());
        // Writes never move on latency or ramps.
        let writes_first = candidates(&views, config.routing.policy)
            .first()
            .map(|&i| snapshot.regions[i].name.clone());
        let reads = &config.routing.reads;
        let regions = snapshot
            .regions
            .iter()
            .enumerate()
            .map(|(i, r)| RegionStatus::of(r, i == 0, reads))
            .collect();
        let events = proxy.health_log.events();
        let audit = proxy
            .audit
            .as_ref()
            .zip(config.audit.as_ref())
            .map(|(auditor, audit)| {
                let backlog = auditor.spool().backlog();
                AuditStatus {
                    mode: match audit.mode {
                        crate::config::AuditMode::Spooled => "spooled",
                        crate::config::AuditMode::Atomic => "atomic",
                    },
                    table: audit.table.clone(),
                    backlog: backlog.records,
                    backlog_bytes: backlog.bytes,
                    oldest_seconds: thousandths(backlog.oldest_age.as_secs_f64()),
                    spool_failing: auditor.failing(),
                }
            });
        Status {
            version: env!("CARGO_PKG_VERSION"),
            generated_at: humantime::format_rfc3339_seconds(std::time::SystemTime::now())
                .to_string(),
            config: ConfigStatus {
                generation: snapshot.generation,
                loaded_at: humantime::format_rfc3339_seconds(snapshot.loaded_at).to_string(),
            },
            routing_policy: match config.routing.policy {
                RoutingPolicy::Ordered => "ordered",
                RoutingPolicy::Latency => "latency",
            },
            write_failover: match config.routing.write_failover {
                WriteFailover::Auto => "auto",
                WriteFailover::Manual => "manual",
            },
            // Under `auto`, writes go where reads go.
            writes_to: match config.routing.write_failover {
                WriteFailover::Manual => Some(proxy.write_region()),
                WriteFailover::Auto => writes_first,
            },
            write_region: proxy.write_region(),
            serving_region: serving,
            regions,
            events,
            retry_budget: BudgetStatus {
                tokens: snapshot.retry_budget.tokens(),
                capacity: config.routing.retry_budget,
            },
            hedging: HedgingStatus {
                enabled: reads.hedge,
                budget_tokens: snapshot.hedge_budget.tokens(),
                budget_burst: crate::route::hedge::BURST,
                budget_percent: reads.hedge_budget_percent,
                min_delay_ms: ms(reads.hedge_min_delay),
                demote_factor: reads.demote_factor,
                demote_margin_ms: ms(reads.demote_margin),
                failback_ramp_ms: ms(reads.failback_ramp),
            },
            audit,
            auth: match config.auth.mode {
                AuthMode::None => "none",
                AuthMode::Sigv4 => "sigv4",
            },
            draining,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[test]
    fn figures_are_rounded_to_what_a_reader_can_use() {
        // Compared as JSON text: exactly what a reader of /status sees.
        let json = |x: f64| serde_json::to_string(&x).unwrap();
        assert_eq!(json(super::ms(Duration::from_nanos(5_146_999))), "5.147");
        assert_eq!(json(super::ms(Duration::from_micros(5_147))), "5.147");
        assert_eq!(json(super::thousandths(0.399_999_9)), "0.4");
    }
}
