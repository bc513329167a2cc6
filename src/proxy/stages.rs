//! The rewrite and restore stages around the attempt loop: the request decoded, rewritten and
//! judged for resend safety only when a step or a judgement needs its document, and the final
//! answer restored once, before its checksum is computed.

use bytes::Bytes;
use serde_json::{Map, Value};

use super::Reply;
use super::own_write::{Mark, Sent};
use crate::config::AuditImages;
use crate::error::{InternalError, ProxyError};
use crate::plan::Plan;
use crate::rewrite::{self, Decoded, RequestCtx, idempotency};
use crate::route::ResendSafety;
use crate::route::retry::resend_safety;
use crate::wire::{Operation, RequestView};

/// What every attempt sends, and what the attempt loop needs to know of it.
pub struct Outgoing {
    pub body: Bytes,
    /// The request as sent, when it was decoded whole: a verifiable write's resend is built
    /// from it.
    pub document: Option<Map<String, Value>>,
    /// Rewritten with only part of its item decoded (`Decoded::Lean`): a verification
    /// decodes the body as sent, in the rare case it needs one.
    pub lean: bool,
    pub safety: ResendSafety,
    /// How a verification resend recognises the write's own first attempt.
    pub mark: Option<Mark>,
    /// The transaction's `ClientRequestToken`, when it may be resent only where it ran.
    pub pin_token: Option<String>,
    /// The answer's `Attributes` were asked for by the audit trail, not the client.
    pub strip_attributes: bool,
    /// With atomic audit records, which name the region that stores them: the body for each
    /// region (`body` is the first's).
    pub region_bodies: Vec<(String, Bytes)>,
    /// Audit records carried in the transaction itself.
    pub atomic_records: usize,
    /// The id a versioned write stores beside its version (empty for any other): what
    /// audit recovery reads back after a crash.
    pub write_id: String,
}

impl Outgoing {
    /// The request as sent, for a verifiable write's resend.
    pub fn sent(&self) -> Option<Sent<'_>> {
        match (&self.document, self.lean) {
            (Some(document), _) => Some(Sent::Document(document)),
            (None, true) => Some(Sent::Body(&self.body)),
            (None, false) => None,
        }
    }
}

/// The fields the retry-safety table reads, for a request forwarded as it came.
fn is_safety_field(field: &str) -> bool {
    matches!(
        field,
        "ConditionExpression"
            | "Expected"
            | "ReturnValues"
            | "UpdateExpression"
            | "AttributeUpdates"
            | "ExpressionAttributeNames"
            | "ExpressionAttributeValues"
            | "TransactItems"
            | "ClientRequestToken"
    )
}

