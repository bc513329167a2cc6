//! The images a record carries come from `ReturnValues`, which costs no capacity: a
//! single-item write on an audited table whose client asked for nothing asks for what the
//! record needs (`ALL_OLD` of a put or delete, `ALL_NEW` of an update), and the answer's
//! `Attributes` are removed again before the client sees them. A client that asked for
//! something itself gets exactly that, and the record takes what it brings.

use serde_json::{Map, Value};

use crate::config::AuditImages;
use crate::plan::Plan;
use crate::wire::Operation;

const RETURN_VALUES: &str = "ReturnValues";

/// Sets `ReturnValues` for the record's sake; `true` when the client asked for none, so the
/// answer's `Attributes` are the sidecar's and must go ([`strip`]).
pub fn request(plan: &Plan, images: AuditImages, body: &mut Map<String, Value>) -> bool {
    let Some(table) = plan.tables.first() else {
        return false;
    };
    if plan.audit_of(table).is_none() {
        return false;
    }
    let asked = body.get(RETURN_VALUES).and_then(Value::as_str);
    if asked.is_some_and(|r| r != "NONE") {
        return false;
    }
    // A versioned record names the version written (an update's) or removed (a delete's).
    let versioned = plan.version_of(table).is_some();
    let wanted = match plan.operation {
        Operation::PutItem if images.old_image() => "ALL_OLD",
        Operation::UpdateItem if images.new_image() || versioned => "ALL_NEW",
        Operation::DeleteItem if images.old_image() || versioned => "ALL_OLD",
        _ => return false,
    };
    body.insert(RETURN_VALUES.into(), Value::String(wanted.into()));
    true
}

/// Removes the item the sidecar asked for from a single-item write's answer.
pub fn strip(answer: &mut Map<String, Value>) {
    answer.remove("Attributes");
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::plan::Audited;

    fn plan(operation: Operation, versioned: bool) -> Plan {
        Plan {
            operation: operation.clone(),
            client_operation: operation,
            tables: vec!["T".into()],
            action_tables: Vec::new(),
            prefixes: crate::plan::PerTable::new(),
            versions: versioned
                .then(|| {
                    std::sync::Arc::new(crate::plan::Versioned {
                        table: "T".into(),
                        attribute: "Version".into(),
                    })
                })
                .into_iter()
                .collect(),
            audits: vec![Audited {
                table: "T".into(),
                partition_key: "pk".into(),
                sort_key: None,
            }],
            atomic_audit: false,
            spellings: Vec::new(),
            statements_read: false,
            expressions: crate::expr::Expressions::default(),
        }
    }

    fn asked(
        op: Operation,
        versioned: bool,
        images: AuditImages,
        body: Value,
    ) -> (bool, Option<Value>) {
        let Value::Object(mut body) = body else {
            unreachable!()
        };
        let set = request(&plan(op, versioned), images, &mut body);
        (set, body.get(RETURN_VALUES).cloned())
    }

    #[test]
    fn asks_for_what_the_record_needs_only_when_the_client_asked_for_nothing() {
        let none = json!({ "TableName": "T" });
        let all_new = Some(json!("ALL_NEW"));
        let all_old = Some(json!("ALL_OLD"));
        assert_eq!(
            asked(
                Operation::PutItem,
                false,
                AuditImages::NewAndOld,
                none.clone()
            ),
            (true, all_old.clone())
        );
        assert_eq!(
            asked(Operation::PutItem, true, AuditImages::New, none.clone()),
            (false, None)
        );
        assert_eq!(
            asked(Operation::UpdateItem, false, AuditImages::New, none.clone()),
            (true, all_new.clone())
        );
        assert_eq!(
            asked(Operation::UpdateItem, true, AuditImages::None, none.clone()),
            (true, all_new)
        );
        assert_eq!(
            asked(
                Operation::UpdateItem,
                false,
                AuditImages::None,
                none.clone()
            ),
            (false, None)
        );
        assert_eq!(
            asked(Operation::DeleteItem, true, AuditImages::None, none),
            (true, all_old)
        );
        let theirs = json!({ "TableName": "T", "ReturnValues": "UPDATED_OLD" });
        assert_eq!(
            asked(Operation::UpdateItem, false, AuditImages::NewAndOld, theirs),
            (false, Some(json!("UPDATED_OLD")))
        );
        let explicit_none = json!({ "TableName": "T", "ReturnValues": "NONE" });
        assert!(
            asked(
                Operation::DeleteItem,
                false,
                AuditImages::NewAndOld,
                explicit_none
            )
            .0
        );
    }
}
