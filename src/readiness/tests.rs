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

/// A region that accepts the check of the tables it is told to and refuses the others'
/// (`AccessDeniedException`), counting the checks of each table.
#[derive(Default)]
struct Region {
    accepting: Mutex<HashSet<String>>,
    checks: Mutex<HashMap<String, usize>>,
}

impl Region {
    fn accept(&self, table: &str) {
        self.accepting.lock().unwrap().insert(table.to_owned());
    }

    fn checks(&self, table: &str) -> usize {
        self.checks.lock().unwrap().get(table).copied().unwrap_or(0)
    }
}

impl crate::upstream::Transport for Region {
    fn send(
        &self,
        request: http::Request<http_body_util::Full<Bytes>>,
        _deadline: tokio::time::Instant,
    ) -> crate::upstream::SendFuture<'_> {
        Box::pin(async move {
            use http_body_util::BodyExt;
            let sent = request.into_body().collect().await.unwrap().to_bytes();
            let sent: serde_json::Value = serde_json::from_slice(&sent).unwrap();
            let table = sent["TableName"].as_str().unwrap().to_owned();
            *self
                .checks
                .lock()
                .unwrap()
                .entry(table.clone())
                .or_default() += 1;
            let (status, answer) = if self.accepting.lock().unwrap().contains(&table) {
                (StatusCode::OK, b"{}".to_vec())
            } else {
                let denied = "com.amazon.coral.service#AccessDeniedException";
                (StatusCode::BAD_REQUEST, body(denied))
            };
            Ok(crate::upstream::UpstreamResponse {
                status,
                headers: http::HeaderMap::new(),
                body: Bytes::from(answer),
                elapsed: std::time::Duration::from_millis(1),
                checksum: None,
            })
        })
    }
}

/// A proxy whose only region is `region`, managing `tables` (keyed by `ItemID`).
async fn proxy_managing(region: &Arc<Region>, tables: &[&str]) -> crate::proxy::Proxy {
    use std::fmt::Write as _;
    let mut text = r#"
[upstream_credentials]
access_key_id = "AKIDTEST"
secret_access_key = "test-secret"

[[regions]]
name = "us-east-1"
endpoint = "http://home:1"
"#
    .to_owned();
    for table in tables {
        write!(
            text,
            "\n[[tables]]\nname = \"{table}\"\npartition_key = \"ItemID\"\n"
        )
        .unwrap();
    }
    let config = crate::config::Config::from_toml_str(&text).unwrap();
    let signer = crate::upstream::sign::Signer::from_config(&config.credentials, "us-east-1").await;
    let mut snapshot = Snapshot::build(config, signer, None).unwrap();
    snapshot.upstream = Arc::clone(region) as Arc<dyn crate::upstream::Transport>;
    crate::proxy::Proxy::new(snapshot, crate::metrics::Metrics::new().unwrap())
}

#[tokio::test]
async fn a_round_checks_only_the_tables_not_yet_accepted() {
    let region = Arc::new(Region::default());
    region.accept("Orders");
    let proxy = proxy_managing(&region, &["Orders", "Events"]).await;
    let snapshot = proxy.snapshot.load_full();
    let (gate, _metrics) = gate();
    let mut accepted = HashSet::new();
    for _ in 0..3 {
        let why = round(&proxy, &snapshot, &gate, &mut accepted)
            .await
            .unwrap_err();
        assert!(why.starts_with("Events not accepted"), "{why}");
    }
    assert_eq!(region.checks("Orders"), 1, "checked again once accepted");
    assert_eq!(region.checks("Events"), 3);
    assert_eq!(accepted.len(), 1, "{accepted:?}");
    region.accept("Events");
    round(&proxy, &snapshot, &gate, &mut accepted)
        .await
        .unwrap();
    assert_eq!((region.checks("Orders"), region.checks("Events")), (1, 4));

    // A reload that drops a table: the list forgets it.
    let reloaded = proxy_managing(&region, &["Events"]).await;
    let snapshot = reloaded.snapshot.load_full();
    round(&reloaded, &snapshot, &gate, &mut accepted)
        .await
        .unwrap();
    assert_eq!(accepted, HashSet::from(["Events".to_owned()]));
    assert_eq!(region.checks("Events"), 4);
}

#[test]
fn the_audit_tables_failed_condition_proves_the_write_permission() {
    let error = |name: &str| {
        format!(r#"{{"__type":"com.amazonaws.dynamodb.v20120810#{name}","message":"m"}}"#)
            .into_bytes()
    };
    assert_eq!(
        judge_audit(
            StatusCode::BAD_REQUEST,
            &error("ConditionalCheckFailedException")
        ),
        Check::Accepted
    );
    assert_eq!(
        judge_audit(StatusCode::BAD_REQUEST, &error("AccessDeniedException")),
        Check::Refused("AccessDeniedException")
    );
    assert!(matches!(
        judge_audit(StatusCode::BAD_REQUEST, &error("ResourceNotFoundException")),
        Check::Inconclusive(_)
    ));
}
