//! The plan: what the sidecar does with one request, decided once from the lazy view and
//! the snapshot's table policies, and carried with the request to the restore stage, so the
//! answer is rewritten with the same knowledge as the request.

use std::sync::Arc;

use crate::error::ProxyError;
use crate::expr::Expressions;
use crate::snapshot::Policies;
use crate::tables::References;
use crate::wire::items::AnswerContext;
use crate::wire::{Operation, RequestView};

mod expressions;

/// Policies of the tables one request names, inline for one table: most requests name one,
/// and a list per policy was an allocation per request.
pub type PerTable<T> = smallvec::SmallVec<[T; 1]>;

/// A managed table's partition keys are stored behind this prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPrefix {
    pub table: String,
    /// The partition key attribute.
    pub attribute: String,
    /// The resolved prefix (`us-east-1#`).
    pub prefix: String,
}

/// A managed table's writes check and increment this number attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned {
    pub table: String,
    pub attribute: String,
}

/// A table's key prefix and version as plans take them: made once per snapshot and
/// shared by every request's plan (a copy of each name was five allocations a request).
/// `Plan` uses them only while they agree with the table's config, which a learned key
/// schema may change after they were made.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Shared {
    pub prefix: Option<Arc<KeyPrefix>>,
    pub version: Option<Arc<Versioned>>,
}

impl Shared {
    /// For `table` as `policies` now say.
    pub fn of(policies: &Policies, table: &str) -> Self {
        Self {
            prefix: prefix_of(policies, table),
            version: version_of(policies, table),
        }
    }
}

/// A managed table whose writes leave audit records, with the key names a record is keyed by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audited {
    pub table: String,
    pub partition_key: String,
    pub sort_key: Option<String>,
}

#[derive(Debug)]
pub struct Plan {
    /// The operation sent to the region: the client's, except that a BatchWriteItem on a
    /// versioned table runs as one TransactWriteItems (a batch cannot carry conditions).
    pub operation: Operation,
    /// The operation the client asked for, whose answer shape it expects.
    pub client_operation: Operation,
    /// Every table the request names.
    pub tables: Vec<String>,
    /// The table of each `TransactItems` action, in order.
    pub action_tables: Vec<String>,
    /// The prefixed tables this request touches.
    pub prefixes: PerTable<Arc<KeyPrefix>>,
    /// The versioned tables this request touches.
    pub versions: PerTable<Arc<Versioned>>,
    /// The audited tables this request touches.
    pub audits: Vec<Audited>,
    /// The write's audit records travel in the same transaction (`[audit] mode = "atomic"`).
    pub atomic_audit: bool,
    /// `(name, ARN)` of each table the client named by ARN and the sidecar by name: the
    /// answer names them as the client did.
    pub spellings: Vec<(String, String)>,
    /// Whether the request's PartiQL statements all only read, as [`References`] read them
    /// once (false without statements): the retry-safety table takes it from here.
    pub statements_read: bool,
    /// The request's expressions, parsed once here ([`expressions`]); the rewrite steps
    /// edit them, and by the time the request is sent they are what it carries.
    pub expressions: Expressions,
}

impl Plan {
    pub fn build(view: &RequestView<'_>, policies: &Policies) -> Result<Self, ProxyError> {
        Self::build_with(view, policies, false)
    }

    /// [`Plan::build`]; with `atomic_audit`, a write to an audited table runs as one
    /// TransactWriteItems that also stores its audit records.
    pub fn build_with(
        view: &RequestView<'_>,
        policies: &Policies,
        atomic_audit: bool,
    ) -> Result<Self, ProxyError> {
        Self::build_from(view, &References::read(view)?, policies, atomic_audit)
    }

    /// [`Plan::build_with`], from the request's table references already read.
    pub fn build_from(
        view: &RequestView<'_>,
        refs: &References,
        policies: &Policies,
        atomic_audit: bool,
    ) -> Result<Self, ProxyError> {
        let prefixes: PerTable<_> = view
            .tables
            .iter()
            .filter_map(|name| prefix_of(policies, name))
            .collect();
        let versions: PerTable<_> = view
            .tables
            .iter()
            .filter_map(|name| version_of(policies, name))
            .collect();
        let audits = view
            .tables
            .iter()
            .filter_map(|name| audited(policies, name).transpose())
            .collect::<Result<Vec<_>, _>>()?;
        refuse_on_partiql(refs, policies)?;
        let atomic_audit = atomic_audit && !audits.is_empty() && is_write(&view.operation);
        let batch_as_transaction =
            view.operation == Operation::BatchWriteItem && (!versions.is_empty() || atomic_audit);
        let single_as_transaction = atomic_audit
            && matches!(
                view.operation,
                Operation::PutItem | Operation::UpdateItem | Operation::DeleteItem
            );
        let (operation, action_tables) = if batch_as_transaction {
            (Operation::TransactWriteItems, batch_action_tables(view)?)
        } else if single_as_transaction {
            (Operation::TransactWriteItems, view.tables.clone())
        } else {
            (view.operation.clone(), view.action_tables.clone())
        };
        let rewritten = |table: &str| {
            prefixes.iter().any(|p| p.table == table) || versions.iter().any(|v| v.table == table)
        };
        let expressions = expressions::read(view, &operation, action_tables.len(), rewritten)?;
        Ok(Self {
            operation,
            client_operation: view.operation.clone(),
            tables: view.tables.clone(),
            action_tables,
            prefixes,
            versions,
            audits,
            atomic_audit,
            spellings: Vec::new(),
            statements_read: !refs.statements.is_empty()
                && refs.statements.iter().all(|s| s.kind.reads()),
            expressions,
        })
    }

