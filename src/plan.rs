//! The plan: what the sidecar does with one request, decided once from the lazy view and
//! the snapshot's table policies, and carried with the request to the restore stage, so the
//! answer is rewritten with the same knowledge as the request.

use crate::error::ProxyError;
use crate::snapshot::{Policies, table_label};
use crate::wire::items::AnswerContext;
use crate::wire::{Operation, RequestView};

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
    /// The metric label: the managed table the request names, or `other`.
    pub table_label: String,
    /// The prefixed tables this request touches.
    pub prefixes: Vec<KeyPrefix>,
    /// The versioned tables this request touches.
    pub versions: Vec<Versioned>,
}

impl Plan {
    pub fn build(view: &RequestView<'_>, policies: &Policies) -> Result<Self, ProxyError> {
        let prefixes: Vec<KeyPrefix> = view
            .tables
            .iter()
            .filter_map(|name| prefix_of(policies, name))
            .collect();
        let versions: Vec<Versioned> = view
            .tables
            .iter()
            .filter_map(|name| {
                let attribute = policies.get(name)?.version_attribute.clone()?;
                Some(Versioned {
                    table: name.clone(),
                    attribute,
                })
            })
            .collect();
        if view.operation.is_partiql() {
            refuse_on_partiql(view, policies)?;
        }
        let batch_as_transaction =
            view.operation == Operation::BatchWriteItem && !versions.is_empty();
        let (operation, action_tables) = if batch_as_transaction {
            (Operation::TransactWriteItems, batch_action_tables(view)?)
        } else {
            (view.operation.clone(), view.action_tables.clone())
        };
        Ok(Self {
            operation,
            client_operation: view.operation.clone(),
            table_label: table_label(policies, &view.tables).to_owned(),
            tables: view.tables.clone(),
            action_tables,
            prefixes,
            versions,
        })
    }

    /// Whether a BatchWriteItem runs as a TransactWriteItems.
    pub fn batch_as_transaction(&self) -> bool {
        self.client_operation == Operation::BatchWriteItem
            && self.operation == Operation::TransactWriteItems
    }

    pub fn version_of(&self, table: &str) -> Option<&Versioned> {
        self.versions.iter().find(|v| v.table == table)
    }

    /// Whether any step changes the request (so it must be decoded and serialized again).
    pub fn rewrites_request(&self) -> bool {
        !self.prefixes.is_empty() || !self.versions.is_empty()
    }

    /// Whether any step changes the answer.
    pub fn restores_answer(&self) -> bool {
        !self.prefixes.is_empty() || !self.versions.is_empty()
    }

    pub fn prefix_of(&self, table: &str) -> Option<&KeyPrefix> {
        self.prefixes.iter().find(|p| p.table == table)
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

fn prefix_of(policies: &Policies, table: &str) -> Option<KeyPrefix> {
    let policy = policies.get(table)?;
    Some(KeyPrefix {
        table: table.to_owned(),
        attribute: policy.partition_key.clone()?,
        prefix: policy.key_prefix.clone()?,
    })
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
/// version check.
fn refuse_on_partiql(view: &RequestView<'_>, policies: &Policies) -> Result<(), ProxyError> {
    let Ok(statements) =
        view.subset(|f| matches!(f, "Statement" | "Statements" | "TransactStatements"))
    else {
        return Ok(());
    };
    let text = serde_json::Value::Object(statements).to_string();
    for (name, policy) in policies {
        let managed = policy.key_prefix.is_some() || policy.version_attribute.is_some();
        if managed && mentions(&text, name) {
            return Err(ProxyError::Validation(format!(
                "PartiQL statements on table {name} are not supported: its partition keys are \
                 region-prefixed (key_prefix) or its writes versioned (version_attribute), \
                 which only the item operations (GetItem, Query, PutItem, ...) rewrite"
            )));
        }
    }
    Ok(())
}

/// Whether `text` holds `name` as a whole word (quoted or not).
fn mentions(text: &str, name: &str) -> bool {
    let is_word = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
    text.match_indices(name).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + name.len()..].chars().next();
        !before.is_some_and(is_word) && !after.is_some_and(is_word)
    })
}

#[cfg(test)]
mod tests {
    use super::mentions;

    #[test]
    fn finds_a_table_named_in_a_statement() {
        assert!(mentions(
            r#"SELECT * FROM \"Orders\" WHERE pk = 'a'"#,
            "Orders"
        ));
        assert!(mentions("UPDATE Orders SET a = 1", "Orders"));
        assert!(!mentions("SELECT * FROM OrdersArchive", "Orders"));
        assert!(!mentions("SELECT * FROM my.Orders2", "Orders"));
    }
}
