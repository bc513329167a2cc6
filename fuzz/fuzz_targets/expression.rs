//! Any text as every kind of expression: parsed or refused with a message, never a panic
//! or a stack overflow; and what parses prints to text that parses back to the same AST,
//! also after the rewrite helpers renamed its placeholders.
#![no_main]

use globalscale::expr::{
    ExprError, ExprKind, MAX_EXPRESSION_BYTES, Path, PlaceholderAllocator, UpdateExpression,
    parse_condition, parse_projection,
};
use libfuzzer_sys::fuzz_target;

/// parse(print(ast)) == ast, unless printing (which adds spaces) outgrew DynamoDB's limit.
fn round_trip<T>(ast: &T, parse: impl Fn(&str) -> Result<T, ExprError>)
where
    T: std::fmt::Display + PartialEq + std::fmt::Debug,
{
    let printed = ast.to_string();
    match parse(&printed) {
        Ok(reparsed) => assert_eq!(&reparsed, ast, "{printed}"),
        Err(ExprError::TooLong { .. }) => assert!(printed.len() > MAX_EXPRESSION_BYTES),
        Err(error) => panic!("{printed:?} does not parse back: {error}"),
    }
}

fn refused(error: &ExprError) {
    for kind in [
        ExprKind::Condition,
        ExprKind::Filter,
        ExprKind::KeyCondition,
        ExprKind::Projection,
        ExprKind::Update,
    ] {
        assert!(error.message(kind).starts_with("Invalid "));
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match parse_condition(&text) {
        Ok(mut condition) => {
            round_trip(&condition, parse_condition);
            let is_a = |p: &Path| p.is_attribute(None, "a");
            let compared = condition.values_compared_with(is_a).len();
            let _ = condition.target_used_elsewhere(is_a);
            let mut allocator = PlaceholderAllocator::new(None, None);
            allocator.avoid(&condition.placeholders());
            let fresh = allocator.value();
            let renamed = condition.values_compared_with_mut(is_a);
            assert_eq!(renamed.len(), compared);
            for value in renamed {
                value.clone_from(&fresh);
            }
            round_trip(&condition, parse_condition);
        }
        Err(error) => refused(&error),
    }
    match UpdateExpression::parse(&text) {
        Ok(update) => {
            round_trip(&update, UpdateExpression::parse);
            let _ = update.idempotent(None, None);
            let _ = update.placeholders().check_defined(None, None);
        }
        Err(error) => refused(&error),
    }
    match parse_projection(&text) {
        Ok(projection) => round_trip(&projection, parse_projection),
        Err(error) => refused(&error),
    }
});
