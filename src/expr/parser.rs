//! The cursor every expression grammar parses with: tokens, DynamoDB's syntax error (the
//! token and the text around it), the nesting bound that keeps recursion off the end of the
//! stack, and the pieces all grammars share: document paths, `:value`s and function calls.
//!
//! DynamoDB reports a syntax error before a reserved word or an over-deep path found
//! earlier in the text (`SET path = VALUE 1` fails on the `1`), so those checks are
//! deferred: the first is kept and returned only once the whole expression has parsed.

use super::lexer::{Token, tokenize};
use super::path::{Path, PathElement};
use super::reserved::is_reserved;
use super::{ExprError, MAX_EXPRESSION_BYTES, MAX_NESTING, MAX_PATH_DEPTH};

pub(super) struct Parser<'a> {
    text: &'a str,
    tokens: Vec<(usize, Token<'a>)>,
    /// Index of the next token.
    at: usize,
    /// Open parentheses, `NOT`s and function calls around the next token.
    depth: usize,
    deferred: Option<ExprError>,
    /// Token indexes of the `(` and `)` of the group closed last, for the rule against
    /// redundant parentheses.
    pub(super) last_group: Option<(usize, usize)>,
}

/// A function call as written: `name(arg, ...)`.
pub(super) struct Call<'a, T> {
    pub(super) name: &'a str,
    pub(super) args: Vec<T>,
    /// Byte offset of the name.
    pub(super) at: usize,
}

impl<'a> Parser<'a> {
    /// Checks the limits DynamoDB checks before the grammar (size, emptiness), then splits
    /// `text` into tokens.
    pub(super) fn new(text: &'a str) -> Result<Self, ExprError> {
        if text.len() > MAX_EXPRESSION_BYTES {
            return Err(ExprError::TooLong { size: text.len() });
        }
        if text.trim().is_empty() {
            return Err(ExprError::Empty);
        }
        Ok(Self {
            text,
            tokens: tokenize(text)?,
            at: 0,
            depth: 0,
            deferred: None,
            last_group: None,
        })
    }