    /// Whether a PutItem, UpdateItem or DeleteItem runs as a one-action TransactWriteItems.
    pub fn single_as_transaction(&self) -> bool {
        self.operation == Operation::TransactWriteItems
            && matches!(
                self.client_operation,
                Operation::PutItem | Operation::UpdateItem | Operation::DeleteItem
            )
    }

    pub fn audit_of(&self, table: &str) -> Option<&Audited> {
        self.audits.iter().find(|a| a.table == table)
    }

    /// Whether this is a write to an audited table, which must leave records.
    pub fn audited_write(&self) -> bool {
        !self.audits.is_empty() && is_write(&self.client_operation)
    }

    /// Whether a BatchWriteItem runs as a TransactWriteItems.
    pub fn batch_as_transaction(&self) -> bool {
        self.client_operation == Operation::BatchWriteItem
            && self.operation == Operation::TransactWriteItems
    }

    pub fn version_of(&self, table: &str) -> Option<&Versioned> {
        self.versions
            .iter()
            .find(|v| v.table == table)
            .map(AsRef::as_ref)
    }

    /// Whether any step changes the request (so it must be decoded and serialized again).
    pub fn rewrites_request(&self) -> bool {
        !self.prefixes.is_empty() || !self.versions.is_empty() || self.atomic_audit
    }

    /// Whether any step changes the answer.
    pub fn restores_answer(&self) -> bool {
        self.rewrites_request() || !self.spellings.is_empty()
    }

    pub fn prefix_of(&self, table: &str) -> Option<&KeyPrefix> {
        self.prefixes
            .iter()
            .find(|p| p.table == table)
            .map(AsRef::as_ref)
    }

    /// What the answer walker needs to know of the request.
    pub fn answer_context(&self) -> AnswerContext<'_> {
        let single = !matches!(
            self.operation,
            Operation::BatchGetItem
                | Operation::BatchWriteItem
                | Operation::TransactGetItems
                | Operation::TransactWriteItems
        );
        AnswerContext {
            table: self.tables.first().filter(|_| single).map(String::as_str),
            action_tables: &self.action_tables,
        }
    }
}

/// The item writes an audit record stands for.
fn is_write(operation: &Operation) -> bool {
    matches!(
        operation,
        Operation::PutItem
            | Operation::UpdateItem
            | Operation::DeleteItem
            | Operation::BatchWriteItem
            | Operation::TransactWriteItems
    )
}

/// `table`'s key prefix: the snapshot's shared one while it agrees with the config, else
/// made now.
fn prefix_of(policies: &Policies, table: &str) -> Option<Arc<KeyPrefix>> {
    let policy = policies.get(table)?;
    let (Some(attribute), Some(prefix)) = (&policy.partition_key, &policy.key_prefix) else {
        return None;
    };
    if let Some(shared) = &policy.shared.prefix
        && (shared.table.as_str(), &shared.attribute, &shared.prefix) == (table, attribute, prefix)
    {
        return Some(Arc::clone(shared));
    }
    Some(Arc::new(KeyPrefix {
        table: table.to_owned(),
        attribute: attribute.clone(),
        prefix: prefix.clone(),
    }))
}

/// `table`'s version, as [`prefix_of`] takes its prefix.
fn version_of(policies: &Policies, table: &str) -> Option<Arc<Versioned>> {
    let policy = policies.get(table)?;
    let attribute = policy.version_attribute.as_ref()?;
    if let Some(shared) = &policy.shared.version
        && (shared.table.as_str(), &shared.attribute) == (table, attribute)
    {
        return Some(Arc::clone(shared));
    }
    Some(Arc::new(Versioned {
        table: table.to_owned(),
        attribute: attribute.clone(),
    }))
}

