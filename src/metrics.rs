//! Every metric the sidecar exports, by name, in one place: dashboards and alerts depend on
//! these names. Labels are bounded: operations outside DynamoDB's list and tables outside
//! the config are counted as `other`.

use prometheus::{
    Encoder, Gauge, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec,
    Opts, Registry, TextEncoder,
};

pub const REGION_HEALTHY: &str = "globalscale_region_healthy";
pub const REGION_EJECTIONS_TOTAL: &str = "globalscale_region_ejections_total";
pub const FAILOVERS_TOTAL: &str = "globalscale_failovers_total";
pub const UPSTREAM_REQUESTS_TOTAL: &str = "globalscale_upstream_requests_total";
pub const UPSTREAM_DURATION_SECONDS: &str = "globalscale_upstream_duration_seconds";
pub const REQUESTS_TOTAL: &str = "globalscale_requests_total";
pub const REQUEST_DURATION_SECONDS: &str = "globalscale_request_duration_seconds";
pub const PROBES_TOTAL: &str = "globalscale_probes_total";
pub const WRITE_VERIFICATIONS_TOTAL: &str = "globalscale_write_verifications_total";
pub const VERSION_CONFLICTS_TOTAL: &str = "globalscale_version_conflicts_total";
pub const CONFIG_RELOADS_TOTAL: &str = "globalscale_config_reloads_total";
pub const RETRY_BUDGET_TOKENS: &str = "globalscale_retry_budget_tokens";
pub const RETRY_BUDGET_EXHAUSTED_TOTAL: &str = "globalscale_retry_budget_exhausted_total";
pub const CONNECTIONS_OPEN: &str = "globalscale_connections_open";
pub const CONNECTIONS_MAX: &str = "globalscale_connections_max";
pub const WRITE_REGION: &str = "globalscale_write_region";
pub const BUILD_INFO: &str = "globalscale_build_info";
pub const UNPROCESSED_ITEMS_TOTAL: &str = "globalscale_unprocessed_items_total";
pub const CREDENTIAL_REFRESHES_TOTAL: &str = "globalscale_credential_refreshes_total";
pub const AUTH_FAILURES_TOTAL: &str = "globalscale_auth_failures_total";
pub const REQUESTS_SHED_TOTAL: &str = "globalscale_requests_shed_total";
pub const POLICY_REFUSALS_TOTAL: &str = "globalscale_policy_refusals_total";
pub const AUDIT_RECORDS_TOTAL: &str = "globalscale_audit_records_total";
pub const AUDIT_BACKLOG: &str = "globalscale_audit_backlog";
pub const AUDIT_OLDEST_SECONDS: &str = "globalscale_audit_oldest_seconds";
pub const AUDIT_SPOOL_FSYNCS_TOTAL: &str = "globalscale_audit_spool_fsyncs_total";
pub const AUDIT_SPOOL_LARGEST_GROUP: &str = "globalscale_audit_spool_largest_group";
pub const AUDIT_SPOOL_BYTES: &str = "globalscale_audit_spool_bytes";
pub const AUDIT_SPOOL_LIMIT_BYTES: &str = "globalscale_audit_spool_limit_bytes";
pub const AUDIT_QUARANTINED_TOTAL: &str = "globalscale_audit_quarantined_total";
pub const AUDIT_SPOOL_CORRUPT_RECORDS_TOTAL: &str = "globalscale_audit_spool_corrupt_records_total";
pub const BODY_MEMORY_BYTES: &str = "globalscale_body_memory_bytes";
pub const BODY_MEMORY_LIMIT_BYTES: &str = "globalscale_body_memory_limit_bytes";
pub const BODY_MEMORY_REFUSALS_TOTAL: &str = "globalscale_body_memory_refusals_total";
pub const CONNECTIONS_EVICTED_TOTAL: &str = "globalscale_connections_evicted_total";
pub const HEADER_TIMEOUTS_TOTAL: &str = "globalscale_header_timeouts_total";
pub const UPSTREAM_IDLE_CLOSED_TOTAL: &str = "globalscale_upstream_idle_closed_total";

