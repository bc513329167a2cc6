//! The retry-safety table: how an attempt ended, and whether the request may move to the
//! next region. (docs/src/retry-safety.md carries the same table for operators.)
//!
//! | attempt ended                         | moved to the next region?                        |
//! |---------------------------------------|--------------------------------------------------|
//! | connect failed (nothing sent)         | always                                           |
//! | throttled (nothing applied)           | always                                           |
//! | timeout, broken connection, HTTP 5xx, | only if resending is safe or verifiable, or to the  |
//! | an answer that fails its checksum     | same region for a token-carrying transaction ([`ResendSafety`]) |
//! | any other 4xx (client error)          | never: returned at once                          |
//! | 2xx                                   | returned                                         |

pub use crate::error::{Reach, ResendSafety};
use std::time::Duration;

use serde_json::{Map, Value};

use crate::expr::update::is_set;
use crate::expr::{ExpressionSet, Expressions};
use crate::region::Failure;
use crate::upstream::UpstreamError;
use crate::wire::{Operation, error_name, is_throttling};

/// How one attempt against one region ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    Success,
    /// A 4xx the caller must see: validation, condition failed, not found, ...
    ClientError,
    /// Throttled: DynamoDB did not apply the request.
    Throttled,
    /// HTTP 5xx: DynamoDB may or may not have applied it.
    ServerError,
    /// No connection: nothing was sent.
    ConnectError,
    /// Sent, no complete answer within the attempt timeout.
    Timeout,
    /// The connection broke after the request may have been sent.
    TransportError,
    /// An answer that fails its `x-amz-crc32` or, as a success, is not JSON: the region may
    /// have applied the request, but what it said about it cannot be trusted.
    CorruptAnswer,
    /// `ReplicatedWriteConflictException` (multi-Region strong consistency): another region
    /// was writing the item; this write was rejected, not applied, and is retried in the same
    /// region after a pause, where the conflict resolves.
    WriteConflict,
}

impl AttemptOutcome {
    /// Every outcome, for series exported at zero from the start.
    pub const ALL: [Self; 9] = [
        Self::Success,
        Self::ClientError,
        Self::Throttled,
        Self::ServerError,
        Self::ConnectError,
        Self::Timeout,
        Self::TransportError,
        Self::CorruptAnswer,
        Self::WriteConflict,
    ];

    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::ClientError => "client_error",
            Self::Throttled => "throttled",
            Self::ServerError => "server_error",
            Self::ConnectError => "connect_error",
            Self::Timeout => "timeout",
            Self::TransportError => "transport_error",
            Self::CorruptAnswer => "corrupt_answer",
            Self::WriteConflict => "write_conflict",
        }
    }

    /// How an attempt that got no usable answer ended.
    pub fn from_error(err: &UpstreamError) -> Self {
        match err {
            UpstreamError::Connect { .. } | UpstreamError::NotAbsolute(_) => Self::ConnectError,
            UpstreamError::Timeout(_) => Self::Timeout,
            UpstreamError::Transport { .. } | UpstreamError::ResponseTooLarge => {
                Self::TransportError
            }
            UpstreamError::Corrupt(_) => Self::CorruptAnswer,
        }
    }

    /// What the outcome says against the region's health; `None` for an answer the region
    /// served correctly (a client error is the request's fault, not the region's).
    pub fn as_failure(self) -> Option<Failure> {
        match self {
            Self::Success | Self::ClientError | Self::WriteConflict => None,
            Self::Throttled | Self::ServerError | Self::CorruptAnswer => Some(Failure::ErrorAnswer),
            Self::ConnectError | Self::TransportError => Some(Failure::Unreachable),
            Self::Timeout => Some(Failure::Timeout),
        }
    }

    /// Whether the region answered with an error that allows moving on (5xx, throttling).
    pub fn is_error_answer(self) -> bool {
        matches!(
            self,
            Self::ServerError | Self::Throttled | Self::CorruptAnswer
        )
    }

    /// How far the request got, for the resend rule.
    pub fn reach(self) -> Reach {
        match self {
            Self::Success | Self::ClientError => Reach::Answered,
            Self::ConnectError | Self::Throttled | Self::WriteConflict => Reach::NotApplied,
            Self::ServerError | Self::Timeout | Self::TransportError | Self::CorruptAnswer => {
                Reach::MaybeApplied
            }
        }
    }

    /// Whether the request certainly was not applied, so moving it is always safe.
    pub fn not_applied(self) -> bool {
        self.reach() == Reach::NotApplied
    }

    /// Whether another region should get the request, given how safe resending is: the
    /// resend rule ([`ResendSafety::allows_resend`]) for how far this attempt got.
    pub fn should_move(self, safety: ResendSafety) -> bool {
        safety.allows_resend(self.reach())
    }
}

