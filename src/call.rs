//! The sidecar's own requests: audit shipping and key-schema learning send requests of
//! their own, signed and routed as client requests are. They depend on this trait rather
//! than on the proxy, so the proxy can depend on them (it opens the audit trail, learns key
//! schemas) without a cycle between the modules.

use std::future::Future;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::StatusCode;

use crate::error::ProxyError;
use crate::metrics::Metrics;
use crate::route::ResendSafety;
use crate::snapshot::Snapshot;
use crate::wire::Operation;

/// What the sidecar's own requests need of the proxy.
pub trait OwnCalls: Send + Sync + 'static {
    /// Sends a request of the sidecar's own (not a client's) through the same routing,
    /// resent only as `safety` allows.
    fn call_with(
        &self,
        operation: &Operation,
        body: Bytes,
        safety: ResendSafety,
    ) -> impl Future<Output = Result<(StatusCode, Bytes), ProxyError>> + Send;

    /// [`OwnCalls::call_with`] with the operation's own safety: a read may be resent, a
    /// write never after an ambiguous attempt.
    fn call(
        &self,
        operation: &Operation,
        body: Bytes,
    ) -> impl Future<Output = Result<(StatusCode, Bytes), ProxyError>> + Send {
        let safety = if operation.is_read() {
            ResendSafety::Safe
        } else {
            ResendSafety::Unsafe
        };
        self.call_with(operation, body, safety)
    }

    /// The current snapshot, which what is learned replaces whole.
    fn snapshot_cell(&self) -> &ArcSwap<Snapshot>;

    /// The `[audit] table` of the current config.
    fn audit_table(&self) -> Option<String> {
        let snapshot = self.snapshot_cell().load();
        snapshot.config.audit.as_ref().map(|a| a.table.clone())
    }

    fn metrics(&self) -> &Metrics;
}
