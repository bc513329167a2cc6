use std::error::Error as _;
use std::time::Duration;

use http::StatusCode;

use super::*;
use crate::route::AttemptOutcome;

const SAFETIES: [ResendSafety; 4] = [
    ResendSafety::Safe,
    ResendSafety::Verifiable,
    ResendSafety::SameRegion,
    ResendSafety::Unsafe,
];

fn timeout() -> UpstreamError {
    UpstreamError::Timeout(Duration::from_secs(1))
}

fn refused() -> UpstreamError {
    UpstreamError::connect(std::io::Error::new(
        std::io::ErrorKind::ConnectionRefused,
        "connection refused",
    ))
}

/// One of each variant, for every resend safety where the variant carries one.
fn one_of_each() -> Vec<ProxyError> {
    let mut errors = vec![
        ProxyError::UnknownOperation("X-Amz-Target must be ...".into()),
        ProxyError::Serialization(crate::wire::BodyError::NotAnAttributeValue("a".into())),
        ProxyError::Validation("no".into()),
        ProxyError::UnreadableStatement {
            statement: "DROP".into(),
            source: crate::wire::partiql::PartiqlError::Empty,
        },
        ProxyError::BodyTooLarge { limit: 10 },
        ProxyError::Undecodable(DecodeError::Unsupported("br".into())),
        ProxyError::BodyTooSlow(Duration::from_secs(30)),
        ProxyError::Auth(crate::auth::AuthError::Missing),
        ProxyError::AccessDenied("no".into()),
        ProxyError::DeadlineExceeded(Duration::from_secs(10)),
        ProxyError::Internal(InternalError::NoVerifier),
        ProxyError::Overloaded(1),
        ProxyError::BodyMemory { limit: 1 },
        ProxyError::AuditUnavailable(crate::audit::Unavailable::EnabledByReload),
        ProxyError::Signing(crate::upstream::sign::SignError::Credentials(
            std::sync::Arc::new(
                aws_credential_types::provider::error::CredentialsError::not_loaded("no IMDS"),
            ),
        )),
    ];
    for safety in SAFETIES {
        for maybe_applied in [false, true] {
            errors.push(ProxyError::NoRegionAvailable {
                failures: Failures(vec![AttemptFailure::Failed {
                    region: "us-east-1".into(),
                    source: if maybe_applied { timeout() } else { refused() },
                }]),
                maybe_applied,
                safety,
            });
        }
        errors.push(ProxyError::AmbiguousWrite {
            region: "us-east-1".into(),
            cause: Ambiguity::Attempt(timeout()),
            safety,
        });
        errors.push(
            ProxyError::Internal(InternalError::UnreadableSent).after_send("us-east-1", safety),
        );
    }
    errors
}

/// The attempt outcome the loop would have met in the error's place; a match without a
/// wildcard, so a new variant must say where it stands.
fn loop_outcome(err: &ProxyError) -> AttemptOutcome {
    match err {
        // Refused as it stands, as a region's 4xx refuses it.
        ProxyError::UnknownOperation(_)
        | ProxyError::Serialization(_)
        | ProxyError::Validation(_)
        | ProxyError::UnreadableStatement { .. }
        | ProxyError::BodyTooLarge { .. }
        | ProxyError::Undecodable(_)
        | ProxyError::BodyTooSlow(_)
        | ProxyError::Auth(_)
        | ProxyError::AccessDenied(_) => AttemptOutcome::ClientError,
        // Nothing left the sidecar, as with a connection that never opened.
        ProxyError::Signing(_)
        | ProxyError::Internal(_)
        | ProxyError::Overloaded(_)
        | ProxyError::BodyMemory { .. }
        | ProxyError::AuditUnavailable(_)
        | ProxyError::NoRegionAvailable {
            maybe_applied: false,
            ..
        } => AttemptOutcome::ConnectError,
        // Sent, and no answer the client can have.
        ProxyError::NoRegionAvailable {
            maybe_applied: true,
            ..
        }
        | ProxyError::AmbiguousWrite { .. }
        | ProxyError::DeadlineExceeded(_)
        | ProxyError::AfterSend { .. } => AttemptOutcome::Timeout,
    }
}