/// Classifies a region's HTTP answer.
pub fn classify_response(status: http::StatusCode, body: &[u8]) -> AttemptOutcome {
    if status.is_success() {
        AttemptOutcome::Success
    } else if status.is_server_error() {
        AttemptOutcome::ServerError
    } else if let Some(name) = error_name(body) {
        if is_throttling(&name) {
            AttemptOutcome::Throttled
        } else if name == "ReplicatedWriteConflictException" {
            AttemptOutcome::WriteConflict
        } else {
            AttemptOutcome::ClientError
        }
    } else {
        AttemptOutcome::ClientError
    }
}

/// The retry-safety table for one parsed request. `TransactWriteItems` and
/// `ExecuteTransaction` carry a `ClientRequestToken` by the time this is asked (the sidecar
/// adds one, see `rewrite::idempotency`). `expressions` are the request's as the plan parsed
/// them and the steps left them (an update is judged from its tree); `statements_read` says
/// whether every PartiQL statement of the request only reads, as the plan read them once
/// (false for the other operations, and for a statement the plan could not read).
pub fn resend_safety(
    op: &Operation,
    request: &Map<String, Value>,
    expressions: &Expressions,
    statements_read: bool,
) -> ResendSafety {
    if *op == Operation::PutItem && verifiable_put(request) {
        return ResendSafety::Verifiable;
    }
    let safe = match op {
        _ if op.is_read() => true,
        Operation::PutItem | Operation::DeleteItem => idempotent_write(request, None),
        Operation::UpdateItem => {
            idempotent_write(request, Some((request, expressions.top.as_ref().ok())))
        }
        // Batched puts and deletes are unconditional by definition.
        Operation::BatchWriteItem => true,
        Operation::TransactWriteItems if idempotent_transaction(request, expressions) => true,
        Operation::ExecuteTransaction if statements_read => true,
        Operation::TransactWriteItems | Operation::ExecuteTransaction => {
            return if request.contains_key("ClientRequestToken") {
                ResendSafety::SameRegion
            } else {
                ResendSafety::Unsafe
            };
        }
        Operation::ExecuteStatement | Operation::BatchExecuteStatement => statements_read,
        _ => false,
    };
    if safe {
        ResendSafety::Safe
    } else {
        ResendSafety::Unsafe
    }
}

/// A put with a `ConditionExpression` whose success answer carries no old item (which the
/// sidecar could not reproduce after its own first attempt was applied).
fn verifiable_put(request: &Map<String, Value>) -> bool {
    let returns_nothing = request
        .get("ReturnValues")
        .is_none_or(|v| v.as_str() == Some("NONE"));
    request.contains_key("ConditionExpression")
        && !request.contains_key("Expected")
        && request.get("Item").is_some_and(Value::is_object)
        && returns_nothing
}

fn is_conditional(request: &Map<String, Value>) -> bool {
    request.get("ConditionExpression").is_some() || request.get("Expected").is_some()
}

/// An update request with its expressions as the plan parsed them (`None`: unreadable).
type Update<'r> = (&'r Map<String, Value>, Option<&'r ExpressionSet>);

/// An unconditional put, delete or (with `update`) update that lands on the same item twice
/// and answers the same: an old image (`ALL_OLD`, `UPDATED_OLD`) after a resend would be the
/// first attempt's result, not what the item held before.
fn idempotent_write(request: &Map<String, Value>, update: Option<Update<'_>>) -> bool {
    let returns_old = request
        .get("ReturnValues")
        .and_then(Value::as_str)
        .is_some_and(|v| v == "ALL_OLD" || v == "UPDATED_OLD");
    !is_conditional(request) && !returns_old && update.is_none_or(idempotent_update)
}

