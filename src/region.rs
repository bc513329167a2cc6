//! A region as every part of the request path sees it: its name, endpoint and `Host`, and
//! its health. Routing, the snapshot and the upstream all depend on this module, and it on
//! none of them.

pub mod health;
pub mod latency;

use std::sync::Arc;

use http::HeaderValue;

pub use health::{Failure, RegionHealth, Transition};
pub use latency::{ReadKind, ReadLatency, ReadSample, ReadTransition};

/// One region as requests see it.
#[derive(Debug, Clone)]
pub struct Region {
    pub name: String,
    pub endpoint: http::Uri,
    /// The `Host` header for the endpoint, signed as part of every request.
    pub host: HeaderValue,
    /// Shared with the previous snapshot when a reload keeps the region and endpoint, so
    /// a reload does not forget that a region is down.
    pub health: Arc<RegionHealth>,
}