#[test]
fn retryable_agrees_with_the_attempt_loop_for_every_variant() {
    for err in one_of_each() {
        let outcome = loop_outcome(&err);
        // The client's resend is the request as it is: neither verified nor pinned.
        let safety = err.resend_safety().unwrap_or(ResendSafety::Unsafe);
        assert_eq!(
            err.retryable(),
            outcome.should_move(safety.resent_as_is()),
            "{err:?}"
        );
        assert_eq!(
            err.maybe_applied(),
            outcome.reach() == Reach::MaybeApplied,
            "{err:?}"
        );
        if outcome == AttemptOutcome::ClientError {
            assert_eq!(err.side(), Side::Downstream, "{err:?}");
        }
    }
}

#[test]
fn a_write_that_may_have_been_applied_is_never_judged_safe_to_send_as_it_is() {
    for err in one_of_each() {
        let Some(safety) = err.resend_safety() else {
            continue;
        };
        if err.maybe_applied() && safety != ResendSafety::Safe {
            assert!(!err.retryable(), "{err:?}");
        }
    }
}

#[test]
fn an_ambiguous_write_names_its_region_as_a_field_and_keeps_its_cause() {
    let err = ProxyError::AmbiguousWrite {
        region: "eu-west-1".into(),
        cause: Ambiguity::Attempt(timeout()),
        safety: ResendSafety::Unsafe,
    };
    assert_eq!(err.region(), Some("eu-west-1"));
    assert_eq!(
        err.to_string(),
        "the request may have been applied in eu-west-1 (no answer within 1s) but no answer came back, and it is not safe to send again"
    );
    let cause = err.source().and_then(|c| c.downcast_ref::<Ambiguity>());
    assert!(matches!(
        cause,
        Some(Ambiguity::Attempt(UpstreamError::Timeout(_)))
    ));
    assert!(!err.retryable());
    // A cause the message does not say is in the log line.
    let deadline = ProxyError::AmbiguousWrite {
        region: "eu-west-1".into(),
        cause: Ambiguity::Deadline,
        safety: ResendSafety::SameRegion,
    };
    assert!(!deadline.to_string().contains("deadline"));
    assert!(Chain::for_log(&deadline).to_string().ends_with(
        "not safe to send again: the request's deadline passed while an attempt was outstanding"
    ));
}

#[test]
fn out_of_attempts_lists_what_each_region_met() {
    let err = ProxyError::NoRegionAvailable {
        failures: Failures(vec![
            AttemptFailure::Answered {
                region: "us-east-1".into(),
                status: StatusCode::SERVICE_UNAVAILABLE,
            },
            AttemptFailure::Failed {
                region: "us-west-2".into(),
                source: refused(),
            },
        ]),
        maybe_applied: true,
        safety: ResendSafety::Safe,
    };
    assert_eq!(
        err.to_string(),
        "no region could serve the request (us-east-1: HTTP 503 Service Unavailable; us-west-2: connect: connection refused)"
    );
    let none = ProxyError::NoRegionAvailable {
        failures: Failures::default(),
        maybe_applied: false,
        safety: ResendSafety::Unsafe,
    };
    assert_eq!(
        none.to_string(),
        "no region could serve the request (every region is down)"
    );
    assert!(none.retryable());
}

#[test]
fn after_send_reads_as_its_cause_but_counts_as_maybe_applied() {
    let err = ProxyError::Internal(InternalError::UnreadableListTables)
        .after_send("us-east-1", ResendSafety::Unsafe);
    assert_eq!(
        err.to_string(),
        "internal error: a ListTables answer that is not a JSON object"
    );
    assert_eq!(err.side(), Side::Internal);
    assert_eq!(err.region(), Some("us-east-1"));
    assert!(err.maybe_applied() && !err.retryable());
}

#[derive(Debug, thiserror::Error)]
#[error("outer: {0}")]
struct Outer(#[source] Inner);

#[derive(Debug, thiserror::Error)]
#[error("inner")]
struct Inner(#[source] std::io::Error);

#[test]
fn a_chain_says_each_cause_once_on_one_line() {
    let err = Outer(Inner(std::io::Error::other("disk\nfull")));
    assert_eq!(Chain::new(&err).to_string(), "outer: inner: disk\nfull");
    assert_eq!(
        Chain::for_log(&err).to_string(),
        "outer: inner: disk\\nfull"
    );
    let client_text = ProxyError::Validation("table \"a\u{2028}b\"\r\n".into());
    let logged = Chain::for_log(&client_text).to_string();
    assert!(!logged.contains(['\n', '\r', '\u{2028}']), "{logged}");
    assert!(logged.contains("\"a"), "quotes stay readable: {logged}");
}
