//! The error model: every way a request can fail inside the sidecar, with its cause kept as
//! a typed source, which side the fault lies on, and whether sending the request again is
//! safe. `wire::error_response` is the one place that turns these into DynamoDB's answers.
//!
//! Each error's `Display` is the message the client reads (it says its cause, linkerd-style
//! `"region {region}: {source}"`), and `source()` gives the cause itself; [`Chain`] prints
//! an error with every cause its message does not already say, on one line, for logs.
//!
//! The resend judgement is not a table of its own: every error says how far the request got
//! ([`Reach`]) and, once it may have been applied, how safe it is to send again
//! ([`ResendSafety`]), and [`ProxyError::retryable`] asks the resend rule the attempt loop
//! moves by ([`ResendSafety::allows_resend`]).

use std::fmt;
use std::time::Duration;

use http::StatusCode;

pub mod audit;
mod chain;
pub mod resend;
pub mod rewrite;
pub mod upstream;
pub mod wire;

pub use audit::Unavailable;
pub use chain::Chain;
pub use resend::{Reach, ResendSafety};
pub use rewrite::RewriteError;
pub use upstream::{SignError, UpstreamError};
pub use wire::{AnswerError, BodyError, DecodeError, PartiqlError};

/// A cause of any type, as hyper and the connectors report theirs.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Who caused a failure: the caller, a region, or the sidecar itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The client sent something DynamoDB would refuse.
    Downstream,
    /// Every region that could take the request failed it.
    Upstream,
    /// The sidecar could not do its own part (signing, credentials, its audit trail).
    Internal,
}

