//! Conditions: `ConditionExpression`, `FilterExpression` and `KeyConditionExpression` share
//! one grammar: comparisons, `BETWEEN`, `IN`, the condition functions, and `NOT` > `AND` >
//! `OR` with parentheses. Keywords are matched without regard to case, function names
//! exactly (DynamoDB's guide: "These function names are case-sensitive").

use std::fmt;

use super::ExprError;
use super::error::Misuse;
use super::lexer::Token;
use super::parser::{Call, Parser};
use super::path::Path;

mod targets;
#[cfg(test)]
mod tests;

/// DynamoDB's limit on the operands of `IN`.
pub const MAX_IN_OPERANDS: usize = 100;

/// What a comparison, `BETWEEN`, `IN` or a function compares.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Operand {
    Path(Path),
    /// A `:value` placeholder, with the `:`.
    Value(String),
    /// `size(path)`.
    Size(Path),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Comparator {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// A parsed condition. A chain of `AND`s (or `OR`s) is one node listing its operands, two or
/// more, so `a AND b AND c` is `And([a, b, c])` and `a AND (b AND c)` is
/// `And([a, And([b, c])])`; printing gives the same tree back. Only parentheses and `NOT`s
/// (at most [`super::MAX_NESTING`]) make the tree deeper, so walking it recurses little.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Condition {
    Compare(Operand, Comparator, Operand),
    /// `operand BETWEEN low AND high`.
    Between(Operand, Operand, Operand),
    /// `operand IN (list)`, one to [`MAX_IN_OPERANDS`] operands.
    In(Operand, Vec<Operand>),
    AttributeExists(Path),
    AttributeNotExists(Path),
    /// `attribute_type(path, :type)`.
    AttributeType(Path, Operand),
    /// `begins_with(operand, prefix)`: DynamoDB requires no path of the first operand.
    BeginsWith(Operand, Operand),
    /// `contains(operand, operand)`.
    Contains(Operand, Operand),
    Not(Box<Condition>),
    And(Vec<Condition>),
    Or(Vec<Condition>),
}

/// Parses a `ConditionExpression` or a `FilterExpression`.
pub fn parse_condition(text: &str) -> Result<Condition, ExprError> {
    let mut parser = Parser::new(text)?;
    let condition = or(&mut parser)?;
    parser.finish(condition)
}

/// Parses a `KeyConditionExpression`. The grammar is the condition's; which operators and
/// attributes a key condition may use is DynamoDB's to check against the table's key.
pub fn parse_key_condition(text: &str) -> Result<Condition, ExprError> {
    parse_condition(text)
}

fn or(p: &mut Parser<'_>) -> Result<Condition, ExprError> {
    let first = and(p)?;
    if !p.at_keyword("OR") {
        return Ok(first);
    }
    let mut operands = vec![first];
    while p.eat_keyword("OR") {
        operands.push(and(p)?);
    }
    Ok(Condition::Or(operands))
}

fn and(p: &mut Parser<'_>) -> Result<Condition, ExprError> {
    let first = not(p)?;
    if !p.at_keyword("AND") {
        return Ok(first);
    }
    let mut operands = vec![first];
    while p.eat_keyword("AND") {
        operands.push(not(p)?);
    }
    Ok(Condition::And(operands))
}

fn not(p: &mut Parser<'_>) -> Result<Condition, ExprError> {
    if !p.eat_keyword("NOT") {
        return primary(p);
    }
    p.enter()?;
    let inner = not(p)?;
    p.leave();
    Ok(Condition::Not(Box::new(inner)))
}

fn primary(p: &mut Parser<'_>) -> Result<Condition, ExprError> {
    match (p.peek(), p.peek_second()) {
        (Some(Token::LParen), _) => group(p),
        (Some(Token::Ident(name)), Some(Token::LParen)) if name != "size" => function(p, name),
        _ => comparison(p),
    }
}

