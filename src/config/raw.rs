//! The configuration file as written: `#[serde(deny_unknown_fields)]` structs that mirror
//! its keys, the environment overrides applied over them, and the parse that names the key
//! path of any unknown field or wrongly typed value.

use serde::Deserialize;

use super::{ConfigError, invalid};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub(super) listen: Option<String>,
    pub(super) admin_listen: Option<String>,
    pub(super) upstream_credentials: Option<RawCredentials>,
    #[serde(default)]
    pub(super) regions: Vec<RawRegion>,
    #[serde(default)]
    pub(super) tables: Vec<RawTable>,
    pub(super) timeouts: Option<RawTimeouts>,
    pub(super) upstream: Option<RawUpstream>,
    pub(super) routing: Option<RawRouting>,
    pub(super) server: Option<RawServer>,
    pub(super) audit: Option<RawAudit>,
    pub(super) auth: Option<RawAuth>,
    #[serde(default)]
    pub(super) clients: Vec<RawClient>,
    pub(super) limits: Option<RawLimits>,
    pub(super) admin: Option<RawAdmin>,
    pub(super) cors: Option<RawCors>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCors {
    pub(super) allowed_origins: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAdmin {
    pub(super) token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCredentials {
    pub(super) access_key_id: String,
    pub(super) secret_access_key: String,
    pub(super) session_token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRegion {
    pub(super) name: String,
    pub(super) endpoint: Option<String>,
    pub(super) streams_endpoint: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTable {
    pub(super) name: String,
    pub(super) partition_key: Option<String>,
    pub(super) sort_key: Option<String>,
    pub(super) key_prefix: Option<String>,
    pub(super) version_attribute: Option<String>,
    pub(super) audit: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTimeouts {
    pub(super) connect_ms: Option<u64>,
    pub(super) attempt_ms: Option<u64>,
    pub(super) request_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawUpstream {
    pub(super) tls_roots: Option<String>,
    pub(super) idle_timeout_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRouting {
    pub(super) policy: Option<String>,
    pub(super) write_failover: Option<String>,
    pub(super) max_attempts: Option<u32>,
    pub(super) probe_interval_ms: Option<u64>,
    pub(super) probe_timeout_ms: Option<u64>,
    pub(super) eject_after_failures: Option<u32>,
    pub(super) readmit_after_successes: Option<u32>,
    pub(super) retry_budget: Option<u32>,
    pub(super) hedge_reads: Option<bool>,
    pub(super) hedge_min_delay_ms: Option<u64>,
    pub(super) hedge_budget_percent: Option<u32>,
    pub(super) demote_latency_factor: Option<f64>,
    pub(super) demote_latency_margin_ms: Option<u64>,
    pub(super) failback_ramp_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawServer {
    pub(super) header_timeout_ms: Option<u64>,
    pub(super) idle_timeout_ms: Option<u64>,
    pub(super) max_connections: Option<u64>,
    pub(super) max_body_memory_bytes: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAudit {
    pub(super) table: Option<String>,
    pub(super) spool_dir: Option<String>,
    pub(super) images: Option<String>,
    pub(super) mode: Option<String>,
    pub(super) max_spool_bytes: Option<u64>,
    pub(super) commit_delay_us: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAuth {
    pub(super) mode: String,
    pub(super) allow_unauthenticated_remote: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawClient {
    pub(super) name: String,
    pub(super) access_key_id: String,
    pub(super) secret_access_key: Option<String>,
    pub(super) secret_access_key_env: Option<String>,
    pub(super) tables: Option<Vec<String>>,
    /// The secret read from `secret_access_key_env` by [`apply_env`].
    #[serde(skip)]
    pub(super) resolved_secret: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLimits {
    pub(super) max_in_flight: Option<u64>,
    pub(super) max_header_bytes: Option<u64>,
    pub(super) max_headers: Option<u64>,
}

/// Deserializes the file, naming the key of any unknown field or wrongly typed value
/// (`routing.max_attempts`), not only its line.
pub(super) fn parse_raw(text: &str) -> Result<RawConfig, ConfigError> {
    let deserializer = toml::Deserializer::parse(text)?;
    serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let key = e.path().to_string();
        let inner = e.into_inner();
        let message = inner.message().to_owned();
        let line = inner
            .span()
            .and_then(|span| text.get(..span.start))
            .map(|before| before.matches('\n').count() + 1);
        ConfigError::Parse {
            key,
            message: match line {
                Some(line) => format!("{message} (line {line})"),
                None => message,
            },
        }
    })
}

pub(super) fn apply_env(
    raw: &mut RawConfig,
    env: impl Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    if let Some(listen) = env("GLOBALSCALE_LISTEN") {
        raw.listen = Some(listen);
    }
    if let Some(admin) = env("GLOBALSCALE_ADMIN_LISTEN") {
        raw.admin_listen = Some(admin);
    }
    if let Some(list) = env("DDB_REGIONS") {
        let mut regions = Vec::new();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (name, endpoint) = match entry.split_once('=') {
                Some((name, endpoint)) => (name.trim(), Some(endpoint.trim().to_owned())),
                None => (entry, None),
            };
            let endpoint = endpoint.or_else(|| {
                raw.regions
                    .iter()
                    .find(|r| r.name == name)
                    .and_then(|r| r.endpoint.clone())
            });
            // The file's streams endpoint belongs with the file's endpoint: an entry that
            // moves the endpoint takes the default beside the new one.
            let streams_endpoint = raw
                .regions
                .iter()
                .find(|r| r.name == name && r.endpoint == endpoint)
                .and_then(|r| r.streams_endpoint.clone());
            regions.push(RawRegion {
                name: name.to_owned(),
                endpoint,
                streams_endpoint,
            });
        }
        if regions.is_empty() {
            return Err(invalid("DDB_REGIONS", "names no region"));
        }
        raw.regions = regions;
    }
    if let Some(token) = env("GLOBALSCALE_ADMIN_TOKEN").filter(|t| !t.is_empty()) {
        raw.admin.get_or_insert_with(RawAdmin::default).token = Some(token);
    }
    for (i, client) in raw.clients.iter_mut().enumerate() {
        let Some(variable) = &client.secret_access_key_env else {
            continue;
        };
        let secret = env(variable).filter(|s| !s.is_empty()).ok_or_else(|| {
            invalid(
                format!("clients[{i}].secret_access_key_env"),
                format!("the environment variable {variable} is not set"),
            )
        })?;
        client.resolved_secret = Some(secret);
    }
    Ok(())
}