/// A request the sidecar answers itself, instead of with a region's response.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// Text, not a type: the message is written for the client (DynamoDB's
    /// `UnknownOperationException`), and nothing failed behind it.
    #[error("{0}")]
    UnknownOperation(String),
    /// A body DynamoDB could not read (`SerializationException`).
    #[error("{0}")]
    Serialization(#[from] BodyError),
    /// Text, not a type: a `ValidationException`'s message is the whole of what the client
    /// is told, worded for it where the refusal is decided (a policy, a rewrite step), and
    /// no error lies behind it.
    #[error("{0}")]
    Validation(String),
    /// A PartiQL statement the sidecar cannot read with certainty (`ValidationException`).
    #[error(
        "the sidecar cannot read the PartiQL statement {statement:?} with certainty ({source}), so it cannot tell which tables it touches"
    )]
    UnreadableStatement {
        statement: String,
        #[source]
        source: PartiqlError,
    },
    /// A body (or what it decompresses to) past DynamoDB's size limit: HTTP 413.
    #[error("request body exceeds the {limit}-byte limit")]
    BodyTooLarge { limit: usize },
    /// A compressed body that cannot be decoded (DynamoDB's 500 `InternalFailure`).
    #[error("{0}")]
    Undecodable(#[from] DecodeError),
    /// The client sent its body slower than this allows (`ValidationException`).
    #[error("the request body did not arrive within {0:?}")]
    BodyTooSlow(Duration),
    /// The request's SigV4 signature is missing, malformed, wrong or out of date.
    #[error("{0}")]
    Auth(#[from] crate::auth::AuthError),
    /// The client may not touch a table the request names. Text, not a type: the message
    /// is DynamoDB's `AccessDeniedException` sentence, and no error lies behind it.
    #[error("{0}")]
    AccessDenied(String),
    /// Every attempt failed in a way that allowed moving on, and none is left.
    #[error("no region could serve the request ({failures})")]
    NoRegionAvailable {
        failures: Failures,
        /// Whether an attempt may have reached a region and been applied (a timeout or a
        /// broken connection of a request safe to move), rather than certainly not.
        maybe_applied: bool,
        safety: ResendSafety,
    },
    /// The request may have been applied in `region`, and sending it again is not safe.
    #[error(
        "the request may have been applied in {region}{} but no answer came back, and it is not safe to send again",
        .cause.in_message()
    )]
    AmbiguousWrite {
        region: String,
        #[source]
        cause: Ambiguity,
        safety: ResendSafety,
    },
    /// A request safe to resend ran out of time (with an attempt outstanding).
    #[error("the request did not complete within {0:?}")]
    DeadlineExceeded(Duration),
    #[error("cannot sign the upstream request: {0}")]
    Signing(#[from] SignError),
    #[error("internal error: {0}")]
    Internal(#[from] InternalError),
    /// Too many requests in flight: shed at once, before any work.
    #[error("the sidecar is at its limit of {0} requests in flight; retry")]
    Overloaded(usize),
    /// The request bodies in memory would pass `[server] max_body_memory_bytes`: refused
    /// before (more of) this one's body is read.
    #[error("the sidecar is holding its limit of {limit} bytes of request bodies; retry")]
    BodyMemory { limit: usize },
    /// A write to an audited table that could not be given its record: refused before it
    /// was sent.
    #[error("audit: {0}")]
    AuditUnavailable(#[from] Unavailable),
    /// The sidecar failed after `region` may have applied the request (building its
    /// verification, restoring its answer): `source` says how, and is what the client is
    /// told; this says that the request may have been applied, and where.
    #[error("{source}")]
    AfterSend {
        region: String,
        safety: ResendSafety,
        #[source]
        source: Box<ProxyError>,
    },
}

impl ProxyError {
    /// The same error, known to have happened after `region` may have applied a request of
    /// `safety`.
    #[must_use]
    pub fn after_send(self, region: &str, safety: ResendSafety) -> Self {
        match self {
            Self::AfterSend { .. } | Self::AmbiguousWrite { .. } => self,
            other => Self::AfterSend {
                region: region.to_owned(),
                safety,
                source: Box::new(other),
            },
        }
    }

    /// Where the fault lies.
    pub fn side(&self) -> Side {
        match self {
            Self::UnknownOperation(_)
            | Self::Serialization(_)
            | Self::Validation(_)
            | Self::UnreadableStatement { .. }
            | Self::BodyTooLarge { .. }
            | Self::Undecodable(_)
            | Self::BodyTooSlow(_)
            | Self::AccessDenied(_)
            | Self::Auth(_) => Side::Downstream,
            Self::NoRegionAvailable { .. }
            | Self::AmbiguousWrite { .. }
            | Self::DeadlineExceeded(_) => Side::Upstream,
            Self::Signing(_)
            | Self::Internal(_)
            | Self::AuditUnavailable(_)
            | Self::Overloaded(_)
            | Self::BodyMemory { .. } => Side::Internal,
            Self::AfterSend { source, .. } => source.side(),
        }
    }

    /// How far the request got before this error ended it.
    pub fn reach(&self) -> Reach {
        match self {
            // Refused for what it asks: the same request is refused the same way.
            Self::UnknownOperation(_)
            | Self::Serialization(_)
            | Self::Validation(_)
            | Self::UnreadableStatement { .. }
            | Self::BodyTooLarge { .. }
            | Self::Undecodable(_)
            | Self::BodyTooSlow(_)
            | Self::AccessDenied(_)
            | Self::Auth(_) => Reach::Answered,
            // The sidecar's own failures before anything left, and a request out of
            // attempts that never reached a region.
            Self::Signing(_)
            | Self::Internal(_)
            | Self::AuditUnavailable(_)
            | Self::Overloaded(_)
            | Self::BodyMemory { .. }
            | Self::NoRegionAvailable {
                maybe_applied: false,
                ..
            } => Reach::NotApplied,
            Self::NoRegionAvailable {
                maybe_applied: true,
                ..
            }
            | Self::AmbiguousWrite { .. }
            | Self::DeadlineExceeded(_)
            | Self::AfterSend { .. } => Reach::MaybeApplied,
        }
    }

    /// The resend safety of the request, for errors made where it is known (the attempt
    /// loop and after). `None` for the others, which end a request before anything was sent
    /// (the resend rule does not ask then).
    pub fn resend_safety(&self) -> Option<ResendSafety> {
        match self {
            Self::NoRegionAvailable { safety, .. }
            | Self::AmbiguousWrite { safety, .. }
            | Self::AfterSend { safety, .. } => Some(*safety),
            // Only a request safe to resend is given this error (any other gets
            // `AmbiguousWrite`).
            Self::DeadlineExceeded(_) => Some(ResendSafety::Safe),
            _ => None,
        }
    }

    /// Whether a write that ended in this error may have been applied.
    pub fn maybe_applied(&self) -> bool {
        self.reach() == Reach::MaybeApplied
    }

    /// The region a write that ended in this error may have been applied in, when one is
    /// known.
    pub fn region(&self) -> Option<&str> {
        match self {
            Self::AmbiguousWrite { region, .. } | Self::AfterSend { region, .. } => Some(region),
            _ => None,
        }
    }

    /// Whether the client may send the same request again without risk: the attempt loop's
    /// resend rule, for how far the request got and how safe it is to send again as it is
    /// (outside the loop, nothing verifies or pins it). An unknown safety counts as unsafe.
    pub fn retryable(&self) -> bool {
        let safety = self.resend_safety().unwrap_or(ResendSafety::Unsafe);
        safety.resent_as_is().allows_resend(self.reach())
    }
}

/// A failure inside the sidecar, with its cause.
#[derive(Debug, thiserror::Error)]
pub enum InternalError {
    /// A JSON document the sidecar built could not be written out.
    #[error("{0}")]
    Encode(#[source] serde_json::Error),
    /// The request, rewritten, could not be written out.
    #[error("the request could not be sent: {0}")]
    EncodeRequest(#[source] serde_json::Error),
    /// The request to a region could not be built.
    #[error("{0}")]
    Request(#[source] http::Error),
    /// An `X-Amz-Target` the sidecar names could not be a header.
    #[error("{0}")]
    Target(#[source] http::header::InvalidHeaderValue),
    /// `[auth] mode = "sigv4"` without a verifier in the snapshot.
    #[error("no signature verifier")]
    NoVerifier,
    #[error("a ListTables answer that is not a JSON object")]
    UnreadableListTables,
    /// A region's 200 answer to a streams request that is not a JSON object.
    #[error("a DynamoDB Streams answer that is not a JSON object: {0}")]
    UnreadableStreamsAnswer(#[source] serde_json::Error),
    /// The task decoding a compressed body ended without its result.
    #[error("the request body's decoding failed: {0}")]
    DecodeTask(#[source] tokio::task::JoinError),
    /// A region whose streams endpoint has no host to sign (the config checks it).
    #[error("region {0} has no streams endpoint host")]
    StreamsEndpoint(String),
    /// The sidecar sent this body itself, so it always decodes; if it did not, nothing
    /// trustworthy is left to verify against.
    #[error("the request as sent could not be decoded for its verification")]
    UnreadableSent,
    /// A rewrite step could not restore an answer safely.
    #[error("{0}")]
    Rewrite(#[source] RewriteError),
}

/// What the attempts of a request out of attempts met, in order; none when no region
/// could be tried at all.
#[derive(Debug, Default)]
pub struct Failures(pub Vec<AttemptFailure>);

impl fmt::Display for Failures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("every region is down");
        }
        for (i, failure) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{failure}")?;
        }
        Ok(())
    }
}

/// What one attempt met.
#[derive(Debug, thiserror::Error)]
pub enum AttemptFailure {
    /// The region answered with an error that allowed moving on (5xx, throttling).
    #[error("{region}: HTTP {status}")]
    Answered { region: String, status: StatusCode },
    /// No usable answer.
    #[error("{region}: {source}")]
    Failed {
        region: String,
        #[source]
        source: UpstreamError,
    },
}

impl AttemptFailure {
    /// `region` answered with `status`.
    pub fn answered(region: &crate::region::Region, status: StatusCode) -> Self {
        Self::Answered {
            region: region.name.clone(),
            status,
        }
    }

    /// `region` gave no usable answer.
    pub fn failed(region: &crate::region::Region, source: UpstreamError) -> Self {
        Self::Failed {
            region: region.name.clone(),
            source,
        }
    }
}

/// Why a write may have been applied without the sidecar knowing.
#[derive(Debug, thiserror::Error)]
pub enum Ambiguity {
    /// The attempt failed so, and resending is not safe.
    #[error("{0}")]
    Attempt(#[source] UpstreamError),
    /// Out of attempts in the one region the transaction may go to.
    #[error("{0}")]
    OutOfAttempts(Failures),
    /// The request's deadline passed with an attempt outstanding.
    #[error("the request's deadline passed while an attempt was outstanding")]
    Deadline,
    /// The only region that knows the transaction's token is no longer configured, and
    /// sending it anywhere else could apply it twice.
    #[error("the region the transaction may have run in is no longer configured")]
    RegionRemoved,
    /// A verification request could not tell whether the first attempt was applied.
    #[error("the verification could not tell whether the first attempt was applied")]
    Unverified,
}

impl Ambiguity {
    /// What the client's message says of the cause: the attempts' failures, in parentheses
    /// after the region; the other causes only in logs ([`Chain`]).
    fn in_message(&self) -> impl fmt::Display + '_ {
        struct InMessage<'a>(&'a Ambiguity);
        impl fmt::Display for InMessage<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.0 {
                    Ambiguity::Attempt(e) => write!(f, " ({e})"),
                    Ambiguity::OutOfAttempts(failures) => write!(f, " ({failures})"),
                    Ambiguity::Deadline | Ambiguity::RegionRemoved | Ambiguity::Unverified => {
                        Ok(())
                    }
                }
            }
        }
        InMessage(self)
    }
}

#[cfg(test)]
mod tests;
