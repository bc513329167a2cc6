//! How much of a request the steps get decoded. Most requests are decoded whole; a write
//! that carries items (PutItem, BatchWriteItem, TransactWriteItems) and builds no audit
//! records from its document is decoded lean ([`LeanDocument`]): the steps read and write
//! only each item's partition key, version and write id, so the items' other attributes are
//! never decoded and go out as the bytes they came in as.

use serde_json::{Map, Value};

use crate::config::WRITE_ID_ATTRIBUTE;
use crate::error::{InternalError, ProxyError};
use crate::plan::Plan;
use crate::wire::{LeanDocument, Operation, RequestView, Step};

/// The request as the steps rewrite it: decoded whole, or with only the item attributes
/// the steps touch decoded.
/// Where the items of a write the client sent are, when the steps leave them where they are
/// or move them whole (a BatchWriteItem run as a transaction).
fn item_path(operation: &Operation, plan: &Plan) -> Option<&'static [Step]> {
    let path: &'static [Step] = match operation {
        Operation::PutItem => &[Step::Field("Item")],
        Operation::BatchWriteItem => &[
            Step::Field("RequestItems"),
            Step::AnyKey,
            Step::AnyIndex,
            Step::Field("PutRequest"),
            Step::Field("Item"),
        ],
        Operation::TransactWriteItems => &[
            Step::Field("TransactItems"),
            Step::AnyIndex,
            Step::Field("Put"),
            Step::Field("Item"),
        ],
        _ => return None,
    };
    // A single-item write run as a transaction is audited, so never lean; anything else
    // the plan turns into another operation is not a move this knows.
    let moved = plan.operation != *operation
        && !(*operation == Operation::BatchWriteItem
            && plan.operation == Operation::TransactWriteItems);
    (!moved).then_some(path)
}

pub enum Decoded<'a> {
    Whole(Map<String, Value>),
    Lean(LeanDocument<'a>),
}

impl<'a> Decoded<'a> {
    pub fn of(view: &RequestView<'a>, plan: &Plan, unaudited: bool) -> Result<Self, ProxyError> {
        if let (Some(path), true) = (item_path(&view.operation, plan), unaudited) {
            // Every table's key and version attributes: holding back fewer attributes than
            // a step could is always faithful.
            let mut touched = vec![WRITE_ID_ATTRIBUTE];
            for table in &plan.tables {
                touched.extend(plan.prefix_of(table).map(|p| p.attribute.as_str()));
                touched.extend(plan.version_of(table).map(|v| v.attribute.as_str()));
            }
            if let Some(lean) = LeanDocument::split(view, path, &touched)? {
                return Ok(Self::Lean(lean));
            }
        }
        Ok(Self::Whole(view.to_map()?))
    }

    pub fn document_mut(&mut self) -> &mut Map<String, Value> {
        match self {
            Self::Whole(document) => document,
            Self::Lean(lean) => &mut lean.document,
        }
    }

    pub fn to_vec(&self) -> Result<Vec<u8>, ProxyError> {
        match self {
            Self::Whole(document) => {
                serde_json::to_vec(document).map_err(|e| InternalError::Encode(e).into())
            }
            Self::Lean(lean) => lean.to_vec(),
        }
    }

    pub fn into_whole(self) -> Option<Map<String, Value>> {
        match self {
            Self::Whole(document) => Some(document),
            Self::Lean(_) => None,
        }
    }
}
