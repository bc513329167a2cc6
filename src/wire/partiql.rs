//! PartiQL statements as the sidecar reads them: a lexer (strings, quoted identifiers, Ion
//! literals in backticks, line and block comments, any whitespace) and, over its tokens,
//! what a statement does and which tables it names. One reader serves every judgement that
//! looks inside a statement (table policies, the audit table's refusal, allow-lists, resend
//! safety), so no two of them can disagree about one spelling.
//!
//! It fails closed: a statement it cannot read with certainty (an unterminated string or
//! comment, a `FROM` not followed by a name, no table at all) is an error, and the callers
//! refuse it, since DynamoDB might read into it a table the sidecar did not see.

use std::borrow::Cow;

pub use crate::error::PartiqlError;

/// What a statement does, from its first keyword.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatementKind {
    Select,
    /// `EXISTS(SELECT ...)`: a condition check inside `ExecuteTransaction`; it reads.
    Exists,
    Insert,
    Update,
    Delete,
}

impl StatementKind {
    /// Whether the statement only reads.
    pub fn reads(self) -> bool {
        matches!(self, Self::Select | Self::Exists)
    }
}

/// A table a statement names, with the index a read may address (`"T"."Index"`, `T.Index`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableRef {
    pub name: String,
    pub index: Option<String>,
}

