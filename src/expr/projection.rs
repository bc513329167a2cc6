//! The projection expression: the comma-separated document paths a read returns.

use std::fmt;

use super::ExprError;
use super::lexer::Token;
use super::parser::Parser;
use super::path::Path;

/// A parsed `ProjectionExpression`, its paths in the order written.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Projection(pub Vec<Path>);

/// Parses a `ProjectionExpression`: `a, b.c[0], #n`.
pub fn parse_projection(text: &str) -> Result<Projection, ExprError> {
    let mut p = Parser::new(text)?;
    let mut paths = vec![p.path()?];
    while p.eat(Token::Comma) {
        paths.push(p.path()?);
    }
    p.finish(Projection(paths))
}

impl fmt::Display for Projection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, path) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            path.fmt(f)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::PathElement;

    #[test]
    fn parses_and_prints_paths() {
        let parsed = parse_projection(" a ,#b.c[0],  d.e ").unwrap();
        assert_eq!(parsed.0.len(), 3);
        assert_eq!(
            parsed.0[1],
            Path(vec![
                PathElement::Name("#b".into()),
                PathElement::Attr("c".into()),
                PathElement::Index(0)
            ])
        );
        assert_eq!(parsed.to_string(), "a, #b.c[0], d.e");
    }

    #[test]
    fn refuses_what_is_not_a_list_of_paths() {
        for text in [
            "a,", ",a", "a,,b", "a b", ":v", "size(a)", "a[", "a.", "a[b]",
        ] {
            assert!(
                matches!(parse_projection(text), Err(ExprError::Syntax { .. })),
                "{text:?}"
            );
        }
        assert_eq!(parse_projection("  "), Err(ExprError::Empty));
        assert_eq!(
            parse_projection("a, Name"),
            Err(ExprError::Reserved {
                word: "Name".into(),
                at: 3
            })
        );
    }
}
