//! What the regions' health counters are told and what they tell back: each attempt's
//! outcome (from live traffic or a probe) fed into its region's [`RegionHealth`], and each
//! ejection and readmission that follows logged, counted, published as
//! `globalscale_region_healthy`, and kept for `/status`.
//!
//! [`RegionHealth`]: crate::region::RegionHealth

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use super::{AttemptOutcome, Transition};
use crate::metrics::Metrics;
use crate::region::Region;

/// Ejections and readmissions `/status` keeps.
const EVENTS_KEPT: usize = 50;

/// A region's change of health, as `/status` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RegionEvent {
    /// RFC 3339, UTC.
    pub at: String,
    pub region: String,
    /// `ejected` or `readmitted`.
    pub event: &'static str,
    /// The outcome that tipped it.
    pub reason: &'static str,
}

/// The bookkeeping of the regions' health; outlives snapshots.
pub struct HealthLog {
    metrics: Metrics,
    /// The latest ejections and readmissions, newest last.
    events: Mutex<VecDeque<RegionEvent>>,
}

impl HealthLog {
    pub fn new(metrics: Metrics) -> Self {
        Self {
            metrics,
            events: Mutex::new(VecDeque::new()),
        }
    }

    /// One attempt of live traffic: counted by region, operation and outcome, timed, and
    /// fed into the region's health.
    pub fn attempt(
        &self,
        region: &Region,
        operation: &str,
        outcome: AttemptOutcome,
        elapsed: Option<Duration>,
        started: Instant,
    ) {
        self.count(region, operation, outcome, elapsed);
        self.outcome(region, outcome, elapsed, started);
    }

    /// One attempt of live traffic counted and timed, but not fed into the region's health:
    /// a failure that says more about the request than about the region (the same request
    /// failing again).
    pub fn count(
        &self,
        region: &Region,
        operation: &str,
        outcome: AttemptOutcome,
        elapsed: Option<Duration>,
    ) {
        region.health.note_live_outcome();
        self.metrics
            .upstream_requests
            .with_label_values(&[&region.name, operation, outcome.label()])
            .inc();
        if let Some(elapsed) = elapsed {
            self.metrics
                .upstream_duration
                .with_label_values(&[&region.name])
                .observe(elapsed.as_secs_f64());
        }
    }

    /// Feeds one outcome, from live traffic or a probe, of an attempt sent at `started`,
    /// into the region's health.
    pub fn outcome(
        &self,
        region: &Region,
        outcome: AttemptOutcome,
        elapsed: Option<Duration>,
        started: Instant,
    ) {
        let transition = match outcome.as_failure() {
            Some(failure) => region.health.record_failure(failure, started),
            None => region
                .health
                .record_success(elapsed.unwrap_or_default(), started),
        };
        if let Some(transition) = transition {
            self.on_transition(region, transition, outcome);
        }
    }

    /// Logs, keeps and publishes a change of a region's health; `outcome` tipped it.
    fn on_transition(&self, region: &Region, transition: Transition, outcome: AttemptOutcome) {
        let event = match transition {
            Transition::Ejected => {
                tracing::warn!(region = %region.name, last_outcome = outcome.label(), "region ejected");
                self.metrics
                    .region_ejections
                    .with_label_values(&[&region.name, outcome.label()])
                    .inc();
                "ejected"
            }
            Transition::Readmitted => {
                tracing::info!(region = %region.name, "region readmitted");
                "readmitted"
            }
        };
        {
            let mut events = self.events.lock().unwrap_or_else(PoisonError::into_inner);
            if events.len() == EVENTS_KEPT {
                events.pop_front();
            }
            events.push_back(RegionEvent {
                at: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
                region: region.name.clone(),
                event,
                reason: outcome.label(),
            });
        }
        self.publish(std::slice::from_ref(region));
    }

    /// Sets `globalscale_region_healthy` for `regions`.
    pub fn publish(&self, regions: &[Region]) {
        for region in regions {
            self.metrics
                .region_healthy
                .with_label_values(&[&region.name])
                .set(i64::from(region.health.is_healthy()));
        }
    }

    /// The kept ejections and readmissions, newest first.
    pub fn events(&self) -> Vec<RegionEvent> {
        let events = self.events.lock().unwrap_or_else(PoisonError::into_inner);
        events.iter().rev().cloned().collect()
    }
}
