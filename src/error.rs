//! The error model: every way a request can fail inside the sidecar, where the fault lies
//! and whether the client may safely try again. `wire::error_response_parts` is the one
//! place that turns these into DynamoDB's error bodies.

use std::time::Duration;

/// Who caused a failure: the caller, a region, or the sidecar itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The client sent something DynamoDB would refuse.
    Downstream,
    /// Every region that could take the request failed it.
    Upstream,
    /// The sidecar could not do its own part (signing, credentials).
    Internal,
}

/// A request the sidecar answers itself, instead of with a region's response.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("{0}")]
    UnknownOperation(String),
    #[error("{0}")]
    Serialization(String),
    #[error("{0}")]
    Validation(String),
    #[error("request body exceeds the {limit}-byte limit")]
    BodyTooLarge { limit: usize },
    #[error("no region could serve the request ({detail})")]
    NoRegionAvailable {
        detail: String,
        /// Whether an attempt may have reached a region and been applied (a timeout or a
        /// broken connection of a request safe to move), rather than certainly not.
        maybe_applied: bool,
    },
    #[error(
        "the request may have been applied in {region} but no answer came back, and it is not safe to send again"
    )]
    AmbiguousWrite { region: String },
    #[error("the request did not complete within {0:?}")]
    DeadlineExceeded(Duration),
    #[error("cannot sign the upstream request: {0}")]
    Signing(String),
    #[error("internal error: {0}")]
    Internal(String),
    /// The request's SigV4 signature is missing, malformed, wrong or out of date.
    #[error("{0}")]
    Auth(#[from] crate::auth::AuthError),
    /// The client may not touch a table the request names.
    #[error("{0}")]
    AccessDenied(String),
    /// Too many requests in flight: shed at once, before any work.
    #[error("the sidecar is at its limit of {0} requests in flight; retry")]
    Overloaded(usize),
    /// A write to an audited table that could not be given its record (spool full or
    /// unwritable, key schema unknown): refused before it was sent.
    #[error("audit: {0}")]
    AuditUnavailable(String),
}

impl ProxyError {
    /// Where the fault lies.
    pub fn side(&self) -> Side {
        match self {
            Self::UnknownOperation(_)
            | Self::Serialization(_)
            | Self::Validation(_)
            | Self::BodyTooLarge { .. }
            | Self::AccessDenied(_)
            | Self::Auth(_) => Side::Downstream,
            Self::NoRegionAvailable { .. }
            | Self::AmbiguousWrite { .. }
            | Self::DeadlineExceeded(_) => Side::Upstream,
            Self::Signing(_)
            | Self::Internal(_)
            | Self::AuditUnavailable(_)
            | Self::Overloaded(_) => Side::Internal,
        }
    }

    /// Whether a write that ended in this error may have been applied.
    pub fn maybe_applied(&self) -> bool {
        match self {
            Self::AmbiguousWrite { .. } | Self::DeadlineExceeded(_) => true,
            Self::NoRegionAvailable { maybe_applied, .. } => *maybe_applied,
            _ => false,
        }
    }

    /// Whether the client may send the same request again and expect a different outcome.
    /// Upstream and internal failures are transient by nature; client errors are not.
    pub fn retryable(&self) -> bool {
        self.side() != Side::Downstream
    }
}