/// The audit policy of `table`, if it is audited. Its records are keyed by the item's key, so
/// until the key schema is known (the file, or DescribeTable at start) writes are refused
/// with a retryable error rather than recorded under the wrong key.
fn audited(policies: &Policies, table: &str) -> Result<Option<Audited>, ProxyError> {
    let Some(policy) = policies.get(table).filter(|p| p.audit) else {
        return Ok(None);
    };
    let unknown = || {
        ProxyError::from(crate::error::Unavailable::KeySchemaUnknown {
            table: table.to_owned(),
        })
    };
    let partition_key = policy.partition_key.clone().ok_or_else(unknown)?;
    if policy.sort_key.is_none() && policy.key_types.is_none() {
        return Err(unknown());
    }
    Ok(Some(Audited {
        table: table.to_owned(),
        partition_key,
        sort_key: policy.sort_key.clone(),
    }))
}

/// The table of each write request of a BatchWriteItem, in the order the transaction that
/// replaces it lists them (tables by name, then the requests as written).
fn batch_action_tables(view: &RequestView<'_>) -> Result<Vec<String>, ProxyError> {
    let items = view
        .decode::<std::collections::BTreeMap<String, Vec<serde::de::IgnoredAny>>>("RequestItems")?
        .unwrap_or_default();
    Ok(items
        .into_iter()
        .flat_map(|(table, requests)| std::iter::repeat_n(table, requests.len()))
        .collect())
}

