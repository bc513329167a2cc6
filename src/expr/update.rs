//! The update expression: `SET`, `REMOVE`, `ADD` and `DELETE` clauses over document paths,
//! parsed into an AST that prints back to an equivalent expression, and the rule that says
//! whether applying an update twice leaves the same item as applying it once.

use std::fmt;

use serde_json::{Map, Value};

use super::ExprError;
use super::lexer::{Token, tokenize};

/// A parsed `UpdateExpression`, its actions in the order written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateExpression {
    pub actions: Vec<UpdateAction>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpdateAction {
    Set(Path, SetValue),
    Remove(Path),
    /// `ADD path :value`: adds to a number, or unions into a set.
    Add(Path, String),
    /// `DELETE path :value`: removes elements from a set.
    Delete(Path, String),
}

/// The right-hand side of a `SET` action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetValue {
    Operand(Operand),
    Plus(Operand, Operand),
    Minus(Operand, Operand),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operand {
    Path(Path),
    /// A `:value` placeholder, with the `:`.
    Value(String),
    /// `if_not_exists(path, operand)` or `list_append(operand, operand)`, the function name as
    /// written (DynamoDB matches it without regard to case).
    Call(String, Vec<Operand>),
}

/// A document path: `a.#b[3]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path(pub Vec<PathElement>);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathElement {
    /// A name written in the expression.
    Attr(String),
    /// A `#name` placeholder, with the `#`.
    Name(String),
    Index(u32),
}

impl Path {
    /// Whether any step of the path is a list element.
    pub fn has_index(&self) -> bool {
        self.0.iter().any(|e| matches!(e, PathElement::Index(_)))
    }

    /// The path with `#name` placeholders replaced by the names they stand for, so that
    /// `#a` and `a` compare equal; `None` when a placeholder is not defined.
    fn resolved<'a>(&'a self, names: Option<&'a Map<String, Value>>) -> Option<Vec<&'a str>> {
        let mut out = Vec::with_capacity(self.0.len());
        for element in &self.0 {
            out.push(match element {
                PathElement::Attr(name) => name.as_str(),
                PathElement::Name(placeholder) => names?.get(placeholder)?.as_str()?,
                // Paths holding an index are never compared (see `idempotent`).
                PathElement::Index(_) => return None,
            });
        }
        Some(out)
    }
}

