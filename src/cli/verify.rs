//! `globalscale audit verify`: reads the audit trail back and walks its chains
//! ([`crate::audit::chain`]), naming each record deleted, altered or forged. Over a time
//! range (and, narrowed to a table, still over every table's records, since a gap's missing
//! record may be any table's) it judges the chains whole; for one item it can check only
//! each record's own hash, since the item's records are scattered through their chain.
//!
//! Exit codes, for a cron job: 0 clean, 1 findings, 2 a config that cannot answer, 3 the
//! trail could not be read.

use std::collections::HashMap;
use std::io;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use serde_json::{Map, Value, json};

use crate::app::{App, AppError};
use crate::audit::chain::{self, CHAIN_ID, CHAIN_SEQ, Finding};
use crate::call::OwnCalls;
use crate::cli::history::{self, Item, Lookup};
use crate::config::Config;
use crate::proxy::Proxy;
use crate::wire::Operation;

/// Records around a time range read as well, so a chain is not cut where its shipping
/// order and its records' times disagree (concurrent batches, a backlog).
const MARGIN: Duration = Duration::from_mins(10);

/// What to verify.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// Records of this table only (the chains are still read whole).
    pub table: Option<String>,
    /// One item's records: their hashes only.
    pub item: Option<Lookup>,
    pub since: Option<SystemTime>,
    pub until: Option<SystemTime>,
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("the config has no [audit] section, so there is no audit table to read")]
    NoAuditSection,
    #[error(transparent)]
    Client(#[from] AppError),
    #[error("reading {table}: {detail}")]
    Read { table: String, detail: String },
    #[error(transparent)]
    History(#[from] history::HistoryError),
    #[error("cannot write the report: {0}")]
    Output(#[from] io::Error),
}

impl VerifyError {
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::NoAuditSection => 2,
            _ => 3,
        }
    }
}

/// Verifies `scope` of `config`'s audit trail, prints a report to `out`, and returns the
/// findings.
pub async fn run(
    config: Config,
    scope: &Scope,
    out: &mut impl io::Write,
) -> Result<Vec<Finding>, VerifyError> {
    let table = config
        .audit
        .as_ref()
        .ok_or(VerifyError::NoAuditSection)?
        .table
        .clone();
    let item_key = scope.item.as_ref().map(|l| history::item_key(&config, l));
    let proxy = App::client(config).await?;
    let (records, findings) = if let Some(key) = &item_key {
        let records = history::fetch(&proxy, &table, key).await?;
        let altered = hashes_only(&records);
        (records.len(), altered)
    } else {
        let records = scan(&proxy, &table, scope).await?;
        let findings = judge(&records, scope);
        (records.len(), findings)
    };
    for finding in &findings {
        writeln!(out, "{finding}")?;
    }
    writeln!(
        out,
        "{records} records read from {table}: {}",
        if findings.is_empty() {
            "the chains hold".to_owned()
        } else {
            format!("{} finding(s)", findings.len())
        }
    )?;
    Ok(findings)
}

/// The findings over the records' own hashes: all one item's records can show.
fn hashes_only(records: &[Item]) -> Vec<Finding> {
    records
        .iter()
        .flat_map(|r| chain::verify(std::slice::from_ref(r)))
        .collect()
}

/// The chains' findings that concern `scope`: a record outside the range (read only as the
/// margin) or of another table is not reported, nor a gap not enclosed by the range.
fn judge(records: &[Item], scope: &Scope) -> Vec<Finding> {
    let place = |item: &Item| -> Option<(String, u64)> {
        let chain = item.get(CHAIN_ID)?.get("S")?.as_str()?.to_owned();
        let seq = item.get(CHAIN_SEQ)?.get("N")?.as_str()?.parse().ok()?;
        Some((chain, seq))
    };
    let mut in_scope: HashMap<(String, u64), bool> = HashMap::new();
    for item in records {
        if let Some(key) = place(item) {
            in_scope.insert(key, within(item, scope));
        }
    }
    let is = |chain: &str, seq: u64| {
        in_scope
            .get(&(chain.to_owned(), seq))
            .copied()
            .unwrap_or(false)
    };
    let unchained_in_scope = |event: &str| {
        records.iter().any(|r| {
            r.get("EventId")
                .and_then(|e| e.get("S"))
                .and_then(Value::as_str)
                == Some(event)
                && within(r, scope)
        })
    };
    chain::verify(records)
        .into_iter()
        .filter(|finding| match finding {
            Finding::Gap { chain, from, to } => {
                is(chain, from.saturating_sub(1)) && is(chain, to + 1)
            }
            Finding::Altered { chain, seq, .. }
            | Finding::Unlinked { chain, seq, .. }
            | Finding::Duplicate { chain, seq } => is(chain, *seq),
            Finding::Unchained { event } => unchained_in_scope(event),
        })
        .collect()
}