/// PartiQL statements name their tables inside the statement text, where the sidecar does
/// not rewrite keys or versions: a statement that may touch a prefixed or versioned table is
/// refused rather than let through to read or write outside its namespace or around its
/// version check, and one that may write to an audited table, rather than let it change
/// items without a record. "May touch" is [`References::statements_naming`]: the table in
/// any letter case, as a statement's table or any of its identifiers.
fn refuse_on_partiql(refs: &References, policies: &Policies) -> Result<(), ProxyError> {
    for (name, policy) in policies {
        let mut naming = refs.statements_naming(name).peekable();
        if naming.peek().is_none() {
            continue;
        }
        if policy.key_prefix.is_some() || policy.version_attribute.is_some() {
            return Err(ProxyError::Validation(format!(
                "PartiQL statements on table {name} are not supported: its partition keys are \
                 region-prefixed (key_prefix) or its writes versioned (version_attribute), \
                 which only the item operations (GetItem, Query, PutItem, ...) rewrite"
            )));
        }
        if policy.audit && naming.any(|s| !s.kind.reads()) {
            return Err(ProxyError::Validation(format!(
                "PartiQL writes to table {name} are not supported: it is audited, and the \
                 sidecar records the items a write changes only from the item operations \
                 (PutItem, UpdateItem, DeleteItem, BatchWriteItem, TransactWriteItems)"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, TableConfig};

    #[test]
    fn a_plan_shares_the_snapshots_prefix_and_version_while_they_agree_with_the_config() {
        let config = Config::from_toml_str(
            r#"
            [[regions]]
            name = "us-east-1"
            endpoint = "http://127.0.0.1:8001"

            [[tables]]
            name = "Ledger"
            partition_key = "k"
            key_prefix = "{region}#"
            version_attribute = "Version"
            "#,
        )
        .unwrap();
        let mut policies = crate::snapshot::policies(&config, None);
        let body = br#"{"TableName":"Ledger","Key":{"k":{"S":"a"}}}"#;
        let view = RequestView::parse(Operation::GetItem, body).unwrap();
        let plan = Plan::build(&view, &policies).unwrap();
        let shared = &policies["Ledger"].shared;
        assert!(Arc::ptr_eq(
            &plan.prefixes[0],
            shared.prefix.as_ref().unwrap()
        ));
        assert!(Arc::ptr_eq(
            &plan.versions[0],
            shared.version.as_ref().unwrap()
        ));
        assert_eq!(plan.prefix_of("Ledger").unwrap().prefix, "us-east-1#");
        // A key schema learned after the snapshot made them (schema::merge) outdates them.
        let table = policies.get_mut("Ledger").unwrap();
        table.partition_key = Some("id".into());
        table.version_attribute = Some("Revision".into());
        let plan = Plan::build(&view, &policies).unwrap();
        let prefix = plan.prefix_of("Ledger").unwrap();
        assert_eq!(
            (prefix.attribute.as_str(), prefix.prefix.as_str()),
            ("id", "us-east-1#")
        );
        assert_eq!(plan.version_of("Ledger").unwrap().attribute, "Revision");
    }

    fn audited_policies() -> Policies {
        let table = TableConfig {
            name: "Orders".into(),
            partition_key: Some("pk".into()),
            sort_key: None,
            key_types: Some((crate::wire::ScalarType::S, None)),
            key_prefix: None,
            version_attribute: None,
            audit: true,
            arn: None,
            shared: Shared::default(),
        };
        Policies::from([("Orders".to_owned(), table)])
    }

    fn plan(operation: Operation, body: &str, atomic: bool) -> Result<Plan, ProxyError> {
        let view = RequestView::parse(operation, body.as_bytes())?;
        Plan::build_with(&view, &audited_policies(), atomic)
    }

    #[test]
    fn partiql_writes_to_an_audited_table_are_refused_and_reads_pass() {
        let write = r#"{"Statement": "UPDATE \"Orders\" SET a = 1 WHERE pk = 'x'"}"#;
        let err = plan(Operation::ExecuteStatement, write, false).unwrap_err();
        assert!(err.to_string().contains("audited"), "{err}");
        let batch = r#"{"Statements": [{"Statement": "SELECT * FROM Orders"}, {"Statement": "DELETE FROM Orders WHERE pk = 'x'"}]}"#;
        assert!(plan(Operation::BatchExecuteStatement, batch, false).is_err());
        let read = r#"{"Statement": "select * from \"Orders\" where pk = 'x'"}"#;
        assert!(plan(Operation::ExecuteStatement, read, false).is_ok());
    }

    #[test]
    fn an_atomically_audited_write_runs_as_a_transaction_and_a_read_does_not() {
        let put = r#"{"TableName": "Orders", "Item": {"pk": {"S": "a"}}}"#;
        let atomic = plan(Operation::PutItem, put, true).unwrap();
        assert_eq!(atomic.operation, Operation::TransactWriteItems);
        assert!(atomic.single_as_transaction() && atomic.audited_write());
        assert_eq!(atomic.action_tables, ["Orders"]);
        let spooled = plan(Operation::PutItem, put, false).unwrap();
        assert_eq!(spooled.operation, Operation::PutItem);
        let get = r#"{"TableName": "Orders", "Key": {"pk": {"S": "a"}}}"#;
        let read = plan(Operation::GetItem, get, true).unwrap();
        assert!(!read.atomic_audit && !read.audited_write());
    }

    #[test]
    fn an_audited_table_with_an_unknown_key_schema_is_refused_retryably() {
        let mut policies = audited_policies();
        if let Some(table) = policies.get_mut("Orders") {
            table.key_types = None;
        }
        let put = r#"{"TableName": "Orders", "Item": {"pk": {"S": "a"}}}"#;
        let view = RequestView::parse(Operation::PutItem, put.as_bytes()).unwrap();
        let err = Plan::build(&view, &policies).unwrap_err();
        assert!(err.retryable(), "{err}");
    }

    #[test]
    fn partiql_finds_the_audited_table_however_it_is_spelled() {
        for statement in [
            "UPDATE\nOrders SET a = 1 WHERE pk = 'x'",
            "DELETE FROM\tOrders WHERE pk = 'x'",
            "delete from orders where pk = 'x'",
            "DELETE FROM /* c */ \"Orders\" WHERE pk = 'x'",
            "INSERT INTO \"arn:aws:dynamodb:us-east-1:123456789012:table/Orders\" VALUE {'pk': 'x'}",
        ] {
            let body = serde_json::json!({ "Statement": statement }).to_string();
            let err = plan(Operation::ExecuteStatement, &body, false).unwrap_err();
            assert!(err.to_string().contains("audited"), "{statement:?}: {err}");
        }
        let other = r#"{"Statement": "UPDATE OrdersArchive SET a = 1 WHERE pk = 'Orders'"}"#;
        assert!(plan(Operation::ExecuteStatement, other, false).is_ok());
    }

    #[test]
    fn a_statement_is_counted_under_the_managed_table_it_names() {
        let policies = audited_policies();
        let label = |operation: Operation, body: &str| {
            let view = RequestView::parse(operation, body.as_bytes()).unwrap();
            let refs = References::read(&view).unwrap();
            crate::snapshot::request_table_label(&policies, &view.tables, &refs).to_owned()
        };
        let read = r#"{"Statement": "SELECT * FROM \"orders\" WHERE pk = 'x'"}"#;
        assert_eq!(label(Operation::ExecuteStatement, read), "Orders");
        let batch = r#"{"Statements": [{"Statement": "SELECT * FROM Elsewhere"}, {"Statement": "SELECT * FROM Orders"}]}"#;
        assert_eq!(label(Operation::BatchExecuteStatement, batch), "Orders");
        let unmanaged = r#"{"Statement": "SELECT * FROM OrdersArchive"}"#;
        assert_eq!(
            label(Operation::ExecuteStatement, unmanaged),
            crate::metrics::OTHER
        );
    }
}
