//! Every metric the sidecar exports, by name, in one place: dashboards and alerts depend on
//! these names. Labels are bounded: operations outside DynamoDB's list and tables outside
//! the config are counted as `other`.

use prometheus::{
    Encoder, Gauge, GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
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
pub const POISON_REQUESTS_TOTAL: &str = "globalscale_poison_requests_total";
pub const REPEATED_SERVER_ERRORS_TOTAL: &str = "globalscale_repeated_server_errors_total";
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
pub const EVENTUAL_READS_TOTAL: &str = "globalscale_eventual_reads_total";
pub const HEDGES_TOTAL: &str = "globalscale_hedges_total";
pub const HEDGES_WON_TOTAL: &str = "globalscale_hedges_won_total";
pub const HEDGE_BUDGET_EXHAUSTED_TOTAL: &str = "globalscale_hedge_budget_exhausted_total";
pub const REGION_READ_DEMOTED: &str = "globalscale_region_read_demoted";
pub const REGION_READ_DEMOTIONS_TOTAL: &str = "globalscale_region_read_demotions_total";
pub const REGION_READ_SHARE: &str = "globalscale_region_read_share";
pub const REGION_RAMPS_TOTAL: &str = "globalscale_region_ramps_total";
pub const READY: &str = "globalscale_ready";
pub const READINESS_REFUSALS_TOTAL: &str = "globalscale_readiness_refusals_total";

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

/// A metric type the table below can register: made from its name, help and labels, and
/// registered in the sidecar's registry.
trait Register: Sized + Clone + prometheus::core::Collector + 'static {
    fn make(name: &str, help: &str, labels: &[&str]) -> Result<Self, prometheus::Error>;

    fn register(
        registry: &Registry,
        name: &str,
        help: &str,
        labels: &[&str],
    ) -> Result<Self, prometheus::Error> {
        let metric = Self::make(name, help, labels)?;
        registry.register(Box::new(metric.clone()))?;
        Ok(metric)
    }
}

impl Register for IntCounterVec {
    fn make(name: &str, help: &str, labels: &[&str]) -> Result<Self, prometheus::Error> {
        IntCounterVec::new(Opts::new(name, help), labels)
    }
}

impl Register for IntGaugeVec {
    fn make(name: &str, help: &str, labels: &[&str]) -> Result<Self, prometheus::Error> {
        IntGaugeVec::new(Opts::new(name, help), labels)
    }
}

impl Register for HistogramVec {
    fn make(name: &str, help: &str, labels: &[&str]) -> Result<Self, prometheus::Error> {
        HistogramVec::new(
            HistogramOpts::new(name, help).buckets(BUCKETS.to_vec()),
            labels,
        )
    }
}

impl Register for GaugeVec {
    fn make(name: &str, help: &str, labels: &[&str]) -> Result<Self, prometheus::Error> {
        GaugeVec::new(Opts::new(name, help), labels)
    }
}

impl Register for IntCounter {
    fn make(name: &str, help: &str, _: &[&str]) -> Result<Self, prometheus::Error> {
        IntCounter::new(name, help)
    }
}

impl Register for IntGauge {
    fn make(name: &str, help: &str, _: &[&str]) -> Result<Self, prometheus::Error> {
        IntGauge::new(name, help)
    }
}

impl Register for Gauge {
    fn make(name: &str, help: &str, _: &[&str]) -> Result<Self, prometheus::Error> {
        Gauge::new(name, help)
    }
}

