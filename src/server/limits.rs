//! How many client connections each listener may hold, so the process never runs out of file
//! descriptors: past the limit `accept` fails, and then the admin port stops answering too.
//!
//! The budget is the soft `RLIMIT_NOFILE` (which `main` raises to the hard limit at start):
//! a fixed reserve for the admin port, the runtime, config and log files and DNS, then half
//! of the rest for client connections, because each one may hold an upstream connection
//! (pooled, per region) at the same time.

use std::io;

/// Connections the admin port takes at most: probes, scrapes and a person with curl.
pub const ADMIN_MAX_CONNECTIONS: usize = 64;

/// Descriptors kept for everything that is neither a client nor an upstream connection,
/// among them the connections waiting in the listeners' lobbies at the cap (64 per port,
/// `server::lobby`).
const RESERVED: u64 = 256;

/// Never fewer: a sidecar with a limit this low is misconfigured, and says so at start.
const MIN_PROXY_CONNECTIONS: u64 = 16;

/// Never more: beyond what one sidecar can serve, and the semaphore's range stays small.
const MAX_PROXY_CONNECTIONS: u64 = 1 << 20;

/// The process's current soft limit on open descriptors.
pub fn descriptor_limit() -> io::Result<u64> {
    rlimit::getrlimit(rlimit::Resource::NOFILE).map(|(soft, _hard)| soft)
}

/// The proxy listener's cap for a descriptor limit of `nofile`.
pub fn proxy_max_connections(nofile: u64) -> usize {
    let admin = ADMIN_MAX_CONNECTIONS as u64;
    let spare = nofile.saturating_sub(RESERVED + admin) / 2;
    let cap = spare.clamp(MIN_PROXY_CONNECTIONS, MAX_PROXY_CONNECTIONS);
    usize::try_from(cap).unwrap_or(usize::MAX)
}

/// The proxy listener's cap: the configured one, if any, but never above what the
/// descriptor limit allows.
pub fn effective_max_connections(configured: Option<usize>, nofile: u64) -> usize {
    let allowed = proxy_max_connections(nofile);
    let cap = configured.map_or(allowed, |c| c.min(allowed));
    if configured.is_some_and(|c| c > allowed) {
        tracing::warn!(
            configured = configured,
            allowed,
            nofile,
            "server.max_connections is above what the descriptor limit allows; using the lower cap"
        );
    }
    if nofile < RESERVED * 2 {
        tracing::warn!(
            nofile,
            "the descriptor limit is very low; raise `ulimit -n` (the hard limit) for the sidecar"
        );
    }
    cap
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_leaves_room_for_upstream_and_admin() {
        // The defect: 20,000 idle sockets at a limit of 20,000.
        let cap = proxy_max_connections(20_000);
        assert_eq!(cap, (20_000 - 256 - 64) / 2);
        assert!(2 * cap + ADMIN_MAX_CONNECTIONS + 256 <= 20_000);
        assert_eq!(proxy_max_connections(1_048_576), (1_048_576 - 320) / 2);
    }

    #[test]
    fn extreme_limits_stay_in_range() {
        assert_eq!(proxy_max_connections(0), 16);
        assert_eq!(proxy_max_connections(u64::MAX), 1 << 20);
    }

    #[test]
    fn configured_caps_are_lowered_to_the_limit() {
        assert_eq!(effective_max_connections(Some(32), 20_000), 32);
        assert_eq!(effective_max_connections(Some(50_000), 20_000), 9_840);
        assert_eq!(effective_max_connections(None, 20_000), 9_840);
    }
}
