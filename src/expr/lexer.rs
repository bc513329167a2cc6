//! Tokens of DynamoDB's expressions (update, condition, key condition, projection and
//! filter): names, `#name` and `:value` placeholders, numbers (list indexes), punctuation
//! and comparators. Keywords and function names are plain [`Token::Ident`]s, compared
//! without regard to case by the grammars, as DynamoDB does.

use super::ExprError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Token<'a> {
    /// An attribute name, keyword or function name, as written.
    Ident(&'a str),
    /// `#name`, with the `#`.
    Name(&'a str),
    /// `:value`, with the `:`.
    Value(&'a str),
    /// Digits: a list index.
    Number(&'a str),
    Dot,
    Comma,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Plus,
    Minus,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl<'a> Token<'a> {
    /// The token as written in the expression.
    pub fn text(&self) -> &'a str {
        match self {
            Self::Ident(s) | Self::Name(s) | Self::Value(s) | Self::Number(s) => s,
            Self::Dot => ".",
            Self::Comma => ",",
            Self::LParen => "(",
            Self::RParen => ")",
            Self::LBracket => "[",
            Self::RBracket => "]",
            Self::Plus => "+",
            Self::Minus => "-",
            Self::Eq => "=",
            Self::Ne => "<>",
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Gt => ">",
            Self::Ge => ">=",
        }
    }
}

/// The tokens of `text` with their byte offsets.
pub fn tokenize(text: &str) -> Result<Vec<(usize, Token<'_>)>, ExprError> {
    let bytes = text.as_bytes();
    let mut tokens = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let start = at;
        let byte = bytes[at];
        let word_end = |from: usize| {
            from + bytes[from..]
                .iter()
                .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_')
                .count()
        };
        let token = match byte {
            b' ' | b'\t' | b'\n' | b'\r' => {
                at += 1;
                continue;
            }
            b'#' | b':' => {
                at = word_end(at + 1);
                if at == start + 1 {
                    return Err(unexpected_character(text, &tokens, start));
                }
                let word = &text[start..at];
                if byte == b'#' {
                    Token::Name(word)
                } else {
                    Token::Value(word)
                }
            }
            b'0'..=b'9' => {
                at += bytes[at..]
                    .iter()
                    .take_while(|b| b.is_ascii_digit())
                    .count();
                Token::Number(&text[start..at])
            }
            b if b.is_ascii_alphabetic() || b == b'_' => {
                at = word_end(at);
                Token::Ident(&text[start..at])
            }
            _ => {
                let next = bytes.get(at + 1).copied();
                let (token, len) = match (byte, next) {
                    (b'<', Some(b'>')) => (Token::Ne, 2),
                    (b'<', Some(b'=')) => (Token::Le, 2),
                    (b'>', Some(b'=')) => (Token::Ge, 2),
                    (b'<', _) => (Token::Lt, 1),
                    (b'>', _) => (Token::Gt, 1),
                    (b'=', _) => (Token::Eq, 1),
                    (b'.', _) => (Token::Dot, 1),
                    (b',', _) => (Token::Comma, 1),
                    (b'(', _) => (Token::LParen, 1),
                    (b')', _) => (Token::RParen, 1),
                    (b'[', _) => (Token::LBracket, 1),
                    (b']', _) => (Token::RBracket, 1),
                    (b'+', _) => (Token::Plus, 1),
                    (b'-', _) => (Token::Minus, 1),
                    _ => return Err(unexpected_character(text, &tokens, at)),
                };
                at += len;
                token
            }
        };
        tokens.push((start, token));
    }
    Ok(tokens)
}

/// DynamoDB's syntax error for a character no token starts with: quoted with the text from
/// the token before it to the word after it (`near: "hits : incr"`).
fn unexpected_character(text: &str, tokens: &[(usize, Token<'_>)], at: usize) -> ExprError {
    let len = text[at..].chars().next().map_or(1, char::len_utf8);
    let start = tokens.last().map_or(at, |(offset, _)| *offset);
    let bytes = text.as_bytes();
    let after = at + len;
    let word_start = after
        + bytes[after..]
            .iter()
            .take_while(|b| b.is_ascii_whitespace())
            .count();
    let is_word = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'#' | b':');
    let word_len = bytes[word_start..]
        .iter()
        .take_while(|b| is_word(b))
        .count();
    let end = if word_len > 0 {
        word_start + word_len
    } else {
        after
    };
    ExprError::Syntax {
        token: text[at..after].to_owned(),
        near: text[start..end].to_owned(),
        at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<Token<'_>> {
        tokenize(text)
            .unwrap()
            .into_iter()
            .map(|(_, t)| t)
            .collect()
    }

    #[test]
    fn splits_names_placeholders_and_punctuation() {
        assert_eq!(
            kinds("SET #a.b[12] = if_not_exists(c, :v1)"),
            vec![
                Token::Ident("SET"),
                Token::Name("#a"),
                Token::Dot,
                Token::Ident("b"),
                Token::LBracket,
                Token::Number("12"),
                Token::RBracket,
                Token::Eq,
                Token::Ident("if_not_exists"),
                Token::LParen,
                Token::Ident("c"),
                Token::Comma,
                Token::Value(":v1"),
                Token::RParen,
            ]
        );
        assert_eq!(
            kinds("a<>b<=c>=d<e>f-g+h"),
            vec![
                Token::Ident("a"),
                Token::Ne,
                Token::Ident("b"),
                Token::Le,
                Token::Ident("c"),
                Token::Ge,
                Token::Ident("d"),
                Token::Lt,
                Token::Ident("e"),
                Token::Gt,
                Token::Ident("f"),
                Token::Minus,
                Token::Ident("g"),
                Token::Plus,
                Token::Ident("h"),
            ]
        );
    }

    #[test]
    fn refuses_what_no_expression_contains() {
        assert_eq!(
            tokenize("SET a = :v; DROP"),
            Err(ExprError::Syntax {
                token: ";".into(),
                near: ":v; DROP".into(),
                at: 10
            })
        );
        assert_eq!(
            tokenize("ADD hits : incr"),
            Err(ExprError::Syntax {
                token: ":".into(),
                near: "hits : incr".into(),
                at: 9
            })
        );
        assert_eq!(
            tokenize("é"),
            Err(ExprError::Syntax {
                token: "é".into(),
                near: "é".into(),
                at: 0
            })
        );
        assert!(tokenize("SET # = :v").is_err());
        assert!(tokenize("SET a = :").is_err());
        assert!(tokenize("SET é = :v").is_err());
    }
}
