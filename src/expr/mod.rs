//! DynamoDB's expression language, parsed: a lexer shared by every expression kind and, so
//! far, the update expression's grammar and AST. The request path reads safety and meaning
//! from the parsed expression, never from the text (an attribute named `ADD_ON` is not an
//! `ADD`, and `SET a = b` copies a path where `SET a = :b` sets a constant).

pub mod lexer;
pub mod update;

pub use update::{Operand, Path, PathElement, SetValue, UpdateAction, UpdateExpression};

/// Why an expression could not be parsed; the request is still DynamoDB's to refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExprError {
    #[error("unexpected character {found:?} at offset {at}")]
    Character { found: char, at: usize },
    #[error("unexpected {found} at offset {at}, expected {expected}")]
    Token {
        found: String,
        expected: &'static str,
        at: usize,
    },
    #[error("the expression ended early, expected {expected}")]
    End { expected: &'static str },
    #[error("list index {0} is not a number DynamoDB accepts")]
    Index(String),
}
