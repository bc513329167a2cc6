//! The update expression: `SET`, `REMOVE`, `ADD` and `DELETE` clauses over document paths,
//! parsed into an AST that prints back to an equivalent expression, and the rule that says
//! whether applying an update twice leaves the same item as applying it once.

use std::fmt;

use serde_json::{Map, Value};

use super::ExprError;
use super::error::Misuse;
use super::lexer::Token;
use super::parser::Parser;
use super::path::Path;

/// A parsed `UpdateExpression`, its actions in the order written. DynamoDB allows each
/// clause once, so the actions of one clause are consecutive.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UpdateExpression {
    pub actions: Vec<UpdateAction>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum UpdateAction {
    Set(Path, SetValue),
    Remove(Path),
    /// `ADD path :value`: adds to a number, or unions into a set.
    Add(Path, String),
    /// `DELETE path :value`: removes elements from a set.
    Delete(Path, String),
}

/// The right-hand side of a `SET` action.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SetValue {
    Operand(SetOperand),
    Plus(SetOperand, SetOperand),
    Minus(SetOperand, SetOperand),
}

/// An operand of `SET`: a path, a value, or one of the update functions.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SetOperand {
    Path(Path),
    /// A `:value` placeholder, with the `:`.
    Value(String),
    /// `if_not_exists(path, operand)`.
    IfNotExists(Path, Box<SetOperand>),
    /// `list_append(operand, operand)`.
    ListAppend(Box<SetOperand>, Box<SetOperand>),
}

impl UpdateExpression {
    pub fn parse(text: &str) -> Result<Self, ExprError> {
        let mut p = Parser::new(text)?;
        let mut actions = Vec::new();
        let mut seen: Vec<&'static str> = Vec::new();
        loop {
            let at = p.position();
            let clause = clause(&mut p)?;
            if seen.contains(&clause) {
                p.defer(ExprError::DuplicateSection {
                    section: clause,
                    at,
                });
            }
            seen.push(clause);
            loop {
                actions.push(action(&mut p, clause)?);
                if !p.eat(Token::Comma) {
                    break;
                }
            }
            if p.peek().is_none() {
                return p.finish(Self { actions });
            }
        }
    }

    /// Whether applying this update twice leaves the same item as applying it once, so a
    /// resend after an attempt that may have been applied cannot change the outcome:
    /// - `SET` only of a constant (`:v`) or of `if_not_exists` of the same path and a constant
    ///   (`SET a = b` copies a value the same update may change, `a + :n` counts twice);
    /// - `REMOVE` only of map attributes (`REMOVE l[0]` removes another element each time);
    /// - `ADD` only of a set (a union), never of a number;
    /// - `DELETE` (of set elements) always.
    ///
    /// No path may step into a list: `SET l[9] = :v` appends when the list is shorter.
    pub fn idempotent(
        &self,
        names: Option<&Map<String, Value>>,
        values: Option<&Map<String, Value>>,
    ) -> bool {
        self.actions.iter().all(|action| match action {
            UpdateAction::Set(path, value) => {
                !path.has_index() && sets_constant(path, value, names)
            }
            UpdateAction::Remove(path) | UpdateAction::Delete(path, _) => !path.has_index(),
            UpdateAction::Add(path, value) => {
                !path.has_index() && values.and_then(|v| v.get(value)).is_some_and(is_set)
            }
        })
    }
}

impl UpdateExpression {
    /// Whether a `SET` value reads an attribute `is_source` picks out: as the value, an
    /// operand of `+` or `-`, `if_not_exists`'s path or fallback, or inside `list_append`.
    pub fn reads(&self, is_source: impl Fn(&Path) -> bool) -> bool {
        self.actions.iter().any(|action| match action {
            UpdateAction::Set(_, SetValue::Operand(o)) => reads(o, &is_source),
            UpdateAction::Set(_, SetValue::Plus(a, b) | SetValue::Minus(a, b)) => {
                reads(a, &is_source) || reads(b, &is_source)
            }
            _ => false,
        })
    }
}

fn reads(operand: &SetOperand, is_source: &dyn Fn(&Path) -> bool) -> bool {
    match operand {
        SetOperand::Path(path) => is_source(path),
        SetOperand::Value(_) => false,
        SetOperand::IfNotExists(path, fallback) => is_source(path) || reads(fallback, is_source),
        SetOperand::ListAppend(a, b) => reads(a, is_source) || reads(b, is_source),
    }
}

fn sets_constant(path: &Path, value: &SetValue, names: Option<&Map<String, Value>>) -> bool {
    match value {
        SetValue::Operand(SetOperand::Value(_)) => true,
        SetValue::Operand(SetOperand::IfNotExists(source, fallback)) => {
            let target = path.resolve(names);
            matches!(**fallback, SetOperand::Value(_))
                && target.is_some()
                && target == source.resolve(names)
        }
        _ => false,
    }
}