/// `( condition )`; `((condition))` is DynamoDB's "redundant parentheses" error.
fn group(p: &mut Parser<'_>) -> Result<Condition, ExprError> {
    let open = p.index();
    let at = p.position();
    p.bump();
    p.enter()?;
    let inner = or(p)?;
    p.expect(Token::RParen)?;
    p.leave();
    let close = p.index() - 1;
    if p.last_group == Some((open + 1, close - 1)) {
        p.defer(ExprError::RedundantParentheses { at });
    }
    p.last_group = Some((open, close));
    Ok(inner)
}

fn comparison(p: &mut Parser<'_>) -> Result<Condition, ExprError> {
    let left = operand(p)?;
    if let Some(comparator) = p.peek().and_then(Comparator::from_token) {
        p.bump();
        return Ok(Condition::Compare(left, comparator, operand(p)?));
    }
    if p.eat_keyword("BETWEEN") {
        let low = operand(p)?;
        p.expect_keyword("AND")?;
        return Ok(Condition::Between(left, low, operand(p)?));
    }
    if p.at_keyword("IN") {
        let at = p.position();
        p.bump();
        p.expect(Token::LParen)?;
        let mut list = vec![operand(p)?];
        while p.eat(Token::Comma) {
            list.push(operand(p)?);
        }
        p.expect(Token::RParen)?;
        if list.len() > MAX_IN_OPERANDS {
            let count = list.len();
            p.defer(ExprError::TooManyInOperands { count, at });
        }
        return Ok(Condition::In(left, list));
    }
    if let Operand::Size(_) = left {
        return Err(ExprError::FunctionNotAllowed {
            name: "size".into(),
            misuse: Misuse::ThisWay,
            at: p.position(),
        });
    }
    Err(p.syntax_error())
}

/// A path, a `:value` or `size(path)`.
fn operand(p: &mut Parser<'_>) -> Result<Operand, ExprError> {
    match (p.peek(), p.peek_second()) {
        (Some(Token::Value(_)), _) => Ok(Operand::Value(p.value()?)),
        (Some(Token::Ident(name)), Some(Token::LParen)) => {
            if name != "size" {
                return Err(refused_function(name, Misuse::ThisWay, p.position()));
            }
            let call = p.call(operand)?;
            call.arity(1)?;
            match call.args.into_iter().next() {
                Some(Operand::Path(path)) => Ok(Operand::Size(path)),
                _ => Err(ExprError::NeedsPath {
                    function: "size".into(),
                    at: call.at,
                }),
            }
        }
        (Some(Token::Ident(_) | Token::Name(_)), _) => Ok(Operand::Path(p.path()?)),
        _ => Err(p.syntax_error()),
    }
}

/// A condition function: `attribute_exists(path)` and the like.
fn function(p: &mut Parser<'_>, name: &str) -> Result<Condition, ExprError> {
    let arity = match name {
        "attribute_exists" | "attribute_not_exists" => 1,
        "attribute_type" | "begins_with" | "contains" => 2,
        _ => return Err(refused_function(name, Misuse::InCondition, p.position())),
    };
    let call = p.call(operand)?;
    call.arity(arity)?;
    let Call { name, args, at } = call;
    let needs_path = || ExprError::NeedsPath {
        function: name.to_owned(),
        at,
    };
    let path = |operand: Operand| match operand {
        Operand::Path(path) => Ok(path),
        _ => Err(needs_path()),
    };
    let mut args = args.into_iter();
    match (name, args.next(), args.next()) {
        ("attribute_exists", Some(a), None) => Ok(Condition::AttributeExists(path(a)?)),
        ("attribute_not_exists", Some(a), None) => Ok(Condition::AttributeNotExists(path(a)?)),
        ("attribute_type", Some(a), Some(t)) => Ok(Condition::AttributeType(path(a)?, t)),
        ("begins_with", Some(a), Some(b)) => Ok(Condition::BeginsWith(a, b)),
        ("contains", Some(a), Some(b)) => Ok(Condition::Contains(a, b)),
        // The arity was checked above: no other shape reaches here.
        _ => Err(needs_path()),
    }
}