/// The update rule of [`UpdateExpression::idempotent`], for the expression or the legacy
/// `AttributeUpdates` (whose `ADD` is idempotent only into a set). An expression that does
/// not parse is DynamoDB's to refuse; it is never resent.
fn idempotent_update((request, set): Update<'_>) -> bool {
    if let Some(updates) = request.get("AttributeUpdates").and_then(Value::as_object) {
        let all = updates.values().all(|u| {
            let action = u.get("Action").and_then(Value::as_str).unwrap_or("PUT");
            action != "ADD" || u.get("Value").is_some_and(is_set)
        });
        if !all {
            return false;
        }
    }
    if !request.contains_key("UpdateExpression") {
        return true;
    }
    let Some(parsed) = set.and_then(|set| set.update.as_ref()) else {
        return false;
    };
    let map = |key: &str| request.get(key).and_then(Value::as_object);
    parsed.idempotent(
        map("ExpressionAttributeNames"),
        map("ExpressionAttributeValues"),
    )
}

/// A transaction that may run twice, even in two regions: every write in it is an
/// idempotent write by the rules above. A `ConditionCheck` may stay: it reads an item that
/// no other action of the transaction writes, so its first run cannot change its verdict.
fn idempotent_transaction(request: &Map<String, Value>, expressions: &Expressions) -> bool {
    let Some(items) = request.get("TransactItems").and_then(Value::as_array) else {
        return false;
    };
    items.iter().enumerate().all(|(index, item)| {
        let Some(item) = item.as_object() else {
            return false;
        };
        let action = |name: &str| item.get(name).and_then(Value::as_object);
        if let Some(put) = action("Put").or_else(|| action("Delete")) {
            idempotent_write(put, None)
        } else if let Some(update) = action("Update") {
            idempotent_write(update, Some((update, expressions.action(index).ok())))
        } else {
            action("ConditionCheck").is_some()
        }
    })
}

/// The first pause after error answers; it doubles with each further one.
const ERROR_BACKOFF_BASE: Duration = Duration::from_millis(25);
/// The longest pause after error answers.
const ERROR_BACKOFF_CAP: Duration = Duration::from_secs(1);
/// The pause before starting over from the best region, growing with each round.
const ROUND_BACKOFF: Duration = Duration::from_millis(50);