/// Decodes and rewrites the request when a step applies, a conditional put may need a
/// verification resend or an audited write its records (`audit` is then the images they
/// carry); otherwise forwards the bytes as they came.
pub fn rewrite_request(
    view: &RequestView<'_>,
    plan: &mut Plan,
    bytes: Bytes,
    audit: Option<AuditImages>,
) -> Result<Outgoing, ProxyError> {
    let op = &view.operation;
    let needs_document = plan.rewrites_request()
        || audit.is_some()
        || idempotency::needed(op, view.has("ClientRequestToken"))
        || (*op == Operation::PutItem && view.has("ConditionExpression"));
    let mut strip_attributes = false;
    let mut lean = false;
    let mut write_id = String::new();
    let plain_get = if needs_document && audit.is_none() {
        rewrite::plain_get::request(view, plan)
    } else {
        None
    };
    let plain_put = if needs_document && audit.is_none() && plain_get.is_none() {
        plain_put(view, plan)
    } else {
        None
    };
    let (body, document, safety, mark) = if let Some(body) = plain_get {
        // A read: the whole decoding's safety judgement gives Safe, with no mark.
        (Bytes::from(body), None, ResendSafety::Safe, None)
    } else if let Some(put) = plain_put {
        // Sent with its item as it came, as a lean decoding sends it: a verification
        // decodes the body as sent.
        lean = true;
        write_id = put.write_id;
        (put.body, None, put.safety, put.mark)
    } else if needs_document {
        let mut decoded = Decoded::of(view, plan, audit.is_none())?;
        lean = matches!(decoded, Decoded::Lean(_));
        let document = decoded.document_mut();
        // Made only for the requests that carry them: a read needs neither.
        let fresh = |needed: bool| {
            if needed {
                uuid::Uuid::new_v4().to_string()
            } else {
                String::new()
            }
        };
        let ctx = RequestCtx {
            idempotency_token: fresh(
                [op, &plan.operation]
                    .into_iter()
                    .any(|op| idempotency::needed(op, view.has("ClientRequestToken"))),
            ),
            // The operations whose versioned writes carry a write id (`optimistic_lock`).
            write_id: fresh(
                !plan.versions.is_empty()
                    && matches!(
                        plan.operation,
                        Operation::PutItem | Operation::UpdateItem | Operation::TransactWriteItems
                    ),
            ),
        };
        rewrite::request(plan, document, &ctx)?;
        write_id.clone_from(&ctx.write_id);
        let (safety, mark) = versioned_safety(plan, document, &ctx.write_id).unwrap_or_else(|| {
            let safety = resend_safety(
                &plan.operation,
                document,
                &plan.expressions,
                plan.statements_read,
            );
            let mark = (safety == ResendSafety::Verifiable).then_some(Mark::SameItem);
            (safety, mark)
        });
        // After the safety judgement: an old image the client never sees does not make a
        // resend any less safe for the client.
        if let Some(images) = audit {
            strip_attributes = crate::audit::returns::request(plan, images, document);
        }
        let body = decoded.to_vec()?;
        (Bytes::from(body), decoded.into_whole(), safety, mark)
    } else if op.is_read() {
        (bytes, None, ResendSafety::Safe, None)
    } else {
        let subset = view.subset(is_safety_field)?;
        let safety = resend_safety(op, &subset, &plan.expressions, plan.statements_read);
        let mark = (safety == ResendSafety::Verifiable).then_some(Mark::SameItem);
        (bytes, None, safety, mark)
    };
    // Only a client's own token can come back in a later request (an SDK retrying after a
    // lost answer); one the sidecar made up is pinned for its own request alone, in the
    // attempt loop, and remembering it would fill the pins with tokens never seen again.
    let pin_token = (safety == ResendSafety::SameRegion && view.has("ClientRequestToken"))
        .then(|| match &document {
            Some(document) => document
                .get("ClientRequestToken")
                .and_then(Value::as_str)
                .map(str::to_owned),
            None => view.str("ClientRequestToken").map(String::from),
        })
        .flatten();
    Ok(Outgoing {
        body,
        document,
        safety,
        mark,
        pin_token,
        strip_attributes,
        region_bodies: Vec::new(),
        atomic_records: 0,
        lean,
        write_id,
    })
}

/// A PutItem written by [`rewrite::plain_put`], judged as the general path judges it.
struct JudgedPut {
    body: Bytes,
    safety: ResendSafety,
    mark: Option<Mark>,
    write_id: String,
}

fn plain_put(view: &RequestView<'_>, plan: &Plan) -> Option<JudgedPut> {
    let put = rewrite::plain_put::request(view, plan, || uuid::Uuid::new_v4().to_string())?;
    // What the general path's judgement gives for a put of only an item: a versioned one
    // carries its check and nothing else (`versioned_safety`); any other is unconditional.
    let (safety, mark) = if let Some(id) = &put.write_id {
        let mark = Mark::WriteId {
            id: id.clone(),
            returns_item: false,
        };
        (ResendSafety::Verifiable, Some(mark))
    } else {
        let safety = resend_safety(
            &plan.operation,
            &Map::new(),
            &plan.expressions,
            plan.statements_read,
        );
        (
            safety,
            (safety == ResendSafety::Verifiable).then_some(Mark::SameItem),
        )
    };
    Some(JudgedPut {
        body: Bytes::from(put.body),
        safety,
        mark,
        write_id: put.write_id.unwrap_or_default(),
    })
}