    pub(super) fn peek(&self) -> Option<Token<'a>> {
        self.tokens.get(self.at).map(|(_, t)| *t)
    }

    pub(super) fn peek_second(&self) -> Option<Token<'a>> {
        self.tokens.get(self.at + 1).map(|(_, t)| *t)
    }

    /// Index of the next token (the count of tokens consumed).
    pub(super) fn index(&self) -> usize {
        self.at
    }

    /// Byte offset of the next token, or the length of the text at the end.
    pub(super) fn position(&self) -> usize {
        self.tokens
            .get(self.at)
            .map_or(self.text.len(), |(at, _)| *at)
    }

    pub(super) fn bump(&mut self) {
        self.at += 1;
    }

    /// Whether the next token is the keyword `word`, in any case.
    pub(super) fn at_keyword(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Token::Ident(w)) if w.eq_ignore_ascii_case(word))
    }

    pub(super) fn eat(&mut self, token: Token<'_>) -> bool {
        let found = self.peek() == Some(token);
        if found {
            self.bump();
        }
        found
    }

    pub(super) fn eat_keyword(&mut self, word: &str) -> bool {
        let found = self.at_keyword(word);
        if found {
            self.bump();
        }
        found
    }

    pub(super) fn expect(&mut self, token: Token<'_>) -> Result<(), ExprError> {
        if self.eat(token) {
            Ok(())
        } else {
            Err(self.syntax_error())
        }
    }

    pub(super) fn expect_keyword(&mut self, word: &str) -> Result<(), ExprError> {
        if self.eat_keyword(word) {
            Ok(())
        } else {
            Err(self.syntax_error())
        }
    }

    /// DynamoDB's syntax error at the next token: the token (`<EOF>` at the end) and the
    /// text from the token before it to the token after it.
    pub(super) fn syntax_error(&self) -> ExprError {
        let span = |i: usize| {
            self.tokens
                .get(i)
                .map(|(start, token)| (*start, start + token.text().len()))
        };
        let before = self.at.checked_sub(1).and_then(span);
        let current = span(self.at);
        let first = before.or(current);
        let last = span(self.at + 1).or(current).or(before);
        let near = match (first, last) {
            (Some((start, _)), Some((_, end))) => self.text.get(start..end).unwrap_or_default(),
            _ => "",
        };
        ExprError::Syntax {
            token: self.peek().map_or("<EOF>", |t| t.text()).to_owned(),
            near: near.to_owned(),
            at: self.position(),
        }
    }

    /// Keeps the first error that DynamoDB reports only for an expression that parses.
    pub(super) fn defer(&mut self, error: ExprError) {
        self.deferred.get_or_insert(error);
    }

    /// One level deeper (a parenthesis, a `NOT`, a call); refused past [`MAX_NESTING`].
    pub(super) fn enter(&mut self) -> Result<(), ExprError> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(ExprError::TooDeep {
                at: self.position(),
            });
        }
        Ok(())
    }

    pub(super) fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    /// The parsed expression, if every token was used and nothing was deferred.
    pub(super) fn finish<T>(self, parsed: T) -> Result<T, ExprError> {
        if self.at < self.tokens.len() {
            return Err(self.syntax_error());
        }
        match self.deferred {
            Some(error) => Err(error),
            None => Ok(parsed),
        }
    }

    /// A `:value` placeholder, with the `:`.
    pub(super) fn value(&mut self) -> Result<String, ExprError> {
        match self.peek() {
            Some(Token::Value(value)) => {
                self.bump();
                Ok(value.to_owned())
            }
            _ => Err(self.syntax_error()),
        }
    }

    /// A document path: a name, then `.name`s and `[index]`es.
    pub(super) fn path(&mut self) -> Result<Path, ExprError> {
        let at = self.position();
        let mut elements = vec![self.path_name()?];
        loop {
            if self.eat(Token::Dot) {
                elements.push(self.path_name()?);
            } else if self.eat(Token::LBracket) {
                elements.push(self.list_index()?);
                self.expect(Token::RBracket)?;
            } else {
                break;
            }
        }
        if elements.len() > MAX_PATH_DEPTH {
            let levels = elements.len();
            self.defer(ExprError::PathTooDeep { levels, at });
        }
        Ok(Path(elements))
    }

    fn path_name(&mut self) -> Result<PathElement, ExprError> {
        let at = self.position();
        match self.peek() {
            Some(Token::Ident(name)) => {
                self.bump();
                if is_reserved(name) {
                    let word = name.to_owned();
                    self.defer(ExprError::Reserved { word, at });
                }
                Ok(PathElement::Attr(name.to_owned()))
            }
            Some(Token::Name(name)) => {
                self.bump();
                Ok(PathElement::Name(name.to_owned()))
            }
            _ => Err(self.syntax_error()),
        }
    }

    /// A list index; DynamoDB takes up to `i32::MAX`.
    fn list_index(&mut self) -> Result<PathElement, ExprError> {
        let at = self.position();
        let Some(Token::Number(digits)) = self.peek() else {
            return Err(self.syntax_error());
        };
        self.bump();
        let index = digits
            .parse::<u32>()
            .ok()
            .filter(|i| i32::try_from(*i).is_ok());
        if index.is_none() {
            let index = digits.to_owned();
            self.defer(ExprError::Index { index, at });
        }
        Ok(PathElement::Index(index.unwrap_or(0)))
    }

    /// `name(arg, ...)`, the next two tokens being a name and `(`; at least one argument,
    /// each parsed by `arg`.
    pub(super) fn call<T>(
        &mut self,
        mut arg: impl FnMut(&mut Self) -> Result<T, ExprError>,
    ) -> Result<Call<'a, T>, ExprError> {
        let at = self.position();
        let Some(Token::Ident(name)) = self.peek() else {
            return Err(self.syntax_error());
        };
        self.bump();
        self.expect(Token::LParen)?;
        self.enter()?;
        let mut args = vec![arg(self)?];
        while self.eat(Token::Comma) {
            args.push(arg(self)?);
        }
        self.expect(Token::RParen)?;
        self.leave();
        Ok(Call { name, args, at })
    }
}

impl<T> Call<'_, T> {
    /// Refuses a call with other than `count` arguments.
    pub(super) fn arity(&self, count: usize) -> Result<(), ExprError> {
        if self.args.len() == count {
            Ok(())
        } else {
            Err(ExprError::OperandCount {
                function: self.name.to_owned(),
                count: self.args.len(),
                at: self.at,
            })
        }
    }

    pub(super) fn needs_path(&self) -> ExprError {
        ExprError::NeedsPath {
            function: self.name.to_owned(),
            at: self.at,
        }
    }
}
