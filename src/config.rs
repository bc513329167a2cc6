//! The configuration file: raw `#[serde(deny_unknown_fields)]` structs as written, environment
//! overrides for containers, then validation into the immutable [`Config`] the rest of the
//! sidecar reads. Every message names the key it is about.
//!
//! Environment overrides (applied over the file):
//! - `GLOBALSCALE_LISTEN`, `GLOBALSCALE_ADMIN_LISTEN`: the two listen addresses;
//! - `DDB_REGIONS=us-east-1,us-west-2`: the region list, home region first; an entry may be
//!   `name=endpoint`, and a bare name keeps the endpoint the file gives that region.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

mod audit;
mod auth;
mod cors;
mod raw;
mod reads;
mod server;

pub use audit::{AuditConfig, AuditImages, AuditMode};
pub use auth::{AuthConfig, AuthMode, ClientConfig, LimitsConfig};
use raw::{
    RawConfig, RawCredentials, RawRegion, RawRouting, RawTable, RawTimeouts, RawUpstream,
    apply_env, parse_raw,
};
pub use reads::ReadRouting;
pub use server::{DEFAULT_MAX_BODY_MEMORY_BYTES, ServerConfig};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid config: {0}")]
    Syntax(#[from] toml::de::Error),
    #[error("invalid config key `{key}`: {message}")]
    Parse { key: String, message: String },
    #[error("invalid config key `{key}`: {message}")]
    Invalid { key: String, message: String },
    #[error(
        "config key `{key}` asks for {feature}, which this version of globalscale does not provide yet; remove the key to start"
    )]
    NotYetAvailable { key: String, feature: &'static str },
}

fn invalid(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        message: message.into(),
    }
}

/// The validated configuration, immutable once built.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub admin_listen: SocketAddr,
    pub credentials: CredentialsConfig,
    /// In order of preference; the first is the home region.
    pub regions: Vec<RegionConfig>,
    pub tables: Vec<TableConfig>,
    pub timeouts: Timeouts,
    pub routing: RoutingConfig,
    pub tls_roots: TlsRoots,
    pub server: ServerConfig,
    /// Where audit records go; `None` when no table is audited.
    pub audit: Option<AuditConfig>,
    pub auth: AuthConfig,
    pub limits: LimitsConfig,
    /// The bearer token of the admin port's actions; `None` turns them off.
    pub admin_token: Option<AdminToken>,
    /// `[cors] allowed_origins`: the web pages that may read the answers.
    pub cors: crate::server::cors::AllowedOrigins,
}

/// `[admin] token`; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminToken(String);

impl AdminToken {
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(..)")
    }
}

/// Which certificate authorities upstream TLS trusts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsRoots {
    /// The Mozilla roots compiled into the binary: the same everywhere, but blind to a
    /// corporate TLS-inspecting proxy or a private CA in front of a VPC endpoint.
    Webpki,
    /// The operating system's store (`SSL_CERT_FILE`, `SSL_CERT_DIR`, or the distribution's
    /// bundle): what the machine's administrators decided to trust.
    System,
    /// Both: an endpoint is trusted when either set vouches for it.
    Both,
}

/// Where the sidecar's own upstream credentials come from.
#[derive(Clone, PartialEq, Eq)]
pub enum CredentialsConfig {
    /// The AWS default chain: environment, web identity (IRSA), ECS, IMDS, profiles.
    DefaultChain,
    Static {
        access_key_id: String,
        secret_access_key: String,
        session_token: Option<String>,
    },
}

