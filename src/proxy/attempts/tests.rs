//! The attempt loop against scripted regions, in simulated time: what moves, what stays,
//! what the client gets, without a real process.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::header::HOST;
use http::{HeaderMap, HeaderValue, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};

use super::*;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::upstream::outbound::Outbound;
use crate::upstream::sign::Signer;
use crate::upstream::{SendFuture, Transport, UpstreamResponse};
use crate::wire::Operation;

const ATTEMPT: Duration = Duration::from_secs(1);

/// What a scripted region does with its next request.
#[derive(Debug, Clone)]
enum Step {
    Answer(u16, Value),
    /// Connection refused: nothing sent.
    Refuse,
    /// No answer within the attempt timeout (the request may have been applied).
    Timeout,
    /// An answer that failed its checksum.
    Corrupt,
    /// This answer after this long (within the attempt timeout).
    Late(Duration, u16, Value),
}

/// Regions by host, each with its script; every request is recorded.
#[derive(Default)]
struct Script {
    steps: Mutex<HashMap<String, VecDeque<Step>>>,
    sent: Mutex<Vec<(String, Value)>>,
}

impl Script {
    fn with(steps: &[(&str, Step)]) -> Arc<Self> {
        let script = Self::default();
        for (host, step) in steps {
            script
                .steps
                .lock()
                .unwrap()
                .entry((*host).to_owned())
                .or_default()
                .push_back(step.clone());
        }
        Arc::new(script)
    }

    /// The hosts that received requests, in order.
    fn hosts(&self) -> Vec<String> {
        self.sent
            .lock()
            .unwrap()
            .iter()
            .map(|(h, _)| h.clone())
            .collect()
    }

    fn bodies(&self) -> Vec<Value> {
        self.sent
            .lock()
            .unwrap()
            .iter()
            .map(|(_, b)| b.clone())
            .collect()
    }
}

impl Transport for Script {
    fn send(
        &self,
        request: Request<Full<Bytes>>,
        deadline: tokio::time::Instant,
    ) -> SendFuture<'_> {
        Box::pin(async move {
            let host = request.headers()[HOST].to_str().unwrap().to_owned();
            let host = host.split(':').next().unwrap().to_owned();
            let body = request.into_body().collect().await.unwrap().to_bytes();
            let body: Value = serde_json::from_slice(&body).unwrap();
            self.sent.lock().unwrap().push((host.clone(), body));
            let step = self
                .steps
                .lock()
                .unwrap()
                .get_mut(&host)
                .and_then(VecDeque::pop_front)
                .unwrap_or(Step::Answer(200, json!({})));
            match step {
                Step::Answer(status, body) => Ok(UpstreamResponse {
                    status: StatusCode::from_u16(status).unwrap(),
                    headers: HeaderMap::new(),
                    body: Bytes::from(body.to_string()),
                    elapsed: Duration::from_millis(1),
                    checksum: None,
                }),
                Step::Refuse => Err(UpstreamError::connect("refused")),
                Step::Timeout => {
                    let attempt_over = tokio::time::Instant::now() + ATTEMPT;
                    tokio::time::sleep_until(attempt_over.min(deadline)).await;
                    Err(UpstreamError::Timeout(ATTEMPT))
                }
                Step::Late(after, status, body) => {
                    tokio::time::sleep(after).await;
                    Ok(UpstreamResponse {
                        status: StatusCode::from_u16(status).unwrap(),
                        headers: HeaderMap::new(),
                        body: Bytes::from(body.to_string()),
                        elapsed: after,
                        checksum: None,
                    })
                }
                Step::Corrupt => Err(UpstreamError::Corrupt(
                    crate::wire::AnswerError::ChecksumMismatch {
                        declared: 1,
                        actual: 2,
                    },
                )),
            }
        })
    }
}

async fn proxy(script: &Arc<Script>) -> Proxy {
    let config = Config::from_toml_str(
        r#"
[upstream_credentials]
access_key_id = "AKIDTEST"
secret_access_key = "test-secret"

[[regions]]
name = "us-east-1"
endpoint = "http://home:1"

[[regions]]
name = "us-west-2"
endpoint = "http://second:1"

[timeouts]
attempt_ms = 1000
request_ms = 10000

[routing]
eject_after_failures = 100
"#,
    )
    .unwrap();
    let signer = Signer::from_config(&config.credentials, "us-east-1").await;
    let mut snapshot = Snapshot::build(config, signer, None).unwrap();
    snapshot.upstream = Arc::clone(script) as Arc<dyn Transport>;
    Proxy::new(snapshot, Metrics::new().unwrap())
}

fn forward<'a>(
    operation: &'a Operation,
    body: &Value,
    verifiable: Option<(&'a serde_json::Map<String, Value>, &'a own_write::Mark)>,
    pin_token: Option<&'a str>,
) -> Forward<'a> {
    let verifiable = verifiable.map(|(document, mark)| (own_write::Sent::Document(document), mark));
    let target = HeaderValue::from_str(&format!("DynamoDB_20120810.{}", operation.name())).unwrap();
    let body = Bytes::from(body.to_string());
    Forward {
        operation,
        received: repeats::Received {
            target: target.clone(),
            body: body.clone(),
        },
        outbound: Outbound {
            target,
            content_type: None,
            user_agent: None,
            body,
        },
        verifiable,
        pin_token,
        region_bodies: &[],
        read: None,
    }
}

