use super::*;

fn body(kind: &str) -> Vec<u8> {
    serde_json::json!({"__type": kind, "message": "m"})
        .to_string()
        .into_bytes()
}

#[test]
fn a_success_is_accepted() {
    assert_eq!(judge(StatusCode::OK, b"{}", false), Check::Accepted);
    assert_eq!(judge(StatusCode::OK, b"{}", true), Check::Accepted);
}

#[test]
fn authorisation_failures_are_refusals_named_as_dynamodb_names_them() {
    for (kind, name) in [
        (
            "com.amazon.coral.service#UnrecognizedClientException",
            "UnrecognizedClientException",
        ),
        (
            "com.amazon.coral.service#AccessDeniedException",
            "AccessDeniedException",
        ),
        (
            "com.amazon.coral.service#InvalidSignatureException",
            "InvalidSignatureException",
        ),
        (
            "com.amazon.coral.service#ExpiredTokenException",
            "ExpiredTokenException",
        ),
        (
            "MissingAuthenticationTokenException",
            "MissingAuthenticationTokenException",
        ),
        ("ExpiredToken", "ExpiredToken"),
    ] {
        assert_eq!(
            judge(StatusCode::BAD_REQUEST, &body(kind), false),
            Check::Refused(name),
            "{kind}"
        );
    }
}

#[test]
fn without_managed_tables_access_denied_on_the_absent_table_proves_the_credentials() {
    let denied = body("com.amazon.coral.service#AccessDeniedException");
    assert_eq!(
        judge(StatusCode::BAD_REQUEST, &denied, true),
        Check::Accepted
    );
    let missing = body("com.amazonaws.dynamodb.v20120810#ResourceNotFoundException");
    assert_eq!(
        judge(StatusCode::BAD_REQUEST, &missing, true),
        Check::Accepted
    );
    // An unknown key still is not.
    let unknown = body("com.amazon.coral.service#UnrecognizedClientException");
    assert_eq!(
        judge(StatusCode::BAD_REQUEST, &unknown, true),
        Check::Refused("UnrecognizedClientException")
    );
}

#[test]
fn other_answers_about_a_managed_table_prove_nothing() {
    let missing = body("com.amazonaws.dynamodb.v20120810#ResourceNotFoundException");
    assert_eq!(
        judge(StatusCode::BAD_REQUEST, &missing, false),
        Check::Inconclusive("ResourceNotFoundException".into())
    );
    assert_eq!(
        judge(StatusCode::INTERNAL_SERVER_ERROR, b"oops", false),
        Check::Inconclusive("HTTP 500".into())
    );
    // Without managed tables a 5xx is no proof either.
    assert!(matches!(
        judge(StatusCode::SERVICE_UNAVAILABLE, b"", true),
        Check::Inconclusive(_)
    ));
}

#[test]
fn a_bare_403_is_a_refusal() {
    assert_eq!(
        judge(StatusCode::FORBIDDEN, b"<html>denied</html>", false),
        Check::Refused(FORBIDDEN)
    );
}

fn gate() -> (Gate, crate::metrics::Metrics) {
    let metrics = crate::metrics::Metrics::new().unwrap();
    let regions = ["us-east-1", "eu-central-1"];
    let gate = Gate::new(
        metrics.readiness_refusals.clone(),
        metrics.ready.clone(),
        &regions,
    );
    (gate, metrics)
}

#[test]
fn the_gate_starts_shut_and_latches_open() {
    let (gate, metrics) = gate();
    assert!(gate.verdict().is_err());
    assert_eq!(metrics.ready.get(), 0);
    gate.wait("GlobalCatalog not accepted by any region (us-east-1: AccessDeniedException)".into());
    assert!(
        gate.verdict()
            .unwrap_err()
            .contains("us-east-1: AccessDeniedException")
    );
    gate.open();
    assert_eq!(gate.verdict(), Ok(()));
    assert_eq!(metrics.ready.get(), 1);
}

#[test]
fn refusals_are_counted_by_region_and_error() {
    let (gate, metrics) = gate();
    gate.refused("us-east-1", "T", "UnrecognizedClientException");
    gate.refused("us-east-1", "T", "UnrecognizedClientException");
    gate.refused("eu-central-1", "T", NO_CREDENTIALS);
    let count = |region: &str, error: &str| {
        metrics
            .readiness_refusals
            .with_label_values(&[region, error])
            .get()
    };
    assert_eq!(count("us-east-1", "UnrecognizedClientException"), 2);
    assert_eq!(count("eu-central-1", NO_CREDENTIALS), 1);
    let text = String::from_utf8(metrics.render().unwrap()).unwrap();
    assert!(text.contains(
        "globalscale_readiness_refusals_total{error=\"UnrecognizedClientException\",region=\"us-east-1\"} 2"
    ), "{text}");
    // Exported at zero from the start.
    assert!(text.contains(
        "globalscale_readiness_refusals_total{error=\"AccessDeniedException\",region=\"eu-central-1\"} 0"
    ), "{text}");
}
