//! The `[server]` section: how long a client connection may stay open without a request, and
//! how many may be open at once (see `crate::server` for how each is enforced).

use std::time::Duration;

use super::raw::RawServer;
use super::{ConfigError, invalid, millis};

/// Far above what one sidecar serves; a larger cap would only hide a typo.
const MAX_CONNECTIONS: u64 = 1 << 20;

/// How the listeners treat client connections; changes take effect on restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerConfig {
    /// A new connection that has not delivered a complete request head by then is closed:
    /// one that sends nothing, a partial HTTP/2 preface, HTTP/2 without a stream.
    pub header_timeout: Duration,
    /// A connection that has been answered and has nothing in flight is closed after this
    /// (HTTP/1 between keep-alive requests; HTTP/2 with no open stream, with a GOAWAY).
    pub idle_timeout: Duration,
    /// Open client connections on `listen` at most; `None` derives the cap from the
    /// descriptor limit. Never more than that limit allows, whatever is configured.
    pub max_connections: Option<usize>,
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
    })
}