/// The error for a function a condition cannot call at this place: one of the update
/// expression's, a condition function where an operand belongs, or no function at all.
fn refused_function(name: &str, misuse: Misuse, at: usize) -> ExprError {
    let condition_function = [
        "attribute_exists",
        "attribute_not_exists",
        "attribute_type",
        "begins_with",
        "contains",
        "size",
    ];
    if ["if_not_exists", "list_append"].contains(&name) {
        ExprError::FunctionNotAllowed {
            name: name.to_owned(),
            misuse: Misuse::InCondition,
            at,
        }
    } else if condition_function.contains(&name) {
        ExprError::FunctionNotAllowed {
            name: name.to_owned(),
            misuse,
            at,
        }
    } else {
        ExprError::UnknownFunction {
            name: name.to_owned(),
            at,
        }
    }
}

impl Comparator {
    fn from_token(token: Token<'_>) -> Option<Self> {
        Some(match token {
            Token::Eq => Self::Eq,
            Token::Ne => Self::Ne,
            Token::Lt => Self::Lt,
            Token::Le => Self::Le,
            Token::Gt => Self::Gt,
            Token::Ge => Self::Ge,
            _ => return None,
        })
    }
}

impl fmt::Display for Comparator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Eq => "=",
            Self::Ne => "<>",
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Gt => ">",
            Self::Ge => ">=",
        })
    }
}

impl fmt::Display for Operand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Path(path) => path.fmt(f),
            Self::Value(value) => f.write_str(value),
            Self::Size(path) => write!(f, "size({path})"),
        }
    }
}

impl Condition {
    /// How tightly the printed condition binds: `OR` 1, `AND` 2, everything else 3.
    fn precedence(&self) -> u8 {
        match self {
            Self::Or(..) => 1,
            Self::And(..) => 2,
            _ => 3,
        }
    }
}

/// Prints `child`, in parentheses when it binds less tightly than `min`.
fn child(f: &mut fmt::Formatter<'_>, child: &Condition, min: u8) -> fmt::Result {
    if child.precedence() < min {
        write!(f, "({child})")
    } else {
        write!(f, "{child}")
    }
}

/// Prints a chain, each operand that is a chain too in parentheses (`a AND (b AND c)`
/// keeps its tree; `a AND (b OR c)` needs them).
fn chain(
    f: &mut fmt::Formatter<'_>,
    operands: &[Condition],
    keyword: &str,
    min: u8,
) -> fmt::Result {
    for (i, operand) in operands.iter().enumerate() {
        if i > 0 {
            f.write_str(keyword)?;
        }
        child(f, operand, min)?;
    }
    Ok(())
}

impl fmt::Display for Condition {
    /// Keywords upper case, function names lower case, parentheses only where precedence
    /// needs them (and around a chain inside a chain of the same operator, to keep the tree).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Compare(left, comparator, right) => write!(f, "{left} {comparator} {right}"),
            Self::Between(operand, low, high) => write!(f, "{operand} BETWEEN {low} AND {high}"),
            Self::In(operand, list) => {
                write!(f, "{operand} IN (")?;
                for (i, item) in list.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    item.fmt(f)?;
                }
                f.write_str(")")
            }
            Self::AttributeExists(path) => write!(f, "attribute_exists({path})"),
            Self::AttributeNotExists(path) => write!(f, "attribute_not_exists({path})"),
            Self::AttributeType(path, t) => write!(f, "attribute_type({path}, {t})"),
            Self::BeginsWith(a, b) => write!(f, "begins_with({a}, {b})"),
            Self::Contains(a, b) => write!(f, "contains({a}, {b})"),
            Self::Not(inner) => {
                f.write_str("NOT ")?;
                child(f, inner, 3)
            }
            Self::And(operands) => chain(f, operands, " AND ", 3),
            Self::Or(operands) => chain(f, operands, " OR ", 2),
        }
    }
}
