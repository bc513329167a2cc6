//! A region as every part of the request path sees it: its name, endpoint and `Host`, and
//! its health. Routing, the snapshot and the upstream all depend on this module, and it on
//! none of them.

pub mod health;
pub mod latency;

use std::sync::Arc;

use http::HeaderValue;

pub use health::{Failure, RegionHealth, Transition};
pub use latency::{ReadKind, ReadLatency, ReadSample, ReadTransition};

/// A region's name with its `x-globalscale-region` header value: an answer names the
/// region that gave it by sharing this, where it copied the name into a string and a
/// header value of its own.
#[derive(Debug)]
pub struct RegionLabel {
    pub name: String,
    /// `None` for a name that is not a valid header value (the header is then left out).
    pub header: Option<HeaderValue>,
}

impl RegionLabel {
    pub fn new(name: &str) -> Arc<Self> {
        Arc::new(Self {
            name: name.to_owned(),
            header: HeaderValue::from_str(name).ok(),
        })
    }
}

impl std::ops::Deref for RegionLabel {
    type Target = str;

    fn deref(&self) -> &str {
        &self.name
    }
}

impl std::fmt::Display for RegionLabel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)
    }
}

/// One region as requests see it.
#[derive(Debug, Clone)]
pub struct Region {
    pub name: String,
    /// The name as every answer from this region names it, made once per snapshot.
    pub label: Arc<RegionLabel>,
    pub endpoint: http::Uri,
    /// The `Host` header for the endpoint, signed as part of every request.
    pub host: HeaderValue,
    /// Shared with the previous snapshot when a reload keeps the region and endpoint, so
    /// a reload does not forget that a region is down.
    pub health: Arc<RegionHealth>,
}
