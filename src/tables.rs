//! Table identity: every way a request can name a table, resolved once, before any policy
//! is looked up. DynamoDB takes a table's ARN wherever it takes its name, and PartiQL names
//! tables inside statement text, quoted or not, with any whitespace or comment around them:
//! a policy matched on the literal `TableName` string would let each of these spellings
//! past it.
//!
//! Two things happen here. [`canonical_body`] turns the ARN of a managed table in the
//! data-plane fields (`TableName`, `RequestItems`' keys, each `TransactItems` action's
//! `TableName`) into its name, after checking that the ARN names the managed table itself
//! (its partition, account and one of its regions), so every step downstream sees one
//! spelling and the request can move to any region; the answer gets the client's spelling
//! back ([`restore_spellings`]). [`References::read`] then lists every table the request
//! names anywhere (control-plane names and ARNs, PartiQL statements read by
//! [`wire::partiql`](crate::wire::partiql)) for the audit table's guard, the allow-lists
//! and the PartiQL policy.

use bytes::Bytes;
use serde_json::{Map, Value};

use crate::config::Policies;
use crate::error::{InternalError, ProxyError};
use crate::wire::RequestView;
use crate::wire::partiql::{self, Statement};

#[cfg(test)]
mod tests;

pub use crate::config::ArnScope;

/// The parts of `arn:<partition>:dynamodb:<region>:<account>:table/<name>[/<more>]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arn<'a> {
    pub partition: &'a str,
    pub region: &'a str,
    pub account: &'a str,
    pub table: &'a str,
    /// What follows the table's name: `index/<name>`, `stream/<label>`, `backup/<id>`, ...
    pub more: Option<&'a str>,
}

impl<'a> Arn<'a> {
    pub fn parse(text: &'a str) -> Option<Self> {
        let mut parts = text.splitn(6, ':');
        let (arn, partition, service, region, account, resource) = (
            parts.next()?,
            parts.next()?,
            parts.next()?,
            parts.next()?,
            parts.next()?,
            parts.next()?,
        );
        if arn != "arn" || service != "dynamodb" || partition.is_empty() {
            return None;
        }
        let (table, more) = match resource.strip_prefix("table/")?.split_once('/') {
            Some((table, more)) => (table, Some(more)),
            None => (resource.strip_prefix("table/")?, None),
        };
        (!table.is_empty()).then_some(Self {
            partition,
            region,
            account,
            table,
            more,
        })
    }
}

/// The scope of a table's own ARN (`TableArn` of `DescribeTable`).
pub fn scope_of(table_arn: &str) -> Option<ArnScope> {
    let arn = Arn::parse(table_arn)?;
    Some(ArnScope {
        partition: arn.partition.to_owned(),
        account: arn.account.to_owned(),
        regions: vec![arn.region.to_owned()],
    })
}

/// Whether `text` is meant as an ARN (DynamoDB's own test, by its first characters; the case
/// is ignored here so that no spelling of one slips past as a plain name).
pub fn looks_like_arn(text: &str) -> bool {
    text.get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case("arn:"))
}

/// The table a name or ARN names: the name itself, or the ARN's table.
pub fn table_of(text: &str) -> &str {
    Arn::parse(text).map_or(text, |arn| arn.table)
}

/// What resolving a name needs: the managed tables, the audit table and the regions.
pub struct Catalog<'a> {
    pub policies: &'a Policies,
    pub audit_table: Option<&'a str>,
    pub regions: Vec<&'a str>,
}

/// A body whose table ARNs were replaced by names, with the client's spellings.
#[derive(Debug)]
pub struct Canonical {
    pub body: Bytes,
    /// `(name, the ARN the client wrote)`, for the answer.
    pub spellings: Vec<(String, String)>,
}

/// The body with each data-plane ARN of a managed table replaced by the table's name, or
/// `None` when no such ARN is there (the common case: no document is built).
pub fn canonical_body(
    view: &RequestView<'_>,
    catalog: &Catalog<'_>,
) -> Result<Option<Canonical>, ProxyError> {
    let mut spellings = Vec::new();
    for name in view.tables.iter().filter(|t| looks_like_arn(t)) {
        if let Some(table) = resolve_arn(name, catalog)? {
            spellings.push((table.to_owned(), name.clone()));
        }
    }
    if spellings.is_empty() {
        return Ok(None);
    }
    let mut body = view.to_map()?;
    let rename = |name: &str| {
        spellings
            .iter()
            .find(|(_, arn)| arn == name)
            .map(|(table, _)| table.clone())
    };
    rename_tables(&mut body, &rename)?;
    let bytes = serde_json::to_vec(&body).map_err(InternalError::Encode)?;
    Ok(Some(Canonical {
        body: Bytes::from(bytes),
        spellings,
    }))
}