/// The `state` label of `globalscale_connections_evicted_total`: what the connection closed
/// to make room was doing.
pub const EVICTED_STATES: [&str; 2] = ["silent", "idle"];
/// The `listener` label's values.
pub const LISTENERS: [&str; 2] = ["proxy", "admin"];

/// The table label for anything the sidecar does not manage.
pub const OTHER: &str = "other";

/// Latency buckets from sub-millisecond (DynamoDB in-region) to the request deadline.
const BUCKETS: &[f64] = &[
    0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The sidecar's metrics, registered once at start.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    pub region_healthy: IntGaugeVec,
    pub region_ejections: IntCounterVec,
    pub failovers: IntCounterVec,
    pub upstream_requests: IntCounterVec,
    pub upstream_duration: HistogramVec,
    pub requests: IntCounterVec,
    pub request_duration: HistogramVec,
    pub probes: IntCounterVec,
    pub write_verifications: IntCounterVec,
    /// Versioned writes whose condition failed, by managed table.
    pub version_conflicts: IntCounterVec,
    pub config_reloads: IntCounterVec,
    pub retry_budget_tokens: IntGauge,
    pub retry_budget_exhausted: IntCounter,
    /// By listener (`proxy`, `admin`).
    pub connections_open: IntGaugeVec,
    pub connections_max: IntGaugeVec,
    /// Audit records by outcome: `spooled` (durable locally), `shipped` (stored in the audit
    /// table), `failed` (a shipping attempt failed; the record stays spooled and is retried,
    /// or an append failed after its write).
    pub audit_records: IntCounterVec,
    pub audit_backlog: IntGauge,
    pub audit_oldest_seconds: Gauge,
    /// Fsyncs of the spool: `spooled / fsyncs` is the group commit's mean group.
    pub audit_spool_fsyncs: IntCounter,
    /// The most records one spool fsync has covered since start-up.
    pub audit_spool_largest_group: IntGauge,
    pub audit_spool_bytes: IntGauge,
    pub audit_spool_limit_bytes: IntGauge,
    /// Audit records the audit table refused one by one after bounded tries, set aside in
    /// the spool's quarantine file instead of blocking the records behind them.
    pub audit_quarantined: IntCounter,
    /// Damaged records skipped when the spool was replayed at start-up (each lost).
    pub audit_spool_corrupt_records: IntCounter,
    /// Requests refused by the signature check, by reason.
    pub auth_failures: IntCounterVec,
    /// Requests refused at once because `[limits] max_in_flight` were in flight.
    pub requests_shed: IntCounter,
    /// Requests refused before anything was sent because of what they name, by reason.
    pub policy_refusals: IntCounterVec,
    /// 1 for the region writes go to under `write_failover = "manual"`.
    pub write_region: IntGaugeVec,
    /// Items and keys a batch handed back unprocessed, by table.
    pub unprocessed_items: IntCounterVec,
    /// Fetches of the sidecar's own credentials, by result.
    pub credential_refreshes: IntCounterVec,
    /// Bytes of request bodies held now (set at scrape time) and the budget.
    pub body_memory_bytes: IntGauge,
    pub body_memory_limit_bytes: IntGauge,
    /// Requests answered 503 because their body would pass the budget.
    pub body_memory_refusals: IntCounter,
    /// Connections closed at the cap to make room for a new one, by `listener` and `state`.
    pub connections_evicted: IntCounterVec,
    /// Connections closed for sending no request head within the (adaptive) header
    /// timeout, by `listener`.
    pub header_timeouts: IntCounterVec,
    /// Idle connections to regions closed by the background sweep.
    pub upstream_idle_closed: IntCounter,
}