/// Declares [`Metrics`] from one table: each field with its type, name, help and labels,
/// registered in order by [`Metrics::new`]. A metric is one line of the table, not a
/// field, a registration and a constructor argument kept in step by hand.
macro_rules! metrics {
    ($(
        $(#[$doc:meta])*
        $field:ident: $kind:ty = ($name:expr, $help:expr $(, [$($label:expr),+])?);
    )*) => {
        /// The sidecar's metrics, registered once at start.
        #[derive(Clone)]
        pub struct Metrics {
            registry: Registry,
            $($(#[$doc])* pub $field: $kind,)*
        }

        impl Metrics {
            fn register(registry: Registry) -> Result<Self, prometheus::Error> {
                Ok(Self {
                    $($field: <$kind as Register>::register(
                        &registry,
                        $name,
                        $help,
                        &[$($($label),+)?],
                    )?,)*
                    registry,
                })
            }
        }
    };
}

metrics! {
    region_healthy: IntGaugeVec = (REGION_HEALTHY, "1 when the region takes traffic, 0 when ejected", ["region"]);
    region_ejections: IntCounterVec = (REGION_EJECTIONS_TOTAL, "Times a region was ejected; a flapping region shows here, not in the gauge", ["region", "reason"]);
    failovers: IntCounterVec = (FAILOVERS_TOTAL, "Requests moved from one region to the next", ["from", "to"]);
    upstream_requests: IntCounterVec = (UPSTREAM_REQUESTS_TOTAL, "Attempts sent to a region, by outcome", ["region", "operation", "outcome"]);
    upstream_duration: HistogramVec = (UPSTREAM_DURATION_SECONDS, "Duration of one attempt against one region", ["region"]);
    requests: IntCounterVec = (REQUESTS_TOTAL, "Requests answered to clients, by HTTP status and client ([[clients]] name, or anonymous)", ["operation", "table", "status", "client"]);
    request_duration: HistogramVec = (REQUEST_DURATION_SECONDS, "Time from a client's request to the sidecar's answer", ["operation"]);
    probes: IntCounterVec = (PROBES_TOTAL, "Active health probes, by outcome", ["region", "outcome"]);
    write_verifications: IntCounterVec = (WRITE_VERIFICATIONS_TOTAL, "Conditional writes resent after an ambiguous failure, by what the resend showed", ["verdict"]);
    /// Versioned writes whose condition failed, by managed table.
    version_conflicts: IntCounterVec = (VERSION_CONFLICTS_TOTAL, "Versioned writes refused because the item changed since the client read it", ["table"]);
    config_reloads: IntCounterVec = (CONFIG_RELOADS_TOTAL, "Configuration reloads on SIGHUP, by result", ["result"]);
    retry_budget_tokens: IntGauge = (RETRY_BUDGET_TOKENS, "Tokens left in the shared retry budget (see route::budget)");
    retry_budget_exhausted: IntCounter = (RETRY_BUDGET_EXHAUSTED_TOTAL, "Retries not made because the retry budget was empty; the client got the last answer");
    /// By listener (`proxy`, `admin`).
    connections_open: IntGaugeVec = (CONNECTIONS_OPEN, "Client connections open, by listener", ["listener"]);
    connections_max: IntGaugeVec = (CONNECTIONS_MAX, "The cap on open client connections, by listener; at the cap new ones wait", ["listener"]);
    /// Audit records by outcome: `spooled` (durable locally), `shipped` (stored in the audit
    /// table), `failed` (a shipping attempt failed; the record stays spooled and is retried,
    /// or an append failed after its write).
    audit_records: IntCounterVec = (AUDIT_RECORDS_TOTAL, "Audit records by outcome: spooled, shipped, failed", ["outcome"]);
    audit_backlog: IntGauge = (AUDIT_BACKLOG, "Audit records spooled and not yet stored in the audit table");
    audit_oldest_seconds: Gauge = (AUDIT_OLDEST_SECONDS, "Age of the oldest audit record waiting in the spool; 0 when none waits");
    /// Fsyncs of the spool: `spooled / fsyncs` is the group commit's mean group.
    audit_spool_fsyncs: IntCounter = (AUDIT_SPOOL_FSYNCS_TOTAL, "Fsyncs of the audit spool; concurrent appends share one (group commit)");
    /// The most records one spool fsync has covered since start-up.
    audit_spool_largest_group: IntGauge = (AUDIT_SPOOL_LARGEST_GROUP, "The most audit records one spool fsync has covered since start-up");
    audit_spool_bytes: IntGauge = (AUDIT_SPOOL_BYTES, "Bytes of audit records spooled and not yet shipped, queued appends included: what max_spool_bytes is checked against");
    audit_spool_limit_bytes: IntGauge = (AUDIT_SPOOL_LIMIT_BYTES, "The audit spool's max_spool_bytes: at it, writes to audited tables get a retryable 503");
    /// Audit records the audit table refused one by one after bounded tries, set aside in
    /// the spool's quarantine file instead of blocking the records behind them.
    audit_quarantined: IntCounter = (AUDIT_QUARANTINED_TOTAL, "Audit records the audit table refused (a ValidationException of their own), set aside in the spool's quarantine.jsonl after bounded tries");
    /// Damaged records skipped when the spool was replayed at start-up (each lost).
    audit_spool_corrupt_records: IntCounter = (AUDIT_SPOOL_CORRUPT_RECORDS_TOTAL, "Damaged audit records skipped when the spool was replayed at start-up; the records around them are kept");
    /// Requests refused by the signature check, by reason.
    auth_failures: IntCounterVec = (AUTH_FAILURES_TOTAL, "Requests refused by the SigV4 check, by reason", ["reason"]);
    /// Requests refused at once because `[limits] max_in_flight` were in flight.
    requests_shed: IntCounter = (REQUESTS_SHED_TOTAL, "Requests answered 503 at once because [limits] max_in_flight were in flight");
    /// Requests ended after two attempts answered with the same server error.
    poison_requests: IntCounter = (POISON_REQUESTS_TOTAL, "Requests answered with a region's server error without further attempts, because two attempts were answered with the same one (the request's fault, not the region's)");
    /// Server errors not counted toward a region's ejection: the same request failing again.
    repeated_server_errors: IntCounter = (REPEATED_SERVER_ERRORS_TOTAL, "Server errors a region answered that its health did not count, because the last one it counted was of the same request");
    /// Requests refused before anything was sent because of what they name, by reason.
    policy_refusals: IntCounterVec = (POLICY_REFUSALS_TOTAL, "Requests refused before anything was sent because of the tables they name (audit_table: the audit trail's own table, by any name, ARN or statement)", ["reason"]);
    /// 1 for the region writes go to under `write_failover = "manual"`.
    write_region: IntGaugeVec = (WRITE_REGION, "1 for the region writes go to under write_failover = \"manual\", 0 for the others", ["region"]);
    /// Items and keys a batch handed back unprocessed, by table.
    unprocessed_items: IntCounterVec = (UNPROCESSED_ITEMS_TOTAL, "Items (BatchWriteItem) and keys (BatchGetItem) the region handed back unprocessed, by table", ["table"]);
    /// Fetches of the sidecar's own credentials, by result.
    credential_refreshes: IntCounterVec = (CREDENTIAL_REFRESHES_TOTAL, "Fetches of the sidecar's own credentials from the config or the default chain, by result", ["result"]);
    /// Bytes of request bodies held now (set at scrape time) and the budget.
    body_memory_bytes: IntGauge = (BODY_MEMORY_BYTES, "Bytes of request bodies held in memory now, across every connection");
    body_memory_limit_bytes: IntGauge = (BODY_MEMORY_LIMIT_BYTES, "[server] max_body_memory_bytes: past it, requests get a retryable 503 at once");
    /// Requests answered 503 because their body would pass the budget.
    body_memory_refusals: IntCounter = (BODY_MEMORY_REFUSALS_TOTAL, "Requests answered 503 because their body would pass [server] max_body_memory_bytes");
    /// Connections closed at the cap to make room for a new one, by `listener` and `state`.
    connections_evicted: IntCounterVec = (CONNECTIONS_EVICTED_TOTAL, "Connections closed at the cap to make room for a new one, by listener and what they were doing (silent: no request yet; idle: between requests)", ["listener", "state"]);
    /// Connections closed for sending no request head within the (adaptive) header
    /// timeout, by `listener`.
    header_timeouts: IntCounterVec = (HEADER_TIMEOUTS_TOTAL, "Connections closed for sending no request head within the header timeout, which shortens as the listener nears its cap", ["listener"]);
    /// Idle connections to regions closed by the background sweep.
    upstream_idle_closed: IntCounter = (UPSTREAM_IDLE_CLOSED_TOTAL, "Idle connections to regions closed by the background sweep ([upstream] idle_timeout_ms)");
    /// Gray failures (`route::hedge`, `region::latency`): eventually consistent reads, the
    /// hedges among them, demotions for slowness and failback ramps.
    eventual_reads: IntCounter = (EVENTUAL_READS_TOTAL, "Eventually consistent reads forwarded: the reads that may be hedged, demoted away from a slow region and ramped");
    hedges: IntCounterVec = (HEDGES_TOTAL, "Hedges sent: a read its first region (from) had not answered after the hedge delay, sent to the next region (to) as well", ["from", "to"]);
    hedges_won: IntCounterVec = (HEDGES_WON_TOTAL, "Hedges whose answer the client got, the first region's attempt cancelled", ["from", "to"]);
    hedge_budget_exhausted: IntCounter = (HEDGE_BUDGET_EXHAUSTED_TOTAL, "Hedges not sent when due because the hedge budget was empty");
    read_demoted: IntGaugeVec = (REGION_READ_DEMOTED, "1 while the region is demoted for eventually consistent reads for being slow (it still takes writes)", ["region"]);
    read_demotions: IntCounterVec = (REGION_READ_DEMOTIONS_TOTAL, "Times the region was demoted for eventually consistent reads for being slow", ["region"]);
    read_share: GaugeVec = (REGION_READ_SHARE, "Share of eventually consistent reads the failback ramp lets the region take first: rising from 0 to 1 after a readmission", ["region"]);
    ramps: IntCounterVec = (REGION_RAMPS_TOTAL, "Failback ramps started: the region readmitted, or no longer demoted, and taking reads back gradually", ["region"]);
    /// 1 once the readiness gate opened (`readiness`): credentials, and every managed table
    /// accepted by a region.
    ready: IntGauge = (READY, "1 once the sidecar has credentials and a region accepted a signed request to each managed table; /readyz is 503 before");
    /// Signed checks a region refused for who signed them, by region and error name.
    readiness_refusals: IntCounterVec = (READINESS_REFUSALS_TOTAL, "Readiness checks refused for the sidecar's credentials or permissions, by region and error (AccessDeniedException, UnrecognizedClientException, NoCredentials, ...)", ["region", "error"]);
}

impl Metrics {
    /// Every metric of the table above, registered, and the few set once at start.
    pub fn new() -> Result<Self, prometheus::Error> {
        let metrics = Self::register(Registry::new())?;
        let build_info = <IntGaugeVec as Register>::register(
            &metrics.registry,
            BUILD_INFO,
            "Always 1; the version of the running binary",
            &["version"],
        )?;
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        // Series that exist from the start, so an alert's rate() has a baseline.
        for listener in LISTENERS {
            metrics.header_timeouts.with_label_values(&[listener]);
            for state in EVICTED_STATES {
                metrics
                    .connections_evicted
                    .with_label_values(&[listener, state]);
            }
        }
        #[cfg(target_os = "linux")]
        metrics.registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        Ok(metrics)
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
