//! Series whose labels are known from the config are exported at zero from start-up (and
//! after a reload), as Prometheus's instrumentation guide asks: a dashboard or an alert then
//! sees a zero before the first failover, conflict or refusal, not a gap that `rate()` and
//! `absent()` read differently.
//!
//! `globalscale_upstream_requests_total` is left to appear with traffic: its operation label
//! alone has some fifty values, and a zero for each, region and outcome is noise.

use super::{Proxy, REFUSAL_REASONS};
use crate::auth::AuthError;
use crate::config::AuthMode;
use crate::route::AttemptOutcome;

impl Proxy {
    pub(crate) fn init_series(&self) {
        let snapshot = self.snapshot.load();
        let m = &self.metrics;
        let regions: Vec<&str> = snapshot.regions.iter().map(|r| r.name.as_str()).collect();
        for region in &regions {
            for outcome in AttemptOutcome::ALL {
                m.probes.with_label_values(&[region, outcome.label()]);
                if outcome.as_failure().is_some() {
                    m.region_ejections
                        .with_label_values(&[region, outcome.label()]);
                }
            }
            for to in regions.iter().filter(|to| *to != region) {
                m.failovers.with_label_values(&[region, to]);
                m.hedges.with_label_values(&[region, to]);
                m.hedges_won.with_label_values(&[region, to]);
            }
            m.read_demotions.with_label_values(&[region]);
            m.ramps.with_label_values(&[region]);
        }
        for table in &snapshot.config.tables {
            m.unprocessed_items.with_label_values(&[&table.name]);
            if table.version_attribute.is_some() {
                m.version_conflicts.with_label_values(&[&table.name]);
            }
        }
        for verdict in ["own_write", "condition_failed", "answered", "unknown"] {
            m.write_verifications.with_label_values(&[verdict]);
        }
        for result in ["success", "failure"] {
            m.config_reloads.with_label_values(&[result]);
            m.credential_refreshes.with_label_values(&[result]);
        }
        for reason in REFUSAL_REASONS {
            m.policy_refusals.with_label_values(&[reason]);
        }
        if self.audit.is_some() {
            for outcome in ["spooled", "shipped", "failed"] {
                m.audit_records.with_label_values(&[outcome]);
            }
        }
        if snapshot.config.auth.mode == AuthMode::Sigv4 {
            for reason in AuthError::REASONS {
                m.auth_failures.with_label_values(&[reason]);
            }
        }
    }
}
