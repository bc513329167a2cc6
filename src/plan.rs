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

#[derive(Debug)]
pub struct Plan {
    pub operation: Operation,
    /// Every table the request names.
    pub tables: Vec<String>,
    /// The table of each `TransactItems` action, in order.
    pub action_tables: Vec<String>,
    /// The metric label: the managed table the request names, or `other`.
    pub table_label: String,
    /// The prefixed tables this request touches.
    pub prefixes: Vec<KeyPrefix>,
}

impl Plan {
    pub fn build(view: &RequestView<'_>, policies: &Policies) -> Result<Self, ProxyError> {
        let prefixes: Vec<KeyPrefix> = view
            .tables
            .iter()
            .filter_map(|name| prefix_of(policies, name))
            .collect();
        if view.operation.is_partiql() {
            refuse_partiql_on_prefixed(view, policies)?;
        }
        Ok(Self {
            operation: view.operation.clone(),
            table_label: table_label(policies, &view.tables).to_owned(),
            tables: view.tables.clone(),
            action_tables: view.action_tables.clone(),
            prefixes,
        })
    }

    /// Whether any step changes the request (so it must be decoded and serialized again).
    pub fn rewrites_request(&self) -> bool {
        !self.prefixes.is_empty()
    }

    /// Whether any step changes the answer.
    pub fn restores_answer(&self) -> bool {
        !self.prefixes.is_empty()
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

/// PartiQL statements name their tables inside the statement text, where the sidecar does
/// not rewrite keys: a statement that may touch a prefixed table is refused rather than let
/// through to read or write outside its namespace.
fn refuse_partiql_on_prefixed(
    view: &RequestView<'_>,
    policies: &Policies,
) -> Result<(), ProxyError> {
    let Ok(statements) =
        view.subset(|f| matches!(f, "Statement" | "Statements" | "TransactStatements"))
    else {
        return Ok(());
    };
    let text = serde_json::Value::Object(statements).to_string();
    for (name, policy) in policies {
        if policy.key_prefix.is_some() && mentions(&text, name) {
            return Err(ProxyError::Validation(format!(
                "PartiQL statements on table {name} are not supported: its partition keys are \
                 region-prefixed (key_prefix), which only the item operations (GetItem, Query, \
                 PutItem, ...) rewrite"
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