async fn run(
    proxy: &Proxy,
    operation: &Operation,
    body: &Value,
    safety: ResendSafety,
) -> Result<Reply, ProxyError> {
    let snapshot = proxy.snapshot.load_full();
    let token = body.get("ClientRequestToken").and_then(Value::as_str);
    let req = forward(
        operation,
        body,
        None,
        token.filter(|_| safety == ResendSafety::SameRegion),
    );
    proxy.forward(&snapshot, &req, safety).await
}

#[tokio::test(start_paused = true)]
async fn a_read_moves_on_after_a_timeout_and_a_doubling_write_does_not() {
    let script = Script::with(&[("home", Step::Timeout), ("home", Step::Timeout)]);
    let proxy = proxy(&script).await;
    let get = json!({"TableName": "T", "Key": {"k": {"S": "1"}}});
    let reply = run(&proxy, &Operation::GetItem, &get, ResendSafety::Safe)
        .await
        .unwrap();
    assert_eq!(reply.region.name, "us-west-2");
    assert_eq!(script.hosts(), ["home", "second"]);

    let add = json!({"TableName": "T", "Key": {"k": {"S": "1"}}, "UpdateExpression": "ADD n :one"});
    let err = run(&proxy, &Operation::UpdateItem, &add, ResendSafety::Unsafe)
        .await
        .unwrap_err();
    assert!(matches!(err, ProxyError::AmbiguousWrite { .. }), "{err}");
    assert_eq!(
        script.hosts(),
        ["home", "second", "home"],
        "the ADD was resent"
    );
}

#[tokio::test(start_paused = true)]
async fn a_refused_connection_moves_at_once_and_costs_no_budget() {
    let script = Script::with(&[("home", Step::Refuse)]);
    let proxy = proxy(&script).await;
    let budget = Arc::clone(&proxy.snapshot.load().retry_budget);
    let before = budget.tokens();
    let started = tokio::time::Instant::now();
    let put = json!({"TableName": "T", "Item": {"k": {"S": "1"}}, "ConditionExpression": "a = :b"});
    let reply = run(&proxy, &Operation::PutItem, &put, ResendSafety::Unsafe)
        .await
        .unwrap();
    assert_eq!(
        reply.region.name, "us-west-2",
        "nothing was sent, so even an unsafe write moves"
    );
    assert_eq!(
        started.elapsed(),
        Duration::ZERO,
        "no pause after an unreachable region"
    );
    assert_eq!(
        budget.tokens(),
        before,
        "a move after a refused connection is free"
    );
}

#[tokio::test(start_paused = true)]
async fn a_transaction_that_may_have_run_stays_in_its_region() {
    let script = Script::with(&[
        (
            "home",
            Step::Answer(500, json!({"__type": "x#InternalServerError"})),
        ),
        ("home", Step::Timeout),
    ]);
    let proxy = proxy(&script).await;
    let transaction = json!({"TransactItems": [], "ClientRequestToken": "tok"});
    let reply = run(
        &proxy,
        &Operation::TransactWriteItems,
        &transaction,
        ResendSafety::SameRegion,
    )
    .await
    .unwrap();
    assert_eq!(reply.region.name, "us-east-1");
    assert_eq!(script.hosts(), ["home", "home", "home"]);
    // The client's own retry, with the same token, goes there too.
    assert_eq!(proxy.pins.region_of("tok").as_deref(), Some("us-east-1"));
    let reply = run(
        &proxy,
        &Operation::TransactWriteItems,
        &transaction,
        ResendSafety::SameRegion,
    )
    .await
    .unwrap();
    assert_eq!(reply.region.name, "us-east-1");
    assert!(!script.hosts().contains(&"second".to_owned()));
}

#[tokio::test(start_paused = true)]
async fn a_conditional_put_meeting_its_own_first_attempt_is_a_success() {
    let item = json!({"k": {"S": "1"}, "n": {"N": "1.50"}});
    let put =
        json!({"TableName": "T", "Item": item, "ConditionExpression": "attribute_not_exists(k)"});
    let failure = json!({
        "__type": "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException",
        "Item": {"k": {"S": "1"}, "n": {"N": "1.5"}}
    });
    let script = Script::with(&[
        ("home", Step::Timeout),
        ("second", Step::Answer(400, failure)),
    ]);
    let proxy = proxy(&script).await;
    let snapshot = proxy.snapshot.load_full();
    let document = put.as_object().unwrap().clone();
    let req = forward(
        &Operation::PutItem,
        &put,
        Some((&document, &own_write::Mark::SameItem)),
        None,
    );
    let reply = proxy
        .forward(&snapshot, &req, ResendSafety::Verifiable)
        .await
        .unwrap();
    assert_eq!(reply.upstream.status, StatusCode::OK);
    let resend = &script.bodies()[1];
    assert_eq!(resend["ReturnValuesOnConditionCheckFailure"], "ALL_OLD");
}

