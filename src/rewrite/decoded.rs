//! How much of a request the steps get decoded. Most requests are decoded whole; a PutItem
//! whose document no audit record is built from is decoded lean ([`LeanDocument`]): the
//! steps read and write only its partition key, version and write id, so the item's other
//! attributes are never decoded and go out as the bytes they came in as.

use serde_json::{Map, Value};

use crate::config::WRITE_ID_ATTRIBUTE;
use crate::error::ProxyError;
use crate::plan::Plan;
use crate::wire::{LeanDocument, Operation, RequestView};

/// The request as the steps rewrite it: decoded whole, or (a PutItem with no audit
/// records to build from it) with only the item attributes the steps touch decoded.
pub enum Decoded<'a> {
    Whole(Map<String, Value>),
    Lean(LeanDocument<'a>),
}

impl<'a> Decoded<'a> {
    pub fn of(view: &RequestView<'a>, plan: &Plan, unaudited: bool) -> Result<Self, ProxyError> {
        let put = view.operation == Operation::PutItem && plan.operation == Operation::PutItem;
        if put && unaudited {
            let table = plan.tables.first().map_or("", String::as_str);
            let mut touched = vec![WRITE_ID_ATTRIBUTE];
            touched.extend(plan.prefix_of(table).map(|p| p.attribute.as_str()));
            touched.extend(plan.version_of(table).map(|v| v.attribute.as_str()));
            if let Some(lean) = LeanDocument::split(view, "Item", &touched)? {
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
                serde_json::to_vec(document).map_err(|e| ProxyError::Internal(e.to_string()))
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