impl UpdateExpression {
    pub fn parse(text: &str) -> Result<Self, ExprError> {
        let tokens = tokenize(text)?;
        let mut parser = Parser { tokens, at: 0 };
        let mut actions = Vec::new();
        loop {
            let clause = parser.clause()?;
            loop {
                actions.push(parser.action(clause)?);
                if parser.peek() == Some(Token::Comma) {
                    parser.at += 1;
                } else {
                    break;
                }
            }
            if parser.peek().is_none() {
                return Ok(Self { actions });
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

fn sets_constant(path: &Path, value: &SetValue, names: Option<&Map<String, Value>>) -> bool {
    match value {
        SetValue::Operand(Operand::Value(_)) => true,
        SetValue::Operand(Operand::Call(function, args))
            if function.eq_ignore_ascii_case("if_not_exists") =>
        {
            match args.as_slice() {
                [Operand::Path(source), Operand::Value(_)] => {
                    let target = path.resolved(names);
                    target.is_some() && target == source.resolved(names)
                }
                _ => false,
            }
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Clause {
    Set,
    Remove,
    Add,
    Delete,
}

struct Parser<'a> {
    tokens: Vec<(usize, Token<'a>)>,
    at: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<Token<'a>> {
        self.tokens.get(self.at).map(|(_, t)| *t)
    }

    fn next(&mut self, expected: &'static str) -> Result<(usize, Token<'a>), ExprError> {
        let token = self
            .tokens
            .get(self.at)
            .copied()
            .ok_or(ExprError::End { expected })?;
        self.at += 1;
        Ok(token)
    }

    fn unexpected(at: usize, token: Token<'_>, expected: &'static str) -> ExprError {
        ExprError::Token {
            found: token.to_string(),
            expected,
            at,
        }
    }

    fn expect(&mut self, want: Token<'_>, expected: &'static str) -> Result<(), ExprError> {
        match self.next(expected)? {
            (_, token) if token == want => Ok(()),
            (at, token) => Err(Self::unexpected(at, token, expected)),
        }
    }

    fn clause(&mut self) -> Result<Clause, ExprError> {
        const EXPECTED: &str = "SET, REMOVE, ADD or DELETE";
        match self.next(EXPECTED)? {
            (_, Token::Ident(word)) if word.eq_ignore_ascii_case("SET") => Ok(Clause::Set),
            (_, Token::Ident(word)) if word.eq_ignore_ascii_case("REMOVE") => Ok(Clause::Remove),
            (_, Token::Ident(word)) if word.eq_ignore_ascii_case("ADD") => Ok(Clause::Add),
            (_, Token::Ident(word)) if word.eq_ignore_ascii_case("DELETE") => Ok(Clause::Delete),
            (at, token) => Err(Self::unexpected(at, token, EXPECTED)),
        }
    }

    fn action(&mut self, clause: Clause) -> Result<UpdateAction, ExprError> {
        let path = self.path()?;
        Ok(match clause {
            Clause::Set => {
                self.expect(Token::Eq, "`=`")?;
                UpdateAction::Set(path, self.set_value()?)
            }
            Clause::Remove => UpdateAction::Remove(path),
            Clause::Add => UpdateAction::Add(path, self.value()?),
            Clause::Delete => UpdateAction::Delete(path, self.value()?),
        })
    }

    fn value(&mut self) -> Result<String, ExprError> {
        match self.next("a :value")? {
            (_, Token::Value(v)) => Ok(v.to_owned()),
            (at, token) => Err(Self::unexpected(at, token, "a :value")),
        }
    }

    fn set_value(&mut self) -> Result<SetValue, ExprError> {
        let left = self.operand()?;
        match self.peek() {
            Some(Token::Plus) => {
                self.at += 1;
                Ok(SetValue::Plus(left, self.operand()?))
            }
            Some(Token::Minus) => {
                self.at += 1;
                Ok(SetValue::Minus(left, self.operand()?))
            }
            _ => Ok(SetValue::Operand(left)),
        }
    }

    fn operand(&mut self) -> Result<Operand, ExprError> {
        const EXPECTED: &str = "a path, a :value or a function";
        match self.peek() {
            Some(Token::Value(v)) => {
                self.at += 1;
                Ok(Operand::Value(v.to_owned()))
            }
            Some(Token::Ident(name))
                if self.tokens.get(self.at + 1).map(|t| t.1) == Some(Token::LParen) =>
            {
                self.at += 2;
                let mut args = vec![self.operand()?];
                while self.peek() == Some(Token::Comma) {
                    self.at += 1;
                    args.push(self.operand()?);
                }
                self.expect(Token::RParen, "`)`")?;
                Ok(Operand::Call(name.to_owned(), args))
            }
            Some(Token::Ident(_) | Token::Name(_)) => Ok(Operand::Path(self.path()?)),
            Some(token) => Err(Self::unexpected(self.tokens[self.at].0, token, EXPECTED)),
            None => Err(ExprError::End { expected: EXPECTED }),
        }
    }

    fn path(&mut self) -> Result<Path, ExprError> {
        let mut elements = vec![self.path_name()?];
        loop {
            match self.peek() {
                Some(Token::Dot) => {
                    self.at += 1;
                    elements.push(self.path_name()?);
                }
                Some(Token::LBracket) => {
                    self.at += 1;
                    let index = match self.next("a list index")? {
                        (_, Token::Number(n)) => {
                            n.parse().map_err(|_| ExprError::Index(n.to_owned()))?
                        }
                        (at, token) => return Err(Self::unexpected(at, token, "a list index")),
                    };
                    self.expect(Token::RBracket, "`]`")?;
                    elements.push(PathElement::Index(index));
                }
                _ => return Ok(Path(elements)),
            }
        }
    }

    fn path_name(&mut self) -> Result<PathElement, ExprError> {
        match self.next("an attribute name")? {
            (_, Token::Ident(name)) => Ok(PathElement::Attr(name.to_owned())),
            (_, Token::Name(name)) => Ok(PathElement::Name(name.to_owned())),
            (at, token) => Err(Self::unexpected(at, token, "an attribute name")),
        }
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, element) in self.0.iter().enumerate() {
            match element {
                PathElement::Attr(name) | PathElement::Name(name) if i == 0 => f.write_str(name)?,
                PathElement::Attr(name) | PathElement::Name(name) => write!(f, ".{name}")?,
                PathElement::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

impl fmt::Display for Operand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Path(path) => path.fmt(f),
            Self::Value(value) => f.write_str(value),
            Self::Call(name, args) => {
                write!(f, "{name}(")?;
                for (i, arg) in args.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    arg.fmt(f)?;
                }
                f.write_str(")")
            }
        }
    }
}

impl fmt::Display for UpdateExpression {
    /// One clause per kind, as DynamoDB requires, in the order the kinds first appear.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = |action: &UpdateAction| match action {
            UpdateAction::Set(..) => "SET",
            UpdateAction::Remove(_) => "REMOVE",
            UpdateAction::Add(..) => "ADD",
            UpdateAction::Delete(..) => "DELETE",
        };
        let mut kinds: Vec<&str> = Vec::new();
        for action in &self.actions {
            if !kinds.contains(&kind(action)) {
                kinds.push(kind(action));
            }
        }
        for (k, clause) in kinds.iter().enumerate() {
            if k > 0 {
                f.write_str(" ")?;
            }
            f.write_str(clause)?;
            let mut first = true;
            for action in self.actions.iter().filter(|a| kind(a) == *clause) {
                f.write_str(if first { " " } else { ", " })?;
                first = false;
                match action {
                    UpdateAction::Set(path, value) => {
                        write!(f, "{path} = ")?;
                        match value {
                            SetValue::Operand(o) => write!(f, "{o}")?,
                            SetValue::Plus(a, b) => write!(f, "{a} + {b}")?,
                            SetValue::Minus(a, b) => write!(f, "{a} - {b}")?,
                        }
                    }
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