#[tokio::test(start_paused = true)]
async fn a_corrupt_answer_never_reaches_the_client() {
    let script = Script::with(&[("home", Step::Corrupt), ("home", Step::Corrupt)]);
    let proxy = proxy(&script).await;
    let get = json!({"TableName": "T", "Key": {"k": {"S": "1"}}});
    let reply = run(&proxy, &Operation::GetItem, &get, ResendSafety::Safe)
        .await
        .unwrap();
    assert_eq!(reply.region.name, "us-west-2");
    let delete = json!({"TableName": "T", "Key": {"k": {"S": "1"}}, "ReturnValues": "ALL_OLD"});
    let err = run(
        &proxy,
        &Operation::DeleteItem,
        &delete,
        ResendSafety::Unsafe,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ProxyError::AmbiguousWrite { .. }), "{err}");
}

#[tokio::test(start_paused = true)]
async fn a_replicated_write_conflict_is_retried_in_the_same_region() {
    let conflict =
        json!({"__type": "com.amazonaws.dynamodb.v20120810#ReplicatedWriteConflictException"});
    let script = Script::with(&[("home", Step::Answer(400, conflict))]);
    let proxy = proxy(&script).await;
    let put = json!({"TableName": "T", "Item": {"k": {"S": "1"}}, "ConditionExpression": "a = :b"});
    let reply = run(&proxy, &Operation::PutItem, &put, ResendSafety::Unsafe)
        .await
        .unwrap();
    assert_eq!(reply.region.name, "us-east-1");
    assert_eq!(
        script.hosts(),
        ["home", "home"],
        "rejected, not applied: retried at home"
    );
}

/// Whether the loop sent the request's first body again, unchanged, to another region: a
/// resend as it is, which is what an error's `retryable` judges for the client.
fn moved_as_is(script: &Script) -> bool {
    let sent = script.sent.lock().unwrap();
    let Some((first_host, first_body)) = sent.first() else {
        return false;
    };
    sent.iter()
        .skip(1)
        .any(|(host, body)| host != first_host && body == first_body)
}

#[tokio::test(start_paused = true)]
async fn every_error_of_the_loop_judges_a_resend_as_the_loop_did() {
    let get = json!({"TableName": "T", "Key": {"k": {"S": "1"}}});
    let add = json!({"TableName": "T", "Key": {"k": {"S": "1"}}, "UpdateExpression": "ADD n :one"});
    let put = json!({"TableName": "T", "Item": {"k": {"S": "1"}}, "ConditionExpression": "attribute_not_exists(k)"});
    let transaction = json!({"TransactItems": [], "ClientRequestToken": "tok"});
    let cases = [
        (Operation::GetItem, &get, ResendSafety::Safe, Step::Refuse),
        (Operation::GetItem, &get, ResendSafety::Safe, Step::Timeout),
        (Operation::GetItem, &get, ResendSafety::Safe, Step::Corrupt),
        (
            Operation::UpdateItem,
            &add,
            ResendSafety::Unsafe,
            Step::Refuse,
        ),
        (
            Operation::UpdateItem,
            &add,
            ResendSafety::Unsafe,
            Step::Timeout,
        ),
        (
            Operation::UpdateItem,
            &add,
            ResendSafety::Unsafe,
            Step::Corrupt,
        ),
        (
            Operation::PutItem,
            &put,
            ResendSafety::Verifiable,
            Step::Refuse,
        ),
        (
            Operation::PutItem,
            &put,
            ResendSafety::Verifiable,
            Step::Timeout,
        ),
        (
            Operation::TransactWriteItems,
            &transaction,
            ResendSafety::SameRegion,
            Step::Refuse,
        ),
        (
            Operation::TransactWriteItems,
            &transaction,
            ResendSafety::SameRegion,
            Step::Timeout,
        ),
    ];
    for (operation, body, safety, step) in cases {
        let steps: Vec<_> = ["home", "second"]
            .into_iter()
            .flat_map(|host| std::iter::repeat_n((host, step.clone()), 10))
            .collect();
        let script = Script::with(&steps);
        let proxy = proxy(&script).await;
        let snapshot = proxy.snapshot.load_full();
        let document = body.as_object().unwrap().clone();
        let verifiable =
            (safety == ResendSafety::Verifiable).then_some((&document, &own_write::Mark::SameItem));
        let token = (safety == ResendSafety::SameRegion).then_some("tok");
        let req = forward(&operation, body, verifiable, token);
        let err = proxy.forward(&snapshot, &req, safety).await.unwrap_err();
        assert_eq!(
            err.retryable(),
            moved_as_is(&script),
            "{operation:?} {safety:?} {step:?}: {err} after {:?}",
            script.hosts()
        );
        assert_eq!(err.maybe_applied(), !matches!(step, Step::Refuse), "{err}");
    }
}

mod hedging;