/// A versioned single-item write is recognisable after an ambiguous attempt (see
/// `own_write`), so it fails over like a read, unless its answer would carry an old image
/// that a resend cannot reproduce. `None` for any other request.
fn versioned_safety(
    plan: &Plan,
    document: &Map<String, Value>,
    write_id: &str,
) -> Option<(ResendSafety, Option<Mark>)> {
    plan.tables.first().and_then(|t| plan.version_of(t))?;
    let returns = document
        .get("ReturnValues")
        .and_then(Value::as_str)
        .unwrap_or("NONE");
    let write_id = |returns_item| Mark::WriteId {
        id: write_id.to_owned(),
        returns_item,
    };
    let judged = match (&plan.operation, returns) {
        (Operation::PutItem | Operation::UpdateItem, "NONE") => {
            (ResendSafety::Verifiable, Some(write_id(false)))
        }
        (Operation::UpdateItem, "ALL_NEW") => (ResendSafety::Verifiable, Some(write_id(true))),
        (Operation::DeleteItem, "NONE") if document.contains_key("ConditionExpression") => {
            (ResendSafety::Verifiable, Some(Mark::Gone))
        }
        (Operation::PutItem | Operation::UpdateItem | Operation::DeleteItem, _) => (
            resend_safety(
                &plan.operation,
                document,
                &plan.expressions,
                plan.statements_read,
            ),
            None,
        ),
        _ => return None,
    };
    Some(judged)
}

/// The tables of versioned writes whose condition failed in this answer (before restore).
pub(super) fn version_conflicts(plan: &Plan, reply: &Reply) -> Vec<String> {
    if plan.versions.is_empty() || reply.upstream.status.is_success() {
        return Vec::new();
    }
    let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(&reply.upstream.body) else {
        return Vec::new();
    };
    crate::rewrite::optimistic_lock::conflicts(plan, &body)
        .into_iter()
        .map(str::to_owned)
        .collect()
}

/// Runs the steps' restore halves once, on the final answer, success or error. An answer
/// that is not JSON (an error page; a success that is not JSON never gets here) has nothing
/// to restore.
pub(super) fn restore_answer(plan: &Plan, reply: &mut Reply) -> Result<(), ProxyError> {
    if !plan.restores_answer() {
        return Ok(());
    }
    if plan.spellings.is_empty()
        && let Some(restored) = rewrite::raw_answer::restore(plan, &reply.upstream.body)
    {
        reply.upstream.body = Bytes::from(restored?);
        return Ok(());
    }
    let Ok(Value::Object(mut body)) = serde_json::from_slice::<Value>(&reply.upstream.body) else {
        return Ok(());
    };
    crate::audit::atomic::restore(plan, &mut body);
    rewrite::restore(plan, &mut body)?;
    crate::tables::restore_spellings(&plan.spellings, &mut body);
    let bytes = serde_json::to_vec(&body).map_err(InternalError::Encode)?;
    reply.upstream.body = Bytes::from(bytes);
    Ok(())
}

/// Leaves only the tables the client may see (`keep`) in a successful `ListTables` answer;
/// one that cannot be read is not shown at all. `LastEvaluatedTableName` stays, so paging
/// goes on over the whole list.
pub(super) fn filter_table_list(
    keep: impl Fn(&str) -> bool,
    reply: &mut Reply,
) -> Result<(), ProxyError> {
    if !reply.upstream.status.is_success() {
        return Ok(());
    }
    let unreadable = || ProxyError::from(InternalError::UnreadableListTables);
    let Ok(Value::Object(mut body)) = serde_json::from_slice::<Value>(&reply.upstream.body) else {
        return Err(unreadable());
    };
    if let Some(Value::Array(names)) = body.get_mut("TableNames") {
        names.retain(|n| n.as_str().is_some_and(&keep));
    }
    let bytes = serde_json::to_vec(&body).map_err(|_| unreadable())?;
    reply.upstream.body = Bytes::from(bytes);
    Ok(())
}