/// Whether an attribute value (`{"SS": [...]}`) is a set.
pub fn is_set(value: &Value) -> bool {
    value
        .as_object()
        .is_some_and(|v| v.len() == 1 && ["SS", "NS", "BS"].iter().any(|t| v.contains_key(*t)))
}

/// The clause keyword, upper case.
fn clause(p: &mut Parser<'_>) -> Result<&'static str, ExprError> {
    for clause in ["SET", "REMOVE", "ADD", "DELETE"] {
        if p.eat_keyword(clause) {
            return Ok(clause);
        }
    }
    Err(p.syntax_error())
}

fn action(p: &mut Parser<'_>, clause: &str) -> Result<UpdateAction, ExprError> {
    let path = p.path()?;
    Ok(match clause {
        "SET" => {
            p.expect(Token::Eq)?;
            UpdateAction::Set(path, set_value(p)?)
        }
        "REMOVE" => UpdateAction::Remove(path),
        "ADD" => UpdateAction::Add(path, p.value()?),
        _ => UpdateAction::Delete(path, p.value()?),
    })
}

fn set_value(p: &mut Parser<'_>) -> Result<SetValue, ExprError> {
    let left = operand(p)?;
    if p.eat(Token::Plus) {
        Ok(SetValue::Plus(left, operand(p)?))
    } else if p.eat(Token::Minus) {
        Ok(SetValue::Minus(left, operand(p)?))
    } else {
        Ok(SetValue::Operand(left))
    }
}

fn operand(p: &mut Parser<'_>) -> Result<SetOperand, ExprError> {
    match (p.peek(), p.peek_second()) {
        (Some(Token::Value(_)), _) => Ok(SetOperand::Value(p.value()?)),
        (Some(Token::Ident(name)), Some(Token::LParen)) => function(p, name),
        (Some(Token::Ident(_) | Token::Name(_)), _) => Ok(SetOperand::Path(p.path()?)),
        _ => Err(p.syntax_error()),
    }
}

/// `if_not_exists(path, operand)` or `list_append(operand, operand)`.
fn function(p: &mut Parser<'_>, name: &str) -> Result<SetOperand, ExprError> {
    let at = p.position();
    match name {
        "if_not_exists" | "list_append" => {}
        "attribute_exists"
        | "attribute_not_exists"
        | "attribute_type"
        | "begins_with"
        | "contains"
        | "size" => {
            return Err(ExprError::FunctionNotAllowed {
                name: name.to_owned(),
                misuse: Misuse::InUpdate,
                at,
            });
        }
        _ => {
            let name = name.to_owned();
            return Err(ExprError::UnknownFunction { name, at });
        }
    }
    let call = p.call(operand)?;
    call.arity(2)?;
    let mut args = call.args.iter().cloned();
    match (call.name, args.next(), args.next()) {
        ("if_not_exists", Some(SetOperand::Path(path)), Some(fallback)) => {
            Ok(SetOperand::IfNotExists(path, Box::new(fallback)))
        }
        ("list_append", Some(a), Some(b)) => Ok(SetOperand::ListAppend(Box::new(a), Box::new(b))),
        _ => Err(call.needs_path()),
    }
}

impl fmt::Display for SetOperand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Path(path) => path.fmt(f),
            Self::Value(value) => f.write_str(value),
            Self::IfNotExists(path, fallback) => write!(f, "if_not_exists({path}, {fallback})"),
            Self::ListAppend(a, b) => write!(f, "list_append({a}, {b})"),
        }
    }
}

impl fmt::Display for SetValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Operand(o) => o.fmt(f),
            Self::Plus(a, b) => write!(f, "{a} + {b}"),
            Self::Minus(a, b) => write!(f, "{a} - {b}"),
        }
    }
}

impl UpdateAction {
    fn clause(&self) -> &'static str {
        match self {
            Self::Set(..) => "SET",
            Self::Remove(_) => "REMOVE",
            Self::Add(..) => "ADD",
            Self::Delete(..) => "DELETE",
        }
    }
}

impl fmt::Display for UpdateExpression {
    /// One clause per kind, as DynamoDB requires, in the order the kinds first appear.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut clauses: Vec<&str> = Vec::new();
        for action in &self.actions {
            if !clauses.contains(&action.clause()) {
                clauses.push(action.clause());
            }
        }
        for (k, clause) in clauses.iter().enumerate() {
            if k > 0 {
                f.write_str(" ")?;
            }
            f.write_str(clause)?;
            let actions = self.actions.iter().filter(|a| a.clause() == *clause);
            for (i, action) in actions.enumerate() {
                f.write_str(if i == 0 { " " } else { ", " })?;
                match action {
                    UpdateAction::Set(path, value) => write!(f, "{path} = {value}")?,
                    UpdateAction::Remove(path) => write!(f, "{path}")?,
                    UpdateAction::Add(path, value) | UpdateAction::Delete(path, value) => {
                        write!(f, "{path} {value}")?;
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
