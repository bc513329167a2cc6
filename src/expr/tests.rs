//! Properties every expression kind shares: printing gives back the AST, the limits hold,
//! and no input (however deep or long) panics or exhausts the stack.

use proptest::prelude::*;

use super::*;

fn path_strategy() -> impl Strategy<Value = Path> {
    let name = prop::sample::select(vec!["a", "b1", "Item_ID", "x", "Title", "_u"]);
    let placeholder = prop::sample::select(vec!["#n", "#k1", "#_"]);
    let first = prop_oneof![
        name.clone().prop_map(|n| PathElement::Attr(n.into())),
        placeholder
            .clone()
            .prop_map(|n| PathElement::Name(n.into())),
    ];
    let rest = prop_oneof![
        name.prop_map(|n| PathElement::Attr(n.into())),
        placeholder.prop_map(|n| PathElement::Name(n.into())),
        (0..=i32::MAX as u32).prop_map(PathElement::Index),
    ];
    (first, prop::collection::vec(rest, 0..4)).prop_map(|(first, mut rest)| {
        rest.insert(0, first);
        Path(rest)
    })
}

fn value_strategy() -> impl Strategy<Value = String> {
    prop::sample::select(vec![":v", ":v1", ":_x"]).prop_map(String::from)
}

fn operand_strategy() -> impl Strategy<Value = Operand> {
    prop_oneof![
        path_strategy().prop_map(Operand::Path),
        value_strategy().prop_map(Operand::Value),
        path_strategy().prop_map(Operand::Size),
    ]
}

fn leaf_condition() -> impl Strategy<Value = Condition> {
    let comparator = prop::sample::select(vec![
        Comparator::Eq,
        Comparator::Ne,
        Comparator::Lt,
        Comparator::Le,
        Comparator::Gt,
        Comparator::Ge,
    ]);
    let o = operand_strategy;
    prop_oneof![
        (o(), comparator, o()).prop_map(|(a, c, b)| Condition::Compare(a, c, b)),
        (o(), o(), o()).prop_map(|(a, b, c)| Condition::Between(a, b, c)),
        (o(), prop::collection::vec(o(), 1..5)).prop_map(|(a, l)| Condition::In(a, l)),
        path_strategy().prop_map(Condition::AttributeExists),
        path_strategy().prop_map(Condition::AttributeNotExists),
        (path_strategy(), o()).prop_map(|(p, t)| Condition::AttributeType(p, t)),
        (o(), o()).prop_map(|(a, b)| Condition::BeginsWith(a, b)),
        (o(), o()).prop_map(|(a, b)| Condition::Contains(a, b)),
    ]
}

fn condition_strategy() -> impl Strategy<Value = Condition> {
    leaf_condition().prop_recursive(5, 48, 4, |inner| {
        prop_oneof![
            inner.clone().prop_map(|c| Condition::Not(Box::new(c))),
            prop::collection::vec(inner.clone(), 2..5).prop_map(Condition::And),
            prop::collection::vec(inner, 2..5).prop_map(Condition::Or),
        ]
    })
}

fn set_operand_strategy() -> impl Strategy<Value = SetOperand> {
    let leaf = prop_oneof![
        path_strategy().prop_map(SetOperand::Path),
        value_strategy().prop_map(SetOperand::Value),
    ];
    leaf.prop_recursive(3, 8, 2, |inner| {
        prop_oneof![
            (path_strategy(), inner.clone())
                .prop_map(|(p, o)| SetOperand::IfNotExists(p, Box::new(o))),
            (inner.clone(), inner)
                .prop_map(|(a, b)| SetOperand::ListAppend(Box::new(a), Box::new(b))),
        ]
    })
}

