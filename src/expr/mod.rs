//! DynamoDB's expression language, parsed: condition, filter, key condition, projection and
//! update expressions share one lexer, one document path and one error type. The request
//! path reads safety and meaning from the parsed expression, never from the text (an
//! attribute named `ADD_ON` is not an `ADD`, and `SET a = b` copies a path where
//! `SET a = :b` sets a constant), and a rewrite edits the AST and prints it back: every
//! kind's `Display` prints an expression DynamoDB parses to the same AST.
//!
//! The parsers refuse what DynamoDB refuses on the text alone (syntax, reserved words, the
//! limits below), and [`ExprError::message`] words it as DynamoDB's `ValidationException`
//! does. What needs the request's maps (undefined or unused placeholders) is checked
//! through [`Used`]; what needs the item or the table (operand types, key shape, paths that
//! overlap) stays DynamoDB's to refuse.

mod condition;
mod error;
pub mod lexer;
mod parser;
mod path;
mod placeholders;
mod projection;
mod reserved;
mod set;
pub mod update;

pub use condition::{
    Comparator, Condition, MAX_IN_OPERANDS, Operand, parse_condition, parse_key_condition,
};
pub use error::{ExprError, ExprKind, Misuse};
pub use path::{Path, PathElement, ResolvedElement};
pub use placeholders::{PlaceholderAllocator, Used};
pub use projection::{Projection, parse_projection};
pub use reserved::is_reserved;
pub use set::{ExpressionSet, Expressions, SetError, Wanted};
pub use update::{SetOperand, SetValue, UpdateAction, UpdateExpression};

/// DynamoDB's limit on the length of any expression string.
pub const MAX_EXPRESSION_BYTES: usize = 4096;

/// DynamoDB's limit on the elements of a document path (`a.b[0]` has three).
pub const MAX_PATH_DEPTH: usize = 32;

/// How deeply parentheses, `NOT`s and function calls may nest. DynamoDB documents no limit;
/// this one keeps the recursive descent (and every walk over the AST) far from the end of
/// a 2 MiB thread stack on any input, and no hand-written expression comes near it.
pub const MAX_NESTING: usize = 100;

/// Parses an `UpdateExpression`; the same as [`UpdateExpression::parse`].
pub fn parse_update(text: &str) -> Result<UpdateExpression, ExprError> {
    UpdateExpression::parse(text)
}

#[cfg(test)]
mod tests;
