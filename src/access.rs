//! Per-client table allow-lists (`tables = ["GlobalCatalog", "Orders*"]` in `[[clients]]`),
//! checked after the plan and before anything is sent: a request that touches any table
//! outside the list, anywhere in it (a batch's tables, a transaction's actions, a PartiQL
//! statement, a resource ARN), is refused with `AccessDeniedException`. A request whose
//! tables cannot be known for certain (an unreadable statement, a listing with no table) is
//! refused too: the check fails closed. `ListTables` is answered with the allowed tables only.

use serde_json::{Map, Value};

use crate::error::ProxyError;
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
    pub fn check(&self, client: &str, view: &RequestView<'_>) -> Result<(), ProxyError> {
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
        let tables = touched(view)
            .ok_or_else(|| denied("tables it does not name in a way the sidecar can check"))?;
        match tables.iter().find(|t| !self.allows(t)) {
            Some(table) => Err(denied(&format!("table {table}"))),
            None => Ok(()),
        }
    }

    /// Leaves only the allowed tables in a `ListTables` answer; `LastEvaluatedTableName`
    /// stays, so paging goes on over the whole list.
    pub fn filter_list(&self, answer: &mut Map<String, Value>) {
        if let Some(Value::Array(names)) = answer.get_mut("TableNames") {
            names.retain(|n| n.as_str().is_some_and(|n| self.allows(n)));
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

/// Every table a request touches, or `None` when that cannot be known for certain.
fn touched(view: &RequestView<'_>) -> Option<Vec<String>> {
    let mut tables = view.tables.clone();
    for field in ["SourceTableName", "TargetTableName", "GlobalTableName"] {
        if let Some(name) = view.str(field) {
            tables.push(name.into_owned());
        }
    }
    for field in ["ResourceArn", "TableArn", "SourceTableArn", "BackupArn"] {
        if let Some(arn) = view.str(field) {
            tables.push(table_of_arn(&arn)?.to_owned());
        }
    }
    if let Ok(Some(parameters)) = view.decode::<Map<String, Value>>("TableCreationParameters")
        && let Some(name) = parameters.get("TableName").and_then(Value::as_str)
    {
        tables.push(name.to_owned());
    }
    if view.operation.is_partiql() {
        for statement in view.partiql_statements()? {
            tables.extend(partiql_tables(&statement)?);
        }
    }
    (!tables.is_empty()).then_some(tables)
}

/// The table of `arn:<partition>:dynamodb:<region>:<account>:table/<name>[/...]`.
fn table_of_arn(arn: &str) -> Option<&str> {
    let resource = arn.splitn(6, ':').nth(5)?;
    let name = resource.strip_prefix("table/")?.split('/').next()?;
    (!name.is_empty()).then_some(name)
}

/// The tables a PartiQL statement names after `FROM`, `INTO` and `UPDATE`; `None` for a
/// statement the scan cannot read with certainty (comments, a keyword not followed by a
/// name, no table at all).
fn partiql_tables(statement: &str) -> Option<Vec<String>> {
    let tokens = tokens(statement)?;
    let mut tables = Vec::new();
    let mut iter = tokens.iter();
    while let Some(token) = iter.next() {
        let Token::Word(word) = token else { continue };
        if ["FROM", "INTO", "UPDATE"]
            .iter()
            .any(|k| word.eq_ignore_ascii_case(k))
        {
            match iter.next() {
                Some(Token::Word(name) | Token::Quoted(name)) => tables.push(name.clone()),
                _ => return None,
            }
        }
    }
    (!tables.is_empty()).then_some(tables)
}

#[derive(Debug, PartialEq)]
enum Token {
    Word(String),
    Quoted(String),
    Other,
}

fn tokens(statement: &str) -> Option<Vec<Token>> {
    let mut tokens = Vec::new();
    let mut chars = statement.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                let mut text = String::new();
                loop {
                    let next = chars.next()?;
                    if next == c {
                        // A doubled quote is the quote itself.
                        if chars.peek() == Some(&c) {
                            chars.next();
                        } else {
                            break;
                        }
                    }
                    text.push(next);
                }
                tokens.push(if c == '"' {
                    Token::Quoted(text)
                } else {
                    Token::Other
                });
            }
            '-' if chars.peek() == Some(&'-') => return None,
            '/' if chars.peek() == Some(&'*') => return None,
            c if c.is_alphanumeric() || c == '_' => {
                let mut word = String::from(c);
                while let Some(&next) = chars.peek() {
                    if !(next.is_alphanumeric() || matches!(next, '_' | '-')) {
                        break;
                    }
                    word.push(next);
                    chars.next();
                }
                tokens.push(Token::Word(word));
            }
            c if c.is_whitespace() => {}
            _ => tokens.push(Token::Other),
        }
    }
    Some(tokens)
}

#[cfg(test)]
mod tests;
