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
use crate::config::RoutingConfig;
use crate::metrics::Metrics;
use crate::region::latency::Judge;
use crate::region::{ReadKind, ReadSample, ReadTransition, Region};
use crate::snapshot::Snapshot;

/// Ejections and readmissions `/status` keeps.
const EVENTS_KEPT: usize = 50;

/// A region's change of health, as `/status` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RegionEvent {
    /// RFC 3339, UTC.
    pub at: String,
    pub region: String,
    /// `ejected` or `readmitted`; for eventually consistent reads, `demoted` (slow) or
    /// `restored`.
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

    /// An attempt sent at nothing's request any more: a hedge's loser, cancelled. Counted
    /// under `outcome="cancelled"`, so every attempt sent shows once.
    pub fn cancelled(&self, region: &Region, operation: &str) {
        self.metrics
            .upstream_requests
            .with_label_values(&[&region.name, operation, "cancelled"])
            .inc();
    }

    /// One eventually consistent read of `kind` sent at `started` (live, or a probe) in
    /// `region`, one of `snapshot`'s: its latency, or that it was still unanswered at the slow
    /// threshold, judged against the region's own baseline (and, before a demoted region
    /// relearns it, beside the others that serve reads); a demotion or restoration that
    /// follows is logged and counted.
    pub fn read(
        &self,
        snapshot: &Snapshot,
        region: &Region,
        kind: ReadKind,
        sample: ReadSample,
        started: Instant,
    ) {
        let others = snapshot
            .regions
            .iter()
            .filter(|other| other.name != region.name && other.health.serves_reads())
            .map(|other| &other.health.reads);
        let judge = judge(&snapshot.config.routing);
        let Some(transition) = region
            .health
            .reads
            .record(kind, sample, started, &judge, others)
        else {
            return;
        };
        let (event, reason) = match transition {
            ReadTransition::Demoted => {
                tracing::warn!(region = %region.name, "region demoted for eventually consistent reads: most reads slower than its baseline");
                self.metrics
                    .read_demotions
                    .with_label_values(&[&region.name])
                    .inc();
                ("demoted", "slow_reads")
            }
            ReadTransition::Restored => {
                tracing::info!(region = %region.name, "region restored for eventually consistent reads");
                ("restored", "fast_reads")
            }
        };
        self.keep(region, event, reason);
        self.publish(std::slice::from_ref(region));
    }

    /// A ramp started for `region` (its readmission or restoration).
    fn ramp_started(&self, region: &Region) {
        self.metrics.ramps.with_label_values(&[&region.name]).inc();
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
        self.keep(region, event, outcome.label());
        self.publish(std::slice::from_ref(region));
    }

    /// Keeps an event for `/status`; a region that takes reads again starts its ramp.
    fn keep(&self, region: &Region, event: &'static str, reason: &'static str) {
        if matches!(event, "readmitted" | "restored") && region.health.serves_reads() {
            self.ramp_started(region);
        }
        let mut events = self.events.lock().unwrap_or_else(PoisonError::into_inner);
        if events.len() == EVENTS_KEPT {
            events.pop_front();
        }
        events.push_back(RegionEvent {
            at: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
            region: region.name.clone(),
            event,
            reason,
        });
    }

    /// Sets `globalscale_region_healthy` and `globalscale_region_read_demoted` for `regions`.
    pub fn publish(&self, regions: &[Region]) {
        for region in regions {
            self.metrics
                .region_healthy
                .with_label_values(&[&region.name])
                .set(i64::from(region.health.is_healthy()));
            self.metrics
                .read_demoted
                .with_label_values(&[&region.name])
                .set(i64::from(region.health.reads.is_demoted()));
        }
    }

    /// Sets `globalscale_region_read_share` for `regions`: the ramp moves with the clock, so
    /// it is read at scrape time.
    pub fn publish_shares(&self, regions: &[Region], ramp: std::time::Duration) {
        for region in regions {
            self.metrics
                .read_share
                .with_label_values(&[&region.name])
                .set(region.health.reads.ramp_share(ramp));
        }
    }

    /// The kept ejections, readmissions, demotions and restorations, newest first.
    pub fn events(&self) -> Vec<RegionEvent> {
        let events = self.events.lock().unwrap_or_else(PoisonError::into_inner);
        events.iter().rev().cloned().collect()
    }
}

/// The read judgement's settings from the config.
pub fn judge(routing: &RoutingConfig) -> Judge {
    Judge {
        factor: routing.reads.demote_factor,
        margin: routing.reads.demote_margin,
        readmit_after: routing.readmit_after_successes,
    }
}
