//! `globalscale check-config`: what a config promises, once start-up has loaded it. The
//! binary loads the file exactly as the serving sidecar does (the same path, the same
//! environment overrides), so the answer holds for the process a deployment would start;
//! nothing here binds a port, contacts a region or creates the spool directory, so it runs
//! anywhere the file and the environment can be reproduced (a CI job, `kubectl exec`).
//!
//! The summary is a pure function of the validated [`Config`]: `{region}` in a `key_prefix`
//! is resolved by the same [`policies`] the serving snapshot uses.

use std::io;
use std::net::SocketAddr;
use std::path::Path;

use serde::Serialize;

use crate::config::{
    AuditConfig, AuditImages, AuditMode, AuthMode, Config, CredentialsConfig, RegionConfig,
    RoutingPolicy, TableConfig, WriteFailover,
};
use crate::snapshot::policies;

/// The effective promises of one config, as `check-config` prints them.
#[derive(Debug, Serialize)]
pub struct Summary<'c> {
    /// The first region: where writes go while it is healthy, and what `{region}` means.
    pub home_region: &'c str,
    /// In order of preference.
    pub regions: Vec<RegionSummary<'c>>,
    pub tables: Vec<TableSummary<'c>>,
    /// `None` when no table is audited.
    pub audit: Option<AuditSummary<'c>>,
    pub routing: RoutingSummary,
    pub auth: AuthSummary<'c>,
    /// Where the sidecar's own AWS credentials come from: `default_chain` or `static`.
    pub upstream_credentials: &'static str,
    pub listen: SocketAddr,
    pub admin_listen: SocketAddr,
}

#[derive(Debug, Serialize)]
pub struct RegionSummary<'c> {
    pub name: &'c str,
    pub endpoint: String,
    /// Whether the endpoint is other than the region's public AWS one (DynamoDB Local, a
    /// VPC endpoint, a proxy).
    pub custom_endpoint: bool,
}

#[derive(Debug, Serialize)]
pub struct TableSummary<'c> {
    pub name: &'c str,
    pub partition_key: Option<&'c str>,
    pub sort_key: Option<&'c str>,
    /// The prefix every partition key is stored behind, resolved for the home region.
    pub key_prefix: Option<String>,
    /// `key_prefix` as written (`{region}#`).
    pub key_prefix_template: Option<&'c str>,
    pub version_attribute: Option<&'c str>,
    pub audit: bool,
}

#[derive(Debug, Serialize)]
pub struct AuditSummary<'c> {
    pub table: &'c str,
    /// `spooled` or `atomic`.
    pub mode: &'static str,
    /// A relative one joined to the config file's directory, as start-up does.
    pub spool_dir: &'c Path,
    pub max_spool_bytes: u64,
    /// `none`, `new` or `new_and_old`.
    pub images: &'static str,
}

#[derive(Debug, Serialize)]
pub struct RoutingSummary {
    /// `ordered` or `latency`.
    pub policy: &'static str,
    /// `auto` or `manual`.
    pub write_failover: &'static str,
}

#[derive(Debug, Serialize)]
pub struct AuthSummary<'c> {
    /// `none` or `sigv4`.
    pub mode: &'static str,
    /// The names of the `[[clients]]`; never their keys.
    pub clients: Vec<&'c str>,
    /// Whether the admin port's actions are on (`[admin] token` set); never the token.
    pub admin_actions: bool,
}

/// What `config` promises, with every placeholder resolved.
pub fn summary(config: &Config) -> Summary<'_> {
    let resolved = policies(config, None);
    Summary {
        home_region: config.regions.first().map_or("", |r| r.name.as_str()),
        regions: config.regions.iter().map(region).collect(),
        tables: config
            .tables
            .iter()
            .map(|t| table(t, resolved.get(&t.name)))
            .collect(),
        audit: config.audit.as_ref().map(audit),
        routing: RoutingSummary {
            policy: match config.routing.policy {
                RoutingPolicy::Ordered => "ordered",
                RoutingPolicy::Latency => "latency",
            },
            write_failover: match config.routing.write_failover {
                WriteFailover::Auto => "auto",
                WriteFailover::Manual => "manual",
            },
        },
        auth: AuthSummary {
            mode: match config.auth.mode {
                AuthMode::None => "none",
                AuthMode::Sigv4 => "sigv4",
            },
            clients: config
                .auth
                .clients
                .iter()
                .map(|c| c.name.as_str())
                .collect(),
            admin_actions: config.admin_token.is_some(),
        },
        upstream_credentials: match config.credentials {
            CredentialsConfig::DefaultChain => "default_chain",
            CredentialsConfig::Static { .. } => "static",
        },
        listen: config.listen,
        admin_listen: config.admin_listen,
    }
}

/// Prints the summary of `config` as pretty JSON, one document ending in a newline.
pub fn print(config: &Config, out: &mut impl io::Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, &summary(config))?;
    writeln!(out)
}

fn region(r: &RegionConfig) -> RegionSummary<'_> {
    let public = format!("https://dynamodb.{}.amazonaws.com", r.name)
        .parse::<http::Uri>()
        .ok();
    RegionSummary {
        name: &r.name,
        endpoint: r.endpoint.to_string(),
        custom_endpoint: public.as_ref() != Some(&r.endpoint),
    }
}

fn table<'c>(t: &'c TableConfig, resolved: Option<&TableConfig>) -> TableSummary<'c> {
    TableSummary {
        name: &t.name,
        partition_key: t.partition_key.as_deref(),
        sort_key: t.sort_key.as_deref(),
        key_prefix: resolved.and_then(|r| r.key_prefix.clone()),
        key_prefix_template: t.key_prefix.as_deref(),
        version_attribute: t.version_attribute.as_deref(),
        audit: t.audit,
    }
}

fn audit(a: &AuditConfig) -> AuditSummary<'_> {
    AuditSummary {
        table: &a.table,
        mode: match a.mode {
            AuditMode::Spooled => "spooled",
            AuditMode::Atomic => "atomic",
        },
        spool_dir: &a.spool_dir,
        max_spool_bytes: a.max_spool_bytes,
        images: match a.images {
            AuditImages::None => "none",
            AuditImages::New => "new",
            AuditImages::NewAndOld => "new_and_old",
        },
    }
}

#[cfg(test)]
mod tests;