impl std::fmt::Debug for CredentialsConfig {
    // Never print a secret, even in a debug log of the whole config.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::DefaultChain => f.write_str("DefaultChain"),
            Self::Static { access_key_id, .. } => f
                .debug_struct("Static")
                .field("access_key_id", access_key_id)
                .finish_non_exhaustive(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionConfig {
    pub name: String,
    pub endpoint: http::Uri,
    /// Where the region serves the DynamoDB Streams API:
    /// `https://streams.dynamodb.<region>.amazonaws.com` unless configured.
    pub streams_endpoint: http::Uri,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableConfig {
    pub name: String,
    /// Learned with DescribeTable at start when the file does not give it.
    pub partition_key: Option<String>,
    pub sort_key: Option<String>,
    /// The types of the partition and sort keys, learned with DescribeTable at start (the
    /// health probe reads a key of the right type).
    pub key_types: Option<(crate::wire::ScalarType, Option<crate::wire::ScalarType>)>,
    /// `key_prefix` as written (`"{region}#"`): every partition key is stored behind it.
    pub key_prefix: Option<String>,
    /// The number attribute every write checks and increments (optimistic locking).
    pub version_attribute: Option<String>,
    /// Every accepted write leaves a record in the `[audit]` table.
    pub audit: bool,
    /// The partition, account and region of the table's own ARN, learned with
    /// DescribeTable: an ARN naming the table must agree with it.
    pub arn: Option<ArnScope>,
    /// What plans take of this table, made once per snapshot (`snapshot::policies`).
    pub shared: crate::plan::Shared,
}

/// The managed tables' policies, by name.
pub type Policies = std::collections::HashMap<String, TableConfig>;

/// Where a managed table lives, as its own ARN (from `DescribeTable`) says: an ARN naming
/// it must agree, or it names another account's table of the same name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArnScope {
    pub partition: String,
    pub account: String,
    /// The region of the ARN it was learned from and the table's replica regions; the
    /// configured regions count too.
    pub regions: Vec<String>,
}

impl ArnScope {
    /// Adds the regions of a global table's other replicas.
    #[must_use]
    pub fn with_replicas<'r>(mut self, regions: impl IntoIterator<Item = &'r str>) -> Self {
        for region in regions {
            if !self.regions.iter().any(|r| r == region) {
                self.regions.push(region.to_owned());
            }
        }
        self
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub connect: Duration,
    /// One try against one region, from sending to the last byte of the answer.
    pub attempt: Duration,
    /// The whole request, across every region tried.
    pub request: Duration,
    /// `[upstream] idle_timeout_ms`: an idle connection to a region is closed after this,
    /// by a background sweep as well as when the next request would take it.
    pub upstream_idle: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoutingPolicy {
    /// The first healthy region in config order: traffic stays home.
    Ordered,
    /// The healthy region with the lowest latency average; ties by config order.
    Latency,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RoutingConfig {
    pub policy: RoutingPolicy,
    pub max_attempts: u32,
    pub probe_interval: Duration,
    pub probe_timeout: Duration,
    pub eject_after_failures: u32,
    pub readmit_after_successes: u32,
    /// Tokens in the shared retry budget (`route::budget`); 0 = no retry after an error
    /// answer or a timeout, only moves after refused connections.
    pub retry_budget: u32,
    pub write_failover: WriteFailover,
    /// Hedging, latency demotion and the failback ramp of eventually consistent reads.
    pub reads: ReadRouting,
}

/// Whether writes follow reads to another region when the write region fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteFailover {
    /// Writes move like reads.
    Auto,
    /// Writes stay on the write region until an operator moves them (`POST
    /// /admin/write-region`).
    Manual,
}

impl Config {
    /// Reads the file at `path` and applies the process environment's overrides.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let mut config = Self::from_toml_with_env(&text, |name| std::env::var(name).ok())?;
        // A relative spool directory belongs to the config file, not to wherever the
        // process happened to start.
        if let (Some(audit), Some(dir)) = (&mut config.audit, path.parent())
            && audit.spool_dir.is_relative()
        {
            audit.spool_dir = dir.join(&audit.spool_dir);
        }
        Ok(config)
    }

    /// Parses and validates a config without looking at the environment.
    pub fn from_toml_str(text: &str) -> Result<Self, ConfigError> {
        Self::from_toml_with_env(text, |_| None)
    }

    /// Parses, applies overrides from `env`, and validates.
    pub fn from_toml_with_env(
        text: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut raw = parse_raw(text)?;
        apply_env(&mut raw, &env)?;
        raw.try_into()
    }

    /// The configured table called `name`, if the sidecar manages it.
    pub fn table(&self, name: &str) -> Option<&TableConfig> {
        self.tables.iter().find(|t| t.name == name)
    }
}

impl TryFrom<RawConfig> for Config {
    type Error = ConfigError;

    fn try_from(raw: RawConfig) -> Result<Self, ConfigError> {
        let listen = socket_addr("listen", raw.listen.as_deref().unwrap_or("127.0.0.1:8000"))?;
        let auth = auth::auth(raw.auth.as_ref(), raw.clients, listen)?;
        let limits = auth::limits(raw.limits.as_ref())?;
        let audit = audit::audit(raw.audit)?;
        let tables = tables(raw.tables)?;
        check_audit_tables(&tables, audit.as_ref())?;
        Ok(Self {
            listen,
            admin_listen: socket_addr(
                "admin_listen",
                raw.admin_listen.as_deref().unwrap_or("127.0.0.1:9000"),
            )?,
            credentials: credentials(raw.upstream_credentials)?,
            regions: regions(raw.regions)?,
            tables,
            timeouts: timeouts(raw.timeouts.as_ref(), raw.upstream.as_ref())?,
            routing: routing(raw.routing.as_ref())?,
            tls_roots: tls_roots(raw.upstream.as_ref())?,
            server: server::server(raw.server.as_ref())?,
            audit,
            auth,
            limits,
            admin_token: admin_token(raw.admin.as_ref())?,
            cors: cors::allowed_origins(raw.cors.as_ref())?,
        })
    }
}

/// At least 16 characters: the token guards moving every write of the fleet.
fn admin_token(raw: Option<&raw::RawAdmin>) -> Result<Option<AdminToken>, ConfigError> {
    match raw.and_then(|a| a.token.clone()) {
        Some(token) if token.len() < 16 => Err(invalid(
            "admin.token",
            "must be at least 16 characters (or GLOBALSCALE_ADMIN_TOKEN)",
        )),
        token => Ok(token.map(AdminToken)),
    }
}

fn socket_addr(key: &str, value: &str) -> Result<SocketAddr, ConfigError> {
    value.parse().map_err(|_| {
        invalid(
            key,
            format!("`{value}` is not an address like 127.0.0.1:8000"),
        )
    })
}

fn credentials(raw: Option<RawCredentials>) -> Result<CredentialsConfig, ConfigError> {
    let Some(raw) = raw else {
        return Ok(CredentialsConfig::DefaultChain);
    };
    if raw.access_key_id.trim().is_empty() {
        return Err(invalid("upstream_credentials.access_key_id", "is empty"));
    }
    if raw.secret_access_key.is_empty() {
        return Err(invalid(
            "upstream_credentials.secret_access_key",
            "is empty",
        ));
    }
    Ok(CredentialsConfig::Static {
        access_key_id: raw.access_key_id,
        secret_access_key: raw.secret_access_key,
        session_token: raw.session_token.filter(|t| !t.is_empty()),
    })
}

fn regions(raw: Vec<RawRegion>) -> Result<Vec<RegionConfig>, ConfigError> {
    if raw.is_empty() {
        return Err(invalid("regions", "at least one region is required"));
    }
    let mut seen = HashSet::new();
    raw.into_iter()
        .enumerate()
        .map(|(i, r)| {
            let key = format!("regions[{i}].name");
            let valid_name = !r.name.is_empty()
                && r.name.len() <= 32
                && r.name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if !valid_name {
                return Err(invalid(key, format!("`{}` is not a region name", r.name)));
            }
            if !seen.insert(r.name.clone()) {
                return Err(invalid(key, format!("region `{}` is listed twice", r.name)));
            }
            let data_endpoint = match r.endpoint {
                Some(e) => endpoint(&format!("regions[{i}].endpoint"), &e)?,
                None => endpoint(
                    &format!("regions[{i}].name"),
                    &format!("https://dynamodb.{}.amazonaws.com", r.name),
                )?,
            };
            let streams_endpoint = match r.streams_endpoint {
                Some(e) => endpoint(&format!("regions[{i}].streams_endpoint"), &e)?,
                None => endpoint(
                    &format!("regions[{i}].endpoint"),
                    &default_streams_endpoint(&r.name, &data_endpoint),
                )?,
            };
            Ok(RegionConfig {
                name: r.name,
                endpoint: data_endpoint,
                streams_endpoint,
            })
        })
        .collect()
}

/// Where a region serves DynamoDB Streams when the config does not say: beside an AWS
/// endpoint (`dynamodb.<region>.amazonaws.com`) its `streams.` sibling; any other endpoint
/// (DynamoDB Local, LocalStack) serves both APIs on its one port.
fn default_streams_endpoint(region: &str, data: &http::Uri) -> String {
    let host = data.host().unwrap_or_default();
    match host.strip_prefix("dynamodb.") {
        Some(rest) if rest.contains(".amazonaws.com") => {
            let port = data.port_u16().map(|p| format!(":{p}")).unwrap_or_default();
            format!("https://streams.dynamodb.{rest}{port}")
        }
        _ if host.ends_with(".amazonaws.com") || host.ends_with(".amazonaws.com.cn") => {
            format!("https://streams.dynamodb.{region}.amazonaws.com")
        }
        _ => data.to_string(),
    }
}

fn endpoint(key: &str, value: &str) -> Result<http::Uri, ConfigError> {
    let uri: http::Uri = value
        .parse()
        .map_err(|_| invalid(key, format!("`{value}` is not a URL")))?;
    let Some(host) = uri.host() else {
        return Err(invalid(key, format!("`{value}` has no host")));
    };
    match uri.scheme_str() {
        Some("https") => {}
        // Plain HTTP is for DynamoDB Local and test fixtures; AWS endpoints always use TLS.
        Some("http")
            if !host.ends_with(".amazonaws.com") && !host.ends_with(".amazonaws.com.cn") => {}
        Some("http") => {
            return Err(invalid(
                key,
                format!("`{value}`: AWS endpoints must use https"),
            ));
        }
        _ => {
            return Err(invalid(
                key,
                format!("`{value}` must start with http:// or https://"),
            ));
        }
    }
    if uri.path() != "/" || uri.query().is_some() {
        return Err(invalid(
            key,
            format!("`{value}` must not carry a path or query"),
        ));
    }
    Ok(uri)
}

fn tables(raw: Vec<RawTable>) -> Result<Vec<TableConfig>, ConfigError> {
    let mut seen = HashSet::new();
    raw.into_iter()
        .enumerate()
        .map(|(i, t)| {
            let valid_name = (3..=255).contains(&t.name.len())
                && t.name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
            if !valid_name {
                return Err(invalid(
                    format!("tables[{i}].name"),
                    format!("`{}` is not a DynamoDB table name", t.name),
                ));
            }
            if !seen.insert(t.name.clone()) {
                return Err(invalid(
                    format!("tables[{i}].name"),
                    format!("table `{}` is listed twice", t.name),
                ));
            }
            for (field, value) in [
                ("partition_key", &t.partition_key),
                ("sort_key", &t.sort_key),
            ] {
                if value.as_ref().is_some_and(String::is_empty) {
                    return Err(invalid(format!("tables[{i}].{field}"), "is empty"));
                }
            }
            if let Some(prefix) = &t.key_prefix {
                check_key_prefix(i, prefix, t.partition_key.as_deref())?;
            }
            if let Some(version) = &t.version_attribute {
                check_version_attribute(i, version, &t)?;
            }
            Ok(TableConfig {
                name: t.name,
                partition_key: t.partition_key,
                sort_key: t.sort_key,
                key_types: None,
                key_prefix: t.key_prefix,
                version_attribute: t.version_attribute,
                audit: t.audit.unwrap_or(false),
                arn: None,
                shared: crate::plan::Shared::default(),
            })
        })
        .collect()
}

/// An audited table needs `[audit]`; the audit table itself is written only by the shipper,
/// never as a managed table (its records would audit themselves).
fn check_audit_tables(
    tables: &[TableConfig],
    audit: Option<&AuditConfig>,
) -> Result<(), ConfigError> {
    if let Some(i) = tables.iter().position(|t| t.audit)
        && audit.is_none()
    {
        return Err(invalid(
            format!("tables[{i}].audit"),
            "needs an [audit] section (table, spool_dir)",
        ));
    }
    if let Some(audit) = audit
        && let Some(i) = tables.iter().position(|t| t.name == audit.table)
    {
        return Err(invalid(
            format!("tables[{i}].name"),
            format!(
                "`{}` is the audit table, which only the audit shipper writes",
                audit.table
            ),
        ));
    }
    Ok(())
}

/// The placeholder a `key_prefix` may hold: the home region, the first configured.
pub const REGION_PLACEHOLDER: &str = "{region}";

/// A prefix is literal text and `{region}`; it needs the partition key's name in the file,
/// so that no request to the table is ever forwarded unprefixed while it is being learned.
fn check_key_prefix(
    i: usize,
    prefix: &str,
    partition_key: Option<&str>,
) -> Result<(), ConfigError> {
    let key = format!("tables[{i}].key_prefix");
    if prefix.is_empty() {
        return Err(invalid(key, "is empty"));
    }
    let literal = prefix.replace(REGION_PLACEHOLDER, "");
    if literal.contains(['{', '}']) {
        return Err(invalid(
            key,
            format!("`{prefix}`: the only placeholder is {REGION_PLACEHOLDER}"),
        ));
    }
    if partition_key.is_none() {
        return Err(invalid(
            format!("tables[{i}].partition_key"),
            "is required with key_prefix (the sidecar must know which attribute to prefix before the first request)",
        ));
    }
    Ok(())
}

/// The hidden attribute a versioned write stores beside its version, so that a resend can
/// tell its own first attempt from another writer's; never shown to clients.
pub const WRITE_ID_ATTRIBUTE: &str = "__globalscale_write";

fn check_version_attribute(i: usize, version: &str, t: &RawTable) -> Result<(), ConfigError> {
    let key = format!("tables[{i}].version_attribute");
    if version.is_empty() {
        return Err(invalid(key, "is empty"));
    }
    if [t.partition_key.as_deref(), t.sort_key.as_deref()].contains(&Some(version)) {
        return Err(invalid(
            key,
            format!("`{version}` is a key attribute, which no write can change"),
        ));
    }
    if version == WRITE_ID_ATTRIBUTE {
        return Err(invalid(
            key,
            format!("`{version}` is the sidecar's own attribute"),
        ));
    }
    Ok(())
}

fn millis(key: &str, value: Option<u64>, default: u64) -> Result<Duration, ConfigError> {
    match value.unwrap_or(default) {
        0 => Err(invalid(key, "must be greater than 0")),
        ms if ms > 600_000 => Err(invalid(key, "must be at most 600000 (ten minutes)")),
        ms => Ok(Duration::from_millis(ms)),
    }
}

fn tls_roots(raw: Option<&RawUpstream>) -> Result<TlsRoots, ConfigError> {
    match raw.and_then(|u| u.tls_roots.as_deref()).unwrap_or("both") {
        "webpki" => Ok(TlsRoots::Webpki),
        "system" => Ok(TlsRoots::System),
        "both" => Ok(TlsRoots::Both),
        other => Err(invalid(
            "upstream.tls_roots",
            format!("must be \"webpki\", \"system\" or \"both\", not {other:?}"),
        )),
    }
}

/// Below the 60 s after which AWS endpoints close idle connections, so a request rarely
/// meets one the region is closing.
const DEFAULT_UPSTREAM_IDLE_MS: u64 = 50_000;

fn timeouts(
    raw: Option<&RawTimeouts>,
    upstream: Option<&RawUpstream>,
) -> Result<Timeouts, ConfigError> {
    let t = Timeouts {
        connect: millis("timeouts.connect_ms", raw.and_then(|t| t.connect_ms), 500)?,
        attempt: millis("timeouts.attempt_ms", raw.and_then(|t| t.attempt_ms), 1_000)?,
        request: millis("timeouts.request_ms", raw.and_then(|t| t.request_ms), 5_000)?,
        upstream_idle: millis(
            "upstream.idle_timeout_ms",
            upstream.and_then(|u| u.idle_timeout_ms),
            DEFAULT_UPSTREAM_IDLE_MS,
        )?,
    };
    if t.request < t.attempt {
        return Err(invalid(
            "timeouts.request_ms",
            "must not be shorter than timeouts.attempt_ms",
        ));
    }
    Ok(t)
}

fn routing(raw: Option<&RawRouting>) -> Result<RoutingConfig, ConfigError> {
    let policy = match raw.and_then(|r| r.policy.as_deref()).unwrap_or("ordered") {
        "ordered" => RoutingPolicy::Ordered,
        "latency" => RoutingPolicy::Latency,
        other => {
            return Err(invalid(
                "routing.policy",
                format!("`{other}` is not one of \"ordered\", \"latency\""),
            ));
        }
    };
    let count = |key: &str, value: Option<u32>, default: u32| match value.unwrap_or(default) {
        0 => Err(invalid(key, "must be at least 1")),
        n if n > 100 => Err(invalid(key, "must be at most 100")),
        n => Ok(n),
    };
    Ok(RoutingConfig {
        policy,
        max_attempts: count("routing.max_attempts", raw.and_then(|r| r.max_attempts), 6)?,
        probe_interval: millis(
            "routing.probe_interval_ms",
            raw.and_then(|r| r.probe_interval_ms),
            1_000,
        )?,
        probe_timeout: millis(
            "routing.probe_timeout_ms",
            raw.and_then(|r| r.probe_timeout_ms),
            500,
        )?,
        eject_after_failures: count(
            "routing.eject_after_failures",
            raw.and_then(|r| r.eject_after_failures),
            3,
        )?,
        readmit_after_successes: count(
            "routing.readmit_after_successes",
            raw.and_then(|r| r.readmit_after_successes),
            2,
        )?,
        write_failover: match raw.and_then(|r| r.write_failover.as_deref()) {
            None | Some("auto") => WriteFailover::Auto,
            Some("manual") => WriteFailover::Manual,
            Some(other) => {
                return Err(invalid(
                    "routing.write_failover",
                    format!("`{other}` is not one of \"auto\", \"manual\""),
                ));
            }
        },
        retry_budget: match raw.and_then(|r| r.retry_budget) {
            None => DEFAULT_RETRY_BUDGET,
            Some(n) if n > MAX_RETRY_BUDGET => {
                return Err(invalid(
                    "routing.retry_budget",
                    format!("must be at most {MAX_RETRY_BUDGET}"),
                ));
            }
            Some(n) => n,
        },
        reads: reads::read_routing(raw)?,
    })
}

/// Far above any sensible quota; a larger one would disable the budget in effect.
const MAX_RETRY_BUDGET: u32 = 1_000_000;
/// `[routing] retry_budget` when unset: the AWS SDKs' default quota.
pub const DEFAULT_RETRY_BUDGET: u32 = 500;

#[cfg(test)]
mod tests;