/// Items (BatchWriteItem) and keys (BatchGetItem) a successful batch handed back, by table.
pub(super) fn unprocessed(plan: &Plan, reply: &Reply) -> Vec<(String, u64)> {
    let (field, empty): (&str, &[u8]) = match plan.operation {
        Operation::BatchWriteItem => ("UnprocessedItems", b"\"UnprocessedItems\":{}"),
        Operation::BatchGetItem => ("UnprocessedKeys", b"\"UnprocessedKeys\":{}"),
        _ => return Vec::new(),
    };
    let body = &reply.upstream.body;
    // Most batches are processed whole (`"UnprocessedItems":{}`): no parse for them.
    if !reply.upstream.status.is_success() || body.windows(empty.len()).any(|w| w == empty) {
        return Vec::new();
    }
    let Ok(Value::Object(answer)) = serde_json::from_slice::<Value>(body) else {
        return Vec::new();
    };
    let tables = answer.get(field).and_then(Value::as_object);
    tables
        .into_iter()
        .flatten()
        .map(|(table, left)| {
            let count = match left {
                Value::Array(requests) => requests.len(),
                Value::Object(request) => request
                    .get("Keys")
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len),
                _ => 0,
            };
            (table.clone(), count as u64)
        })
        .filter(|(_, count)| *count > 0)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::snapshot::policies;

    const CONFIG: &str = r#"
[[regions]]
name = "us-east-1"
endpoint = "http://127.0.0.1:8001"

[[tables]]
name = "Ledger"
partition_key = "k"
key_prefix = "{region}#"
version_attribute = "Version"

[[tables]]
name = "Prefixed"
partition_key = "k"
key_prefix = "{region}#"
"#;

    /// A put the plain path takes is judged for resending as the general path judges the
    /// document it would have sent.
    #[test]
    fn a_plain_put_is_judged_as_the_general_path_judges_it() {
        let config = Config::from_toml_str(CONFIG).unwrap();
        let policies = policies(&config, None);
        for body in [
            r#"{"TableName":"Ledger","Item":{"k":{"S":"a"}}}"#,
            r#"{"TableName":"Ledger","Item":{"k":{"S":"a"},"Version":{"N":"4"}}}"#,
            r#"{"TableName":"Prefixed","Item":{"k":{"S":"a"}},"ReturnConsumedCapacity":"TOTAL"}"#,
        ] {
            let view = RequestView::parse(Operation::PutItem, body.as_bytes()).unwrap();
            let mut plan = Plan::build(&view, &policies).unwrap();
            let put = plain_put(&view, &plan).expect(body);
            let ctx = RequestCtx {
                idempotency_token: String::new(),
                write_id: put.write_id.clone(),
            };
            let mut document = view.to_map().unwrap();
            rewrite::request(&mut plan, &mut document, &ctx).unwrap();
            let general = versioned_safety(&plan, &document, &ctx.write_id).unwrap_or_else(|| {
                let safety = resend_safety(
                    &plan.operation,
                    &document,
                    &plan.expressions,
                    plan.statements_read,
                );
                (
                    safety,
                    (safety == ResendSafety::Verifiable).then_some(Mark::SameItem),
                )
            });
            assert_eq!((put.safety, put.mark), general, "{body}");
            let versioned = plan.version_of(&plan.tables[0]).is_some();
            assert_eq!(put.write_id.is_empty(), !versioned, "{body}");
        }
    }
}
