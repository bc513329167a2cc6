//! The `[auth]` section, the `[[clients]]` the sidecar knows and the `[limits]` that keep one
//! client from starving the others. Without authentication the API listener may be reached
//! only from the same host, unless the file says otherwise in so many words.

use std::net::SocketAddr;

use super::raw::{RawAuth, RawClient, RawLimits};
use super::{ConfigError, invalid};

/// How clients prove who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// Any request is served (any signature, or none).
    None,
    /// Every request carries a SigV4 signature by one of `[[clients]]`.
    Sigv4,
}

#[derive(Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// What metrics, logs and audit records call the client.
    pub name: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Table name patterns (`*` matches any run of characters); `None` allows every table.
    pub tables: Option<Vec<String>>,
}

impl std::fmt::Debug for ClientConfig {
    // Never print a secret, even in a debug log of the whole config.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("name", &self.name)
            .field("access_key_id", &self.access_key_id)
            .field("tables", &self.tables)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthConfig {
    pub mode: AuthMode,
    pub clients: Vec<ClientConfig>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitsConfig {
    /// Requests being processed at once; past it, a request gets a retryable 503 at once.
    pub max_in_flight: usize,
    /// Bytes of an HTTP/1 request head, and of an HTTP/2 header list.
    pub max_header_bytes: usize,
    /// Header fields of an HTTP/1 request.
    pub max_headers: usize,
}

/// Far beyond what 2 cores serve at DynamoDB's latencies, low enough to bound memory.
const DEFAULT_MAX_IN_FLIGHT: usize = 1024;
/// An SDK request head is well under 2 KiB.
const DEFAULT_MAX_HEADER_BYTES: usize = 16 * 1024;
const DEFAULT_MAX_HEADERS: usize = 64;

pub(super) fn auth(
    raw: Option<&RawAuth>,
    clients: Vec<RawClient>,
    listen: SocketAddr,
) -> Result<AuthConfig, ConfigError> {
    let mode = match raw.map_or("none", |a| a.mode.as_str()) {
        "none" => AuthMode::None,
        "sigv4" => AuthMode::Sigv4,
        other => {
            return Err(invalid(
                "auth.mode",
                format!("`{other}` is not one of \"none\", \"sigv4\""),
            ));
        }
    };
    let allow_remote = raw.and_then(|a| a.allow_unauthenticated_remote) == Some(true);
    let clients = self::clients(clients)?;
    match mode {
        AuthMode::None if !clients.is_empty() => Err(invalid(
            "clients",
            "[[clients]] are only checked with [auth] mode = \"sigv4\"; set it, or remove them",
        )),
        AuthMode::None if !listen.ip().is_loopback() && !allow_remote => Err(invalid(
            "listen",
            format!(
                "{listen} can be reached from other hosts, and [auth] mode = \"none\" would let \
                 anything that reaches it use every table with the sidecar's credentials: use \
                 [auth] mode = \"sigv4\" with [[clients]], listen on 127.0.0.1, or say \
                 [auth] allow_unauthenticated_remote = true"
            ),
        )),
        AuthMode::Sigv4 if clients.is_empty() => Err(invalid(
            "clients",
            "[auth] mode = \"sigv4\" needs at least one [[clients]] entry",
        )),
        _ => Ok(AuthConfig { mode, clients }),
    }
}

fn clients(raw: Vec<RawClient>) -> Result<Vec<ClientConfig>, ConfigError> {
    let mut clients: Vec<ClientConfig> = Vec::with_capacity(raw.len());
    for (i, c) in raw.into_iter().enumerate() {
        let key = |field: &str| format!("clients[{i}].{field}");
        let valid_name = !c.name.is_empty()
            && c.name.len() <= 64
            && c.name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !valid_name {
            return Err(invalid(
                key("name"),
                format!(
                    "`{}` must be 1 to 64 letters, digits, '-', '_' or '.' (it labels metrics)",
                    c.name
                ),
            ));
        }
        if c.access_key_id.trim().is_empty() {
            return Err(invalid(key("access_key_id"), "is empty"));
        }
        let secret = match (c.secret_access_key, c.resolved_secret) {
            (Some(secret), None) if !secret.is_empty() => secret,
            (None, Some(secret)) => secret,
            (Some(_), Some(_)) => {
                return Err(invalid(
                    key("secret_access_key"),
                    "give secret_access_key or secret_access_key_env, not both",
                ));
            }
            _ => {
                return Err(invalid(
                    key("secret_access_key"),
                    "is required (or secret_access_key_env naming an environment variable)",
                ));
            }
        };
        if clients.iter().any(|other| other.name == c.name) {
            return Err(invalid(
                key("name"),
                format!("`{}` is listed twice", c.name),
            ));
        }
        if clients
            .iter()
            .any(|other| other.access_key_id == c.access_key_id)
        {
            return Err(invalid(key("access_key_id"), "is another client's too"));
        }
        if let Some(tables) = &c.tables
            && let Some(bad) = tables.iter().find(|t| t.is_empty() || t.len() > 255)
        {
            return Err(invalid(
                key("tables"),
                format!("`{bad}` is not a table name pattern"),
            ));
        }
        clients.push(ClientConfig {
            name: c.name,
            access_key_id: c.access_key_id,
            secret_access_key: secret,
            tables: c.tables,
        });
    }
    Ok(clients)
}

pub(super) fn limits(raw: Option<&RawLimits>) -> Result<LimitsConfig, ConfigError> {
    let value = |key: &str, value: Option<u64>, default: usize, max: usize| match value {
        None => Ok(default),
        Some(0) => Err(invalid(key, "must be at least 1")),
        Some(n) => usize::try_from(n)
            .ok()
            .filter(|n| *n <= max)
            .ok_or_else(|| invalid(key, format!("must be at most {max}"))),
    };
    let max_header_bytes = value(
        "limits.max_header_bytes",
        raw.and_then(|l| l.max_header_bytes),
        DEFAULT_MAX_HEADER_BYTES,
        1 << 20,
    )?;
    if max_header_bytes < 8192 {
        return Err(invalid(
            "limits.max_header_bytes",
            "must be at least 8192 (an HTTP/1 read buffer's minimum)",
        ));
    }
    Ok(LimitsConfig {
        max_in_flight: value(
            "limits.max_in_flight",
            raw.and_then(|l| l.max_in_flight),
            DEFAULT_MAX_IN_FLIGHT,
            1 << 20,
        )?,
        max_header_bytes,
        max_headers: value(
            "limits.max_headers",
            raw.and_then(|l| l.max_headers),
            DEFAULT_MAX_HEADERS,
            1024,
        )?,
    })
}
