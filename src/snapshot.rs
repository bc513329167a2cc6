//! The policy snapshot: everything a request needs to know, built once from a validated
//! [`Config`] and swapped in whole (arc-swap) on reload, so a request sees one consistent
//! config from start to end and readers never wait.

use std::collections::HashMap;
use std::sync::Arc;

use http::HeaderValue;

use crate::access::Allowed;
use crate::auth::{ClientKey, Verifier};
use crate::config::{AuthMode, Config, REGION_PLACEHOLDER};
use crate::metrics::OTHER;
pub use crate::region::Region;
use crate::region::RegionHealth;
use crate::route::RetryBudget;
use crate::route::hedge::HedgeBudget;
use crate::route::select::RegionView;
use crate::tables::References;
use crate::upstream::sign::Signer;
use crate::upstream::{Transport, Upstream};

pub use crate::config::Policies;

/// Compiles the config's tables into policies: `key_prefix` resolved (`{region}` is the
/// home region, the first configured) and the key schemas `previous` learned kept, unless the
/// file now says otherwise.
pub fn policies(config: &Config, previous: Option<&Policies>) -> Policies {
    let home = config.regions.first().map_or("", |r| r.name.as_str());
    let mut policies = config
        .tables
        .iter()
        .map(|t| {
            let mut table = t.clone();
            table.key_prefix = t
                .key_prefix
                .as_ref()
                .map(|p| p.replace(REGION_PLACEHOLDER, home));
            if let Some(learned) = previous.and_then(|p| p.get(&t.name)) {
                table.arn.clone_from(&learned.arn);
                table.partition_key = table
                    .partition_key
                    .or_else(|| learned.partition_key.clone());
                table.sort_key = table.sort_key.or_else(|| learned.sort_key.clone());
                if table.partition_key == learned.partition_key
                    && table.sort_key == learned.sort_key
                {
                    table.key_types = learned.key_types;
                }
            }
            (t.name.clone(), table)
        })
        .collect::<Policies>();
    // Made last, from the policies as they are now: a plan checks them against the config
    // before sharing them, so one a learned key schema outdates is never used.
    let names: Vec<String> = policies.keys().cloned().collect();
    for name in names {
        let shared = crate::plan::Shared::of(&policies, &name);
        if let Some(policy) = policies.get_mut(&name) {
            policy.shared = shared;
        }
    }
    policies
}

/// The metric label for a request's tables: the managed table it names, or `other`.
pub fn table_label<'a>(policies: &'a Policies, tables: &[String]) -> &'a str {
    tables
        .iter()
        .find_map(|t| policies.get_key_value(t).map(|(k, _)| k.as_str()))
        .unwrap_or(OTHER)
}

/// [`table_label`] for a whole request: the tables of its fields first, then a managed table
/// its PartiQL statements name (in their text, so it is not among the fields'). Unmanaged
/// tables stay `other`: the label's values are bounded by the config, not by clients.
pub fn request_table_label<'a>(
    policies: &'a Policies,
    tables: &[String],
    refs: &References,
) -> &'a str {
    match table_label(policies, tables) {
        OTHER => policies
            .keys()
            .filter(|name| refs.statements_naming(name).next().is_some())
            .min()
            .map_or(OTHER, String::as_str),
        label => label,
    }
}

#[derive(Clone)]
pub struct Snapshot {
    pub config: Config,
    pub regions: Vec<Region>,
    /// The way out to the regions (the connection pools, or a scripted region in tests).
    pub upstream: Arc<dyn Transport>,
    /// The sidecar's credentials; replaced on reload only when the config changes them.
    pub signer: Signer,
    /// The managed tables' policies: the config's, with key schemas learned with
    /// DescribeTable and `key_prefix` resolved (`{region}` is the home region).
    pub tables: Policies,
    /// Shared with every later snapshot: a reload neither refills nor forgets it.
    pub retry_budget: Arc<RetryBudget>,
    /// The hedge budget (`route::hedge`); shared with every later snapshot like the retry
    /// budget.
    pub hedge_budget: Arc<HedgeBudget>,
    /// The table allow-lists of the `[[clients]]` that have one, by client name.
    pub access: HashMap<String, Allowed>,
    /// Checks client signatures with `[auth] mode = "sigv4"`.
    pub verifier: Option<Arc<Verifier>>,
    /// 1 for the config read at start, one more for each reload swapped in.
    pub generation: u64,
    pub loaded_at: std::time::SystemTime,
}

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("region {region}: endpoint has no usable host")]
    Host { region: String },
    #[error("TLS setup: {0}")]
    Tls(#[from] rustls::Error),
}