/// The name of the managed table `text` (an ARN) names, `None` for a table the sidecar does
/// not manage, or why it is refused.
fn resolve_arn<'c>(text: &str, catalog: &Catalog<'c>) -> Result<Option<&'c str>, ProxyError> {
    let Some(arn) = Arn::parse(text) else {
        return match protected_in(text, catalog) {
            Some(table) => Err(ProxyError::Validation(format!(
                "{text:?} is not a table ARN the sidecar can read, and it names table {table}, \
                 which it manages: name the table by its name or its ARN \
                 (arn:<partition>:dynamodb:<region>:<account>:table/<name>)"
            ))),
            None => Ok(None),
        };
    };
    let Some((name, policy)) = catalog.policies.get_key_value(arn.table) else {
        return Ok(None);
    };
    if let Some(more) = arn.more {
        return Err(ProxyError::Validation(format!(
            "{text:?} names {more:?} of table {name}, not the table: TableName takes a table's \
             name or its ARN"
        )));
    }
    let Some(scope) = &policy.arn else {
        return Err(ProxyError::AccessDenied(format!(
            "the sidecar has not yet learned the ARN of table {name} (DescribeTable), so it \
             cannot tell which account {text:?} names: name the table by its name"
        )));
    };
    let region_ok =
        scope.regions.iter().any(|r| r == arn.region) || catalog.regions.contains(&arn.region);
    if arn.partition != scope.partition || arn.account != scope.account || !region_ok {
        return Err(ProxyError::AccessDenied(format!(
            "{text:?} does not name the table {name} this sidecar serves (partition {}, \
             account {}, regions {}): it names another account's or region's table",
            scope.partition,
            scope.account,
            catalog
                .regions
                .iter()
                .copied()
                .chain(scope.regions.iter().map(String::as_str))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok(Some(name.as_str()))
}

/// A managed or audit table whose name `text` holds anywhere.
fn protected_in<'c>(text: &str, catalog: &Catalog<'c>) -> Option<&'c str> {
    catalog
        .policies
        .keys()
        .map(String::as_str)
        .chain(catalog.audit_table)
        .find(|table| text.contains(table))
}

/// Renames the tables of the data-plane fields; two spellings of one table in one batch are
/// refused, as DynamoDB refuses a table named twice.
fn rename_tables(
    body: &mut Map<String, Value>,
    rename: &impl Fn(&str) -> Option<String>,
) -> Result<(), ProxyError> {
    rename_field(body, rename);
    if let Some(Value::Object(items)) = body.get_mut("RequestItems") {
        let mut renamed = Map::new();
        for (table, requests) in std::mem::take(items) {
            let table = rename(&table).unwrap_or(table);
            if renamed.insert(table.clone(), requests).is_some() {
                return Err(ProxyError::Validation(format!(
                    "RequestItems names table {table} twice (by its name and its ARN)"
                )));
            }
        }
        *items = renamed;
    }
    if let Some(Value::Array(actions)) = body.get_mut("TransactItems") {
        for action in actions.iter_mut().filter_map(Value::as_object_mut) {
            for request in action.values_mut().filter_map(Value::as_object_mut) {
                rename_field(request, rename);
            }
        }
    }
    Ok(())
}

fn rename_field(object: &mut Map<String, Value>, rename: &impl Fn(&str) -> Option<String>) {
    if let Some(Value::String(name)) = object.get_mut("TableName")
        && let Some(table) = rename(name)
    {
        *name = table;
    }
}

/// Gives an answer the table spellings its request used: DynamoDB keys `Responses`,
/// `UnprocessedKeys`, `UnprocessedItems` and `ItemCollectionMetrics` by the name or ARN it
/// was sent, and names the same in `ConsumedCapacity`.
pub fn restore_spellings(spellings: &[(String, String)], body: &mut Map<String, Value>) {
    let spelled = |name: &str| {
        spellings
            .iter()
            .find(|(table, _)| table == name)
            .map(|(_, arn)| arn.clone())
    };
    for field in [
        "Responses",
        "UnprocessedKeys",
        "UnprocessedItems",
        "ItemCollectionMetrics",
    ] {
        if let Some(Value::Object(tables)) = body.get_mut(field) {
            *tables = std::mem::take(tables)
                .into_iter()
                .map(|(table, value)| (spelled(&table).unwrap_or(table), value))
                .collect();
        }
    }
    let mut rename = |capacity: &mut Value| {
        if let Some(Value::String(name)) = capacity.get_mut("TableName")
            && let Some(arn) = spelled(name)
        {
            *name = arn;
        }
    };
    match body.get_mut("ConsumedCapacity") {
        Some(Value::Array(list)) => list.iter_mut().for_each(&mut rename),
        Some(capacity @ Value::Object(_)) => rename(capacity),
        _ => {}
    }
}

/// Every table a request names, anywhere in it.
#[derive(Debug, Default)]
pub struct References {
    /// Each name as a table name: data-plane names (ARNs of managed tables already replaced),
    /// control-plane names, the tables of ARNs, the tables of PartiQL statements.
    pub tables: Vec<String>,
    /// ARN-like text that could not be read as an ARN (DynamoDB will refuse it; a guard
    /// compares it with its table names whole).
    pub unreadable: Vec<String>,
    /// The PartiQL statements, read.
    pub statements: Vec<Statement>,
}

/// Top-level fields that hold a table's name outside the data plane.
const NAME_FIELDS: [&str; 4] = [
    "TableName",
    "GlobalTableName",
    "SourceTableName",
    "TargetTableName",
];

impl References {
    /// Reads every reference of `view`. A PartiQL statement the reader cannot read with
    /// certainty is refused: DynamoDB might find a table in it that the sidecar did not.
    pub fn read(view: &RequestView<'_>) -> Result<Self, ProxyError> {
        let mut refs = Self::default();
        for name in &view.tables {
            refs.push(name);
        }
        for field in NAME_FIELDS {
            if let Some(name) = view.str(field) {
                refs.push(&name);
            }
        }
        if let Ok(Some(parameters)) = view.decode::<Map<String, Value>>("TableCreationParameters")
            && let Some(name) = parameters.get("TableName").and_then(Value::as_str)
        {
            refs.push(name);
        }
        for field in arn_fields(view) {
            if let Some(arn) = view.str(field) {
                refs.push(&arn);
            }
        }
        if view.operation.is_partiql() {
            refs.statements = statements(view)?;
            let named: Vec<String> = refs
                .statements
                .iter()
                .flat_map(|s| s.tables.iter().map(|t| t.name.clone()))
                .collect();
            for name in named {
                refs.push(&name);
            }
        }
        Ok(refs)
    }

    fn push(&mut self, name: &str) {
        let table = if looks_like_arn(name) {
            let Some(arn) = Arn::parse(name) else {
                self.unreadable.push(name.to_owned());
                return;
            };
            arn.table
        } else {
            name
        };
        if !self.tables.iter().any(|t| t == table) {
            self.tables.push(table.to_owned());
        }
    }

    /// Whether the request names `table`, however spelled: any letter case, in any field, in
    /// a statement's names or anywhere in its identifiers, or inside ARN-like text.
    pub fn names(&self, table: &str) -> bool {
        self.tables.iter().any(|t| t.eq_ignore_ascii_case(table))
            || self.unreadable.iter().any(|t| t.contains(table))
            || self
                .statements
                .iter()
                .any(|s| s.identifiers.iter().any(|i| i.eq_ignore_ascii_case(table)))
    }

    /// The statements that name `table` (as [`References::names`] matches it).
    pub fn statements_naming<'s>(&'s self, table: &'s str) -> impl Iterator<Item = &'s Statement> {
        self.statements.iter().filter(move |s| {
            s.tables
                .iter()
                .any(|t| table_of(&t.name).eq_ignore_ascii_case(table))
                || s.identifiers.iter().any(|i| i.eq_ignore_ascii_case(table))
        })
    }
}

/// The top-level fields of `view` that hold an ARN (`ResourceArn`, `TableArn`, `BackupArn`,
/// `SourceTableArn`, `ExportArn`, `ImportArn`, ...): any field whose name ends in `Arn`.
fn arn_fields<'v>(view: &'v RequestView<'_>) -> impl Iterator<Item = &'v str> {
    view.field_names().filter(|name| name.ends_with("Arn"))
}

/// The statements of a PartiQL request, each read.
fn statements(view: &RequestView<'_>) -> Result<Vec<Statement>, ProxyError> {
    let texts = view.partiql_statements().ok_or_else(|| {
        ProxyError::Validation("a PartiQL request needs its statements as strings".into())
    })?;
    texts
        .iter()
        .map(|text| {
            partiql::read(text).map_err(|source| ProxyError::UnreadableStatement {
                statement: text.clone(),
                source,
            })
        })
        .collect()
}

/// Refuses any request that names the audit table: the trail is written by the sidecar
/// alone, so no client, however authorized for other tables, may read, change, drop,
/// restore over or re-tag it through the sidecar's credentials.
pub fn guard_audit_table(refs: &References, audit_table: &str) -> Result<(), ProxyError> {
    if refs.names(audit_table) {
        return Err(ProxyError::AccessDenied(format!(
            "table {audit_table} is this sidecar's audit trail: clients may not read or change \
             it through the sidecar (auditors read it in the region, with the auditor role, or \
             with `globalscale audit history`)"
        )));
    }
    Ok(())
}