/// A statement as far as the sidecar reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub kind: StatementKind,
    /// The tables named after `FROM`, `INTO` and `UPDATE`, in order.
    pub tables: Vec<TableRef>,
    /// Every identifier of the statement, quoted or not: a policy that must not miss a table
    /// named in a place the reader does not expect compares its names with these too.
    pub identifiers: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token<'a> {
    /// An unquoted identifier or keyword.
    Word(&'a str),
    /// A `"double-quoted"` identifier, its doubled quotes undone.
    Quoted(Cow<'a, str>),
    /// A `'single-quoted'` string, its doubled quotes undone.
    Text(Cow<'a, str>),
    /// Anything else: punctuation, operators, numbers' dots, Ion literals.
    Symbol(char),
    /// A comment's text: skipped, but its names still count as identifiers, in case
    /// DynamoDB reads a comment differently.
    Comment(&'a str),
}

/// Reads one statement.
pub fn read(statement: &str) -> Result<Statement, PartiqlError> {
    let tokens = lex(statement)?;
    let kind = kind(&tokens)?;
    let mut tables = Vec::new();
    let mut identifiers = Vec::new();
    for (at, token) in tokens.iter().enumerate() {
        match token {
            Token::Word(word) => {
                identifiers.push((*word).to_owned());
                if let Some(keyword) = table_keyword(word) {
                    tables.push(table_after(&tokens[at + 1..]).ok_or(keyword.error())?);
                }
            }
            Token::Quoted(name) => identifiers.push(name.clone().into_owned()),
            Token::Comment(text) => identifiers.extend(comment_identifiers(text)),
            Token::Text(_) | Token::Symbol(_) => {}
        }
    }
    if tables.is_empty() {
        return Err(PartiqlError::NoTable);
    }
    Ok(Statement {
        kind,
        tables,
        identifiers,
    })
}

#[derive(Clone, Copy)]
enum TableKeyword {
    From,
    Into,
    Update,
}

impl TableKeyword {
    fn error(self) -> PartiqlError {
        PartiqlError::NoTableAfter(match self {
            Self::From => "FROM",
            Self::Into => "INTO",
            Self::Update => "UPDATE",
        })
    }
}

/// The names in a comment, read as if it were statement text.
fn comment_identifiers(text: &str) -> Vec<String> {
    let names = |token: Token<'_>| match token {
        Token::Word(word) => Some(word.to_owned()),
        Token::Quoted(name) | Token::Text(name) => Some(name.into_owned()),
        Token::Symbol(_) | Token::Comment(_) => None,
    };
    match lex(text) {
        Ok(tokens) => tokens.into_iter().filter_map(names).collect(),
        Err(_) => text
            .split(|c| !is_word_char(c))
            .map(str::to_owned)
            .collect(),
    }
}

fn table_keyword(word: &str) -> Option<TableKeyword> {
    [
        ("FROM", TableKeyword::From),
        ("INTO", TableKeyword::Into),
        ("UPDATE", TableKeyword::Update),
    ]
    .into_iter()
    .find_map(|(name, keyword)| word.eq_ignore_ascii_case(name).then_some(keyword))
}

/// The table reference at the start of `tokens`: a name (unquoted, quoted, or even a string,
/// which a lenient reader might take for one), then `.` and an index name if present.
fn table_after(tokens: &[Token<'_>]) -> Option<TableRef> {
    let name_of = |token: &Token<'_>| match token {
        Token::Word(word) => Some((*word).to_owned()),
        Token::Quoted(text) | Token::Text(text) => Some(text.clone().into_owned()),
        Token::Symbol(_) | Token::Comment(_) => None,
    };
    let tokens: Vec<&Token<'_>> = tokens
        .iter()
        .filter(|t| !matches!(t, Token::Comment(_)))
        .take(4)
        .collect();
    let name = name_of(tokens.first()?)?;
    let (index, next) = match tokens.get(1) {
        Some(Token::Symbol('.')) => (Some(name_of(tokens.get(2)?)?), tokens.get(3)),
        next => (None, next),
    };
    // DynamoDB reads one table per statement; a second source after a comma would be one
    // the reader did not take for a table.
    if matches!(next, Some(Token::Symbol(','))) {
        return None;
    }
    Some(TableRef { name, index })
}

fn kind(tokens: &[Token<'_>]) -> Result<StatementKind, PartiqlError> {
    let Some(first) = tokens.iter().find(|t| !matches!(t, Token::Comment(_))) else {
        return Err(PartiqlError::Empty);
    };
    let Token::Word(word) = first else {
        return Err(PartiqlError::UnknownKind(format!("{first:?}")));
    };
    [
        ("SELECT", StatementKind::Select),
        ("EXISTS", StatementKind::Exists),
        ("INSERT", StatementKind::Insert),
        ("UPDATE", StatementKind::Update),
        ("DELETE", StatementKind::Delete),
    ]
    .into_iter()
    .find_map(|(name, kind)| word.eq_ignore_ascii_case(name).then_some(kind))
    .ok_or_else(|| PartiqlError::UnknownKind((*word).to_owned()))
}

/// Whether `c` continues an unquoted identifier. Anything else ends it, so a character the
/// reader does not know splits a name rather than hiding one inside another.
fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '$')
}

fn lex(statement: &str) -> Result<Vec<Token<'_>>, PartiqlError> {
    let mut tokens = Vec::new();
    let mut rest = statement;
    while let Some(c) = rest.chars().next() {
        let after = &rest[c.len_utf8()..];
        rest = match c {
            '\'' => {
                let (text, rest) = quoted(after, '\'', "string")?;
                tokens.push(Token::Text(text));
                rest
            }
            '"' => {
                let (text, rest) = quoted(after, '"', "quoted identifier")?;
                tokens.push(Token::Quoted(text));
                rest
            }
            '`' => {
                // An Ion literal: nothing in it names a table.
                let end = after
                    .find('`')
                    .ok_or(PartiqlError::Unterminated("Ion literal"))?;
                tokens.push(Token::Symbol('`'));
                &after[end + 1..]
            }
            '-' if after.starts_with('-') => {
                let end = after.find('\n').unwrap_or(after.len());
                tokens.push(Token::Comment(&after[1..end]));
                &after[end..]
            }
            '/' if after.starts_with('*') => {
                let end = after[1..]
                    .find("*/")
                    .ok_or(PartiqlError::Unterminated("comment"))?;
                tokens.push(Token::Comment(&after[1..=end]));
                &after[end + 3..]
            }
            c if c.is_whitespace() => after,
            c if is_word_char(c) => {
                let end = rest.find(|c| !is_word_char(c)).unwrap_or(rest.len());
                tokens.push(Token::Word(&rest[..end]));
                &rest[end..]
            }
            c => {
                tokens.push(Token::Symbol(c));
                after
            }
        };
    }
    Ok(tokens)
}

/// The text up to the closing `quote` (a doubled one stands for itself), and what follows.
fn quoted<'a>(
    text: &'a str,
    quote: char,
    what: &'static str,
) -> Result<(Cow<'a, str>, &'a str), PartiqlError> {
    let mut value: Cow<'a, str> = Cow::Borrowed("");
    let mut rest = text;
    loop {
        let end = rest.find(quote).ok_or(PartiqlError::Unterminated(what))?;
        let piece = &rest[..end];
        rest = &rest[end + 1..];
        if let Some(after) = rest.strip_prefix(quote) {
            let owned = value.to_mut();
            owned.push_str(piece);
            owned.push(quote);
            rest = after;
        } else {
            if value.is_empty() {
                value = Cow::Borrowed(piece);
            } else {
                value.to_mut().push_str(piece);
            }
            return Ok((value, rest));
        }
    }
}

#[cfg(test)]
mod tests;