impl Metrics {
    // One registration per metric, all in one place: long by design.
    #[allow(clippy::too_many_lines)]
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels)?;
            registry.register(Box::new(c.clone()))?;
            Ok::<_, prometheus::Error>(c)
        };
        let histogram = |name: &str, help: &str, labels: &[&str]| {
            let opts = HistogramOpts::new(name, help).buckets(BUCKETS.to_vec());
            let h = HistogramVec::new(opts, labels)?;
            registry.register(Box::new(h.clone()))?;
            Ok::<_, prometheus::Error>(h)
        };
        let region_healthy = IntGaugeVec::new(
            Opts::new(
                REGION_HEALTHY,
                "1 when the region takes traffic, 0 when ejected",
            ),
            &["region"],
        )?;
        registry.register(Box::new(region_healthy.clone()))?;
        let retry_budget_tokens = IntGauge::new(
            RETRY_BUDGET_TOKENS,
            "Tokens left in the shared retry budget (see route::budget)",
        )?;
        registry.register(Box::new(retry_budget_tokens.clone()))?;
        let retry_budget_exhausted = IntCounter::new(
            RETRY_BUDGET_EXHAUSTED_TOTAL,
            "Retries not made because the retry budget was empty; the client got the last answer",
        )?;
        registry.register(Box::new(retry_budget_exhausted.clone()))?;
        let gauge = |name: &str, help: &str, labels: &[&str]| {
            let g = IntGaugeVec::new(Opts::new(name, help), labels)?;
            registry.register(Box::new(g.clone()))?;
            Ok::<_, prometheus::Error>(g)
        };
        let connections_open = gauge(
            CONNECTIONS_OPEN,
            "Client connections open, by listener",
            &["listener"],
        )?;
        let connections_max = gauge(
            CONNECTIONS_MAX,
            "The cap on open client connections, by listener; at the cap new ones wait",
            &["listener"],
        )?;
        let audit_backlog = IntGauge::new(
            AUDIT_BACKLOG,
            "Audit records spooled and not yet stored in the audit table",
        )?;
        registry.register(Box::new(audit_backlog.clone()))?;
        let audit_oldest_seconds = Gauge::new(
            AUDIT_OLDEST_SECONDS,
            "Age of the oldest audit record waiting in the spool; 0 when none waits",
        )?;
        registry.register(Box::new(audit_oldest_seconds.clone()))?;
        let audit_spool_fsyncs = IntCounter::new(
            AUDIT_SPOOL_FSYNCS_TOTAL,
            "Fsyncs of the audit spool; concurrent appends share one (group commit)",
        )?;
        registry.register(Box::new(audit_spool_fsyncs.clone()))?;
        let audit_spool_largest_group = IntGauge::new(
            AUDIT_SPOOL_LARGEST_GROUP,
            "The most audit records one spool fsync has covered since start-up",
        )?;
        registry.register(Box::new(audit_spool_largest_group.clone()))?;
        let audit_spool_bytes = IntGauge::new(
            AUDIT_SPOOL_BYTES,
            "Bytes of audit records spooled and not yet shipped, queued appends included: \
             what max_spool_bytes is checked against",
        )?;
        registry.register(Box::new(audit_spool_bytes.clone()))?;
        let audit_spool_limit_bytes = IntGauge::new(
            AUDIT_SPOOL_LIMIT_BYTES,
            "The audit spool's max_spool_bytes: at it, writes to audited tables get a retryable 503",
        )?;
        registry.register(Box::new(audit_spool_limit_bytes.clone()))?;
        let audit_quarantined = IntCounter::new(
            AUDIT_QUARANTINED_TOTAL,
            "Audit records the audit table refused (a ValidationException of their own), \
             set aside in the spool's quarantine.jsonl after bounded tries",
        )?;
        registry.register(Box::new(audit_quarantined.clone()))?;
        let audit_spool_corrupt_records = IntCounter::new(
            AUDIT_SPOOL_CORRUPT_RECORDS_TOTAL,
            "Damaged audit records skipped when the spool was replayed at start-up; the \
             records around them are kept",
        )?;
        registry.register(Box::new(audit_spool_corrupt_records.clone()))?;
        let requests_shed = IntCounter::new(
            REQUESTS_SHED_TOTAL,
            "Requests answered 503 at once because [limits] max_in_flight were in flight",
        )?;
        registry.register(Box::new(requests_shed.clone()))?;
        let write_region = gauge(
            WRITE_REGION,
            "1 for the region writes go to under write_failover = \"manual\", 0 for the others",
            &["region"],
        )?;
        let build_info = gauge(
            BUILD_INFO,
            "Always 1; the version of the running binary",
            &["version"],
        )?;
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        let int_gauge = |name: &str, help: &str| {
            let g = IntGauge::new(name, help)?;
            registry.register(Box::new(g.clone()))?;
            Ok::<_, prometheus::Error>(g)
        };
        let int_counter = |name: &str, help: &str| {
            let c = IntCounter::new(name, help)?;
            registry.register(Box::new(c.clone()))?;
            Ok::<_, prometheus::Error>(c)
        };
        let body_memory_bytes = int_gauge(
            BODY_MEMORY_BYTES,
            "Bytes of request bodies held in memory now, across every connection",
        )?;
        let body_memory_limit_bytes = int_gauge(
            BODY_MEMORY_LIMIT_BYTES,
            "[server] max_body_memory_bytes: past it, requests get a retryable 503 at once",
        )?;
        let body_memory_refusals = int_counter(
            BODY_MEMORY_REFUSALS_TOTAL,
            "Requests answered 503 because their body would pass [server] max_body_memory_bytes",
        )?;
        let upstream_idle_closed = int_counter(
            UPSTREAM_IDLE_CLOSED_TOTAL,
            "Idle connections to regions closed by the background sweep ([upstream] idle_timeout_ms)",
        )?;
        let connections_evicted = counter(
            CONNECTIONS_EVICTED_TOTAL,
            "Connections closed at the cap to make room for a new one, by listener and what \
             they were doing (silent: no request yet; idle: between requests)",
            &["listener", "state"],
        )?;
        let header_timeouts = counter(
            HEADER_TIMEOUTS_TOTAL,
            "Connections closed for sending no request head within the header timeout, \
             which shortens as the listener nears its cap",
            &["listener"],
        )?;
        for listener in LISTENERS {
            header_timeouts.with_label_values(&[listener]);
            for state in EVICTED_STATES {
                connections_evicted.with_label_values(&[listener, state]);
            }
        }
        #[cfg(target_os = "linux")]
        registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        Ok(Self {
            write_region,
            unprocessed_items: counter(
                UNPROCESSED_ITEMS_TOTAL,
                "Items (BatchWriteItem) and keys (BatchGetItem) the region handed back unprocessed, by table",
                &["table"],
            )?,
            credential_refreshes: counter(
                CREDENTIAL_REFRESHES_TOTAL,
                "Fetches of the sidecar's own credentials from the config or the default chain, by result",
                &["result"],
            )?,
            auth_failures: counter(
                AUTH_FAILURES_TOTAL,
                "Requests refused by the SigV4 check, by reason",
                &["reason"],
            )?,
            requests_shed,
            policy_refusals: counter(
                POLICY_REFUSALS_TOTAL,
                "Requests refused before anything was sent because of the tables they name \
                 (audit_table: the audit trail's own table, by any name, ARN or statement)",
                &["reason"],
            )?,
            audit_records: counter(
                AUDIT_RECORDS_TOTAL,
                "Audit records by outcome: spooled, shipped, failed",
                &["outcome"],
            )?,
            audit_backlog,
            audit_oldest_seconds,
            audit_spool_fsyncs,
            audit_spool_largest_group,
            audit_spool_bytes,
            audit_spool_limit_bytes,
            audit_quarantined,
            audit_spool_corrupt_records,
            region_healthy,
            region_ejections: counter(
                REGION_EJECTIONS_TOTAL,
                "Times a region was ejected; a flapping region shows here, not in the gauge",
                &["region", "reason"],
            )?,
            failovers: counter(
                FAILOVERS_TOTAL,
                "Requests moved from one region to the next",
                &["from", "to"],
            )?,
            upstream_requests: counter(
                UPSTREAM_REQUESTS_TOTAL,
                "Attempts sent to a region, by outcome",
                &["region", "operation", "outcome"],
            )?,
            upstream_duration: histogram(
                UPSTREAM_DURATION_SECONDS,
                "Duration of one attempt against one region",
                &["region"],
            )?,
            requests: counter(
                REQUESTS_TOTAL,
                "Requests answered to clients, by HTTP status and client ([[clients]] name, or anonymous)",
                &["operation", "table", "status", "client"],
            )?,
            request_duration: histogram(
                REQUEST_DURATION_SECONDS,
                "Time from a client's request to the sidecar's answer",
                &["operation"],
            )?,
            probes: counter(
                PROBES_TOTAL,
                "Active health probes, by outcome",
                &["region", "outcome"],
            )?,
            write_verifications: counter(
                WRITE_VERIFICATIONS_TOTAL,
                "Conditional writes resent after an ambiguous failure, by what the resend showed",
                &["verdict"],
            )?,
            version_conflicts: counter(
                VERSION_CONFLICTS_TOTAL,
                "Versioned writes refused because the item changed since the client read it",
                &["table"],
            )?,
            config_reloads: counter(
                CONFIG_RELOADS_TOTAL,
                "Configuration reloads on SIGHUP, by result",
                &["result"],
            )?,
            retry_budget_tokens,
            retry_budget_exhausted,
            connections_open,
            connections_max,
            body_memory_bytes,
            body_memory_limit_bytes,
            body_memory_refusals,
            connections_evicted,
            header_timeouts,
            upstream_idle_closed,
            registry,
        })
    }

    /// The Prometheus text exposition, with the gauges and counters read from live state at
    /// scrape time (`live`) rather than set on every request.
    pub fn scrape(&self, live: &Live) -> Result<Vec<u8>, prometheus::Error> {
        self.retry_budget_tokens
            .set(live.retry_budget_tokens.into());
        let (ok, failed) = live.credential_refreshes;
        for (result, total) in [("success", ok), ("failure", failed)] {
            let counter = self.credential_refreshes.with_label_values(&[result]);
            counter.inc_by(total.saturating_sub(counter.get()));
        }
        let gauge = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        self.body_memory_bytes.set(gauge(live.body_memory_bytes));
        let counted = self.upstream_idle_closed.get();
        self.upstream_idle_closed
            .inc_by(live.upstream_idle_closed.saturating_sub(counted));
        if let Some(spool) = &live.spool {
            self.audit_backlog.set(gauge(spool.records));
            self.audit_oldest_seconds
                .set(spool.oldest_age.as_secs_f64());
            self.audit_spool_bytes.set(gauge(spool.held_bytes));
            let counted = self.audit_spool_fsyncs.get();
            self.audit_spool_fsyncs
                .inc_by(spool.fsyncs.saturating_sub(counted));
            self.audit_spool_largest_group
                .set(gauge(spool.largest_group));
        }
        self.render()
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> Result<Vec<u8>, prometheus::Error> {
        let mut out = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut out)?;
        Ok(out)
    }
}