/// The ceiling of the pause before the next attempt of one request (jitter is the caller's).
///
/// A region that could not be reached says nothing about the others, so the next region is
/// tried at once. The first error answer (5xx, throttling) also moves on at once: it is most
/// likely that region's own trouble. Further error answers point at something the regions
/// share (a table-wide throttle, a global table's hiccup), so the pause doubles from 25 ms
/// up to 1 s, as AWS SDKs back off. Starting a new round over the candidates waits at least
/// 50 ms per round, so a surviving region's brief hiccup is waited out rather than hammered.
pub fn backoff_ceiling(error_answers: u32, new_round: u32) -> Duration {
    let after_errors = match error_answers {
        0 | 1 => Duration::ZERO,
        n => ERROR_BACKOFF_BASE
            .saturating_mul(1 << (n - 2).min(16))
            .min(ERROR_BACKOFF_CAP),
    };
    after_errors.max(ROUND_BACKOFF.saturating_mul(new_round))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::StatusCode;
    use serde_json::json;

    #[test]
    fn classifies_answers() {
        let throttle = br#"{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException"}"#;
        let ccf =
            br#"{"__type":"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException"}"#;
        assert_eq!(
            classify_response(StatusCode::OK, b"{}"),
            AttemptOutcome::Success
        );
        assert_eq!(
            classify_response(StatusCode::BAD_REQUEST, throttle),
            AttemptOutcome::Throttled
        );
        assert_eq!(
            classify_response(StatusCode::BAD_REQUEST, ccf),
            AttemptOutcome::ClientError
        );
        assert_eq!(
            classify_response(StatusCode::BAD_REQUEST, b"not json"),
            AttemptOutcome::ClientError
        );
        assert_eq!(
            classify_response(StatusCode::INTERNAL_SERVER_ERROR, b""),
            AttemptOutcome::ServerError
        );
    }

    #[test]
    fn client_errors_never_move_and_unsent_requests_always_do() {
        for safety in [ResendSafety::Safe, ResendSafety::Unsafe] {
            assert!(!AttemptOutcome::ClientError.should_move(safety));
            assert!(AttemptOutcome::ConnectError.should_move(safety));
            assert!(AttemptOutcome::Throttled.should_move(safety));
        }
        assert!(AttemptOutcome::Timeout.should_move(ResendSafety::Safe));
        assert!(!AttemptOutcome::Timeout.should_move(ResendSafety::Unsafe));
        assert!(!AttemptOutcome::ServerError.should_move(ResendSafety::Unsafe));
    }

    /// The request's updates parsed as the plan parses them for the judgement.
    fn expressions(request: &Value) -> Expressions {
        use crate::expr::Wanted;
        let parse =
            |unit: &Value| ExpressionSet::parse(Wanted::UpdateOnly, |field| unit.get(field));
        let actions = request["TransactItems"].as_array().into_iter().flatten();
        Expressions {
            top: parse(request),
            actions: actions
                .map(|item| {
                    item.get("Update")
                        .map_or(Ok(ExpressionSet::default()), parse)
                })
                .collect(),
        }
    }

    /// The table as the request path asks it: the statements read by the one PartiQL
    /// reader, and the updates parsed, as the plan reads them.
    fn safety(op: &Operation, request: &Value) -> ResendSafety {
        let texts = ["Statement", "Statements", "TransactStatements"]
            .iter()
            .filter_map(|field| request.get(*field))
            .flat_map(|v| match v {
                Value::String(text) => vec![text.clone()],
                Value::Array(list) => list
                    .iter()
                    .filter_map(|s| s.get("Statement")?.as_str().map(str::to_owned))
                    .collect(),
                _ => Vec::new(),
            })
            .collect::<Vec<_>>();
        let read = !texts.is_empty()
            && texts
                .iter()
                .all(|t| crate::wire::partiql::read(t).is_ok_and(|s| s.kind.reads()));
        let parsed = expressions(request);
        resend_safety(op, request.as_object().unwrap(), &parsed, read)
    }

    #[test]
    fn the_safety_table() {
        use ResendSafety::{Safe, Unsafe, Verifiable};
        assert_eq!(safety(&Operation::GetItem, &json!({})), Safe);
        assert_eq!(safety(&Operation::PutItem, &json!({"Item": {}})), Safe);
        assert_eq!(
            safety(
                &Operation::PutItem,
                &json!({"Item": {}, "ConditionExpression": "attribute_not_exists(k)"})
            ),
            Verifiable
        );
        assert_eq!(
            safety(
                &Operation::PutItem,
                &json!({"Item": {}, "ConditionExpression": "a = b", "ReturnValues": "ALL_OLD"})
            ),
            Unsafe
        );
        assert_eq!(
            safety(&Operation::DeleteItem, &json!({"Expected": {}})),
            Unsafe
        );
        assert_eq!(
            safety(
                &Operation::UpdateItem,
                &json!({"UpdateExpression": "SET a = :v REMOVE b"})
            ),
            Safe
        );
        assert_eq!(
            safety(
                &Operation::UpdateItem,
                &json!({"UpdateExpression": "set a = a + :n"})
            ),
            Unsafe
        );
        assert_eq!(
            safety(
                &Operation::UpdateItem,
                &json!({"UpdateExpression": "ADD c :one"})
            ),
            Unsafe
        );
        assert_eq!(
            safety(
                &Operation::UpdateItem,
                &json!({"UpdateExpression": "SET l = LIST_APPEND(l, :x)"})
            ),
            Unsafe
        );
        assert_eq!(
            safety(
                &Operation::UpdateItem,
                &json!({"AttributeUpdates": {"c": {"Action": "ADD"}}})
            ),
            Unsafe
        );
        assert_eq!(
            safety(
                &Operation::ExecuteStatement,
                &json!({"Statement": " select * from t"})
            ),
            Safe
        );
        assert_eq!(
            safety(
                &Operation::ExecuteStatement,
                &json!({"Statement": "INSERT INTO t"})
            ),
            Unsafe
        );
        assert_eq!(safety(&Operation::CreateTable, &json!({})), Unsafe);
    }

    #[test]
    fn old_images_unparsed_expressions_and_legacy_updates() {
        use ResendSafety::{Safe, Unsafe};
        // A resend would answer with the first attempt's result as the old image.
        assert_eq!(
            safety(&Operation::DeleteItem, &json!({"ReturnValues": "ALL_OLD"})),
            Unsafe
        );
        assert_eq!(
            safety(
                &Operation::UpdateItem,
                &json!({"UpdateExpression": "SET a = :v", "ReturnValues": "UPDATED_OLD"})
            ),
            Unsafe
        );
        assert_eq!(
            safety(
                &Operation::UpdateItem,
                &json!({"UpdateExpression": "SET a = :v", "ReturnValues": "ALL_NEW"})
            ),
            Safe
        );
        assert_eq!(
            safety(
                &Operation::UpdateItem,
                &json!({"UpdateExpression": "SET a ="})
            ),
            Unsafe,
            "an expression that does not parse"
        );
        assert_eq!(
            safety(
                &Operation::UpdateItem,
                &json!({"AttributeUpdates": {"s": {"Action": "ADD", "Value": {"SS": ["x"]}}, "a": {"Value": {"S": "x"}}, "b": {"Action": "DELETE"}}})
            ),
            Safe
        );
        assert_eq!(safety(&Operation::Other("New".into()), &json!({})), Unsafe);
    }

    #[test]
    fn transactions_move_between_regions_only_when_every_write_is_idempotent() {
        use ResendSafety::{Safe, SameRegion, Unsafe};
        let key = json!({"k": {"S": "1"}});
        let transaction = |items: Value| json!({"TransactItems": items, "ClientRequestToken": "t"});
        let idempotent = transaction(json!([
            {"Put": {"TableName": "T", "Item": key}},
            {"Delete": {"TableName": "T", "Key": key}},
            {"Update": {"TableName": "T", "Key": key, "UpdateExpression": "SET a = :v",
                        "ExpressionAttributeValues": {":v": {"S": "x"}}}},
            {"ConditionCheck": {"TableName": "T", "Key": key, "ConditionExpression": "attribute_exists(k)"}}
        ]));
        assert_eq!(safety(&Operation::TransactWriteItems, &idempotent), Safe);
        for action in [
            json!({"Put": {"TableName": "T", "Item": key, "ConditionExpression": "attribute_not_exists(k)"}}),
            json!({"Delete": {"TableName": "T", "Key": key, "ConditionExpression": "a = :v"}}),
            json!({"Update": {"TableName": "T", "Key": key, "UpdateExpression": "ADD n :one",
                              "ExpressionAttributeValues": {":one": {"N": "1"}}}}),
            json!({"Update": {"TableName": "T", "Key": key, "UpdateExpression": "REMOVE l[0]"}}),
            json!({"Unknown": {}}),
        ] {
            let request = transaction(json!([action]));
            assert_eq!(
                safety(&Operation::TransactWriteItems, &request),
                SameRegion,
                "{action}"
            );
            let mut without_token = request;
            without_token
                .as_object_mut()
                .unwrap()
                .remove("ClientRequestToken");
            assert_eq!(
                safety(&Operation::TransactWriteItems, &without_token),
                Unsafe
            );
        }
        let statements =
            |s: &str| json!({"TransactStatements": [{"Statement": s}], "ClientRequestToken": "t"});
        assert_eq!(
            safety(
                &Operation::ExecuteTransaction,
                &statements("SELECT * FROM T")
            ),
            Safe
        );
        assert_eq!(
            safety(
                &Operation::ExecuteTransaction,
                &statements("UPDATE T SET a = 1")
            ),
            SameRegion
        );
    }

    #[test]
    fn a_transaction_pinned_to_its_region_still_retries_there() {
        for outcome in [
            AttemptOutcome::ServerError,
            AttemptOutcome::Timeout,
            AttemptOutcome::TransportError,
            AttemptOutcome::CorruptAnswer,
        ] {
            assert!(outcome.should_move(ResendSafety::SameRegion));
            assert!(!outcome.should_move(ResendSafety::Unsafe));
        }
    }

    #[test]
    fn backoff_moves_at_once_after_unreachable_regions_and_one_error_answer() {
        assert_eq!(backoff_ceiling(0, 0), Duration::ZERO);
        assert_eq!(backoff_ceiling(1, 0), Duration::ZERO);
        assert_eq!(backoff_ceiling(0, 1), ROUND_BACKOFF);
        assert_eq!(backoff_ceiling(0, 3), ROUND_BACKOFF * 3);
    }

    #[test]
    fn backoff_doubles_after_repeated_error_answers_up_to_a_cap() {
        assert_eq!(backoff_ceiling(2, 0), Duration::from_millis(25));
        assert_eq!(backoff_ceiling(3, 0), Duration::from_millis(50));
        assert_eq!(backoff_ceiling(4, 1), Duration::from_millis(100));
        assert_eq!(backoff_ceiling(7, 0), Duration::from_millis(800));
        assert_eq!(backoff_ceiling(8, 0), ERROR_BACKOFF_CAP);
        assert_eq!(backoff_ceiling(u32::MAX, 0), ERROR_BACKOFF_CAP);
        // A new round waits at least its own backoff.
        assert_eq!(backoff_ceiling(2, 2), ROUND_BACKOFF * 2);
    }
}
