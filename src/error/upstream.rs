//! The errors of an attempt against a region and of signing it. Defined here, with the
//! error model, so that the model depends on no other module; `upstream` re-exports them.

use std::sync::Arc;
use std::time::Duration;

use aws_credential_types::provider::error::CredentialsError;

use super::{BoxError, Chain};

/// The most of an answer the sidecar reads (`upstream` enforces it).
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// How one attempt against one region failed. The region's side, always; whether the
/// request may move on is the attempt loop's resend rule for the outcome this maps to
/// (`route::AttemptOutcome::from_error`, then `should_move`).
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// Nothing was sent: the connection was never established.
    #[error("connect: {}", Chain::new(&**.source))]
    Connect {
        #[source]
        source: BoxError,
    },
    /// Nothing was sent: the region's endpoint is not an absolute URI.
    #[error("connect: not an absolute URI: {0}")]
    NotAbsolute(Box<http::Uri>),
    /// The request may have been received and applied; no answer came back in time.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The connection broke after the request may have been sent.
    #[error("transport: {}", Chain::new(&**.source))]
    Transport {
        #[source]
        source: BoxError,
    },
    #[error("response larger than {MAX_RESPONSE_BYTES} bytes")]
    ResponseTooLarge,
    /// An answer came back, but not as the region sent it (or not as DynamoDB answers).
    #[error("corrupt answer: {0}")]
    Corrupt(#[source] super::wire::AnswerError),
}

impl UpstreamError {
    /// Nothing was sent: `source` kept as the cause.
    pub fn connect(source: impl Into<BoxError>) -> Self {
        Self::Connect {
            source: source.into(),
        }
    }

    /// Sent, then the connection broke: `source` kept as the cause.
    pub fn transport(source: impl Into<BoxError>) -> Self {
        Self::Transport {
            source: source.into(),
        }
    }

    /// Whether the request certainly never reached the region, so moving it is always safe.
    pub fn never_sent(&self) -> bool {
        matches!(self, Self::Connect { .. } | Self::NotAbsolute(_))
    }
}

/// Why an attempt could not be signed: always the sidecar's side, and always before
/// anything was sent.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// The credential provider failed (shared: a failure is answered again for a moment).
    #[error("no upstream credentials: {}", Chain::new(&**.0))]
    Credentials(#[source] Arc<CredentialsError>),
    #[error("signing failed: {0}")]
    Params(#[source] aws_sigv4::sign::v4::signing_params::BuildError),
    #[error("signing failed: {0}")]
    Sign(#[source] aws_sigv4::http_request::SigningError),
}