impl Snapshot {
    pub fn build(
        config: Config,
        signer: Signer,
        previous: Option<&Snapshot>,
    ) -> Result<Self, SnapshotError> {
        let regions = config
            .regions
            .iter()
            .map(|r| {
                let host = r
                    .endpoint
                    .authority()
                    .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
                    .ok_or_else(|| SnapshotError::Host {
                        region: r.name.clone(),
                    })?;
                let health = previous
                    .and_then(|p| {
                        p.regions
                            .iter()
                            .find(|old| old.name == r.name && old.endpoint == r.endpoint)
                    })
                    .map_or_else(
                        || {
                            Arc::new(RegionHealth::new(
                                config.routing.eject_after_failures,
                                config.routing.readmit_after_successes,
                            ))
                        },
                        |old| Arc::clone(&old.health),
                    );
                Ok(Region {
                    name: r.name.clone(),
                    label: crate::region::RegionLabel::new(&r.name),
                    endpoint: r.endpoint.clone(),
                    host,
                    health,
                })
            })
            .collect::<Result<Vec<_>, SnapshotError>>()?;
        let tables = policies(&config, previous.map(|p| &p.tables));
        let upstream = Arc::new(Upstream::new(&config.timeouts, config.tls_roots)?);
        // Resized only once nothing above can fail, so a refused reload leaves it alone.
        let retry_budget = previous.map_or_else(
            || Arc::new(RetryBudget::new(config.routing.retry_budget)),
            |p| {
                p.retry_budget.resize(config.routing.retry_budget);
                Arc::clone(&p.retry_budget)
            },
        );
        let hedge_budget = previous.map_or_else(Arc::default, |p| Arc::clone(&p.hedge_budget));
        let access = config
            .auth
            .clients
            .iter()
            .filter_map(|c| Some((c.name.clone(), Allowed::new(c.tables.clone()?))))
            .collect();
        let verifier = (config.auth.mode == AuthMode::Sigv4).then(|| {
            let keys = config.auth.clients.iter().map(|c| ClientKey {
                name: c.name.clone(),
                access_key_id: c.access_key_id.clone(),
                secret_access_key: c.secret_access_key.clone(),
            });
            Arc::new(Verifier::new(keys.collect()))
        });
        Ok(Self {
            config,
            regions,
            upstream,
            signer,
            tables,
            retry_budget,
            hedge_budget,
            access,
            verifier,
            generation: previous.map_or(1, |p| p.generation + 1),
            loaded_at: std::time::SystemTime::now(),
        })
    }

    /// What selection needs of each region, in config order.
    pub fn region_views(&self) -> crate::route::PerRegion<RegionView> {
        self.regions
            .iter()
            .map(|r| RegionView {
                healthy: r.health.is_healthy(),
                latency: r.health.latency(),
                fails_slowly: r.health.fails_slowly(),
                fast_reads: !r.health.reads.is_demoted(),
                ramp: r
                    .health
                    .reads
                    .ramp_share(self.config.routing.reads.failback_ramp),
            })
            .collect()
    }

    /// The configured regions' names, home first.
    pub fn region_names(&self) -> Vec<&str> {
        self.regions.iter().map(|r| r.name.as_str()).collect()
    }

    pub fn any_region_healthy(&self) -> bool {
        self.regions.iter().any(|r| r.health.is_healthy())
    }
}