/// Whether `item` lies in `scope`'s range and is of its table.
fn within(item: &Item, scope: &Scope) -> bool {
    let text = |name: &str| item.get(name)?.get("S")?.as_str();
    if let Some(table) = &scope.table
        && text("Table") != Some(table.as_str())
    {
        return false;
    }
    let Some(at) = text("Timestamp").and_then(|t| humantime::parse_rfc3339(t).ok()) else {
        return scope.since.is_none() && scope.until.is_none();
    };
    scope.since.is_none_or(|since| at >= since) && scope.until.is_none_or(|until| at <= until)
}

/// Every record of the range, with the margin around it, one `Scan` page after another.
async fn scan(proxy: &Proxy, table: &str, scope: &Scope) -> Result<Vec<Item>, VerifyError> {
    let mut items = Vec::new();
    let mut start: Option<Value> = None;
    loop {
        let body = scan_body(table, scope, start.as_ref());
        let read_error = |detail: String| VerifyError::Read {
            table: table.to_owned(),
            detail,
        };
        let (status, answer) = proxy
            .call(&Operation::Scan, body)
            .await
            .map_err(|e| read_error(e.to_string()))?;
        if !status.is_success() {
            return Err(read_error(format!(
                "HTTP {status}: {}",
                String::from_utf8_lossy(&answer)
            )));
        }
        let mut page: Map<String, Value> =
            serde_json::from_slice(&answer).map_err(|e| read_error(e.to_string()))?;
        if let Some(Value::Array(found)) = page.remove("Items") {
            items.extend(found.into_iter().filter_map(|v| match v {
                Value::Object(item) => Some(item),
                _ => None,
            }));
        }
        match page.remove("LastEvaluatedKey") {
            Some(next) => start = Some(next),
            None => return Ok(items),
        }
    }
}

fn scan_body(table: &str, scope: &Scope, start: Option<&Value>) -> Bytes {
    let stamp = |t: SystemTime| humantime::format_rfc3339_millis(t).to_string();
    let mut body = json!({"TableName": table, "ConsistentRead": true});
    let mut filters = Vec::new();
    let mut values = Map::new();
    if let Some(since) = scope.since {
        filters.push("#t >= :since");
        values.insert(":since".into(), json!({"S": stamp(since - MARGIN)}));
    }
    if let Some(until) = scope.until {
        filters.push("#t <= :until");
        values.insert(":until".into(), json!({"S": stamp(until + MARGIN)}));
    }
    if let Some(fields) = body.as_object_mut() {
        if !filters.is_empty() {
            fields.insert("FilterExpression".into(), json!(filters.join(" AND ")));
            fields.insert(
                "ExpressionAttributeNames".into(),
                json!({"#t": "Timestamp"}),
            );
            fields.insert("ExpressionAttributeValues".into(), Value::Object(values));
        }
        if let Some(start) = start {
            fields.insert("ExclusiveStartKey".into(), start.clone());
        }
    }
    Bytes::from(body.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::chain::Assignments;

    fn chain_of(stamps: &[&str], table: &str) -> Vec<Item> {
        let mut assignments = Assignments::new("C".into());
        stamps
            .iter()
            .enumerate()
            .map(|(i, at)| {
                let record = json!({"EventId": {"S": format!("e{i}")}, "Timestamp": {"S": at},
                                    "Table": {"S": table}})
                .to_string();
                let linked = assignments
                    .link(&format!("e{i}"), record.as_bytes())
                    .unwrap();
                serde_json::from_slice(&linked).unwrap()
            })
            .collect()
    }

    fn at(text: &str) -> SystemTime {
        humantime::parse_rfc3339(text).unwrap()
    }

    #[test]
    fn a_range_reports_only_gaps_it_encloses() {
        let mut records = chain_of(
            &[
                "2026-12-01T10:00:00Z",
                "2026-12-01T11:00:00Z",
                "2026-12-01T11:10:00Z",
                "2026-12-01T11:20:00Z",
                "2026-12-01T12:30:00Z",
            ],
            "T",
        );
        let scope = Scope {
            since: Some(at("2026-12-01T11:00:00Z")),
            until: Some(at("2026-12-01T12:00:00Z")),
            ..Scope::default()
        };
        // The margin's records are read; nothing is wrong.
        assert_eq!(judge(&records, &scope), Vec::new());
        // A record inside the range deleted: a gap between two in range.
        records.remove(2);
        assert_eq!(
            judge(&records, &scope),
            vec![Finding::Gap {
                chain: "C".into(),
                from: 3,
                to: 3
            }]
        );
        // The first record (outside the range) deleted: not this range's gap.
        let mut records = chain_of(&["2026-12-01T10:00:00Z", "2026-12-01T11:05:00Z"], "T");
        records.remove(0);
        assert_eq!(judge(&records, &scope), Vec::new());
    }

    #[test]
    fn one_items_records_are_judged_by_their_own_hashes() {
        let mut records = chain_of(&["2026-12-01T10:00:00Z", "2026-12-01T11:00:00Z"], "T");
        // Scattered through their chain: no gap is claimed.
        records.remove(0);
        assert_eq!(hashes_only(&records), Vec::new());
        records[0].insert("Outcome".into(), json!({"S": "accepted"}));
        assert!(matches!(
            hashes_only(&records).as_slice(),
            [Finding::Altered { seq: 2, .. }]
        ));
    }
}