fn action_strategy(clause: usize) -> BoxedStrategy<UpdateAction> {
    let set_value = prop_oneof![
        set_operand_strategy().prop_map(SetValue::Operand),
        (set_operand_strategy(), set_operand_strategy()).prop_map(|(a, b)| SetValue::Plus(a, b)),
        (set_operand_strategy(), set_operand_strategy()).prop_map(|(a, b)| SetValue::Minus(a, b)),
    ];
    match clause {
        0 => (path_strategy(), set_value)
            .prop_map(|(p, v)| UpdateAction::Set(p, v))
            .boxed(),
        1 => path_strategy().prop_map(UpdateAction::Remove).boxed(),
        2 => (path_strategy(), value_strategy())
            .prop_map(|(p, v)| UpdateAction::Add(p, v))
            .boxed(),
        _ => (path_strategy(), value_strategy())
            .prop_map(|(p, v)| UpdateAction::Delete(p, v))
            .boxed(),
    }
}

/// Each clause at most once, in any order, its actions together: what DynamoDB accepts.
fn update_strategy() -> impl Strategy<Value = UpdateExpression> {
    Just(vec![0, 1, 2, 3])
        .prop_shuffle()
        .prop_flat_map(|order| (1..=4usize).prop_map(move |n| order[..n].to_vec()))
        .prop_flat_map(|clauses| {
            clauses
                .into_iter()
                .map(|c| prop::collection::vec(action_strategy(c), 1..4))
                .collect::<Vec<_>>()
        })
        .prop_map(|groups| UpdateExpression {
            actions: groups.into_iter().flatten().collect(),
        })
}

/// Fragments of every grammar, glued at random: a stable-toolchain fuzzer for the parsers.
fn token_soup() -> impl Strategy<Value = String> {
    let fragment = prop::sample::select(vec![
        "a",
        "#n",
        ":v",
        "(",
        ")",
        "AND",
        "or",
        "NOT",
        "=",
        "<>",
        "<",
        ">=",
        "BETWEEN",
        "IN",
        ",",
        "size",
        "attribute_exists",
        "begins_with",
        "contains",
        ".",
        "[",
        "0",
        "]",
        "SET",
        "REMOVE",
        "ADD",
        "DELETE",
        "+",
        "-",
        "if_not_exists",
        "list_append",
        "status",
        "é",
        ";",
    ]);
    let separator = prop::sample::select(vec!["", " "]);
    prop::collection::vec((fragment, separator), 0..24)
        .prop_map(|parts| parts.into_iter().flat_map(|(f, s)| [f, s]).collect())
}

proptest! {
    #[test]
    fn conditions_print_to_what_parses_back(condition in condition_strategy()) {
        let printed = condition.to_string();
        prop_assert_eq!(parse_condition(&printed), Ok(condition), "{}", printed);
    }

    #[test]
    fn updates_print_to_what_parses_back(update in update_strategy()) {
        let printed = update.to_string();
        prop_assert_eq!(UpdateExpression::parse(&printed), Ok(update), "{}", printed);
    }

    #[test]
    fn projections_print_to_what_parses_back(paths in prop::collection::vec(path_strategy(), 1..5)) {
        let projection = Projection(paths);
        let printed = projection.to_string();
        prop_assert_eq!(parse_projection(&printed), Ok(projection), "{}", printed);
    }

    #[test]
    fn any_text_parses_to_what_prints_back_or_is_refused(text in token_soup()) {
        if let Ok(c) = parse_condition(&text) {
            prop_assert_eq!(parse_condition(&c.to_string()), Ok(c));
        }
        if let Ok(u) = UpdateExpression::parse(&text) {
            prop_assert_eq!(UpdateExpression::parse(&u.to_string()), Ok(u));
        }
        if let Ok(p) = parse_projection(&text) {
            prop_assert_eq!(parse_projection(&p.to_string()), Ok(p));
        }
    }
}

#[test]
fn limits_are_dynamodbs() {
    let long = format!("{} = :v", "a".repeat(MAX_EXPRESSION_BYTES - 5));
    assert!(parse_condition(&long).is_ok());
    let too_long = format!("{long} ");
    assert_eq!(
        parse_condition(&too_long)
            .unwrap_err()
            .message(ExprKind::Filter),
        "Invalid FilterExpression: Expression size has exceeded the maximum allowed size; \
         expression size: 4097"
    );
    let path = |levels: usize| format!("a{}", ".b".repeat(levels - 1));
    assert!(parse_projection(&path(32)).is_ok());
    assert_eq!(
        parse_projection(&path(33))
            .unwrap_err()
            .message(ExprKind::Projection),
        "Invalid ProjectionExpression: The document path has too many nesting levels; \
         nesting levels: 33"
    );
    assert!(parse_projection("l[2147483647]").is_ok());
    assert_eq!(
        parse_projection("l[2147483648]")
            .unwrap_err()
            .message(ExprKind::Projection),
        "Invalid ProjectionExpression: List index is not within the allowable range; \
         index: [2147483648]"
    );
    assert_eq!(
        parse_update(" \t").unwrap_err().message(ExprKind::Update),
        "Invalid UpdateExpression: The expression can not be empty;"
    );
}

