//! Per-client table allow-lists (`tables = ["GlobalCatalog", "Orders*"]` in `[[clients]]`),
//! checked after the plan and before anything is sent: a request that touches any table
//! outside the list, anywhere in it (a batch's tables, a transaction's actions, a PartiQL
//! statement, a resource ARN), is refused with `AccessDeniedException`. The tables are the
//! request's [`References`], the same reading every other policy uses. A request whose
//! tables cannot be known for certain (an unreadable ARN, a listing with no table) is
//! refused too: the check fails closed. `ListTables` is answered with the allowed tables only.

use crate::error::ProxyError;
use crate::tables::References;
use crate::wire::{Operation, RequestView};

/// A client's table patterns; `*` matches any run of characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allowed {
    patterns: Vec<String>,
}

impl Allowed {
    pub fn new(patterns: Vec<String>) -> Self {
        Allowed { patterns }
    }

    pub fn allows(&self, table: &str) -> bool {
        self.patterns.iter().any(|p| glob(p, table))
    }

    /// Refuses a request of `client` that touches a table outside the list.
    pub fn check(
        &self,
        client: &str,
        view: &RequestView<'_>,
        refs: &References,
    ) -> Result<(), ProxyError> {
        let op = &view.operation;
        if matches!(
            op,
            Operation::ListTables | Operation::DescribeEndpoints | Operation::DescribeLimits
        ) {
            return Ok(());
        }
        let denied = |what: &str| {
            ProxyError::AccessDenied(format!(
                "client {client} is not authorized to perform: dynamodb:{} on {what}",
                op.name()
            ))
        };
        if refs.tables.is_empty() || !refs.unreadable.is_empty() {
            return Err(denied(
                "tables it does not name in a way the sidecar can check",
            ));
        }
        match refs.tables.iter().find(|t| !self.allows(t)) {
            Some(table) => Err(denied(&format!("table {table}"))),
            None => Ok(()),
        }
    }
}

/// `*` matches any run of characters (none included); everything else itself.
fn glob(pattern: &str, name: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = name.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests;