/// What a scrape reads from live state: totals kept elsewhere, published as they are now.
#[derive(Debug, Clone, Default)]
pub struct Live {
    pub retry_budget_tokens: u32,
    /// Successful and failed fetches of the sidecar's credentials so far.
    pub credential_refreshes: (u64, u64),
    /// The audit spool, when auditing is on.
    pub spool: Option<SpoolLive>,
    /// Bytes of request bodies held now (`server::bodies`).
    pub body_memory_bytes: u64,
    /// Idle upstream connections the sweeps have closed so far.
    pub upstream_idle_closed: u64,
}

/// The audit spool as a scrape sees it.
#[derive(Debug, Clone, Default)]
pub struct SpoolLive {
    pub records: u64,
    pub oldest_age: std::time::Duration,
    pub held_bytes: u64,
    pub fsyncs: u64,
    pub largest_group: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_documented_names() {
        let m = Metrics::new().unwrap();
        m.region_healthy.with_label_values(&["us-east-1"]).set(1);
        m.requests
            .with_label_values(&["GetItem", OTHER, "200", "anonymous"])
            .inc();
        m.upstream_duration
            .with_label_values(&["us-east-1"])
            .observe(0.002);
        let text = String::from_utf8(m.render().unwrap()).unwrap();
        assert!(
            text.contains("globalscale_region_healthy{region=\"us-east-1\"} 1"),
            "{text}"
        );
        assert!(text.contains(
            "globalscale_requests_total{client=\"anonymous\",operation=\"GetItem\",status=\"200\",table=\"other\"} 1"
        ));
        assert!(text.contains(
            "globalscale_upstream_duration_seconds_bucket{region=\"us-east-1\",le=\"0.0025\"} 1"
        ));
    }
}