#[test]
fn a_syntax_error_outranks_a_reserved_word_written_before_it() {
    assert_eq!(
        parse_update("SET path = VALUE 1")
            .unwrap_err()
            .message(ExprKind::Update),
        r#"Invalid UpdateExpression: Syntax error; token: "1", near: "VALUE 1""#
    );
    assert_eq!(
        parse_update("SET path = VALUE")
            .unwrap_err()
            .message(ExprKind::Update),
        "Invalid UpdateExpression: Attribute name is a reserved keyword; reserved keyword: path"
    );
    assert_eq!(
        parse_update("SET a").unwrap_err().message(ExprKind::Update),
        r#"Invalid UpdateExpression: Syntax error; token: "<EOF>", near: "a""#
    );
}

#[test]
fn deep_nesting_is_refused_not_recursed_into() {
    let deep = [
        format!("{}a = :v{}", "(".repeat(2000), ")".repeat(2000)),
        format!("{}a = :v", "NOT ".repeat(1000)),
        format!("{}a = :v", "(NOT ".repeat(800)),
        format!("{}a){}", "size(".repeat(800), " = :v"),
    ];
    for text in &deep {
        assert!(
            matches!(parse_condition(text), Err(ExprError::TooDeep { .. })),
            "{}",
            &text[..20]
        );
    }
    let update = format!(
        "SET a = {}:v{}",
        "list_append(".repeat(200),
        ", :v)".repeat(200)
    );
    assert!(update.len() <= MAX_EXPRESSION_BYTES);
    assert!(matches!(
        parse_update(&update),
        Err(ExprError::TooDeep { .. })
    ));
    let within = format!("{}a = :v", "NOT ".repeat(MAX_NESTING));
    assert!(parse_condition(&within).is_ok());
}

/// The longest `AND`/`OR` chains and the deepest nesting allowed: parsing, printing and
/// walking them fit in half of a tokio worker's 2 MiB stack, even unoptimized (where a
/// level of parentheses takes some 6 KiB of it).
#[test]
fn the_worst_cases_fit_a_small_stack() {
    // Written as printed, so the printed text is within the limit too.
    let chain = |op: &str| {
        let mut text = String::from("a = :v");
        while text.len() + op.len() + 6 <= MAX_EXPRESSION_BYTES {
            text.push_str(op);
            text.push_str("a = :v");
        }
        text
    };
    let levels = MAX_NESTING - 1;
    let texts = [
        chain(" OR "),
        chain(" AND "),
        chain(" AND NOT "),
        format!(
            "{}a = :v AND a = :v{}",
            "a = :v AND (".repeat(levels),
            ")".repeat(levels)
        ),
        format!(
            "{}a = :v{}",
            "NOT (a = :v OR ".repeat(levels / 2),
            ")".repeat(levels / 2)
        ),
    ];
    let worker = std::thread::Builder::new().stack_size(1 << 20);
    let handle = worker
        .spawn(move || {
            for text in &texts {
                let parsed = parse_condition(text).unwrap();
                let printed = parsed.to_string();
                assert_eq!(&printed, text);
                assert_eq!(parse_condition(&printed).unwrap(), parsed.clone());
                let is_a = |p: &Path| p.is_attribute(None, "a");
                assert!(!parsed.target_used_elsewhere(is_a));
                assert_eq!(parsed.placeholders().values, [":v"]);
                let mut parsed = parsed;
                assert!(parsed.values_compared_with_mut(is_a).len() >= levels / 2);
            }
        })
        .unwrap();
    handle.join().unwrap();
}
