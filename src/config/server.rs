//! The `[server]` section: how long a client connection may stay open without a request, how
//! many may be open at once, and how many bytes of request bodies all of them together may
//! hold in memory (see `crate::server` for how each is enforced).

use std::time::Duration;

use super::raw::RawServer;
use super::{ConfigError, invalid, millis};
use crate::wire::MAX_REQUEST_BYTES;

/// Far above what one sidecar serves; a larger cap would only hide a typo.
const MAX_CONNECTIONS: u64 = 1 << 20;

/// Four of DynamoDB's largest requests (16 MiB) at once, or thousands of ordinary ones:
/// a sidecar's share of a pod's memory, with RSS under the 128 MiB that
/// docs/src/access-control.md states ("Limits").
pub const DEFAULT_MAX_BODY_MEMORY_BYTES: usize = 64 << 20;

/// Far above what a sidecar should hold; a larger budget would only hide a typo.
const MAX_BODY_MEMORY_BYTES: u64 = 1 << 36;

/// How the listeners treat client connections; changes take effect on restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerConfig {
    /// A new connection that has not delivered a complete request head by then is closed:
    /// one that sends nothing, a partial HTTP/2 preface, HTTP/2 without a stream. It
    /// shortens as the listener nears its cap (`server::pressure`).
    pub header_timeout: Duration,
    /// A connection that has been answered and has nothing in flight is closed after this
    /// (HTTP/1 between keep-alive requests; HTTP/2 with no open stream, with a GOAWAY).
    pub idle_timeout: Duration,
    /// Open client connections on `listen` at most; `None` derives the cap from the
    /// descriptor limit. Never more than that limit allows, whatever is configured.
    pub max_connections: Option<usize>,
    /// Bytes of request bodies held at once across every connection; a request that would
    /// pass it gets a retryable 503 before more of its body is read.
    pub max_body_memory_bytes: usize,
}

pub(super) fn server(raw: Option<&RawServer>) -> Result<ServerConfig, ConfigError> {
    let max_connections = match raw.and_then(|s| s.max_connections) {
        None => None,
        Some(0) => return Err(invalid("server.max_connections", "must be at least 1")),
        Some(n) if n > MAX_CONNECTIONS => {
            return Err(invalid(
                "server.max_connections",
                format!("must be at most {MAX_CONNECTIONS}"),
            ));
        }
        Some(n) => usize::try_from(n).ok(),
    };
    Ok(ServerConfig {
        header_timeout: millis(
            "server.header_timeout_ms",
            raw.and_then(|s| s.header_timeout_ms),
            30_000,
        )?,
        idle_timeout: millis(
            "server.idle_timeout_ms",
            raw.and_then(|s| s.idle_timeout_ms),
            60_000,
        )?,
        max_connections,
        max_body_memory_bytes: body_memory(raw.and_then(|s| s.max_body_memory_bytes))?,
    })
}

/// At least one request of DynamoDB's largest size, or such a request could never be
/// served.
fn body_memory(raw: Option<u64>) -> Result<usize, ConfigError> {
    const KEY: &str = "server.max_body_memory_bytes";
    let Some(bytes) = raw else {
        return Ok(DEFAULT_MAX_BODY_MEMORY_BYTES);
    };
    if bytes < MAX_REQUEST_BYTES as u64 {
        return Err(invalid(
            KEY,
            format!(
                "must be at least {MAX_REQUEST_BYTES} (one request of DynamoDB's largest size)"
            ),
        ));
    }
    if bytes > MAX_BODY_MEMORY_BYTES {
        return Err(invalid(
            KEY,
            format!("must be at most {MAX_BODY_MEMORY_BYTES}"),
        ));
    }
    usize::try_from(bytes).map_err(|_| invalid(KEY, "is larger than this platform's memory"))
}
